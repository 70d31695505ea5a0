//! The event feed: `GET /api/v1/events` (filters, newest first, cursor pages) and
//! `POST /api/v1/events` (custom events such as a deploy from CI, idempotent with a key).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use crashscope_model::scope::WorkloadRef;
use crashscope_model::{Event, EventType, Scope, Severity};
use crashscope_store::{Cursor, EventQuery, FeedSample, Store, StoredEvent};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::params;
use super::AppState;
use crate::error::{ApiError, JsonBody, QueryParams};

/// The feed's filters (the query string of `GET /api/v1/events`, and the web UI's).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub from: Option<String>,
    pub to: Option<String>,
    pub severity: Option<String>,
    pub source: Option<String>,
    pub reason: Option<String>,
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    pub workload: Option<String>,
    pub pod: Option<String>,
    pub node: Option<String>,
    pub q: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// One page of the feed.
#[derive(Serialize)]
pub struct Page {
    pub items: Vec<StoredEvent>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// How far back `q` searches when `from` is not given.
const TEXT_SEARCH_DEFAULT: &str = "24h";

pub async fn list(
    State(app): State<AppState>,
    QueryParams(p): QueryParams<ListParams>,
) -> Result<Json<Page>, ApiError> {
    query(&app, p).await.map(Json)
}

/// Fields `q` can name (`reason:BackOff`); the excludable ones are the store's columns.
const Q_FIELDS: [&str; 8] = [
    "cluster",
    "namespace",
    "node",
    "pod",
    "reason",
    "source",
    "severity",
    "workload",
];

/// `q` read as the feed's query language: `field:value` narrows to a value (as the
/// parameter of that name does), `-field:value` leaves a value out, anything else is free
/// text. A word whose prefix is not a field (`10.0.0.7:5432`) is text.
#[derive(Debug, Default, PartialEq)]
pub struct Query {
    pub text: Option<String>,
    pub fields: Vec<(&'static str, String)>,
    pub excluded: Vec<(crashscope_store::Column, String)>,
}

pub fn parse_q(q: &str) -> Result<Query, ApiError> {
    let mut out = Query::default();
    let mut words = Vec::new();
    for word in q.split_whitespace() {
        let (negated, body) = match word.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, word),
        };
        let field = body
            .split_once(':')
            .and_then(|(f, v)| Q_FIELDS.iter().find(|k| **k == f).map(|k| (*k, v)));
        let Some((field, value)) = field else {
            words.push(word);
            continue;
        };
        if value.is_empty() {
            return Err(ApiError::bad_request(
                "q",
                format!("{field}: needs a value ({field}:VALUE)"),
            ));
        }
        if negated {
            let col = crashscope_store::Column::parse(field).ok_or_else(|| {
                ApiError::bad_request(
                    "q",
                    format!(
                        "-{field}: only cluster, namespace, node, pod, reason and source can be left out"
                    ),
                )
            })?;
            out.excluded.push((col, value.to_string()));
        } else {
            out.fields.push((field, value.to_string()));
        }
    }
    out.text = Some(words.join(" ")).filter(|t| !t.is_empty());
    Ok(out)
}

/// The store's query for `p` (checked as the API checks it) and the page size asked.
fn store_query(mut p: ListParams) -> Result<(EventQuery, u32), ApiError> {
    let now = Timestamp::now();
    let parsed = parse_q(p.q.as_deref().unwrap_or(""))?;
    for (field, value) in parsed.fields {
        let slot = match field {
            "cluster" => &mut p.cluster,
            "namespace" => &mut p.namespace,
            "node" => &mut p.node,
            "pod" => &mut p.pod,
            "reason" => &mut p.reason,
            "source" => &mut p.source,
            "severity" => &mut p.severity,
            _ => &mut p.workload,
        };
        *slot = Some(value);
    }
    p.q = parsed.text;
    let limit = params::limit(p.limit, 100, 1000)?;
    let workload = p
        .workload
        .as_deref()
        .map(|w| workload_ref("workload", w))
        .transpose()?;
    let (workload_kind, workload_name) = match workload {
        Some(w) => (Some(w.kind), Some(w.name)),
        None => (None, None),
    };
    // Free text cannot use an index: without `from` it searches the last day, so that a
    // search never reads months of events.
    let from = match (p.from.as_deref(), p.q.as_deref()) {
        (Some(v), _) => Some(params::time("from", v, now)?),
        (None, Some(t)) if !t.is_empty() => Some(params::time("from", TEXT_SEARCH_DEFAULT, now)?),
        _ => None,
    };
    let q = EventQuery {
        since: from,
        until: p
            .to
            .as_deref()
            .map(|v| params::time("to", v, now))
            .transpose()?,
        min_severity: p
            .severity
            .as_deref()
            .map(|v| params::severity("severity", v))
            .transpose()?,
        cluster: p.cluster,
        namespace: p.namespace,
        node: p.node,
        workload_kind,
        workload_name,
        pod: p.pod,
        reason: p.reason,
        source: p.source,
        text: p.q,
        excluded: parsed.excluded,
        // An empty cursor is the first page, as clients that always send the parameter expect.
        before: p
            .cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|c| {
                Cursor::decode(c).ok_or_else(|| {
                    ApiError::bad_request("cursor", "not a cursor this server handed out")
                })
            })
            .transpose()?,
        limit: Some(limit + 1),
    };
    Ok((q, limit))
}

/// A page of the feed for `p`, with the parameters checked as the API checks them.
pub async fn query(app: &AppState, p: ListParams) -> Result<Page, ApiError> {
    let (q, limit) = store_query(p)?;
    let started = std::time::Instant::now();
    let mut items = app.store.events(&q).await?;
    app.metrics
        .store_latency("list_events", started.elapsed().as_secs_f64());
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|e| Cursor::after(e).encode())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// Values a field takes most among the newest events matching `p`'s filters, with how many
/// of them, and when they were seen (see [`crashscope_store::FACET_SAMPLE`]): the feed's
/// facets and its strip.
pub async fn facets(app: &AppState, p: ListParams) -> Result<FeedSample, ApiError> {
    let (mut q, _) = store_query(p)?;
    q.before = None;
    q.limit = None;
    Ok(app.store.event_sample(&q, 8).await?)
}

/// `deployment/nginx` as a workload; `field` names the parameter in the error.
pub fn workload_ref(field: &str, w: &str) -> Result<WorkloadRef, ApiError> {
    match w.split_once('/') {
        Some((k, n)) if !k.is_empty() && !n.is_empty() => Ok(WorkloadRef {
            kind: capitalized(k),
            name: n.into(),
        }),
        _ => Err(ApiError::bad_request(
            field,
            format!("{w:?} is not KIND/NAME (e.g. deployment/nginx)"),
        )),
    }
}

/// Kubernetes kinds are capitalized (`Deployment`); users type `deployment`.
fn capitalized(kind: &str) -> String {
    let known = [
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "Job",
        "CronJob",
        "Pod",
        "Rollout",
    ];
    known
        .iter()
        .find(|k| k.eq_ignore_ascii_case(kind))
        .map(|k| k.to_string())
        .unwrap_or_else(|| kind.to_string())
}

/// A custom event as CI posts it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// Short name, shown as the reason: `deploy`, `rollback`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub severity: Option<Severity>,
    /// When it happened; now when absent.
    #[serde(
        default,
        deserialize_with = "crashscope_model::time_range::deserialize_option"
    )]
    pub timestamp: Option<Timestamp>,
    /// Who posted it: `jenkins`, `github-actions`.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub scope: NewScope,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewScope {
    pub namespace: Option<String>,
    pub node: Option<String>,
    /// `deployment/nginx`.
    pub workload: Option<String>,
    pub pod: Option<String>,
    pub container: Option<String>,
}

/// Sources the API will not let a client impersonate.
const RESERVED_SOURCES: [&str; 3] = [
    crashscope_model::event::SOURCE_KUBERNETES,
    "local",
    "crashscope",
];

pub async fn create(
    State(app): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewEvent>,
) -> Result<(StatusCode, Json<StoredEvent>), ApiError> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= 255)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "Idempotency-Key",
                        "must be 1 to 255 visible ASCII characters",
                    )
                })?
                .to_string(),
        ),
    };
    let (status, stored) = submit(&app, body, key).await?;
    Ok((status, Json(stored)))
}

/// Checks and stores a custom event (once per `key`): 201 when new, 200 when the key's
/// event was stored before — for the API's `POST /api/v1/events` and the web UI's form.
pub async fn submit(
    app: &AppState,
    body: NewEvent,
    key: Option<String>,
) -> Result<(StatusCode, StoredEvent), ApiError> {
    let stamped = body.timestamp.is_some();
    let ev = validate(body)?;
    let (stored, created) = app
        .ingest
        .submit(ev.clone(), key)
        .await
        .map_err(|e| ApiError::internal("storing the event", &e))?;
    if !created && !same_post(&stored.event, &ev, stamped) {
        return Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: "this Idempotency-Key was used before with a different event; \
                      use a new key for a new event"
                .into(),
            field: Some("Idempotency-Key".into()),
        });
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, stored))
}

/// Whether a retried post is the one stored under its key (the time only when the post
/// gave one: without it, each try is stamped when it arrives).
fn same_post(stored: &Event, again: &Event, stamped: bool) -> bool {
    stored.source == again.source
        && stored.reason == again.reason
        && stored.message == again.message
        && stored.severity == again.severity
        && stored.scope == again.scope
        && stored.tags == again.tags
        && (!stamped || stored.first_seen.as_millisecond() == again.first_seen.as_millisecond())
}

fn validate(b: NewEvent) -> Result<Event, ApiError> {
    let name = b.name.trim();
    if name.is_empty() || name.len() > 128 {
        return Err(ApiError::bad_request(
            "name",
            "name must be 1 to 128 characters",
        ));
    }
    if b.description.len() > 4096 {
        return Err(ApiError::bad_request(
            "description",
            "description must be at most 4096 characters",
        ));
    }
    let source = b.source.unwrap_or_else(|| "api".into());
    let reserved = RESERVED_SOURCES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(source.trim()));
    if source.trim().is_empty() || source.len() > 64 || reserved {
        return Err(ApiError::bad_request(
            "source",
            format!("source must be 1 to 64 characters and not one of {RESERVED_SOURCES:?}"),
        ));
    }
    if b.tags.len() > 32
        || b.tags
            .iter()
            .any(|(k, v)| k.is_empty() || k.len() > 64 || v.len() > 256)
    {
        return Err(ApiError::bad_request(
            "tags",
            "at most 32 tags, keys 1 to 64 and values up to 256 characters",
        ));
    }
    let workload = b
        .scope
        .workload
        .as_deref()
        .map(|w| workload_ref("scope.workload", w))
        .transpose()?;
    let at = b.timestamp.unwrap_or_else(Timestamp::now);
    let severity = b.severity.unwrap_or(Severity::Info);
    Ok(Event {
        source,
        reporter: None,
        reason: name.into(),
        message: b.description,
        event_type: if severity >= Severity::Warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        severity,
        scope: Scope {
            cluster: None,
            node: b.scope.node,
            namespace: b.scope.namespace,
            workload,
            pod: b.scope.pod,
            container: b.scope.container,
        },
        involved: None,
        count: 1,
        first_seen: at,
        last_seen: at,
        source_id: None,
        tags: b.tags,
    })
}

#[cfg(test)]
mod query_tests {
    use super::*;
    use crashscope_store::Column;

    #[test]
    fn fields_narrow_minus_fields_leave_out_and_the_rest_is_text() {
        let q = parse_q("reason:BackOff -namespace:kube-system dial tcp 10.0.0.7:5432").unwrap();
        assert_eq!(q.fields, [("reason", "BackOff".to_string())]);
        assert_eq!(q.excluded, [(Column::Namespace, "kube-system".to_string())]);
        assert_eq!(q.text.as_deref(), Some("dial tcp 10.0.0.7:5432"));
        assert_eq!(parse_q("").unwrap(), Query::default());
        assert_eq!(parse_q("   ").unwrap().text, None);
        let e = parse_q("reason:").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("q"));
        assert!(
            e.message.starts_with("reason: needs a value"),
            "{}",
            e.message
        );
        let e = parse_q("-severity:info").unwrap_err();
        assert!(e.message.starts_with("-severity: only"), "{}", e.message);
        // A word that only looks like a field is text.
        assert_eq!(
            parse_q("error:timeout").unwrap().text.as_deref(),
            Some("error:timeout")
        );
    }
}
