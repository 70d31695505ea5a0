//! An index of a capture file, for reading a page of it without replaying what comes before:
//! every [`STEP`] visible events, a checkpoint holds where the next block starts and the
//! state (threads, fds, containers) there. Built in one pass, cached beside the capture
//! (`FILE.idx`, checked against the file's size and modification time), and used to answer
//! "the events after number N" or "from time T" by resuming at the nearest checkpoint before.
//! A compressed capture cannot be entered in the middle: its index has no checkpoints and
//! its pages are read from the start.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crashscope_scap::format::Line;
use crashscope_scap::reader::{Reader, ScapError};
use crashscope_scap::replay::Replay;
use crashscope_scap::schema::is_metadata;
use crashscope_scap::state::State;
use serde::{Deserialize, Serialize};

use crate::scan::Scope;

/// Visible events between checkpoints: a page is at most this many events' replay away.
pub const STEP: u64 = 65_536;

/// Largest page of events.
pub const MAX_PAGE: usize = 5_000;

/// Bumped when the layout of the index file changes: an older file is rebuilt.
const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Capture(#[from] ScapError),
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where reading can resume.
#[derive(Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Events counted before it (the next visible event has a larger number).
    pub num: u64,
    /// Time of the last event before it.
    pub ts: u64,
    /// Byte offset of the next block.
    pub offset: u64,
    pub sections: u32,
    pub state: State,
}

/// A capture's index.
#[derive(Debug, Serialize, Deserialize)]
pub struct Index {
    version: u32,
    /// The file indexed: its size and modification time (ns), to know a stale index.
    size: u64,
    mtime: i128,
    /// Visible events.
    pub events: u64,
    pub first_ts: Option<u64>,
    pub last_ts: Option<u64>,
    /// Damage met while indexing (reading went on past it where it could).
    pub damage: Option<String>,
    pub checkpoints: Vec<Checkpoint>,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Size and modification time of `path`.
fn stamp(path: &Path) -> Result<(u64, i128), IndexError> {
    let m = std::fs::metadata(path).map_err(io_error(path))?;
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    Ok((m.len(), mtime))
}

fn is_gzip(path: &Path) -> Result<bool, IndexError> {
    let mut magic = [0u8; 2];
    let mut f = File::open(path).map_err(io_error(path))?;
    let n = f.read(&mut magic).map_err(io_error(path))?;
    Ok(n == 2 && magic == [0x1f, 0x8b])
}

/// Where the index of `capture` is cached.
pub fn index_path(capture: &Path) -> PathBuf {
    let mut p = capture.as_os_str().to_owned();
    p.push(".idx");
    PathBuf::from(p)
}

impl Index {
    /// Reads the whole capture once and notes a checkpoint every [`STEP`] events.
    pub fn build(path: &Path) -> Result<Index, IndexError> {
        Index::build_every(path, STEP)
    }

    /// [`Index::build`] with a checkpoint every `step` events.
    pub fn build_every(path: &Path, step: u64) -> Result<Index, IndexError> {
        let step = step.max(1);
        let (size, mtime) = stamp(path)?;
        let seekable = !is_gzip(path)?;
        let mut replay = Replay::new(Reader::open(path)?);
        let mut index = Index {
            version: VERSION,
            size,
            mtime,
            events: 0,
            first_ts: None,
            last_ts: None,
            damage: None,
            checkpoints: Vec::new(),
        };
        while replay.next_event().is_some() {
            index.events += 1;
            let ts = replay.current().map_or(0, |r| r.ts());
            index.first_ts.get_or_insert(ts);
            index.last_ts = Some(ts);
            if seekable && index.events.is_multiple_of(step) {
                replay.settle();
                index.checkpoints.push(Checkpoint {
                    num: replay.num(),
                    ts,
                    offset: replay.offset(),
                    sections: replay.sections,
                    state: replay.state.clone(),
                });
            }
        }
        index.damage = replay.error.take().map(|e| e.to_string());
        Ok(index)
    }

    /// The cached index of `path` when it is current, else a new one (cached when the
    /// directory can be written; an index that cannot be saved is still used).
    pub fn load_or_build(path: &Path) -> Result<Index, IndexError> {
        let cache = index_path(path);
        let stamp = stamp(path)?;
        if let Ok(f) = File::open(&cache) {
            if let Ok(ix) = serde_json::from_reader::<_, Index>(BufReader::new(f)) {
                if ix.version == VERSION && (ix.size, ix.mtime) == stamp {
                    return Ok(ix);
                }
            }
        }
        let ix = Index::build(path)?;
        let _ = ix.save(&cache);
        Ok(ix)
    }

    /// Written to a temporary file renamed into place: a reader never sees half of it.
    fn save(&self, cache: &Path) -> std::io::Result<()> {
        let dir = cache.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        serde_json::to_writer(std::io::BufWriter::new(tmp.as_file_mut()), self)?;
        tmp.persist(cache).map(drop).map_err(|e| e.error)
    }

    /// A replay positioned at the last checkpoint before event `after` + 1 and before time
    /// `from` (from the start when there is none).
    pub fn open(
        &self,
        path: &Path,
        after: u64,
        from: Option<u64>,
    ) -> Result<Replay<Box<dyn Read>>, IndexError> {
        let at = self
            .checkpoints
            .iter()
            .rev()
            .find(|c| c.num <= after && from.is_none_or(|f| c.ts < f));
        let Some(c) = at else {
            return Ok(Replay::new(Reader::open(path)?));
        };
        Ok(Replay::resume(
            Reader::open_at(path, c.offset)?,
            c.state.clone(),
            c.num,
            c.sections,
        ))
    }
}

/// One page of a capture's events.
#[derive(Debug, Serialize)]
pub struct Page {
    /// The events, as `sysdig -r` shows them.
    pub items: Vec<Line>,
    /// Pass as `after` for the next page; absent after the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
    /// Visible events in the capture.
    pub events: u64,
    pub first_ts: Option<u64>,
    pub last_ts: Option<u64>,
}

/// The events numbered above `after` that the scope selects, at most `limit` of them.
/// Container metadata records are left out unless `metadata`, as `inspect --events` does.
pub fn page(
    path: &Path,
    index: &Index,
    scope: &Scope,
    after: u64,
    limit: usize,
    metadata: bool,
) -> Result<Page, IndexError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let first = index.first_ts.unwrap_or(0);
    let from = scope.from.map(|b| b.at(first));
    let mut replay = index.open(path, after, from)?;
    let mut items = Vec::new();
    let mut next_after = None;
    while let Some(num) = replay.next_event() {
        if num <= after {
            continue;
        }
        let Some(rec) = replay.current() else {
            continue;
        };
        if (!metadata && is_metadata(rec.event_type()))
            || !scope.selects(num, rec, &replay.state, first)
        {
            continue;
        }
        if items.len() == limit {
            next_after = items.last().map(|l: &Line| l.num);
            break;
        }
        items.push(Line::new(num, rec, &replay.state));
    }
    Ok(Page {
        items,
        next_after,
        events: index.events,
        first_ts: index.first_ts,
        last_ts: index.last_ts,
    })
}
