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
use crashscope_server::api::captures as capture_api;
use crashscope_server::AppState;
use serde::Deserialize;

use super::scope::{Scope, Scoped};
use super::{query_string, render, say, short, Chrome};
use crate::session::Viewer;

/// Bytes of an upload form's text field (the token, a namespace, a pod, a container).
const FIELD_BYTES: usize = 4096;

/// Rows of a view a page shows at most (a browser lays out a few hundred quickly).
pub const VIEW_ROWS: usize = 500;

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
    /// The time range's preset (captures whose window meets it).
    preset: String,
    presets: &'static [(&'static str, &'static str)],
    /// The session's CSRF token when it may upload a capture.
    upload_csrf: Option<String>,
    upload_error: Option<String>,
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
    Query(range): Query<super::range::TimeRange>,
) -> Response {
    list_page(&app, &viewer, q, range, None).await
}

/// The list, with why an upload failed when one did.
async fn list_page(
    app: &AppState,
    viewer: &Viewer,
    q: Scope,
    range: super::range::TimeRange,
    upload_error: Option<(StatusCode, String)>,
) -> Response {
    let now = jiff::Timestamp::now();
    let bound = |v: Option<String>, field: &str| {
        v.and_then(|v| crashscope_server::api::params::time(field, &v, now).ok())
    };
    let (from, to) = (bound(range.api_from(), "from"), bound(range.api_to(), "to"));
    let owners = if q.workload.trim().is_empty() {
        Default::default()
    } else {
        workloads(app).await
    };
    let (status, rows, error) = match app.store.captures().await {
        Ok(mut all) => {
            all.sort_by_key(|c| std::cmp::Reverse(c.created_at));
            let rows = all
                .into_iter()
                // Captures whose window meets the range.
                .filter(|c| from.is_none_or(|f| c.window_to >= f))
                .filter(|c| to.is_none_or(|t| c.window_from <= t))
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
                        (Some(ns), Some(p)) => Some(super::pods::link(ns, p)),
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
    let (status, upload_error) = match upload_error {
        Some((code, text)) => (code, Some(text)),
        None => (status, None),
    };
    render(
        status,
        &CapturesPage {
            chrome: Chrome::for_viewer("captures", viewer)
                .scoped(q.bar("/ui/captures", &range.pairs())),
            preset: range.preset().to_string(),
            presets: &super::range::PRESETS,
            namespace: q.namespace,
            pod: q.pod,
            rows,
            error,
            upload_csrf: viewer.csrf.clone().filter(|_| viewer.can_write()),
            upload_error,
        },
    )
}

/// `POST /ui/captures/upload`: a `.scap` file from the browser (a form's `multipart/form-data`
/// with `csrf` first, then who it is of, then `file`), stored as the API stores an agent's,
/// then opened. A file crashscope cannot read is refused with what is wrong with it.
pub async fn upload(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    mut form: axum::extract::Multipart,
) -> Response {
    use axum::response::IntoResponse as _;
    let mut csrf_checked = false;
    let mut who = capture_api::Manual::default();
    let failed = |code: StatusCode, text: String| Some((code, text));
    let outcome = loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break failed(StatusCode::BAD_REQUEST, "file: no file was sent".into()),
            Err(e) => break failed(StatusCode::BAD_REQUEST, format!("the form: {e}")),
        };
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            // The file streams to disk: the token must have been read before it.
            if !csrf_checked {
                return (
                    StatusCode::FORBIDDEN,
                    "the form's token must come before its file",
                )
                    .into_response();
            }
            match capture_api::store_manual(&app, field, who.clone()).await {
                Ok(rec) => {
                    return axum::response::Redirect::to(&format!("/ui/captures/{}", rec.id))
                        .into_response()
                }
                Err(e) => break failed(e.status, say(&e)),
            }
        }
        // A form's words are short: read at most FIELD_BYTES of one, never a whole body.
        let mut field = field;
        let mut bytes = Vec::new();
        let too_long = loop {
            match field.chunk().await {
                Ok(Some(c)) if bytes.len() + c.len() > FIELD_BYTES => break true,
                Ok(Some(c)) => bytes.extend_from_slice(&c),
                Ok(None) => break false,
                Err(e) => return (StatusCode::BAD_REQUEST, format!("{name}: {e}")).into_response(),
            }
        };
        if too_long {
            break failed(
                StatusCode::BAD_REQUEST,
                format!("{name}: longer than {FIELD_BYTES} bytes"),
            );
        }
        let value = String::from_utf8_lossy(&bytes).trim().to_string();
        let some = || Some(value.clone()).filter(|v| !v.is_empty());
        match name.as_str() {
            "csrf" => {
                if let Some(refused) = crate::session::refuse_write(&viewer, &value) {
                    return refused;
                }
                csrf_checked = true;
            }
            "namespace" => who.namespace = some(),
            "pod" => who.pod = some(),
            "container" => who.container = some(),
            _ => {}
        }
    };
    list_page(
        &app,
        &viewer,
        Scope::default(),
        super::range::TimeRange::default(),
        outcome,
    )
    .await
}

/// A capture page's scope as its form and links carry it: a sysdig filter and a window
/// (offsets from the first event, or RFC 3339 times).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct CaptureScope {
    #[serde(default)]
    pub filter: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
}

impl CaptureScope {
    /// The scope as the API takes it (empty fields are none).
    pub fn params(&self) -> ViewParams {
        let some = |s: &str| Some(s.to_string()).filter(|f| !f.trim().is_empty());
        ViewParams {
            filter: some(&self.filter),
            from: some(&self.from),
            to: some(&self.to),
            ..ViewParams::default()
        }
    }

    /// The fields for a link's query string.
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            ("filter", &self.filter),
            ("from", &self.from),
            ("to", &self.to),
        ]
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ViewQuery {
    #[serde(default)]
    view: String,
    #[serde(flatten)]
    scope: CaptureScope,
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
    /// Per row, where its drill-down goes (the summary's tiles), when it goes somewhere.
    drills: Vec<Option<String>>,
    notes: Vec<String>,
    read: String,
    damaged: Option<String>,
    events_link: String,
    /// The capture's I/O streams with the same filter and window.
    streams_link: String,
    /// The window's activity over time, brushable; and the page without a window.
    strip: Option<super::strip::Strip>,
    reset: Option<String>,
    /// The view's rows (all of them) as CSV and as JSON, with the same filter and window.
    export_csv: String,
    export_json: String,
    error: Option<String>,
}

impl CapturePage {
    /// Where row `row`'s drill-down goes, if anywhere.
    fn drill_of(&self, row: &usize) -> Option<&String> {
        self.drills.get(*row)?.as_ref()
    }
}

/// `GET /ui/captures/{id}`: one inspector view of the capture.
pub async fn page(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<i64>,
    Query(q): Query<ViewQuery>,
) -> Response {
    let view = q.view();
    let scope = q.scope.pairs();
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
    let params = q.scope.params();
    let q = &q.scope;
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
        drills: Vec::new(),
        notes: Vec::new(),
        read: String::new(),
        damaged: None,
        events_link: format!("/ui/captures/{id}/events?{}", query_string(&scope)),
        streams_link: format!("/ui/captures/{id}/io?{}", query_string(&scope)),
        strip: None,
        reset: (!q.from.is_empty() || !q.to.is_empty()).then(|| {
            let q = query_string(&[("view", view.as_str()), ("filter", &q.filter)]);
            format!("/ui/captures/{id}?{q}")
        }),
        export_csv: export_link(id, &view, &scope, "csv"),
        export_json: export_link(id, &view, &scope, "json"),
        error: None,
    };
    // The activity strip over the window shown: the capture's span, narrowed by from/to.
    let window = match capture_views::span(&app, id).await {
        Ok(Some((first, last))) => window(first, last, &q.from, &q.to),
        _ => None,
    };
    let mut wanted = vec![(view.clone(), None)];
    if let Some(w) = &window {
        wanted.push(("timeline".to_string(), Some(w.width)));
    }
    let status = match capture_views::view_tables(&app, id, wanted, params).await {
        Ok((mut tables, outcome)) => {
            if let (Some(w), Some(timeline)) = (&window, tables.get(1)) {
                page.strip = activity(w, timeline, |from, to| {
                    let (from, to) = (from.to_string(), to.to_string());
                    let pairs = [
                        ("view", view.as_str()),
                        ("filter", &q.filter),
                        ("from", &from),
                        ("to", &to),
                    ];
                    format!("/ui/captures/{id}?{}", query_string(&pairs))
                });
            }
            tables.truncate(1);
            let table = tables.pop().unwrap_or_default();
            page.columns = table.columns.clone();
            page.rows = table
                .rows
                .iter()
                .map(|r| r.iter().map(|c| c.text()).collect())
                .collect();
            failures_first(table.view, &table.columns, &mut page.rows);
            if let Some(d) = table.columns.iter().position(|c| *c == "drill down") {
                page.drills = page
                    .rows
                    .iter()
                    .map(|r| r.get(d).and_then(|how| drill(id, how, q)))
                    .collect();
            }
            // A page shows the first rows; the export has them all.
            if page.rows.len() > VIEW_ROWS {
                page.notes.push(format!(
                    "Showing the first {VIEW_ROWS} of {} rows: narrow the filter or the time, or export every row.",
                    page.rows.len()
                ));
                page.rows.truncate(VIEW_ROWS);
            }
            page.notes.extend(table.notes.iter().cloned());
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

/// Where a summary tile's drill-down (`errors -f 'evt.type=connect'`, `--events`, `procs`)
/// goes in the browser: that view (or the event list) under the page's window, its filter
/// joined to the page's.
fn drill(id: i64, how: &str, scope: &CaptureScope) -> Option<String> {
    let (target, filter) = match how.split_once(" -f '") {
        Some((t, f)) => (t.trim(), f.strip_suffix('\'').unwrap_or(f)),
        None => (how.trim(), ""),
    };
    let filter = match (scope.filter.trim(), filter) {
        ("", f) => f.to_string(),
        (mine, "") => mine.to_string(),
        (mine, f) => format!("({mine}) and ({f})"),
    };
    let pairs = |view: Option<&str>| {
        let mut p = Vec::new();
        if let Some(v) = view {
            p.push(("view", v.to_string()));
        }
        p.push(("filter", filter.clone()));
        p.push(("from", scope.from.clone()));
        p.push(("to", scope.to.clone()));
        p
    };
    let q = |pairs: Vec<(&str, String)>| {
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        query_string(&refs)
    };
    if target == "--events" {
        return Some(format!("/ui/captures/{id}/events?{}", q(pairs(None))));
    }
    VIEWS
        .iter()
        .any(|(v, _)| *v == target)
        .then(|| format!("/ui/captures/{id}?{}", q(pairs(Some(target)))))
}

/// The DNS view with the lookups that failed (NXDOMAIN, SERVFAIL, refused, no answer) on
/// top, in time order each: the one that broke the program is what the page is opened for.
fn failures_first(view: &str, columns: &[&str], rows: &mut [Vec<String>]) {
    if view != "dns" {
        return;
    }
    let Some(result) = columns.iter().position(|c| *c == "result") else {
        return;
    };
    rows.sort_by_key(|r| r.get(result).is_some_and(|v| v == "No Error"));
}

/// Bars in a capture's activity strip (about; the bucket edges are round numbers).
const STRIP_BARS: u64 = 48;

/// The stretch of a capture a page shows, cut into buckets for its activity strip.
#[derive(Debug, PartialEq, Eq)]
pub struct Window {
    /// The first bucket's start (ns since the epoch: a multiple of `width`).
    pub start: u64,
    pub end: u64,
    /// Bucket width, nanoseconds.
    pub width: u64,
    pub buckets: usize,
}

/// The window of a capture whose events span `first..=last` that `from`/`to` (offsets from
/// the first event, or RFC 3339 times; empty: the capture's edge) select; None when empty.
pub fn window(first: u64, last: u64, from: &str, to: &str) -> Option<Window> {
    use crashscope_model::time_range::{capture_point, CapturePoint};
    let point = |s: &str, edge: u64| match capture_point(s.trim()) {
        _ if s.trim().is_empty() => Some(edge),
        Ok(CapturePoint::After(ns)) => Some(first.saturating_add(ns)),
        Ok(CapturePoint::At(ns)) => Some(ns),
        Err(_) => None,
    };
    let (a, b) = (point(from, first)?.max(first), point(to, last)?.min(last));
    if b < a {
        return None;
    }
    // Buckets aligned on their width, as the timeline view makes them.
    let width = ((b - a) / STRIP_BARS).max(1) + 1;
    let start = a / width * width;
    let buckets = usize::try_from((b - start) / width + 1).ok()?;
    Some(Window {
        start,
        end: b,
        width,
        buckets,
    })
}

/// The strip of `timeline` (the view's table, bucketed at `w.width`) over `w`; each bar
/// linked by `link(from, to)`.
fn activity(
    w: &Window,
    timeline: &crashscope_inspect::report::Table,
    link: impl Fn(jiff::Timestamp, jiff::Timestamp) -> String,
) -> Option<super::strip::Strip> {
    use crashscope_inspect::report::Cell;
    let mut counts = vec![(0usize, 0usize); w.buckets];
    let errors = timeline.columns.iter().position(|c| *c == "errors")?;
    for row in &timeline.rows {
        let (Some(Cell::Time(t)), Some(Cell::Count(n))) = (row.first(), row.get(1)) else {
            continue;
        };
        let Some(i) = t.checked_sub(w.start).map(|d| (d / w.width) as usize) else {
            continue;
        };
        let failed = match row.get(errors) {
            Some(Cell::Count(e)) => *e as usize,
            _ => 0,
        };
        if let Some(slot) = counts.get_mut(i) {
            slot.0 += *n as usize;
            slot.1 += failed;
        }
    }
    let at = |i: usize| {
        let ns = w.start + w.width * i as u64;
        jiff::Timestamp::from_nanosecond(i128::from(ns)).unwrap_or_default()
    };
    let clock = |t: jiff::Timestamp| t.strftime("%H:%M:%S%.3f").to_string();
    let mut bars = super::strip::bars(&counts, at, |i, n, e| {
        format!(
            "{}–{}: {n} events, {e} failed",
            clock(at(i)),
            clock(at(i + 1))
        )
    });
    for b in &mut bars {
        b.link = link(b.from, b.to);
    }
    let total: usize = counts.iter().map(|c| c.0).sum();
    Some(super::strip::Strip {
        width: super::strip::WIDTH * bars.len() as f64,
        height: super::strip::HEIGHT,
        bars,
        summary: format!(
            "Activity over time: {total} events from {} to {}",
            clock(at(0)),
            clock(at(w.buckets))
        ),
        from: clock(at(0)),
        to: clock(at(w.buckets)),
        start_ms: at(0).as_millisecond(),
        end_ms: at(w.buckets).as_millisecond() + 1,
    })
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
        ..q.scope.scope.params()
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
    Query(after): Query<EventsQuery>,
    Query(q): Query<CaptureScope>,
) -> Response {
    let scoped = q.params();
    let params = EventParams {
        after: after.after,
        limit: Some(EVENTS_PAGE),
        filter: scoped.filter,
        from: scoped.from,
        to: scoped.to,
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
    use super::*;

    #[test]
    fn failed_lookups_come_first_in_time_order() {
        let row = |t: &str, r: &str| vec![t.to_string(), r.to_string()];
        let mut rows = vec![
            row("1", "No Error"),
            row("2", "Non-Existent Domain"),
            row("3", "No Error"),
            row("4", "no answer"),
        ];
        failures_first("dns", &["time", "result"], &mut rows);
        let order: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(order, ["2", "4", "1", "3"]);
        let mut other = vec![row("1", "No Error"), row("2", "x")];
        failures_first("net", &["time", "result"], &mut other);
        assert_eq!(other[0][0], "1");
    }

    #[test]
    fn a_tile_drills_into_its_view_with_its_filter_joined_to_the_pages() {
        let none = CaptureScope::default();
        assert_eq!(
            drill(3, "procs", &none).as_deref(),
            Some("/ui/captures/3?view=procs")
        );
        assert_eq!(
            drill(3, "errors -f 'evt.type=connect'", &none).as_deref(),
            Some("/ui/captures/3?view=errors&filter=evt.type%3Dconnect")
        );
        assert_eq!(
            drill(3, "--events", &none).as_deref(),
            Some("/ui/captures/3/events?")
        );
        let mine = CaptureScope {
            filter: "proc.name=nginx".into(),
            from: "2s".into(),
            to: String::new(),
        };
        assert_eq!(
            drill(3, "--events -f 'evt.type=kill'", &mine).as_deref(),
            Some("/ui/captures/3/events?filter=%28proc.name%3Dnginx%29+and+%28evt.type%3Dkill%29&from=2s")
        );
        assert_eq!(drill(3, "nothing-here", &none), None);
    }

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
