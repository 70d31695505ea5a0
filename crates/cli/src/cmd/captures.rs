//! `crashscope captures`: the `.scap` files the flight recorder wrote when containers
//! failed or a capture was requested, newest first, with the container instance each one
//! explains. Read from the store's capture index; files in the captures directory that the
//! index does not hold (a node agent keeping captures on its node) are listed from their names.

use anyhow::Result;
use crashscope_kubectl::humanize::human_duration;
use crashscope_kubectl::table::{align, cell, GET};
use crashscope_model::capture::CaptureName;
use crashscope_store::SqlStore;
use jiff::Timestamp;
use serde::Serialize;
use std::collections::HashSet;
use std::process::ExitCode;

use crate::args::{Global, ListOutput};
use crate::output;

#[derive(Debug, Serialize)]
struct Capture {
    namespace: String,
    pod: String,
    container: String,
    /// The restart count of the instance that died.
    restart: u32,
    bytes: u64,
    written: Timestamp,
    file: String,
}

pub fn run(g: &Global, out: ListOutput) -> Result<ExitCode> {
    let now = crate::inputs::now(g.now.as_deref())?;
    let path = super::store_path(g)?;
    let dir = path
        .parent()
        .map(|d| d.join("captures"))
        .unwrap_or_default();
    let indexed = if path.exists() {
        super::runtime()?.block_on(async {
            let store = SqlStore::open(&path).await?;
            anyhow::Ok(store.captures().await?)
        })?
    } else {
        Vec::new()
    };
    let known: HashSet<String> = indexed.iter().map(|c| c.path.clone()).collect();
    let mut list: Vec<Capture> = indexed
        .into_iter()
        .filter(|c| std::path::Path::new(&c.path).exists())
        .map(|c| Capture {
            namespace: c.namespace.unwrap_or_default(),
            pod: c.pod.unwrap_or_default(),
            container: c.container.unwrap_or_default(),
            restart: c.restart.and_then(|r| u32::try_from(r).ok()).unwrap_or(0),
            bytes: u64::try_from(c.bytes).unwrap_or(0),
            written: c.created_at,
            file: c.path,
        })
        .collect();
    let unindexed = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(Result::ok).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !known.contains(&e.path().display().to_string()))
        .filter_map(|e| {
            let name = CaptureName::parse(&e.file_name().to_string_lossy())?;
            let meta = e.metadata().ok()?;
            let written = meta
                .modified()
                .ok()
                .and_then(|t| Timestamp::try_from(t).ok())
                .unwrap_or(Timestamp::UNIX_EPOCH);
            Some(Capture {
                namespace: name.namespace,
                pod: name.pod,
                container: name.container,
                restart: u32::try_from(name.instance).unwrap_or(0),
                bytes: meta.len(),
                written,
                file: e.path().display().to_string(),
            })
        });
    list.extend(unindexed);
    list.sort_by_key(|c| std::cmp::Reverse(c.written));
    match out {
        ListOutput::Json => print!("{}", output::json(&list)?),
        ListOutput::Yaml => print!("{}", output::yaml(&list)?),
        ListOutput::Table => {
            if list.is_empty() {
                eprintln!("No captures in {}", dir.display());
                return Ok(ExitCode::SUCCESS);
            }
            let mut text = String::from("NAMESPACE\tPOD\tCONTAINER\tRESTART\tSIZE\tAGE\tFILE\n");
            for c in &list {
                let cells = [
                    c.namespace.clone(),
                    c.pod.clone(),
                    c.container.clone(),
                    c.restart.to_string(),
                    format!("{}K", c.bytes.div_ceil(1024)),
                    human_duration(now.duration_since(c.written)),
                    c.file.clone(),
                ];
                let cells: Vec<String> = cells.iter().map(|x| cell(x)).collect();
                text.push_str(&cells.join("\t"));
                text.push('\n');
            }
            print!("{}", align(&text, GET));
        }
    }
    Ok(ExitCode::SUCCESS)
}
