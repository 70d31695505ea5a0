//! One container's lifecycle: created, running, ended, backing off, restarted — per the
//! pod's restartPolicy and the kubelet's back-off — with the events and status changes the
//! kubelet reports at each step.

use crashscope_model::backoff::{crash_loop_message, BackoffState, Decision};
use crashscope_model::capture::ContainerRef;
use crashscope_model::EventType;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

use super::launch::{launch_spec, Refused};
use super::probes::run_probes;
use super::status::{condition, t, waiting};
use super::{log_path, sleep_or_stop, PodHandle, KILL_NOTE, OOM_NOTE};
use crate::spawn::{self, Exit};

/// The pod's restartPolicy as it applies to one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// The API server's default is Always.
    pub(super) fn of(policy: &str) -> RestartPolicy {
        match policy {
            "Never" => RestartPolicy::Never,
            "OnFailure" => RestartPolicy::OnFailure,
            _ => RestartPolicy::Always,
        }
    }

    /// Whether an ended container is started again. Init containers run until they succeed,
    /// so under Always they restart only on failure, like OnFailure.
    fn restarts(self, init: bool, success: bool) -> bool {
        match self {
            RestartPolicy::Never => false,
            RestartPolicy::OnFailure => !success,
            RestartPolicy::Always => !(init && success),
        }
    }
}

/// Where one container is in its life. The kubelet's restart count is `instance`: it rises
/// only when a back-off ends and a new instance is created, never for a refused creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lifecycle {
    /// Instance `instance` is to be created and started.
    Creating {
        instance: i32,
    },
    /// Its configuration could not be built (CreateContainerConfigError): nothing was
    /// created, restarts do not count, and the kubelet tries again.
    ConfigError {
        instance: i32,
    },
    Running {
        instance: i32,
    },
    /// Ended, and restarted once the back-off allows (CrashLoopBackOff meanwhile).
    BackOff {
        instance: i32,
    },
    /// Ended and not restarted; `success` is what an init container's successor waits on.
    Done {
        success: bool,
    },
    /// The pod is being stopped.
    Stopped,
}

/// What happened to the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Input {
    ConfigRefused,
    Started,
    /// The instance ended — exited, was killed, or could not start (StartError, code 128).
    Ended {
        success: bool,
    },
    RetryDue,
    BackOffOver,
    Stop,
}

impl Lifecycle {
    pub(super) fn step(self, input: Input, policy: RestartPolicy, init: bool) -> Lifecycle {
        use Lifecycle::*;
        match (self, input) {
            (Done { .. } | Stopped, _) => self,
            (_, Input::Stop) => Stopped,
            (Creating { instance }, Input::ConfigRefused) => ConfigError { instance },
            (Creating { instance }, Input::Started) => Running { instance },
            (Creating { instance } | Running { instance }, Input::Ended { success }) => {
                if policy.restarts(init, success) {
                    BackOff { instance }
                } else {
                    Done { success }
                }
            }
            (ConfigError { instance }, Input::RetryDue) => Creating { instance },
            (BackOff { instance }, Input::BackOffOver) => Creating {
                instance: instance + 1,
            },
            // Anything else cannot happen in this state; the state stands.
            (state, _) => state,
        }
    }
}

/// Bytes as MiB with one decimal, as people read memory limits.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// The termination message: the file the container wrote, or with FallbackToLogsOnError and a
/// failure, the tail of its log (at most 80 lines or 2 KiB, like the kubelet).
fn termination_message(
    c: &Container,
    pod_dir: &std::path::Path,
    log: &std::path::Path,
    code: i32,
) -> Option<String> {
    let file = std::fs::read(pod_dir.join("termination").join(&c.name)).unwrap_or_default();
    if !file.is_empty() {
        let n = file.len().min(4096);
        return Some(String::from_utf8_lossy(&file[..n]).into_owned());
    }
    if code != 0 && c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError") {
        let text = crashscope_model::logfile::plain(&std::fs::read(log).unwrap_or_default());
        let start = text.len().saturating_sub(2048);
        let tail = String::from_utf8_lossy(&text[start..]).into_owned();
        let lines: Vec<&str> = tail.lines().collect();
        let keep = lines[lines.len().saturating_sub(80)..].join("\n");
        return (!keep.is_empty()).then_some(keep);
    }
    None
}

/// Runs one container until the restart policy says it is done. Returns true when it ended
/// successfully (what init containers need).
pub(super) async fn run_container(
    h: &PodHandle,
    c: &Container,
    init: bool,
    policy: &str,
    vols: &BTreeMap<String, PathBuf>,
    pod_dir: &std::path::Path,
) -> bool {
    let mut stop = h.stop.subscribe();
    let (ns, pod_name, uid) = h.ids();
    let cref = Some((c.name.as_str(), init));
    let image = c.image.clone().unwrap_or_default();
    let mut backoff = BackoffState::Clear;
    // The instance being started, and how the one before it ended; both become visible in
    // the status together with the new instance's state, as the kubelet reports them.
    let policy = RestartPolicy::of(policy);
    let mut state = Lifecycle::Creating { instance: 0 };
    // How the last instance ended, for the next one's lastState and the back-off.
    let mut previous: Option<ContainerStateTerminated> = None;
    let restarted =
        |s: &mut ContainerStatus, instance: i32, previous: &Option<ContainerStateTerminated>| {
            s.restart_count = instance;
            if let Some(p) = previous {
                s.last_state = Some(ContainerState {
                    terminated: Some(p.clone()),
                    ..ContainerState::default()
                });
            }
        };
    loop {
        if *stop.borrow() {
            state = state.step(Input::Stop, policy, init);
        }
        let instance = match state {
            Lifecycle::Done { success } => return success,
            Lifecycle::Stopped => return false,
            Lifecycle::ConfigError { .. } => {
                let retry = h
                    .node
                    .scaled(Duration::from_secs(10))
                    .max(Duration::from_millis(100));
                let input = if sleep_or_stop(retry, &mut stop).await {
                    Input::Stop
                } else {
                    Input::RetryDue
                };
                state = state.step(input, policy, init);
                continue;
            }
            Lifecycle::BackOff { .. } => {
                let input = back_off(h, c, cref, &mut backoff, previous.as_ref(), &mut stop).await;
                state = state.step(input, policy, init);
                continue;
            }
            Lifecycle::Creating { instance } | Lifecycle::Running { instance } => instance,
        };
        let log = log_path(&h.node.data_dir, &ns, &pod_name, &uid, &c.name, instance);
        if let Some(dir) = log.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::remove_file(&log);
        h.emit(
            cref,
            "kubelet",
            EventType::Normal,
            "Pulled",
            format!("Container image {image:?} already present on machine"),
        );
        let started_at = Timestamp::now();
        let who = ContainerRef {
            namespace: ns.clone(),
            pod: pod_name.clone(),
            pod_uid: uid.clone(),
            container: c.name.clone(),
            image: image.clone(),
            instance,
        };
        let launched = launch_spec(h, c, vols, pod_dir, log.clone())
            .map(|mut spec| {
                if let Some(rec) = h.node.recorder.clone() {
                    let who = who.clone();
                    spec.on_created = Some(spawn::CreatedHook(Arc::new(move |pid| {
                        rec.created(pid, &who)
                    })));
                }
                spec
            })
            .and_then(|spec| spawn::launch(&spec).map_err(|e| Refused::Start(e.to_string())));
        let launched = match launched {
            Ok(r) => Ok(r),
            Err(refused) => {
                let (Refused::Start(msg) | Refused::Config(msg)) = &refused;
                h.emit(
                    cref,
                    "kubelet",
                    EventType::Warning,
                    "Failed",
                    format!("Error: {msg}"),
                );
                match refused {
                    Refused::Start(msg) => Err(msg),
                    // No container is created: the status waits with the kubelet's reason,
                    // restarts do not count, and the kubelet tries again at its next sync.
                    Refused::Config(msg) => {
                        h.set(&c.name, |s| {
                            s.state = Some(waiting("CreateContainerConfigError", Some(msg)));
                        });
                        state = state.step(Input::ConfigRefused, policy, init);
                        continue;
                    }
                }
            }
        };
        let (exit, term) = match launched {
            Err(msg) => {
                let term = ContainerStateTerminated {
                    reason: Some("StartError".into()),
                    exit_code: 128,
                    message: Some(msg.clone()),
                    started_at: Some(t(Timestamp::UNIX_EPOCH)),
                    finished_at: Some(t(Timestamp::now())),
                    ..ContainerStateTerminated::default()
                };
                h.set(&c.name, |s| {
                    restarted(s, instance, &previous);
                    s.state = Some(waiting("RunContainerError", Some(msg)));
                });
                (
                    Exit {
                        code: 128,
                        signal: None,
                        oom_killed: false,
                        memory: None,
                    },
                    term,
                )
            }
            Ok(running) => {
                h.emit(
                    cref,
                    "kubelet",
                    EventType::Normal,
                    "Created",
                    format!("Created container: {}", c.name),
                );
                h.emit(
                    cref,
                    "kubelet",
                    EventType::Normal,
                    "Started",
                    format!("Started container {}", c.name),
                );
                state = state.step(Input::Started, policy, init);
                let cid = format!("crashscope://{}", running.pid);
                h.set(&c.name, |s| {
                    restarted(s, instance, &previous);
                    s.state = Some(ContainerState {
                        running: Some(ContainerStateRunning {
                            started_at: Some(t(started_at)),
                        }),
                        ..ContainerState::default()
                    });
                    s.container_id = Some(cid);
                    s.started = Some(true);
                    // Without a readiness probe a started container is ready at once.
                    s.ready = !init && c.readiness_probe.is_none() && c.startup_probe.is_none();
                });
                if !init {
                    h.refresh_ready();
                }
                let pid = running.pid;
                let (probes_stop, probes_rx) = watch::channel(false);
                let prober = tokio::spawn(run_probes(h.clone(), c.clone(), init, pid, probes_rx));
                let running = Arc::new(running);
                let waiter = {
                    let r = running.clone();
                    tokio::task::spawn_blocking(move || r.wait())
                };
                tokio::pin!(waiter);
                let exit = tokio::select! {
                    e = &mut waiter => e.ok(),
                    _ = stop.wait_for(|s| *s) => None,
                };
                let _ = probes_stop.send(true);
                prober.abort();
                let exit = match exit {
                    Some(e) => e,
                    None => {
                        h.emit(
                            cref,
                            "kubelet",
                            EventType::Normal,
                            "Killing",
                            format!("Stopping container {}", c.name),
                        );
                        h.note(
                            pid,
                            KILL_NOTE,
                            format!("stopped by the kubelet: the pod is being deleted or the runtime stops (SIGTERM, then SIGKILL after {:?})", h.grace()),
                        );
                        spawn::Running::signal(pid, libc::SIGTERM);
                        let grace = h.grace();
                        tokio::select! {
                            _ = tokio::time::sleep(grace) => {
                                h.note(pid, KILL_NOTE, format!("the grace period of {grace:?} ran out: SIGKILL"));
                                spawn::Running::signal(pid, libc::SIGKILL);
                                // The cgroup can only be removed once the process is gone.
                                let _ = (&mut waiter).await;
                            }
                            _ = &mut waiter => {}
                        }
                        running.cleanup();
                        return false;
                    }
                };
                running.cleanup();
                // How much memory an OOM-killed container had used against its limit: in
                // the capture (before it is written) and in the status message.
                let oom_memory = exit.memory.map(|(peak, limit)| {
                    format!(
                        "out of memory: the container used {} of its {} limit",
                        mib(peak),
                        mib(limit)
                    )
                });
                if let Some(text) = &oom_memory {
                    h.note(pid, OOM_NOTE, text.clone());
                }
                if let Some(rec) = &h.node.recorder {
                    let (h2, name, who2) = (h.clone(), c.name.clone(), who.clone());
                    rec.ended(
                        pid,
                        &who,
                        exit.code,
                        Box::new(move |r| {
                            let (ty, reason, msg) = match r {
                                Ok(written) => {
                                    h2.node.sink.capture(&who2, &written);
                                    (
                                        EventType::Normal,
                                        "CaptureWritten",
                                        format!(
                                            "System calls before container {name} ended: {}",
                                            written.path.display()
                                        ),
                                    )
                                }
                                Err(e) => (
                                    EventType::Warning,
                                    "CaptureFailed",
                                    format!("Capture of container {name}: {e}"),
                                ),
                            };
                            h2.emit(Some((name.as_str(), init)), "crashscope", ty, reason, msg);
                        }),
                    );
                }
                let finished = Timestamp::now();
                let reason = if exit.oom_killed {
                    "OOMKilled"
                } else if exit.code == 0 {
                    "Completed"
                } else {
                    "Error"
                };
                let term = ContainerStateTerminated {
                    reason: Some(reason.into()),
                    exit_code: if exit.oom_killed { 137 } else { exit.code },
                    signal: exit.signal.filter(|_| !exit.oom_killed),
                    message: termination_message(c, pod_dir, &log, exit.code).or(oom_memory),
                    started_at: Some(t(started_at)),
                    finished_at: Some(t(finished)),
                    container_id: None,
                };
                (exit, term)
            }
        };
        let success = exit.code == 0 && !exit.oom_killed;
        state = state.step(Input::Ended { success }, policy, init);
        let restart = matches!(state, Lifecycle::BackOff { .. });
        {
            let term = term.clone();
            h.set(&c.name, |s| {
                // A container that will not be restarted shows how it ended, start errors too.
                if !restart || s.state.as_ref().is_some_and(|x| x.running.is_some()) {
                    s.state = Some(ContainerState {
                        terminated: Some(term),
                        ..ContainerState::default()
                    });
                }
                s.ready = false;
            });
            let mut r = h.lock();
            if !init {
                condition(&mut r, "Ready", false);
                condition(&mut r, "ContainersReady", false);
            }
        }
        h.publish();
        previous = Some(term);
    }
}

/// Waits in CrashLoopBackOff until the kubelet would restart the container (announcing the
/// back-off once, with the ended instance as lastState), or until the pod stops.
async fn back_off(
    h: &PodHandle,
    c: &Container,
    cref: Option<(&str, bool)>,
    backoff: &mut BackoffState,
    previous: Option<&ContainerStateTerminated>,
    stop: &mut watch::Receiver<bool>,
) -> Input {
    let scaled = h.node.scaled_policy();
    let finished = previous
        .and_then(|t| t.finished_at.as_ref())
        .map(|x| x.0)
        .unwrap_or_else(Timestamp::now);
    let (ns, pod_name, uid) = h.ids();
    let mut announced = false;
    loop {
        let (next, decision) = backoff.step(&scaled, finished, Timestamp::now());
        *backoff = next;
        match decision {
            Decision::RestartNow => return Input::BackOffOver,
            Decision::Wait { until, step, .. } => {
                let nominal = h.node.policy.delay_for_step(step);
                if !announced {
                    announced = true;
                    let msg = crash_loop_message(nominal, &c.name, &pod_name, &ns, &uid);
                    let term = previous.cloned();
                    h.set(&c.name, |s| {
                        s.state = Some(waiting("CrashLoopBackOff", Some(msg)));
                        s.last_state = Some(ContainerState {
                            terminated: term,
                            ..ContainerState::default()
                        });
                    });
                    h.emit(
                        cref,
                        "kubelet",
                        EventType::Warning,
                        "BackOff",
                        format!(
                            "Back-off restarting failed container {} in pod {pod_name}_{ns}({uid})",
                            c.name
                        ),
                    );
                }
                let left = Duration::try_from(until.duration_since(Timestamp::now()))
                    .unwrap_or(Duration::ZERO);
                if sleep_or_stop(left.max(Duration::from_millis(5)), stop).await {
                    return Input::Stop;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Lifecycle::*;

    /// Feeds inputs from `Creating { instance: 0 }`; returns every state passed through.
    fn run(policy: &str, init: bool, inputs: &[Input]) -> Vec<Lifecycle> {
        let policy = RestartPolicy::of(policy);
        let mut state = Creating { instance: 0 };
        let mut seen = vec![state];
        for &i in inputs {
            state = state.step(i, policy, init);
            seen.push(state);
        }
        seen
    }

    #[test]
    fn a_crashing_container_backs_off_and_its_restart_count_rises_per_instance() {
        let crash = [
            Input::Started,
            Input::Ended { success: false },
            Input::BackOffOver,
            Input::Started,
            Input::Ended { success: false },
            Input::BackOffOver,
        ];
        let seen = run("Always", false, &crash);
        assert_eq!(
            seen,
            [
                Creating { instance: 0 },
                Running { instance: 0 },
                BackOff { instance: 0 },
                Creating { instance: 1 },
                Running { instance: 1 },
                BackOff { instance: 1 },
                Creating { instance: 2 },
            ]
        );
        // Under Always even a clean exit restarts an app container.
        let clean = run(
            "Always",
            false,
            &[Input::Started, Input::Ended { success: true }],
        );
        assert_eq!(clean.last(), Some(&BackOff { instance: 0 }));
    }

    #[test]
    fn the_restart_policy_decides_what_an_ended_container_does() {
        let ended = |policy, init, success| {
            *run(policy, init, &[Input::Started, Input::Ended { success }])
                .last()
                .unwrap()
        };
        assert_eq!(ended("Never", false, false), Done { success: false });
        assert_eq!(ended("OnFailure", false, true), Done { success: true });
        assert_eq!(ended("OnFailure", false, false), BackOff { instance: 0 });
        // Init containers run until they succeed, then the next one starts.
        assert_eq!(ended("Always", true, true), Done { success: true });
        assert_eq!(ended("Always", true, false), BackOff { instance: 0 });
        assert_eq!(ended("Never", true, false), Done { success: false });
    }

    #[test]
    fn a_refused_creation_is_retried_without_counting_a_restart() {
        let seen = run(
            "Always",
            false,
            &[
                Input::ConfigRefused,
                Input::RetryDue,
                Input::ConfigRefused,
                Input::RetryDue,
            ],
        );
        assert_eq!(seen.last(), Some(&Creating { instance: 0 }));
        assert!(seen.contains(&ConfigError { instance: 0 }));
        // A start that fails (StartError) ends the instance like an exit and does count.
        let failed = run(
            "Always",
            false,
            &[Input::Ended { success: false }, Input::BackOffOver],
        );
        assert_eq!(failed.last(), Some(&Creating { instance: 1 }));
    }

    #[test]
    fn stopping_ends_every_state_and_nothing_moves_a_finished_container() {
        for start in [
            Creating { instance: 3 },
            ConfigError { instance: 0 },
            Running { instance: 1 },
            BackOff { instance: 2 },
        ] {
            assert_eq!(
                start.step(Input::Stop, RestartPolicy::Always, false),
                Stopped
            );
        }
        let done = Done { success: true };
        assert_eq!(
            done.step(Input::Started, RestartPolicy::Always, false),
            done
        );
        assert_eq!(
            Stopped.step(Input::BackOffOver, RestartPolicy::Always, false),
            Stopped
        );
        // An input that cannot happen in a state leaves it alone.
        let running = Running { instance: 0 };
        assert_eq!(
            running.step(Input::RetryDue, RestartPolicy::Always, false),
            running
        );
    }
}
