//! The events feed (`/ui/events`): Kubernetes, local-runtime and custom events, newest first,
//! filtered as the API's `GET /api/v1/events` is (the same query, the same parameter
//! checks), a page of at most [`PAGE`] rows with a link to older ones. Without JavaScript the
//! filter form reloads the page; with htmx it swaps the feed in place and keeps the URL.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use crashscope_model::Severity;
use crashscope_server::api::events::{self, ListParams, NewEvent, NewScope};
use crashscope_server::AppState;
use crashscope_store::StoredEvent;
use serde::Deserialize;

use super::range::{TimeRange, PRESETS};
use super::scope::Scope;
use super::{query_string, render, say, short, Chrome};
use crate::session::{refuse_write, Viewer};

/// Rows per page (a browser lays out a few hundred rows quickly; thousands it does not).
pub const PAGE: u32 = 200;

const SEVERITIES: [(&str, &str); 4] = [
    ("", "any"),
    ("info", "info"),
    ("warning", "warning"),
    ("error", "error"),
];

/// The feed's filters as the form sends them (empty fields are no filter).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    pub q: String,
    /// The time range: a preset (`1h`), or absolute bounds (see [`TimeRange`]).
    #[serde(default)]
    pub last: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub cluster: String,
    #[serde(default)]
    pub namespace: String,
    /// `deployment/web`.
    #[serde(default)]
    pub workload: String,
    #[serde(default)]
    pub node: String,
    #[serde(default)]
    pub pod: String,
    #[serde(default)]
    pub cursor: String,
    /// `on`: every stored event its own row (repeats are grouped otherwise).
    #[serde(default)]
    pub ungrouped: String,
}

fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

impl Filters {
    /// The filters by their query-string names (the cursor aside).
    fn fields(&self) -> [(&'static str, &str); 13] {
        [
            ("q", &self.q),
            ("last", &self.last),
            ("from", &self.from),
            ("to", &self.to),
            ("severity", &self.severity),
            ("source", &self.source),
            ("reason", &self.reason),
            ("cluster", &self.cluster),
            ("namespace", &self.namespace),
            ("workload", &self.workload),
            ("node", &self.node),
            ("pod", &self.pod),
            ("ungrouped", &self.ungrouped),
        ]
    }

    pub fn is_empty(&self) -> bool {
        self.fields().iter().all(|(_, v)| v.trim().is_empty())
    }

    pub fn range(&self) -> TimeRange {
        TimeRange {
            last: self.last.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
        }
    }

    /// The scope bar's levels among the filters.
    pub fn scope(&self) -> Scope {
        Scope {
            cluster: self.cluster.clone(),
            namespace: self.namespace.clone(),
            workload: self.workload.clone(),
            pod: self.pod.clone(),
            container: String::new(),
        }
    }

    /// The filters that are not the scope's, for the scope bar's links to keep.
    fn unscoped(&self) -> Vec<(&'static str, &str)> {
        let scope = ["cluster", "namespace", "workload", "pod"];
        self.fields()
            .into_iter()
            .filter(|(k, _)| !scope.contains(k))
            .collect()
    }

    /// The feed over `range` instead (from the first page).
    pub fn over(&self, range: &TimeRange) -> String {
        let mut f = self.clone();
        f.cursor.clear();
        f.last = range.last.clone();
        f.from = range.from.clone();
        f.to = range.to.clone();
        f.url(None)
    }

    pub(crate) fn params(&self) -> ListParams {
        ListParams {
            q: some(&self.q),
            from: self.range().api_from(),
            to: self.range().api_to(),
            severity: some(&self.severity),
            source: some(&self.source),
            reason: some(&self.reason),
            cluster: some(&self.cluster),
            namespace: some(&self.namespace),
            workload: some(&self.workload),
            node: some(&self.node),
            pod: some(&self.pod),
            cursor: some(&self.cursor),
            limit: Some(PAGE),
        }
    }

    /// This feed's URL with the filters set (and `cursor` for a page of older events).
    fn url(&self, cursor: Option<&str>) -> String {
        let mut pairs = self.fields().to_vec();
        pairs.extend(cursor.map(|c| ("cursor", c)));
        let q = query_string(&pairs);
        if q.is_empty() {
            "/ui/events".into()
        } else {
            format!("/ui/events?{q}")
        }
    }

    /// The feed with these filters.
    pub fn link(&self) -> String {
        self.url(None)
    }

    /// The feed with `field: value` left out (a `-field:value` added to the query).
    fn without(&self, field: &str, value: &str) -> String {
        let mut f = self.clone();
        f.cursor.clear();
        let term = format!("-{field}:{value}");
        if !f.q.split_whitespace().any(|w| w == term) {
            f.q = format!("{} {term}", f.q).trim().to_string();
        }
        f.url(None)
    }

    /// The feed narrowed to one more field.
    fn with(&self, field: &str, value: &str) -> String {
        self.with_all(&[(field, value)])
    }

    /// The feed narrowed to more fields (a pod with its namespace).
    fn with_all(&self, fields: &[(&str, &str)]) -> String {
        let mut f = self.clone();
        f.cursor.clear();
        for (field, value) in fields {
            let slot = match *field {
                "reason" => &mut f.reason,
                "cluster" => &mut f.cluster,
                "namespace" => &mut f.namespace,
                "workload" => &mut f.workload,
                "node" => &mut f.node,
                "pod" => &mut f.pod,
                "source" => &mut f.source,
                "severity" => &mut f.severity,
                _ => continue,
            };
            *slot = (*value).to_string();
        }
        f.url(None)
    }
}

/// The feed's counts by one field, each value linking to the feed narrowed to it.
pub struct FacetBox {
    pub title: &'static str,
    pub values: Vec<FacetValue>,
}

/// One value of a facet: how many events have it, the feed narrowed to it, and (for the
/// fields the query can leave out) the feed without it.
pub struct FacetValue {
    pub value: String,
    pub count: i64,
    pub link: String,
    pub exclude: Option<String>,
}

/// The feed's counts and its events-over-time strip, from one read of its newest events.
async fn sample_views(app: &AppState, f: &Filters) -> (Vec<FacetBox>, Option<super::strip::Strip>) {
    let now = jiff::Timestamp::now();
    let range = f.range();
    // The strip spans the range asked when it is absolute or a preset; else the events.
    let start = range
        .api_from()
        .and_then(|from| crashscope_server::api::params::time("from", &from, now).ok());
    let end = range
        .api_to()
        .and_then(|to| super::range::absolute(&to))
        .unwrap_or(now);
    match events::facets(app, f.params()).await {
        Ok(s) => (facet_boxes(s.counts, f), {
            let mut strip = super::strip::strip(&s.times, start, end);
            for bar in strip.iter_mut().flat_map(|s| s.bars.iter_mut()) {
                bar.link = f.over(&TimeRange::between(bar.from, bar.to));
            }
            strip
        }),
        Err(e) => {
            tracing::warn!(error = %e.message, "cannot count the feed's events");
            (Vec::new(), None)
        }
    }
}

fn facet_boxes(
    counted: Vec<(crashscope_store::Facet, Vec<(String, i64)>)>,
    f: &Filters,
) -> Vec<FacetBox> {
    counted
        .into_iter()
        // A field with one value (one the feed is narrowed to) says nothing more.
        .filter(|(_, values)| values.len() > 1)
        .map(|(facet, values)| {
            let field = facet.name();
            FacetBox {
                title: match field {
                    "severity" => "severity (at least)",
                    other => other,
                },
                values: values
                    .into_iter()
                    .map(|(v, n)| FacetValue {
                        link: f.with(field, &v),
                        // Values with spaces cannot be said in the query language.
                        exclude: (crashscope_store::Column::parse(field).is_some()
                            && !v.contains(char::is_whitespace))
                        .then(|| f.without(field, &v)),
                        value: v,
                        count: n,
                    })
                    .collect(),
            }
        })
        .collect()
}

/// One row as the table shows it.
pub struct Row {
    pub id: i64,
    pub last_seen: String,
    pub last_seen_short: String,
    pub first_seen: String,
    pub first_seen_short: String,
    pub severity: &'static str,
    pub source: String,
    pub event_type: &'static str,
    pub reason: String,
    pub reason_link: String,
    pub object: String,
    pub object_link: Option<String>,
    pub message: String,
    pub count: u32,
    /// Stored events this row stands for (repeats grouped on the feed).
    pub grouped: u32,
    /// The feed cursor just after this event (live updates count from the newest shown).
    pub cursor: String,
}

/// What makes two events repeats of one another: the same source, reason and object, and
/// the same message but for its numbers (`Back-off 20s` and `Back-off 40s`).
fn repeat_key(r: &Row) -> (String, String, String, String) {
    let mut message = String::with_capacity(r.message.len());
    for c in r.message.chars() {
        if !c.is_ascii_digit() {
            message.push(c);
        } else if !message.ends_with('#') {
            message.push('#');
        }
    }
    (
        r.source.clone(),
        r.reason.clone(),
        r.object.clone(),
        message,
    )
}

/// `rows` (newest first) with runs of repeats made one row: the newest's time and message,
/// the oldest's first seen, the counts summed.
pub fn group_repeats(rows: Vec<Row>) -> Vec<Row> {
    let mut out: Vec<Row> = Vec::with_capacity(rows.len());
    for r in rows {
        if let Some(last) = out.last_mut() {
            if repeat_key(last) == repeat_key(&r) {
                last.count += r.count;
                last.grouped += r.grouped;
                last.first_seen = r.first_seen;
                last.first_seen_short = r.first_seen_short;
                continue;
            }
        }
        out.push(r);
    }
    out
}

impl Row {
    pub fn new(e: &StoredEvent, f: &Filters) -> Row {
        let ev = &e.event;
        let scope = &ev.scope;
        let ns = |own: Option<&str>| own.or(scope.namespace.as_deref()).unwrap_or("").to_string();
        let (object, object_link) = if let Some(o) = &ev.involved {
            let ns = ns(o.namespace.as_deref());
            let link =
                (o.kind == "Pod").then(|| f.with_all(&[("namespace", &ns), ("pod", &o.name)]));
            (format!("{} {ns}/{}", o.kind.to_lowercase(), o.name), link)
        } else if let Some(pod) = &scope.pod {
            let ns = ns(None);
            let link = f.with_all(&[("namespace", &ns), ("pod", pod)]);
            (format!("pod {ns}/{pod}"), Some(link))
        } else if let Some(w) = &scope.workload {
            let ns = ns(None);
            let workload = format!("{}/{}", w.kind.to_lowercase(), w.name);
            let link = f.with_all(&[("namespace", &ns), ("workload", &workload)]);
            (
                format!("{} {ns}/{}", w.kind.to_lowercase(), w.name),
                Some(link),
            )
        } else {
            let text = scope
                .namespace
                .as_deref()
                .map_or(String::new(), |n| format!("namespace {n}"));
            (text, None)
        };
        Row {
            id: e.id,
            last_seen: ev.last_seen.to_string(),
            last_seen_short: short(ev.last_seen),
            first_seen: ev.first_seen.to_string(),
            first_seen_short: short(ev.first_seen),
            severity: ev.severity.as_str(),
            source: ev.source.clone(),
            event_type: ev.event_type.as_str(),
            reason: ev.reason.clone(),
            reason_link: f.with("reason", &ev.reason),
            object,
            object_link,
            message: ev.message.clone(),
            count: ev.count,
            grouped: 1,
            cursor: crashscope_store::Cursor::after(e).encode(),
        }
    }
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    chrome: Chrome,
    f: Filters,
    time_presets: &'static [(&'static str, &'static str)],
    /// The range's preset and its absolute fields, as the form shows them.
    preset: String,
    from_field: String,
    to_field: String,
    /// This feed with a relative range made absolute (a link that keeps meaning the same).
    frozen: Option<String>,
    severities: &'static [(&'static str, &'static str)],
    rows: Vec<Row>,
    older: Option<String>,
    error: Option<String>,
    /// The live-updates stream for this feed (first pages only).
    live: Option<String>,
    facets: Vec<FacetBox>,
    /// Events the facets count at most (the newest matching ones).
    strip: Option<super::strip::Strip>,
    sample: u32,
    /// The link that groups repeats or shows each event: (label, link).
    grouping: (&'static str, String),
    /// The form that adds a custom event, for a session that may write.
    form: Option<EventForm>,
    form_error: Option<String>,
}

/// The form that adds a custom event (a deploy, a config change, a note).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct EventForm {
    #[serde(default)]
    pub csrf: String,
    /// Drawn when the form is shown: a form sent twice stores one event.
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub workload: String,
    #[serde(default)]
    pub pod: String,
}

impl EventForm {
    /// An empty form for `viewer`, when the viewer may write and has a session.
    fn for_viewer(viewer: &Viewer) -> Option<EventForm> {
        let csrf = viewer.csrf.clone().filter(|_| viewer.can_write())?;
        Some(EventForm {
            csrf,
            key: crashscope_server::auth::random_token().unwrap_or_default(),
            source: "web".into(),
            ..EventForm::default()
        })
    }

    fn event(&self) -> Result<NewEvent, String> {
        let severity = match self.severity.trim() {
            "" => None,
            s => Some(
                s.parse::<Severity>()
                    .map_err(|_| format!("severity: {s:?} is not info, warning or error"))?,
            ),
        };
        Ok(NewEvent {
            name: self.name.trim().to_string(),
            description: self.description.trim().to_string(),
            severity,
            timestamp: None,
            source: some(&self.source),
            scope: NewScope {
                namespace: some(&self.namespace),
                workload: some(&self.workload),
                pod: some(&self.pod),
                ..NewScope::default()
            },
            tags: Default::default(),
        })
    }
}

/// `GET /ui/events`.
pub async fn page(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(f): Query<Filters>,
) -> Response {
    let form = EventForm::for_viewer(&viewer);
    feed(&app, &viewer, f, form, None).await
}

/// The feed page with the add-event form as given (refilled after an error).
async fn feed(
    app: &AppState,
    viewer: &Viewer,
    f: Filters,
    form: Option<EventForm>,
    form_error: Option<(StatusCode, String)>,
) -> Response {
    let (mut status, rows, older, error) = match events::query(app, f.params()).await {
        Ok(page) => {
            let rows: Vec<Row> = page.items.iter().map(|e| Row::new(e, &f)).collect();
            let rows = if f.ungrouped == "on" {
                rows
            } else {
                group_repeats(rows)
            };
            let older = page.next_cursor.as_deref().map(|c| f.url(Some(c)));
            (StatusCode::OK, rows, older, None)
        }
        Err(e) => {
            let what = say(&e);
            (e.status, Vec::new(), None, Some(what))
        }
    };
    let (facets, strip) = if error.is_none() {
        sample_views(app, &f).await
    } else {
        (Vec::new(), None)
    };
    // Live updates count from the newest event shown; on older pages there is nothing to add.
    let live = (f.cursor.is_empty() && error.is_none()).then(|| {
        // Rows are newest first (a group keeps its newest's cursor).
        let newest = rows.first().map_or("", |r: &Row| r.cursor.as_str());
        let feed = f.link();
        let query = feed.split_once('?').map_or("", |(_, q)| q);
        let sep = if query.is_empty() { "" } else { "&" };
        let after = query_string(&[("after", newest)]);
        format!("/ui/events/live?{query}{sep}{after}")
    });
    let form_error = form_error.map(|(code, text)| {
        status = code;
        text
    });
    let grouping = {
        let mut g = f.clone();
        g.cursor.clear();
        if f.ungrouped == "on" {
            g.ungrouped.clear();
            ("Group repeats", g.url(None))
        } else {
            g.ungrouped = "on".into();
            ("Show every event on its own row", g.url(None))
        }
    };
    let range = f.range();
    let chrome =
        Chrome::for_viewer("events", viewer).scoped(f.scope().bar("/ui/events", &f.unscoped()));
    render(
        status,
        &EventsPage {
            chrome,
            preset: range.preset().to_string(),
            from_field: range.from_field(),
            to_field: range.to_field(),
            frozen: range.frozen(jiff::Timestamp::now()).map(|r| f.over(&r)),
            f,
            time_presets: &PRESETS,
            grouping,
            severities: &SEVERITIES,
            rows,
            older,
            error,
            live,
            facets,
            strip,
            sample: crashscope_store::FACET_SAMPLE,
            form,
            form_error,
        },
    )
}

/// `POST /ui/events`: a custom event from the form, stored as the API stores one.
pub async fn create(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Form(form): Form<EventForm>,
) -> Response {
    if let Some(refused) = refuse_write(&viewer, &form.csrf) {
        return refused;
    }
    let key = Some(form.key.clone()).filter(|k| !k.is_empty() && k.len() <= 255);
    let result = match form.event() {
        Ok(ev) => events::submit(&app, ev, key).await.map_err(|e| {
            let text = say(&e);
            (e.status, text)
        }),
        Err(text) => Err((StatusCode::BAD_REQUEST, text)),
    };
    match result {
        // Back to the feed, where the new event is the newest (a reload does not post again).
        Ok(_) => Redirect::to("/ui/events").into_response(),
        Err(e) => feed(&app, &viewer, Filters::default(), Some(form), Some(e)).await,
    }
}
