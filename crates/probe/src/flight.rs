//! The flight recorder: the probe follows every container of the local runtime from its
//! first system call; the last seconds of each container's records stay in memory, and when
//! a container dies with a non-zero code or a signal, the window before its death plus a
//! short tail is written as a self-contained `.scap` (container metadata and the processes
//! it ran first, then the events) — the recording is already there when the alert fires.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crashscope_local::kubelet::{CaptureReport, ContainerRecorder, ContainerRef, WrittenCapture};
use crashscope_scap::block::ThreadInfo;
use crashscope_scap::build::string;

use crate::capture::CaptureWriter;
use crate::probe::{Config, Probe, ProbeError, Target};
use crate::record::{Kind, Record};
use crate::syscalls;

/// How much is kept and written.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Seconds before death a capture covers.
    pub before: Duration,
    /// Seconds after death a capture waits for (children still running, final writes).
    pub after: Duration,
    /// Bytes of records kept per container; the oldest go first.
    pub max_bytes: usize,
    /// At most one capture per container within this long (a fast crash loop would
    /// otherwise write one per restart).
    pub min_interval: Duration,
    pub snaplen: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            before: Duration::from_secs(30),
            after: Duration::from_secs(5),
            max_bytes: 64 << 20,
            min_interval: Duration::from_secs(60),
            snaplen: 256,
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
                None => return,
            },
        };
        let Some(b) = self.buffers.get_mut(&key) else {
            return;
        };
        note_process(b, &r);
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
            b.records.pop_front();
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
    if seen.comm != r.comm {
        seen.comm = r.comm.to_string();
    }
    if r.kind == Kind::Exit
        && (r.nr == syscalls::EXECVE || r.nr == syscalls::EXECVEAT)
        && r.ret == 0
    {
        let argv = crate::convert::argv(r.slots[0].unwrap_or(&[]));
        seen.exe = argv.first().cloned().unwrap_or_default();
        seen.args = argv.into_iter().skip(1).collect();
    }
}

impl FlightRecorder {
    /// Loads the probe (watching nothing yet) and starts reading it; captures go to `dir`.
    pub fn start(dir: PathBuf, limits: Limits) -> Result<FlightRecorder, ProbeError> {
        let probe = Arc::new(Probe::start(&Config {
            target: Target::Pids(Vec::new()),
            snaplen: limits.snaplen,
            ring_bytes: 64 << 20,
        })?);
        let state: Arc<Mutex<State>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let me = FlightRecorder(Arc::new(Inner {
            probe: probe.clone(),
            state: state.clone(),
            limits: limits.clone(),
            dir,
            stop: stop.clone(),
        }));
        std::thread::Builder::new()
            .name("flight-recorder".into())
            .spawn(move || {
                let r = probe.run(
                    |raw| {
                        if let Ok(mut s) = state.lock() {
                            s.add(raw, &limits);
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
            let Some(b) = s.buffers.remove(&key) else {
                return Err("nothing was recorded for this container".into());
            };
            s.owner.retain(|_, k| *k != key);
            b
        };
        let who = taken.who.clone();
        let path = self.dir.join(format!(
            "{}_{}_{}_{}.scap",
            who.namespace, who.pod, who.container, who.instance
        ));
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
        let now = crate::capture::clock_ns(libc::CLOCK_BOOTTIME).max(0) as u64;
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
            }
        };
        let who = &copy.who;
        let path = self.dir.join(format!(
            "{}_{}_{}_{}-request-{seq}.scap",
            who.namespace, who.pod, who.container, who.instance
        ));
        self.write(&copy, now, path)
    }

    /// Writes `b`'s records of the window ending at `end` (boot ns) to `path`.
    fn write(&self, b: &Buffer, end: u64, path: PathBuf) -> Result<WrittenCapture, String> {
        let from = end.saturating_sub(self.limits.before.as_nanos() as u64);
        let records: Vec<&Vec<u8>> = b
            .records
            .iter()
            .filter(|(ts, _)| *ts >= from)
            .map(|(_, r)| r)
            .collect();
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
            CaptureWriter::with_threads(std::io::BufWriter::new(file), threads, vec![cgroup])
                .map_err(io)?;
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
        let epoch = crate::capture::boot_epoch_ns();
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
            s.buffers.insert(
                key,
                Buffer {
                    who: who.clone(),
                    records: VecDeque::new(),
                    bytes: 0,
                    procs: HashMap::new(),
                    id: container_id(who),
                    started: Instant::now(),
                },
            );
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
        let death = crate::capture::clock_ns(libc::CLOCK_BOOTTIME).max(0) as u64;
        let inner = &self.0;
        let key = {
            let Ok(mut s) = inner.state.lock() else {
                return;
            };
            let key = u32::try_from(pid)
                .ok()
                .and_then(|p| s.owner.get(&p).copied());
            let limited = {
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
                        .is_some_and(|t| t.elapsed() < inner.limits.min_interval);
                if exit_code != 0 && !recent {
                    s.last_capture.insert(k, Instant::now());
                }
                recent
            };
            if exit_code == 0 || limited {
                // Nothing to explain (or explained a moment ago): forget this instance.
                if let Some(k) = key {
                    s.buffers.remove(&k);
                    s.owner.retain(|_, v| *v != k);
                }
                return;
            }
            key
        };
        let Some(key) = key else {
            report(Err("the container was not being recorded".into()));
            return;
        };
        let me = inner.clone();
        let after = inner.limits.after;
        std::thread::spawn(move || {
            std::thread::sleep(after);
            report(me.dump(key, death));
        });
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
        let mut b = raw(1, nr, 0, [0; 6], [slot, b""]);
        b[0..8].copy_from_slice(&(ts_s * 1_000_000_000).to_le_bytes());
        b[12..16].copy_from_slice(&pid.to_le_bytes());
        b[16..20].copy_from_slice(&ppid.to_le_bytes());
        b
    }

    fn state_with_container(root: u32) -> State {
        let mut s = State::default();
        s.owner.insert(root, 1);
        s.buffers.insert(
            1,
            Buffer {
                who: ContainerRef {
                    namespace: "default".into(),
                    pod: "nginx-1".into(),
                    pod_uid: "u".into(),
                    container: "nginx".into(),
                    image: "nginx:1.27".into(),
                    instance: 0,
                },
                records: VecDeque::new(),
                bytes: 0,
                procs: HashMap::new(),
                id: "0".repeat(64),
                started: Instant::now(),
            },
        );
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
}
