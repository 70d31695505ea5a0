//! Streaming reader of `.scap` files: one block at a time in a reused buffer (constant memory
//! whatever the file size), gzip detected and decompressed transparently (all members of a
//! multi-member stream), concatenated captures (a new section header starts a new section),
//! unknown block types skipped by their length (and reported: what they held is missing).
//! Each block's leading and trailing lengths must agree. Damage is an error naming the byte
//! offset; reading then resumes at the next sound block when one follows, so one corrupted
//! length does not swallow the rest of the file.

use std::collections::VecDeque;
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
    /// Stream offset of the next byte handed out (bytes given back count as not yet read).
    offset: u64,
    buf: Vec<u8>,
    /// Bytes read and given back (a block found damaged is searched again for the next good
    /// one): served before `inner`.
    back: VecDeque<u8>,
    done: bool,
    started: bool,
    /// A block found by the search after damage, handed out after the damage is reported.
    found: Option<Block>,
}

impl Reader<Box<dyn Read>> {
    /// Opens a file, plain or gzip-compressed.
    pub fn open(path: &Path) -> Result<Self, ScapError> {
        let f = File::open(path).map_err(|reason| ScapError::Open {
            path: path.display().to_string(),
            reason,
        })?;
        Self::from_read(BufReader::with_capacity(1 << 16, f)).map_err(|reason| ScapError::Open {
            path: path.display().to_string(),
            reason,
        })
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
            offset: 0,
            buf: Vec::new(),
            back: VecDeque::new(),
            done: false,
            started: false,
            found: None,
        }
    }

    /// Byte offset (in the decompressed stream) of the next block.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads exactly `n` bytes into the buffer. `Ok(Short(k))` when the stream ends after
    /// `k < n` bytes (the `k` bytes are in the buffer).
    fn fill(&mut self, n: usize) -> Result<Fill, ScapError> {
        self.buf.resize(n, 0);
        let mut got = 0;
        while got < n && !self.back.is_empty() {
            let (a, b) = self.back.as_slices();
            let from = if a.is_empty() { b } else { a };
            let k = from.len().min(n - got);
            self.buf[got..got + k].copy_from_slice(&from[..k]);
            self.back.drain(..k);
            got += k;
        }
        while got < n {
            match self.inner.read(&mut self.buf[got..n]) {
                Ok(0) => {
                    self.buf.truncate(got);
                    self.offset += got as u64;
                    return Ok(Fill::Short(got));
                }
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(ScapError::Io {
                        offset: self.offset + got as u64,
                        source,
                    })
                }
            }
        }
        self.offset += n as u64;
        Ok(Fill::Full)
    }

    /// Gives bytes back to be read again, as if never read.
    fn unread(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().rev() {
            self.back.push_front(b);
        }
        self.offset -= bytes.len() as u64;
    }

    /// Reads the block at the current offset. `Ok(None)` at a clean end of the stream;
    /// `Err(Bad::Damaged)` with the bytes it consumed when the block is not sound.
    fn block(&mut self, searching: bool) -> Result<Option<Block>, Bad> {
        match self.fill(8).map_err(Bad::Fatal)? {
            Fill::Full => {}
            Fill::Short(0) => return Ok(None),
            Fill::Short(k) => {
                return Err(Bad::Damaged {
                    what: format!("file truncated: {} more bytes expected", 8 - k),
                    consumed: self.buf.clone(),
                })
            }
        }
        let block_type = u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        let total = u32::from_le_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]);
        let header = [
            self.buf[0],
            self.buf[1],
            self.buf[2],
            self.buf[3],
            self.buf[4],
            self.buf[5],
            self.buf[6],
            self.buf[7],
        ];
        let bad = |what: String, body: &[u8]| {
            let mut consumed = header.to_vec();
            consumed.extend_from_slice(body);
            Err(Bad::Damaged { what, consumed })
        };
        if !self.started && block_type != block::SHB {
            return Err(Bad::Fatal(ScapError::Damaged {
                offset: 0,
                what: format!("not a scap capture: first block type is {block_type:#x}, expected a section header (0x0a0d0d0a)"),
            }));
        }
        let known = is_known(block_type);
        if searching && !known {
            return bad(format!("unknown block type {block_type:#x}"), &[]);
        }
        let total_usize = total as usize;
        if total_usize < 12 || !total.is_multiple_of(4) {
            return bad(
                format!("block length {total} is invalid (must be a multiple of 4, at least 12)"),
                &[],
            );
        }
        if total_usize > MAX_BLOCK {
            return bad(
                format!("block length {total} exceeds the {MAX_BLOCK}-byte limit"),
                &[],
            );
        }
        match self.fill(total_usize - 8).map_err(Bad::Fatal)? {
            Fill::Full => {}
            Fill::Short(k) => {
                let body = self.buf.clone();
                return bad(
                    format!(
                        "block of type {block_type:#x} is cut short: file truncated: {} more bytes expected",
                        total_usize - 8 - k
                    ),
                    &body,
                );
            }
        }
        let body_end = total_usize - 12;
        let trailer = u32::from_le_bytes([
            self.buf[body_end],
            self.buf[body_end + 1],
            self.buf[body_end + 2],
            self.buf[body_end + 3],
        ]);
        if trailer != total {
            let body = self.buf.clone();
            return bad(
                format!("block trailer {trailer} does not repeat the block length {total}"),
                &body,
            );
        }
        if !known {
            // A sound block of a type this reader does not know: skipped by its length, and
            // said, since what it held is missing from what is shown.
            return Ok(Some(Block::Unknown {
                block_type,
                len: total,
            }));
        }
        let body = &self.buf[..body_end];
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
            block::EV | block::EV_INT => block::event(body, false, false).map(Block::Event),
            block::EVF => block::event(body, false, true).map(Block::Event),
            block::EV_V2 | block::EV_V2_LARGE => block::event(body, true, false).map(Block::Event),
            block::EVF_V2 | block::EVF_V2_LARGE => block::event(body, true, true).map(Block::Event),
            other => Ok(Block::Unknown {
                block_type: other,
                len: total,
            }),
        };
        match parsed {
            Ok(b) => Ok(Some(b)),
            Err(e) => {
                let body = self.buf.clone();
                bad(
                    format!(
                        "in block of type {block_type:#x}, at its byte {}: {}",
                        8 + e.at,
                        e.what
                    ),
                    &body,
                )
            }
        }
    }

    /// After damage at `at`: looks for the next sound block of a known type, one 4-byte
    /// step at a time (blocks are 4-byte aligned), and reports the damage with where
    /// reading resumed. The block found is handed out next.
    fn recover(
        &mut self,
        at: u64,
        what: String,
        consumed: Vec<u8>,
    ) -> Option<Result<Block, ScapError>> {
        self.unread(consumed.get(4..).unwrap_or(&[]));
        loop {
            let candidate = self.offset;
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
                Err(Bad::Damaged { consumed, .. }) => {
                    self.unread(consumed.get(4..).unwrap_or(&[]));
                    if consumed.len() < 4 {
                        // Fewer than 4 bytes were left: nothing more can be a block.
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

enum Fill {
    Full,
    Short(usize),
}

/// Why a block could not be read: the stream cannot go on, or this block is damaged (the
/// bytes it took are kept, to search them for the next good block).
enum Bad {
    Fatal(ScapError),
    Damaged { what: String, consumed: Vec<u8> },
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
        let at = self.offset;
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
            Err(Bad::Damaged { what, consumed }) => {
                if !self.started {
                    // A damaged section header: nothing after it can be read in context.
                    self.done = true;
                    return Some(Err(ScapError::Damaged { offset: at, what }));
                }
                self.recover(at, what, consumed)
            }
        }
    }
}
