//! The HTTP API: the route table (which the OpenAPI document is checked against), shared
//! state, health and `/metrics`.

pub mod capture_views;
pub mod captures;
pub mod diagnosis;
pub mod events;
pub mod metrics_query;
pub mod params;
pub mod views;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post, MethodRouter};
use axum::{Json, Router};
use crashscope_store::SqlStore;

use crate::auth::{self, Tokens};
use crate::metrics::Metrics;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<SqlStore>,
    pub metrics: Arc<Metrics>,
    /// The group-commit queue for posted events.
    pub ingest: crate::ingest::Ingest,
    /// Whether rule evaluation runs (for `/readyz`).
    pub health: Arc<crate::health::EngineHealth>,
    /// Where captures uploaded by node agents are kept.
    pub captures_dir: std::path::PathBuf,
    /// Turns for uploads: each writes one file at a time.
    pub uploads: Arc<tokio::sync::Semaphore>,
    /// The data directory (the local runtime's logs are under it).
    pub data_dir: std::path::PathBuf,
    /// Becomes true when the server stops: held long-polls answer at once, so a graceful
    /// shutdown does not wait out an agent's poll.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// The rules the engine evaluates (the UI lists them with their state).
    pub rules: Arc<crashscope_rules::RuleFile>,
}

/// Capture uploads written at once; more wait their turn.
pub const UPLOADS_AT_ONCE: usize = 4;

/// Largest request body accepted (a custom event is well under 16 KiB).
pub const MAX_BODY: usize = 64 * 1024;

/// Every authenticated route: method, path (axum syntax), handler.
pub fn routes() -> Vec<(&'static str, &'static str, MethodRouter<AppState>)> {
    vec![
        ("get", "/api/v1/events", get(events::list)),
        ("post", "/api/v1/events", post(events::create)),
        ("get", "/api/v1/pods", get(views::pods)),
        (
            "get",
            "/api/v1/pods/{namespace}/{name}/diagnosis",
            get(diagnosis::pod),
        ),
        ("get", "/api/v1/incidents", get(views::incident_list)),
        ("get", "/api/v1/alerts", get(views::alerts)),
        ("get", "/api/v1/alerts/{id}", get(views::alert)),
        ("get", "/api/v1/silences", get(views::silences)),
        ("post", "/api/v1/silences", post(views::create_silence)),
        (
            "delete",
            "/api/v1/silences/{id}",
            delete(views::expire_silence),
        ),
        ("get", "/api/v1/captures", get(captures::list)),
        (
            "post",
            "/api/v1/captures",
            post(captures::upload).layer(DefaultBodyLimit::max(captures::MAX_CAPTURE)),
        ),
        ("get", "/api/v1/captures/{id}/file", get(captures::file)),
        (
            "get",
            "/api/v1/captures/{id}/events",
            get(capture_views::events),
        ),
        (
            "get",
            "/api/v1/captures/{id}/views/{view}",
            get(capture_views::view),
        ),
        ("get", "/api/v1/capture-requests", get(captures::requests)),
        (
            "post",
            "/api/v1/capture-requests",
            post(captures::create_request),
        ),
        (
            "patch",
            "/api/v1/capture-requests/{id}",
            patch(captures::update_request),
        ),
        ("get", "/api/v1/metrics/query", get(metrics_query::query)),
        ("get", "/metrics", get(metrics)),
    ]
}

/// Routes without authentication.
pub const OPEN_ROUTES: [(&str, &str); 2] = [("get", "/healthz"), ("get", "/readyz")];

/// The whole application; `ui` makes the web UI's routes (its own authentication).
pub fn router(state: AppState, tokens: Arc<Tokens>, ui: Option<crate::UiRouter>) -> Router {
    let mut api: Router<AppState> = Router::new();
    for (_, path, handler) in routes() {
        api = api.route(path, handler);
    }
    let pages = ui.map(|ui| ui(tokens.clone()));
    let api = api.layer(axum::middleware::from_fn_with_state(tokens, auth::require));
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(api);
    if let Some(pages) = pages {
        app = app.merge(pages);
    }
    app.fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::guard::request,
        ))
        .with_state(state)
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(app): State<AppState>) -> impl IntoResponse {
    use crate::health::Readiness;
    match app.health.readiness() {
        Readiness::Ready => (StatusCode::OK, Json(serde_json::json!({"status": "ready"}))),
        Readiness::Starting => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                serde_json::json!({"status": "starting", "reason": "the first rule evaluation has not run yet"}),
            ),
        ),
        Readiness::Failing { rounds, error } => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "status": "failing",
                "reason": format!("the last {rounds} rule evaluations failed: {error}"),
            })),
        ),
    }
}

async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    app.metrics.set_rows_skipped(app.store.rows_skipped());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
}

async fn not_found() -> crate::error::ApiError {
    crate::error::ApiError::not_found("no such endpoint; see openapi.yaml for the API")
}
