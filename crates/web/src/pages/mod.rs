//! The pages: what every page shares (its chrome: asset URLs, the current page for the
//! navigation, the session's CSRF token for forms) and how a template becomes a response.

pub mod alerts;
pub mod captures;
pub mod chart;
pub mod crashloop;
pub mod event;
pub mod events;
pub mod evidence;
pub mod incident;
pub mod incidents;
pub mod live;
pub mod pods;
pub mod range;
pub mod scope;
pub mod streams;
pub mod strip;

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::assets::{urls, Urls};
use crate::session::Viewer;

/// What the base template needs.
pub struct Chrome {
    pub assets: &'static Urls,
    /// The navigation entry of this page.
    pub nav: &'static str,
    /// The session's CSRF token: forms carry it, and the logout button shows with it.
    pub csrf: Option<String>,
    /// auto, light or dark (the page's `data-theme`).
    pub theme: &'static str,
    pub themes: [&'static str; 3],
    /// What the page is scoped to (its bar; the navigation's links carry it).
    pub scope: scope::ScopeBar,
}

impl Chrome {
    /// A page outside a session (login).
    pub fn bare() -> Chrome {
        Chrome {
            assets: urls(),
            nav: "",
            csrf: None,
            theme: "auto",
            themes: crate::session::THEMES,
            scope: scope::ScopeBar::default(),
        }
    }

    pub fn for_viewer(nav: &'static str, viewer: &Viewer) -> Chrome {
        Chrome {
            assets: urls(),
            nav,
            csrf: viewer.csrf.clone(),
            theme: viewer.theme,
            themes: crate::session::THEMES,
            scope: scope::ScopeBar::default(),
        }
    }

    /// The page scoped as `bar` says.
    pub fn scoped(mut self, bar: scope::ScopeBar) -> Chrome {
        self.scope = bar;
        self
    }
}

/// A rendered page with `status`, or a plain 500 when the template fails.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a page");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot render this page").into_response()
        }
    }
}

/// A time as people read it in a table: UTC, to the second (headers say UTC).
pub fn short(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// An API error as a page says it: the field at fault first, when there is one.
pub fn say(e: &crashscope_server::error::ApiError) -> String {
    match &e.field {
        Some(field) => format!("{field}: {}", e.message),
        None => e.message.clone(),
    }
}

/// A query string of the non-empty `pairs` (trimmed), form-encoded.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.trim().is_empty() {
            q.append_pair(k, v.trim());
        }
    }
    q.finish()
}
