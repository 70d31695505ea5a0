//! `errors`: failed system calls grouped by errno × syscall × process × path or address,
//! with first and last occurrence (sysdig's `topprocs_errors` and `topfiles_errors`).
//! Failures the process never got past (no later success on the same path or address)
//! come first: one ENOENT that killed a program must not sink under a hundred locale
//! probes. Start-up noise every program makes is left out unless `--all`.

use std::borrow::Cow;
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
    /// A later call of the same process on the same target succeeded.
    recovered: bool,
}

type Key = (String, String, String, String);

pub struct Errors {
    groups: HashMap<Key, Group>,
    /// The groups of each process and target, to mark them recovered on a success (nested,
    /// so that looking a success up allocates nothing).
    by_target: HashMap<String, HashMap<String, Vec<Key>>>,
    top: Option<usize>,
    all: bool,
}

impl Errors {
    pub fn new(top: Option<usize>, all: bool) -> Errors {
        Errors {
            groups: HashMap::new(),
            by_target: HashMap::new(),
            top,
            all,
        }
    }
}

/// Failures every program meets on its way up and that explain no crash: the dynamic
/// loader's optional files, locale and character-set probes, nscd's socket, `isatty` on a
/// pipe. Views put them aside unless asked for everything.
pub fn is_noise(target: &str, errno: &str) -> bool {
    errno.starts_with("ENOTTY")
        || target.starts_with("/etc/ld.so.")
        || target.contains("/locale")
        || target.contains("/gconv/")
        || target.contains("/nscd")
}

/// What a failed call was about: the fd's name, the path it named, or the address.
pub fn target<'a>(ev: &Ev<'a>) -> Cow<'a, str> {
    if let Some(f) = ev.fd().filter(|f| !f.name.is_empty()) {
        return Cow::Borrowed(&f.name);
    }
    if let Some(p) = ev.path() {
        return Cow::Owned(p);
    }
    if let Some(a) = ev.param("addr").and_then(addr_name) {
        return Cow::Owned(a);
    }
    if let Some((_, t)) = ev.param("tuple").and_then(tuple_name) {
        return Cow::Owned(t);
    }
    Cow::Borrowed("")
}

impl View for Errors {
    fn event(&mut self, ev: &Ev) {
        // A failed non-blocking connect counts too: its error comes through getsockopt.
        let Some(res) = ev.res().filter(|r| *r < 0).or_else(|| ev.pending_error()) else {
            if ev.res().is_some() && !self.by_target.is_empty() {
                let t = target(ev);
                if !t.is_empty() {
                    let keys = self
                        .by_target
                        .get(ev.proc_name())
                        .and_then(|m| m.get(t.as_ref()));
                    for k in keys.into_iter().flatten() {
                        if let Some(g) = self.groups.get_mut(k) {
                            g.recovered = true;
                        }
                    }
                }
            }
            return;
        };
        let key = (
            errno_text(res),
            ev.name().to_string(),
            ev.proc_name().to_string(),
            target(ev).into_owned(),
        );
        if !self.all && is_noise(&key.3, &key.0) {
            return;
        }
        let g = match self.groups.get_mut(&key) {
            Some(g) => g,
            None => {
                if !key.3.is_empty() {
                    self.by_target
                        .entry(key.2.clone())
                        .or_default()
                        .entry(key.3.clone())
                        .or_default()
                        .push(key.clone());
                }
                self.groups.entry(key).or_insert_with(|| Group {
                    first: ev.ts(),
                    ..Group::default()
                })
            }
        };
        g.count += 1;
        g.last = ev.ts();
        g.recovered = false;
        g.pids.insert(ev.pid());
    }

    fn finish(self: Box<Self>) -> Table {
        let mut groups: Vec<_> = self.groups.into_iter().collect();
        groups.sort_by(|a, b| {
            a.1.recovered
                .cmp(&b.1.recovered)
                .then(b.1.count.cmp(&a.1.count))
                .then(a.1.first.cmp(&b.1.first))
        });
        super::truncate(&mut groups, self.top);
        let mut t = Table::new(
            "errors",
            &[
                "count",
                "errno",
                "syscall",
                "process",
                "pids",
                "target",
                "recovered",
                "first",
                "last",
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
                    target.clone().into()
                },
                if target.is_empty() {
                    Cell::Empty
                } else if g.recovered {
                    "yes".into()
                } else {
                    "no".into()
                },
                Cell::Time(g.first),
                Cell::Time(g.last),
            ]);
        }
        t
    }
}
