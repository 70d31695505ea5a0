//! A stored capture read the way the web UI's inspector reads it: pages of its events (keyset
//! by event number, from a time, through a sysdig filter) and each inspector view's table,
//! computed on the server in one streaming pass. Pages resume at the capture's index
//! (checkpoints of offset and state, built on first use and cached beside the capture).

use std::path::PathBuf;

use axum::extract::{Path, State};
use axum::Json;
use crashscope_inspect::filter::Filter;
use crashscope_inspect::index::{page, Index, Page, MAX_PAGE};
use crashscope_inspect::report::Table;
use crashscope_inspect::scan::{scan, Bound, Outcome, Scope};
use crashscope_inspect::views;
use crashscope_model::time_range::{capture_point, CapturePoint};
use crashscope_scap::reader::Reader;
use crashscope_scap::replay::Replay;
use serde::Deserialize;

use super::AppState;
use crate::error::{ApiError, PathId, QueryParams};

/// Events in a page unless `limit` says otherwise.
const DEFAULT_PAGE: usize = 500;

/// A page's parameters (the API's query string, and the web UI's).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventParams {
    /// Only events numbered above it (the `next_after` of the previous page).
    pub after: Option<u64>,
    pub limit: Option<usize>,
    /// A sysdig filter (`proc.name=nginx and evt.failed=true`).
    pub filter: Option<String>,
    /// `2s` after the capture's first event, or an RFC 3339 time.
    pub from: Option<String>,
    pub to: Option<String>,
    /// Also the container metadata records sysdig hides.
    pub metadata: Option<bool>,
}

/// A view's parameters (the API's query string, and the web UI's).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewParams {
    pub filter: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Keep only this many rows (the largest).
    pub top: Option<usize>,
    /// `errors`: also the start-up noise every program makes.
    pub all: Option<bool>,
}

fn bound(field: &str, s: &str) -> Result<Bound, ApiError> {
    match capture_point(s) {
        Ok(CapturePoint::After(ns)) => Ok(Bound::Relative(ns)),
        Ok(CapturePoint::At(ns)) => Ok(Bound::Absolute(ns)),
        Err(e) => Err(ApiError::bad_request(field, e)),
    }
}

fn scope(filter: Option<&str>, from: Option<&str>, to: Option<&str>) -> Result<Scope, ApiError> {
    Ok(Scope {
        filter: match filter {
            Some(f) => Filter::parse(f)
                .map_err(|e| ApiError::bad_request("filter", format!("invalid filter {e}")))?,
            None => Filter::default(),
        },
        from: from.map(|s| bound("from", s)).transpose()?,
        to: to.map(|s| bound("to", s)).transpose()?,
    })
}

/// The file of capture `id`.
async fn capture_path(app: &AppState, id: i64) -> Result<PathBuf, ApiError> {
    let Some(rec) = app.store.capture(id).await? else {
        return Err(ApiError::not_found(format!("no capture {id}")));
    };
    let path = PathBuf::from(&rec.path);
    if !path.exists() {
        return Err(ApiError::not_found(format!(
            "capture {id} is indexed but its file is gone"
        )));
    }
    Ok(path)
}

/// Reading a capture is blocking work: off the async threads.
async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ApiError::internal(what, &e)),
        Err(e) => Err(ApiError::internal(what, &e)),
    }
}

/// `GET /api/v1/captures/{id}/events`: one page of the capture's events.
pub async fn events(
    State(app): State<AppState>,
    PathId(id): PathId,
    QueryParams(p): QueryParams<EventParams>,
) -> Result<Json<Page>, ApiError> {
    events_page(&app, id, p).await.map(Json)
}

/// One page of capture `id`'s events, with the parameters checked as the API checks them.
pub async fn events_page(app: &AppState, id: i64, p: EventParams) -> Result<Page, ApiError> {
    let limit = p.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(
            "limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    let scope = scope(p.filter.as_deref(), p.from.as_deref(), p.to.as_deref())?;
    let path = capture_path(app, id).await?;
    let (after, metadata) = (p.after.unwrap_or(0), p.metadata.unwrap_or(false));
    blocking("reading a capture", move || {
        let index = Index::load_or_build(&path).map_err(|e| e.to_string())?;
        page(&path, &index, &scope, after, limit, metadata).map_err(|e| e.to_string())
    })
    .await
}

/// `GET /api/v1/captures/{id}/views/{view}`: an inspector view's table, as
/// `crashscope inspect FILE VIEW -o json` prints it.
pub async fn view(
    State(app): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    QueryParams(p): QueryParams<ViewParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError::bad_id())?;
    let (table, outcome) = view_table(&app, id, name, p).await?;
    let mut j = table.json();
    outcome.annotate(&mut j);
    Ok(Json(j))
}

/// Payload bytes a conversation viewer reads from a capture at most.
pub const TURN_BUDGET: usize = 16 << 20;

/// The reads and writes of capture `id` that `p`'s filter and window select, with their
/// bytes (up to [`TURN_BUDGET`]), for the I/O stream viewer.
pub async fn turns(
    app: &AppState,
    id: i64,
    p: ViewParams,
) -> Result<(views::io::Collected, Outcome), ApiError> {
    let scope = scope(p.filter.as_deref(), p.from.as_deref(), p.to.as_deref())?;
    let path = capture_path(app, id).await?;
    blocking("reading a capture", move || {
        let reader = Reader::open(&path).map_err(|e| e.to_string())?;
        let mut replay = Replay::new(reader);
        let (view, out) = views::io::Turns::new(TURN_BUDGET);
        let mut vs: Vec<Box<dyn crashscope_inspect::scan::View>> = vec![Box::new(view)];
        let outcome = scan(&mut replay, &scope, &mut vs, |_| {});
        drop(vs);
        let collected = std::mem::take(&mut *out.borrow_mut());
        Ok((collected, outcome))
    })
    .await
}

/// Inspector view `name` of capture `id`: its table and what the scan read.
pub async fn view_table(
    app: &AppState,
    id: i64,
    name: String,
    p: ViewParams,
) -> Result<(Table, Outcome), ApiError> {
    let (mut tables, outcome) = view_tables(app, id, vec![(name, None)], p).await?;
    Ok((tables.pop().unwrap_or_default(), outcome))
}

/// Several inspector views of capture `id` in one pass (each with its timeline bucket,
/// nanoseconds, when it is a timeline): their tables in order, and what the scan read.
pub async fn view_tables(
    app: &AppState,
    id: i64,
    names: Vec<(String, Option<u64>)>,
    p: ViewParams,
) -> Result<(Vec<Table>, Outcome), ApiError> {
    for (name, _) in &names {
        if !views::VIEWS.iter().any(|(n, _)| n == name) {
            let all: Vec<&str> = views::VIEWS.iter().map(|(n, _)| *n).collect();
            return Err(ApiError::not_found(format!(
                "no view {name:?}; the views are {}",
                all.join(", ")
            )));
        }
    }
    let opts = views::Options {
        top: p.top,
        all: p.all.unwrap_or(false),
        ..views::Options::default()
    };
    let scope = scope(p.filter.as_deref(), p.from.as_deref(), p.to.as_deref())?;
    let path = capture_path(app, id).await?;
    blocking("reading a capture", move || {
        let reader = Reader::open(&path).map_err(|e| e.to_string())?;
        let mut replay = Replay::new(reader);
        // Made on this thread: a view is not Send.
        let mut vs = Vec::new();
        for (name, bucket) in &names {
            let o = views::Options {
                bucket: *bucket,
                ..opts.clone()
            };
            vs.push(views::make(name, &o).ok_or_else(|| format!("no view {name}"))?);
        }
        let outcome = scan(&mut replay, &scope, &mut vs, |_| {});
        Ok((vs.into_iter().map(|v| v.finish()).collect(), outcome))
    })
    .await
}

/// The times of capture `id`'s first and last events (nanoseconds since the epoch), from
/// its index (built once, then cached beside it).
pub async fn span(app: &AppState, id: i64) -> Result<Option<(u64, u64)>, ApiError> {
    let path = capture_path(app, id).await?;
    blocking("indexing a capture", move || {
        let index = Index::load_or_build(&path).map_err(|e| e.to_string())?;
        Ok(index.first_ts.zip(index.last_ts))
    })
    .await
}
