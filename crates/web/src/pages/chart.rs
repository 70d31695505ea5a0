//! The data of a pod's restart chart (`/ui/pods/{namespace}/{name}/chart.json`): restarts
//! per container over the range, at most two points per pixel of the chart's width, from the
//! same range query as `GET /api/v1/metrics/query`; and the events to mark below it — the
//! pod's own and the changes (custom events) in its namespace. A preset `range` ends now;
//! `from`/`to` (what a brush zoom or "show on chart" asks) are absolute.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use crashscope_model::event::SOURCE_KUBERNETES;
use crashscope_server::api::events::{self, ListParams};
use crashscope_server::api::metrics_query::{self, QueryArgs};
use crashscope_server::AppState;
use serde::{Deserialize, Serialize};

/// The chart's time ranges: the `range` values a page offers.
pub const RANGES: [(&str, &str); 4] = [
    ("1h", "last hour"),
    ("6h", "last 6 hours"),
    ("24h", "last 24 hours"),
    ("7d", "last 7 days"),
];

#[derive(Debug, Deserialize)]
pub struct ChartQuery {
    #[serde(default)]
    range: Option<String>,
    /// Absolute bounds (RFC 3339 or Unix seconds), instead of a range.
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    /// The chart's width in pixels.
    #[serde(default)]
    width: Option<u32>,
}

#[derive(Serialize)]
struct Line {
    label: String,
    points: Vec<(i64, f64)>,
}

#[derive(Serialize)]
struct Marker {
    t: i64,
    kind: &'static str,
    label: String,
}

#[derive(Serialize)]
struct Chart {
    from: i64,
    to: i64,
    step: f64,
    series: Vec<Line>,
    markers: Vec<Marker>,
    bands: Vec<Band>,
}

/// A stretch drawn behind the series: an alert firing about the pod, its crash loop.
#[derive(Serialize)]
struct Band {
    from: i64,
    to: i64,
    /// alert, incident or silence.
    kind: &'static str,
    label: String,
}

/// The alerts about any of `pods` (of `namespace`) that fired, the silences over them, and
/// the incidents (crash loops) they are part of, clipped to `from..=to` (Unix seconds).
async fn bands(app: &AppState, namespace: &str, pods: &[String], from: i64, to: i64) -> Vec<Band> {
    let now = jiff::Timestamp::now();
    let clip = |a: i64, b: i64| (a.max(from), b.min(to));
    let mut out = Vec::new();
    // The alerts' labels as silences match them.
    let mut silenced_labels: Vec<std::collections::BTreeMap<String, String>> = Vec::new();
    match app.store.alerts(None, 1000).await {
        Ok(alerts) => {
            for a in alerts.iter().filter(|a| {
                a.labels.get("namespace").map(String::as_str) == Some(namespace)
                    && a.pods().iter().any(|p| pods.contains(p))
            }) {
                silenced_labels.push(a.silence_labels());
                let Some(fired) = a.fired_at else { continue };
                let (x, y) = clip(fired.as_second(), a.resolved_at.unwrap_or(now).as_second());
                if x <= y {
                    out.push(Band {
                        from: x,
                        to: y,
                        kind: "alert",
                        label: format!("alert {}: {}", a.rule, a.summary),
                    });
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the alerts for a chart"),
    }
    // Silences over any of those alerts, hatched: while one was in force, nobody was told.
    let at = |t: i64| jiff::Timestamp::from_second(t).unwrap_or(now);
    if !silenced_labels.is_empty() {
        // `to` is whole seconds: the second it names counts whole.
        match app.store.silences_during(at(from), at(to + 1)).await {
            Ok(silences) => {
                for s in silences {
                    let Ok(matchers) = serde_json::from_value::<
                        Vec<crashscope_rules::silence::Matcher>,
                    >(s.matchers.clone()) else {
                        continue;
                    };
                    let covers = silenced_labels
                        .iter()
                        .any(|l| crashscope_rules::silence::covers(&matchers, l));
                    let (x, y) = clip(s.starts_at.as_second(), s.ends_at.as_second());
                    if covers && x <= y {
                        out.push(Band {
                            from: x,
                            to: y,
                            kind: "silence",
                            label: format!("silenced by {}: {}", s.created_by, s.comment),
                        });
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the silences for a chart"),
        }
    }
    let since = jiff::Timestamp::from_second(from)
        .ok()
        .map(|t| t.to_string());
    match crashscope_server::api::views::incident_items(
        app,
        since.as_deref(),
        None,
        Some(namespace),
    )
    .await
    {
        Ok(items) => {
            for i in items
                .iter()
                .filter(|i| pods.iter().any(|p| i.incident.pods.contains(p)))
            {
                let (x, y) = clip(
                    i.incident.first_seen.as_second(),
                    i.incident.last_seen.as_second(),
                );
                if x <= y {
                    out.push(Band {
                        from: x,
                        to: y,
                        kind: "incident",
                        label: format!(
                            "crash loop of {} ending {}: {} restarts",
                            i.incident.key.container, i.incident.key.reason, i.incident.restarts
                        ),
                    });
                }
            }
        }
        Err(e) => tracing::warn!(error = %e.message, "cannot read the incidents for a chart"),
    }
    out
}

/// How an event is marked: by the Kubernetes reason's meaning for a crash loop, and every
/// custom event as a change.
fn kind(source: &str, reason: &str) -> &'static str {
    use crashscope_model::event::{SOURCE_ALERT, SOURCE_CAPTURE, SOURCE_CRASHSCOPE};
    match source {
        SOURCE_CAPTURE => return "capture",
        SOURCE_ALERT | SOURCE_CRASHSCOPE => return "other",
        s if s != SOURCE_KUBERNETES && s != "local" => return "change",
        _ => {}
    }
    match reason {
        "BackOff" => "backoff",
        "OOMKilling" | "OOMKilled" => "oom",
        "Killing" | "Unhealthy" | "Evicted" | "Preempting" => "kill",
        _ => "other",
    }
}

/// Pods whose events a workload's chart marks, at most.
const MAX_PODS: usize = 20;

/// Events marked on one chart at most: a crash loop's BackOff events over a week are
/// thousands, and every one is reachable through its bucket.
pub const MAX_MARKERS: usize = 20_000;

/// The events `q` selects, page after page, up to [`MAX_MARKERS`].
async fn every_event(app: &AppState, mut q: ListParams) -> Vec<crashscope_store::StoredEvent> {
    q.limit = Some(1000);
    let mut all = Vec::new();
    loop {
        match events::query(app, q.clone()).await {
            Ok(page) => {
                all.extend(page.items);
                match page.next_cursor {
                    Some(c) if all.len() < MAX_MARKERS => q.cursor = Some(c),
                    _ => break,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e.message, "cannot read a chart's events");
                break;
            }
        }
    }
    all.truncate(MAX_MARKERS);
    all
}

/// The chart's `from` and `to` as the queries take them, and the span between: a preset
/// range up to now, or absolute bounds (both, `from` before `to`).
fn bounds(q: &ChartQuery) -> Result<(String, Option<String>, std::time::Duration), String> {
    let now = jiff::Timestamp::now();
    match (&q.from, &q.to) {
        (None, None) => {
            let range = q.range.clone().unwrap_or_else(|| "1h".into());
            if !RANGES.iter().any(|(r, _)| *r == range) {
                return Err(format!("range: {range:?} is not one of 1h, 6h, 24h, 7d"));
            }
            let span = crashscope_model::duration::parse_go(&range)
                .ok_or_else(|| format!("range: {range:?}"))?;
            Ok((range, None, span))
        }
        (Some(from), Some(to)) => {
            let at = |field: &str, v: &str| {
                crashscope_server::api::params::time(field, v, now)
                    .map_err(|e| format!("{field}: {}", e.message))
            };
            let (a, b) = (at("from", from)?, at("to", to)?);
            if b <= a {
                return Err("to: the chart's end is not after its start".into());
            }
            let span = std::time::Duration::try_from(b.duration_since(a))
                .map_err(|e| format!("from: {e}"))?;
            Ok((a.to_string(), Some(b.to_string()), span))
        }
        _ => Err("from: a chart's absolute range needs both from and to".into()),
    }
}

#[derive(Serialize)]
struct Failure {
    error: String,
}

fn error(status: StatusCode, error: String) -> Response {
    (status, Json(Failure { error })).into_response()
}

/// What a chart is of.
enum Subject {
    /// A pod: a series per container.
    Pod(String),
    /// A workload (`deployment/web`): a series per pod.
    Workload(String),
}

/// `GET /ui/pods/{namespace}/{name}/chart.json?range=6h&width=800`.
pub async fn data(
    State(app): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    Query(q): Query<ChartQuery>,
) -> Response {
    chart(&app, &namespace, Subject::Pod(name), &q).await
}

/// `GET /ui/workloads/{namespace}/{kind}/{name}/chart.json`: the same for a workload.
pub async fn workload_data(
    State(app): State<AppState>,
    Path((namespace, kind, name)): Path<(String, String, String)>,
    Query(q): Query<ChartQuery>,
) -> Response {
    let workload = format!("{}/{name}", kind.to_ascii_lowercase());
    chart(&app, &namespace, Subject::Workload(workload), &q).await
}

async fn chart(app: &AppState, namespace: &str, subject: Subject, q: &ChartQuery) -> Response {
    let namespace = namespace.to_string();
    let width = q.width.unwrap_or(800).clamp(100, 4000);
    let (from, to, span) = match bounds(q) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    // Two points per pixel at most; a restart is counted in the step it falls in.
    let step = (span.as_secs_f64() / f64::from(2 * width)).max(1.0).ceil();
    let step = format!("{step}s");
    let (by, pod, workload) = match &subject {
        Subject::Pod(p) => ("container", Some(p.clone()), None),
        Subject::Workload(w) => ("pod", None, Some(w.clone())),
    };
    let answer = metrics_query::run(
        app,
        QueryArgs {
            name: "kubernetes.pod.restart.count".into(),
            from: Some(from.clone()),
            to: to.clone(),
            step: Some(step.clone()),
            window: Some(step),
            by: Some(by.into()),
            namespace: Some(namespace.clone()),
            pod,
            workload: workload.clone(),
        },
    )
    .await;
    let answer = match answer {
        Ok(a) => a,
        Err(e) => return error(e.status, e.message),
    };
    // The pods it is about: the pod, or the workload's that restarted in the range.
    let pods: Vec<String> = match &subject {
        Subject::Pod(p) => vec![p.clone()],
        Subject::Workload(_) => answer
            .series
            .iter()
            .filter_map(|s| s.labels.get("pod").cloned())
            .take(MAX_PODS)
            .collect(),
    };
    // A change is what the diagnosis calls one (a deploy, a rollout, a rollback).
    let kind_of = |e: &crashscope_store::StoredEvent| {
        if e.event.is_change_in(&namespace) {
            "change"
        } else {
            kind(&e.event.source, &e.event.reason)
        }
    };
    let mark = |e: &crashscope_store::StoredEvent| Marker {
        t: e.event.last_seen.as_second(),
        kind: kind_of(e),
        label: format!("{}: {}", e.event.reason, e.event.message),
    };
    let over = |pod: Option<String>, workload: Option<String>| ListParams {
        from: Some(from.clone()),
        to: to.clone(),
        namespace: Some(namespace.clone()),
        pod,
        workload,
        ..ListParams::default()
    };
    // Its pods' own events (and the workload's), then the changes posted for its namespace.
    let mut markers: Vec<Marker> = Vec::new();
    for p in &pods {
        markers.extend(
            every_event(app, over(Some(p.clone()), None))
                .await
                .iter()
                .map(mark),
        );
    }
    // The workload's own events (a rollout's ScalingReplicaSet); its changes come next.
    if let Some(w) = &workload {
        let own = every_event(app, over(None, Some(w.clone()))).await;
        markers.extend(
            own.iter()
                .filter(|e| {
                    e.event.scope.pod.is_none()
                        && kind(&e.event.source, &e.event.reason) != "change"
                })
                .map(mark),
        );
    }
    let namespace_wide =
        |e: &&crashscope_store::StoredEvent| e.event.scope.pod.is_none() && kind_of(e) == "change";
    markers.extend(
        every_event(app, over(None, None))
            .await
            .iter()
            .filter(namespace_wide)
            .map(mark),
    );
    let bands = bands(
        app,
        &namespace,
        &pods,
        answer.from.as_second(),
        answer.to.as_second(),
    )
    .await;
    let json = Chart {
        bands,
        from: answer.from.as_second(),
        to: answer.to.as_second(),
        step: answer.step_seconds,
        series: answer
            .series
            .into_iter()
            .map(|s| Line {
                label: s.labels.get(by).cloned().unwrap_or_default(),
                points: s.points,
            })
            .collect(),
        markers,
    };
    Json(json).into_response()
}
