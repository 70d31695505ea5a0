//! One event (`/ui/events/{id}`): every field, the raw JSON the API gives for it, and the
//! same object's events ten minutes either side — what happened around it.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use crashscope_server::AppState;
use crashscope_store::{EventQuery, Store as _};
use jiff::SignedDuration;

use super::events::{Filters, Row};
use super::{render, short, Chrome};
use crate::session::Viewer;

/// How far either side of the event its object's events are shown.
pub const AROUND: SignedDuration = SignedDuration::from_mins(10);

#[derive(Template)]
#[template(path = "event.html")]
struct EventPage {
    chrome: Chrome,
    id: i64,
    found: bool,
    fields: Vec<(&'static str, String)>,
    raw: String,
    object: String,
    rows: Vec<Row>,
    /// The pod's restart chart around the event's time, when the event is a pod's.
    chart_link: Option<String>,
    /// Where the same object's incidents, alerts and captures are: (label, link).
    related: Vec<(&'static str, String)>,
}

/// `GET /ui/events/{id}`.
pub async fn page(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<i64>,
) -> Response {
    let chrome = Chrome::for_viewer("events", &viewer);
    let stored = match app.store.event(id).await {
        Ok(Some(e)) => e,
        Ok(None) | Err(_) => {
            let page = EventPage {
                chrome,
                id,
                found: false,
                fields: Vec::new(),
                raw: String::new(),
                object: String::new(),
                rows: Vec::new(),
                chart_link: None,
                related: Vec::new(),
            };
            return render(StatusCode::NOT_FOUND, &page);
        }
    };
    let ev = &stored.event;
    let scope = &ev.scope;
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut fields = vec![
        ("id", stored.id.to_string()),
        ("source", ev.source.clone()),
        ("reporter", opt(&ev.reporter)),
        ("type", ev.event_type.as_str().to_string()),
        ("severity", ev.severity.as_str().to_string()),
        ("reason", ev.reason.clone()),
        ("message", ev.message.clone()),
        ("count", ev.count.to_string()),
        ("first seen (UTC)", short(ev.first_seen)),
        ("last seen (UTC)", short(ev.last_seen)),
        ("cluster", opt(&scope.cluster)),
        ("node", opt(&scope.node)),
        ("namespace", opt(&scope.namespace)),
        (
            "workload",
            scope
                .workload
                .as_ref()
                .map(|w| format!("{}/{}", w.kind, w.name))
                .unwrap_or_default(),
        ),
        ("pod", opt(&scope.pod)),
        ("container", opt(&scope.container)),
        (
            "involved object",
            ev.involved
                .as_ref()
                .map(|o| format!("{} {}", o.kind, o.name))
                .unwrap_or_default(),
        ),
        ("source id", opt(&ev.source_id)),
    ];
    fields.extend(ev.tags.iter().map(|(k, v)| ("tag", format!("{k}: {v}"))));
    fields.retain(|(_, v)| !v.is_empty());
    let raw = serde_json::to_string_pretty(&stored).unwrap_or_default();
    // The same object: the pod when there is one, else the workload, else the namespace.
    let mut q = EventQuery {
        since: ev.last_seen.checked_sub(AROUND).ok(),
        until: ev.last_seen.checked_add(AROUND).ok(),
        namespace: scope.namespace.clone(),
        limit: Some(200),
        ..EventQuery::default()
    };
    let mut filters = Filters {
        namespace: opt(&scope.namespace),
        ..Filters::default()
    };
    let object = if let Some(pod) = &scope.pod {
        q.pod = Some(pod.clone());
        filters.pod = pod.clone();
        format!("pod {}", pod)
    } else if let Some(w) = &scope.workload {
        q.workload_kind = Some(w.kind.clone());
        q.workload_name = Some(w.name.clone());
        filters.workload = format!("{}/{}", w.kind.to_lowercase(), w.name);
        format!("{} {}", w.kind.to_lowercase(), w.name)
    } else {
        format!("namespace {}", opt(&scope.namespace))
    };
    let rows = match app.store.events(&q).await {
        Ok(items) => items
            .iter()
            .filter(|e| e.id != stored.id)
            .map(|e| Row::new(e, &filters))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the events around an event");
            Vec::new()
        }
    };
    // The pod: the event's scope, else the object it is about when that is a pod.
    let pod = scope.pod.clone().or_else(|| {
        ev.involved
            .as_ref()
            .filter(|o| o.kind == "Pod")
            .map(|o| o.name.clone())
    });
    let pod_ns = ev
        .involved
        .as_ref()
        .and_then(|o| o.namespace.clone())
        .or_else(|| scope.namespace.clone());
    let chart_link = match (&pod_ns, &pod) {
        (Some(ns), Some(pod)) => Some(format!(
            "{}?{}#restarts-title",
            super::pods::link(ns, pod),
            super::query_string(&[("at", &ev.last_seen.to_string())])
        )),
        _ => None,
    };
    let bar = super::scope::Scope {
        cluster: opt(&scope.cluster),
        namespace: pod_ns.unwrap_or_default(),
        workload: filters.workload.clone(),
        pod: pod.unwrap_or_default(),
        container: String::new(),
    }
    .bar("/ui/events", &[]);
    // The scope's query: the same object's incidents, alerts and captures.
    let related = if bar.query.is_empty() {
        Vec::new()
    } else {
        vec![
            ("its incidents", format!("/ui/incidents{}", bar.query)),
            ("the alerts", format!("/ui/alerts{}", bar.query)),
            ("its captures", format!("/ui/captures{}", bar.query)),
        ]
    };
    let page = EventPage {
        related,
        chrome: chrome.scoped(bar),
        chart_link,
        id,
        found: true,
        fields,
        raw,
        object,
        rows,
    };
    render(StatusCode::OK, &page)
}
