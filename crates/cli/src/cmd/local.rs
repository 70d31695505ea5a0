//! The local runtime's commands: `run`, `apply`, `delete`, `logs`.

use anyhow::{bail, Context, Result};
use crashscope_local::manifest::{self, Object};
use crashscope_local::runtime::{self, Config, Runtime};
use crashscope_store::{EventQuery, SqlStore, Store};
use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::args::{Global, LogsArgs, ManifestArgs, RunArgs};
use crate::inputs;

/// Reads manifests from files; reports every problem and fails if there was any, so that a
/// runtime never starts half of what was asked.
pub fn read_manifests(files: &[PathBuf]) -> Result<Vec<Object>> {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        let name = f.display().to_string();
        match std::fs::read_to_string(f) {
            Ok(text) => {
                let (o, e) = manifest::parse(&name, &text);
                objects.extend(o);
                errors.extend(e);
            }
            Err(e) => errors.push(crashscope_kube::load::LoadError {
                file: name,
                object: None,
                problem: format!("cannot read: {e}"),
            }),
        }
    }
    if inputs::report(&errors) {
        bail!("nothing was applied: fix the manifests above");
    }
    Ok(objects)
}

pub fn multi_thread() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn config(g: &Global, rt: &crate::args::Runtime) -> Result<Config> {
    let path = super::store_path(g)?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut cfg = Config::new(dir);
    cfg.time_scale = rt.time_scale;
    cfg.policy = super::backoff_policy(g)?;
    cfg.dns = rt.dns;
    Ok(cfg)
}

/// The flight recorder for the runtime's containers, unless turned off; a probe that cannot
/// load is a warning, not a failure (the runtime works without it).
pub fn recorder(
    cfg: &Config,
    rt: &crate::args::Runtime,
) -> Option<Arc<dyn crashscope_model::capture::ContainerRecorder>> {
    use crashscope_probe::flight::{FlightRecorder, Limits};
    if rt.no_record {
        return None;
    }
    let d = Limits::default();
    let limits = Limits {
        // Back-off and probes run faster with --time-scale; so do the tail and the rate limit.
        after: d
            .after
            .mul_f64(rt.time_scale)
            .max(Duration::from_millis(300)),
        min_interval: d.min_interval.mul_f64(rt.time_scale),
        ..d
    };
    match FlightRecorder::start(cfg.data_dir.join("captures"), limits) {
        Ok(r) => Some(Arc::new(r)),
        Err(e) => {
            eprintln!("warning: containers are not recorded: {e}");
            None
        }
    }
}

/// Prints new and repeated events of the store as they arrive, kubectl `get events -w` style.
pub async fn feed(store: Arc<SqlStore>, since: jiff::Timestamp) {
    let mut seen: HashMap<i64, u32> = HashMap::new();
    loop {
        let q = EventQuery {
            since: Some(since),
            limit: Some(200),
            ..EventQuery::default()
        };
        if let Ok(mut evs) = store.events(&q).await {
            evs.reverse();
            for e in evs {
                if seen.get(&e.id) == Some(&e.event.count) {
                    continue;
                }
                seen.insert(e.id, e.event.count);
                let ev = &e.event;
                let obj = ev
                    .involved
                    .as_ref()
                    .map(|o| format!("pod/{}", o.name))
                    .unwrap_or_default();
                let count = if ev.count > 1 {
                    format!(" (x{})", ev.count)
                } else {
                    String::new()
                };
                println!(
                    "{}  {:<7}  {:<12} {obj}: {}{count}",
                    ev.last_seen.strftime("%H:%M:%S"),
                    ev.event_type.as_str(),
                    ev.reason,
                    ev.message
                );
                let _ = std::io::stdout().flush();
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub fn run(g: &Global, a: RunArgs) -> Result<ExitCode> {
    let objects = read_manifests(&a.files)?;
    let mut cfg = config(g, &a.runtime)?;
    cfg.recorder = recorder(&cfg, &a.runtime);
    let path = super::store_path(g)?;
    multi_thread()?.block_on(async {
        let store = Arc::new(SqlStore::open(&path).await?);
        for line in runtime::apply(&store, objects).await? {
            println!("{line}");
        }
        let since = jiff::Timestamp::now();
        let printer = tokio::spawn(feed(store.clone(), since));
        let rt = Runtime::new(cfg, store);
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!("stopping: terminating containers…");
        };
        let r = rt.run(stop).await;
        printer.abort();
        r?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn apply(g: &Global, a: ManifestArgs, delete: bool) -> Result<ExitCode> {
    let objects = read_manifests(&a.files)?;
    let path = super::store_path(g)?;
    let missing = super::runtime()?.block_on(async {
        let store = SqlStore::open(&path).await?;
        let mut missing = false;
        if delete {
            for d in runtime::delete(&store, &objects).await? {
                match d {
                    runtime::Deleted::Deleted(l) => println!("{l}"),
                    runtime::Deleted::NotFound(l) => {
                        eprintln!("{l}");
                        missing = true;
                    }
                }
            }
        } else {
            for l in runtime::apply(&store, objects).await? {
                println!("{l}");
            }
            // Stored is not running: say so when nothing will pick it up.
            let dir = path.parent().unwrap_or(Path::new("."));
            if !runtime::running_on(dir) {
                eprintln!(
                    "note: no local runtime is running on {}: `crashscope run` (or `crashscope serve --local`) starts what is applied",
                    dir.display()
                );
            }
        }
        anyhow::Ok(missing)
    })?;
    Ok(super::status(missing))
}

/// The log file of the container asked for (current or previous instance), and that
/// instance's number.
fn log_file(logs: &Logs, a: &LogsArgs) -> Result<(PathBuf, i32)> {
    let ns = a.namespace.as_deref().unwrap_or("default");
    let Some(pod) = logs.pod(a)? else {
        bail!("pods \"{}\" not found in namespace {ns}", a.pod);
    };
    let container = chosen_container(&pod, a).context("the pod has no containers")?;
    if a.container.is_none() {
        let names = container_names(&pod);
        if names.len() > 1 {
            // As kubectl says it; the crash-looping container is the one people ask about.
            eprintln!(
                "Defaulted container \"{container}\" out of: {}",
                names.join(", ")
            );
        }
    }
    let status = pod.status.clone().unwrap_or_default();
    let st = status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten())
        .find(|s| s.name == container)
        .with_context(|| {
            format!(
                "container \"{container}\" is not valid for pod \"{}\"",
                a.pod
            )
        })?;
    let instance = if a.previous {
        if st.restart_count == 0 {
            bail!(
                "previous terminated container \"{container}\" in pod \"{}\" not found",
                a.pod
            );
        }
        st.restart_count - 1
    } else {
        st.restart_count
    };
    let file = crashscope_local::kubelet::log_path(
        &logs.dir,
        ns,
        &a.pod,
        pod.metadata.uid.as_deref().unwrap_or(""),
        &container,
        instance,
    );
    Ok((file, instance))
}

/// The local runtime's store, opened once for a `logs` run (its follow loop asks it again
/// and again whether the instance still runs).
struct Logs {
    rt: tokio::runtime::Runtime,
    store: SqlStore,
    /// The data directory the logs are under.
    dir: PathBuf,
}

impl Logs {
    fn open(g: &Global) -> Result<Logs> {
        let path = super::store_path(g)?;
        let rt = super::runtime()?;
        let store = rt.block_on(SqlStore::open(&path))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Logs { rt, store, dir })
    }

    /// The stored pod the flags name.
    fn pod(&self, a: &LogsArgs) -> Result<Option<k8s_openapi::api::core::v1::Pod>> {
        let ns = a.namespace.as_deref().unwrap_or("default");
        let found = self
            .rt
            .block_on(self.store.objects("Pod"))?
            .into_iter()
            .find(|p| {
                p.pointer("/metadata/name").and_then(|v| v.as_str()) == Some(a.pod.as_str())
                    && p.pointer("/metadata/namespace").and_then(|v| v.as_str()) == Some(ns)
            });
        Ok(found.map(serde_json::from_value).transpose()?)
    }
}

/// Every container of the pod as kubectl lists them: app containers, then init ones marked.
fn container_names(pod: &k8s_openapi::api::core::v1::Pod) -> Vec<String> {
    let spec = pod.spec.clone().unwrap_or_default();
    spec.containers
        .iter()
        .map(|c| c.name.clone())
        .chain(
            spec.init_containers
                .iter()
                .flatten()
                .map(|c| format!("{} (init)", c.name)),
        )
        .collect()
}

/// The container `-c` names; without it the one that is crashing (the most restarts,
/// init containers included), else the first.
fn chosen_container(pod: &k8s_openapi::api::core::v1::Pod, a: &LogsArgs) -> Option<String> {
    if let Some(c) = &a.container {
        return Some(c.clone());
    }
    let status = pod.status.clone().unwrap_or_default();
    let crashing = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .filter(|s| s.restart_count > 0)
        .max_by_key(|s| s.restart_count)
        .map(|s| s.name.clone());
    crashing.or_else(|| {
        pod.spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .map(|c| c.name.clone())
    })
}

/// The last `n` lines of `buf` (all of it when `n` is negative, as kubectl's `--tail -1`).
fn tail_lines(buf: &[u8], n: i64) -> &[u8] {
    let Ok(n) = usize::try_from(n) else {
        return buf;
    };
    let body = buf.strip_suffix(b"\n").unwrap_or(buf);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return &buf[i + 1..];
            }
        }
    }
    if n == 0 {
        &[]
    } else {
        buf
    }
}

/// Whether instance `instance` of the container asked for is still running (so `-f` goes on).
fn still_running(logs: &Logs, a: &LogsArgs, instance: i32) -> bool {
    let Ok(Some(pod)) = logs.pod(a) else {
        return false;
    };
    let name = chosen_container(&pod, a);
    let status = pod.status.unwrap_or_default();
    status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten())
        .find(|s| Some(&s.name) == name.as_ref())
        .is_some_and(|s| {
            s.restart_count == instance && s.state.as_ref().is_some_and(|st| st.running.is_some())
        })
}

pub fn logs(g: &Global, a: LogsArgs) -> Result<ExitCode> {
    if super::cluster(g) {
        return cluster_logs(g, a);
    }
    let logs = Logs::open(g)?;
    if a.all_containers {
        return all_container_logs(&logs, &a);
    }
    let (file, instance) = log_file(&logs, &a)?;
    let mut f = std::fs::File::open(&file)
        .with_context(|| format!("no log for this container yet ({})", file.display()))?;
    let mut out = std::io::stdout();
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    out.write_all(a.tail.map_or(&buf[..], |n| tail_lines(&buf, n)))?;
    // A previous instance has ended: there is nothing to follow (kubectl returns too).
    if !a.follow || a.previous {
        return Ok(ExitCode::SUCCESS);
    }
    // As kubectl: follow until the instance ends, then print what it wrote last and stop.
    let mut idle = 0u32;
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let pos = f.stream_position()?;
        buf.clear();
        f.read_to_end(&mut buf)?;
        if buf.is_empty() && std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) < pos {
            break;
        }
        if buf.is_empty() {
            idle += 1;
            if idle.is_multiple_of(4) && !still_running(&logs, &a, instance) {
                f.read_to_end(&mut buf)?;
                out.write_all(&buf)?;
                break;
            }
            continue;
        }
        idle = 0;
        out.write_all(&buf)?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `logs --all-containers`: each container's log in spec order, init containers first, as
/// kubectl prints them; a container with no such instance (an init container that never
/// ran, no previous run) is said on stderr and skipped.
fn all_container_logs(logs: &Logs, a: &LogsArgs) -> Result<ExitCode> {
    let ns = a.namespace.as_deref().unwrap_or("default");
    let Some(pod) = logs.pod(a)? else {
        bail!("pods \"{}\" not found in namespace {ns}", a.pod);
    };
    let spec = pod.spec.clone().unwrap_or_default();
    let names: Vec<String> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .map(|c| c.name.clone())
        .collect();
    let mut out = std::io::stdout();
    for name in names {
        let one = LogsArgs {
            container: Some(name.clone()),
            all_containers: false,
            ..a.clone()
        };
        let found = log_file(logs, &one)
            .and_then(|(file, _)| std::fs::read(&file).map_err(anyhow::Error::from));
        match found {
            Ok(buf) => out.write_all(a.tail.map_or(&buf[..], |n| tail_lines(&buf, n)))?,
            Err(e) => eprintln!("container \"{name}\": {e}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `logs` against the cluster: the API server's log of the container (or of its previous
/// instance), streamed with -f.
fn cluster_logs(g: &Global, a: LogsArgs) -> Result<ExitCode> {
    if a.all_containers {
        bail!(
            "--all-containers reads the local runtime's logs; against a cluster name one with -c"
        );
    }
    use crashscope_kube::cluster::LogRequest;
    use futures::StreamExt;
    super::runtime()?.block_on(async {
        let client = super::kube_client(g).await?;
        let req = LogRequest {
            namespace: super::cluster_namespace(&client, a.namespace.as_deref(), false)
                .unwrap_or_else(|| "default".into()),
            pod: a.pod.clone(),
            container: a.container.clone(),
            previous: a.previous,
            tail_lines: a.tail,
        };
        let mut out = std::io::stdout();
        if a.follow {
            let mut lines = Box::pin(req.follow(&client).await?);
            while let Some(line) = lines.next().await {
                writeln!(out, "{}", line?)?;
                out.flush()?;
            }
        } else {
            out.write_all(req.fetch(&client).await?.as_bytes())?;
        }
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::tail_lines;

    #[test]
    fn tail_keeps_the_last_lines_as_kubectl() {
        let log = b"one\ntwo\nthree\n";
        assert_eq!(tail_lines(log, 2), b"two\nthree\n");
        assert_eq!(tail_lines(log, 1), b"three\n");
        assert_eq!(tail_lines(log, 5), log);
        assert_eq!(tail_lines(log, -1), log);
        assert_eq!(tail_lines(log, 0), b"");
        assert_eq!(tail_lines(b"no newline at end", 1), b"no newline at end");
        assert_eq!(tail_lines(b"a\nb", 1), b"b");
    }
}
