//! `containers`: the containers a capture saw (and the host), with what the metadata says
//! about them and their lifecycle — first and last activity, and how the main process died.

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
            s.name.clone_from(&c.name);
            s.image.clone_from(&c.image);
            s.pod = c.label("io.kubernetes.pod.name").unwrap_or("").to_string();
            s.namespace = c
                .label("io.kubernetes.pod.namespace")
                .unwrap_or("")
                .to_string();
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
                Cell::Time(s.first),
                Cell::Time(s.last),
                status.into(),
                Cell::Duration(end.saturating_sub(s.first)),
                Cell::Count(s.pids.len() as u64),
                Cell::Count(s.events),
            ]);
        }
        t
    }
}
