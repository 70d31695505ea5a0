//! `timeline`: activity per time bucket — events, file, network, process and error counts,
//! a bar to see the shape at a glance — with marks for what changed the story (process
//! starts and deaths, signals, container events).

use std::collections::BTreeMap;

use crate::event::{exit_status, signal_name, Ev};
use crate::report::{Cell, Table};
use crate::scan::View;

#[derive(Default, Clone)]
struct Bucket {
    events: u64,
    file: u64,
    net: u64,
    process: u64,
    errors: u64,
    marks: Vec<String>,
}

impl Bucket {
    fn merge(&mut self, o: Bucket) {
        self.events += o.events;
        self.file += o.file;
        self.net += o.net;
        self.process += o.process;
        self.errors += o.errors;
        self.marks.extend(o.marks);
    }
}

/// Buckets start 1 ms wide and double whenever there are too many, so memory stays bounded
/// however long the capture is; at the end they are merged to the requested width.
pub struct Timeline {
    width: u64,
    fixed: Option<u64>,
    buckets: BTreeMap<u64, Bucket>,
}

const MAX_BUCKETS: usize = 4096;
const MAX_MARKS: usize = 8;

impl Timeline {
    pub fn new(fixed: Option<u64>) -> Timeline {
        Timeline {
            width: fixed.unwrap_or(1_000_000).max(1),
            fixed,
            buckets: BTreeMap::new(),
        }
    }

    fn rebucket(&mut self, width: u64) {
        let old = std::mem::take(&mut self.buckets);
        for (start, b) in old {
            self.buckets
                .entry(start / width * width)
                .or_default()
                .merge(b);
        }
        self.width = width;
    }
}

fn mark(ev: &Ev) -> Option<String> {
    // Built only for the few events that are marks.
    let who = || format!("{}({})", ev.proc_name(), ev.pid());
    match ev.info.name.as_str() {
        "procexit" => {
            let t = ev.thread()?;
            if t.tid != t.pid {
                return None;
            }
            Some(match exit_status(ev) {
                (_, Some(sig)) => format!("{} killed by {}", who(), signal_name(sig)),
                (Some(code), _) => format!("{} exited {code}", who()),
                _ => format!("{} exited", who()),
            })
        }
        "execve" | "execveat" if ev.res() == Some(0) => Some(format!("{} exec", who())),
        "signaldeliver" => Some(format!(
            "{} to {}",
            signal_name(ev.num_param("sig").unwrap_or(0)),
            who()
        )),
        "container" => Some("container metadata".into()),
        _ => None,
    }
}

impl View for Timeline {
    fn event(&mut self, ev: &Ev) {
        let b = self
            .buckets
            .entry(ev.ts() / self.width * self.width)
            .or_default();
        b.events += 1;
        match crate::fields::category(ev) {
            "file" => b.file += 1,
            "net" => b.net += 1,
            "process" | "signal" => b.process += 1,
            _ => match ev.fd().map(|f| f.kind) {
                Some('f' | 'd') => b.file += 1,
                Some('4' | '6' | 'u') => b.net += 1,
                _ => {}
            },
        }
        if ev.failed() {
            b.errors += 1;
        }
        if let Some(m) = mark(ev) {
            if b.marks.len() < MAX_MARKS {
                b.marks.push(m);
            } else if b.marks.len() == MAX_MARKS {
                b.marks.push("…".into());
            }
        }
        if self.fixed.is_none() && self.buckets.len() > MAX_BUCKETS {
            self.rebucket(self.width * 2);
        }
    }

    fn finish(mut self: Box<Self>) -> Table {
        if self.fixed.is_none() {
            let span = match (self.buckets.keys().next(), self.buckets.keys().last()) {
                (Some(a), Some(b)) => b - a + self.width,
                _ => 0,
            };
            // About 30 rows, on a round width: 1, 2 or 5 times a power of ten.
            let want = (span / 30).max(self.width);
            let mut w = 1u64;
            'outer: loop {
                for m in [1, 2, 5] {
                    if w * m >= want {
                        w *= m;
                        break 'outer;
                    }
                }
                w *= 10;
            }
            let w = w.div_ceil(self.width) * self.width;
            self.rebucket(w);
        }
        let max = self.buckets.values().map(|b| b.events).max().unwrap_or(0);
        let mut t = Table::new(
            "timeline",
            &[
                "time", "events", "file", "net", "process", "errors", "activity", "marks",
            ],
        );
        for (start, b) in &self.buckets {
            t.push(vec![
                Cell::Time(*start),
                Cell::Count(b.events),
                Cell::Count(b.file),
                Cell::Count(b.net),
                Cell::Count(b.process),
                Cell::Count(b.errors),
                Cell::Bar(b.events, max),
                if b.marks.is_empty() {
                    Cell::Empty
                } else {
                    b.marks.join("; ").into()
                },
            ]);
        }
        t.notes.push(format!(
            "bucket width {}",
            crate::report::duration(self.width)
        ));
        t
    }
}
