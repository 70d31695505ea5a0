//! Streaming reader of `.scap` files: one block at a time in a reused buffer (constant memory
//! whatever the file size), gzip detected and decompressed transparently (all members of a
//! multi-member stream), concatenated captures (a new section header starts a new section),
//! unknown block types skipped by their length (and reported: what they held is missing).
//! Each block's leading and trailing lengths must agree. Damage is an error naming the byte
//! offset; reading then resumes at the next sound block when one follows, so one corrupted
//! length does not swallow the rest of the file.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::block::{
    self, EventRecord, FdInfo, Interface, MachineInfo, SectionHeader, ThreadInfo, UserEntry,
};

/// Largest block accepted (libscap grows its buffer for large events up to about this much).
pub const MAX_BLOCK: usize = 64 * 1024 * 1024;

/// One parsed block.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Section(SectionHeader),
    MachineInfo(MachineInfo),
    Processes(Vec<ThreadInfo>),
    Fds {
        tid: i64,
        fds: Vec<FdInfo>,
    },
    Users(Vec<UserEntry>),
    Interfaces(Vec<Interface>),
    Event(EventRecord),
    /// A block type this reader does not know, skipped.
    Unknown {
        block_type: u32,
        len: u32,
    },
}

/// What [`Reader::next_into`] read.
#[derive(Debug)]
pub enum Next {
    /// An event, now in the record given.
    Event,
    /// Any other block.
    Block(Block),
}

/// Why reading stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ScapError {
    /// The reason is in the message, not a source: printed as a chain it would say it twice.
    #[error("cannot open {path}: {reason}")]
    Open {
        path: String,
        reason: std::io::Error,
    },
    #[error("at byte {offset}: {what}")]
    Damaged { offset: u64, what: String },
    #[error("at byte {offset}: read failed: {source}")]
    Io {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
}

impl ScapError {
    pub fn offset(&self) -> Option<u64> {
        match self {
            ScapError::Damaged { offset, .. } | ScapError::Io { offset, .. } => Some(*offset),
            ScapError::Open { .. } => None,
        }
    }
}

/// Reads blocks from a byte stream.
pub struct Reader<R: Read> {
    inner: R,
    /// A window of the stream: `buf[pos..end]` is read and not yet handed out. Blocks are
    /// parsed where they lie; a block found damaged is searched again from 4 bytes past its
    /// start, without reading anything twice.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    eof: bool,
    done: bool,
    started: bool,
    /// A block found by the search after damage, handed out after the damage is reported.
    found: Option<Block>,
    /// An event record's buffer given back, reused for the next event (most blocks are
    /// events: one allocation per event was a tenth of a view's time).
    spare: Vec<u8>,
}

/// Bytes read from the stream at a time; the window grows past it only for a larger block.
const CHUNK: usize = 1 << 20;

impl Reader<Box<dyn Read>> {
    /// Opens a file, plain or gzip-compressed.
    pub fn open(path: &Path) -> Result<Self, ScapError> {
        Self::open_at(path, 0)
    }

    /// Opens a file at `offset`, where a block begins inside a section already started (an
    /// index's checkpoint; 0 is the file's start).
    pub fn open_at(path: &Path, offset: u64) -> Result<Self, ScapError> {
        let failed = |reason| ScapError::Open {
            path: path.display().to_string(),
            reason,
        };
        let mut f = File::open(path).map_err(failed)?;
        if offset > 0 {
            use std::io::{Seek, SeekFrom};
            f.seek(SeekFrom::Start(offset)).map_err(failed)?;
            let inner: Box<dyn Read> = Box::new(BufReader::with_capacity(1 << 16, f));
            return Ok(Reader::resume(inner, offset));
        }
        Self::from_read(BufReader::with_capacity(1 << 16, f)).map_err(failed)
    }

    /// Wraps a buffered stream, decompressing it when it starts with the gzip magic.
    pub fn from_read<B: BufRead + 'static>(mut r: B) -> std::io::Result<Self> {
        let head = r.fill_buf()?;
        let gz = head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b;
        let inner: Box<dyn Read> = if gz {
            Box::new(BufReader::with_capacity(
                1 << 16,
                flate2::bufread::MultiGzDecoder::new(r),
            ))
        } else {
            Box::new(r)
        };
        Ok(Reader::new(inner))
    }
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Self {
        Reader {
            inner,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            base: 0,
            eof: false,
            done: false,
            started: false,
            found: None,
            spare: Vec::new(),
        }
    }

    /// A reader of `inner`, a capture's bytes from `offset` on, where a block begins inside
    /// a section already started (an index's checkpoint).
    pub fn resume(inner: R, offset: u64) -> Self {
        let mut r = Reader::new(inner);
        r.base = offset;
        r.started = true;
        r
    }

    /// Byte offset (in the decompressed stream) of the next block.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Gives an event record's buffer back for the next event to reuse.
    pub fn recycle(&mut self, raw: Vec<u8>) {
        if raw.capacity() > self.spare.capacity() && raw.capacity() <= CHUNK {
            self.spare = raw;
        }
    }

    /// The next block like [`Iterator::next`], an event written into `rec` (its buffer
    /// reused) instead of handed out: replaying a capture reads millions of event blocks,
    /// and building, moving and matching a [`Block`] for each cost more than copying the
    /// event.
    pub fn next_into(&mut self, rec: &mut EventRecord) -> Option<Result<Next, ScapError>> {
        if self.next_event_into(rec) {
            return Some(Ok(Next::Event));
        }
        Some(match self.next()? {
            Ok(Block::Event(r)) => {
                let old = std::mem::replace(rec, r);
                self.recycle(old.raw);
                Ok(Next::Event)
            }
            Ok(b) => Ok(Next::Block(b)),
            Err(e) => Err(e),
        })
    }

    /// [`Reader::next_into`]'s common case alone: true when the next block was a sound V2
    /// event, now in `rec`; false when it is anything else, which `next_into` then reads
    /// (nothing was consumed). A loop over millions of events tries this first: the
    /// general result is a large value to build and match for every event.
    #[inline]
    pub fn next_event_into(&mut self, rec: &mut EventRecord) -> bool {
        self.found.is_none() && !self.done && self.started && self.event_in_place(rec)
    }

    /// Reads the block at the offset into `rec` when it is a sound V2 event already in the
    /// window (nearly every block of a capture); anything else, and anything that would
    /// need the window refilled, is left to the general path, which reads it or reports
    /// the damage — false and nothing consumed.
    #[inline]
    fn event_in_place(&mut self, rec: &mut EventRecord) -> bool {
        let h = &self.buf[self.pos..self.end];
        let Some(head) = h.get(..8) else {
            return false;
        };
        let block_type = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let with_flags = match block_type {
            block::EV_V2 => false,
            block::EVF_V2 => true,
            _ => return false,
        };
        let total = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        if total < 12 || !total.is_multiple_of(4) {
            return false;
        }
        let Some(whole) = h.get(..total) else {
            return false;
        };
        let t = &whole[total - 4..];
        if u32::from_le_bytes([t[0], t[1], t[2], t[3]]) as usize != total {
            return false;
        }
        let body = &whole[8..total - 4];
        let start = if with_flags { 6 } else { 2 };
        let Some(ev) = body.get(start..).filter(|ev| ev.len() >= 26) else {
            return false;
        };
        let len = u32::from_le_bytes([ev[16], ev[17], ev[18], ev[19]]) as usize;
        let etype = u16::from_le_bytes([ev[20], ev[21]]);
        if len < 26 || len > ev.len() {
            return false;
        }
        let n = u32::from_le_bytes([ev[22], ev[23], ev[24], ev[25]]) as usize;
        let lw = if block::large_payload(etype) { 4 } else { 2 };
        if !block::params_fit(&ev[..len], 26, n, lw) {
            return false;
        }
        rec.cpu = u16::from_le_bytes([body[0], body[1]]);
        rec.flags = if with_flags {
            u32::from_le_bytes([body[2], body[3], body[4], body[5]])
        } else {
            0
        };
        rec.raw.clear();
        rec.raw.extend_from_slice(&ev[..len]);
        self.pos += total;
        true
    }

    /// Makes `n` bytes from `pos` readable in `buf`; how many are (fewer only at the end of
    /// the stream).
    fn fill(&mut self, n: usize) -> Result<usize, ScapError> {
        if self.end - self.pos >= n {
            return Ok(n);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.base += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
        }
        let want = n.max(CHUNK);
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        } else if self.buf.len() > 4 * want && self.end <= want {
            // A large block has passed: memory goes back to the usual window.
            self.buf.truncate(want);
            self.buf.shrink_to_fit();
        }
        while self.end < n && !self.eof {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(ScapError::Io {
                        offset: self.base + self.end as u64,
                        source,
                    })
                }
            }
        }
        Ok(n.min(self.end - self.pos))
    }

    /// Reads the block at the current offset. `Ok(None)` at a clean end of the stream;
    /// `Err(Bad::Damaged)` with how many bytes the block spans when it is not sound (the
    /// offset stays at its start).
    fn block(&mut self, searching: bool) -> Result<Option<Block>, Bad> {
        match self.fill(8).map_err(Bad::Fatal)? {
            8 => {}
            0 => return Ok(None),
            k => {
                return Err(Bad::Damaged {
                    what: format!("file truncated: {} more bytes expected", 8 - k),
                    spans: k,
                })
            }
        }
        let h = &self.buf[self.pos..self.pos + 8];
        let block_type = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let total = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        let bad = |what: String, spans: usize| Err(Bad::Damaged { what, spans });
        if !self.started && block_type != block::SHB {
            return Err(Bad::Fatal(ScapError::Damaged {
                offset: 0,
                what: format!("not a scap capture: first block type is {block_type:#x}, expected a section header (0x0a0d0d0a)"),
            }));
        }
        let known = is_known(block_type);
        if searching && !known {
            return bad(format!("unknown block type {block_type:#x}"), 8);
        }
        let total_usize = total as usize;
        if total_usize < 12 || !total.is_multiple_of(4) {
            return bad(
                format!("block length {total} is invalid (must be a multiple of 4, at least 12)"),
                8,
            );
        }
        if total_usize > MAX_BLOCK {
            return bad(
                format!("block length {total} exceeds the {MAX_BLOCK}-byte limit"),
                8,
            );
        }
        let got = self.fill(total_usize).map_err(Bad::Fatal)?;
        if got < total_usize {
            return bad(
                format!(
                    "block of type {block_type:#x} is cut short: file truncated: {} more bytes expected",
                    total_usize - got
                ),
                got,
            );
        }
        let whole = &self.buf[self.pos..self.pos + total_usize];
        let body_end = total_usize - 4;
        let trailer = u32::from_le_bytes([
            whole[body_end],
            whole[body_end + 1],
            whole[body_end + 2],
            whole[body_end + 3],
        ]);
        if trailer != total {
            return bad(
                format!("block trailer {trailer} does not repeat the block length {total}"),
                total_usize,
            );
        }
        if !known {
            // A sound block of a type this reader does not know: skipped by its length, and
            // said, since what it held is missing from what is shown.
            self.pos += total_usize;
            return Ok(Some(Block::Unknown {
                block_type,
                len: total,
            }));
        }
        let body = &whole[8..body_end];
        let parsed = match block_type {
            block::SHB => block::section_header(body).map(Block::Section),
            block::MI | block::MI_INT => block::machine_info(body).map(Block::MachineInfo),
            t if block::pl_version(t).is_some() => {
                block::process_list(body, block::pl_version(t).unwrap_or(1)).map(Block::Processes)
            }
            block::FDL | block::FDL_INT => {
                block::fd_list(body, false).map(|(tid, fds)| Block::Fds { tid, fds })
            }
            block::FDL_V2 => block::fd_list(body, true).map(|(tid, fds)| Block::Fds { tid, fds }),
            block::UL | block::UL_INT => block::user_list(body, false).map(Block::Users),
            block::UL_V2 => block::user_list(body, true).map(Block::Users),
            block::IL | block::IL_INT => block::interface_list(body, false).map(Block::Interfaces),
            block::IL_V2 => block::interface_list(body, true).map(Block::Interfaces),
            t @ (block::EV
            | block::EV_INT
            | block::EVF
            | block::EV_V2
            | block::EV_V2_LARGE
            | block::EVF_V2
            | block::EVF_V2_LARGE) => {
                // V2 headers carry nparams; EVF blocks carry flags.
                let v2 = !matches!(t, block::EV | block::EV_INT | block::EVF);
                let flags = matches!(t, block::EVF | block::EVF_V2 | block::EVF_V2_LARGE);
                block::event_into(body, v2, flags, std::mem::take(&mut self.spare))
                    .map(Block::Event)
            }
            other => Ok(Block::Unknown {
                block_type: other,
                len: total,
            }),
        };
        match parsed {
            Ok(b) => {
                self.pos += total_usize;
                Ok(Some(b))
            }
            Err(e) => bad(
                format!(
                    "in block of type {block_type:#x}, at its byte {}: {}",
                    8 + e.at,
                    e.what
                ),
                total_usize,
            ),
        }
    }

    /// Steps past the first 4 bytes of a damaged block spanning `spans` bytes (blocks are
    /// 4-byte aligned, so the next block can start no sooner); false when fewer than 4 were
    /// left: nothing more can be a block.
    fn skip_damaged(&mut self, spans: usize) -> bool {
        self.pos += spans.min(4);
        spans >= 4
    }

    /// After damage at `at`: looks for the next sound block of a known type, one 4-byte
    /// step at a time, and reports the damage with where reading resumed. The block found is
    /// handed out next.
    fn recover(&mut self, at: u64, what: String, spans: usize) -> Option<Result<Block, ScapError>> {
        self.skip_damaged(spans);
        loop {
            let candidate = self.offset();
            if candidate - at > MAX_SEARCH {
                self.done = true;
                return Some(Err(ScapError::Damaged {
                    offset: at,
                    what: format!("{what}; no readable block within {MAX_SEARCH} bytes after it"),
                }));
            }
            match self.block(true) {
                Ok(Some(b)) => {
                    self.found = Some(b);
                    return Some(Err(ScapError::Damaged {
                        offset: at,
                        what: format!(
                            "{what}; {} bytes skipped, reading resumed at byte {candidate}",
                            candidate - at
                        ),
                    }));
                }
                Ok(None) => {
                    self.done = true;
                    return Some(Err(ScapError::Damaged { offset: at, what }));
                }
                Err(Bad::Damaged { spans, .. }) => {
                    if !self.skip_damaged(spans) {
                        self.done = true;
                        return Some(Err(ScapError::Damaged { offset: at, what }));
                    }
                }
                Err(Bad::Fatal(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// How far past damage the reader searches for the next good block.
pub const MAX_SEARCH: u64 = 16 * 1024 * 1024;

/// Why a block could not be read: the stream cannot go on, or this block is damaged (how
/// many bytes it spans, to search them for the next good block).
enum Bad {
    Fatal(ScapError),
    Damaged { what: String, spans: usize },
}

fn is_known(t: u32) -> bool {
    matches!(
        t,
        block::SHB
            | block::MI
            | block::MI_INT
            | block::FDL
            | block::FDL_INT
            | block::FDL_V2
            | block::UL
            | block::UL_INT
            | block::UL_V2
            | block::IL
            | block::IL_INT
            | block::IL_V2
            | block::EV
            | block::EV_INT
            | block::EVF
            | block::EV_V2
            | block::EVF_V2
            | block::EV_V2_LARGE
            | block::EVF_V2_LARGE
    ) || block::pl_version(t).is_some()
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Block, ScapError>;

    /// The next block, or the damage before it: after an `Err` the iterator may go on
    /// (reading resumed past the damage) or end.
    fn next(&mut self) -> Option<Self::Item> {
        if let Some(b) = self.found.take() {
            if matches!(b, Block::Section(_)) {
                self.started = true;
            }
            return Some(Ok(b));
        }
        if self.done {
            return None;
        }
        let at = self.offset();
        match self.block(false) {
            Ok(Some(b)) => {
                self.started = true;
                Some(Ok(b))
            }
            Ok(None) => {
                self.done = true;
                if !self.started {
                    return Some(Err(ScapError::Damaged {
                        offset: 0,
                        what: "the file is empty".into(),
                    }));
                }
                None
            }
            Err(Bad::Fatal(e)) => {
                self.done = true;
                Some(Err(e))
            }
            Err(Bad::Damaged { what, spans }) => {
                if !self.started {
                    // A damaged section header: nothing after it can be read in context.
                    self.done = true;
                    return Some(Err(ScapError::Damaged { offset: at, what }));
                }
                self.recover(at, what, spans)
            }
        }
    }
}
