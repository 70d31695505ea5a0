//! Replaying a capture: blocks in order, the state kept current, and the events an operator
//! sees — numbered like sysdig numbers them (every event the schema knows counts, internal
//! ones are hidden from output).

use std::io::Read;

use crate::block::EventRecord;
use crate::format::Line;
use crate::reader::{Block, Next, Reader, ScapError};
use crate::schema;
use crate::state::State;

/// Iterates the visible events of a capture, keeping the state up to date.
pub struct Replay<R: Read> {
    reader: Reader<R>,
    pub state: State,
    num: u64,
    /// The event read last; it is the current event while `shown` (a buffer reused for
    /// every event of the capture).
    current: EventRecord,
    shown: bool,
    /// The current event still has to update the state (it removes something it names).
    pending: bool,
    /// The first damage met: the capture is incomplete. Reading went on past it (and past
    /// each later one) wherever the file allowed.
    pub error: Option<ScapError>,
    /// How many damaged or unknown blocks there were.
    pub damage_count: u64,
    pub sections: u32,
}

impl<R: Read> Replay<R> {
    /// Bytes of the (decompressed) capture consumed so far.
    pub fn offset(&self) -> u64 {
        self.reader.offset()
    }

    pub fn new(reader: Reader<R>) -> Self {
        Replay {
            reader,
            state: State::default(),
            num: 0,
            current: EventRecord {
                cpu: 0,
                flags: 0,
                raw: Vec::new(),
            },
            shown: false,
            pending: false,
            error: None,
            damage_count: 0,
            sections: 0,
        }
    }

    /// Goes on reading a capture at a checkpoint: `reader` resumed at the checkpoint's offset,
    /// the state there, the number of events and sections before it.
    pub fn resume(reader: Reader<R>, state: State, num: u64, sections: u32) -> Self {
        Replay {
            state,
            num,
            sections,
            ..Replay::new(reader)
        }
    }

    /// Number of the last event counted (visible or not).
    pub fn num(&self) -> u64 {
        self.num
    }

    /// Brings the state up to date with the current event, which may defer what it removes
    /// until the next is read: between events, the state is then the one after the current.
    pub fn settle(&mut self) {
        if self.pending {
            self.pending = false;
            if self.shown {
                self.state.apply(&self.current);
            }
        }
    }

    /// Advances to the next visible event and returns its number; the event is
    /// [`Replay::current`] and [`Replay::state`] is the state sysdig shows it with.
    pub fn next_event(&mut self) -> Option<u64> {
        // The previous event updates the state only now, after it was shown.
        self.settle();
        self.shown = false;
        loop {
            let next = if self.reader.next_event_into(&mut self.current) {
                Ok(Next::Event)
            } else {
                self.reader.next_into(&mut self.current)?
            };
            let block = match next {
                Ok(Next::Event) => {
                    let code = self.current.event_type();
                    let Some(info) = schema::event(code) else {
                        continue;
                    };
                    self.num += 1;
                    if info.hidden {
                        self.state.apply(&self.current);
                        continue;
                    }
                    // As in libsinsp, the parsers update the state before the event is shown,
                    // except for what an event removes (a closed fd is still named on close).
                    if removes_state(code) {
                        self.pending = true;
                    } else {
                        self.state.apply(&self.current);
                    }
                    self.shown = true;
                    return Some(self.num);
                }
                Ok(Next::Block(b)) => b,
                Err(e) => {
                    // The reader ends by itself when nothing can be read past the damage.
                    self.damaged(e);
                    continue;
                }
            };
            match block {
                Block::Section(_) => {
                    self.sections += 1;
                    self.state.reset();
                }
                Block::Processes(list) => self.state.add_threads(list),
                Block::Unknown { block_type, len } => {
                    let offset = self.reader.offset().saturating_sub(u64::from(len));
                    self.damaged(ScapError::Damaged {
                        offset,
                        what: format!(
                            "a block of unknown type {block_type:#x} ({len} bytes) was skipped"
                        ),
                    });
                }
                Block::Fds { tid, fds } => self.state.add_fds(tid, &fds),
                _ => {}
            }
        }
    }

    fn damaged(&mut self, e: ScapError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
        self.damage_count += 1;
    }

    /// The event [`Replay::next_event`] stopped at.
    pub fn current(&self) -> Option<&EventRecord> {
        self.shown.then_some(&self.current)
    }

    /// The next visible event and its sysdig line (computed with the state before it).
    pub fn next_line(&mut self) -> Option<(Line, EventRecord)> {
        let num = self.next_event()?;
        let rec = self.current()?;
        Some((Line::new(num, rec, &self.state), rec.clone()))
    }
}

/// Whether events of type `code` remove what they name from the state (looked up per code
/// once: asked for every event).
fn removes_state(code: u16) -> bool {
    static BY_CODE: std::sync::OnceLock<Vec<bool>> = std::sync::OnceLock::new();
    let table = BY_CODE.get_or_init(|| {
        (0..schema::event_count())
            .map(|c| {
                u16::try_from(c)
                    .ok()
                    .and_then(schema::event)
                    .is_some_and(|i| matches!(i.name.as_str(), "close" | "procexit"))
            })
            .collect()
    });
    table.get(usize::from(code)).copied().unwrap_or(false)
}

impl<R: Read> Iterator for Replay<R> {
    type Item = Line;
    fn next(&mut self) -> Option<Line> {
        self.next_line().map(|(l, _)| l)
    }
}
