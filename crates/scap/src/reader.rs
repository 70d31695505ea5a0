//! Streaming reader of `.scap` files: one block at a time in a reused buffer (constant memory
//! whatever the file size), gzip detected and decompressed transparently (all members of a
//! multi-member stream), concatenated captures (a new section header starts a new section),
//! unknown block types skipped by their length. Damage ends the stream with an error naming
//! the byte offset; everything before it has been yielded.

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
    offset: u64,
    buf: Vec<u8>,
    done: bool,
    started: bool,
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
            done: false,
            started: false,
        }
    }

    /// Byte offset (in the decompressed stream) of the next block.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn damaged(
        &mut self,
        offset: u64,
        what: impl Into<String>,
    ) -> Option<Result<Block, ScapError>> {
        self.done = true;
        Some(Err(ScapError::Damaged {
            offset,
            what: what.into(),
        }))
    }

    /// Reads exactly `n` bytes into the buffer; `Ok(false)` at a clean end of stream.
    fn fill(&mut self, n: usize, allow_eof: bool) -> Result<bool, ScapError> {
        self.buf.resize(n, 0);
        let mut got = 0;
        while got < n {
            match self.inner.read(&mut self.buf[got..n]) {
                Ok(0) => {
                    if got == 0 && allow_eof {
                        return Ok(false);
                    }
                    return Err(ScapError::Damaged {
                        offset: self.offset + got as u64,
                        what: format!("file truncated: {} more bytes expected", n - got),
                    });
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
        Ok(true)
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Block, ScapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let at = self.offset;
        match self.fill(8, true) {
            Ok(false) => {
                self.done = true;
                if !self.started {
                    return self.damaged(0, "the file is empty");
                }
                return None;
            }
            Ok(true) => {}
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        }
        let block_type = u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        let total = u32::from_le_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]);
        if !self.started && block_type != block::SHB {
            return self.damaged(
                0,
                format!("not a scap capture: first block type is {block_type:#x}, expected a section header (0x0a0d0d0a)"),
            );
        }
        self.started = true;
        let total_usize = total as usize;
        if total_usize < 12 || !total.is_multiple_of(4) {
            return self.damaged(
                at,
                format!("block length {total} is invalid (must be a multiple of 4, at least 12)"),
            );
        }
        if total_usize > MAX_BLOCK {
            return self.damaged(
                at,
                format!("block length {total} exceeds the {MAX_BLOCK}-byte limit"),
            );
        }
        self.offset += 8;
        if let Err(e) = self.fill(total_usize - 8, false) {
            self.done = true;
            return Some(Err(match e {
                ScapError::Damaged { offset, what } => ScapError::Damaged {
                    offset,
                    what: format!(
                        "block of type {block_type:#x} at byte {at} is cut short: {what}"
                    ),
                },
                other => other,
            }));
        }
        self.offset += (total_usize - 8) as u64;
        let body_end = total_usize - 12;
        let trailer = u32::from_le_bytes([
            self.buf[body_end],
            self.buf[body_end + 1],
            self.buf[body_end + 2],
            self.buf[body_end + 3],
        ]);
        let body = &self.buf[..body_end];
        let is_event = matches!(
            block_type,
            block::EV
                | block::EV_INT
                | block::EVF
                | block::EV_V2
                | block::EVF_V2
                | block::EV_V2_LARGE
                | block::EVF_V2_LARGE
        );
        if !is_event && block_type != block::SHB && trailer != total {
            return self.damaged(
                at,
                format!("block trailer {trailer} does not repeat the block length {total}"),
            );
        }
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
            Ok(b) => Some(Ok(b)),
            Err(e) => self.damaged(
                at + 8 + e.at as u64,
                format!("in block of type {block_type:#x} at byte {at}: {}", e.what),
            ),
        }
    }
}
