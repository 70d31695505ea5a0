//! Each thread's last syscall enter event, kept for the exit that follows it (what an exit
//! lacks, e.g. a read's fd, is on its enter), and whether an exit already took it. Asked for
//! nearly every event — once to store or close it, again by the views for the exit's fd —
//! so the slot of the thread asked for last is remembered: a thread making call after call
//! (most of a busy capture) is found without hashing.

use std::cell::Cell;

use crate::block::EventRecord;
use crate::intmap::IntMap;

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct Enters {
    slots: Vec<Slot>,
    /// Where each thread's slot is in `slots`.
    by_tid: IntMap<usize>,
    /// The thread asked for last and its slot.
    #[serde(skip)]
    last: Cell<Option<(i64, usize)>>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Slot {
    /// The enter (its thread is the slot's).
    rec: EventRecord,
    /// An exit was applied after this enter.
    done: bool,
}

impl Enters {
    #[inline]
    fn index(&self, tid: i64) -> Option<usize> {
        if let Some((t, i)) = self.last.get() {
            if t == tid {
                return Some(i);
            }
        }
        let i = *self.by_tid.get(&tid)?;
        self.last.set(Some((tid, i)));
        Some(i)
    }

    /// Thread `tid`'s last enter, and whether an exit took it already.
    #[inline]
    pub(super) fn get(&self, tid: i64) -> Option<(&EventRecord, bool)> {
        let s = &self.slots[self.index(tid)?];
        Some((&s.rec, s.done))
    }

    /// Keeps `rec` as its thread's last enter (in the thread's buffer: most enters replace
    /// the one before).
    #[inline]
    pub(super) fn set(&mut self, rec: &EventRecord) {
        let tid = rec.tid();
        match self.index(tid) {
            Some(i) => {
                let s = &mut self.slots[i];
                s.done = false;
                s.rec.cpu = rec.cpu;
                s.rec.flags = rec.flags;
                s.rec.raw.clear();
                s.rec.raw.extend_from_slice(&rec.raw);
            }
            None => {
                self.slots.push(Slot {
                    rec: rec.clone(),
                    done: false,
                });
                let i = self.slots.len() - 1;
                self.by_tid.insert(tid, i);
                self.last.set(Some((tid, i)));
            }
        }
    }

    /// An exit of thread `tid` was applied: its enter is taken.
    #[inline]
    pub(super) fn close(&mut self, tid: i64) {
        if let Some(i) = self.index(tid) {
            self.slots[i].done = true;
        }
    }

    /// Thread `tid` is gone.
    pub(super) fn remove(&mut self, tid: i64) {
        let Some(i) = self.by_tid.remove(&tid) else {
            return;
        };
        self.slots.swap_remove(i);
        if let Some(moved) = self.slots.get(i) {
            self.by_tid.insert(moved.rec.tid(), i);
        }
        self.last.set(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(tid: i64, code: u16, ts: u64) -> EventRecord {
        EventRecord::build(ts, tid, code, &[&ts.to_le_bytes()])
    }

    #[test]
    fn each_thread_keeps_its_last_enter_through_removals() {
        let mut e = Enters::default();
        for tid in 1..=5 {
            e.set(&rec(tid, 6, tid as u64));
        }
        e.set(&rec(3, 8, 30));
        e.close(2);
        // Removing a slot moves the last one into its place: every thread still finds its own.
        e.remove(1);
        e.remove(9);
        assert!(e.get(1).is_none());
        for (tid, code, ts, done) in [
            (2, 6, 2, true),
            (3, 8, 30, false),
            (4, 6, 4, false),
            (5, 6, 5, false),
        ] {
            let (r, d) = e.get(tid).unwrap();
            assert_eq!(
                (r.tid(), r.event_type(), r.ts(), d),
                (tid, code, ts, done),
                "thread {tid}"
            );
        }
        // A copy, asked in turns, finds the same.
        let copy = e.clone();
        for tid in [5, 2, 5, 4, 3, 3] {
            assert_eq!(copy.get(tid).map(|(r, _)| r.tid()), Some(tid));
        }
        e.remove(5);
        e.set(&rec(5, 10, 50));
        assert_eq!(e.get(5).map(|(r, _)| r.event_type()), Some(10));
        assert_eq!(e.get(4).map(|(r, _)| r.ts()), Some(4));
    }
}
