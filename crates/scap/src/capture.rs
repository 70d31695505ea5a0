//! Replaying a capture: blocks in order, the state kept current, and the events an operator
//! sees — numbered like sysdig numbers them (every event the schema knows counts, internal
//! ones are hidden from output).

use std::io::Read;

use crate::block::EventRecord;
use crate::format::Line;
use crate::reader::{Block, Reader, ScapError};
use crate::schema;
use crate::state::State;

/// Iterates the visible events of a capture, keeping the state up to date.
pub struct Replay<R: Read> {
    reader: Reader<R>,
    pub state: State,
    num: u64,
    pending: Option<EventRecord>,
    pub error: Option<ScapError>,
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
            pending: None,
            error: None,
            sections: 0,
        }
    }

    /// The next visible event and its sysdig line (computed with the state before it).
    pub fn next_line(&mut self) -> Option<(Line, EventRecord)> {
        // The previous event updates the state only now, after it was shown.
        if let Some(prev) = self.pending.take() {
            self.state.apply(&prev);
        }
        loop {
            let block = match self.reader.next()? {
                Ok(b) => b,
                Err(e) => {
                    self.error = Some(e);
                    return None;
                }
            };
            match block {
                Block::Section(_) => {
                    self.sections += 1;
                    self.state.reset();
                }
                Block::Processes(list) => self.state.add_threads(list),
                Block::Fds { tid, fds } => self.state.add_fds(tid, &fds),
                Block::Event(rec) => {
                    let code = rec.event_type();
                    let Some(info) = schema::event(code) else {
                        continue;
                    };
                    self.num += 1;
                    if info.hidden {
                        self.state.apply(&rec);
                        continue;
                    }
                    // As in libsinsp, the parsers update the state before the event is shown,
                    // except for what an event removes (a closed fd is still named on close).
                    let line = if removes_state(&info.name) {
                        let l = Line::new(self.num, &rec, &self.state);
                        self.pending = Some(rec.clone());
                        l
                    } else {
                        self.state.apply(&rec);
                        Line::new(self.num, &rec, &self.state)
                    };
                    return Some((line, rec));
                }
                _ => {}
            }
        }
    }
}

fn removes_state(name: &str) -> bool {
    matches!(name, "close" | "procexit")
}

impl<R: Read> Iterator for Replay<R> {
    type Item = Line;
    fn next(&mut self) -> Option<Line> {
        self.next_line().map(|(l, _)| l)
    }
}
