//! The flight recorder: the probe follows every container of the local runtime from its
//! first system call; the last seconds of each container's records stay in memory, and when
//! a container dies with a non-zero code or a signal, the window before its death plus a
//! short tail is written as a self-contained `.scap` (container metadata and the processes
//! it ran first, then the events) — the recording is already there when the alert fires.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crashscope_model::capture::{
    CaptureName, CaptureReport, ContainerRecorder, ContainerRef, WrittenCapture,
};
use crashscope_scap::block::ThreadInfo;
use crashscope_scap::build::string;

use crate::cgroup::ContainerCgroup;
use crate::fdtable::FdTable;
use crate::probe::{Config, Probe, ProbeError, Target};
use crate::record::{Kind, Record};
use crate::syscalls;
use crate::writer::CaptureWriter;

/// How much is kept and written.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Seconds before death a capture covers.
    pub before: Duration,
    /// How long after death a capture waits (the ring buffer drains, children still running
    /// die with the container). Short, because a diagnosis waits for the capture.
    pub after: Duration,
    /// Bytes of records kept per container; the oldest go first.
    pub max_bytes: usize,
    /// At most one capture per container within this long (a fast crash loop would
    /// otherwise write one per restart).
    pub min_interval: Duration,
    pub snaplen: u32,
    /// Record programs' environments (execve); off by default: they hold secrets.
    pub env: bool,
    /// Hook system-call entry too (each call's duration; every process pays a second hook).
    pub latency: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            before: Duration::from_secs(30),
            after: Duration::from_secs(1),
            max_bytes: 64 << 20,
            min_interval: Duration::from_secs(60),
            snaplen: 256,
            env: false,
            latency: false,
        }
    }
}

/// What a process did last that a capture's process list needs.
#[derive(Debug, Clone, Default)]
struct Seen {
    comm: String,
    exe: String,
    args: Vec<String>,
    ppid: u32,
}

/// One container instance's recent records.
struct Buffer {
    who: ContainerRef,
    records: VecDeque<(u64, Vec<u8>)>,
    bytes: usize,
    procs: HashMap<u32, Seen>,
    /// Container id (64 hex digits) used in the capture's cgroups and metadata.
    id: String,
    /// When recording of this instance began.
    started: Instant,
    /// The container's first process, for containers found by cgroup: its exit is the
    /// container's death (nobody here waits for it).
    root: Option<u32>,
    /// The kubelet cgroup it was found in.
    cgroup: Option<ContainerCgroup>,
    /// Open descriptors as of the oldest record kept.
    base: FdTable,
}

impl Buffer {
    fn new(who: ContainerRef, id: String) -> Buffer {
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
        }
    }
}

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

#[derive(Default)]
struct State {
    /// Process → container instance (key into `buffers`).
    owner: HashMap<u32, u64>,
    buffers: HashMap<u64, Buffer>,
    next: u64,
    /// Last capture per (namespace, pod, container), for the rate limit.
    last_capture: HashMap<(String, String, String), Instant>,
    /// Pods (namespace, name) a capture was requested for: their next failure is written
    /// whatever the rate limit says.
    requested: HashMap<(String, String), usize>,
    /// The last capture written per (namespace, pod, container), for requests to collect.
    written: HashMap<(String, String, String), (Instant, ContainerRef, WrittenCapture)>,
    discovery: Option<Arc<Discovery>>,
    /// Container id → instance, for containers found by cgroup.
    by_container: HashMap<String, u64>,
    /// Containers whose first process ended: (instance, exit code), for the reader to act on.
    deaths: Vec<(u64, i32)>,
    /// Processes found in no container cgroup (asked once, not at every record).
    strangers: std::collections::HashSet<u32>,
    /// Container cgroup v2 id → instance.
    by_cgroup: HashMap<u64, u64>,
}

/// The exit code a shell would report from the kernel's wait status.
fn exit_code(status: i64) -> i32 {
    let sig = (status & 0x7f) as i32;
    if sig != 0 {
        128 + sig
    } else {
        ((status >> 8) & 0xff) as i32
    }
}

/// The recorder, as the runtime's hooks hold it (cheap to clone).
#[derive(Clone)]
pub struct FlightRecorder(Arc<Inner>);

/// What the hooks and the reader thread share.
struct Inner {
    probe: Arc<Probe>,
    state: Arc<Mutex<State>>,
    limits: Limits,
    dir: PathBuf,
    stop: Arc<AtomicBool>,
}

fn container_id(who: &ContainerRef) -> String {
    use std::hash::{Hash, Hasher};
    (0..4)
        .map(|i| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (i, &who.pod_uid, &who.container, who.instance).hash(&mut h);
            format!("{:016x}", h.finish())
        })
        .collect()
}

impl State {
    fn add(&mut self, raw: &[u8], limits: &Limits) {
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
    }
}

impl State {
    /// A process the probe caught executing inside a watched pod's cgroup: the container
    /// its cgroup names (a new instance when the container id is new; this process is then
    /// its first).
    fn discover(&mut self, pid: u32, cgroup: u64) -> Option<u64> {
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
    fn found(&mut self, d: &Discovery, cg: ContainerCgroup, root: u32) -> u64 {
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

impl FlightRecorder {
    /// Loads the probe (watching nothing yet) and starts reading it; captures go to `dir`.
    pub fn start(dir: PathBuf, limits: Limits) -> Result<FlightRecorder, ProbeError> {
        Self::launch(dir, limits, Target::Pids(Vec::new()), None)
    }

    /// The node agent's recorder: containers are found in the pods' cgroups given to
    /// [`FlightRecorder::watch_pod`] (or [`FlightRecorder::adopt`]ed when already running),
    /// named by `resolve`, and each death is told to `on_death` with its capture.
    pub fn discovering(
        dir: PathBuf,
        limits: Limits,
        discovery: Discovery,
    ) -> Result<FlightRecorder, ProbeError> {
        let target = Target::Cgroups {
            ids: Vec::new(),
            pids: Vec::new(),
        };
        Self::launch(dir, limits, target, Some(Arc::new(discovery)))
    }

    fn launch(
        dir: PathBuf,
        limits: Limits,
        target: Target,
        discovery: Option<Arc<Discovery>>,
    ) -> Result<FlightRecorder, ProbeError> {
        let probe = Arc::new(Probe::start(&Config {
            target,
            snaplen: limits.snaplen,
            ring_bytes: 64 << 20,
            env: limits.env,
            latency: limits.latency,
        })?);
        let state: Arc<Mutex<State>> = Arc::new(Mutex::new(State {
            discovery,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let me = FlightRecorder(Arc::new(Inner {
            probe: probe.clone(),
            state: state.clone(),
            limits: limits.clone(),
            dir,
            stop: stop.clone(),
        }));
        // Weak: the reader must not keep the recorder alive (dropping it stops the reader).
        let inner: Weak<Inner> = Arc::downgrade(&me.0);
        std::thread::Builder::new()
            .name("flight-recorder".into())
            .spawn(move || {
                let r = probe.run(
                    |raw| {
                        let deaths = match state.lock() {
                            Ok(mut s) => {
                                s.add(raw, &limits);
                                std::mem::take(&mut s.deaths)
                            }
                            Err(_) => return,
                        };
                        if let Some(inner) = inner.upgrade() {
                            for (key, code) in deaths {
                                inner.found_died(key, code);
                            }
                        }
                    },
                    || !stop.load(Ordering::Relaxed),
                );
                if let Err(e) = r {
                    tracing::error!("flight recorder stopped: {e}");
                }
            })
            .map_err(|e| ProbeError::Thread(e.to_string()))?;
        Ok(me)
    }
}

impl Inner {
    /// Writes the window of container instance `key` around `death` (boot ns), and forgets
    /// the instance.
    fn dump(&self, key: u64, death: u64) -> Result<WrittenCapture, String> {
        let taken = {
            let mut s = self.state.lock().map_err(|_| "recorder state poisoned")?;
            s.resolved(key);
            let Some(b) = s.buffers.remove(&key) else {
                return Err("nothing was recorded for this container".into());
            };
            s.forget(key);
            b
        };
        let who = taken.who.clone();
        let path = self.dir.join(CaptureName::of(&who, None).file_name());
        let written = self.write(&taken, death, path)?;
        if let Ok(mut s) = self.state.lock() {
            s.written.insert(
                (
                    who.namespace.clone(),
                    who.pod.clone(),
                    who.container.clone(),
                ),
                (Instant::now(), who, written.clone()),
            );
        }
        Ok(written)
    }

    /// Writes the window of a running container instance up to now, keeping it recorded.
    fn copy(&self, key: u64, seq: u64) -> Result<WrittenCapture, String> {
        let now = crate::writer::clock_ns(libc::CLOCK_BOOTTIME).max(0) as u64;
        let copy = {
            let s = self.state.lock().map_err(|_| "recorder state poisoned")?;
            let Some(b) = s.buffers.get(&key) else {
                return Err("the container is no longer recorded".into());
            };
            Buffer {
                who: b.who.clone(),
                records: b.records.clone(),
                bytes: b.bytes,
                procs: b.procs.clone(),
                id: b.id.clone(),
                started: b.started,
                root: b.root,
                cgroup: b.cgroup.clone(),
                base: b.base.clone(),
            }
        };
        let who = &copy.who;
        let path = self.dir.join(CaptureName::of(who, Some(seq)).file_name());
        self.write(&copy, now, path)
    }

    /// Writes `b`'s records of the window ending at `end` (boot ns) to `path`.
    fn write(&self, b: &Buffer, end: u64, path: PathBuf) -> Result<WrittenCapture, String> {
        let from = end.saturating_sub(self.limits.before.as_nanos() as u64);
        let mut window: Vec<&(u64, Vec<u8>)> =
            b.records.iter().filter(|(ts, _)| *ts >= from).collect();
        // The ring buffer interleaves CPUs: a child's exec can arrive before its parent's
        // fork returns, and a reader replaying out of order names the child after its
        // parent. Written in time order, the file replays as it happened.
        window.sort_by_key(|(ts, _)| *ts);
        // Descriptors opened before the window: the base moved past the older records.
        let mut fds = b.base.clone();
        for (_, raw) in b.records.iter().filter(|(ts, _)| *ts < from) {
            if let Ok(r) = Record::parse(raw) {
                fds.apply(&r);
            }
        }
        let records: Vec<&Vec<u8>> = window.into_iter().map(|(_, r)| r).collect();
        let (who, id, procs) = (&b.who, &b.id, &b.procs);
        let death = end;
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let cgroup = format!("cpu=/crashscope/{id}");
        let threads: Vec<ThreadInfo> = procs
            .iter()
            .map(|(pid, p)| ThreadInfo {
                tid: i64::from(*pid),
                pid: i64::from(*pid),
                ptid: i64::from(p.ppid),
                comm: p.comm.clone(),
                exe: p.exe.clone(),
                exepath: p.exe.clone(),
                args: p.args.clone(),
                cwd: "/".into(),
                vtid: i64::from(*pid),
                vpid: i64::from(*pid),
                cgroups: vec![cgroup.clone()],
                root: "/".into(),
                ..ThreadInfo::default()
            })
            .collect();
        let file = std::fs::File::create(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let io = |e: std::io::Error| format!("writing {}: {e}", path.display());
        let mut w =
            CaptureWriter::with_threads(std::io::BufWriter::new(file), threads, &fds, vec![cgroup])
                .map_err(io)?;
        w.set_snaplen(self.limits.snaplen);
        let meta = serde_json::json!({"container": {
            "id": &id[..12], "name": who.container, "image": who.image, "type": 0,
            "labels": {
                "io.kubernetes.pod.name": who.pod,
                "io.kubernetes.pod.namespace": who.namespace,
                "io.kubernetes.pod.uid": who.pod_uid,
                "io.kubernetes.container.name": who.container,
            }
        }});
        let first_ts = records
            .first()
            .and_then(|r| Record::parse(r).ok())
            .map_or(death, |r| r.boot_ns);
        w.meta_event(first_ts, 324, &[&string(&meta.to_string())])
            .map_err(io)?;
        for r in &records {
            w.record(r).map_err(io)?;
        }
        let counters = self.probe.counters().unwrap_or_default();
        let (buffered, summary) = w.finish(counters, 0).map_err(io)?;
        drop(buffered.into_inner().map_err(|e| io(e.into_error()))?);
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let epoch = crate::writer::boot_epoch_ns();
        let wall = |boot_ns: u64| {
            jiff::Timestamp::from_nanosecond(i128::from(epoch) + i128::from(boot_ns))
                .unwrap_or_else(|_| jiff::Timestamp::now())
        };
        let from = death.saturating_sub(self.limits.before.as_nanos() as u64);
        Ok(WrittenCapture {
            path,
            from: wall(from.max(first_ts.min(death))),
            to: jiff::Timestamp::now(),
            events: summary.events,
            drops: counters.dropped,
            bytes,
        })
    }
}

type Conclusion = Box<dyn FnOnce(Option<Result<WrittenCapture, String>>) + Send>;

impl Inner {
    /// A container instance ended: unless it ended well or was captured a moment ago, its
    /// window is written once the tail has been recorded. `report` gets the capture, or
    /// None when none was due.
    fn conclude(
        self: &Arc<Self>,
        key: Option<u64>,
        who: ContainerRef,
        exit_code: i32,
        report: Conclusion,
    ) {
        let death = crate::writer::clock_ns(libc::CLOCK_BOOTTIME).max(0) as u64;
        {
            let Ok(mut s) = self.state.lock() else {
                return;
            };
            let k = (
                who.namespace.clone(),
                who.pod.clone(),
                who.container.clone(),
            );
            let wanted = s
                .requested
                .contains_key(&(who.namespace.clone(), who.pod.clone()));
            let recent = !wanted
                && s.last_capture
                    .get(&k)
                    .is_some_and(|t| t.elapsed() < self.limits.min_interval);
            if exit_code != 0 && !recent {
                s.last_capture.insert(k, Instant::now());
            }
            if exit_code == 0 || recent {
                // Nothing to explain (or explained a moment ago): forget this instance.
                if let Some(k) = key {
                    s.forget(k);
                }
                drop(s);
                report(None);
                return;
            }
        }
        let Some(key) = key else {
            report(Some(Err("the container was not being recorded".into())));
            return;
        };
        let me = self.clone();
        let after = self.limits.after;
        std::thread::spawn(move || {
            std::thread::sleep(after);
            report(Some(me.dump(key, death)));
        });
    }

    /// The first process of a container found by cgroup ended.
    fn found_died(self: &Arc<Self>, key: u64, exit_code: i32) {
        let (who, on_death) = {
            let Ok(mut s) = self.state.lock() else { return };
            let Some(d) = s.discovery.clone() else { return };
            let Some(who) = s.resolved(key) else { return };
            (who, d.on_death.clone())
        };
        let told = who.clone();
        self.conclude(
            Some(key),
            who,
            exit_code,
            Box::new(move |r| on_death(told, exit_code, r)),
        );
    }
}

impl State {
    /// Forgets a container instance and its processes.
    fn forget(&mut self, key: u64) {
        if let Some(b) = self.buffers.remove(&key) {
            if let Some(cg) = b.cgroup {
                self.by_container.remove(&cg.container_id);
            }
        }
        self.owner.retain(|_, v| *v != key);
        self.by_cgroup.retain(|_, v| *v != key);
    }

    /// Who a found container is, asking again if the API had not told yet.
    fn resolved(&mut self, key: u64) -> Option<ContainerRef> {
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

impl FlightRecorder {
    /// Watches a pod's cgroup (v2 id): each new container of the pod is recorded from its
    /// first program on.
    pub fn watch_pod(&self, cgroup_id: u64) -> Result<(), ProbeError> {
        self.0.probe.watch_cgroup(cgroup_id)
    }

    /// Stops watching a pod's cgroup (the pod is gone).
    pub fn unwatch_pod(&self, cgroup_id: u64) {
        self.0.probe.unwatch_cgroup(cgroup_id);
    }

    /// Records a container that was already running when it was found: `root` is its
    /// first process (its death is the container's), `pids` all of its processes now.
    pub fn adopt(&self, cg: &ContainerCgroup, root: u32, pids: &[u32]) -> Result<(), ProbeError> {
        {
            let Ok(mut s) = self.0.state.lock() else {
                return Ok(());
            };
            let Some(d) = s.discovery.clone() else {
                return Ok(());
            };
            if s.by_container.contains_key(&cg.container_id) {
                return Ok(());
            }
            let key = s.found(&d, cg.clone(), root);
            for p in pids {
                s.owner.insert(*p, key);
            }
            if let Some(b) = s.buffers.get_mut(&key) {
                for p in pids {
                    b.base.seed(&d.proc, *p);
                }
            }
        }
        for p in pids {
            self.0.probe.watch(*p)?;
        }
        Ok(())
    }

    /// Whether a container (by id) is being recorded.
    pub fn knows(&self, container_id: &str) -> bool {
        self.0
            .state
            .lock()
            .is_ok_and(|s| s.by_container.contains_key(container_id))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl ContainerRecorder for FlightRecorder {
    fn created(&self, pid: i32, who: &ContainerRef) {
        let me = &self.0;
        let Ok(pid) = u32::try_from(pid) else { return };
        if let Ok(mut s) = me.state.lock() {
            s.next += 1;
            let key = s.next;
            s.owner.insert(pid, key);
            let mut b = Buffer::new(who.clone(), container_id(who));
            // Held before exec: its stdout and stderr are the container's log already.
            b.base.seed(std::path::Path::new("/proc"), pid);
            s.buffers.insert(key, b);
        }
        if let Err(e) = me.probe.watch(pid) {
            tracing::warn!("cannot record container {}: {e}", who.container);
        }
    }

    fn ended(
        &self,
        pid: i32,
        who: &ContainerRef,
        exit_code: i32,
        report: Box<dyn FnOnce(Result<WrittenCapture, String>) + Send>,
    ) {
        let key = u32::try_from(pid).ok().and_then(|p| {
            let s = self.0.state.lock().ok()?;
            s.owner.get(&p).copied()
        });
        self.0.conclude(
            key,
            who.clone(),
            exit_code,
            Box::new(move |r| {
                if let Some(r) = r {
                    report(r);
                }
            }),
        );
    }

    fn snapshot(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        wait: Duration,
        give_up: Duration,
        report: CaptureReport,
    ) {
        let me = self.0.clone();
        let pod_key = (namespace.to_string(), pod.to_string());
        let container = container.map(str::to_string);
        let started = Instant::now();
        if let Ok(mut s) = me.state.lock() {
            *s.requested.entry(pod_key.clone()).or_default() += 1;
        }
        std::thread::spawn(move || {
            let matches = |who: &ContainerRef| {
                who.namespace == pod_key.0
                    && who.pod == pod_key.1
                    && container.as_ref().is_none_or(|c| c == &who.container)
            };
            let (written, live) = loop {
                std::thread::sleep(Duration::from_millis(100));
                let Ok(s) = me.state.lock() else {
                    report(Vec::new());
                    return;
                };
                let written: Vec<(ContainerRef, WrittenCapture)> = s
                    .written
                    .values()
                    .filter(|(at, who, _)| *at >= started && matches(who))
                    .map(|(_, who, w)| (who.clone(), w.clone()))
                    .collect();
                let elapsed = started.elapsed();
                let live: Vec<(u64, ContainerRef)> = s
                    .buffers
                    .iter()
                    .filter(|(_, b)| matches(&b.who))
                    .filter(|(_, b)| elapsed >= give_up || b.started.elapsed() >= wait)
                    .map(|(k, b)| (*k, b.who.clone()))
                    .collect();
                let done = !written.is_empty() || (elapsed >= wait && !live.is_empty());
                if done || elapsed >= give_up {
                    let live = if written.is_empty() { live } else { Vec::new() };
                    break (written, live);
                }
            };
            if let Ok(mut s) = me.state.lock() {
                if let Some(n) = s.requested.get_mut(&pod_key) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        s.requested.remove(&pod_key);
                    }
                }
            }
            let mut out: Vec<(ContainerRef, Result<WrittenCapture, String>)> =
                written.into_iter().map(|(who, w)| (who, Ok(w))).collect();
            let seq = u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or(0);
            for (key, who) in live {
                out.push((who, me.copy(key, seq)));
            }
            report(out);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::raw;

    fn rec(ts_s: u64, pid: u32, ppid: u32, nr: u16, slot: &[u8]) -> Vec<u8> {
        // A successful exec's argv length is in args[5]; other calls ignore it.
        let mut b = raw(1, nr, 0, [0, 0, 0, 0, 0, slot.len() as u64], [slot, b""]);
        b[0..8].copy_from_slice(&(ts_s * 1_000_000_000).to_le_bytes());
        b[12..16].copy_from_slice(&pid.to_le_bytes());
        b[16..20].copy_from_slice(&ppid.to_le_bytes());
        b
    }

    fn state_with_container(root: u32) -> State {
        let mut s = State::default();
        s.owner.insert(root, 1);
        let who = ContainerRef {
            namespace: "default".into(),
            pod: "nginx-1".into(),
            pod_uid: "u".into(),
            container: "nginx".into(),
            image: "nginx:1.27".into(),
            instance: 0,
        };
        s.buffers.insert(1, Buffer::new(who, "0".repeat(64)));
        s
    }

    #[test]
    fn children_belong_to_the_container_and_strangers_are_ignored() {
        let limits = Limits::default();
        let mut s = state_with_container(100);
        s.add(&rec(1, 100, 1, 0, b""), &limits);
        s.add(&rec(2, 101, 100, 0, b""), &limits); // a child of the container's process
        s.add(&rec(3, 102, 101, 0, b""), &limits); // a grandchild
        s.add(&rec(4, 999, 1, 0, b""), &limits); // someone else
        assert_eq!(s.buffers[&1].records.len(), 3);
        assert_eq!(s.owner.get(&102), Some(&1));
        assert!(!s.owner.contains_key(&999));
    }

    #[test]
    fn old_records_and_excess_bytes_are_dropped_first() {
        let limits = Limits {
            before: Duration::from_secs(30),
            after: Duration::from_secs(5),
            max_bytes: 10_000,
            ..Limits::default()
        };
        let mut s = state_with_container(100);
        for t in 0..100 {
            s.add(&rec(t, 100, 1, 0, b""), &limits);
        }
        // Only the last 35 s (window + tail) remain.
        let b = &s.buffers[&1];
        assert_eq!(b.records.front().map(|r| r.0 / 1_000_000_000), Some(64));
        // A burst beyond the byte budget keeps the newest.
        for _ in 0..200 {
            s.add(&rec(100, 100, 1, 0, &[7u8; 100]), &limits);
        }
        let b = &s.buffers[&1];
        assert!(b.bytes <= limits.max_bytes, "{}", b.bytes);
        assert_eq!(
            b.records.back().map(|r| r.1.len()),
            Some(crate::record::HEADER + 100)
        );
    }

    #[test]
    fn exec_is_remembered_for_the_process_list() {
        let limits = Limits::default();
        let mut s = state_with_container(100);
        s.add(
            &rec(1, 100, 1, syscalls::EXECVE, b"nginx\0-g\0daemon off;\0"),
            &limits,
        );
        let p = &s.buffers[&1].procs[&100];
        assert_eq!(p.exe, "nginx");
        assert_eq!(p.args, vec!["-g", "daemon off;"]);
    }

    #[test]
    fn exit_codes_read_like_a_shell_reads_them() {
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(11), 139); // SIGSEGV
        assert_eq!(exit_code(9 | 0x80), 137); // SIGKILL (the OOM killer), core flag set
    }

    #[test]
    fn a_process_in_a_pod_cgroup_starts_a_container_and_its_first_process_ends_it() {
        let proc = tempfile::tempdir().unwrap();
        let id = "4d1f7c0e6b2a9c8d3e5f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d";
        let uid = "8a5f3c1e-2b4d-4e6f-9a1b-3c5d7e9f1a2b";
        let path = format!("0::/kubepods/besteffort/pod{uid}/{id}\n");
        for pid in [500, 501] {
            std::fs::create_dir_all(proc.path().join(pid.to_string())).unwrap();
            std::fs::write(proc.path().join(format!("{pid}/cgroup")), &path).unwrap();
        }
        std::fs::create_dir_all(proc.path().join("600")).unwrap();
        std::fs::write(
            proc.path().join("600/cgroup"),
            "0::/system.slice/sshd.service\n",
        )
        .unwrap();
        let named = Arc::new(Mutex::new(false));
        let knows = named.clone();
        let resolve: Resolve = Arc::new(move |cg: &ContainerCgroup| {
            (*knows.lock().unwrap()).then(|| ContainerRef {
                namespace: "default".into(),
                pod: "web-1".into(),
                pod_uid: cg.pod_uid.clone(),
                container: "web".into(),
                image: "nginx".into(),
                instance: 2,
            })
        });
        let on_death: OnDeath = Arc::new(|_, _, _| {});
        let mut s = State {
            discovery: Some(Arc::new(Discovery {
                proc: proc.path().to_path_buf(),
                locate: Arc::new(|_| None),
                resolve,
                on_death,
            })),
            ..State::default()
        };
        let limits = Limits::default();
        s.add(&rec(1, 500, 1, 0, b""), &limits); // the container's first process
        s.add(&rec(2, 501, 77, 0, b""), &limits); // kubectl exec: same container
        s.add(&rec(3, 600, 1, 0, b""), &limits); // not a container
        assert_eq!(s.buffers.len(), 1);
        let key = s.by_container[id];
        assert_eq!(s.buffers[&key].records.len(), 2);
        assert_eq!(s.buffers[&key].who.pod_uid, uid);
        // Not named yet: asked again when it matters.
        assert_eq!(s.resolved(key).map(|w| w.container), Some(String::new()));
        *named.lock().unwrap() = true;
        assert_eq!(s.resolved(key).map(|w| w.container), Some("web".into()));
        // The exec'd process ending is not the container's death; the first one is.
        let mut exit = rec(4, 501, 77, 0, b"");
        exit[8..12].copy_from_slice(&501u32.to_le_bytes());
        exit[20] = 2;
        s.add(&exit, &limits);
        assert!(s.deaths.is_empty());
        let mut exit = rec(5, 500, 1, 0, b"");
        exit[8..12].copy_from_slice(&500u32.to_le_bytes());
        exit[20] = 2;
        exit[32..40].copy_from_slice(&(1i64 << 8).to_le_bytes());
        s.add(&exit, &limits);
        assert_eq!(s.deaths, vec![(key, 1)]);
        s.forget(key);
        assert!(s.by_container.is_empty() && s.owner.is_empty());
    }
}
