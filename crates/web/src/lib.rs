//! crashscope's web UI: server-rendered pages (askama templates, htmx for partial updates,
//! small ES modules for keys), mounted by the server at `/` and `/ui/…`. Pages call the same
//! queries as the JSON API, never the API over HTTP. Everything a page loads comes from this
//! binary: assets are embedded, no page names an outside URL, and the Content-Security-Policy
//! forbids anything else.

pub mod assets;
pub mod headers;
pub mod pages;
pub mod session;

use std::sync::Arc;

use axum::response::Redirect;
use axum::routing::{get, post};
use axum::Router;
use crashscope_server::{AppState, Tokens};

/// The UI's routes, for the server to merge into its own (`Config::ui`).
pub fn router(tokens: Arc<Tokens>) -> Router<AppState> {
    let sessions = Arc::new(session::Sessions::new(tokens));
    let pages = Router::new()
        .route(
            "/ui/events",
            get(pages::events::page).post(pages::events::create),
        )
        .route("/ui/events/live", get(pages::live::stream))
        .route("/ui/events/{id}", get(pages::event::page))
        .route("/ui/incidents", get(pages::incidents::page))
        .route("/ui/incidents/detail", get(pages::incident::page))
        .route("/ui/alerts", get(pages::alerts::list))
        .route(
            "/ui/silences",
            get(pages::alerts::silences).post(pages::alerts::create),
        )
        .route("/ui/silences/new", get(pages::alerts::new_form))
        .route("/ui/silences/{id}/expire", post(pages::alerts::expire))
        .route("/ui/pods", get(pages::pods::list))
        .route("/ui/pods/{namespace}/{name}", get(pages::pods::page))
        .route(
            "/ui/pods/{namespace}/{name}/capture",
            post(pages::pods::request_capture),
        )
        .route(
            "/ui/pods/{namespace}/{name}/chart.json",
            get(pages::chart::data),
        )
        .route(
            "/ui/workloads/{namespace}/{kind}/{name}/chart.json",
            get(pages::chart::workload_data),
        )
        .route("/ui/captures", get(pages::captures::list))
        .route(
            "/ui/captures/upload",
            post(pages::captures::upload).layer(axum::extract::DefaultBodyLimit::max(
                crashscope_server::api::captures::MAX_CAPTURE + (64 << 10),
            )),
        )
        .route("/ui/captures/{id}", get(pages::captures::page))
        .route("/ui/captures/{id}/events", get(pages::captures::events))
        .route("/ui/captures/{id}/io", get(pages::streams::page))
        .route("/ui/captures/{id}/export", get(pages::captures::export))
        .route("/ui/logout", post(session::logout))
        .route("/ui/theme", post(session::set_theme))
        .layer(axum::middleware::from_fn_with_state(
            sessions.clone(),
            session::require,
        ));
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/events") }))
        .route("/ui", get(|| async { Redirect::to("/ui/events") }))
        .route("/ui/login", get(session::login_form).post(session::login))
        .route("/ui/static/{hash}/{name}", get(assets::serve))
        .merge(pages)
        .layer(axum::Extension(sessions))
        .layer(axum::middleware::from_fn(headers::secure))
}
