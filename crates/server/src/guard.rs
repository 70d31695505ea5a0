//! What every request passes through around its handler: limits on the URI and headers, a
//! deadline, a panic catch, and JSON for every rejection — so that no input drops a
//! connection without an answer or gets a plain-text error a client cannot parse.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// Longest URI accepted (path and query).
pub const MAX_URI: usize = 8 * 1024;
/// Most header bytes accepted (names and values).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// How long a request may take; long-polls wait at most 60 s.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(90);
/// How long a capture upload may take (a 256 MiB file over a slow link).
pub const UPLOAD_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// The layer itself: `from_fn_with_state(metrics, guard::request)`.
pub async fn request(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v != "0");
    let answer = guarded(metrics, req, next).await;
    let mut response = as_json(answer).await;
    // A refusal may leave the request's body unread; say the connection ends, so a
    // keep-alive client does not send its next request into a connection being closed.
    if has_body && (response.status().is_client_error() || response.status().is_server_error()) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn guarded(metrics: Arc<Metrics>, req: Request, next: Next) -> Response {
    let uri_len = req.uri().path().len() + req.uri().query().map_or(0, |q| q.len() + 1);
    if uri_len > MAX_URI {
        return reject(
            StatusCode::URI_TOO_LONG,
            format!("the URI is longer than {MAX_URI} bytes"),
        );
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return reject(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the headers are larger than {MAX_HEADER_BYTES} bytes"),
        );
    }
    let deadline = if req.method() == Method::POST && req.uri().path() == "/api/v1/captures" {
        UPLOAD_DEADLINE
    } else {
        REQUEST_DEADLINE
    };
    let route = req.uri().path().to_string();
    let answer = tokio::time::timeout(deadline, AssertUnwindSafe(next.run(req)).catch_unwind());
    match answer.await {
        Ok(Ok(r)) => r,
        Ok(Err(panic)) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            metrics.handler_panic();
            tracing::error!(route, panic = what, "a request handler panicked");
            ApiError::internal("the request", &"a handler panicked").into_response()
        }
        Err(_) => reject(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the request took longer than {}s and was stopped",
                deadline.as_secs()
            ),
        ),
    }
}

fn reject(status: StatusCode, message: String) -> Response {
    ApiError {
        status,
        message,
        field: None,
    }
    .into_response()
}

/// Rejections made by axum's extractors (a body too large, a wrong method) are plain
/// text; an error answer is always JSON, except a web page's (HTML, for a person).
async fn as_json(r: Response) -> Response {
    let is_error = r.status().is_client_error() || r.status().is_server_error();
    let typed = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !is_error || typed {
        return r;
    }
    let (parts, body) = r.into_parts();
    // Plain-text rejections are a line or two; more than that is not a rejection's text.
    let text = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        parts
            .status
            .canonical_reason()
            .unwrap_or("error")
            .to_string()
    } else {
        text
    };
    let mut out = reject(parts.status, message);
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    /// A handler that panics answers a JSON 500 and the connection keeps serving.
    #[tokio::test]
    async fn a_panicking_handler_is_a_json_500_not_a_dropped_connection() {
        let metrics = Arc::new(Metrics::new());
        let app = axum::Router::new()
            .route(
                "/boom",
                get(|| async {
                    let v: Vec<u8> = Vec::new();
                    // An index out of bounds, as an arithmetic bug on a parameter would be.
                    v[usize::from(v.is_empty())].to_string()
                }),
            )
            .route("/ok", get(|| async { "fine" }))
            .layer(axum::middleware::from_fn_with_state(
                metrics.clone(),
                request,
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();
        let r = client
            .get(format!("http://{addr}/boom"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 500);
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("failed"));
        let r = client
            .get(format!("http://{addr}/ok"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), "fine");
        assert!(metrics
            .render()
            .contains("crashscope_handler_panics_total 1"));
    }
}
