//! The kubelet of the local runtime: runs one pod — volumes, init containers in order, then
//! the app containers — restarting containers per `restartPolicy` with the kubelet's back-off,
//! and reporting container states, pod phase, conditions and events exactly as the kubelet
//! does. This module holds the pod: its handle, its start and its containers' order; each
//! container's lifecycle is in `container`, how a container is launched in `launch`, the
//! status the API shows in `status`, and health probes in `probes`.

mod container;
mod launch;
mod probes;
mod status;

use crashscope_model::backoff::BackoffPolicy;
use crashscope_model::capture::{ContainerRecorder, ContainerRef, WrittenCapture};
use crashscope_model::{Catalog, Event, EventType};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

use crate::events::pod_event;
use crate::volumes::{self, Sources};
use container::run_container;
use status::{condition, new_status, status, waiting, Record};

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

    /// Tells the recorder, if any, what the kubelet knows about the container of `pid`
    /// (it goes into the capture as a notification).
    fn note(&self, pid: i32, id: &str, text: String) {
        if let Some(rec) = &self.node.recorder {
            rec.note(pid, id, text);
        }
    }

    /// The pod's namespace, name and uid.
    fn ids(&self) -> (String, String, String) {
        let r = self.lock();
        let m = &r.pod.metadata;
        (
            m.namespace.clone().unwrap_or_default(),
            m.name.clone().unwrap_or_default(),
            m.uid.clone().unwrap_or_default(),
        )
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

/// The capture notification for a kill the kubelet made (probe failure, stop, grace expiry).
const KILL_NOTE: &str = "crashscope-kubelet-kill";
/// The capture notification for an OOM kill: the memory used against the limit.
const OOM_NOTE: &str = "crashscope-oom-memory";

/// Releases a pod's volumes when dropped.
struct Release(PathBuf);

impl Drop for Release {
    fn drop(&mut self) {
        volumes::release(&self.0);
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
    // Memory-backed volumes stay while the pod exists, finished or not, and go when it is
    // stopped (deleted, or the runtime stops).
    let release = Release(pod_dir.join("volumes"));
    run_containers(&h, &pod, &vols, &pod_dir).await;
    let _ = stop.wait_for(|s| *s).await;
    drop(release);
}

/// Runs the init containers in order, then the app containers, until each is done.
async fn run_containers(
    h: &PodHandle,
    pod: &Pod,
    vols: &BTreeMap<String, PathBuf>,
    pod_dir: &std::path::Path,
) {
    let stop = h.stop.subscribe();
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = spec
        .restart_policy
        .clone()
        .unwrap_or_else(|| "Always".into());
    for c in spec.init_containers.iter().flatten() {
        let ok = run_container(h, c, true, &policy, vols, pod_dir).await;
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
        let (h, policy, vols, dir) = (
            h.clone(),
            policy.clone(),
            vols.clone(),
            pod_dir.to_path_buf(),
        );
        tasks.push(tokio::spawn(async move {
            run_container(&h, &c, false, &policy, &vols, &dir).await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

pub use crashscope_model::logfile::log_path;
