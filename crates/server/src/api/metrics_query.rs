//! `GET /api/v1/metrics/query`: the restart metrics as time series, Prometheus range-query
//! style — `name`, `from`, `to`, `step`, `window`, the level `by`, and scope filters.

use axum::extract::State;
use axum::Json;
use crashscope_rules::{restarts, series, GroupBy, MetricName, Series};
use crashscope_store::Store;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::params;
use super::AppState;
use crate::error::{ApiError, QueryParams};

/// A range query's arguments (the API's query string, and the web UI's charts).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryArgs {
    pub name: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub step: Option<String>,
    pub window: Option<String>,
    pub by: Option<String>,
    pub namespace: Option<String>,
    pub workload: Option<String>,
    pub pod: Option<String>,
}

/// The series of a range query.
#[derive(Serialize)]
pub struct Answer {
    pub metric: &'static str,
    pub from: Timestamp,
    pub to: Timestamp,
    pub step_seconds: f64,
    pub window_seconds: f64,
    pub series: Vec<Series>,
}

/// At most this many points per series, as Prometheus caps range queries.
const MAX_POINTS: u64 = 11_000;

pub async fn query(
    State(app): State<AppState>,
    QueryParams(q): QueryParams<QueryArgs>,
) -> Result<Json<Answer>, ApiError> {
    run(&app, q).await.map(Json)
}

/// The range query `q`, with its arguments checked as the API checks them.
pub async fn run(app: &AppState, q: QueryArgs) -> Result<Answer, ApiError> {
    let name = MetricName::parse(&q.name).ok_or_else(|| {
        ApiError::bad_request(
            "name",
            format!(
                "unknown metric {:?} (kubernetes.pod.restart.rate or kubernetes.pod.restart.count)",
                q.name
            ),
        )
    })?;
    let now = Timestamp::now();
    let to =
        q.to.as_deref()
            .map(|v| params::time("to", v, now))
            .transpose()?
            .unwrap_or(now);
    let from = q
        .from
        .as_deref()
        .map(|v| params::time("from", v, now))
        .transpose()?
        .unwrap_or(
            to.saturating_sub(jiff::SignedDuration::from_hours(1))
                .unwrap_or(to),
        );
    if from > to {
        return Err(ApiError::bad_request("from", "from is after to"));
    }
    let step = q
        .step
        .as_deref()
        .map(|v| params::duration("step", v))
        .transpose()?
        .unwrap_or(Duration::from_secs(60));
    let window = q
        .window
        .as_deref()
        .map(|v| params::duration("window", v))
        .transpose()?
        .unwrap_or(Duration::from_secs(240));
    if step.is_zero() || window.is_zero() {
        return Err(ApiError::bad_request(
            "step",
            "step and window must be longer than 0s",
        ));
    }
    let span = to.duration_since(from).as_secs_f64();
    if span / step.as_secs_f64() > MAX_POINTS as f64 {
        return Err(ApiError::bad_request(
            "step",
            format!("more than {MAX_POINTS} points; use a larger step"),
        ));
    }
    let by = match q.by.as_deref().unwrap_or("pod") {
        "container" => GroupBy::Container,
        "pod" => GroupBy::Pod,
        "workload" => GroupBy::Workload,
        "namespace" => GroupBy::Namespace,
        other => {
            return Err(ApiError::bad_request(
                "by",
                format!("{other:?} is not container, pod, workload or namespace"),
            ))
        }
    };
    let window_signed = jiff::SignedDuration::try_from(window)
        .map_err(|_| ApiError::bad_request("window", "too long"))?;
    let lookback = window_signed
        .checked_mul(2)
        .and_then(|w| from.checked_sub(w).ok())
        .ok_or_else(|| ApiError::bad_request("window", "too long"))?;
    let samples: Vec<_> = app
        .store
        .restart_samples(
            lookback,
            to.saturating_add(Duration::from_millis(1)).unwrap_or(to),
        )
        .await?
        .into_iter()
        .filter(|s| q.namespace.as_ref().is_none_or(|n| n == &s.namespace))
        .filter(|s| q.pod.as_ref().is_none_or(|p| p == &s.pod))
        .filter(|s| {
            q.workload.as_ref().is_none_or(|w| {
                let (k, n) = w.split_once('/').unwrap_or(("", w));
                s.workload_name.as_deref() == Some(n)
                    && (k.is_empty()
                        || s.workload_kind
                            .as_deref()
                            .is_some_and(|sk| sk.eq_ignore_ascii_case(k)))
            })
        })
        .collect();
    let seen = restarts(&samples, lookback);
    Ok(Answer {
        metric: name.as_str(),
        from,
        to,
        step_seconds: step.as_secs_f64(),
        window_seconds: window.as_secs_f64(),
        series: series(&seen, name, by, window, from, to, step),
    })
}
