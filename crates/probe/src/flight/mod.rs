//! The flight recorder: the probe follows every container of the local runtime from its
//! first system call; the last seconds of each container's records stay in memory, and when
//! a container dies with a non-zero code or a signal, the window before its death plus a
//! short tail is written as a self-contained `.scap` (container metadata and the processes
//! it ran first, then the events) — the recording is already there when the alert fires.
//!
//! This module holds the recorder and the decision at a container's death; the windows are
//! in `window`, how the node agent finds containers in `discovery`, captures asked for in
//! `requests`, and the file written in `write`.

mod discovery;
mod requests;
mod window;
mod write;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crashscope_model::capture::{CaptureReport, ContainerRecorder, ContainerRef, WrittenCapture};

pub use discovery::{Discovery, Locate, OnDeath, Resolve};
use window::{Buffer, State};

use crate::cgroup::ContainerCgroup;
use crate::probe::{Config, Probe, ProbeError, Target};

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
            ring_bytes: crate::probe::default_ring_bytes(),
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

    fn note(&self, pid: i32, id: &str, text: String) {
        let Ok(pid) = u32::try_from(pid) else { return };
        let now = crate::writer::clock_ns(libc::CLOCK_BOOTTIME).max(0) as u64;
        if let Ok(mut s) = self.0.state.lock() {
            let Some(key) = s.owner.get(&pid).copied() else {
                return;
            };
            if let Some(b) = s.buffers.get_mut(&key) {
                b.notes.push((now, pid, id.to_string(), text));
            }
        }
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
        requests::snapshot(&self.0, namespace, pod, container, wait, give_up, report);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::raw;
    use crate::syscalls;

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
