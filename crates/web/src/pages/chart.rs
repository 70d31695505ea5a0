//! The data of a pod's restart chart (`/ui/pods/{namespace}/{name}/chart.json`): restarts
//! per container over the range, at most two points per pixel of the chart's width, from the
//! same range query as `GET /api/v1/metrics/query`; and the events to mark below it — the
//! pod's own and the changes (custom events) in its namespace.

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
}

/// How an event is marked: by the Kubernetes reason's meaning for a crash loop, and every
/// custom event as a change.
fn kind(source: &str, reason: &str) -> &'static str {
    if source != SOURCE_KUBERNETES && source != "local" {
        return "change";
    }
    match reason {
        "BackOff" => "backoff",
        "OOMKilling" | "OOMKilled" => "oom",
        "Killing" | "Unhealthy" | "Evicted" | "Preempting" => "kill",
        _ => "other",
    }
}

#[derive(Serialize)]
struct Failure {
    error: String,
}

fn error(status: StatusCode, error: String) -> Response {
    (status, Json(Failure { error })).into_response()
}

/// `GET /ui/pods/{namespace}/{name}/chart.json?range=6h&width=800`.
pub async fn data(
    State(app): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    Query(q): Query<ChartQuery>,
) -> Response {
    let range = q.range.unwrap_or_else(|| "1h".into());
    if !RANGES.iter().any(|(r, _)| *r == range) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("range: {range:?} is not one of 1h, 6h, 24h, 7d"),
        );
    }
    let width = q.width.unwrap_or(800).clamp(100, 4000);
    let Some(span) = crashscope_model::duration::parse_go(&range) else {
        return error(StatusCode::BAD_REQUEST, format!("range: {range:?}"));
    };
    // Two points per pixel at most; a restart is counted in the step it falls in.
    let step = (span.as_secs_f64() / f64::from(2 * width)).max(1.0).ceil();
    let step = format!("{step}s");
    let answer = metrics_query::run(
        &app,
        QueryArgs {
            name: "kubernetes.pod.restart.count".into(),
            from: Some(range.clone()),
            step: Some(step.clone()),
            window: Some(step),
            by: Some("container".into()),
            namespace: Some(namespace.clone()),
            pod: Some(name.clone()),
            ..QueryArgs::default()
        },
    )
    .await;
    let answer = match answer {
        Ok(a) => a,
        Err(e) => return error(e.status, e.message),
    };
    let mut markers = Vec::new();
    let pod_events = events::query(
        &app,
        ListParams {
            from: Some(range.clone()),
            namespace: Some(namespace.clone()),
            pod: Some(name.clone()),
            limit: Some(1000),
            ..ListParams::default()
        },
    )
    .await;
    let changes = events::query(
        &app,
        ListParams {
            from: Some(range.clone()),
            namespace: Some(namespace.clone()),
            limit: Some(1000),
            ..ListParams::default()
        },
    )
    .await;
    let mark = |e: &crashscope_store::StoredEvent| Marker {
        t: e.event.last_seen.as_second(),
        kind: kind(&e.event.source, &e.event.reason),
        label: format!("{}: {}", e.event.reason, e.event.message),
    };
    // The pod's own events, then the changes posted for its namespace or workload.
    if let Ok(page) = pod_events {
        markers.extend(page.items.iter().map(mark));
    }
    if let Ok(page) = changes {
        let namespace_wide = |e: &&crashscope_store::StoredEvent| {
            e.event.scope.pod.is_none() && kind(&e.event.source, &e.event.reason) == "change"
        };
        markers.extend(page.items.iter().filter(namespace_wide).map(mark));
    }
    let json = Chart {
        from: answer.from.as_second(),
        to: answer.to.as_second(),
        step: answer.step_seconds,
        series: answer
            .series
            .into_iter()
            .map(|s| Line {
                label: s.labels.get("container").cloned().unwrap_or_default(),
                points: s.points,
            })
            .collect(),
        markers,
    };
    Json(json).into_response()
}
