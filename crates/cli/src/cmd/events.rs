//! `crashscope events`: the event feed (from the store, or from files) and the catalog.

use anyhow::Result;
use crashscope_kube::load::Want;
use crashscope_kubectl::humanize::human_duration;
use crashscope_kubectl::table::{align, cell, GET};
use crashscope_model::{Catalog, Event};
use crashscope_store::{EventQuery, SqlStore, Store};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event as KubeEvent;
use serde::Serialize;
use std::process::ExitCode;

use crate::args::{EventsArgs, EventsCommand, Global, ListOutput};
use crate::{inputs, output};

pub fn run(g: &Global, a: EventsArgs) -> Result<ExitCode> {
    let catalog = super::catalog(g)?;
    if let Some(EventsCommand::Catalog { output }) = a.command {
        print_catalog(&catalog, output)?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = inputs::now(g.now.as_deref())?;
    let since = super::since(now, a.since.as_deref())?;
    let query = EventQuery {
        since,
        until: None,
        min_severity: a.severity,
        namespace: a.namespace.clone(),
        pod: a.pod.clone(),
        reason: a.reason.clone(),
        limit: Some(a.limit),
        ..EventQuery::default()
    };
    let (events, had_errors) = if a.files.is_empty() && super::cluster(g) {
        let listed = super::runtime()?.block_on(async {
            let client = super::kube_client(g).await?;
            let ns = super::cluster_namespace(&client, a.namespace.as_deref(), a.all_namespaces);
            anyhow::Ok(crashscope_kube::cluster::events(&client, ns.as_deref()).await?)
        })?;
        (normalized(&listed, &catalog, &query), false)
    } else if a.files.is_empty() {
        let path = super::store_path(g)?;
        let events = super::runtime()?.block_on(async {
            let store = SqlStore::open(&path).await?;
            store.events(&query).await
        })?;
        (events.into_iter().map(|e| e.event).collect(), false)
    } else {
        from_files(&a, &catalog, &query)
    };
    let events: Vec<Event> = events
        .into_iter()
        .filter(|e| a.all || enabled(&catalog, e))
        .collect();
    match a.output {
        ListOutput::Json => print!("{}", output::json(&events)?),
        ListOutput::Yaml => print!("{}", output::yaml(&events)?),
        ListOutput::Table => {
            if events.is_empty() {
                eprintln!("No events found");
            }
            print!("{}", events_table(&events, now));
        }
    }
    Ok(super::status(had_errors))
}

fn enabled(catalog: &Catalog, e: &Event) -> bool {
    let kind = e.involved.as_ref().map(|o| o.kind.as_str()).unwrap_or("");
    catalog.classify(kind, &e.reason, e.event_type).enabled
}

/// Events read from files, normalized and filtered like a store query, newest first.
fn from_files(a: &EventsArgs, catalog: &Catalog, q: &EventQuery) -> (Vec<Event>, bool) {
    let loaded = inputs::load(
        &a.files,
        Want {
            pods: false,
            events: true,
        },
    );
    let had_errors = inputs::report(&loaded.errors);
    (normalized(&loaded.events, catalog, q), had_errors)
}

/// Kubernetes Events normalized and filtered like a store query, newest first.
fn normalized(events: &[KubeEvent], catalog: &Catalog, q: &EventQuery) -> Vec<Event> {
    let mut events: Vec<Event> = events
        .iter()
        .filter_map(|e| Event::from_kube(e, catalog))
        .filter(|e| {
            q.since.is_none_or(|t| e.last_seen >= t)
                && q.min_severity.is_none_or(|s| e.severity >= s)
                && q.namespace
                    .as_ref()
                    .is_none_or(|n| e.scope.namespace.as_ref() == Some(n))
                && q.pod
                    .as_ref()
                    .is_none_or(|p| e.scope.pod.as_ref() == Some(p))
                && q.reason.as_ref().is_none_or(|r| &e.reason == r)
        })
        .collect();
    events.sort_by_key(|e| std::cmp::Reverse(e.last_seen));
    events.truncate(q.limit.unwrap_or(u32::MAX) as usize);
    events
}

fn events_table(events: &[Event], now: Timestamp) -> String {
    if events.is_empty() {
        return String::new();
    }
    // SOURCE sets a deploy posted by CI apart from what the kubelet said.
    let mut text =
        String::from("LAST SEEN\tSEVERITY\tTYPE\tREASON\tSOURCE\tSCOPE\tCOUNT\tMESSAGE\n");
    for e in events {
        let scope = scope_text(e);
        let cells = [
            human_duration(now.duration_since(e.last_seen)),
            e.severity.to_string(),
            e.event_type.as_str().to_string(),
            e.reason.clone(),
            e.source.clone(),
            scope,
            e.count.to_string(),
            e.message.clone(),
        ];
        let cells: Vec<String> = cells.iter().map(|c| cell(c)).collect();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    align(&text, GET)
}

/// `kind/name` of what the event is about, with the container when there is one.
fn scope_text(e: &Event) -> String {
    let s = &e.scope;
    let base = match (&s.pod, &s.workload, &s.node) {
        (Some(p), _, _) => format!("pod/{p}"),
        (None, Some(w), _) => format!("{}/{}", w.kind.to_lowercase(), w.name),
        (None, None, Some(n)) => format!("node/{n}"),
        _ => e
            .involved
            .as_ref()
            .map(|o| format!("{}/{}", o.kind.to_lowercase(), o.name))
            .unwrap_or_else(|| "cluster".into()),
    };
    match &s.container {
        Some(c) => format!("{base} [{c}]"),
        None => base,
    }
}

#[derive(Serialize)]
struct CatalogRow<'a> {
    class: &'a str,
    reason: &'a str,
    severity: &'a str,
    enabled: bool,
}

fn print_catalog(catalog: &Catalog, out: ListOutput) -> Result<()> {
    let rows: Vec<CatalogRow> = catalog
        .entries()
        .iter()
        .map(|e| CatalogRow {
            class: e.class.as_str(),
            reason: &e.reason,
            severity: e.severity.as_str(),
            enabled: e.enabled,
        })
        .collect();
    match out {
        ListOutput::Json => print!("{}", output::json(&rows)?),
        ListOutput::Yaml => print!("{}", output::yaml(&rows)?),
        ListOutput::Table => {
            let mut text = String::from("CLASS\tREASON\tSEVERITY\tDEFAULT\n");
            for r in &rows {
                text.push_str(&format!(
                    "{}\t{}\t{}\t{}\n",
                    r.class,
                    r.reason,
                    r.severity,
                    if r.enabled { "on" } else { "off" }
                ));
            }
            print!("{}", align(&text, GET));
        }
    }
    Ok(())
}
