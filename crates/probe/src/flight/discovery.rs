//! How the node agent's recorder finds containers itself (no runtime announces them): a
//! process caught in a watched pod's cgroup is located in its kubelet container cgroup and
//! named by the pods the API server reported.

use std::path::PathBuf;
use std::sync::Arc;

use crashscope_model::capture::{ContainerRef, WrittenCapture};

use super::window::{Buffer, State};
use crate::cgroup::ContainerCgroup;

/// Names a container found by its cgroup (the node agent asks the pods the API server
/// reported); None while the API has not told yet.
pub type Resolve = Arc<dyn Fn(&ContainerCgroup) -> Option<ContainerRef> + Send + Sync>;
/// Told when a container found by cgroup died: who, how (exit code, 128 + signal), and the
/// capture written for it (None when none was due: exit 0, or the rate limit).
pub type OnDeath =
    Arc<dyn Fn(ContainerRef, i32, Option<Result<WrittenCapture, String>>) + Send + Sync>;

/// Finds the kubelet container cgroup of a cgroup v2 id (the node agent looks among its
/// pods' cgroup directories).
pub type Locate = Arc<dyn Fn(u64) -> Option<ContainerCgroup> + Send + Sync>;

/// How the node agent finds and names containers (rather than a runtime announcing them).
pub struct Discovery {
    /// Where `/proc` is (the agent's view of the host's processes).
    pub proc: PathBuf,
    pub locate: Locate,
    pub resolve: Resolve,
    pub on_death: OnDeath,
}

impl State {
    /// A process the probe caught executing inside a watched pod's cgroup: the container
    /// its cgroup names (a new instance when the container id is new; this process is then
    /// its first).
    pub(super) fn discover(&mut self, pid: u32, cgroup: u64) -> Option<u64> {
        let d = self.discovery.clone()?;
        // 0: no cgroup id (a record from before ids were recorded); never a container's.
        if let Some(k) = self.by_cgroup.get(&cgroup).copied().filter(|_| cgroup != 0) {
            self.owner.insert(pid, k);
            return Some(k);
        }
        if self.strangers.contains(&pid) {
            return None;
        }
        // By the record's cgroup id first: a container that dies within milliseconds is gone
        // from /proc by the time its first record is read, but its cgroup lingers.
        let by_id = (d.locate)(cgroup);
        let cg = by_id.or_else(|| {
            let text = std::fs::read_to_string(d.proc.join(pid.to_string()).join("cgroup")).ok()?;
            crate::cgroup::memberships(&text)
                .iter()
                .find_map(|m| crate::cgroup::container_of(&m.path))
        });
        let Some(cg) = cg else {
            self.strangers.insert(pid);
            return None;
        };
        let key = match self.by_container.get(&cg.container_id) {
            Some(k) => *k,
            None => self.found(&d, cg, pid),
        };
        if cgroup != 0 {
            self.by_cgroup.insert(cgroup, key);
        }
        self.owner.insert(pid, key);
        Some(key)
    }

    /// Starts recording a container found by cgroup whose first process is `root`.
    pub(super) fn found(&mut self, d: &Discovery, cg: ContainerCgroup, root: u32) -> u64 {
        self.next += 1;
        let key = self.next;
        let who = (d.resolve)(&cg).unwrap_or_else(|| ContainerRef {
            pod_uid: cg.pod_uid.clone(),
            ..ContainerRef::default()
        });
        let mut b = Buffer::new(who, cg.container_id.clone());
        b.root = Some(root);
        b.cgroup = Some(cg.clone());
        self.buffers.insert(key, b);
        self.by_container.insert(cg.container_id, key);
        key
    }
}
