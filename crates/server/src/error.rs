//! API errors as JSON bodies that say what was wrong with the request — never internals.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// The request field at fault, when one is.
    pub field: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    pub fn bad_request(field: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// A path's `{id}` that is not a 64-bit integer.
    pub fn bad_id() -> ApiError {
        ApiError::bad_request("id", "the id must be a 64-bit integer")
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
            field: None,
        }
    }

    /// The request cannot be done to the object as it is now (a capture request already
    /// taken cannot be claimed).
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::CONFLICT,
            message: message.into(),
            field: None,
        }
    }

    /// A failure inside the server: logged in full, answered with a generic message.
    pub fn internal(what: &str, err: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(what, %err, "request failed");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("{what} failed; the server log has the details"),
            field: None,
        }
    }
}

impl From<crashscope_store::StoreError> for ApiError {
    fn from(e: crashscope_store::StoreError) -> ApiError {
        ApiError::internal("the store", &e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: &self.message,
            field: self.field.as_deref(),
        };
        (self.status, Json(body)).into_response()
    }
}

/// A JSON body extractor whose rejections are [`ApiError`]s: malformed JSON and wrong fields
/// are 400 naming the field, too-large bodies 413, a wrong content type 415. A body sent
/// with no content type, or with the form type `curl -d` sends by default, is read as JSON:
/// that is what people paste.
pub struct JsonBody<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(mut req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        use axum::extract::rejection::JsonRejection;
        use axum::http::header::{HeaderValue, CONTENT_TYPE};
        let given = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        if matches!(
            given.as_deref(),
            None | Some("application/x-www-form-urlencoded")
        ) {
            req.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(rejection) => {
                let status = match rejection.status() {
                    StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
                    s => s,
                };
                let (message, field) = match &rejection {
                    JsonRejection::JsonDataError(e) => split_path(
                        &std::error::Error::source(e)
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| e.body_text()),
                    ),
                    JsonRejection::JsonSyntaxError(e) => (
                        format!(
                            "the body is not valid JSON: {}",
                            std::error::Error::source(e)
                                .map(|s| s.to_string())
                                .unwrap_or_else(|| e.body_text())
                        ),
                        None,
                    ),
                    JsonRejection::MissingJsonContentType(_) => (
                        "send the body as JSON with Content-Type: application/json".into(),
                        None,
                    ),
                    other if status == StatusCode::PAYLOAD_TOO_LARGE => {
                        let _ = other;
                        ("the body is larger than the server accepts".into(), None)
                    }
                    other => (other.body_text(), None),
                };
                Err(ApiError {
                    status,
                    message,
                    field,
                })
            }
        }
    }
}

/// serde_path_to_error renders `path: message`; keep the path as the field. A missing field
/// is named by the message alone (`missing field `name``): that field is the one.
fn split_path(s: &str) -> (String, Option<String>) {
    let (path, msg) = match s.split_once(": ") {
        Some((path, msg)) if !path.contains(' ') => (Some(path), msg),
        _ => (None, s),
    };
    let missing = msg
        .strip_prefix("missing field `")
        .and_then(|m| m.split_once('`'))
        .map(|(name, _)| name);
    let field = match (path.filter(|p| *p != "."), missing) {
        (Some(p), Some(m)) => Some(format!("{p}.{m}")),
        (None, Some(m)) => Some(m.to_string()),
        (Some(p), None) => Some(p.to_string()),
        (None, None) => None,
    };
    let message = match path.filter(|p| *p != ".") {
        Some(p) => format!("{p}: {msg}"),
        None => msg.to_string(),
    };
    (message, field)
}

/// A query-string extractor whose rejections are 400 [`ApiError`]s naming the parameter.
pub struct QueryParams<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for QueryParams<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded_de(q);
        de.map(QueryParams).map_err(|(field, message)| ApiError {
            status: StatusCode::BAD_REQUEST,
            message: format!("query parameter {message}"),
            field,
        })
    }
}

fn serde_urlencoded_de<T: serde::de::DeserializeOwned>(
    q: &str,
) -> Result<T, (Option<String>, String)> {
    // axum's Query uses serde_urlencoded; its errors name the field in the message.
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{q}")
            .parse()
            .map_err(|_| (None, "string is malformed".to_string()))?,
    )
    .map(|axum::extract::Query(v)| v)
    .map_err(|e| {
        let text = std::error::Error::source(&e)
            .map(|s| s.to_string())
            .unwrap_or_else(|| e.body_text());
        let field = text.split('`').nth(1).map(str::to_string);
        (field, text)
    })
}

/// The `{id}` of a path, as a 400 [`ApiError`] when it is not a 64-bit integer.
pub struct PathId(pub i64);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match axum::extract::Path::<i64>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(id)) => Ok(PathId(id)),
            Err(_) => Err(ApiError::bad_id()),
        }
    }
}
