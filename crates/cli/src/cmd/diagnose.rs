//! `crashscope diagnose`: the diagnosis engine over the pods the flags select — from the local
//! runtime's store (with the previous logs and flight-recorder captures it kept), a cluster
//! (status, events, `logs --previous`), or files (`-f`, `--logs`, `--capture`) — printed short
//! for people (`-o wide` for everything) or whole as JSON/YAML.

use anyhow::{bail, Context, Result};
use crashscope_diagnose::capture::read_capture;
use crashscope_diagnose::{diagnose, CaptureFacts, Diagnosis, Inputs, LogText, Source, World};
use crashscope_model::capture::CaptureName;
use crashscope_model::Event;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::args::{DiagnoseArgs, DiagnoseOutput, Global};
use crate::{inputs, output};

/// Where the pods come from.
enum Origin {
    Store(PathBuf),
    Cluster,
    Files,
}

/// Stored objects of one kind, skipping any that do not parse (they are reported by `get`).
fn objects<T: serde::de::DeserializeOwned>(v: Vec<serde_json::Value>) -> Vec<T> {
    v.into_iter()
        .filter_map(|o| serde_json::from_value(o).ok())
        .collect()
}

/// The instance that crashed: the current one when it is terminated, else the previous.
fn crashed_instance(st: &ContainerStatus) -> i32 {
    let terminated = st
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .is_some();
    if terminated || st.restart_count == 0 {
        st.restart_count
    } else {
        st.restart_count - 1
    }
}

fn statuses(pod: &Pod) -> Vec<&ContainerStatus> {
    let s = pod.status.as_ref();
    s.and_then(|s| s.init_container_statuses.as_ref())
        .into_iter()
        .flatten()
        .chain(
            s.and_then(|s| s.container_statuses.as_ref())
                .into_iter()
                .flatten(),
        )
        .collect()
}

/// Pods a `deployment/NAME` target names: owned by a ReplicaSet `NAME-<hash>`.
fn owned_by_deployment(pod: &Pod, name: &str) -> bool {
    pod.metadata.owner_references.iter().flatten().any(|o| {
        o.kind == "ReplicaSet"
            && o.name
                .strip_prefix(name)
                .and_then(|r| r.strip_prefix('-'))
                .is_some_and(|h| !h.is_empty() && !h.contains('-'))
    })
}

/// A pod standing for a capture diagnosed alone: its container named as the capture names it,
/// and no status (the capture is the only evidence, and nothing pretends otherwise).
fn pod_for_capture(facts: &CaptureFacts) -> Pod {
    let container = facts
        .containers
        .values()
        .next()
        .cloned()
        .unwrap_or_else(|| "main".into());
    let main = facts
        .main_process()
        .map(|p| p.comm.clone())
        .unwrap_or_else(|| "capture".into());
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": main, "namespace": "(capture)"},
        "spec": {"containers": [{"name": container}]},
    }))
    .unwrap_or_default()
}

pub fn run(g: &Global, a: DiagnoseArgs) -> Result<ExitCode> {
    let now = inputs::now(g.now.as_deref())?;
    // A capture alone: what it proves.
    if a.target.is_none() && a.source.files.is_empty() {
        if let Some(cap) = &a.capture {
            let facts = read_capture(cap)?;
            let pod = pod_for_capture(&facts);
            let container = pod
                .spec
                .as_ref()
                .and_then(|s| s.containers.first())
                .map(|c| c.name.clone())
                .unwrap_or_default();
            let mut captures = BTreeMap::new();
            captures.insert(container.clone(), facts);
            let out = diagnose(
                &Inputs {
                    pod: &pod,
                    events: &[],
                    logs: &BTreeMap::new(),
                    captures: &captures,
                    world: &World::default(),
                    now,
                },
                Some(&container),
            );
            print(&out, a.output)?;
            return Ok(ExitCode::SUCCESS);
        }
    }
    let (all, problems) = collect(g, &a, now)?;
    print(&all, a.output)?;
    Ok(super::status(problems))
}

/// The diagnoses `a` asks for (not the capture-only form), and whether something asked for
/// could not be diagnosed (said on stderr).
pub fn collect(
    g: &Global,
    a: &DiagnoseArgs,
    now: jiff::Timestamp,
) -> Result<(Vec<Diagnosis>, bool)> {
    let mut problems = false;
    let (deployment, names) = match a.target.as_deref() {
        Some(t) => match t.split_once('/') {
            Some(("deployment" | "deploy" | "deployments" | "deployment.apps", name)) => {
                (Some(name.to_string()), Vec::new())
            }
            Some(("pod" | "pods" | "po", name)) => (None, vec![name.to_string()]),
            Some((kind, _)) => {
                bail!("diagnose takes a pod, pod/NAME or deployment/NAME, not {kind:?}")
            }
            None => (None, vec![t.to_string()]),
        },
        None => (None, Vec::new()),
    };
    let origin = if !a.source.files.is_empty() {
        Origin::Files
    } else if super::cluster(g) {
        Origin::Cluster
    } else {
        Origin::Store(super::store_path(g)?)
    };
    let catalog = super::catalog(g)?;
    // Pods and events (model events: custom events keep their source for change correlation).
    let mut world = World::default();
    let (pods, events, not_found): (Vec<Pod>, Vec<Event>, bool) = match &origin {
        Origin::Store(path) => {
            let (pods, _, nf) = super::get::load_selected(g, &a.source, &names, true, false)?;
            let (evs, services, all_pods) = super::runtime()?.block_on(async {
                use crashscope_store::{EventQuery, SqlStore, Store};
                let store = SqlStore::open(path).await?;
                let evs: Vec<Event> = store
                    .events(&EventQuery::default())
                    .await?
                    .into_iter()
                    .map(|e| e.event)
                    .collect();
                let services = objects(store.objects("Service").await?);
                let pods = objects(store.objects("Pod").await?);
                anyhow::Ok((evs, services, pods))
            })?;
            world = World {
                services: Some(services),
                pods: all_pods,
            };
            (pods, evs, nf)
        }
        _ => {
            let (pods, kube_events, nf) =
                super::get::load_selected(g, &a.source, &names, true, true)?;
            let evs = kube_events
                .iter()
                .filter_map(|e| Event::from_kube(e, &catalog))
                .collect();
            (pods, evs, nf)
        }
    };
    problems |= not_found;
    let pods: Vec<Pod> = match &deployment {
        Some(d) => {
            let v: Vec<Pod> = pods
                .into_iter()
                .filter(|p| owned_by_deployment(p, d))
                .collect();
            if v.is_empty() {
                eprintln!("Error: no pods of deployment/{d} found");
                return Ok((Vec::new(), true));
            }
            v
        }
        None => pods,
    };
    let user_capture = match &a.capture {
        Some(p) => Some(read_capture(p)?),
        None => None,
    };
    let user_log = match &a.logs {
        Some(p) => Some(LogText::new(
            p.display().to_string(),
            &std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the log {}", p.display()))?,
        )),
        None => None,
    };
    let mut all = Vec::new();
    for pod in &pods {
        let (ns, name) = crashscope_model::pod::namespace_name(&pod.metadata);
        let (mut logs, mut captures, bad) = gather(g, &origin, pod, a.container.as_deref());
        problems |= bad;
        // The user's own log and capture go to the container asked for, else the first crashed one.
        // (Only worked out when there is such a log or capture: it costs a diagnosis.)
        let given = user_log.is_some() || user_capture.is_some();
        let target_container = given.then(|| a.container.clone()).flatten().or_else(|| {
            given
                .then(|| {
                    diagnose(
                        &Inputs {
                            pod,
                            events: &events,
                            logs: &BTreeMap::new(),
                            captures: &BTreeMap::new(),
                            world: &world,
                            now,
                        },
                        None,
                    )
                })?
                .first()
                .map(|d| d.container.clone())
        });
        if let Some(c) = &target_container {
            if let Some(l) = &user_log {
                logs.insert(c.clone(), l.clone());
            }
            if let Some(f) = &user_capture {
                let mut f = f.clone();
                let names: Vec<String> = f.containers.values().cloned().collect();
                if !names.is_empty() && !names.contains(c) {
                    eprintln!(
                        "warning: {} holds containers {} but not \"{c}\": diagnosing without it",
                        f.source,
                        names.join(", ")
                    );
                    problems = true;
                } else {
                    f.keep_container(c);
                    captures.insert(c.clone(), f);
                }
            }
        }
        let out = diagnose(
            &Inputs {
                pod,
                events: &events,
                logs: &logs,
                captures: &captures,
                world: &world,
                now,
            },
            a.container.as_deref(),
        );
        if out.is_empty() && (!names.is_empty() || a.container.is_some()) {
            match &a.container {
                Some(c)
                    if !statuses(pod).iter().any(|s| s.name == *c)
                        && !pod
                            .spec
                            .as_ref()
                            .is_some_and(|s| s.containers.iter().any(|x| x.name == *c)) =>
                {
                    eprintln!("Error: container \"{c}\" is not valid for pod \"{name}\"")
                }
                _ => eprintln!("pod {ns}/{name}: no container has crashed, nothing to diagnose"),
            }
            problems = true;
        }
        all.extend(out);
    }
    if all.is_empty() && names.is_empty() && !problems {
        eprintln!("No crashed containers found");
    }
    Ok((all, problems))
}

/// The previous logs and captures kept for a pod's containers (by container name), as the
/// origin has them; the flag is true when a capture was there but unreadable.
type Kept = (
    BTreeMap<String, LogText>,
    BTreeMap<String, CaptureFacts>,
    bool,
);

fn gather(g: &Global, origin: &Origin, pod: &Pod, only: Option<&str>) -> Kept {
    let (ns, name) = crashscope_model::pod::namespace_name(&pod.metadata);
    let mut logs = BTreeMap::new();
    let mut captures = BTreeMap::new();
    let mut problems = false;
    for st in statuses(pod) {
        if only.is_some_and(|c| c != st.name) {
            continue;
        }
        let instance = crashed_instance(st);
        match origin {
            Origin::Store(path) => {
                let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                let uid = pod.metadata.uid.as_deref().unwrap_or("");
                let file =
                    crashscope_local::kubelet::log_path(&dir, &ns, &name, uid, &st.name, instance);
                if let Ok(bytes) = std::fs::read(&file) {
                    let text = crashscope_model::logfile::plain_text(&bytes);
                    logs.insert(
                        st.name.clone(),
                        LogText::new(file.display().to_string(), &text),
                    );
                }
                let cap = stored_capture(&dir.join("captures"), &ns, &name, &st.name, instance);
                match cap.map(|c| read_capture(&c)) {
                    Some(Ok(mut f)) => {
                        f.keep_container(&st.name);
                        captures.insert(st.name.clone(), f);
                    }
                    Some(Err(e)) => {
                        eprintln!("warning: {e}; diagnosing {name}/{} without it", st.name);
                        problems = true;
                    }
                    None => {}
                }
            }
            Origin::Cluster if st.restart_count > 0 => {
                if let Some(text) = cluster_previous_log(g, &ns, &name, &st.name) {
                    let source = format!("logs {name} -c {} --previous", st.name);
                    logs.insert(st.name.clone(), LogText::new(source, &text));
                }
            }
            _ => {}
        }
    }
    (logs, captures, problems)
}

/// The top cause of each crashed container of `pods`, for the views that show a crash
/// (`get pods`, `describe pod`): (namespace, pod, container) → diagnosis.
pub fn causes(
    g: &Global,
    files: bool,
    pods: &[Pod],
    events: &[k8s_openapi::api::core::v1::Event],
    now: jiff::Timestamp,
) -> BTreeMap<(String, String, String), Diagnosis> {
    // Against a cluster the views use status and events only: fetching every crashed
    // container's previous log would cost an API call each (`diagnose` does it).
    let origin = if files || super::cluster(g) {
        Origin::Files
    } else {
        match super::store_path(g) {
            Ok(p) => Origin::Store(p),
            Err(_) => Origin::Files,
        }
    };
    let catalog = super::catalog(g).unwrap_or_else(|_| crashscope_model::Catalog::builtin());
    let events: Vec<Event> = events
        .iter()
        .filter_map(|e| Event::from_kube(e, &catalog))
        .collect();
    let world = World::default();
    let mut out = BTreeMap::new();
    for pod in pods {
        let (logs, captures, _) = gather(g, &origin, pod, None);
        let inputs = Inputs {
            pod,
            events: &events,
            logs: &logs,
            captures: &captures,
            world: &world,
            now,
        };
        for d in diagnose(&inputs, None) {
            out.insert((d.namespace.clone(), d.pod.clone(), d.container.clone()), d);
        }
    }
    out
}

/// Puts each crash loop's diagnosed cause on it (id, summary, first evidence).
pub fn annotate(
    loops: &mut [crashscope_kubectl::crashloop::CrashLoop],
    causes: &BTreeMap<(String, String, String), Diagnosis>,
) {
    for l in loops {
        let key = (l.namespace.clone(), l.pod.clone(), l.container.clone());
        if let Some(top) = causes.get(&key).and_then(|d| d.top()) {
            l.cause = Some(top.id.clone());
            l.cause_detail = std::iter::once(top.summary.clone())
                .chain(top.evidence.first().map(|e| {
                    format!(
                        "[{}] {}: {}",
                        Source::as_str(e.source),
                        e.pointer,
                        one_line(&e.text, 160)
                    )
                }))
                .collect();
        }
    }
}

/// The flight recorder's capture of a container instance: that instance's, else the newest of
/// the container (a capture taken on request).
fn stored_capture(
    dir: &Path,
    ns: &str,
    pod: &str,
    container: &str,
    instance: i32,
) -> Option<PathBuf> {
    let mut found: Vec<(bool, std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = CaptureName::parse(&name)?;
            (n.namespace == ns && n.pod == pod && n.container == container).then(|| {
                let t = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (n.instance == instance, t, e.path())
            })
        })
        .collect();
    found.sort();
    found.pop().map(|f| f.2)
}

fn cluster_previous_log(g: &Global, ns: &str, pod: &str, container: &str) -> Option<String> {
    use crashscope_kube::cluster::LogRequest;
    let rt = super::runtime().ok()?;
    rt.block_on(async {
        let client = super::kube_client(g).await.ok()?;
        let req = LogRequest {
            namespace: ns.to_string(),
            pod: pod.to_string(),
            container: Some(container.to_string()),
            previous: true,
            tail_lines: Some(2000),
            since_time: None,
            timestamps: false,
        };
        req.fetch(&client).await.ok()
    })
}

fn print(out: &[Diagnosis], format: DiagnoseOutput) -> Result<()> {
    match format {
        DiagnoseOutput::Json => print!("{}", output::json(&out)?),
        DiagnoseOutput::Yaml => print!("{}", output::yaml(&out)?),
        DiagnoseOutput::Table | DiagnoseOutput::Wide => {
            let mut s = String::new();
            for (i, d) in out.iter().enumerate() {
                if i > 0 {
                    s.push('\n');
                }
                render(&mut s, d, format == DiagnoseOutput::Wide);
            }
            print!("{s}");
        }
    }
    Ok(())
}

/// The text form of a diagnosis: who, the cause and why, the proof, what to do.
pub fn render(s: &mut String, d: &Diagnosis, wide: bool) {
    let kind = if d.init {
        "init container"
    } else {
        "container"
    };
    let _ = write!(
        s,
        "{}/{} {kind} {} (restart {}",
        d.namespace, d.pod, d.container, d.restart
    );
    if let Some(t) = d.exited_at {
        let _ = write!(s, ", exited {t}");
    }
    s.push_str(")\n");
    let shown = if wide { d.causes.len() } else { 1 };
    for (i, c) in d.causes.iter().take(shown).enumerate() {
        let label = if i == 0 { "Cause:" } else { "Also:" };
        let _ = writeln!(
            s,
            "  {label:<10}{} ({:.2}) — {}",
            c.id, c.confidence, c.title
        );
        let _ = writeln!(s, "  {:<10}{}", "Summary:", c.summary);
        let n = if wide { c.evidence.len() } else { 3 };
        for (j, e) in c.evidence.iter().take(n).enumerate() {
            let head = if j == 0 { "Evidence:" } else { "" };
            let _ = writeln!(
                s,
                "  {head:<10}[{}] {}: {}",
                Source::as_str(e.source),
                e.pointer,
                one_line(&e.text, if wide { 400 } else { 160 })
            );
        }
        let n = if wide { c.remedies.len() } else { 1 };
        for (j, r) in c.remedies.iter().take(n).enumerate() {
            let head = if j == 0 { "Remedy:" } else { "" };
            let _ = writeln!(s, "  {head:<10}{}", r.text);
            if let Some(cmd) = &r.command {
                let _ = writeln!(s, "  {:<10}$ {cmd}", "");
            } else if r.patch.is_some() || r.manifest.is_some() {
                // A change the evidence proves: `fix` prints its patch and makes it.
                let _ = writeln!(
                    s,
                    "  {:<10}$ crashscope fix {} -n {} --apply",
                    "", d.pod, d.namespace
                );
            }
        }
        for (j, x) in c.confirm.iter().enumerate() {
            let head = if j == 0 { "Confirm:" } else { "" };
            let _ = writeln!(s, "  {head:<10}{x}");
        }
        if wide {
            for (j, r) in c.rejected.iter().enumerate() {
                let head = if j == 0 { "Rejected:" } else { "" };
                let _ = writeln!(s, "  {head:<10}{}: {}", r.id, r.why_not);
            }
        }
    }
    if wide {
        let _ = writeln!(s, "  {:<10}{}", "Inputs:", d.inputs.join("; "));
    }
    for n in &d.notes {
        let _ = writeln!(s, "  {:<10}{n}", "Note:");
    }
}

fn one_line(t: &str, max: usize) -> String {
    let flat: String = t.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        let cut: String = flat.chars().take(max).collect();
        format!("{cut}…")
    } else {
        flat
    }
}
