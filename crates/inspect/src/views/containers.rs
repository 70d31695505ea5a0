//! `containers`: every container a capture knows (and the host) — those that acted, those
//! only its metadata records or its processes' cgroups name (0 events) — with what the
//! metadata says about them (pod and namespace also from dockershim names) and their
//! lifecycle: first and last activity, and how the main process died.

use std::collections::{BTreeMap, HashSet};

use crate::event::{exit_status, signal_name, Ev};
use crate::report::{Cell, Table};
use crate::scan::View;

#[derive(Default)]
struct Seen {
    name: String,
    image: String,
    pod: String,
    namespace: String,
    first: u64,
    last: u64,
    pids: HashSet<i64>,
    events: u64,
    /// (time, exit code, signal) of the main process's exit.
    died: Option<(u64, Option<i64>, Option<i64>)>,
    /// The lowest namespace pid seen: the container's main process when it is 1.
    main_pid: Option<(i64, i64)>,
}

impl Seen {
    fn describe(&mut self, c: &crashscope_scap::state::Container) {
        self.name.clone_from(&c.name);
        self.image.clone_from(&c.image);
        self.pod = c.label("io.kubernetes.pod.name").unwrap_or("").to_string();
        self.namespace = c
            .label("io.kubernetes.pod.namespace")
            .unwrap_or("")
            .to_string();
    }
}

#[derive(Default)]
pub struct Containers {
    by_id: BTreeMap<String, Seen>,
}

impl View for Containers {
    fn event(&mut self, ev: &Ev) {
        let id = ev.container_id();
        if !self.by_id.contains_key(id) {
            self.by_id.insert(
                id.to_string(),
                Seen {
                    first: ev.ts(),
                    ..Seen::default()
                },
            );
        }
        let Some(s) = self.by_id.get_mut(id) else {
            return;
        };
        s.last = ev.ts();
        s.events += 1;
        if let Some(c) = ev.container() {
            s.describe(c);
        }
        let Some(t) = ev.thread() else {
            return;
        };
        s.pids.insert(t.pid);
        if id == "host" {
            return;
        }
        if let Some(p) = ev.process() {
            // The process with the lowest pid inside the container's namespace is its main one.
            let vpid = if p.vpid > 0 { p.vpid } else { i64::MAX };
            if s.main_pid
                .is_none_or(|(v, pid)| vpid < v || (vpid == v && p.pid < pid))
            {
                s.main_pid = Some((vpid, p.pid));
            }
        }
        if ev.info.name == "procexit" && t.tid == t.pid {
            let main = s.main_pid.map(|(_, pid)| pid);
            if main == Some(t.pid) {
                let (code, sig) = exit_status(ev);
                s.died = Some((ev.ts(), code, sig));
            }
        }
    }

    fn known(&mut self, state: &crashscope_scap::state::State) {
        for id in state.container_ids() {
            let s = self.by_id.entry(id.to_string()).or_default();
            if let Some(c) = state.containers.get(id).filter(|_| s.name.is_empty()) {
                s.describe(c);
            }
        }
    }

    fn finish(self: Box<Self>) -> Table {
        let mut t = Table::new(
            "containers",
            &[
                "container id",
                "name",
                "image",
                "pod",
                "namespace",
                "first seen",
                "last seen",
                "status",
                "lifetime",
                "processes",
                "events",
            ],
        );
        for (id, s) in self.by_id {
            let status = match s.died {
                Some((_, _, Some(sig))) => format!("killed by {}", signal_name(sig)),
                Some((_, Some(code), _)) => format!("exited {code}"),
                Some(_) => "exited".into(),
                None => "running".into(),
            };
            let idle = s.events == 0;
            let end = s.died.map(|d| d.0).unwrap_or(s.last);
            let opt = |v: String| {
                if v.is_empty() {
                    Cell::Empty
                } else {
                    Cell::Text(v)
                }
            };
            let name = if id == "host" && s.name.is_empty() {
                "host".to_string()
            } else {
                s.name
            };
            t.push(vec![
                id.into(),
                opt(name),
                opt(s.image),
                opt(s.pod),
                opt(s.namespace),
                if idle {
                    Cell::Empty
                } else {
                    Cell::Time(s.first)
                },
                if idle {
                    Cell::Empty
                } else {
                    Cell::Time(s.last)
                },
                if idle { "idle".into() } else { status.into() },
                if idle {
                    Cell::Empty
                } else {
                    Cell::Duration(end.saturating_sub(s.first))
                },
                Cell::Count(s.pids.len() as u64),
                Cell::Count(s.events),
            ]);
        }
        t
    }
}
