//! End-to-end tests of the local runtime with real processes, namespaces and cgroups.
//! They need root: on CI (CI set) a missing root fails the test; elsewhere it is skipped
//! with a printed reason.

use crashscope_kubectl::get::pod_row;
use crashscope_local::manifest;
use crashscope_local::runtime::{self, Config, Runtime};
use crashscope_model::Event;
use crashscope_store::{EventQuery, SqlStore, Store};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A container log's text as the container wrote it (the file holds CRI records).
fn log_text(path: &std::path::Path) -> String {
    crashscope_model::logfile::plain_text(&std::fs::read(path).unwrap_or_default())
}

fn root_or_skip(test: &str) -> bool {
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test} needs root (namespaces, mounts, cgroups) and CI must run it as root");
    }
    eprintln!("skipping {test}: needs root");
    false
}

struct Harness {
    store: Arc<SqlStore>,
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), runtime::RuntimeError>>>,
}

impl Harness {
    async fn start(dns_octet: u8) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            SqlStore::open(&dir.path().join("crashscope.db"))
                .await
                .unwrap(),
        );
        let mut cfg = Config::new(dir.path().to_path_buf());
        cfg.time_scale = 0.02;
        cfg.dns = Ipv4Addr::new(127, 0, 99, dns_octet);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let rt = Runtime::new(cfg, store.clone());
        let task = tokio::spawn(rt.run(async {
            let _ = rx.await;
        }));
        Harness {
            store,
            dir,
            stop: Some(tx),
            task: Some(task),
        }
    }

    async fn apply(&self, yaml: &str) {
        let (objs, errs) = manifest::parse("test.yaml", yaml);
        assert!(errs.is_empty(), "{errs:?}");
        runtime::apply(&self.store, objs).await.unwrap();
    }

    async fn pod(&self, prefix: &str) -> Option<Pod> {
        self.store
            .objects("Pod")
            .await
            .unwrap()
            .into_iter()
            .filter_map(|v| serde_json::from_value::<Pod>(v).ok())
            .find(|p| {
                p.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(prefix))
            })
    }

    async fn wait(&self, prefix: &str, what: &str, ok: impl Fn(&Pod) -> bool) -> Pod {
        let start = Instant::now();
        loop {
            if let Some(p) = self.pod(prefix).await {
                if ok(&p) {
                    return p;
                }
                if start.elapsed() > Duration::from_secs(30) {
                    panic!("timed out waiting for {what}; last state: {:#?}", p.status);
                }
            } else if start.elapsed() > Duration::from_secs(30) {
                panic!("timed out waiting for pod {prefix}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for container `main` of `pod` to have failed to start (runc's StartError, exit
    /// code 128); returns the message.
    async fn start_error(&self, pod: &str) -> String {
        let p = self
            .wait(pod, "a start error", |p| {
                status(p, "main")
                    .last_state
                    .and_then(|s| s.terminated)
                    .is_some()
            })
            .await;
        let t = status(&p, "main").last_state.unwrap().terminated.unwrap();
        assert_eq!(
            (t.reason.as_deref(), t.exit_code),
            (Some("StartError"), 128)
        );
        t.message.unwrap_or_default()
    }

    async fn events(&self, reason: &str) -> Vec<Event> {
        self.store
            .events(&EventQuery {
                reason: Some(reason.into()),
                ..EventQuery::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect()
    }

    async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
        self.dir
    }
}

fn status(p: &Pod, name: &str) -> ContainerStatus {
    let s = p.status.clone().unwrap_or_default();
    s.container_statuses
        .iter()
        .flatten()
        .chain(s.init_container_statuses.iter().flatten())
        .find(|c| c.name == name)
        .cloned()
        .unwrap_or_else(|| panic!("no status for {name}"))
}

fn waiting_reason(c: &ContainerStatus) -> Option<String> {
    c.state.as_ref()?.waiting.as_ref()?.reason.clone()
}

fn pod_yaml(name: &str, policy: &str, container: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: {policy}\n  containers:\n{container}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_container_crash_loops_with_kubelet_backoff_events_and_logs() {
    if !root_or_skip("crash loop") {
        return;
    }
    let h = Harness::start(11).await;
    h.apply(&pod_yaml(
        "boom",
        "Always",
        "  - name: main\n    image: busybox\n    command: [sh, -c, 'echo starting; echo boom >&2; exit 1']\n",
    ))
    .await;
    let p = h
        .wait("boom", "restartCount 3 in CrashLoopBackOff", |p| {
            let c = status(p, "main");
            c.restart_count >= 3 && waiting_reason(&c).as_deref() == Some("CrashLoopBackOff")
        })
        .await;
    let c = status(&p, "main");
    let uid = p.metadata.uid.clone().unwrap();
    let msg = c.state.clone().unwrap().waiting.unwrap().message.unwrap();
    let expected_delay = if c.restart_count == 3 { "40s" } else { "80s" };
    assert_eq!(
        msg,
        format!(
            "back-off {expected_delay} restarting failed container=main pod=boom_default({uid})"
        )
    );
    let last = c.last_state.clone().unwrap().terminated.unwrap();
    assert_eq!((last.reason.as_deref(), last.exit_code), (Some("Error"), 1));
    assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Running"));
    // The crash-loop view's next restart follows this runtime's clock (0.02), not the
    // nominal delay of the message.
    let loops = crashscope_kubectl::crashloop::crash_loops(&p, &Default::default());
    let finished = last.finished_at.unwrap().0;
    let nominal = loops[0].backoff.delay.as_secs_f64();
    let due = loops[0]
        .backoff
        .next_restart
        .duration_since(finished)
        .as_secs_f64();
    assert!(
        (due - nominal * 0.02).abs() < 0.01,
        "due in {due}s for a {nominal}s back-off"
    );
    let row = pod_row(&p, jiff::Timestamp::now());
    assert_eq!(
        (row.ready.as_str(), row.status.as_str()),
        ("0/1", "CrashLoopBackOff")
    );
    // Events: BackOff aggregated into one occurrence with a count.
    let backoff = h.events("BackOff").await;
    assert_eq!(backoff.len(), 1);
    assert!(backoff[0].count >= 2, "{:?}", backoff[0]);
    assert_eq!(
        backoff[0].message,
        format!("Back-off restarting failed container main in pod boom_default({uid})")
    );
    assert_eq!(
        backoff[0].reporter.as_deref(),
        Some("kubelet, crashscope-local")
    );
    assert!(h.events("Started").await[0].count >= 3);
    assert_eq!(
        h.events("Scheduled").await[0].reporter.as_deref(),
        Some("default-scheduler")
    );
    // The previous instance's log holds both streams.
    let log = crashscope_local::kubelet::log_path(
        h.dir.path(),
        "default",
        "boom",
        &uid,
        "main",
        c.restart_count - 1,
    );
    let lines = crashscope_model::logfile::decode(&std::fs::read(&log).unwrap());
    let mut got: Vec<(String, &str)> = lines
        .iter()
        .map(|l| {
            (
                String::from_utf8_lossy(&l.text).into_owned(),
                l.stream.map_or("?", |s| s.as_str()),
            )
        })
        .collect();
    // The two streams are two pipes: their lines interleave as they are read.
    got.sort();
    assert_eq!(
        got,
        vec![
            ("boom".to_string(), "stderr"),
            ("starting".to_string(), "stdout")
        ]
    );
    assert!(
        lines.iter().all(|l| l.time.is_some()),
        "every line is timed"
    );
    // After the runtime stops, the pod stays readable as it was (post-mortem), marked.
    let store = h.store.clone();
    let dir = h.stop().await;
    let kept: Vec<Pod> = store
        .objects("Pod")
        .await
        .unwrap()
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    let boom = kept
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some("boom"))
        .expect("the pod is kept after the stop");
    assert!(boom
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(crashscope_local::runtime::STOPPED_ANNOTATION)));
    let c = status(boom, "main");
    assert_eq!(waiting_reason(&c).as_deref(), Some("CrashLoopBackOff"));
    assert!(c.restart_count >= 3);
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_zero_under_always_is_completed_then_crash_loop_and_never_fails_the_pod() {
    if !root_or_skip("completed") {
        return;
    }
    let h = Harness::start(12).await;
    h.apply(&pod_yaml(
        "done",
        "Always",
        "  - name: main\n    image: x\n    command: [\"true\"]\n",
    ))
    .await;
    let p = h
        .wait("done", "Completed then back-off", |p| {
            let c = status(p, "main");
            c.restart_count >= 2 && waiting_reason(&c).as_deref() == Some("CrashLoopBackOff")
        })
        .await;
    let last = status(&p, "main").last_state.unwrap().terminated.unwrap();
    assert_eq!(
        (last.reason.as_deref(), last.exit_code),
        (Some("Completed"), 0)
    );
    h.apply(&pod_yaml(
        "once",
        "Never",
        "  - name: main\n    image: x\n    command: [sh, -c, 'exit 3']\n",
    ))
    .await;
    let p = h
        .wait("once", "phase Failed", |p| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")
        })
        .await;
    let c = status(&p, "main");
    assert_eq!(c.restart_count, 0);
    let t = c.state.unwrap().terminated.unwrap();
    assert_eq!((t.reason.as_deref(), t.exit_code), (Some("Error"), 3));
    assert_eq!(pod_row(&p, jiff::Timestamp::now()).status, "Error");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_not_found_is_a_start_error() {
    if !root_or_skip("command not found") {
        return;
    }
    let h = Harness::start(13).await;
    h.apply(&pod_yaml(
        "nocmd",
        "Always",
        "  - name: main\n    image: x\n    command: [no-such-command-xyz]\n",
    ))
    .await;
    assert!(h
        .start_error("nocmd")
        .await
        .contains("\"no-such-command-xyz\": executable file not found in $PATH"));
    let failed = h.events("Failed").await;
    assert!(
        failed[0]
            .message
            .starts_with("Error: failed to create containerd task"),
        "{:?}",
        failed[0]
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limit_oom_kill_is_reported_as_oomkilled_137() {
    if !root_or_skip("OOM") {
        return;
    }
    let h = Harness::start(14).await;
    h.apply(&pod_yaml(
        "hog",
        "Never",
        "  - name: main\n    image: x\n    command: [python3, -c, 'b = bytearray(512 * 1024 * 1024); print(len(b))']\n    resources: {limits: {memory: 48Mi}}\n",
    ))
    .await;
    let p = h
        .wait("hog", "termination", |p| {
            status(p, "main").state.and_then(|s| s.terminated).is_some()
        })
        .await;
    let t = status(&p, "main").state.unwrap().terminated.unwrap();
    assert_eq!((t.reason.as_deref(), t.exit_code), (Some("OOMKilled"), 137));
    assert_eq!(pod_row(&p, jiff::Timestamp::now()).status, "OOMKilled");
    // How much it used of what it had, from the container's memory cgroup.
    let message = t.message.unwrap_or_default();
    assert!(
        message.starts_with("out of memory: the container used ")
            && message.ends_with(" of its 48.0 MiB limit"),
        "{message}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_configmap_is_failed_mount_until_it_is_created() {
    if !root_or_skip("FailedMount") {
        return;
    }
    let h = Harness::start(15).await;
    h.apply(
        "kind: Pod\nmetadata: {name: needs-conf}\nspec:\n  containers:\n  - name: main\n    image: x\n    command: [sh, -c, 'cat /conf/greeting; echo; sleep 30']\n    volumeMounts: [{name: conf, mountPath: /conf}]\n  volumes: [{name: conf, configMap: {name: greeting}}]\n",
    )
    .await;
    let p = h
        .wait("needs-conf", "ContainerCreating", |p| {
            waiting_reason(&status(p, "main")).as_deref() == Some("ContainerCreating")
        })
        .await;
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));
    let start = Instant::now();
    let failed = loop {
        let f = h.events("FailedMount").await;
        if !f.is_empty() || start.elapsed() > Duration::from_secs(10) {
            break f;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        failed[0].message,
        "MountVolume.SetUp failed for volume \"conf\" : configmap \"greeting\" not found"
    );
    h.apply("kind: ConfigMap\nmetadata: {name: greeting}\ndata: {greeting: hello}\n")
        .await;
    let p = h
        .wait("needs-conf", "Running", |p| {
            status(p, "main").state.and_then(|s| s.running).is_some()
        })
        .await;
    let uid = p.metadata.uid.unwrap();
    let log =
        crashscope_local::kubelet::log_path(h.dir.path(), "default", "needs-conf", &uid, "main", 0);
    let start = Instant::now();
    while log_text(&log) != "hello\n" && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(log_text(&log), "hello\n");
    // Stopping the runtime stops the container: its process is gone afterwards.
    let pid: i32 = status(&h.pod("needs-conf").await.unwrap(), "main")
        .container_id
        .unwrap()
        .trim_start_matches("crashscope://")
        .parse()
        .unwrap();
    h.stop().await;
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "container process {pid} survived"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_init_container_is_init_crash_loop_backoff() {
    if !root_or_skip("init failure") {
        return;
    }
    let h = Harness::start(16).await;
    h.apply(
        "kind: Pod\nmetadata: {name: init-fails}\nspec:\n  initContainers:\n  - {name: wait-db, image: x, command: [sh, -c, 'exit 2']}\n  containers:\n  - {name: app, image: x, command: [sleep, '30']}\n",
    )
    .await;
    let p = h
        .wait("init-fails", "Init:CrashLoopBackOff", |p| {
            pod_row(p, jiff::Timestamp::now()).status == "Init:CrashLoopBackOff"
        })
        .await;
    assert_eq!(
        waiting_reason(&status(&p, "app")).as_deref(),
        Some("PodInitializing")
    );
    assert_eq!(p.status.clone().unwrap().phase.as_deref(), Some("Pending"));
    let last = status(&p, "wait-db")
        .last_state
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(last.exit_code, 2);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_resolve_in_cluster_dns_once_created() {
    if !root_or_skip("DNS") {
        return;
    }
    let h = Harness::start(17).await;
    let resolves = "  - name: main\n    image: x\n    command: [sh, -c, 'getent hosts web || { echo unresolved; exit 1; }; cat /etc/resolv.conf; sleep 30']\n";
    h.apply(&pod_yaml("client", "Always", resolves)).await;
    let p = h
        .wait("client", "a failed lookup", |p| {
            status(p, "main").restart_count >= 1
        })
        .await;
    let uid = p.metadata.uid.clone().unwrap();
    let log0 =
        crashscope_local::kubelet::log_path(h.dir.path(), "default", "client", &uid, "main", 0);
    assert_eq!(log_text(&log0), "unresolved\n");
    h.apply("kind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n")
        .await;
    let p = h
        .wait("client", "Running after the Service exists", |p| {
            status(p, "main").state.and_then(|s| s.running).is_some()
        })
        .await;
    let n = status(&p, "main").restart_count;
    let log =
        crashscope_local::kubelet::log_path(h.dir.path(), "default", "client", &uid, "main", n);
    let start = Instant::now();
    while !log_text(&log).contains("nameserver") && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = log_text(&log);
    assert!(
        text.starts_with("127.0.0.1       web.default.svc.cluster.local"),
        "{text}"
    );
    assert!(text.contains("nameserver 127.0.99.17"), "{text}");
    assert!(
        text.contains("search default.svc.cluster.local svc.cluster.local cluster.local"),
        "{text}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_liveness_probe_kills_and_restarts_and_readiness_gates_ready() {
    if !root_or_skip("probes") {
        return;
    }
    let h = Harness::start(18).await;
    h.apply(&pod_yaml(
        "sick",
        "Always",
        "  - name: main\n    image: x\n    command: [sleep, '60']\n    livenessProbe:\n      exec: {command: [cat, /tmp/healthy-xyz]}\n      periodSeconds: 1\n      failureThreshold: 2\n",
    ))
    .await;
    let p = h
        .wait("sick", "a restart after the liveness kill", |p| {
            status(p, "main").restart_count >= 1
        })
        .await;
    let last = status(&p, "main").last_state.unwrap().terminated.unwrap();
    assert_eq!(
        (last.reason.as_deref(), last.exit_code),
        (Some("Error"), 137),
        "sleep ignores SIGTERM as PID 1: SIGKILL after the grace period"
    );
    let unhealthy = h.events("Unhealthy").await;
    assert_eq!(
        unhealthy[0].message,
        "Liveness probe failed: cat: /tmp/healthy-xyz: No such file or directory"
    );
    assert!(unhealthy[0].count >= 2);
    let killing = h.events("Killing").await;
    assert_eq!(
        killing[0].message,
        "Container main failed liveness probe, will be restarted"
    );

    h.apply(&pod_yaml(
        "unready",
        "Always",
        "  - name: main\n    image: x\n    command: [sleep, '60']\n    readinessProbe:\n      tcpSocket: {port: 1}\n      periodSeconds: 1\n      failureThreshold: 1\n",
    ))
    .await;
    let start = Instant::now();
    loop {
        let evs = h.events("Unhealthy").await;
        if evs.iter().any(|e| {
            e.message
                .starts_with("Readiness probe failed: dial tcp 127.0.0.1:1: connect:")
        }) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no readiness failure event: {evs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let p = h.pod("unready").await.unwrap();
    let row = pod_row(&p, jiff::Timestamp::now());
    assert_eq!(
        (row.ready.as_str(), row.status.as_str()),
        ("0/1", "Running")
    );
    assert_eq!(
        status(&p, "main").restart_count,
        0,
        "readiness failures do not restart"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_env_from_read_only_root_and_termination_messages() {
    if !root_or_skip("config sources") {
        return;
    }
    let h = Harness::start(19).await;
    h.apply(
        "kind: ConfigMap\nmetadata: {name: settings}\ndata: {MODE: strict}\n---\n\
         kind: Secret\nmetadata: {name: creds}\nstringData: {password: hunter2}\n---\n\
         kind: Pod\nmetadata: {name: reader}\nspec:\n  restartPolicy: Never\n  containers:\n\
         \x20 - name: main\n    image: x\n    envFrom: [{configMapRef: {name: settings}, prefix: APP_}]\n\
         \x20   terminationMessagePolicy: FallbackToLogsOnError\n\
         \x20   securityContext: {readOnlyRootFilesystem: true}\n\
         \x20   command: [sh, -c, 'echo mode=$APP_MODE; cat /secret/password; echo; touch /etc/x 2>/dev/null || echo root is read-only; touch /scratch/ok && echo scratch ok; exit 4']\n\
         \x20   volumeMounts: [{name: creds, mountPath: /secret, readOnly: true}, {name: scratch, mountPath: /scratch}]\n\
         \x20 volumes: [{name: creds, secret: {secretName: creds}}, {name: scratch, emptyDir: {}}]\n",
    )
    .await;
    let p = h
        .wait("reader", "termination", |p| {
            status(p, "main").state.and_then(|s| s.terminated).is_some()
        })
        .await;
    let t = status(&p, "main").state.unwrap().terminated.unwrap();
    assert_eq!(t.exit_code, 4);
    // FallbackToLogsOnError: the log tail becomes the termination message.
    assert_eq!(
        t.message.as_deref(),
        Some("mode=strict\nhunter2\nroot is read-only\nscratch ok")
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_runtime_per_data_directory() {
    if !root_or_skip("run lock") {
        return;
    }
    let h = Harness::start(26).await;
    // The first holds the directory once it runs.
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while !runtime::running_on(h.dir.path()) {
        assert!(Instant::now() < deadline, "the runtime never took its lock");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut cfg = Config::new(h.dir.path().to_path_buf());
    cfg.dns = Ipv4Addr::new(127, 0, 99, 27);
    let second = Runtime::new(cfg, h.store.clone()).run(async {}).await;
    assert!(
        matches!(second, Err(runtime::RuntimeError::Busy(_))),
        "{second:?}"
    );
    let dir = h.stop().await;
    assert!(
        !runtime::running_on(dir.path()),
        "the lock goes with the runtime"
    );
}

#[tokio::test]
async fn objects_in_a_missing_namespace_are_refused() {
    let store = SqlStore::in_memory().await.unwrap();
    let (objs, _) = manifest::parse(
        "t.yaml",
        "kind: ConfigMap\nmetadata: {name: a, namespace: shop}\n",
    );
    let err = runtime::apply(&store, objs).await.unwrap_err().to_string();
    assert_eq!(err, "ConfigMap \"a\": namespaces \"shop\" not found");
    let (objs, _) = manifest::parse(
        "t.yaml",
        "kind: Namespace\nmetadata: {name: shop}\n---\nkind: ConfigMap\nmetadata: {name: a, namespace: shop}\n",
    );
    let done = runtime::apply(&store, objs).await.unwrap();
    assert_eq!(done, ["namespace/shop created", "configmap/a created"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_from_a_missing_configmap_is_create_container_config_error_without_restarts() {
    if !root_or_skip("CreateContainerConfigError") {
        return;
    }
    let h = Harness::start(20).await;
    h.apply(
        "kind: Pod\nmetadata: {name: needs-env}\nspec:\n  containers:\n  - name: main\n    image: x\n    command: [sh, -c, 'echo mode=$MODE; sleep 30']\n    env:\n    - name: MODE\n      valueFrom: {configMapKeyRef: {name: settings, key: mode}}\n",
    )
    .await;
    let p = h
        .wait("needs-env", "CreateContainerConfigError", |p| {
            waiting_reason(&status(p, "main")).as_deref() == Some("CreateContainerConfigError")
        })
        .await;
    let c = status(&p, "main");
    assert_eq!(
        c.state.unwrap().waiting.unwrap().message.as_deref(),
        Some("configmap \"settings\" not found")
    );
    // Retried, never counted as a restart, as the kubelet does.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let p = h.pod("needs-env").await.unwrap();
    assert_eq!(status(&p, "main").restart_count, 0);
    assert_eq!(
        h.events("Failed").await[0].message,
        "Error: configmap \"settings\" not found"
    );
    h.apply("kind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: fast}\n")
        .await;
    let p = h
        .wait("needs-env", "Running once the ConfigMap exists", |p| {
            status(p, "main").state.and_then(|s| s.running).is_some()
        })
        .await;
    assert_eq!(status(&p, "main").restart_count, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_files_get_their_modes_and_a_script_needs_its_x_bit() {
    if !root_or_skip("volume file modes") {
        return;
    }
    let h = Harness::start(21).await;
    h.apply("kind: ConfigMap\nmetadata: {name: scripts}\ndata:\n  run.sh: \"#!/bin/sh\\necho ran\\nsleep 30\\n\"\n")
        .await;
    // kubectl's reading of `0755` (YAML 1.1 octal): executable, so it runs.
    h.apply("kind: Pod\nmetadata: {name: exec-ok}\nspec:\n  containers:\n  - name: main\n    image: x\n    command: [/scripts/run.sh]\n    volumeMounts: [{name: s, mountPath: /scripts}]\n  volumes: [{name: s, configMap: {name: scripts, defaultMode: 0755}}]\n")
        .await;
    // The default 0644: runc's "permission denied".
    h.apply("kind: Pod\nmetadata: {name: exec-denied}\nspec:\n  containers:\n  - name: main\n    image: x\n    command: [/scripts/run.sh]\n    volumeMounts: [{name: s, mountPath: /scripts}]\n  volumes: [{name: s, configMap: {name: scripts}}]\n")
        .await;
    h.wait("exec-ok", "running", |p| {
        status(p, "main").state.and_then(|s| s.running).is_some()
    })
    .await;
    assert!(h
        .start_error("exec-denied")
        .await
        .contains("exec: \"/scripts/run.sh\": permission denied"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_context_users_and_run_as_non_root() {
    if !root_or_skip("securityContext") {
        return;
    }
    let h = Harness::start(22).await;
    h.apply("kind: Secret\nmetadata: {name: key}\nstringData: {key: s3cret}\n")
        .await;
    // As user 65534, a Secret file mounted 0600 (root's) cannot be read.
    h.apply("kind: Pod\nmetadata: {name: as-nobody}\nspec:\n  restartPolicy: Never\n  securityContext: {runAsUser: 65534, runAsGroup: 65534, supplementalGroups: [4242]}\n  containers:\n  - name: main\n    image: x\n    command: [sh, -c, 'id -u; id -G; cat /secrets/key']\n    volumeMounts: [{name: k, mountPath: /secrets}]\n  volumes: [{name: k, secret: {secretName: key, defaultMode: 0600}}]\n")
        .await;
    h.apply("kind: Pod\nmetadata: {name: non-root}\nspec:\n  securityContext: {runAsNonRoot: true}\n  containers:\n  - name: main\n    image: x\n    command: [sleep, '30']\n")
        .await;
    let p = h
        .wait("as-nobody", "termination", |p| {
            status(p, "main").state.and_then(|s| s.terminated).is_some()
        })
        .await;
    let t = status(&p, "main").state.unwrap().terminated.unwrap();
    assert_eq!(t.exit_code, 1);
    let uid = p.metadata.uid.unwrap();
    let log =
        crashscope_local::kubelet::log_path(h.dir.path(), "default", "as-nobody", &uid, "main", 0);
    let text = log_text(&log);
    assert!(text.starts_with("65534\n65534 4242\n"), "{text}");
    assert!(text.contains("Permission denied"), "{text}");
    let p = h
        .wait("non-root", "CreateContainerConfigError", |p| {
            waiting_reason(&status(p, "main")).as_deref() == Some("CreateContainerConfigError")
        })
        .await;
    assert_eq!(
        status(&p, "main")
            .state
            .unwrap()
            .waiting
            .unwrap()
            .message
            .as_deref(),
        Some("container has runAsNonRoot and image will run as root")
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_are_containerds_default_plus_add_minus_drop() {
    if !root_or_skip("capabilities") {
        return;
    }
    let h = Harness::start(23).await;
    // A default container holds containerd's set; one that drops NET_BIND_SERVICE cannot bind
    // port 80 even as root — the kernel says EACCES before it looks whether the port is free.
    h.apply("kind: Pod\nmetadata: {name: default-caps}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: main\n    image: x\n    command: [sh, -c, 'grep CapBnd /proc/self/status']\n")
        .await;
    h.apply("kind: Pod\nmetadata: {name: no-bind}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: main\n    image: x\n    command: [python3, -c, 'import socket; socket.socket().bind((\"127.0.0.1\", 80))']\n    securityContext: {capabilities: {drop: [NET_BIND_SERVICE]}}\n")
        .await;
    h.apply("kind: Pod\nmetadata: {name: bad-cap}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: main\n    image: x\n    command: ['true']\n    securityContext: {capabilities: {add: [NET_MAGIC]}}\n")
        .await;
    let ended = |name: &'static str| {
        h.wait(name, "termination", |p| {
            status(p, "main").state.and_then(|s| s.terminated).is_some()
        })
    };
    let p = ended("default-caps").await;
    let uid = p.metadata.uid.unwrap();
    let log = crashscope_local::kubelet::log_path(
        h.dir.path(),
        "default",
        "default-caps",
        &uid,
        "main",
        0,
    );
    let text = log_text(&log);
    assert_eq!(text.trim(), "CapBnd:\t00000000a80425fb", "{text}");
    let p = ended("no-bind").await;
    let t = status(&p, "main").state.unwrap().terminated.unwrap();
    assert_eq!(t.exit_code, 1);
    let uid = p.metadata.uid.unwrap();
    let log =
        crashscope_local::kubelet::log_path(h.dir.path(), "default", "no-bind", &uid, "main", 0);
    let text = log_text(&log);
    assert!(
        text.contains("PermissionError: [Errno 13] Permission denied"),
        "{text}"
    );
    let p = ended("bad-cap").await;
    let t = status(&p, "main").state.unwrap().terminated.unwrap();
    assert_eq!(t.reason.as_deref(), Some("StartError"));
    assert!(
        t.message
            .unwrap_or_default()
            .contains("unknown capability \"NET_MAGIC\""),
        "{p:?}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_empty_dir_is_a_tmpfs_of_its_size_limit_and_goes_with_the_pod() {
    if !root_or_skip("emptyDir medium Memory") {
        return;
    }
    let h = Harness::start(24).await;
    h.apply("kind: Pod\nmetadata: {name: fills-cache}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: main\n    image: x\n    command: [python3, -c, 'open(\"/cache/blob\", \"wb\").write(b\"x\" * (2 << 20))']\n    volumeMounts: [{name: cache, mountPath: /cache}]\n  volumes: [{name: cache, emptyDir: {medium: Memory, sizeLimit: 1Mi}}]\n")
        .await;
    let p = h
        .wait("fills-cache", "termination", |p| {
            status(p, "main").state.and_then(|s| s.terminated).is_some()
        })
        .await;
    let t = status(&p, "main").state.unwrap().terminated.unwrap();
    assert_eq!(t.exit_code, 1);
    let uid = p.metadata.uid.unwrap();
    let log = crashscope_local::kubelet::log_path(
        h.dir.path(),
        "default",
        "fills-cache",
        &uid,
        "main",
        0,
    );
    let text = log_text(&log);
    assert!(
        text.contains("OSError: [Errno 28] No space left on device"),
        "{text}"
    );
    let volume = h.dir.path().join("pods").join(&uid).join("volumes/cache");
    let mounted = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(volume.to_str().unwrap())
    };
    assert!(mounted(), "the tmpfs is mounted while the pod exists");
    h.stop().await;
    for _ in 0..100 {
        if !mounted() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "{} is still mounted after the runtime stopped",
        volume.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_group_owns_the_volumes_so_a_non_root_user_can_use_them() {
    if !root_or_skip("fsGroup") {
        return;
    }
    let h = Harness::start(25).await;
    h.apply("kind: Secret\nmetadata: {name: key}\nstringData: {key: s3cret}\n")
        .await;
    // Without fsGroup, user 1000 could neither read the 0600 Secret nor write the emptyDir.
    h.apply("kind: Pod\nmetadata: {name: grouped}\nspec:\n  restartPolicy: Never\n  securityContext: {runAsUser: 1000, fsGroup: 2000}\n  containers:\n  - name: main\n    image: x\n    command: [sh, -c, 'cat /secrets/key; echo; touch /data/f && stat -c %g /data/f']\n    volumeMounts: [{name: k, mountPath: /secrets}, {name: d, mountPath: /data}]\n  volumes: [{name: k, secret: {secretName: key, defaultMode: 0600}}, {name: d, emptyDir: {}}]\n")
        .await;
    let p = h
        .wait("grouped", "termination", |p| {
            status(p, "main").state.and_then(|s| s.terminated).is_some()
        })
        .await;
    let uid = p.metadata.uid.clone().unwrap();
    let log =
        crashscope_local::kubelet::log_path(h.dir.path(), "default", "grouped", &uid, "main", 0);
    let text = log_text(&log);
    assert_eq!(text, "s3cret\n2000\n", "{text}");
    let t = status(&p, "main").state.unwrap().terminated.unwrap();
    assert_eq!(t.exit_code, 0);
    h.stop().await;
}
