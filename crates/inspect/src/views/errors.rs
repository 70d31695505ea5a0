//! `errors`: failed system calls grouped by errno × syscall × process × path or address,
//! with first and last occurrence (sysdig's `topprocs_errors` and `topfiles_errors`).

use std::collections::HashMap;

use crashscope_scap::state::{addr_name, tuple_name};

use crate::event::{errno_text, Ev};
use crate::report::{Cell, Table};
use crate::scan::View;

#[derive(Default)]
struct Group {
    count: u64,
    first: u64,
    last: u64,
    pids: std::collections::BTreeSet<i64>,
}

pub struct Errors {
    groups: HashMap<(String, String, String, String), Group>,
    top: Option<usize>,
}

impl Errors {
    pub fn new(top: Option<usize>) -> Errors {
        Errors {
            groups: HashMap::new(),
            top,
        }
    }
}

/// What a failed call was about: the fd's name, the path it named, or the address.
pub fn target(ev: &Ev) -> String {
    if let Some(f) = ev.fd().filter(|f| !f.name.is_empty()) {
        return f.name.clone();
    }
    if let Some(p) = ev.path() {
        return p;
    }
    if let Some(a) = ev.param("addr").and_then(addr_name) {
        return a;
    }
    if let Some((_, t)) = ev.param("tuple").and_then(tuple_name) {
        return t;
    }
    String::new()
}

impl View for Errors {
    fn event(&mut self, ev: &Ev) {
        // A failed non-blocking connect counts too: its error comes through getsockopt.
        let Some(res) = ev.res().filter(|r| *r < 0).or_else(|| ev.pending_error()) else {
            return;
        };
        let key = (
            errno_text(res),
            ev.name().to_string(),
            ev.proc_name().to_string(),
            target(ev),
        );
        let g = self.groups.entry(key).or_insert_with(|| Group {
            first: ev.ts(),
            ..Group::default()
        });
        g.count += 1;
        g.last = ev.ts();
        g.pids.insert(ev.pid());
    }

    fn finish(self: Box<Self>) -> Table {
        let mut groups: Vec<_> = self.groups.into_iter().collect();
        groups.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.1.first.cmp(&b.1.first)));
        super::truncate(&mut groups, self.top);
        let mut t = Table::new(
            "errors",
            &[
                "count", "errno", "syscall", "process", "pids", "target", "first", "last",
            ],
        );
        for ((errno, syscall, proc_, target), g) in groups {
            let pids: Vec<String> = g.pids.iter().map(|p| p.to_string()).collect();
            t.push(vec![
                Cell::Count(g.count),
                errno.into(),
                syscall.into(),
                proc_.into(),
                pids.join(",").into(),
                if target.is_empty() {
                    Cell::Empty
                } else {
                    target.into()
                },
                Cell::Time(g.first),
                Cell::Time(g.last),
            ]);
        }
        t
    }
}
