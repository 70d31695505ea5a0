//! The runtime: holds the applied objects (in the store, like an API server), reconciles them
//! into running pods — a Deployment's replicas named as the ReplicaSet controller names them —
//! serves cluster DNS, and writes pod states and events to the store for every other command.

use crashscope_model::backoff::BackoffPolicy;
use crashscope_model::change::Change;
use crashscope_model::{Catalog, Event};
use crashscope_store::fulfil::{fulfil, Patience, StoreDesk};
use crashscope_store::{Ingest, SqlStore, Store, StoreError};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

use crate::deployments::{Controllers, Outcome, PodView};
use crate::dns::{self, Resolve};
use crate::kubelet::{self, Node, PodHandle, Sink};
use crate::manifest::{Object, KINDS};
use crate::names;
use crate::volumes::Sources;

/// Store kind under which applied manifests are kept (the status of pods is kind `Pod`).
pub fn applied_kind(kind: &str) -> String {
    format!("applied/{kind}")
}

/// Settings of a runtime.
#[derive(Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub time_scale: f64,
    pub policy: BackoffPolicy,
    /// Loopback address of the cluster DNS (port 53).
    pub dns: Ipv4Addr,
    pub node_name: String,
    /// Records each container's system calls and writes a capture when one fails.
    pub recorder: Option<Arc<dyn crashscope_model::capture::ContainerRecorder>>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("time_scale", &self.time_scale)
            .field("node_name", &self.node_name)
            .field("recorder", &self.recorder.is_some())
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn new(data_dir: PathBuf) -> Config {
        Config {
            data_dir,
            time_scale: 1.0,
            policy: BackoffPolicy::kubelet(),
            dns: Ipv4Addr::new(127, 0, 99, 1),
            node_name: "crashscope-local".into(),
            recorder: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("the local runtime needs root (namespaces, mounts, cgroups); run it with sudo")]
    NotRoot,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot serve cluster DNS on {addr}: {source}")]
    Dns {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Object(String),
    #[error("another local runtime is running on {0} (two would run every pod twice)")]
    Busy(String),
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The lock a running runtime holds on its data directory: the kernel drops it when the
/// process ends, however it ends.
const RUN_LOCK: &str = "runtime.lock";

/// An open-file-description lock on the whole file (`F_OFD_SETLK`/`F_OFD_GETLK`): it goes
/// when the file is closed, and it can be asked about without taking it.
fn whole_file(kind: libc::c_short) -> libc::flock {
    libc::flock {
        l_type: kind,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

/// Takes the data directory's run lock; None when another runtime holds it.
fn take_run_lock(data_dir: &std::path::Path) -> std::io::Result<Option<std::fs::File>> {
    use std::os::fd::AsRawFd;
    crashscope_store::private::dir(data_dir)?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data_dir.join(RUN_LOCK))?;
    let lk = whole_file(libc::F_WRLCK as libc::c_short);
    // SAFETY: a valid descriptor owned by `f` and a lock description on the stack.
    if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_SETLK, &lk) } != 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(None),
            _ => Err(e),
        };
    }
    Ok(Some(f))
}

/// Whether a local runtime is running on `data_dir` now (asked without taking the lock, so
/// asking never stands in a starting runtime's way).
pub fn running_on(data_dir: &std::path::Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(f) = std::fs::File::open(data_dir.join(RUN_LOCK)) else {
        return false;
    };
    let mut lk = whole_file(libc::F_WRLCK as libc::c_short);
    // SAFETY: a valid descriptor owned by `f` and a lock description on the stack.
    let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_GETLK, &mut lk) };
    r == 0 && lk.l_type != libc::F_UNLCK as libc::c_short
}

/// The objects currently applied, as the kubelet and DNS see them.
#[derive(Default)]
struct Cluster {
    objects: BTreeMap<(String, String, String), Object>,
}

impl Cluster {
    fn get(&self, kind: &str, ns: &str, name: &str) -> Option<&Object> {
        self.objects
            .get(&(kind.to_string(), ns.to_string(), name.to_string()))
    }
}

struct Shared(Mutex<Cluster>);

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Cluster> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Sources for Shared {
    fn config_map(&self, ns: &str, name: &str) -> Option<ConfigMap> {
        match self.lock().get("ConfigMap", ns, name) {
            Some(Object::ConfigMap(c)) => Some((**c).clone()),
            _ => None,
        }
    }
    fn secret(&self, ns: &str, name: &str) -> Option<Secret> {
        match self.lock().get("Secret", ns, name) {
            Some(Object::Secret(s)) => Some((**s).clone()),
            _ => None,
        }
    }
}

impl Resolve for Shared {
    fn service_ip(&self, ns: &str, name: &str) -> Option<Ipv4Addr> {
        match self.lock().get("Service", ns, name) {
            // Pods share the host's network, so a Service is reached on loopback.
            Some(Object::Service(_)) => Some(Ipv4Addr::LOCALHOST),
            _ => None,
        }
    }
}

enum Update {
    /// A pod's state, an event, or a pod gone (a newer pod of the same name is kept): the
    /// store's ingest writer records them as it records a cluster's.
    Change(Change),
    /// A capture was written (for the store's capture index).
    Capture(Box<crashscope_store::CaptureRecord>),
}

struct ChannelSink(mpsc::UnboundedSender<Update>);

impl Sink for ChannelSink {
    fn pod(&self, pod: &Pod) {
        let _ = self
            .0
            .send(Update::Change(Change::Pod(Box::new(pod.clone()))));
    }
    fn event(&self, event: Event) {
        let _ = self
            .0
            .send(Update::Change(Change::Occurred(Box::new(event))));
    }
    fn capture(
        &self,
        who: &crashscope_model::capture::ContainerRef,
        c: &crashscope_model::capture::WrittenCapture,
    ) {
        let record = crashscope_store::fulfil::capture_record(who, c, "crash");
        let _ = self.0.send(Update::Capture(Box::new(record)));
    }
}

/// Adds the API server's fields to an applied object (uid, namespace, creation time).
fn admit(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
    meta.namespace.get_or_insert_with(|| "default".into());
    meta.uid.get_or_insert_with(names::uid);
    meta.creation_timestamp
        .get_or_insert(Time(Timestamp::now()));
}

/// Namespaces every cluster has.
const BUILTIN_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Validates and stores objects as applied (the runtime picks them up on its next pass).
/// Objects in a namespace that does not exist are refused, as the API server refuses them.
pub async fn apply(store: &SqlStore, objects: Vec<Object>) -> Result<Vec<String>, RuntimeError> {
    let mut known: Vec<String> = BUILTIN_NAMESPACES.iter().map(|s| s.to_string()).collect();
    for v in store.objects(&applied_kind("Namespace")).await? {
        if let Some(n) = v.pointer("/metadata/name").and_then(Value::as_str) {
            known.push(n.to_string());
        }
    }
    known.extend(
        objects
            .iter()
            .filter(|o| o.kind() == "Namespace")
            .map(|o| o.name().to_string()),
    );
    if let Some(o) = objects
        .iter()
        .find(|o| o.kind() != "Namespace" && !known.iter().any(|k| k == o.namespace()))
    {
        return Err(RuntimeError::Object(format!(
            "{} {:?}: namespaces {:?} not found",
            o.kind(),
            o.name(),
            o.namespace()
        )));
    }
    let mut done = Vec::new();
    for o in objects {
        let kind = o.kind();
        let ns = o.namespace().to_string();
        let name = o.name().to_string();
        let existing = store
            .objects(&applied_kind(kind))
            .await?
            .into_iter()
            .find(|v| {
                v.pointer("/metadata/name").and_then(Value::as_str) == Some(name.as_str())
                    && v.pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        == ns
            });
        let mut body = o.to_json();
        if let Some(meta) = body.get_mut("metadata") {
            let mut m: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
                serde_json::from_value(meta.clone()).unwrap_or_default();
            if kind != "Namespace" {
                admit(&mut m);
            }
            // Re-applying keeps the identity of what is already there.
            if let Some(old) = &existing {
                m.uid = old
                    .pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                m.creation_timestamp = serde_json::from_value(
                    old.pointer("/metadata/creationTimestamp")
                        .cloned()
                        .unwrap_or(Value::Null),
                )
                .ok()
                .flatten();
            }
            *meta = serde_json::to_value(m).unwrap_or(Value::Null);
        }
        store
            .put_object(&applied_kind(kind), &ns, &name, &body)
            .await?;
        let verb = if existing.is_some() {
            "configured"
        } else {
            "created"
        };
        done.push(format!("{}/{name} {verb}", kind.to_lowercase()));
    }
    Ok(done)
}

/// Removes applied objects; their pods are stopped by the runtime.
pub async fn delete(store: &SqlStore, objects: &[Object]) -> Result<Vec<Deleted>, RuntimeError> {
    let mut done = Vec::new();
    for o in objects {
        let existed = store
            .delete_object(&applied_kind(o.kind()), o.namespace(), o.name())
            .await?;
        let kind = o.kind().to_lowercase();
        done.push(if existed {
            Deleted::Deleted(format!("{kind} \"{}\" deleted", o.name()))
        } else {
            // kubectl's words for an object the API server does not have.
            Deleted::NotFound(format!(
                "Error from server (NotFound): {kind}s \"{}\" not found",
                o.name()
            ))
        });
    }
    Ok(done)
}

/// What `delete` did with one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    Deleted(String),
    /// It was not there: an error, as kubectl makes it.
    NotFound(String),
}

/// A running pod and what created it.
struct Running {
    handle: PodHandle,
    /// Applied Pod key, or Deployment key + template hash.
    owner: String,
}

/// The runtime; `run` drives it until `shutdown` resolves.
pub struct Runtime {
    cfg: Config,
    store: Arc<SqlStore>,
}

impl Runtime {
    pub fn new(cfg: Config, store: Arc<SqlStore>) -> Runtime {
        Runtime { cfg, store }
    }

    /// Runs until `shutdown` completes, then stops every container and returns.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), RuntimeError> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(RuntimeError::NotRoot);
        }
        let _lock = take_run_lock(&self.cfg.data_dir)
            .map_err(|source| RuntimeError::Lock {
                path: self.cfg.data_dir.join(RUN_LOCK).display().to_string(),
                source,
            })?
            .ok_or_else(|| RuntimeError::Busy(self.cfg.data_dir.display().to_string()))?;
        // Cgroups an earlier runtime left behind are empty now (its containers died with it).
        for root in [
            "/sys/fs/cgroup/memory/crashscope",
            "/sys/fs/cgroup/crashscope",
        ] {
            if let Ok(dirs) = std::fs::read_dir(root) {
                for d in dirs.flatten() {
                    let _ = std::fs::remove_dir(d.path());
                }
            }
        }
        // Pods an earlier runtime kept for its post-mortem are cleared: this run starts its own.
        for p in self.store.objects("Pod").await? {
            let field = |path: &str| p.pointer(path).and_then(Value::as_str).unwrap_or("");
            let (ns, name) = (field("/metadata/namespace"), field("/metadata/name"));
            let key = STOPPED_ANNOTATION.replace('/', "~1");
            let at = field(&format!("/metadata/annotations/{key}"));
            if !at.is_empty() {
                tracing::warn!("clearing pod {ns}/{name} kept from the run that stopped at {at}");
            }
            self.store.delete_object("Pod", ns, name).await?;
        }
        let shared = Arc::new(Shared(Mutex::new(Cluster::default())));
        let dns_addr = SocketAddr::new(self.cfg.dns.into(), 53);
        let sock_check =
            std::net::UdpSocket::bind(dns_addr).map_err(|source| RuntimeError::Dns {
                addr: dns_addr,
                source,
            })?;
        drop(sock_check);
        let dns_task = tokio::spawn(dns::serve(dns_addr, shared.clone()));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let node = Arc::new(Node {
            name: self.cfg.node_name.clone(),
            data_dir: self.cfg.data_dir.clone(),
            time_scale: self.cfg.time_scale,
            policy: self.cfg.policy,
            dns: self.cfg.dns,
            sink: Arc::new(ChannelSink(tx.clone())),
            sources: shared.clone(),
            catalog: Catalog::builtin(),
            recorder: self.cfg.recorder.clone(),
        });
        let store = self.store.clone();
        let writer = tokio::spawn(async move {
            let mut ingest = Ingest::new(&*store, Catalog::builtin()).keeping_pods();
            while let Some(u) = rx.recv().await {
                let r = match u {
                    Update::Change(c) => ingest.record(c).await.map(|_| ()),
                    Update::Capture(c) => store.index_capture(&c).await.map(|_| ()),
                };
                if let Err(e) = r {
                    tracing::error!("store write failed: {e}");
                }
            }
        });
        let mut pods: BTreeMap<(String, String), Running> = BTreeMap::new();
        let mut controllers = Controllers::new(Catalog::builtin(), self.cfg.time_scale);
        let requests = self.cfg.recorder.clone().map(|rec| {
            // Requests made by this process wake the desk at once; another process's are
            // found within the poll.
            let poll = Duration::from_secs(10).mul_f64(self.cfg.time_scale.clamp(0.05, 1.0));
            let desk = Arc::new(StoreDesk::new(self.store.clone(), poll));
            let patience = Patience {
                scale: self.cfg.time_scale,
                ..Patience::default()
            };
            tokio::spawn(fulfil(desk, rec, patience, |_| true))
        });
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self
                .reconcile(&shared, &node, &mut pods, &mut controllers, &tx)
                .await
            {
                tracing::error!("reconcile: {e}");
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
        // Each pod as it was before the stop, kept for the post-mortem (get pods, describe,
        // logs --previous, diagnose after the runtime is gone), marked with when it stopped.
        let last: Vec<Pod> = pods.values().map(|r| r.handle.snapshot()).collect();
        for r in pods.values() {
            r.handle.stop();
        }
        // Give containers their (scaled) grace period, then they are SIGKILLed by the kubelet.
        let grace = Duration::from_secs(30)
            .mul_f64(self.cfg.time_scale)
            .min(Duration::from_secs(30));
        tokio::time::sleep(grace.max(Duration::from_millis(300))).await;
        let stopped = Timestamp::now().to_string();
        for mut p in last {
            p.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(STOPPED_ANNOTATION.into(), stopped.clone());
            let _ = tx.send(Update::Change(Change::Pod(Box::new(p))));
        }
        drop(tx);
        drop(node);
        dns_task.abort();
        if let Some(r) = requests {
            r.abort();
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
        Ok(())
    }

    async fn reconcile(
        &self,
        shared: &Arc<Shared>,
        node: &Arc<Node>,
        pods: &mut BTreeMap<(String, String), Running>,
        controllers: &mut Controllers,
        tx: &mpsc::UnboundedSender<Update>,
    ) -> Result<(), RuntimeError> {
        let mut objects = BTreeMap::new();
        for kind in KINDS {
            for v in self.store.objects(&applied_kind(kind)).await? {
                match Object::from_json(kind, v) {
                    Ok(o) => {
                        objects.insert(
                            (
                                kind.to_string(),
                                o.namespace().to_string(),
                                o.name().to_string(),
                            ),
                            o,
                        );
                    }
                    Err(e) => tracing::warn!("skipping an applied {kind}: {e}"),
                }
            }
        }
        // Desired pods: (namespace, name) -> (owner key, pod).
        let mut want: BTreeMap<(String, String), (String, Pod)> = BTreeMap::new();
        // What the controllers see of the pods (a snapshot each): only with a Deployment.
        let any_deployment = objects.keys().any(|(kind, _, _)| kind == "Deployment");
        let views: Vec<PodView<'_>> = pods
            .iter()
            .filter(|_| any_deployment)
            .map(|((_, n), r)| PodView {
                owner: &r.owner,
                name: n,
                pod: r.handle.snapshot(),
            })
            .collect();
        let mut outcome = Outcome::default();
        for ((kind, ns, name), o) in &objects {
            match o {
                Object::Pod(p) if kind == "Pod" => {
                    want.insert(
                        (ns.clone(), name.clone()),
                        (format!("Pod/{ns}/{name}"), (**p).clone()),
                    );
                }
                Object::Deployment(d) => {
                    controllers
                        .deployment(&self.store, (ns, name), d, &views, &mut outcome)
                        .await?;
                }
                _ => {}
            }
        }
        controllers
            .forget_all_but(
                &self.store,
                |(ns, name)| {
                    objects.contains_key(&("Deployment".to_string(), ns.clone(), name.clone()))
                },
                &mut outcome,
            )
            .await?;
        drop(views);
        want.extend(outcome.want);
        for c in outcome.changes {
            let _ = tx.send(Update::Change(c));
        }
        for e in outcome.events {
            let _ = tx.send(Update::Change(Change::Occurred(Box::new(e))));
        }
        shared.lock().objects = objects;
        // Stop pods no longer wanted.
        let gone: Vec<(String, String)> = pods
            .keys()
            .filter(|k| !want.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(r) = pods.remove(&key) {
                r.handle.stop();
                let uid = r.handle.snapshot().metadata.uid;
                let (tx, grace) = (
                    tx.clone(),
                    Duration::from_secs(2).mul_f64(self.cfg.time_scale.max(0.05)),
                );
                tokio::spawn(async move {
                    tokio::time::sleep(grace).await;
                    let gone = Pod {
                        metadata: ObjectMeta {
                            namespace: Some(key.0),
                            name: Some(key.1),
                            uid,
                            ..Default::default()
                        },
                        ..Default::default()
                    };
                    let _ = tx.send(Update::Change(Change::PodDeleted(Box::new(gone))));
                });
            }
        }
        // Start pods that are wanted and not running.
        for (key, (owner, mut pod)) in want {
            if pods.contains_key(&key) {
                continue;
            }
            admit(&mut pod.metadata);
            // Each pod instance gets its own identity.
            pod.metadata.uid = Some(names::uid());
            pod.metadata.creation_timestamp = Some(Time(Timestamp::now()));
            // Views read restart times off the pod: say how fast this runtime's clock runs.
            if self.cfg.time_scale != 1.0 {
                pod.metadata
                    .annotations
                    .get_or_insert_with(Default::default)
                    .insert(
                        crashscope_model::backoff::TIME_SCALE_ANNOTATION.into(),
                        self.cfg.time_scale.to_string(),
                    );
            }
            if let Some(spec) = pod.spec.as_mut() {
                spec.node_name = Some(self.cfg.node_name.clone());
                crate::defaults::apply(spec);
            }
            let handle = kubelet::start(node.clone(), pod);
            pods.insert(key, Running { handle, owner });
        }
        Ok(())
    }
}

/// Marks the pods a stopped runtime left in the store (with the time it stopped): they are
/// what the pods looked like then, not running containers.
pub const STOPPED_ANNOTATION: &str = "crashscope.io/runtime-stopped";
