//! The local runtime's commands: `run`, `apply`, `delete`.

use anyhow::{bail, Context, Result};
use crashscope_local::manifest::{self, Object};
use crashscope_local::runtime::{self, Config, Runtime};
use crashscope_store::{EventQuery, SqlStore, Store};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::args::{Global, ManifestArgs, RunArgs};
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
