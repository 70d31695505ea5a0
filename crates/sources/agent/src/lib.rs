//! The node agent (`crashscope agent`). Fed the pods scheduled to its node (the binary
//! watches the API server for them), it puts each pod's cgroup under the eBPF flight recorder (new containers are
//! recorded from their first program; running ones are adopted from `/proc`), writes a
//! capture when a container dies with a non-zero code or a signal and when the server asks
//! for one, and sends captures to the server — or keeps the newest on the node.

pub mod pods;
pub mod ship;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crashscope_model::capture::{ContainerRecorder, ContainerRef, WrittenCapture};
use crashscope_model::change::Change;
use crashscope_probe::cgroup;
use crashscope_probe::flight::{Discovery, FlightRecorder, Limits, Locate, OnDeath, Resolve};
use crashscope_probe::probe::ProbeError;
use crashscope_store::fulfil::{fulfil, Desk, Patience};
use crashscope_store::CaptureRequest;
use futures::{Stream, StreamExt};

use pods::NodePods;
use ship::{Server, Taken};

/// Why the agent cannot start, or what went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("--cgroup-root {0}: not a cgroup v2 hierarchy (no cgroup.procs)")]
    NotCgroup2(PathBuf),
    #[error("cannot read /proc/self/mountinfo: {0}")]
    Mountinfo(std::io::Error),
    #[error(
        "no cgroup2 hierarchy is mounted here: the agent finds pods by their cgroup v2 \
         (mount the host's /sys/fs/cgroup and pass --cgroup-root)"
    )]
    NoCgroup2,
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot reach the server at {url}: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("{url}: {status}: {body}")]
    Refused {
        url: String,
        status: String,
        body: String,
    },
    #[error("{what}: {source}")]
    Answer {
        what: String,
        source: reqwest::Error,
    },
}

/// How the agent runs: its node, where the host's processes and cgroups are, where captures
/// go and how many stay, the recorder's window, and the server captures are sent to.
pub struct Config {
    pub node: String,
    /// The host's `/proc` (the agent's pod sees the host's with hostPID).
    pub proc: PathBuf,
    /// The cgroup v2 hierarchy; found in `/proc/self/mountinfo` when unset.
    pub cgroup_root: Option<PathBuf>,
    /// Where captures are written on the node.
    pub dir: PathBuf,
    /// Captures kept on the node.
    pub keep: usize,
    pub limits: Limits,
    /// The server's base URL and bearer token; captures stay on the node without one.
    pub server: Option<(String, Option<String>)>,
    /// The cluster this node belongs to, sent with each capture (several clusters feeding
    /// one server).
    pub cluster: Option<String>,
}

/// A capture written, or not: (who, how it ended, the capture).
type Death = (ContainerRef, i32, Option<Result<WrittenCapture, String>>);

type PodDirs = Arc<Mutex<HashMap<String, PathBuf>>>;

/// The container cgroup (among the watched pods' directories) whose v2 id is `id`.
fn locate(dirs: &PodDirs, mount: &std::path::Path, id: u64) -> Option<cgroup::ContainerCgroup> {
    let dirs: Vec<PathBuf> = dirs.lock().ok()?.values().cloned().collect();
    dirs.iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|entries| entries.flatten())
        .find(|e| cgroup::dir_id(&e.path()) == Some(id))
        .and_then(|e| {
            let rel = e
                .path()
                .strip_prefix(mount)
                .ok()?
                .to_string_lossy()
                .into_owned();
            cgroup::container_of(&format!("/{rel}"))
        })
}

/// What the agent keeps between events.
struct Agent {
    node: String,
    proc: PathBuf,
    /// The cgroup v2 hierarchy, where pods' cgroups are found.
    mount: PathBuf,
    pods: Arc<Mutex<NodePods>>,
    recorder: FlightRecorder,
    /// Pod uid → the cgroup id watched for it.
    watched: HashMap<String, u64>,
    /// The watched pods' cgroup directories, where the recorder looks up new containers.
    pod_dirs: PodDirs,
    shipper: Arc<Shipper>,
}

/// The cgroup v2 hierarchy pods' cgroups are found in.
fn cgroup_mount(root: Option<&PathBuf>) -> Result<PathBuf, AgentError> {
    match root {
        Some(d) if d.join("cgroup.procs").exists() => Ok(d.clone()),
        Some(d) => Err(AgentError::NotCgroup2(d.clone())),
        None => {
            let mountinfo =
                std::fs::read_to_string("/proc/self/mountinfo").map_err(AgentError::Mountinfo)?;
            cgroup::v2_mount(&mountinfo).ok_or(AgentError::NoCgroup2)
        }
    }
}

/// Runs the agent on the pod changes of its node until they end or `shutdown` completes.
pub async fn run(
    cfg: Config,
    changes: impl Stream<Item = Change>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let mount = cgroup_mount(cfg.cgroup_root.as_ref())?;
    let server = cfg
        .server
        .map(|(url, token)| Server::new(&url, token, cfg.cluster.clone()))
        .transpose()?;
    let pods: Arc<Mutex<NodePods>> = Arc::default();
    let resolve: Resolve = {
        let pods = pods.clone();
        Arc::new(move |cg| pods.lock().ok()?.resolve(cg))
    };
    let (death_tx, mut deaths) = tokio::sync::mpsc::unbounded_channel::<Death>();
    let on_death: OnDeath = Arc::new(move |who, code, r| {
        let _ = death_tx.send((who, code, r));
    });
    let pod_dirs: PodDirs = Arc::default();
    let locate: Locate = {
        let (dirs, mount) = (pod_dirs.clone(), mount.clone());
        Arc::new(move |id| locate(&dirs, &mount, id))
    };
    let discovery = Discovery {
        proc: cfg.proc.clone(),
        locate,
        resolve,
        on_death,
    };
    let recorder = FlightRecorder::discovering(cfg.dir.clone(), cfg.limits, discovery)?;
    let mut agent = Agent {
        node: cfg.node.clone(),
        proc: cfg.proc.clone(),
        mount,
        pods,
        recorder,
        watched: HashMap::new(),
        pod_dirs,
        shipper: Arc::new(Shipper {
            server,
            node: cfg.node.clone(),
            dir: cfg.dir.clone(),
            keep: cfg.keep,
        }),
    };
    eprintln!(
        "crashscope agent on node {}: recording its pods (cgroups in {}); captures in {}{}",
        cfg.node,
        agent.mount.display(),
        cfg.dir.display(),
        agent
            .shipper
            .server
            .as_ref()
            .map(|_| ", sent to the server")
            .unwrap_or_default()
    );
    // The server's capture requests for this node's pods, long-polled.
    let requests = agent.shipper.server.is_some().then(|| {
        let desk = Arc::new(ServerDesk {
            shipper: agent.shipper.clone(),
            after: tokio::sync::Mutex::new(None),
        });
        let recorder: Arc<dyn ContainerRecorder> = Arc::new(agent.recorder.clone());
        let pods = agent.pods.clone();
        tokio::spawn(fulfil(desk, recorder, Patience::default(), move |req| {
            pods.lock().is_ok_and(|p| p.has(&req.namespace, &req.pod))
        }))
    });
    let mut stream = std::pin::pin!(changes);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            c = stream.next() => match c {
                Some(c) => agent.change(c),
                None => break,
            },
            Some((who, code, r)) = deaths.recv() => agent.died(&who, code, r).await,
            // Pods' cgroups appear when their sandboxes start: look for new ones.
            _ = tick.tick() => agent.sync(),
            _ = &mut shutdown => break,
        }
    }
    if let Some(r) = requests {
        r.abort();
    }
    eprintln!("crashscope agent stopping; the probe is detached");
    Ok(())
}

impl Agent {
    fn change(&mut self, c: Change) {
        match c {
            Change::Pod(p) => {
                if let Ok(mut pods) = self.pods.lock() {
                    pods.apply(*p);
                }
                self.sync();
            }
            Change::PodDeleted(p) => {
                if let Some(uid) = p.metadata.uid.as_deref() {
                    if let Some(id) = self.watched.remove(uid) {
                        self.recorder.unwatch_pod(id);
                    }
                    if let Ok(mut dirs) = self.pod_dirs.lock() {
                        dirs.remove(uid);
                    }
                }
                if let Ok(mut pods) = self.pods.lock() {
                    pods.delete(&p);
                }
            }
            Change::Synced(_) => {
                self.sync();
                eprintln!(
                    "node {}: {} pods, {} of them recorded",
                    self.node,
                    self.pods.lock().map(|p| p.uids().len()).unwrap_or(0),
                    self.watched.len()
                );
            }
            Change::Error { message, .. } => tracing::warn!("{message}"),
            _ => {}
        }
    }

    /// Watches the cgroups of pods not watched yet (a pod's cgroup appears when its
    /// sandbox starts) and adopts containers that were running before.
    fn sync(&mut self) {
        let uids = self.pods.lock().map(|p| p.uids()).unwrap_or_default();
        let mut new = false;
        for uid in uids {
            if self.watched.contains_key(&uid) {
                continue;
            }
            let Some(dir) = cgroup::pod_dir(&self.mount, &uid) else {
                continue;
            };
            let Some(id) = cgroup::dir_id(&dir) else {
                continue;
            };
            match self.recorder.watch_pod(id) {
                Ok(()) => {
                    tracing::info!("recording pod {uid} (cgroup {})", dir.display());
                    if let Ok(mut dirs) = self.pod_dirs.lock() {
                        dirs.insert(uid.clone(), dir);
                    }
                    self.watched.insert(uid, id);
                    new = true;
                }
                Err(e) => tracing::warn!("cannot watch pod {uid}: {e}"),
            }
        }
        if new {
            self.adopt_running();
        }
    }

    /// Containers of watched pods already running: recorded from now on.
    fn adopt_running(&self) {
        for (id, c) in cgroup::scan(&self.proc).containers {
            if !self.watched.contains_key(&c.cgroup.pod_uid) || self.recorder.knows(&id) {
                continue;
            }
            let Some(root) = cgroup::first_process(&self.proc, &c.pids) else {
                continue;
            };
            if let Err(e) = self.recorder.adopt(&c.cgroup, root, &c.pids) {
                tracing::warn!("cannot record container {id}: {e}");
            }
        }
    }

    async fn died(&self, who: &ContainerRef, code: i32, r: Option<Result<WrittenCapture, String>>) {
        let name = format!(
            "{}/{} container {} (restart {})",
            who.namespace, who.pod, who.container, who.instance
        );
        match r {
            None => tracing::info!("{name} exited {code}; no capture due"),
            Some(Err(e)) => eprintln!("{name} exited {code}; capture failed: {e}"),
            Some(Ok(c)) => {
                println!(
                    "{name} exited {code}: capture {} ({} events, {} dropped)",
                    c.path.display(),
                    c.events,
                    c.drops
                );
                let _ = self.shipper.deliver(who, &c, "crash", None).await;
            }
        }
    }
}

/// Where captures go: to the server (the node keeps no copy of what was sent) or kept on the
/// node; either way only the newest `keep` stay on the node.
struct Shipper {
    server: Option<Server>,
    node: String,
    dir: PathBuf,
    keep: usize,
}

impl Shipper {
    /// Ships a capture; answers with where it is now (the server's path, or the node's).
    async fn deliver(
        &self,
        who: &ContainerRef,
        c: &WrittenCapture,
        reason: &str,
        request: Option<i64>,
    ) -> Result<String, AgentError> {
        let mut at = Ok(c.path.display().to_string());
        if let Some(server) = &self.server {
            let taken = Taken {
                who,
                capture: c,
                reason,
                request,
                node: &self.node,
            };
            match server.send(&taken).await {
                Ok(rec) => {
                    println!("  sent to the server as capture {}", rec.id);
                    let _ = std::fs::remove_file(&c.path);
                    at = Ok(rec.path);
                }
                Err(e) => {
                    eprintln!("  kept on the node: {e}");
                    at = Err(e);
                }
            }
        }
        let gone = ship::retain(&self.dir, self.keep);
        if gone > 0 {
            tracing::info!("deleted {gone} old captures (--keep {})", self.keep);
        }
        at
    }
}

/// The server's capture requests, as the agent's desk: long-polled for ones it has not
/// seen, claimed over the API, fulfilled by sending the capture with the request's id.
struct ServerDesk {
    shipper: Arc<Shipper>,
    /// The largest request id seen.
    after: tokio::sync::Mutex<Option<i64>>,
}

impl Desk for ServerDesk {
    type Error = AgentError;

    async fn next(&self) -> Result<Vec<CaptureRequest>, AgentError> {
        let Some(server) = &self.shipper.server else {
            return Ok(Vec::new());
        };
        let mut after = self.after.lock().await;
        let open = server
            .open_requests(*after, Duration::from_secs(30))
            .await?;
        if let Some(max) = open.iter().map(|r| r.id).max() {
            *after = Some(after.map_or(max, |a| a.max(max)));
        }
        Ok(open)
    }

    async fn claim(&self, req: &CaptureRequest) -> Result<(), AgentError> {
        match &self.shipper.server {
            Some(server) => server.claim(req.id).await,
            None => Ok(()),
        }
    }

    async fn deliver(
        &self,
        req: &CaptureRequest,
        who: &ContainerRef,
        c: &WrittenCapture,
    ) -> Result<String, AgentError> {
        println!(
            "capture request {}: {}/{} container {}: {} ({} events)",
            req.id,
            who.namespace,
            who.pod,
            who.container,
            c.path.display(),
            c.events
        );
        self.shipper.deliver(who, c, "request", Some(req.id)).await
    }

    async fn give_up(&self, req: &CaptureRequest) -> Result<(), AgentError> {
        eprintln!(
            "capture request {}: nothing of the pod was recorded; giving it up",
            req.id
        );
        match &self.shipper.server {
            Some(server) => server.give_up(req.id).await,
            None => Ok(()),
        }
    }
}
