//! Each recorded container instance's window: its recent records (the oldest go first, by
//! age and by bytes), what its processes are, and the descriptors open as of the window's
//! start — plus which process belongs to which instance.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use crashscope_model::capture::{ContainerRef, WrittenCapture};

use super::discovery::Discovery;
use super::{exit_code, Limits};
use crate::cgroup::ContainerCgroup;
use crate::fdtable::FdTable;
use crate::record::{Kind, Record};
use crate::syscalls;

/// What a process did last that a capture's process list needs.
#[derive(Debug, Clone, Default)]
pub(super) struct Seen {
    pub(super) comm: String,
    pub(super) exe: String,
    pub(super) args: Vec<String>,
    pub(super) ppid: u32,
}

/// One container instance's recent records.
pub(super) struct Buffer {
    pub(super) who: ContainerRef,
    pub(super) records: VecDeque<(u64, Vec<u8>)>,
    pub(super) bytes: usize,
    pub(super) procs: HashMap<u32, Seen>,
    /// Container id (64 hex digits) used in the capture's cgroups and metadata.
    pub(super) id: String,
    /// When recording of this instance began.
    pub(super) started: Instant,
    /// The container's first process, for containers found by cgroup: its exit is the
    /// container's death (nobody here waits for it).
    pub(super) root: Option<u32>,
    /// The kubelet cgroup it was found in.
    pub(super) cgroup: Option<ContainerCgroup>,
    /// Open descriptors as of the oldest record kept.
    pub(super) base: FdTable,
    /// What the runtime said about the instance: (boot ns, pid, notification id, text).
    pub(super) notes: Vec<(u64, u32, String, String)>,
}

impl Buffer {
    pub(super) fn new(who: ContainerRef, id: String) -> Buffer {
        Buffer {
            who,
            records: VecDeque::new(),
            bytes: 0,
            procs: HashMap::new(),
            id,
            started: Instant::now(),
            root: None,
            cgroup: None,
            base: FdTable::default(),
            notes: Vec::new(),
        }
    }
}

#[derive(Default)]
pub(super) struct State {
    /// Process → container instance (key into `buffers`).
    pub(super) owner: HashMap<u32, u64>,
    pub(super) buffers: HashMap<u64, Buffer>,
    pub(super) next: u64,
    /// Last capture per (namespace, pod, container), for the rate limit.
    pub(super) last_capture: HashMap<(String, String, String), Instant>,
    /// Pods (namespace, name) a capture was requested for: their next failure is written
    /// whatever the rate limit says.
    pub(super) requested: HashMap<(String, String), usize>,
    /// The last capture written per (namespace, pod, container), for requests to collect.
    pub(super) written: HashMap<(String, String, String), (Instant, ContainerRef, WrittenCapture)>,
    pub(super) discovery: Option<Arc<Discovery>>,
    /// Container id → instance, for containers found by cgroup.
    pub(super) by_container: HashMap<String, u64>,
    /// Containers whose first process ended: (instance, exit code), for the reader to act on.
    pub(super) deaths: Vec<(u64, i32)>,
    /// Processes found in no container cgroup (asked once, not at every record).
    pub(super) strangers: std::collections::HashSet<u32>,
    /// Container cgroup v2 id → instance.
    pub(super) by_cgroup: HashMap<u64, u64>,
}

impl State {
    pub(super) fn add(&mut self, raw: &[u8], limits: &Limits) {
        let Ok(r) = Record::parse(raw) else { return };
        let key = match self.owner.get(&r.pid) {
            Some(k) => *k,
            None => match self.owner.get(&r.ppid).copied() {
                // A child of a container process belongs to the container.
                Some(k) => {
                    self.owner.insert(r.pid, k);
                    k
                }
                None => match self.discover(r.pid, r.cgroup) {
                    Some(k) => k,
                    None => return,
                },
            },
        };
        let Some(b) = self.buffers.get_mut(&key) else {
            return;
        };
        note_process(b, &r);
        if r.kind == Kind::ProcExit && r.tid == r.pid && b.root == Some(r.pid) {
            self.deaths.push((key, exit_code(r.args[0] as i64)));
        }
        b.bytes += raw.len();
        b.records.push_back((r.boot_ns, raw.to_vec()));
        let horizon = r
            .boot_ns
            .saturating_sub((limits.before + limits.after).as_nanos() as u64);
        while let Some((ts, rec)) = b.records.front() {
            if *ts >= horizon && b.bytes <= limits.max_bytes {
                break;
            }
            b.bytes -= rec.len();
            if let Ok(old) = Record::parse(rec) {
                b.base.apply(&old);
            }
            b.records.pop_front();
        }
        if !b.notes.is_empty() {
            let oldest = b.records.front().map_or(0, |(ts, _)| *ts);
            b.notes.retain(|n| n.0 >= oldest);
        }
    }
}

/// Keeps what the process list of a later capture needs: who a process is after exec.
fn note_process(b: &mut Buffer, r: &Record) {
    let seen = b.procs.entry(r.pid).or_insert_with(|| Seen {
        ppid: r.ppid,
        ..Seen::default()
    });
    // Every record passes here: allocate only when the name changed (exec, prctl).
    if !r.comm.is_empty() && seen.comm != r.comm {
        seen.comm = r.comm.to_string();
    }
    if r.kind == Kind::Call
        && (r.nr == syscalls::EXECVE || r.nr == syscalls::EXECVEAT)
        && r.ret == 0
    {
        let (argv, _) = crate::convert::exec_strings(r);
        seen.exe = argv.first().cloned().unwrap_or_default();
        seen.args = argv.into_iter().skip(1).collect();
    }
}

impl State {
    /// Forgets a container instance and its processes.
    pub(super) fn forget(&mut self, key: u64) {
        if let Some(b) = self.buffers.remove(&key) {
            if let Some(cg) = b.cgroup {
                self.by_container.remove(&cg.container_id);
            }
        }
        self.owner.retain(|_, v| *v != key);
        self.by_cgroup.retain(|_, v| *v != key);
    }

    /// Who a found container is, asking again if the API had not told yet.
    pub(super) fn resolved(&mut self, key: u64) -> Option<ContainerRef> {
        let resolve = self.discovery.as_ref().map(|d| d.resolve.clone());
        let b = self.buffers.get_mut(&key)?;
        if b.who.container.is_empty() {
            if let (Some(resolve), Some(cg)) = (resolve, &b.cgroup) {
                if let Some(who) = resolve(cg) {
                    b.who = who;
                }
            }
        }
        Some(b.who.clone())
    }
}
