//! What was true at each event: the thread table (seeded from process-list blocks, updated by
//! clone, execve and procexit) and each process's fd table (seeded from fd-list blocks, updated
//! by open/openat/openat2/creat, socket, connect, accept, pipe, dup and close). Threads are in
//! `threads`, descriptors and their names in `fds`, how each event changes them in `apply`.

mod apply;
mod enters;
mod fds;
mod fdtable;
mod threads;

use std::collections::HashMap;

use crate::intmap::IntMap;

use crate::block::{EventRecord, FdInfo, ThreadInfo};
use crate::event::{as_str, param, params};

pub use fds::{addr_name, tuple_name, Fd};
pub use fdtable::FdTable;
pub use threads::Thread;

/// Threads and fds, advanced event by event. Serialisable: an index of a capture keeps the
/// state at points to resume reading from.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct State {
    pub threads: IntMap<Thread>,
    /// fd tables by process id (threads of a process share them).
    pub fds: IntMap<FdTable>,
    /// Each thread's last enter event (for exits that lack its parameters), and whether
    /// its exit was already applied.
    enters: enters::Enters,
    /// Containers by id, from the container metadata events.
    pub containers: HashMap<String, Container>,
    /// Counts changes of the thread table: a view that copies what it needs of a process
    /// copies it again only when this moved (most events change nothing).
    #[serde(default)]
    generation: u64,
}

/// A container as the capture's metadata events describe it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub image: String,
    pub labels: std::collections::BTreeMap<String, String>,
    /// The kubelet's attempt (restart) number, when the name carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
}

/// The labels the kubelet's CRI runtimes set, which docker-era captures lack.
const POD_NAME: &str = "io.kubernetes.pod.name";
const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
const POD_UID: &str = "io.kubernetes.pod.uid";
const CONTAINER_NAME: &str = "io.kubernetes.container.name";

impl Container {
    /// Fills the kubelet's labels from a dockershim container name when the record has none:
    /// `k8s_<container>[.<hash>]_<pod>_<namespace>_<uid>_<attempt>` (the `.hash` form is the
    /// kubelet's before 1.5). Kubernetes names cannot hold `_`, so the split is exact.
    fn decode_kubelet_name(&mut self) {
        if self.labels.contains_key(POD_NAME) {
            return;
        }
        let name = self.name.trim_start_matches('/');
        let Some(rest) = name.strip_prefix("k8s_") else {
            return;
        };
        let parts: Vec<&str> = rest.split('_').collect();
        let [container, pod, namespace, uid, attempt] = parts[..] else {
            return;
        };
        let container = container.split('.').next().unwrap_or(container);
        if container.is_empty() || pod.is_empty() || namespace.is_empty() {
            return;
        }
        for (k, v) in [
            (CONTAINER_NAME, container),
            (POD_NAME, pod),
            (POD_NAMESPACE, namespace),
            (POD_UID, uid),
        ] {
            self.labels.insert(k.to_string(), v.to_string());
        }
        self.attempt = attempt.parse().ok();
    }

    /// A label's value, e.g. the kubelet's `io.kubernetes.pod.name`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// Parses libsinsp's container JSON (`{"container": {"id": ..., "name": ...}}`).
    pub fn from_json(json: &str) -> Option<Container> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        let c = v.get("container")?;
        let s = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        let labels = c
            .get("labels")
            .and_then(|l| l.as_object())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let id = s("id");
        (!id.is_empty()).then(|| Container {
            id,
            name: s("name"),
            image: s("image"),
            labels,
            attempt: None,
        })
    }
}

impl State {
    /// A new section: everything known so far is replaced.
    pub fn reset(&mut self) {
        let generation = self.generation + 1;
        *self = State::default();
        self.generation = generation;
    }

    /// Changes with every change of the thread table (see the field).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn add_threads(&mut self, list: Vec<ThreadInfo>) {
        self.generation += 1;
        self.threads.reserve(list.len());
        for t in list {
            self.threads.insert(
                t.tid,
                Thread {
                    tid: t.tid,
                    pid: t.pid,
                    ptid: t.ptid,
                    comm: t.comm,
                    exe: t.exe,
                    args: t.args,
                    cwd: t.cwd,
                    uid: t.uid,
                    gid: t.gid,
                    vpid: t.vpid,
                    cgroups: t.cgroups,
                    container: Default::default(),
                },
            );
        }
    }

    pub fn add_fds(&mut self, tid: i64, list: &[FdInfo]) {
        let pid = self.pid_of(tid);
        let table = self.fds.entry(pid).or_default();
        for f in list {
            table.insert(f.fd, Fd::from_info(f));
        }
    }

    fn pid_of(&self, tid: i64) -> i64 {
        self.threads
            .get(&tid)
            .map(|t| t.pid)
            .filter(|p| *p > 0)
            .unwrap_or(tid)
    }

    #[inline]
    pub fn thread(&self, tid: i64) -> Option<&Thread> {
        self.threads.get(&tid)
    }

    pub fn fd(&self, tid: i64, fd: i64) -> Option<&Fd> {
        self.fds.get(&self.pid_of(tid))?.get(&fd)
    }

    /// The enter event matching an exit event of the same thread, if it was the last enter.
    /// The enter event of `exit` while the exit is being applied.
    pub fn enter_of(&self, exit: &EventRecord) -> Option<&EventRecord> {
        self.enters
            .get(exit.tid())
            .filter(|(e, done)| !done && e.event_type() + 1 == exit.event_type())
            .map(|(e, _)| e)
    }

    /// The enter event that went with `exit`, also after the exit was applied (what an
    /// exit event lacks, e.g. a read's fd, is on its enter).
    pub fn paired_enter(&self, exit: &EventRecord) -> Option<&EventRecord> {
        self.enters
            .get(exit.tid())
            .filter(|(e, _)| e.raw.len() >= 26 && e.event_type() + 1 == exit.event_type())
            .map(|(e, _)| e)
    }

    /// A parameter of an exit event, falling back to its enter event.
    fn exit_param(&self, rec: &EventRecord, name: &str) -> Option<Vec<u8>> {
        let ps = params(rec);
        if let Some(v) = param(rec, &ps, name) {
            return Some(v.to_vec());
        }
        let enter = self.enter_of(rec)?;
        let eps = params(enter);
        param(enter, &eps, name).map(<[u8]>::to_vec)
    }

    /// Every container the state knows: from metadata records and from threads' cgroups.
    pub fn container_ids(&self) -> std::collections::BTreeSet<&str> {
        let mut ids: std::collections::BTreeSet<&str> =
            self.containers.keys().map(String::as_str).collect();
        ids.extend(
            self.threads
                .values()
                .map(|t| t.container_id())
                .filter(|id| !id.is_empty()),
        );
        ids
    }

    /// Records a container metadata event (new JSON form, or the old id/name/image one).
    fn add_container(&mut self, rec: &EventRecord) {
        let ps = params(rec);
        let c = match param(rec, &ps, "json") {
            Some(j) => Container::from_json(&as_str(j)),
            None => param(rec, &ps, "id").map(|id| Container {
                id: as_str(id),
                name: param(rec, &ps, "name").map(as_str).unwrap_or_default(),
                image: param(rec, &ps, "image").map(as_str).unwrap_or_default(),
                ..Container::default()
            }),
        };
        if let Some(mut c) = c {
            c.decode_kubelet_name();
            self.containers.insert(c.id.clone(), c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generation_moves_with_the_thread_table_only() {
        let mut s = State::default();
        let g = s.generation();
        s.add_threads(vec![ThreadInfo {
            tid: 7,
            pid: 7,
            comm: "app".into(),
            ..ThreadInfo::default()
        }]);
        let seeded = s.generation();
        assert_ne!(seeded, g);
        // A read's exit changes no thread.
        s.apply(&EventRecord::build(
            1,
            7,
            7,
            &[&4i64.to_le_bytes(), b"data"],
        ));
        assert_eq!(s.generation(), seeded);
        // The process exits: its thread is gone.
        s.apply(&EventRecord::build(2, 7, 186, &[]));
        assert!(s.thread(7).is_none());
        let exited = s.generation();
        assert_ne!(exited, seeded);
        // A new section never brings an old generation back.
        s.reset();
        assert!(s.generation() > exited);
    }

    #[test]
    fn dockershim_names_give_the_pod_namespace_container_and_attempt() {
        for (name, container) in [
            (
                "k8s_haproxy.6f8b1a2c_haproxy-ingress-3k2x9_kube-system_0a1b2c3d-1111_4",
                "haproxy",
            ),
            (
                "/k8s_haproxy_haproxy-ingress-3k2x9_kube-system_0a1b2c3d-1111_4",
                "haproxy",
            ),
        ] {
            let mut c = Container {
                id: "abc".into(),
                name: name.into(),
                ..Container::default()
            };
            c.decode_kubelet_name();
            assert_eq!(c.label(CONTAINER_NAME), Some(container));
            assert_eq!(c.label(POD_NAME), Some("haproxy-ingress-3k2x9"));
            assert_eq!(c.label(POD_NAMESPACE), Some("kube-system"));
            assert_eq!(c.label(POD_UID), Some("0a1b2c3d-1111"));
            assert_eq!(c.attempt, Some(4));
        }
        for other in ["nginx", "k8s_a_b", "k8s_a__ns_uid_0", "my_app_1"] {
            let mut c = Container {
                name: other.into(),
                ..Container::default()
            };
            c.decode_kubelet_name();
            assert!(c.labels.is_empty(), "{other}");
        }
        // CRI labels win over the name.
        let mut c = Container {
            name: "k8s_a_b_c_d_0".into(),
            labels: [(POD_NAME.to_string(), "real".to_string())].into(),
            ..Container::default()
        };
        c.decode_kubelet_name();
        assert_eq!(c.label(POD_NAME), Some("real"));
    }
}
