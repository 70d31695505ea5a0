//! The kubelet of the local runtime: runs one pod — volumes, init containers in order, then
//! the app containers — restarting containers per `restartPolicy` with the kubelet's back-off,
//! and reporting container states, pod phase, conditions and events exactly as the kubelet
//! does.

use crashscope_model::backoff::{crash_loop_message, BackoffPolicy, BackoffState, Decision};
use crashscope_model::{Catalog, Event, EventType};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, Pod, PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

use crashscope_model::capture::{ContainerRecorder, ContainerRef, WrittenCapture};

use crate::events::pod_event;
use crate::spawn::{self, Bind, Exit, LaunchSpec};
use crate::volumes::{self, Sources};

/// Where pod states and events go (the runtime writes them to the store).
pub trait Sink: Send + Sync {
    fn pod(&self, pod: &Pod);
    fn event(&self, event: Event);
    /// A capture was written for a container instance.
    fn capture(&self, who: &ContainerRef, capture: &WrittenCapture) {
        let _ = (who, capture);
    }
}

/// What every pod of the runtime shares.
pub struct Node {
    pub name: String,
    pub data_dir: PathBuf,
    /// Every duration (back-off, grace periods, retries) is multiplied by this.
    pub time_scale: f64,
    pub policy: BackoffPolicy,
    /// Address of the runtime's DNS server, written into each container's resolv.conf.
    pub dns: std::net::Ipv4Addr,
    pub sink: Arc<dyn Sink>,
    pub sources: Arc<dyn Sources + Send + Sync>,
    pub catalog: Catalog,
    pub recorder: Option<Arc<dyn ContainerRecorder>>,
}

impl Node {
    fn scaled(&self, d: Duration) -> Duration {
        d.mul_f64(self.time_scale.max(0.0))
    }

    fn scaled_policy(&self) -> BackoffPolicy {
        BackoffPolicy {
            initial: self.scaled(self.policy.initial),
            max: self.scaled(self.policy.max),
            reset_after: self.scaled(self.policy.reset_after),
        }
    }
}

/// The pod as the kubelet keeps it while running it.
struct Record {
    pod: Pod,
    statuses: BTreeMap<String, ContainerStatus>,
    init_done: bool,
    failed: bool,
    conditions: BTreeMap<&'static str, (bool, Timestamp)>,
    start_time: Timestamp,
}

fn t(ts: Timestamp) -> Time {
    Time(ts)
}

fn waiting(reason: &str, message: Option<String>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message,
        }),
        ..ContainerState::default()
    }
}

/// Shared handle to a running pod.
#[derive(Clone)]
pub struct PodHandle {
    rec: Arc<Mutex<Record>>,
    node: Arc<Node>,
    stop: watch::Sender<bool>,
}

impl PodHandle {
    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        // A panic while holding the lock would be a bug in this module; keep going with the data.
        self.rec.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(
        &self,
        container: Option<(&str, bool)>,
        from: &str,
        ty: EventType,
        reason: &str,
        msg: String,
    ) {
        let pod = self.lock().pod.clone();
        let reporter = if from == "kubelet" {
            format!("kubelet, {}", self.node.name)
        } else {
            from.to_string()
        };
        self.node.sink.event(pod_event(
            &pod,
            container,
            &reporter,
            ty,
            reason,
            msg,
            &self.node.catalog,
        ));
    }

    fn set(&self, name: &str, f: impl FnOnce(&mut ContainerStatus)) {
        {
            let mut r = self.lock();
            if let Some(s) = r.statuses.get_mut(name) {
                f(s);
            }
        }
        self.publish();
    }

    /// The pod object with its current status.
    pub fn snapshot(&self) -> Pod {
        let r = self.lock();
        let mut pod = r.pod.clone();
        pod.status = Some(status(&r));
        pod
    }

    pub fn publish(&self) {
        let pod = self.snapshot();
        self.node.sink.pod(&pod);
    }

    /// The pod's termination grace period, scaled.
    fn grace(&self) -> Duration {
        let secs = self
            .lock()
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30);
        self.node
            .scaled(Duration::from_secs(u64::try_from(secs).unwrap_or(30)))
    }

    /// Recomputes the Ready and ContainersReady conditions from the containers.
    fn refresh_ready(&self) {
        {
            let mut r = self.lock();
            let ready = r
                .pod
                .spec
                .as_ref()
                .map(|s| {
                    s.containers
                        .iter()
                        .all(|x| r.statuses.get(&x.name).is_some_and(|st| st.ready))
                })
                .unwrap_or(false);
            condition(&mut r, "Ready", ready);
            condition(&mut r, "ContainersReady", ready);
        }
        self.publish();
    }

    /// Stops every container (SIGTERM, then SIGKILL after the grace period).
    pub fn stop(&self) {
        // send_replace stores the value even before any task has subscribed.
        self.stop.send_replace(true);
    }
}

fn condition(r: &mut Record, name: &'static str, value: bool) {
    let now = Timestamp::now();
    match r.conditions.get(name) {
        Some((v, _)) if *v == value => {}
        _ => {
            r.conditions.insert(name, (value, now));
        }
    }
}

/// PodStatus as the kubelet computes it from the container statuses.
fn status(r: &Record) -> PodStatus {
    let spec = r.pod.spec.clone().unwrap_or_default();
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let init: Vec<ContainerStatus> = spec
        .init_containers
        .iter()
        .flatten()
        .filter_map(|c| r.statuses.get(&c.name).cloned())
        .collect();
    let app: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .filter_map(|c| r.statuses.get(&c.name).cloned())
        .collect();
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in &app {
        let st = s.state.clone().unwrap_or_default();
        if st.running.is_some() {
            running += 1;
        } else if let Some(term) = st.terminated {
            stopped += 1;
            if term.exit_code == 0 {
                succeeded += 1;
            }
        } else if s
            .last_state
            .as_ref()
            .is_some_and(|l| l.terminated.is_some())
        {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    let phase = if r.failed {
        "Failed"
    } else if !r.init_done || waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        match policy {
            "Always" => "Running",
            "OnFailure" if stopped == succeeded => "Succeeded",
            "OnFailure" => "Running",
            _ if stopped == succeeded => "Succeeded",
            _ => "Failed",
        }
    } else {
        "Pending"
    };
    let unready: Vec<&str> = app
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let mut conditions = Vec::new();
    let order = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ];
    for name in order {
        let Some((value, when)) = r.conditions.get(name) else {
            continue;
        };
        let (reason, message) = match name {
            "Ready" | "ContainersReady" if !value && !unready.is_empty() => (
                Some("ContainersNotReady".to_string()),
                Some(format!(
                    "containers with unready status: [{}]",
                    unready.join(" ")
                )),
            ),
            "Initialized" if !value => (
                Some("ContainersNotInitialized".to_string()),
                Some(format!(
                    "containers with incomplete status: [{}]",
                    init.iter()
                        .filter(|s| !init_succeeded(s))
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                )),
            ),
            _ => (None, None),
        };
        conditions.push(PodCondition {
            type_: name.to_string(),
            status: if *value { "True" } else { "False" }.into(),
            last_transition_time: Some(t(*when)),
            reason,
            message,
            ..PodCondition::default()
        });
    }
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: Some("127.0.0.1".into()),
        host_ips: Some(vec![k8s_openapi::api::core::v1::HostIP {
            ip: "127.0.0.1".into(),
        }]),
        pod_ip: Some("127.0.0.1".into()),
        pod_ips: Some(vec![k8s_openapi::api::core::v1::PodIP {
            ip: "127.0.0.1".into(),
        }]),
        start_time: Some(t(r.start_time)),
        init_container_statuses: (!init.is_empty()).then_some(init),
        container_statuses: Some(app),
        qos_class: Some(qos(&spec)),
        ..PodStatus::default()
    }
}

fn init_succeeded(s: &ContainerStatus) -> bool {
    s.state
        .as_ref()
        .and_then(|x| x.terminated.as_ref())
        .is_some_and(|t| t.exit_code == 0)
}

/// The QoS class by kubectl's rules (shared with the describe view).
fn qos(spec: &k8s_openapi::api::core::v1::PodSpec) -> String {
    let pod = Pod {
        spec: Some(spec.clone()),
        ..Pod::default()
    };
    crashscope_model::qos::qos_class(&pod)
}

fn new_status(c: &Container, init_with_init_containers: bool) -> ContainerStatus {
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        image_id: String::new(),
        ready: false,
        restart_count: 0,
        started: Some(false),
        state: Some(waiting(
            if init_with_init_containers {
                "PodInitializing"
            } else {
                "ContainerCreating"
            },
            None,
        )),
        ..ContainerStatus::default()
    }
}

/// Starts running `pod` (its metadata complete: uid, namespace, node). Returns at once.
pub fn start(node: Arc<Node>, pod: Pod) -> PodHandle {
    let spec = pod.spec.clone().unwrap_or_default();
    let has_init = spec.init_containers.as_ref().is_some_and(|v| !v.is_empty());
    let mut statuses = BTreeMap::new();
    for c in spec.init_containers.iter().flatten() {
        statuses.insert(c.name.clone(), new_status(c, false));
    }
    for c in &spec.containers {
        statuses.insert(c.name.clone(), new_status(c, has_init));
    }
    let now = Timestamp::now();
    let mut rec = Record {
        pod,
        statuses,
        init_done: !has_init,
        failed: false,
        conditions: BTreeMap::new(),
        start_time: now,
    };
    condition(&mut rec, "PodScheduled", true);
    condition(&mut rec, "PodReadyToStartContainers", true);
    condition(&mut rec, "Initialized", !has_init);
    condition(&mut rec, "Ready", false);
    condition(&mut rec, "ContainersReady", false);
    let (stop, _) = watch::channel(false);
    let h = PodHandle {
        rec: Arc::new(Mutex::new(rec)),
        node,
        stop,
    };
    let task = h.clone();
    tokio::spawn(async move { run_pod(task).await });
    h
}

async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    }
}

async fn run_pod(h: PodHandle) {
    let pod = h.lock().pod.clone();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    h.emit(
        None,
        "default-scheduler",
        EventType::Normal,
        "Scheduled",
        format!("Successfully assigned {ns}/{name} to {}", h.node.name),
    );
    h.publish();
    let mut stop = h.stop.subscribe();
    let pod_dir = h.node.data_dir.join("pods").join(&uid);
    // Volumes: the kubelet retries a failed mount until it succeeds, reporting FailedMount.
    let vols = loop {
        match volumes::prepare(&pod, &pod_dir.join("volumes"), h.node.sources.as_ref()) {
            Ok(v) => break v,
            Err(f) => {
                h.emit(
                    None,
                    "kubelet",
                    EventType::Warning,
                    "FailedMount",
                    f.message,
                );
                if sleep_or_stop(h.node.scaled(Duration::from_secs(8)), &mut stop).await {
                    return;
                }
            }
        }
    };
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = spec
        .restart_policy
        .clone()
        .unwrap_or_else(|| "Always".into());
    for c in spec.init_containers.iter().flatten() {
        let ok = run_container(&h, c, true, &policy, &vols, &pod_dir).await;
        if !ok {
            if !*stop.borrow() {
                h.lock().failed = true;
                h.publish();
            }
            return;
        }
    }
    {
        let mut r = h.lock();
        r.init_done = true;
        condition(&mut r, "Initialized", true);
        for c in &spec.containers {
            if let Some(s) = r.statuses.get_mut(&c.name) {
                s.state = Some(waiting("ContainerCreating", None));
            }
        }
    }
    h.publish();
    let mut tasks = Vec::new();
    for c in spec.containers.clone() {
        let (h, policy, vols, dir) = (h.clone(), policy.clone(), vols.clone(), pod_dir.clone());
        tasks.push(tokio::spawn(async move {
            run_container(&h, &c, false, &policy, &vols, &dir).await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

fn resolv_conf(node: &Node, ns: &str) -> String {
    format!(
        "search {ns}.svc.cluster.local svc.cluster.local cluster.local\nnameserver {}\noptions ndots:5\n",
        node.dns
    )
}

/// Builds the launch of container `c`, or the runtime's error when its command is unusable.
/// Why a container could not be started: its configuration cannot be built (an env
/// reference to a missing ConfigMap, Secret or key — the kubelet's
/// `CreateContainerConfigError`, which it retries without counting restarts), or the start
/// itself failed (`StartError`).
enum Refused {
    Config(String),
    Start(String),
}

impl From<String> for Refused {
    fn from(s: String) -> Refused {
        Refused::Start(s)
    }
}

impl From<&str> for Refused {
    fn from(s: &str) -> Refused {
        Refused::Start(s.to_string())
    }
}

/// The program a container runs, found as runc finds it: a name on `$PATH`, or a path —
/// which may lie in a volume mount (checked at the volume's source, run at its mount path).
/// A file that exists but is not executable is runc's "permission denied".
fn resolve_program(cmd: &str, path_env: &str, binds: &[Bind]) -> Result<PathBuf, Refused> {
    let runc = |what: String| {
        Refused::Start(format!(
            "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: {what}: unknown"
        ))
    };
    if cmd.starts_with('/') {
        // The longest mount path holding the program, as the mount namespace will show it.
        let mounted = binds
            .iter()
            .filter(|b| {
                let t = b.target.to_string_lossy();
                let t = t.trim_end_matches('/');
                cmd.strip_prefix(t).is_some_and(|r| r.starts_with('/'))
            })
            .max_by_key(|b| b.target.as_os_str().len());
        let on_host = match mounted {
            Some(b) => {
                let t = b.target.to_string_lossy();
                b.source
                    .join(cmd[t.trim_end_matches('/').len()..].trim_start_matches('/'))
            }
            None => PathBuf::from(cmd),
        };
        if spawn::resolve(&on_host.to_string_lossy(), path_env).is_some() {
            return Ok(PathBuf::from(cmd));
        }
        if on_host.is_file() {
            return Err(runc(format!("exec: {cmd:?}: permission denied")));
        }
        return Err(runc(format!(
            "exec: {cmd:?}: stat {cmd}: no such file or directory"
        )));
    }
    spawn::resolve(cmd, path_env)
        .ok_or_else(|| runc(format!("exec: {cmd:?}: executable file not found in $PATH")))
}

fn launch_spec(
    h: &PodHandle,
    c: &Container,
    vols: &BTreeMap<String, PathBuf>,
    pod_dir: &std::path::Path,
    log: PathBuf,
) -> Result<LaunchSpec, Refused> {
    let pod = h.lock().pod.clone();
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut argv: Vec<String> = c.command.clone().unwrap_or_default();
    argv.extend(c.args.clone().unwrap_or_default());
    let Some(cmd) = argv.first().cloned() else {
        return Err("no command specified".into());
    };
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        (
            "HOSTNAME".into(),
            pod.metadata.name.clone().unwrap_or_default(),
        ),
    ];
    // envFrom first: explicit env entries override them, as in Kubernetes.
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let vars: Option<Vec<(String, String)>> = if let Some(r) = &from.config_map_ref {
            match h.node.sources.config_map(&ns, &r.name) {
                Some(m) => Some(m.data.unwrap_or_default().into_iter().collect()),
                None if r.optional == Some(true) => Some(Vec::new()),
                None => return Err(Refused::Config(format!("configmap {:?} not found", r.name))),
            }
        } else if let Some(r) = &from.secret_ref {
            match h.node.sources.secret(&ns, &r.name) {
                Some(sec) => Some(
                    sec.data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                        .collect(),
                ),
                None if r.optional == Some(true) => Some(Vec::new()),
                None => return Err(Refused::Config(format!("secret {:?} not found", r.name))),
            }
        } else {
            None
        };
        for (k, v) in vars.unwrap_or_default() {
            let key = format!("{prefix}{k}");
            env.retain(|(x, _)| *x != key);
            env.push((key, v));
        }
    }
    for e in c.env.iter().flatten() {
        let value = match &e.value_from {
            None => e.value.clone().unwrap_or_default(),
            Some(from) => {
                if let Some(f) = &from.field_ref {
                    match f.field_path.as_str() {
                        "metadata.name" => pod.metadata.name.clone().unwrap_or_default(),
                        "metadata.namespace" => ns.clone(),
                        "metadata.uid" => pod.metadata.uid.clone().unwrap_or_default(),
                        "spec.nodeName" => h.node.name.clone(),
                        "status.podIP" | "status.hostIP" => "127.0.0.1".into(),
                        _ => String::new(),
                    }
                } else if let Some(k) = &from.config_map_key_ref {
                    let map = h.node.sources.config_map(&ns, &k.name);
                    let found = map
                        .as_ref()
                        .and_then(|m| m.data.as_ref()?.get(&k.key).cloned());
                    match found {
                        Some(v) => v,
                        None if k.optional == Some(true) => continue,
                        // The kubelet's words for each case.
                        None if map.is_none() => {
                            return Err(Refused::Config(format!(
                                "configmap {:?} not found",
                                k.name
                            )))
                        }
                        None => {
                            return Err(Refused::Config(format!(
                                "couldn't find key {} in ConfigMap {ns}/{}",
                                k.key, k.name
                            )))
                        }
                    }
                } else if let Some(k) = &from.secret_key_ref {
                    let secret = h.node.sources.secret(&ns, &k.name);
                    let found = secret.as_ref().and_then(|s| {
                        s.data
                            .as_ref()?
                            .get(&k.key)
                            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                    });
                    match found {
                        Some(v) => v,
                        None if k.optional == Some(true) => continue,
                        None if secret.is_none() => {
                            return Err(Refused::Config(format!("secret {:?} not found", k.name)))
                        }
                        None => {
                            return Err(Refused::Config(format!(
                                "couldn't find key {} in Secret {ns}/{}",
                                k.key, k.name
                            )))
                        }
                    }
                } else {
                    String::new()
                }
            }
        };
        env.retain(|(k, _)| *k != e.name);
        env.push((e.name.clone(), value));
    }
    let path_env = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let mut binds = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let Some(src) = vols.get(&m.name) else {
            return Err(Refused::Start(format!(
                "volume mount {:?}: no volume named {:?}",
                m.mount_path, m.name
            )));
        };
        let src = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            // As the API server does: a subPath stays inside its volume.
            Some(sub) if sub.starts_with('/') || sub.split('/').any(|p| p == "..") => {
                return Err(Refused::Start(format!(
                    "volume mount {:?}: subPath {sub:?} must be a relative path without '..'",
                    m.mount_path
                )));
            }
            Some(sub) => src.join(sub),
            None => src.clone(),
        };
        binds.push(Bind {
            source: src,
            target: PathBuf::from(&m.mount_path),
            read_only: m.read_only == Some(true),
        });
    }
    let program = resolve_program(&cmd, &path_env, &binds)?;
    let user = identity(&pod, c)?;
    let etc = pod_dir.join("etc");
    let io = |e: std::io::Error| format!("prepare {}: {e}", etc.display());
    std::fs::create_dir_all(&etc).map_err(io)?;
    std::fs::write(etc.join("resolv.conf"), resolv_conf(&h.node, &ns)).map_err(io)?;
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    std::fs::write(
        etc.join("hosts"),
        format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t{pod_name}\n"),
    )
    .map_err(io)?;
    binds.push(Bind {
        source: etc.join("resolv.conf"),
        target: "/etc/resolv.conf".into(),
        read_only: true,
    });
    binds.push(Bind {
        source: etc.join("hosts"),
        target: "/etc/hosts".into(),
        read_only: true,
    });
    let term = pod_dir.join("termination").join(&c.name);
    std::fs::create_dir_all(term.parent().unwrap_or(&etc)).map_err(io)?;
    std::fs::write(&term, b"").map_err(io)?;
    binds.push(Bind {
        source: term,
        target: PathBuf::from(
            c.termination_message_path
                .as_deref()
                .unwrap_or("/dev/termination-log"),
        ),
        read_only: false,
    });
    let memory_limit = c
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get("memory"))
        .map(|q| {
            crashscope_model::quantity::bytes(&q.0)
                .ok_or_else(|| format!("resources.limits.memory: invalid quantity {:?}", q.0))
        })
        .transpose()?;
    Ok(LaunchSpec {
        program,
        argv,
        env,
        working_dir: c.working_dir.as_ref().map(PathBuf::from),
        hostname: pod_name.clone(),
        binds,
        read_only_root: c
            .security_context
            .as_ref()
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false),
        log,
        memory_limit,
        cgroup: format!(
            "{}_{}",
            pod.metadata.uid.clone().unwrap_or_default(),
            c.name
        ),
        on_created: None,
        user,
        no_new_privs: c
            .security_context
            .as_ref()
            .and_then(|s| s.allow_privilege_escalation)
            == Some(false),
    })
}

/// Who a container runs as: its securityContext over the pod's (runAsUser, runAsGroup), with
/// the pod's supplementalGroups and fsGroup as supplementary groups. `runAsNonRoot` with no
/// non-root user is refused as the kubelet refuses it (the local runtime's "image" runs as root).
fn identity(pod: &Pod, c: &Container) -> Result<Option<spawn::Identity>, Refused> {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let csc = c.security_context.as_ref();
    let uid = csc
        .and_then(|s| s.run_as_user)
        .or_else(|| psc.and_then(|s| s.run_as_user));
    let gid = csc
        .and_then(|s| s.run_as_group)
        .or_else(|| psc.and_then(|s| s.run_as_group));
    let non_root = csc
        .and_then(|s| s.run_as_non_root)
        .or_else(|| psc.and_then(|s| s.run_as_non_root))
        == Some(true);
    if non_root && uid.unwrap_or(0) == 0 {
        return Err(Refused::Config(
            "container has runAsNonRoot and image will run as root".into(),
        ));
    }
    let mut groups: Vec<u32> = psc
        .and_then(|s| s.supplemental_groups.clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|g| u32::try_from(g).ok())
        .collect();
    if let Some(g) = psc
        .and_then(|s| s.fs_group)
        .and_then(|g| u32::try_from(g).ok())
    {
        groups.push(g);
    }
    if uid.is_none() && gid.is_none() && groups.is_empty() {
        return Ok(None);
    }
    let uid = uid.and_then(|u| u32::try_from(u).ok()).unwrap_or(0);
    let gid = gid.and_then(|g| u32::try_from(g).ok()).unwrap_or(0);
    Ok(Some(spawn::Identity { uid, gid, groups }))
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
        let text = std::fs::read(log).unwrap_or_default();
        let start = text.len().saturating_sub(2048);
        let tail = String::from_utf8_lossy(&text[start..]).into_owned();
        let lines: Vec<&str> = tail.lines().collect();
        let keep = lines[lines.len().saturating_sub(80)..].join("\n");
        return (!keep.is_empty()).then_some(keep);
    }
    None
}

pub use crashscope_model::logfile::log_path;

/// Runs one container until the restart policy says it is done. Returns true when it ended
/// successfully (what init containers need).
async fn run_container(
    h: &PodHandle,
    c: &Container,
    init: bool,
    policy: &str,
    vols: &BTreeMap<String, PathBuf>,
    pod_dir: &std::path::Path,
) -> bool {
    let mut stop = h.stop.subscribe();
    let (ns, pod_name, uid) = {
        let r = h.lock();
        let m = &r.pod.metadata;
        (
            m.namespace.clone().unwrap_or_default(),
            m.name.clone().unwrap_or_default(),
            m.uid.clone().unwrap_or_default(),
        )
    };
    let cref = Some((c.name.as_str(), init));
    let image = c.image.clone().unwrap_or_default();
    let mut backoff = BackoffState::Clear;
    let scaled = h.node.scaled_policy();
    // The instance being started, and how the one before it ended; both become visible in
    // the status together with the new instance's state, as the kubelet reports them.
    let mut instance = 0i32;
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
            return false;
        }
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
            Err(Refused::Start(msg)) => Err(msg),
            // No container is created: the status waits with the kubelet's reason, restarts
            // do not count, and the kubelet tries again at its next sync.
            Err(Refused::Config(msg)) => {
                h.emit(
                    cref,
                    "kubelet",
                    EventType::Warning,
                    "Failed",
                    format!("Error: {msg}"),
                );
                h.set(&c.name, |s| {
                    s.state = Some(waiting("CreateContainerConfigError", Some(msg)));
                });
                let retry = h
                    .node
                    .scaled(Duration::from_secs(10))
                    .max(Duration::from_millis(100));
                tokio::select! {
                    _ = tokio::time::sleep(retry) => {}
                    _ = stop.wait_for(|s| *s) => return false,
                }
                continue;
            }
        };
        let (exit, term) = match launched {
            Err(msg) => {
                h.emit(
                    cref,
                    "kubelet",
                    EventType::Warning,
                    "Failed",
                    format!("Error: {msg}"),
                );
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
                        spawn::Running::signal(pid, libc::SIGTERM);
                        let grace = h.grace();
                        tokio::select! {
                            _ = tokio::time::sleep(grace) => {
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
                    message: termination_message(c, pod_dir, &log, exit.code),
                    started_at: Some(t(started_at)),
                    finished_at: Some(t(finished)),
                    container_id: None,
                };
                (exit, term)
            }
        };
        let finished = term
            .finished_at
            .as_ref()
            .map(|x| x.0)
            .unwrap_or_else(Timestamp::now);
        let success = exit.code == 0 && !exit.oom_killed;
        let restart = match policy {
            "Never" => false,
            "OnFailure" => !success,
            _ => !(init && success),
        };
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
        if !restart {
            return success;
        }
        // Back-off: wait in CrashLoopBackOff until the kubelet would restart.
        let mut announced = false;
        loop {
            let (next, decision) = backoff.step(&scaled, finished, Timestamp::now());
            backoff = next;
            match decision {
                Decision::RestartNow => break,
                Decision::Wait { until, step, .. } => {
                    let nominal = h.node.policy.delay_for_step(step);
                    if !announced {
                        announced = true;
                        let msg = crash_loop_message(nominal, &c.name, &pod_name, &ns, &uid);
                        let term = term.clone();
                        h.set(&c.name, |s| {
                            s.state = Some(waiting("CrashLoopBackOff", Some(msg)));
                            s.last_state = Some(ContainerState {
                                terminated: Some(term),
                                ..ContainerState::default()
                            });
                        });
                        h.emit(
                            cref,
                            "kubelet",
                            EventType::Warning,
                            "BackOff",
                            format!("Back-off restarting failed container {} in pod {pod_name}_{ns}({uid})", c.name),
                        );
                    }
                    let left = Duration::try_from(until.duration_since(Timestamp::now()))
                        .unwrap_or(Duration::ZERO);
                    if sleep_or_stop(left.max(Duration::from_millis(5)), &mut stop).await {
                        return false;
                    }
                }
            }
        }
        instance += 1;
        previous = Some(term);
    }
}

/// Runs the container's startup probe, then its liveness and readiness probes, until `stop`.
/// A failed startup or liveness probe kills the container (the restart loop restarts it); the
/// readiness probe sets `ready`.
async fn run_probes(h: PodHandle, c: Container, init: bool, pid: i32, stop: watch::Receiver<bool>) {
    use crate::probe_check::{check, Counter, Kind, Timing, Verdict};
    if init {
        return;
    }
    let kill = |why: String| {
        let h = h.clone();
        let name = c.name.clone();
        async move {
            h.emit(
                Some((name.as_str(), false)),
                "kubelet",
                EventType::Normal,
                "Killing",
                why,
            );
            spawn::Running::signal(pid, libc::SIGTERM);
            tokio::time::sleep(h.grace()).await;
            spawn::Running::signal(pid, libc::SIGKILL);
        }
    };
    // One probe loop: returns when it reaches a verdict that ends it (startup success,
    // startup or liveness failure), or never for readiness.
    let probe_loop = |kind: Kind, probe: k8s_openapi::api::core::v1::Probe| {
        let h = h.clone();
        let name = c.name.clone();
        let mut stop = stop.clone();
        async move {
            let timing = Timing::of(&probe);
            let mut counter = Counter::default();
            if sleep_or_stop(h.node.scaled(timing.initial_delay), &mut stop).await {
                return None;
            }
            loop {
                let result = check(&probe, pid, timing.timeout).await;
                if let Err(out) = &result {
                    h.emit(
                        Some((name.as_str(), false)),
                        "kubelet",
                        EventType::Warning,
                        "Unhealthy",
                        format!("{} probe failed: {out}", kind.title()),
                    );
                }
                let verdict = counter.step(&timing, result.is_ok());
                match (kind, verdict) {
                    (Kind::Readiness, Verdict::Succeeded | Verdict::Failed) => {
                        let ready = verdict == Verdict::Succeeded;
                        let changed = {
                            let mut r = h.lock();
                            match r.statuses.get_mut(&name) {
                                Some(s) if s.ready != ready => {
                                    s.ready = ready;
                                    true
                                }
                                _ => false,
                            }
                        };
                        if changed {
                            h.refresh_ready();
                        }
                    }
                    (Kind::Startup, Verdict::Succeeded) => return Some(true),
                    (_, Verdict::Failed) => return Some(false),
                    _ => {}
                }
                if sleep_or_stop(h.node.scaled(timing.period), &mut stop).await {
                    return None;
                }
            }
        }
    };
    if let Some(p) = c.startup_probe.clone() {
        match probe_loop(Kind::Startup, p).await {
            Some(true) => {
                if c.readiness_probe.is_none() {
                    h.set(&c.name, |s| s.ready = true);
                    h.refresh_ready();
                }
            }
            Some(false) => {
                kill(format!(
                    "Container {} failed startup probe, will be restarted",
                    c.name
                ))
                .await;
                return;
            }
            None => return,
        }
    }
    let liveness = c
        .liveness_probe
        .clone()
        .map(|p| probe_loop(Kind::Liveness, p));
    let readiness = c
        .readiness_probe
        .clone()
        .map(|p| probe_loop(Kind::Readiness, p));
    let readiness_task = readiness.map(tokio::spawn);
    if let Some(l) = liveness {
        if l.await == Some(false) {
            kill(format!(
                "Container {} failed liveness probe, will be restarted",
                c.name
            ))
            .await;
        }
    }
    if let Some(t) = readiness_task {
        let _ = t.await;
    }
}
