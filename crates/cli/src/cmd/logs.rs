//! `logs`: a container's output, from the local runtime's log files (CRI records, so each
//! line has the time it was written) or from the cluster's API server — with kubectl's
//! `--previous`, `-f`, `--tail`, `--since`, `--since-time`, `--timestamps` and
//! `--all-containers`.

use anyhow::{bail, Context, Result};
use crashscope_model::logfile::{Decoder, LogLine};
use crashscope_store::{SqlStore, Store};
use jiff::Timestamp;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::args::{Global, LogsArgs};
use crate::inputs;

/// Which lines of a log to print, and how.
#[derive(Debug, Clone, Copy)]
struct Shown {
    /// `--since` / `--since-time`: lines written before this are left out.
    since: Option<Timestamp>,
    /// `--tail`: only the last N (negative: all).
    tail: Option<i64>,
    /// `--timestamps`: each line starts with the time it was written.
    timestamps: bool,
}

impl Shown {
    fn new(g: &Global, a: &LogsArgs) -> Result<Shown> {
        let since = match (&a.since, &a.since_time) {
            (Some(_), _) => {
                let now = inputs::now(g.now.as_deref())?;
                super::since(now, a.since.as_deref())?
            }
            (None, Some(t)) => Some(t.parse::<Timestamp>().with_context(|| {
                format!("--since-time {t:?} is not an RFC 3339 time like 2026-12-07T10:00:00Z")
            })?),
            (None, None) => None,
        };
        Ok(Shown {
            since,
            tail: a.tail,
            timestamps: a.timestamps,
        })
    }

    /// Whether a line is newer than `--since`; a line without a time (a log not written as
    /// records) cannot be judged and is kept.
    fn keeps(&self, l: &LogLine) -> bool {
        match (self.since, l.time) {
            (Some(since), Some(t)) => t >= since,
            _ => true,
        }
    }

    fn write(&self, out: &mut impl Write, l: &LogLine) -> std::io::Result<()> {
        if self.timestamps {
            if let Some(t) = l.time {
                write!(out, "{t} ")?;
            }
        }
        out.write_all(&l.text)?;
        out.write_all(b"\n")
    }

    /// A whole log: the lines kept, the last `--tail` of them.
    fn print(&self, out: &mut impl Write, buf: &[u8]) -> std::io::Result<()> {
        let lines: Vec<LogLine> = crashscope_model::logfile::decode(buf)
            .into_iter()
            .filter(|l| self.keeps(l))
            .collect();
        let skip = self
            .tail
            .and_then(|n| usize::try_from(n).ok())
            .map_or(0, |n| lines.len().saturating_sub(n));
        for l in &lines[skip..] {
            self.write(out, l)?;
        }
        Ok(())
    }
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

pub fn run(g: &Global, a: LogsArgs) -> Result<ExitCode> {
    let shown = Shown::new(g, &a)?;
    if super::cluster(g) {
        return cluster_logs(g, a, shown);
    }
    let logs = Logs::open(g)?;
    if a.all_containers {
        return all_container_logs(&logs, &a, shown);
    }
    let (file, instance) = log_file(&logs, &a)?;
    let mut f = std::fs::File::open(&file)
        .with_context(|| format!("no log for this container yet ({})", file.display()))?;
    let mut out = std::io::stdout();
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    // A previous instance has ended: there is nothing to follow (kubectl returns too).
    if !a.follow || a.previous {
        shown.print(&mut out, &buf)?;
        return Ok(ExitCode::SUCCESS);
    }
    // As kubectl: --tail and --since choose where following starts; then every new line,
    // until the instance ends.
    let mut decoder = Decoder::default();
    let first = decoder.feed(&buf);
    let kept: Vec<&LogLine> = first.iter().filter(|l| shown.keeps(l)).collect();
    let skip = shown
        .tail
        .and_then(|n| usize::try_from(n).ok())
        .map_or(0, |n| kept.len().saturating_sub(n));
    for l in &kept[skip..] {
        shown.write(&mut out, l)?;
    }
    out.flush()?;
    let mut idle = 0u32;
    let emit = |out: &mut std::io::Stdout, lines: Vec<LogLine>| -> std::io::Result<()> {
        for l in lines.iter().filter(|l| shown.keeps(l)) {
            shown.write(out, l)?;
        }
        out.flush()
    };
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
                let lines = decoder.feed(&buf);
                emit(&mut out, lines)?;
                break;
            }
            continue;
        }
        idle = 0;
        let lines = decoder.feed(&buf);
        emit(&mut out, lines)?;
    }
    emit(&mut out, decoder.finish())?;
    Ok(ExitCode::SUCCESS)
}

/// `logs --all-containers`: each container's log in spec order, init containers first, as
/// kubectl prints them; a container with no such instance (an init container that never
/// ran, no previous run) is said on stderr and skipped.
fn all_container_logs(logs: &Logs, a: &LogsArgs, shown: Shown) -> Result<ExitCode> {
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
            Ok(buf) => shown.print(&mut out, &buf)?,
            Err(e) => eprintln!("container \"{name}\": {e}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `logs` against the cluster: the API server's log of the container (or of its previous
/// instance), streamed with -f; the API server applies --since and --timestamps itself.
fn cluster_logs(g: &Global, a: LogsArgs, shown: Shown) -> Result<ExitCode> {
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
            since_time: shown.since,
            timestamps: shown.timestamps,
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
    use super::*;
    use crashscope_model::logfile::{encode, Stream};

    fn log() -> Vec<u8> {
        let mut buf = Vec::new();
        for (t, text) in [
            ("2026-12-07T10:00:00Z", "one"),
            ("2026-12-07T10:00:01.5Z", "two"),
            ("2026-12-07T10:00:02Z", "three"),
        ] {
            encode(
                &mut buf,
                t.parse().unwrap(),
                Stream::Stdout,
                false,
                text.as_bytes(),
            );
        }
        buf
    }

    fn shown(since: Option<&str>, tail: Option<i64>, timestamps: bool) -> String {
        let s = Shown {
            since: since.map(|t| t.parse().unwrap()),
            tail,
            timestamps,
        };
        let mut out = Vec::new();
        s.print(&mut out, &log()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn tail_keeps_the_last_lines_as_kubectl() {
        assert_eq!(shown(None, None, false), "one\ntwo\nthree\n");
        assert_eq!(shown(None, Some(2), false), "two\nthree\n");
        assert_eq!(shown(None, Some(5), false), "one\ntwo\nthree\n");
        assert_eq!(shown(None, Some(-1), false), "one\ntwo\nthree\n");
        assert_eq!(shown(None, Some(0), false), "");
    }

    #[test]
    fn since_and_timestamps_read_the_records_times() {
        assert_eq!(
            shown(Some("2026-12-07T10:00:01Z"), None, true),
            "2026-12-07T10:00:01.5Z two\n2026-12-07T10:00:02Z three\n"
        );
        // --tail counts the lines --since kept.
        assert_eq!(
            shown(Some("2026-12-07T10:00:01Z"), Some(1), false),
            "three\n"
        );
        assert_eq!(shown(Some("2026-12-07T11:00:00Z"), None, false), "");
    }
}
