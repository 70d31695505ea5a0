//! The capture inspector in the browser: the stored captures (`/ui/captures`), each one's
//! inspector views (`/ui/captures/{id}?view=…`, the tables `crashscope inspect FILE VIEW`
//! prints, computed on the server in one pass through a sysdig filter), and its events in
//! pages of 500 as `sysdig -r` prints them (`/ui/captures/{id}/events`), never the whole
//! capture at once.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use crashscope_inspect::views::VIEWS;
use crashscope_server::api::capture_views::{self, EventParams, ViewParams};
use crashscope_server::AppState;
use serde::Deserialize;

use super::scope::{Scope, Scoped};
use super::{query_string, render, say, short, Chrome};
use crate::session::Viewer;

/// Events per page of a capture's event list.
pub const EVENTS_PAGE: usize = 500;

/// One capture in the list.
pub struct CaptureRow {
    pub id: i64,
    pub link: String,
    pub pod: String,
    pub pod_link: Option<String>,
    pub container: String,
    pub restart: String,
    pub reason: String,
    pub window: String,
    pub events: i64,
    pub drops: i64,
    pub megabytes: String,
}

#[derive(Template)]
#[template(path = "captures.html")]
struct CapturesPage {
    chrome: Chrome,
    namespace: String,
    pod: String,
    rows: Vec<CaptureRow>,
    error: Option<String>,
}

/// The workload (kind, name) of each pod the server knows, deleted ones included: a capture
/// outlives its pod.
pub(crate) async fn workloads(
    app: &AppState,
) -> std::collections::HashMap<(String, String), (String, String)> {
    match app.store.latest_pods().await {
        Ok(pods) => pods
            .into_iter()
            .filter_map(|(_, p)| {
                let w = p.owners.workload()?;
                Some(((p.namespace, p.name), (w.kind, w.name)))
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the pods' workloads");
            Default::default()
        }
    }
}

/// `GET /ui/captures`: newest first, in the page's scope.
pub async fn list(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<Scope>,
) -> Response {
    let owners = if q.workload.trim().is_empty() {
        Default::default()
    } else {
        workloads(&app).await
    };
    let (status, rows, error) = match app.store.captures().await {
        Ok(mut all) => {
            all.sort_by_key(|c| std::cmp::Reverse(c.created_at));
            let rows = all
                .into_iter()
                .filter(|c| {
                    let pod = c.pod.as_deref();
                    q.admits(&Scoped {
                        cluster: c.cluster.as_deref(),
                        namespace: c.namespace.as_deref().unwrap_or(""),
                        workload: pod.and_then(|p| {
                            owners
                                .get(&(c.namespace.clone().unwrap_or_default(), p.to_string()))
                                .map(|(k, n)| (k.as_str(), n.as_str()))
                        }),
                        pod,
                        container: c.container.as_deref(),
                    })
                })
                .map(|c| {
                    let pod = match (&c.namespace, &c.pod) {
                        (Some(ns), Some(p)) => format!("{ns}/{p}"),
                        (None, Some(p)) => p.clone(),
                        _ => String::new(),
                    };
                    let pod_link = match (&c.namespace, &c.pod) {
                        (Some(ns), Some(p)) => Some(format!("/ui/pods/{ns}/{p}")),
                        _ => None,
                    };
                    CaptureRow {
                        id: c.id,
                        link: format!("/ui/captures/{}", c.id),
                        pod,
                        pod_link,
                        container: c.container.unwrap_or_default(),
                        restart: c.restart.map(|r| r.to_string()).unwrap_or_default(),
                        reason: c.reason,
                        window: format!("{} – {}", short(c.window_from), short(c.window_to)),
                        events: c.events,
                        drops: c.drops,
                        megabytes: format!("{:.1}", c.bytes as f64 / 1e6),
                    }
                })
                .collect();
            (StatusCode::OK, rows, None)
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Vec::new(),
            Some(format!("cannot read the captures: {e}")),
        ),
    };
    render(
        status,
        &CapturesPage {
            chrome: Chrome::for_viewer("captures", &viewer).scoped(q.bar("/ui/captures", &[])),
            namespace: q.namespace,
            pod: q.pod,
            rows,
            error,
        },
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct ViewQuery {
    #[serde(default)]
    view: String,
    #[serde(default)]
    filter: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

impl ViewQuery {
    /// The view asked for; the summary when none is.
    fn view(&self) -> String {
        if self.view.is_empty() {
            "summary".to_string()
        } else {
            self.view.clone()
        }
    }

    /// The view's scope as the API takes it (empty fields are none).
    fn params(&self) -> ViewParams {
        let some = |s: &str| Some(s.to_string()).filter(|f| !f.trim().is_empty());
        ViewParams {
            filter: some(&self.filter),
            from: some(&self.from),
            to: some(&self.to),
            ..ViewParams::default()
        }
    }
}

/// A view's tab.
pub struct Tab {
    pub name: &'static str,
    pub about: &'static str,
    pub link: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "capture.html")]
struct CapturePage {
    chrome: Chrome,
    id: i64,
    tabs: Vec<Tab>,
    view: String,
    filter: String,
    from: String,
    to: String,
    columns: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
    read: String,
    damaged: Option<String>,
    events_link: String,
    /// The view's rows (all of them) as CSV and as JSON, with the same filter and window.
    export_csv: String,
    export_json: String,
    error: Option<String>,
}

/// `GET /ui/captures/{id}`: one inspector view of the capture.
pub async fn page(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<i64>,
    Query(q): Query<ViewQuery>,
) -> Response {
    let view = q.view();
    let scope = [
        ("filter", q.filter.as_str()),
        ("from", &q.from),
        ("to", &q.to),
    ];
    let tabs = VIEWS
        .iter()
        .map(|(name, about)| {
            let mut pairs = vec![("view", *name)];
            pairs.extend(scope);
            Tab {
                name,
                about,
                link: format!("/ui/captures/{id}?{}", query_string(&pairs)),
                current: *name == view,
            }
        })
        .collect();
    let params = q.params();
    let mut page = CapturePage {
        chrome: Chrome::for_viewer("captures", &viewer),
        id,
        tabs,
        view: view.clone(),
        filter: q.filter.clone(),
        from: q.from.clone(),
        to: q.to.clone(),
        columns: Vec::new(),
        rows: Vec::new(),
        notes: Vec::new(),
        read: String::new(),
        damaged: None,
        events_link: format!("/ui/captures/{id}/events?{}", query_string(&scope)),
        export_csv: export_link(id, &view, &scope, "csv"),
        export_json: export_link(id, &view, &scope, "json"),
        error: None,
    };
    let status = match capture_views::view_table(&app, id, view, params).await {
        Ok((table, outcome)) => {
            page.columns = table.columns.clone();
            page.rows = table
                .rows
                .iter()
                .map(|r| r.iter().map(|c| c.text()).collect())
                .collect();
            page.notes = table.notes.clone();
            page.read = format!("{} of {} events matched", outcome.matched, outcome.events);
            page.damaged = outcome.error.as_ref().map(|e| {
                format!(
                    "The capture is damaged ({e}; {} damaged blocks): what could be read around the damage is shown.",
                    outcome.damaged_blocks
                )
            });
            StatusCode::OK
        }
        Err(e) => {
            page.error = Some(say(&e));
            e.status
        }
    };
    render(status, &page)
}

fn export_link(id: i64, view: &str, scope: &[(&str, &str)], format: &str) -> String {
    let mut pairs = vec![("view", view), ("format", format)];
    pairs.extend_from_slice(scope);
    format!("/ui/captures/{id}/export?{}", query_string(&pairs))
}

#[derive(Debug, Default, Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    format: String,
    #[serde(flatten)]
    scope: ViewQuery,
}

/// `GET /ui/captures/{id}/export?view=&format=csv|json`: every row of a view (not the top the
/// page shows), as a file to download — CSV (RFC 4180, a header of the view's columns) or the
/// JSON `crashscope inspect FILE VIEW -o json --all` prints.
pub async fn export(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<ExportQuery>,
) -> Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    let view = q.scope.view();
    let plain = |status: StatusCode, text: String| {
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text,
        )
            .into_response()
    };
    if !matches!(q.format.as_str(), "csv" | "json") {
        return plain(
            StatusCode::BAD_REQUEST,
            format!("format: {:?} is not csv or json", q.format),
        );
    }
    let params = ViewParams {
        all: Some(true),
        ..q.scope.params()
    };
    let (table, outcome) = match capture_views::view_table(&app, id, view.clone(), params).await {
        Ok(t) => t,
        Err(e) => return plain(e.status, say(&e)),
    };
    // The view is one of VIEWS (view_table refused any other): safe in a file name.
    let file = format!("capture-{id}-{view}.{}", q.format);
    let disposition = format!("attachment; filename=\"{file}\"");
    let (kind, body) = if q.format == "csv" {
        let mut out = String::new();
        csv_line(&mut out, table.columns.iter().copied());
        for r in &table.rows {
            let cells: Vec<String> = r.iter().map(|c| c.text()).collect();
            csv_line(&mut out, cells.iter().map(String::as_str));
        }
        ("text/csv; charset=utf-8", out)
    } else {
        let mut j = table.json();
        outcome.annotate(&mut j);
        ("application/json", j.to_string())
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// One CSV record (RFC 4180): fields with a comma, quote or line break quoted, quotes doubled.
fn csv_line<'a>(out: &mut String, fields: impl Iterator<Item = &'a str>) {
    for (i, f) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if f.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&f.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(f);
        }
    }
    out.push_str("\r\n");
}

#[derive(Debug, Default, Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    after: Option<u64>,
    #[serde(default)]
    filter: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// One event line.
pub struct EventRow {
    pub num: u64,
    pub time: String,
    pub cpu: u16,
    pub process: String,
    pub dir: &'static str,
    pub kind: String,
    pub info: String,
}

#[derive(Template)]
#[template(path = "capture_events.html")]
struct EventsPage {
    chrome: Chrome,
    id: i64,
    filter: String,
    from: String,
    to: String,
    rows: Vec<EventRow>,
    total: u64,
    next: Option<String>,
    error: Option<String>,
}

/// `GET /ui/captures/{id}/events`: a page of the capture's events.
pub async fn events(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<i64>,
    Query(q): Query<EventsQuery>,
) -> Response {
    let params = EventParams {
        after: q.after,
        limit: Some(EVENTS_PAGE),
        filter: Some(q.filter.clone()).filter(|f| !f.trim().is_empty()),
        from: Some(q.from.clone()).filter(|f| !f.trim().is_empty()),
        to: Some(q.to.clone()).filter(|f| !f.trim().is_empty()),
        metadata: None,
    };
    let mut page = EventsPage {
        chrome: Chrome::for_viewer("captures", &viewer),
        id,
        filter: q.filter.clone(),
        from: q.from.clone(),
        to: q.to.clone(),
        rows: Vec::new(),
        total: 0,
        next: None,
        error: None,
    };
    let status = match capture_views::events_page(&app, id, params).await {
        Ok(p) => {
            page.total = p.events;
            page.rows = p
                .items
                .iter()
                .map(|l| EventRow {
                    num: l.num,
                    time: jiff::Timestamp::from_nanosecond(i128::from(l.ts))
                        .map(|t| t.strftime("%H:%M:%S%.9f").to_string())
                        .unwrap_or_default(),
                    cpu: l.cpu,
                    process: format!("{} ({})", l.proc_name, l.tid),
                    dir: l.dir,
                    kind: l.type_.clone(),
                    info: l.info.clone(),
                })
                .collect();
            page.next = p.next_after.map(|after| {
                let after = after.to_string();
                format!(
                    "/ui/captures/{id}/events?{}",
                    query_string(&[
                        ("after", after.as_str()),
                        ("filter", &q.filter),
                        ("from", &q.from),
                        ("to", &q.to)
                    ])
                )
            });
            StatusCode::OK
        }
        Err(e) => {
            page.error = Some(say(&e));
            e.status
        }
    };
    render(status, &page)
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_quotes_what_needs_it() {
        let mut out = String::new();
        super::csv_line(
            &mut out,
            ["a", "b,c", "say \"hi\"", "two\nlines", ""].into_iter(),
        );
        assert_eq!(out, "a,\"b,c\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n");
    }
}
