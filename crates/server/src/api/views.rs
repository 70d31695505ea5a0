//! Read-only views: pods (latest state), incidents, alerts, captures and capture requests,
//! and silences (which can also be created and expired).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use crashscope_model::alert::AlertPhase;
use crashscope_model::incident::{incidents, Incident};
use crashscope_model::PodState;
use crashscope_rules::Matcher;
use crashscope_store::{AlertRecord, SilenceRecord, Store};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::params;
use super::AppState;
use crate::error::{ApiError, JsonBody, PathId, QueryParams};

#[derive(Serialize)]
pub struct Items<T> {
    pub items: Vec<T>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodParams {
    namespace: Option<String>,
}

#[derive(Serialize)]
pub struct PodItem {
    observed_at: Timestamp,
    #[serde(flatten)]
    pod: PodState,
}

pub async fn pods(
    State(app): State<AppState>,
    QueryParams(p): QueryParams<PodParams>,
) -> Result<Json<Items<PodItem>>, ApiError> {
    let items = app
        .store
        .latest_pods()
        .await?
        .into_iter()
        .filter(|(_, pod)| pod.deleted.is_none())
        .filter(|(_, pod)| p.namespace.as_ref().is_none_or(|n| n == &pod.namespace))
        .map(|(observed_at, pod)| PodItem { observed_at, pod })
        .collect();
    Ok(Json(Items { items }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinceParams {
    since: Option<String>,
    cluster: Option<String>,
    namespace: Option<String>,
}

/// An incident with the cause last diagnosed for its pods (from the `Diagnosed` events on
/// the feed), when there is one.
#[derive(Serialize)]
pub struct IncidentItem {
    #[serde(flatten)]
    pub incident: Incident,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// The cause last diagnosed per container (namespace, pod, container), from the `Diagnosed`
/// events on the feed.
async fn latest_causes(
    app: &AppState,
    namespace: Option<&str>,
) -> Result<std::collections::HashMap<(String, String, String), String>, ApiError> {
    // Newest first: the first cause seen per container is its latest.
    let diagnosed = app
        .store
        .events(&crashscope_store::EventQuery {
            reason: Some("Diagnosed".into()),
            namespace: namespace.map(str::to_string),
            limit: Some(5000),
            ..crashscope_store::EventQuery::default()
        })
        .await?;
    let mut causes = std::collections::HashMap::new();
    for e in diagnosed {
        let s = &e.event.scope;
        if let (Some(ns), Some(pod), Some(c), Some(cause)) = (
            s.namespace.clone(),
            s.pod.clone(),
            s.container.clone(),
            e.event.tags.get("cause").cloned(),
        ) {
            causes.entry((ns, pod, c)).or_insert(cause);
        }
    }
    Ok(causes)
}

/// An alert with the cause last diagnosed for one of its pods, when there is one.
#[derive(Serialize)]
pub struct AlertItem {
    #[serde(flatten)]
    pub alert: AlertRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

impl AlertItem {
    /// Joins an alert with the causes of its pods (its `pods` label) — of its container
    /// when the alert is per container.
    fn of(
        alert: AlertRecord,
        causes: &std::collections::HashMap<(String, String, String), String>,
    ) -> AlertItem {
        let ns = alert.labels.get("namespace").cloned().unwrap_or_default();
        let container = alert.labels.get("container").cloned();
        let pods = alert.pods();
        // The first of its pods (in the alert's order) with a cause; per pod, its
        // containers by name, so the answer does not depend on the map's order.
        let cause = pods.iter().find_map(|pod| {
            let mut found: Vec<(&String, &String)> = causes
                .iter()
                .filter(|((n, p, c), _)| {
                    *n == ns && p == pod && container.as_ref().is_none_or(|x| x == c)
                })
                .map(|((_, _, c), cause)| (c, cause))
                .collect();
            found.sort();
            found.first().map(|(_, cause)| (*cause).clone())
        });
        AlertItem { alert, cause }
    }
}

pub async fn incident_list(
    State(app): State<AppState>,
    QueryParams(p): QueryParams<SinceParams>,
) -> Result<Json<Items<IncidentItem>>, ApiError> {
    let items = incident_items(
        &app,
        p.since.as_deref(),
        p.cluster.as_deref(),
        p.namespace.as_deref(),
    )
    .await?;
    Ok(Json(Items { items }))
}

/// The crash loops since `since` (24h when absent), most recently active first, each with
/// the cause last diagnosed for its pods.
pub async fn incident_items(
    app: &AppState,
    since: Option<&str>,
    cluster: Option<&str>,
    namespace: Option<&str>,
) -> Result<Vec<IncidentItem>, ApiError> {
    let now = Timestamp::now();
    let from = params::time("since", since.unwrap_or("24h"), now)?;
    let samples = app
        .store
        .restart_samples(from, now + std::time::Duration::from_millis(1))
        .await?;
    let causes = latest_causes(app, namespace).await?;
    let mut found = incidents(&samples);
    let pods = app.store.current_pods().await?;
    crashscope_model::incident::refresh_from_pods(&mut found, &pods);
    let items = found
        .into_iter()
        .filter(|i| namespace.is_none_or(|n| n == i.key.namespace))
        .filter(|i| cluster.is_none_or(|c| Some(c) == i.key.cluster.as_deref()))
        .map(|incident| {
            let cause = incident.pods.iter().find_map(|pod| {
                let key = (
                    incident.key.namespace.clone(),
                    pod.clone(),
                    incident.key.container.clone(),
                );
                causes.get(&key).cloned()
            });
            IncidentItem { incident, cause }
        })
        .collect();
    Ok(items)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertParams {
    state: Option<String>,
    limit: Option<u32>,
}

pub async fn alerts(
    State(app): State<AppState>,
    QueryParams(p): QueryParams<AlertParams>,
) -> Result<Json<Items<AlertItem>>, ApiError> {
    let items = alert_items(&app, p.state.as_deref(), p.limit).await?;
    Ok(Json(Items { items }))
}

/// The alerts (in `state` when given), newest first, each with its pods' cause.
pub async fn alert_items(
    app: &AppState,
    state: Option<&str>,
    limit: Option<u32>,
) -> Result<Vec<AlertItem>, ApiError> {
    let state = state
        .map(|s| {
            AlertPhase::parse(s).ok_or_else(|| {
                ApiError::bad_request("state", format!("{s:?} is not pending, firing or resolved"))
            })
        })
        .transpose()?;
    let limit = params::limit(limit, 100, 1000)?;
    let causes = latest_causes(app, None).await?;
    Ok(app
        .store
        .alerts(state, limit)
        .await?
        .into_iter()
        .map(|a| AlertItem::of(a, &causes))
        .collect())
}

pub async fn alert(
    State(app): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<AlertItem>, ApiError> {
    let alert = app
        .store
        .alerts(None, 100_000)
        .await?
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    let causes = latest_causes(&app, alert.labels.get("namespace").map(String::as_str)).await?;
    Ok(Json(AlertItem::of(alert, &causes)))
}

pub async fn silences(State(app): State<AppState>) -> Result<Json<Items<SilenceRecord>>, ApiError> {
    Ok(Json(Items {
        items: app.store.silences(Timestamp::now()).await?,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    pub matchers: Vec<Matcher>,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub created_by: String,
    #[serde(
        default,
        deserialize_with = "crashscope_model::time_range::deserialize_option"
    )]
    pub starts_at: Option<Timestamp>,
    /// When it ends; or `duration` from the start.
    #[serde(
        default,
        deserialize_with = "crashscope_model::time_range::deserialize_option"
    )]
    pub ends_at: Option<Timestamp>,
    #[serde(default)]
    pub duration: Option<String>,
}

pub async fn create_silence(
    State(app): State<AppState>,
    JsonBody(b): JsonBody<NewSilence>,
) -> Result<(StatusCode, Json<SilenceRecord>), ApiError> {
    let s = add_silence(&app, b).await?;
    Ok((StatusCode::CREATED, Json(s)))
}

/// Checks and stores a silence, as `POST /api/v1/silences` does.
pub async fn add_silence(app: &AppState, b: NewSilence) -> Result<SilenceRecord, ApiError> {
    if b.matchers.is_empty() {
        return Err(ApiError::bad_request(
            "matchers",
            "a silence needs at least one matcher",
        ));
    }
    if b.matchers.iter().any(|m| m.name.is_empty()) {
        return Err(ApiError::bad_request(
            "matchers",
            "a matcher needs a label name",
        ));
    }
    let start = b.starts_at.unwrap_or_else(Timestamp::now);
    let end = match (b.ends_at, b.duration.as_deref()) {
        (Some(e), None) => e,
        (None, Some(d)) => {
            let d = params::duration("duration", d)?;
            jiff::SignedDuration::try_from(d)
                .ok()
                .and_then(|d| start.checked_add(d).ok())
                .ok_or_else(|| ApiError::bad_request("duration", "too long"))?
        }
        _ => {
            return Err(ApiError::bad_request(
                "ends_at",
                "give exactly one of ends_at and duration",
            ))
        }
    };
    if end <= start {
        return Err(ApiError::bad_request(
            "ends_at",
            "a silence must end after it starts",
        ));
    }
    let matchers = serde_json::to_value(&b.matchers)
        .map_err(|e| ApiError::internal("encoding matchers", &e))?;
    let s = app
        .store
        .add_silence(&matchers, &b.comment, &b.created_by, start, end)
        .await?;
    Ok(s)
}

pub async fn expire_silence(
    State(app): State<AppState>,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    if app.store.expire_silence(id, Timestamp::now()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no active silence {id}")))
    }
}
