//! `crashscope captures`: the `.scap` files the flight recorder wrote when containers
//! failed or a capture was requested, newest first, with the container instance each one
//! explains.

use anyhow::Result;
use crashscope_kubectl::humanize::human_duration;
use crashscope_kubectl::table::{align, cell, GET};
use jiff::Timestamp;
use serde::Serialize;
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

/// Kubernetes names have no `_`, so the recorder's file names split back unambiguously;
/// captures taken on request end in `-request-N`.
pub fn parse(name: &str) -> Option<(String, String, String, u32)> {
    let stem = name.strip_suffix(".scap")?;
    let mut it = stem.rsplitn(4, '_');
    let last = it.next()?;
    let restart = last
        .split_once("-request-")
        .map_or(last, |(r, _)| r)
        .parse()
        .ok()?;
    let container = it.next()?.to_string();
    let pod = it.next()?.to_string();
    let namespace = it.next()?.to_string();
    Some((namespace, pod, container, restart))
}

pub fn run(g: &Global, out: ListOutput) -> Result<ExitCode> {
    let now = crate::inputs::now(g.now.as_deref())?;
    let dir = super::store_path(g)?
        .parent()
        .map(|d| d.join("captures"))
        .unwrap_or_default();
    let mut list: Vec<Capture> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(Result::ok).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (namespace, pod, container, restart) = parse(&name)?;
            let meta = e.metadata().ok()?;
            let written = meta
                .modified()
                .ok()
                .and_then(|t| Timestamp::try_from(t).ok())
                .unwrap_or(Timestamp::UNIX_EPOCH);
            Some(Capture {
                namespace,
                pod,
                container,
                restart,
                bytes: meta.len(),
                written,
                file: e.path().display().to_string(),
            })
        })
        .collect();
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

#[cfg(test)]
mod tests {
    #[test]
    fn recorder_file_names_split_back() {
        assert_eq!(
            super::parse("default_nginx-59f7fb6775-bbvrm_nginx_3.scap"),
            Some((
                "default".into(),
                "nginx-59f7fb6775-bbvrm".into(),
                "nginx".into(),
                3
            ))
        );
        assert_eq!(
            super::parse("default_nginx-1_nginx_2-request-1764360000000.scap").map(|p| p.3),
            Some(2)
        );
        assert_eq!(super::parse("notes.txt"), None);
        assert_eq!(super::parse("a_b.scap"), None);
    }
}
