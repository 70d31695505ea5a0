//! `crashscope agent`: the node agent. It watches the API server for the pods scheduled to
//! its node, puts each pod's cgroup under the eBPF flight recorder (new containers are
//! recorded from their first program; running ones are adopted from `/proc`), writes a
//! capture when a container dies with a non-zero code or a signal and when the server asks
//! for one, and sends captures to the server — or keeps the newest on the node.

mod pods;
mod ship;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use crashscope_kube::watch::{node_pods, Change};
use crashscope_model::capture::{ContainerRecorder as _, ContainerRef, WrittenCapture};
use crashscope_model::duration::parse_go;
use crashscope_probe::cgroup;
use crashscope_probe::flight::{Discovery, FlightRecorder, Limits, Locate, OnDeath, Resolve};
use futures::StreamExt;

use crate::args::{AgentArgs, Global};
use pods::NodePods;
use ship::{Server, Taken};

/// A capture written, or not: (who, how it ended, the capture).
type Death = (ContainerRef, i32, Option<Result<WrittenCapture, String>>);
/// A capture request fulfilled: (request id, one result per container instance).
type Fulfilled = (i64, Vec<(ContainerRef, Result<WrittenCapture, String>)>);

fn duration(flag: &str, v: &str) -> Result<Duration> {
    parse_go(v).with_context(|| format!("--{flag} {v:?} is not a duration like 30s or 2m"))
}

fn token(a: &AgentArgs) -> Result<Option<String>> {
    match &a.token_file {
        Some(f) => Ok(Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("cannot read --token-file {}", f.display()))?
                .trim()
                .to_string(),
        )),
        None => Ok(std::env::var("CRASHSCOPE_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())),
    }
}

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
    dir: PathBuf,
    keep: usize,
    server: Option<Server>,
}

pub fn run(g: &Global, a: AgentArgs) -> Result<ExitCode> {
    let limits = Limits {
        before: duration("before", &a.before)?,
        after: duration("after", &a.after)?,
        max_bytes: a.max_mib.max(1) << 20,
        min_interval: duration("capture-interval", &a.capture_interval)?,
        snaplen: a.snaplen,
        env: a.env,
        latency: a.latency,
    };
    let dir = super::store_path(g)?
        .parent()
        .map_or_else(|| PathBuf::from("captures"), |d| d.join("captures"));
    let token = token(&a)?;
    let mount = match &a.cgroup_root {
        Some(d) if d.join("cgroup.procs").exists() => d.clone(),
        Some(d) => anyhow::bail!(
            "--cgroup-root {}: not a cgroup v2 hierarchy (no cgroup.procs)",
            d.display()
        ),
        None => {
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
                .context("cannot read /proc/self/mountinfo")?;
            cgroup::v2_mount(&mountinfo).context(
                "no cgroup2 hierarchy is mounted here: the agent finds pods by their cgroup \
                 v2 (mount the host's /sys/fs/cgroup and pass --cgroup-root)",
            )?
        }
    };
    super::runtime()?.block_on(async move {
        let client = super::kube_client(g).await?;
        let server = a
            .server
            .as_deref()
            .map(|u| Server::new(u, token))
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
            proc: a.proc.clone(),
            locate,
            resolve,
            on_death,
        };
        let recorder = FlightRecorder::discovering(dir.clone(), limits, discovery)?;
        let mut agent = Agent {
            node: a.node.clone(),
            proc: a.proc.clone(),
            mount,
            pods,
            recorder,
            watched: HashMap::new(),
            pod_dirs,
            dir: dir.clone(),
            keep: a.keep,
            server,
        };
        eprintln!(
            "crashscope agent on node {}: recording its pods (cgroups in {}); captures in {}{}",
            a.node,
            agent.mount.display(),
            dir.display(),
            agent
                .server
                .as_ref()
                .map(|_| ", sent to the server")
                .unwrap_or_default()
        );
        let (req_tx, mut fulfilled) = tokio::sync::mpsc::unbounded_channel::<Fulfilled>();
        let mut handled: HashSet<i64> = HashSet::new();
        let mut stream = Box::pin(node_pods(&client, &a.node, true));
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot handle SIGTERM")?;
        loop {
            tokio::select! {
                c = stream.next() => match c {
                    Some(c) => agent.change(c),
                    None => break,
                },
                Some((who, code, r)) = deaths.recv() => agent.died(&who, code, r).await,
                Some((id, results)) = fulfilled.recv() => agent.requested(id, results).await,
                _ = tick.tick() => {
                    agent.sync();
                    agent.take_requests(&mut handled, &req_tx).await;
                }
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
            }
        }
        eprintln!("crashscope agent stopping; the probe is detached");
        Ok(ExitCode::SUCCESS)
    })
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
                self.deliver(who, &c, "crash", None).await;
            }
        }
    }

    async fn requested(
        &self,
        id: i64,
        results: Vec<(ContainerRef, Result<WrittenCapture, String>)>,
    ) {
        if results.iter().all(|(_, r)| r.is_err()) {
            eprintln!("capture request {id}: nothing of the pod was recorded; giving it up");
            if let Some(server) = &self.server {
                if let Err(e) = server.give_up(id).await {
                    eprintln!("  {e:#}");
                }
            }
        }
        for (who, r) in results {
            match r {
                Ok(c) => {
                    println!(
                        "capture request {id}: {}/{} container {}: {} ({} events)",
                        who.namespace,
                        who.pod,
                        who.container,
                        c.path.display(),
                        c.events
                    );
                    self.deliver(&who, &c, "request", Some(id)).await;
                }
                Err(e) => eprintln!("capture request {id}: {}/{}: {e}", who.namespace, who.pod),
            }
        }
    }

    /// Sends a capture to the server (the node keeps no copy of what was sent), or keeps
    /// it; either way only the newest `keep` stay on the node.
    async fn deliver(
        &self,
        who: &ContainerRef,
        c: &WrittenCapture,
        reason: &str,
        request: Option<i64>,
    ) {
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
                }
                Err(e) => eprintln!("  kept on the node: {e:#}"),
            }
        }
        let gone = ship::retain(&self.dir, self.keep);
        if gone > 0 {
            tracing::info!("deleted {gone} old captures (--keep {})", self.keep);
        }
    }

    /// Starts the captures the server asks for of this node's pods.
    async fn take_requests(
        &self,
        handled: &mut HashSet<i64>,
        done: &tokio::sync::mpsc::UnboundedSender<Fulfilled>,
    ) {
        let Some(server) = &self.server else { return };
        let open = match server.open_requests().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("capture requests: {e:#}");
                return;
            }
        };
        for req in open {
            let ours = self
                .pods
                .lock()
                .is_ok_and(|p| p.has(&req.namespace, &req.pod));
            if !ours || !handled.insert(req.id) {
                continue;
            }
            let done = done.clone();
            let id = req.id;
            self.recorder.snapshot(
                &req.namespace,
                &req.pod,
                req.container.as_deref(),
                Duration::from_millis(u64::try_from(req.duration_ms).unwrap_or(0)),
                // A crash-looping container runs again within the longest back-off.
                Duration::from_secs(330),
                Box::new(move |r| {
                    let _ = done.send((id, r));
                }),
            );
        }
    }
}
