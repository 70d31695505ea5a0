//! `crashscope get pods -f FILE`: kubectl's table, then the back-off of crash-looping pods.

use anyhow::Result;
use crashscope_kube::load::Want;
use crashscope_kubectl::crashloop::{crash_loop_table, crash_loops};
use crashscope_kubectl::get::{pod_row, pods_table, PodRow, TableOptions};
use k8s_openapi::api::core::v1::{Event as KubeEvent, Pod};
use std::process::ExitCode;

use crate::args::{GetArgs, GetOutput, Global, Resource, Source};
use crate::{inputs, output};

/// Pods narrowed by namespace and names (exact, or as prefixes like kubectl describe);
/// names that match nothing are reported. Returns whether any name was not found.
fn select(pods: Vec<Pod>, ns: Option<&str>, names: &[String], prefix: bool) -> (Vec<Pod>, bool) {
    let mut had_errors = false;
    let pods: Vec<Pod> = pods
        .into_iter()
        .filter(|p| match ns {
            Some(ns) => p.metadata.namespace.as_deref().unwrap_or("default") == ns,
            None => true,
        })
        .collect();
    if names.is_empty() {
        return (pods, had_errors);
    }
    let mut out = Vec::new();
    for n in names {
        let name_of = |p: &Pod| p.metadata.name.clone().unwrap_or_default();
        let exact: Vec<&Pod> = pods.iter().filter(|p| name_of(p) == *n).collect();
        let found: Vec<&Pod> = if exact.is_empty() && prefix {
            pods.iter()
                .filter(|p| name_of(p).starts_with(n.as_str()))
                .collect()
        } else {
            exact
        };
        if found.is_empty() {
            eprintln!("Error from server (NotFound): pods \"{n}\" not found");
            had_errors = true;
        }
        out.extend(found.into_iter().cloned());
    }
    (out, had_errors)
}

/// Loads the files of `src` (with their Events when `events`), reports what could not be
/// read, and selects the pods asked for. The flag is true when anything went wrong.
pub fn load_selected(
    g: &Global,
    src: &Source,
    names: &[String],
    prefix: bool,
    events: bool,
) -> Result<(Vec<Pod>, Vec<KubeEvent>, bool)> {
    load_reporting(g, src, names, prefix, events, &mut |w| eprintln!("{w}"))
}

/// [`load_selected`], the warnings about the store given to `warn` instead of stderr (a
/// full-screen view has no stderr to write to).
pub fn load_reporting(
    g: &Global,
    src: &Source,
    names: &[String],
    prefix: bool,
    events: bool,
    warn: &mut dyn FnMut(String),
) -> Result<(Vec<Pod>, Vec<KubeEvent>, bool)> {
    if src.files.is_empty() && super::cluster(g) {
        return from_cluster(g, src, names, prefix, events);
    }
    if src.files.is_empty() {
        let (pods, evs) = from_store(g, events, warn)?;
        // Like kubectl against a cluster: the default namespace unless -n or -A.
        let ns = match (&src.namespace, src.all_namespaces) {
            (Some(ns), _) => Some(ns.as_str()),
            (None, true) => None,
            (None, false) => Some("default"),
        };
        let (pods, not_found) = select(pods, ns, names, prefix);
        if let Some(note) = stopped_note(&pods) {
            warn(note);
        }
        return Ok((pods, evs, not_found));
    }
    let loaded = inputs::load(&src.files, Want { pods: true, events });
    let load_errors = inputs::report(&loaded.errors);
    let (pods, not_found) = select(loaded.pods, src.namespace.as_deref(), names, prefix);
    Ok((pods, loaded.events, load_errors || not_found))
}

/// What to say when the pods shown are those a stopped local runtime left: what they
/// looked like when it stopped, kept for the post-mortem.
fn stopped_note(pods: &[Pod]) -> Option<String> {
    let key = crashscope_local::runtime::STOPPED_ANNOTATION;
    pods.iter()
        .find_map(|p| p.metadata.annotations.as_ref()?.get(key))
        .map(|at| format!("(the local runtime stopped at {at}: pods as they were then)"))
}

/// Pods of the cluster (the namespace the flags select), with the events of each selected
/// pod when asked — one field-selected list per pod, as kubectl describe does.
fn from_cluster(
    g: &Global,
    src: &Source,
    names: &[String],
    prefix: bool,
    events: bool,
) -> Result<(Vec<Pod>, Vec<KubeEvent>, bool)> {
    use crashscope_kube::cluster;
    super::runtime()?.block_on(async {
        let client = super::kube_client(g).await?;
        let ns = super::cluster_namespace(&client, src.namespace.as_deref(), src.all_namespaces);
        let all = cluster::pods(&client, ns.as_deref(), None).await?;
        let (pods, not_found) = select(all, ns.as_deref(), names, prefix);
        let mut evs = Vec::new();
        if events {
            for p in &pods {
                evs.extend(cluster::pod_events(&client, p).await?);
            }
        }
        anyhow::Ok((pods, evs, not_found))
    })
}

/// Pods the local runtime reported, and (when asked) the events in the store.
fn from_store(
    g: &Global,
    events: bool,
    warn: &mut dyn FnMut(String),
) -> Result<(Vec<Pod>, Vec<KubeEvent>)> {
    use crashscope_store::{EventQuery, SqlStore, Store};
    let path = super::store_path(g)?;
    super::runtime()?.block_on(async {
        let store = SqlStore::open(&path).await?;
        let mut pods = Vec::new();
        for v in store.objects("Pod").await? {
            match serde_json::from_value::<Pod>(v) {
                Ok(p) => pods.push(p),
                Err(e) => warn(format!(
                    "error: {}: a stored pod cannot be read: {e}",
                    path.display()
                )),
            }
        }
        let evs = if events {
            store
                .events(&EventQuery::default())
                .await?
                .into_iter()
                // Oldest first, so that events of the same second keep the order they happened.
                .rev()
                .map(|e| e.event.to_kube())
                .collect()
        } else {
            Vec::new()
        };
        anyhow::Ok((pods, evs))
    })
}

pub fn run(g: &Global, a: GetArgs) -> Result<ExitCode> {
    if a.resource == Resource::Incidents {
        return super::incidents::run(g, a);
    }
    if a.watch {
        check_watch(&a)?;
    }
    let now = inputs::now(g.now.as_deref())?;
    let policy = super::backoff_policy(g)?;
    // Events feed the CAUSE column (against a cluster they would cost a request per pod).
    let with_events = !a.source.files.is_empty() || !super::cluster(g);
    let (pods, events, had_errors) = load_selected(g, &a.source, &a.names, false, with_events)?;
    match a.output {
        Some(GetOutput::Json) => print!("{}", output::json(&output::as_list(&pods)?)?),
        Some(GetOutput::Yaml) => print!("{}", output::yaml(&output::as_list(&pods)?)?),
        Some(GetOutput::Name) => {
            for p in &pods {
                println!("pod/{}", p.metadata.name.as_deref().unwrap_or(""));
            }
        }
        None | Some(GetOutput::Wide) => {
            if pods.is_empty() {
                match &a.source.namespace {
                    Some(ns) if !a.source.all_namespaces => {
                        eprintln!("No resources found in {ns} namespace.")
                    }
                    _ => eprintln!("No resources found"),
                }
            }
            let rows: Vec<_> = pods.iter().map(|p| pod_row(p, now)).collect();
            let opts = TableOptions {
                wide: a.output == Some(GetOutput::Wide),
                with_namespace: a.source.all_namespaces,
                no_headers: a.no_headers,
            };
            print!("{}", pods_table(&rows, opts));
            if !a.no_headers {
                let mut loops: Vec<_> = pods.iter().flat_map(|p| crash_loops(p, &policy)).collect();
                if !loops.is_empty() {
                    let causes =
                        super::diagnose::causes(g, !a.source.files.is_empty(), &pods, &events, now);
                    super::diagnose::annotate(&mut loops, &causes);
                }
                let extra = crash_loop_table(&loops, now, a.source.all_namespaces);
                if !extra.is_empty() && !a.watch {
                    print!("\nCrash-looping containers (crashscope):\n{extra}");
                }
            }
        }
    }
    if a.watch {
        return watch(g, &a, &pods);
    }
    Ok(super::status(had_errors))
}

/// What `-w` can follow and print: the local runtime or a cluster, as table rows.
pub fn check_watch(a: &GetArgs) -> Result<()> {
    if !a.source.files.is_empty() {
        anyhow::bail!("--watch follows the local runtime or a cluster, not files");
    }
    if a.output.is_some_and(|o| o != GetOutput::Wide) {
        anyhow::bail!("--watch prints table rows; drop -o json|yaml|name");
    }
    Ok(())
}

/// `get pods -w`: every second, the pods again; a row is printed when it differs from the
/// one last printed for that pod (kubectl prints the changed object's row the same way).
fn watch(g: &Global, a: &GetArgs, first: &[Pod]) -> Result<ExitCode> {
    use std::io::Write;
    let opts = TableOptions {
        wide: a.output == Some(GetOutput::Wide),
        with_namespace: a.source.all_namespaces,
        no_headers: true,
    };
    let key = |p: &Pod| {
        (
            p.metadata.namespace.clone().unwrap_or_default(),
            p.metadata.name.clone().unwrap_or_default(),
        )
    };
    let now = || inputs::now(g.now.as_deref());
    // What a row says but its ages: those move every second without anything happening.
    let state = |r: &PodRow| {
        let restarts = r.restarts.split(" (").next().unwrap_or("").to_string();
        (
            r.ready.clone(),
            r.status.clone(),
            restarts,
            r.ip.clone(),
            r.node.clone(),
        )
    };
    let t0 = now()?;
    let mut shown: std::collections::HashMap<(String, String), _> = first
        .iter()
        .map(|p| (key(p), state(&pod_row(p, t0))))
        .collect();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let (pods, _, _) = load_selected(g, &a.source, &a.names, false, false)?;
        let t = now()?;
        for p in &pods {
            let row = pod_row(p, t);
            let now_state = state(&row);
            let k = key(p);
            if shown.get(&k) != Some(&now_state) {
                print!("{}", pods_table(&[row], opts));
                std::io::stdout().flush()?;
                shown.insert(k, now_state);
            }
        }
    }
}
