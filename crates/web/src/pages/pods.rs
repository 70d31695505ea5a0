//! The pods (`/ui/pods`): every pod the server knows, crash-looping ones first, and the pod
//! page (`/ui/pods/{namespace}/{name}`), the crash-loop page: each container's state and last
//! exit, the diagnosis of its last crash — cause, confidence, the evidence with where to
//! check it, what was ruled out and why, remedies with their commands — and the pod's
//! recent events.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use crashscope_diagnose::Diagnosis;
use crashscope_model::pod::{ContainerKind, ContainerState, ContainerView, PodState};
use crashscope_server::api::events::{self, ListParams};
use crashscope_server::AppState;
use serde::Deserialize;

use super::chart::RANGES;
use super::events::{Filters, Row};
use super::evidence::Panel as _;
use super::scope::{Scope, Scoped};
use super::{render, Chrome};
use crate::session::Viewer;

/// What a container's state says in one line, as `kubectl describe` words it.
pub fn state_text(s: &ContainerState) -> String {
    match s {
        ContainerState::Waiting { reason, message } => {
            let mut t = format!("Waiting: {}", reason.as_deref().unwrap_or("(no reason)"));
            if let Some(m) = message {
                t.push_str(&format!(" — {m}"));
            }
            t
        }
        ContainerState::Running { started_at } => match started_at {
            Some(at) => format!("Running since {}", short_utc(*at)),
            None => "Running".into(),
        },
        ContainerState::Terminated {
            reason,
            exit_code,
            signal,
            message,
            finished_at,
            ..
        } => {
            let mut t = format!(
                "Terminated: {}, exit code {exit_code}",
                reason.as_deref().unwrap_or("(no reason)")
            );
            if let Some(s) = signal {
                t.push_str(&format!(", signal {s}"));
            }
            if let Some(at) = finished_at {
                t.push_str(&format!(", at {}", short_utc(*at)));
            }
            if let Some(m) = message {
                t.push_str(&format!(" — {m}"));
            }
            t
        }
        ContainerState::Unknown => "Unknown".into(),
    }
}

/// A time in running text, with its zone.
pub(crate) fn short_utc(t: jiff::Timestamp) -> String {
    format!("{} UTC", super::short(t))
}

/// A pod's status in one word, as `kubectl get pods` shows it: a container's waiting or
/// terminated reason when there is one, else the phase.
fn status(p: &PodState) -> String {
    let app = |c: &&ContainerView| c.kind == ContainerKind::App;
    let reason = p
        .containers
        .iter()
        .filter(app)
        .find_map(|c| match &c.state {
            ContainerState::Waiting { reason, .. } => reason.clone(),
            ContainerState::Terminated { reason, .. } => reason.clone(),
            _ => None,
        });
    reason.unwrap_or_else(|| p.phase.clone())
}

/// One pod in the list.
pub struct PodRow {
    pub namespace: String,
    pub name: String,
    pub link: String,
    pub status: String,
    pub crash_looping: bool,
    pub ready: String,
    pub restarts: u32,
    pub last_exit: String,
    pub node: String,
}

impl PodRow {
    fn new(p: &PodState) -> PodRow {
        let app: Vec<_> = p
            .containers
            .iter()
            .filter(|c| c.kind != ContainerKind::Init)
            .collect();
        let last_exit = p
            .containers
            .iter()
            .filter_map(|c| c.last_terminated())
            .map(|s| match s {
                ContainerState::Terminated {
                    reason, exit_code, ..
                } => format!("{}, exit {exit_code}", reason.as_deref().unwrap_or("?")),
                _ => String::new(),
            })
            .next()
            .unwrap_or_default();
        PodRow {
            namespace: p.namespace.clone(),
            name: p.name.clone(),
            link: link(&p.namespace, &p.name),
            status: status(p),
            crash_looping: p.crash_looping().next().is_some(),
            ready: format!("{}/{}", app.iter().filter(|c| c.ready).count(), app.len()),
            restarts: p.restarts(),
            last_exit,
            node: p.node.clone().unwrap_or_default(),
        }
    }
}

/// The pod page of `namespace`/`name` (a suffix — `#logs-title`, `/chart.json?…` — may follow).
pub(crate) fn link(namespace: &str, name: &str) -> String {
    format!("/ui/pods/{}/{}", path(namespace), path(name))
}

/// A path segment (pod and namespace names are DNS labels; this keeps anything else safe).
pub(crate) fn path(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// `on`: crash-looping pods only.
    #[serde(default)]
    crashing: String,
}

#[derive(Template)]
#[template(path = "pods.html")]
struct PodsPage {
    chrome: Chrome,
    namespace: String,
    crashing: bool,
    rows: Vec<PodRow>,
    error: Option<String>,
}

/// `GET /ui/pods`.
pub async fn list(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<ListQuery>,
    Query(scope): Query<Scope>,
) -> Response {
    let crashing = q.crashing == "on";
    let namespace = scope.namespace.trim().to_string();
    let (status, rows, error) = match app.store.latest_pods().await {
        Ok(pods) => {
            let mut rows: Vec<PodRow> = pods
                .iter()
                .map(|(_, p)| p)
                .filter(|p| p.deleted.is_none())
                .filter(|p| {
                    let workload = p.owners.workload();
                    scope.admits(&Scoped {
                        cluster: p.cluster.as_deref(),
                        namespace: &p.namespace,
                        workload: workload
                            .as_ref()
                            .map(|w| (w.kind.as_str(), w.name.as_str())),
                        pod: Some(&p.name),
                        // A pod is in a container's scope when it has that container.
                        container: Some(scope.container.trim())
                            .filter(|c| p.containers.iter().any(|x| x.name == *c)),
                    })
                })
                .map(PodRow::new)
                .filter(|r| !crashing || r.crash_looping)
                .collect();
            // The job is crash loops: those first, then as kubectl orders.
            rows.sort_by(|a, b| {
                (!a.crash_looping, &a.namespace, &a.name).cmp(&(
                    !b.crash_looping,
                    &b.namespace,
                    &b.name,
                ))
            });
            (StatusCode::OK, rows, None)
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Vec::new(),
            Some(format!("cannot read the pods: {e}")),
        ),
    };
    render(
        status,
        &PodsPage {
            chrome: Chrome::for_viewer("pods", &viewer).scoped(scope.bar(
                "/ui/pods",
                &[("crashing", if crashing { "on" } else { "" })],
            )),
            namespace,
            crashing,
            rows,
            error,
        },
    )
}

/// A container as the pod page shows it.
pub struct ContainerRow {
    pub name: String,
    pub kind: &'static str,
    pub image: String,
    pub state: String,
    pub last_state: String,
    pub ready: bool,
    pub restarts: u32,
}

/// The end of a container's last ended instance's log.
pub struct LogTail {
    pub container: String,
    pub text: String,
    /// Lines left out above.
    pub cut: usize,
}

/// Lines of a previous instance's log shown on the pod page.
pub const LOG_LINES: usize = 200;

/// The last [`LOG_LINES`] lines of each container's previous log the local runtime kept
/// (the last 256 KiB of the file at most).
pub(crate) async fn previous_logs(app: &AppState, namespace: &str, name: &str) -> Vec<LogTail> {
    match crashscope_server::diagnosis::pod_object(&app.store, namespace, name).await {
        Ok(Some(pod)) => logs(app, &pod, Instance::Previous).await,
        _ => Vec::new(),
    }
}

/// Which instance's log the page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instance {
    /// The last one that ended (`kubectl logs --previous`).
    Previous,
    /// The one running now, or about to start (`kubectl logs`).
    Current,
}

/// The last [`LOG_LINES`] lines of each container's log of `which` instance that the local
/// runtime kept (the last 256 KiB of the file at most).
pub(crate) async fn logs(
    app: &AppState,
    pod: &k8s_openapi::api::core::v1::Pod,
    which: Instance,
) -> Vec<LogTail> {
    let paths = match which {
        Instance::Previous => crashscope_server::diagnosis::previous_log_paths(pod, &app.data_dir),
        Instance::Current => current_log_paths(pod, &app.data_dir),
    };
    let read = move || {
        paths
            .into_iter()
            .filter_map(|(container, path)| {
                use std::io::{Read as _, Seek as _};
                let mut f = std::fs::File::open(&path).ok()?;
                let len = f.metadata().ok()?.len();
                let start = len.saturating_sub(256 * 1024);
                f.seek(std::io::SeekFrom::Start(start)).ok()?;
                let mut bytes = Vec::new();
                f.read_to_end(&mut bytes).ok()?;
                let text = crashscope_model::logfile::plain_text(&bytes);
                let mut lines: Vec<&str> = text.lines().collect();
                if start > 0 && !lines.is_empty() {
                    // The first line read is likely a part of one.
                    lines.remove(0);
                }
                let cut = lines.len().saturating_sub(LOG_LINES);
                Some(LogTail {
                    container,
                    text: lines[cut..].join("\n"),
                    cut,
                })
            })
            .collect()
    };
    tokio::task::spawn_blocking(read).await.unwrap_or_default()
}

/// Each container's log file of its current instance (numbered by its restart count).
fn current_log_paths(
    pod: &k8s_openapi::api::core::v1::Pod,
    data_dir: &std::path::Path,
) -> std::collections::BTreeMap<String, std::path::PathBuf> {
    let m = &pod.metadata;
    let (ns, name) = (
        m.namespace.as_deref().unwrap_or("default"),
        m.name.as_deref().unwrap_or(""),
    );
    let uid = m.uid.as_deref().unwrap_or("");
    pod.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .map(|st| {
            let path = crashscope_model::logfile::log_path(
                data_dir,
                ns,
                name,
                uid,
                &st.name,
                st.restart_count,
            );
            (st.name.clone(), path)
        })
        .collect()
}

/// How sure a cause is, in words beside the number.
pub(crate) fn confidence_word(c: f64) -> &'static str {
    if c >= 0.8 {
        "high"
    } else if c >= 0.5 {
        "medium"
    } else {
        "low"
    }
}

#[derive(Template)]
#[template(path = "pod.html")]
struct PodPage {
    chrome: Chrome,
    namespace: String,
    name: String,
    found: bool,
    status: String,
    node: String,
    containers: Vec<ContainerRow>,
    diagnoses: Vec<Diagnosis>,
    /// Why there is no diagnosis, when there is none.
    no_diagnosis: Option<String>,
    rows: Vec<Row>,
    logs: Vec<LogTail>,
    /// Whose log is shown, and the link to the other.
    log_previous: bool,
    log_toggle: (&'static str, &'static str),
    events_link: String,
    captures_link: String,
    /// The session's CSRF token when it may ask for captures.
    capture_csrf: Option<String>,
    /// The pod's capture requests, newest first: (id, state, requested, what it made).
    requests: Vec<(i64, String, String, String)>,
    ranges: &'static [(&'static str, &'static str)],
    range: String,
    range_label: String,
    chart_src: String,
    /// The moment marked on the chart (Unix seconds), if any.
    mark: Option<i64>,
    /// Evidence pointer → where to check it.
    links: std::collections::HashMap<String, String>,
    /// Each ended container's runs, waits and probe failures; the next restart.
    crash_loops: Vec<super::crashloop::Timeline>,
    /// `kubectl describe pod` text, when the server keeps the pod's object.
    describe: Option<String>,
    /// `kubectl get pod -o wide`'s row for it: (header, value) pairs.
    kubectl: Vec<(&'static str, String)>,
    /// The pod's stored captures, newest first: (link, text).
    captures: Vec<(String, String)>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PodQuery {
    /// The restart chart's range (the last hour when absent: a crash loop is recent).
    #[serde(default)]
    range: String,
    /// The chart's absolute bounds (a brush zoom puts them in the URL).
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// `current` or `previous`: whose log to show (the previous instance's when the pod
    /// crash-loops, else the current one's).
    #[serde(default)]
    log: String,
    /// A moment to show on the chart ("show on chart" from an event): the chart spans
    /// [`AROUND_AT`] either side of it and marks it.
    #[serde(default)]
    at: String,
}

/// How far either side of `at` the chart spans.
pub const AROUND_AT: jiff::SignedDuration = jiff::SignedDuration::from_mins(30);

impl PodQuery {
    /// The chart's data query (`range=…` or `from=…&to=…`), its label, and the moment to
    /// mark (Unix seconds).
    fn chart(&self) -> (String, String, Option<i64>) {
        use super::range::absolute;
        if let Some(at) = absolute(&self.at) {
            let (a, b) = (at - AROUND_AT, at + AROUND_AT);
            let q = super::query_string(&[("from", &a.to_string()), ("to", &b.to_string())]);
            let label = format!("hour around {}", short_utc(at));
            return (q, label, Some(at.as_second()));
        }
        if let (Some(a), Some(b)) = (absolute(&self.from), absolute(&self.to)) {
            let q = super::query_string(&[("from", &a.to_string()), ("to", &b.to_string())]);
            let label = format!("time from {} to {}", short_utc(a), short_utc(b));
            return (q, label, None);
        }
        let (range, label) = RANGES
            .iter()
            .find(|(r, _)| *r == self.range)
            .copied()
            .unwrap_or(RANGES[0]);
        (format!("range={range}"), label.to_string(), None)
    }
}

impl super::evidence::Panel for PodPage {
    fn links(&self) -> &std::collections::HashMap<String, String> {
        &self.links
    }
}

/// Capture file path → id, for evidence links.
pub(crate) async fn capture_ids(app: &AppState) -> std::collections::HashMap<String, i64> {
    match app.store.captures().await {
        Ok(all) => all.into_iter().map(|c| (c.path, c.id)).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the captures");
            Default::default()
        }
    }
}

/// `GET /ui/pods/{namespace}/{name}`.
pub async fn page(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path((namespace, name)): Path<(String, String)>,
    Query(q): Query<PodQuery>,
) -> Response {
    let (chart_query, range_label, mark) = q.chart();
    let range = if chart_query.starts_with("range=") {
        chart_query.trim_start_matches("range=").to_string()
    } else {
        String::new()
    };
    let pod = match app.store.latest_pods().await {
        Ok(pods) => pods
            .into_iter()
            .map(|(_, p)| p)
            .find(|p| p.namespace == namespace && p.name == name),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the pods");
            None
        }
    };
    let found = pod.is_some();
    let (diagnoses, no_diagnosis) = match crashscope_server::diagnosis::diagnose_pod(
        &app.store,
        &app.data_dir,
        &namespace,
        &name,
    )
    .await
    {
        Ok(Some(d)) if d.is_empty() => (
            d,
            Some("No container of this pod has crashed: nothing to diagnose.".to_string()),
        ),
        Ok(Some(d)) => (d, None),
        Ok(None) => (
            Vec::new(),
            Some(
                "The server keeps the objects of its local runtime's pods only; diagnose a \
                     cluster's pod with `crashscope diagnose --cluster`."
                    .to_string(),
            ),
        ),
        Err(e) => (Vec::new(), Some(format!("The diagnosis failed: {e}"))),
    };
    let filters = Filters {
        namespace: namespace.clone(),
        pod: name.clone(),
        ..Filters::default()
    };
    let pod_events = match events::query(
        &app,
        ListParams {
            namespace: Some(namespace.clone()),
            pod: Some(name.clone()),
            limit: Some(200),
            ..ListParams::default()
        },
    )
    .await
    {
        Ok(page) => page.items,
        Err(e) => {
            tracing::warn!(error = %e.message, "cannot read the pod's events");
            Vec::new()
        }
    };
    let rows = pod_events
        .iter()
        .take(50)
        .map(|e| Row::new(e, &filters))
        .collect();
    let (status_text, node, containers) = match &pod {
        Some(p) => (
            status(p),
            p.node.clone().unwrap_or_default(),
            p.containers
                .iter()
                .map(|c| ContainerRow {
                    name: c.name.clone(),
                    kind: match c.kind {
                        ContainerKind::Init => "init",
                        ContainerKind::Sidecar => "sidecar",
                        ContainerKind::App => "app",
                    },
                    image: c.image.clone().unwrap_or_default(),
                    state: state_text(&c.state),
                    last_state: c.last_state.as_ref().map(state_text).unwrap_or_default(),
                    ready: c.ready,
                    restarts: c.restart_count,
                })
                .collect(),
        ),
        None => (String::new(), String::new(), Vec::new()),
    };
    let crash_looping = pod
        .as_ref()
        .is_some_and(|p| p.crash_looping().next().is_some());
    let which = match q.log.as_str() {
        "current" => Instance::Current,
        "previous" => Instance::Previous,
        _ if crash_looping => Instance::Previous,
        _ => Instance::Current,
    };
    let log_toggle = match which {
        Instance::Previous => ("the current instance's log", "?log=current#logs-title"),
        Instance::Current => ("the previous instance's log", "?log=previous#logs-title"),
    };
    // The pod's object, read once: its logs, describe text and kubectl row come from it.
    let object = crashscope_server::diagnosis::pod_object(&app.store, &namespace, &name)
        .await
        .ok()
        .flatten();
    let logs = match &object {
        Some(p) => logs(&app, p, which).await,
        None => Vec::new(),
    };
    let describe = object.as_ref().map(|p| {
        let ctx = crashscope_kubectl::describe::DescribeContext {
            events: &[],
            // The page lists the pod's events beside it.
            show_events: false,
            now: jiff::Timestamp::now(),
            tz: jiff::tz::TimeZone::UTC,
        };
        crashscope_kubectl::describe::describe_pod(p, &ctx)
    });
    let kubectl = object
        .as_ref()
        .map(|p| {
            let r = crashscope_kubectl::get::pod_row(p, jiff::Timestamp::now());
            vec![
                ("READY", r.ready),
                ("STATUS", r.status),
                ("RESTARTS", r.restarts),
                ("AGE", r.age),
                ("IP", r.ip),
                ("NODE", r.node),
            ]
        })
        .unwrap_or_default();
    let captures = match app.store.captures().await {
        Ok(mut all) => {
            all.sort_by_key(|c| std::cmp::Reverse(c.created_at));
            all.into_iter()
                .filter(|c| {
                    c.namespace.as_deref() == Some(namespace.as_str())
                        && c.pod.as_deref() == Some(name.as_str())
                })
                .take(20)
                .map(|c| {
                    let text = format!(
                        "#{} — container {}{}, {}, {} – {}, {} events{}",
                        c.id,
                        c.container.as_deref().unwrap_or("?"),
                        c.restart
                            .map(|r| format!(" restart {r}"))
                            .unwrap_or_default(),
                        c.reason,
                        super::short(c.window_from),
                        super::short(c.window_to),
                        c.events,
                        if c.drops > 0 {
                            format!(", {} dropped", c.drops)
                        } else {
                            String::new()
                        }
                    );
                    (format!("/ui/captures/{}", c.id), text)
                })
                .collect()
        }
        Err(_) => Vec::new(),
    };
    let crash_loops = match &pod {
        Some(latest) => crash_loops(&app, latest, object.as_ref()).await,
        None => Vec::new(),
    };
    let requests = match app.store.capture_requests(None).await {
        Ok(all) => all
            .into_iter()
            .filter(|r| r.namespace == namespace && r.pod == name)
            .take(10)
            .map(|r| {
                (
                    r.id,
                    r.state.as_str().to_string(),
                    super::short(r.requested_at),
                    r.capture.unwrap_or_default(),
                )
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let chart_src = format!("{}/chart.json?{chart_query}", link(&namespace, &name));
    let scope = Scope {
        namespace: namespace.clone(),
        pod: name.clone(),
        cluster: pod
            .as_ref()
            .and_then(|p| p.cluster.clone())
            .unwrap_or_default(),
        ..Scope::default()
    };
    let links = super::evidence::links(
        &diagnoses,
        &capture_ids(&app).await,
        &pod_events,
        &namespace,
        &name,
    );
    let page = PodPage {
        log_previous: which == Instance::Previous,
        log_toggle,
        links,
        crash_loops,
        describe,
        kubectl,
        captures,
        capture_csrf: viewer.csrf.clone().filter(|_| viewer.can_write()),
        requests,
        chrome: Chrome::for_viewer("pods", &viewer).scoped(scope.bar("/ui/pods", &[])),
        ranges: &RANGES,
        range,
        range_label,
        chart_src,
        mark,
        events_link: filters.link(),
        captures_link: format!(
            "/ui/captures?namespace={}&pod={}",
            path(&namespace),
            path(&name)
        ),
        namespace,
        name,
        found,
        status: status_text,
        node,
        containers,
        diagnoses,
        no_diagnosis,
        rows,
        logs,
    };
    let code = if found {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    render(code, &page)
}

/// The crash-loop timelines of `latest`'s containers, from the pod's recorded states and
/// its `Unhealthy` events; the back-off scaled as the local runtime scales it (`object`'s
/// annotation).
async fn crash_loops(
    app: &AppState,
    latest: &PodState,
    object: Option<&k8s_openapi::api::core::v1::Pod>,
) -> Vec<super::crashloop::Timeline> {
    use crashscope_store::Store as _;
    let history = match app.store.pod_history(&latest.namespace, &latest.name).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a pod's history");
            Vec::new()
        }
    };
    let unhealthy = events::query(
        app,
        ListParams {
            namespace: Some(latest.namespace.clone()),
            pod: Some(latest.name.clone()),
            reason: Some("Unhealthy".into()),
            limit: Some(200),
            ..ListParams::default()
        },
    )
    .await
    .map(|p| p.items)
    .unwrap_or_default();
    let scale = object
        .and_then(|p| p.metadata.annotations.as_ref())
        .and_then(|a| a.get(crashscope_model::backoff::TIME_SCALE_ANNOTATION))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(1.0);
    super::crashloop::timelines(
        &history,
        latest,
        &unhealthy,
        &crashscope_model::backoff::BackoffPolicy::kubelet(),
        scale,
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct CaptureForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    duration: String,
}

/// `POST /ui/pods/{namespace}/{name}/capture`: asks the pod's recorder for a capture, as
/// `POST /api/v1/capture-requests` does, and goes back to the pod page.
pub async fn request_capture(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path((namespace, name)): Path<(String, String)>,
    axum::Form(f): axum::Form<CaptureForm>,
) -> Response {
    use axum::response::IntoResponse as _;
    if let Some(refused) = crate::session::refuse_write(&viewer, &f.csrf) {
        return refused;
    }
    let req = crashscope_server::api::captures::NewRequest {
        namespace: namespace.clone(),
        pod: name.clone(),
        container: None,
        duration: Some(f.duration).filter(|d| !d.is_empty()),
    };
    match crashscope_server::api::captures::request(&app, req).await {
        Ok(_) => {
            axum::response::Redirect::to(&format!("{}#captures-title", link(&namespace, &name)))
                .into_response()
        }
        Err(e) => (e.status, super::say(&e)).into_response(),
    }
}
