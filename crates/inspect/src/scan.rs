//! One pass over a capture: every visible event, with its state, that passes the filter and
//! the time range goes to the views. Memory stays with the views' results; the capture is
//! streamed.

use std::io::Read;

use crashscope_scap::block::EventRecord;
use crashscope_scap::reader::ScapError;
use crashscope_scap::replay::Replay;
use crashscope_scap::state::State;

use crate::event::Ev;
use crate::filter::Filter;
use crate::report::Table;

/// A view of a capture: fed matching events in order, then asked for its table.
pub trait View {
    fn event(&mut self, ev: &Ev);
    /// What the capture knew by its end (containers and processes that never acted):
    /// called once, after the last event.
    fn known(&mut self, _state: &crashscope_scap::state::State) {}
    /// Rows already final, taken to be shown while the scan goes on (views whose rows are
    /// in event order and need no totals: their memory stays flat in the capture's size).
    fn drain(&mut self) -> Vec<Vec<crate::report::Cell>> {
        Vec::new()
    }
    fn finish(self: Box<Self>) -> Table;
}

/// A time bound: nanoseconds since the epoch, or after the capture's first event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Absolute(u64),
    Relative(u64),
}

impl Bound {
    /// The bound in nanoseconds since the epoch, for a capture whose first event is at
    /// `first_ts`.
    pub fn at(self, first_ts: u64) -> u64 {
        match self {
            Bound::Absolute(t) => t,
            Bound::Relative(d) => first_ts.saturating_add(d),
        }
    }
}

#[derive(Debug, Default)]
pub struct Scope {
    pub filter: Filter,
    pub from: Option<Bound>,
    pub to: Option<Bound>,
}

impl Scope {
    /// Whether the time range overlaps a capture spanning `first`..=`last` (unknown spans do).
    pub fn in_range_any(&self, first: Option<u64>, last: Option<u64>) -> bool {
        let (Some(first), Some(last)) = (first, last) else {
            return true;
        };
        !(self.from.is_some_and(|b| b.at(first) > last)
            || self.to.is_some_and(|b| b.at(first) < first))
    }

    /// Whether event `num` (`rec`, shown with `state`) lies in the time range and passes the
    /// filter (`first_ts`: the capture's first event).
    pub fn selects(&self, num: u64, rec: &EventRecord, state: &State, first_ts: u64) -> bool {
        if !self.in_range(rec.ts(), first_ts) {
            return false;
        }
        if self.filter.is_empty() {
            return true;
        }
        Ev::new(num, rec, state).is_some_and(|ev| self.filter.matches(&ev, first_ts))
    }

    /// Whether an event at `ts` lies in the time range (`first_ts`: the capture's first event).
    pub fn in_range(&self, ts: u64, first_ts: u64) -> bool {
        !(self.from.is_some_and(|b| ts < b.at(first_ts))
            || self.to.is_some_and(|b| ts > b.at(first_ts)))
    }
}

/// What a scan saw besides the views' results.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Visible events read.
    pub events: u64,
    /// Events that passed the filter and time range.
    pub matched: u64,
    pub first_ts: Option<u64>,
    pub last_ts: Option<u64>,
    /// The first damaged or unknown block: the capture is incomplete (what could be read
    /// around the damage was used).
    pub error: Option<ScapError>,
    /// How many damaged or unknown blocks there were.
    pub damaged_blocks: u64,
}

impl Outcome {
    /// Adds what was read to a view's JSON table: events read and matched, whether the
    /// capture was whole, and how many blocks were damaged.
    pub fn annotate(&self, table: &mut serde_json::Value) {
        table["events_read"] = self.events.into();
        table["events_matched"] = self.matched.into();
        table["complete"] = self.error.is_none().into();
        table["damaged_blocks"] = self.damaged_blocks.into();
    }
}

/// Streams `replay` through `views`; `progress` is called now and then with the bytes read.
pub fn scan<R: Read>(
    replay: &mut Replay<R>,
    scope: &Scope,
    views: &mut [Box<dyn View>],
    progress: impl FnMut(u64),
) -> Outcome {
    scan_streaming(replay, scope, views, progress, None)
}

/// [`scan`], handing `rows` each view's final rows now and then when given (see
/// [`View::drain`]); without it every row stays in the views' tables.
pub fn scan_streaming<R: Read>(
    replay: &mut Replay<R>,
    scope: &Scope,
    views: &mut [Box<dyn View>],
    mut progress: impl FnMut(u64),
    mut rows: Option<&mut dyn FnMut(Vec<Vec<crate::report::Cell>>)>,
) -> Outcome {
    let mut out = Outcome::default();
    while let Some(num) = replay.next_event() {
        out.events += 1;
        if out.events.is_multiple_of(4096) {
            progress(replay.offset());
            if let Some(rows) = rows.as_mut() {
                for v in views.iter_mut() {
                    let r = v.drain();
                    if !r.is_empty() {
                        rows(r);
                    }
                }
            }
        }
        let Some(rec) = replay.current() else {
            continue;
        };
        let ts = rec.ts();
        let first = *out.first_ts.get_or_insert(ts);
        out.last_ts = Some(ts);
        if !scope.in_range(ts, first) {
            continue;
        }
        let Some(ev) = Ev::new(num, rec, &replay.state) else {
            continue;
        };
        if !scope.filter.matches(&ev, first) {
            continue;
        }
        out.matched += 1;
        for v in views.iter_mut() {
            v.event(&ev);
        }
    }
    for v in views.iter_mut() {
        v.known(&replay.state);
    }
    out.error = replay.error.take();
    out.damaged_blocks = replay.damage_count;
    out
}
