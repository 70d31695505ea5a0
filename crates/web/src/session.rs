//! Who is looking: a login page takes one of the server's API tokens and opens a session
//! kept in this process (an HttpOnly, SameSite=Strict cookie holds only its random id); an
//! `Authorization: Bearer` header works on pages too, for scripts and tests. A session's
//! forms carry its CSRF token, and a request whose `Origin` is another site is refused.
//! Sessions end after 12 hours, at logout, or when the server restarts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{Query, Request};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use crashscope_server::auth::{random_token, Access};
use crashscope_server::Tokens;
use serde::Deserialize;

use crate::pages::{render, Chrome};

/// The session cookie's name.
pub const COOKIE: &str = "crashscope_session";
/// How long a session lasts.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The viewer of a page, as the pages see it.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub access: Access,
    /// The session's CSRF token for forms (none for a bearer token: no session, no forms).
    pub csrf: Option<String>,
    /// The theme the browser asked for (its `crashscope_theme` cookie): auto, light or dark.
    pub theme: &'static str,
}

/// The cookie holding the theme a person chose.
const THEME_COOKIE: &str = "crashscope_theme";

/// The themes: `auto` follows the operating system's light or dark setting.
pub const THEMES: [&str; 3] = ["auto", "light", "dark"];

fn theme_of(headers: &HeaderMap) -> &'static str {
    let asked = cookie(headers, THEME_COOKIE).unwrap_or("auto");
    THEMES.into_iter().find(|t| *t == asked).unwrap_or("auto")
}

impl Viewer {
    pub fn can_write(&self) -> bool {
        self.access == Access::Write
    }
}

struct Session {
    access: Access,
    csrf: String,
    expires: Instant,
}

/// Open sessions, by id.
pub struct Sessions {
    tokens: Arc<Tokens>,
    open: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(tokens: Arc<Tokens>) -> Sessions {
        Sessions {
            tokens,
            open: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic elsewhere while the lock was held leaves sessions that are still sound.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session for `access`: its id and CSRF token.
    fn open(&self, access: Access) -> std::io::Result<(String, String)> {
        let id = random_token()?;
        let csrf = random_token()?;
        let now = Instant::now();
        let mut open = self.lock();
        open.retain(|_, s| s.expires > now);
        open.insert(
            id.clone(),
            Session {
                access,
                csrf: csrf.clone(),
                expires: now + LIFETIME,
            },
        );
        Ok((id, csrf))
    }

    fn viewer(&self, id: &str) -> Option<Viewer> {
        let open = self.lock();
        let s = open.get(id).filter(|s| s.expires > Instant::now())?;
        Some(Viewer {
            access: s.access,
            csrf: Some(s.csrf.clone()),
            theme: "auto",
        })
    }

    fn close(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// The session id the request's cookies carry.
fn session_id(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, COOKIE)
}

/// The value of cookie `name` in the request.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request comes from a page of another site (browsers send `Origin` on
/// POSTs; a request without one is a script's, judged by its token).
fn cross_site(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
    origin_host != host
}

/// Middleware of every page: a viewer, or the login page (a GET) or 401 (anything else).
pub async fn require(
    Extension(sessions): Extension<Arc<Sessions>>,
    mut req: Request,
    next: Next,
) -> Response {
    let headers = req.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let viewer = match bearer {
        Some(t) => sessions.tokens.check(t.trim()).map(|access| Viewer {
            access,
            csrf: None,
            theme: "auto",
        }),
        None => session_id(headers).and_then(|id| sessions.viewer(id)),
    };
    let viewer = viewer.map(|v| Viewer {
        theme: theme_of(headers),
        ..v
    });
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    let Some(viewer) = viewer else {
        if safe {
            let next = req.uri().path_and_query().map_or("/", |p| p.as_str());
            return Redirect::to(&format!("/ui/login?next={}", encode(next))).into_response();
        }
        return (StatusCode::UNAUTHORIZED, "log in first").into_response();
    };
    if !safe && cross_site(headers) {
        return (
            StatusCode::FORBIDDEN,
            "a form of another site cannot act here",
        )
            .into_response();
    }
    req.extensions_mut().insert(viewer);
    next.run(req).await
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where to go after logging in: a path of this site only (never `//host` or a URL).
fn local_target(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/ui/events"
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    chrome: Chrome,
    error: Option<&'a str>,
    next: &'a str,
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

/// `GET /ui/login`.
pub async fn login_form(Query(q): Query<LoginQuery>) -> Response {
    render(
        StatusCode::OK,
        &LoginPage {
            chrome: Chrome::bare(),
            error: None,
            next: local_target(&q.next),
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
    #[serde(default)]
    next: String,
}

/// `POST /ui/login`: a valid token opens a session.
pub async fn login(
    Extension(sessions): Extension<Arc<Sessions>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = local_target(&f.next);
    if cross_site(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "a form of another site cannot log in here",
        )
            .into_response();
    }
    let Some(access) = sessions.tokens.check(f.token.trim()) else {
        tracing::info!("UI login refused: unknown token");
        return render(
            StatusCode::UNAUTHORIZED,
            &LoginPage {
                chrome: Chrome::bare(),
                error: Some("That token is not one of this server's API tokens."),
                next,
            },
        );
    };
    let (id, _) = match sessions.open(access) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot draw a session id");
            return (StatusCode::INTERNAL_SERVER_ERROR, "cannot open a session").into_response();
        }
    };
    let cookie = format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        LIFETIME.as_secs()
    );
    let mut res = Redirect::to(next).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[derive(Debug, Deserialize)]
pub struct ThemeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    theme: String,
}

/// `POST /ui/theme`: keeps the chosen theme in a cookie (a year) and goes back to the page
/// the form was on.
pub async fn set_theme(
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    Form(f): Form<ThemeForm>,
) -> Response {
    if let Some(refused) = csrf_refused(&viewer, &f.csrf) {
        return refused;
    }
    let Some(theme) = THEMES.into_iter().find(|t| *t == f.theme) else {
        return (
            StatusCode::BAD_REQUEST,
            format!("theme: {:?} is not auto, light or dark", f.theme),
        )
            .into_response();
    };
    // Back where the form was: the Referer's path on this site.
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.split_once("://").map(|(_, rest)| rest))
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .map_or("/ui/events", local_target);
    let mut res = Redirect::to(back).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{THEME_COOKIE}={theme}; SameSite=Strict; Path=/; Max-Age=31536000"
    )) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

/// The 403 for a form whose CSRF token is not the session's; None when it is.
fn csrf_refused(viewer: &Viewer, presented: &str) -> Option<Response> {
    (!csrf_ok(viewer, presented)).then(|| {
        (
            StatusCode::FORBIDDEN,
            "the form's CSRF token does not match the session",
        )
            .into_response()
    })
}

/// Whether a form's CSRF token is the session's.
pub fn csrf_ok(viewer: &Viewer, presented: &str) -> bool {
    viewer
        .csrf
        .as_deref()
        .is_some_and(|c| !presented.is_empty() && c == presented)
}

/// A form that changes something: its CSRF token must be the session's, and the session's
/// token must be one that writes. The refusal when not.
pub fn refuse_write(viewer: &Viewer, csrf: &str) -> Option<Response> {
    if let Some(refused) = csrf_refused(viewer, csrf) {
        return Some(refused);
    }
    if !viewer.can_write() {
        return Some((StatusCode::FORBIDDEN, "this token is read-only").into_response());
    }
    None
}

/// `POST /ui/logout`.
pub async fn logout(
    Extension(sessions): Extension<Arc<Sessions>>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = csrf_refused(&viewer, &f.csrf) {
        return refused;
    }
    if let Some(id) = session_id(&headers) {
        sessions.close(id);
    }
    let mut res = Redirect::to("/ui/login").into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "crashscope_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        ),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(local_target("/ui/events?q=x"), "/ui/events?q=x");
        assert_eq!(local_target("//evil.example/"), "/ui/events");
        assert_eq!(local_target("https://evil.example/"), "/ui/events");
        assert_eq!(local_target("/\\evil.example"), "/ui/events");
        assert_eq!(local_target(""), "/ui/events");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; crashscope_session=abc; b=2"),
        );
        assert_eq!(session_id(&h), Some("abc"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(!cross_site(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(cross_site(&h));
    }

    #[test]
    fn a_login_target_keeps_its_query_through_the_redirect() {
        assert_eq!(
            encode("/ui/events?q=a b&x=1"),
            "/ui/events%3Fq%3Da%20b%26x%3D1"
        );
    }
}
