//! `crashscope get incidents`: crash loops grouped by workload, container and last
//! terminated reason — from the restarts recorded in the store (by `watch` or the local
//! runtime), or from the current state of pods in a cluster or in files.

use anyhow::Result;
use crashscope_kubectl::humanize::human_duration;
use crashscope_kubectl::table::{align, cell, DESCRIBE, GET};
use crashscope_model::incident::{incidents, Incident};
use crashscope_model::{ContainerKind, Event, PodState, RestartSample};
use crashscope_store::{SqlStore, Store};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Event as KubeEvent, Pod};
use std::process::ExitCode;

use crate::args::{GetArgs, GetOutput, Global};
use crate::{inputs, output};

/// The incidents the flags select, the pods and events read for them (None: from the
/// store), and whether any input was bad.
type Found = (Vec<Incident>, Option<(Vec<Pod>, Vec<KubeEvent>)>, bool);

fn find(g: &Global, a: &GetArgs, now: Timestamp) -> Result<Found> {
    // Pods and events read for the samples, kept for the CAUSE column (None: from the store).
    let mut loaded = None;
    // The pods as last recorded: their newest terminations refresh each incident's LAST.
    let mut pods_now: Vec<PodState> = Vec::new();
    let (samples, had_errors) = if a.source.files.is_empty() && !super::cluster(g) {
        let from = super::since(now, a.since.as_deref())?.unwrap_or(Timestamp::UNIX_EPOCH);
        let path = super::store_path(g)?;
        let (samples, current) = super::runtime()?.block_on(async {
            let store = SqlStore::open(&path).await?;
            // Samples are stamped when observed; `now` may be pinned in the past by tests.
            let to = now.max(Timestamp::now()) + SignedDuration::from_secs(1);
            let samples = store.restart_samples(from, to).await?;
            let current = store.current_pods().await?;
            anyhow::Ok((samples, current))
        })?;
        pods_now = current;
        let ns = a.source.namespace.as_deref();
        let samples = samples
            .into_iter()
            .filter(|s| ns.is_none_or(|n| s.namespace == n))
            .collect();
        (samples, false)
    } else {
        // What the pods say now: each container's restart count and last termination.
        let files = !a.source.files.is_empty();
        let (pods, events, had_errors) =
            super::get::load_selected(g, &a.source, &[], false, files)?;
        let samples: Vec<RestartSample> = pods
            .iter()
            .map(PodState::from_pod)
            .flat_map(|p| {
                p.containers
                    .iter()
                    .map(|c| RestartSample::of(now, &p, c))
                    .collect::<Vec<_>>()
            })
            .collect();
        loaded = Some((pods, events));
        (samples, had_errors)
    };
    let mut found = incidents(&samples);
    crashscope_model::incident::refresh_from_pods(&mut found, &pods_now);
    if !a.names.is_empty() {
        found.retain(|i| a.names.contains(&i.key.workload_name));
    }
    Ok((found, loaded, had_errors))
}

pub fn run(g: &Global, a: GetArgs) -> Result<ExitCode> {
    let now = inputs::now(g.now.as_deref())?;
    if a.watch {
        super::get::check_watch(&a)?;
    }
    let (found, loaded, had_errors) = find(g, &a, now)?;
    match a.output {
        Some(GetOutput::Json) => print!("{}", output::json(&found)?),
        Some(GetOutput::Yaml) => print!("{}", output::yaml(&found)?),
        Some(GetOutput::Name) => {
            for i in &found {
                println!(
                    "{}/{}/{}",
                    i.key.workload_kind.to_lowercase(),
                    i.key.workload_name,
                    i.key.container
                );
            }
        }
        None | Some(GetOutput::Wide) => {
            if found.is_empty() {
                eprintln!("No crash loops found");
            } else {
                let causes = incident_causes(g, &a, loaded, &found, now);
                print!(
                    "{}",
                    table(
                        &found,
                        &causes,
                        now,
                        a.output == Some(GetOutput::Wide),
                        a.no_headers
                    )
                );
            }
        }
    }
    if a.watch {
        return watch(g, &a, found);
    }
    Ok(super::status(had_errors))
}

/// `get incidents -w`: every two seconds the incidents again; a row for each that is new or
/// has more restarts, pods or a later crash than when last printed.
fn watch(g: &Global, a: &GetArgs, first: Vec<Incident>) -> Result<ExitCode> {
    use std::io::Write;
    let state = |i: &Incident| (i.restarts, i.pods.len(), i.last_seen);
    let mut shown: std::collections::HashMap<_, _> =
        first.iter().map(|i| (i.key.clone(), state(i))).collect();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(2));
        let now = inputs::now(g.now.as_deref())?;
        let (found, loaded, _) = find(g, a, now)?;
        let changed: Vec<Incident> = found
            .into_iter()
            .filter(|i| shown.get(&i.key) != Some(&state(i)))
            .collect();
        if changed.is_empty() {
            continue;
        }
        let causes = incident_causes(g, a, loaded, &changed, now);
        let wide = a.output == Some(GetOutput::Wide);
        print!("{}", table(&changed, &causes, now, wide, true));
        std::io::stdout().flush()?;
        for i in &changed {
            shown.insert(i.key.clone(), state(i));
        }
    }
}

/// Each incident's cause: the one diagnosed for most of its pods' containers now (incidents
/// of pods that are gone have none).
fn incident_causes(
    g: &Global,
    a: &GetArgs,
    loaded: Option<(Vec<Pod>, Vec<KubeEvent>)>,
    found: &[Incident],
    now: Timestamp,
) -> Vec<String> {
    let files = !a.source.files.is_empty();
    let loaded = match loaded {
        Some(l) => l,
        None => match super::get::load_selected(g, &a.source, &[], false, true) {
            Ok((pods, events, _)) => (pods, events),
            Err(_) => return vec!["-".into(); found.len()],
        },
    };
    let (pods, events) = loaded;
    let causes = super::diagnose::causes(g, files, &pods, &events, now);
    found
        .iter()
        .map(|i| {
            let mut votes: std::collections::BTreeMap<&str, usize> = Default::default();
            for p in &i.pods {
                let key = (i.key.namespace.clone(), p.clone(), i.key.container.clone());
                if let Some(top) = causes.get(&key).and_then(|d| d.top()) {
                    *votes.entry(top.id.as_str()).or_default() += 1;
                }
            }
            votes
                .into_iter()
                .max_by_key(|(_, n)| *n)
                .map(|(id, _)| id.to_string())
                .unwrap_or_else(|| "-".into())
        })
        .collect()
}

/// `describe incidents`: each incident in full, kubectl describe's layout.
pub fn describe(
    g: &Global,
    resource: crate::args::Resource,
    names: Vec<String>,
    source: crate::args::Source,
) -> Result<ExitCode> {
    let now = inputs::now(g.now.as_deref())?;
    let a = GetArgs {
        resource,
        names,
        source,
        output: None,
        no_headers: false,
        since: None,
        watch: false,
    };
    let (found, loaded, had_errors) = find(g, &a, now)?;
    if found.is_empty() {
        eprintln!("No crash loops found");
        return Ok(super::status(had_errors));
    }
    let changes = changes(g, loaded.as_ref(), &found);
    let causes = incident_causes(g, &a, loaded, &found, now);
    let tz = jiff::tz::TimeZone::system();
    let at = |t: Timestamp| {
        format!(
            "{} ({} ago)",
            crashscope_kubectl::humanize::rfc1123z(t, &tz),
            human_duration(now.duration_since(t))
        )
    };
    let mut text = String::new();
    for (n, (i, cause)) in found.iter().zip(&causes).enumerate() {
        if n > 0 {
            text.push_str("\n\n");
        }
        let k = &i.key;
        let codes: Vec<String> = i.exit_codes.iter().map(|c| c.to_string()).collect();
        if let Some(c) = &k.cluster {
            text.push_str(&format!("Cluster:\t{c}\n"));
        }
        let rows = [
            ("Namespace", k.namespace.clone()),
            (
                "Workload",
                format!("{}/{}", k.workload_kind.to_lowercase(), k.workload_name),
            ),
            ("Container", k.container.clone()),
            ("Reason", k.reason.clone()),
            ("Exit Codes", codes.join(", ")),
            ("Restarts", i.restarts.to_string()),
            ("First Seen", at(i.first_seen)),
            ("Last Seen", at(i.last_seen)),
            (
                "Pods",
                i.pods.iter().cloned().collect::<Vec<_>>().join(", "),
            ),
            ("Cause", cause.clone()),
        ];
        for (label, value) in rows {
            text.push_str(&format!("{label}:\t{value}\n"));
        }
        // The changes made shortly before it started: the deploy that broke it, often.
        let before: Vec<&Event> = changes.iter().filter(|e| precedes(e, i)).collect();
        text.push_str("Changes:");
        if before.is_empty() {
            text.push_str(&format!(
                "\t<none in the {} before the first crash>\n",
                human_duration(CHANGE_WINDOW)
            ));
        } else {
            text.push('\n');
            text.push_str("  When\tSource\tReason\tMessage\n");
            text.push_str("  ----\t------\t------\t-------\n");
            for e in before {
                text.push_str(&format!(
                    "  {} before the first crash\t{}\t{}\t{}\n",
                    human_duration(i.first_seen.duration_since(e.last_seen)),
                    cell(&e.source),
                    cell(&e.reason),
                    cell(&e.message)
                ));
            }
        }
    }
    print!("{}", align(&text, DESCRIBE));
    Ok(super::status(had_errors))
}

/// How long before an incident's first crash a change counts as preceding it.
const CHANGE_WINDOW: SignedDuration = SignedDuration::from_hours(1);

/// The changes (deploys, rollouts: `Event::is_change_in`) in the incidents' namespaces: from
/// the events read with the pods, else from the store.
fn changes(
    g: &Global,
    loaded: Option<&(Vec<Pod>, Vec<KubeEvent>)>,
    found: &[Incident],
) -> Vec<Event> {
    let Some(first) = found.iter().map(|i| i.first_seen).min() else {
        return Vec::new();
    };
    let events: Vec<Event> = match loaded {
        Some((_, kube)) => {
            let catalog =
                super::catalog(g).unwrap_or_else(|_| crashscope_model::Catalog::builtin());
            kube.iter()
                .filter_map(|e| Event::from_kube(e, &catalog))
                .collect()
        }
        None => {
            let read = || -> Result<Vec<Event>> {
                let path = super::store_path(g)?;
                super::runtime()?.block_on(async {
                    let store = SqlStore::open(&path).await?;
                    let q = crashscope_store::EventQuery {
                        since: Some(first - CHANGE_WINDOW),
                        ..Default::default()
                    };
                    Ok(store
                        .events(&q)
                        .await?
                        .into_iter()
                        .map(|e| e.event)
                        .collect())
                })
            };
            read().unwrap_or_default()
        }
    };
    let mut out: Vec<Event> = events
        .into_iter()
        .filter(|e| found.iter().any(|i| e.is_change_in(&i.key.namespace)))
        .collect();
    out.sort_by_key(|e| e.last_seen);
    out
}

/// Whether change `e` was made to the incident's namespace (and workload, when it names one)
/// within [`CHANGE_WINDOW`] before its first crash.
fn precedes(e: &Event, i: &Incident) -> bool {
    let k = &i.key;
    let workload =
        e.scope.workload.as_ref().is_none_or(|w| {
            w.kind.eq_ignore_ascii_case(&k.workload_kind) && w.name == k.workload_name
        });
    e.is_change_in(&k.namespace)
        && workload
        && e.last_seen <= i.first_seen
        && e.last_seen >= i.first_seen - CHANGE_WINDOW
}

fn table(
    found: &[Incident],
    causes: &[String],
    now: Timestamp,
    wide: bool,
    no_headers: bool,
) -> String {
    let mut text = String::new();
    // Several clusters in the store: which one each incident is in comes first.
    let clusters = found.iter().any(|i| i.key.cluster.is_some());
    if !no_headers {
        if clusters {
            text.push_str("CLUSTER\t");
        }
        text.push_str(
            "NAMESPACE\tWORKLOAD\tCONTAINER\tREASON\tEXIT\tPODS\tRESTARTS\tLAST\tSINCE\tCAUSE",
        );
        text.push_str(if wide { "\tPOD NAMES\n" } else { "\n" });
    }
    for (n, i) in found.iter().enumerate() {
        let k = &i.key;
        let codes: Vec<String> = i.exit_codes.iter().map(|c| c.to_string()).collect();
        let mut cells = vec![
            k.namespace.clone(),
            format!("{}/{}", k.workload_kind.to_lowercase(), k.workload_name),
            match i.container_kind {
                ContainerKind::App => k.container.clone(),
                ContainerKind::Init => format!("{} (init)", k.container),
                ContainerKind::Sidecar => format!("{} (sidecar)", k.container),
            },
            k.reason.clone(),
            if codes.is_empty() {
                "-".into()
            } else {
                codes.join(",")
            },
            i.pods.len().to_string(),
            i.restarts.to_string(),
            format!("{} ago", human_duration(now.duration_since(i.last_seen))),
            human_duration(now.duration_since(i.first_seen)),
            causes.get(n).cloned().unwrap_or_else(|| "-".into()),
        ];
        if wide {
            cells.push(i.pods.iter().cloned().collect::<Vec<_>>().join(","));
        }
        if clusters {
            cells.insert(0, k.cluster.clone().unwrap_or_else(|| "-".into()));
        }
        let cells: Vec<String> = cells.iter().map(|c| cell(c)).collect();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    align(&text, GET)
}
