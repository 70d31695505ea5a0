//! Capture files: the index, uploads from node agents (with the capture request they
//! fulfil), downloads for `crashscope inspect`, and the requests agents poll for.

use std::path::PathBuf;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use crashscope_model::capture::{RequestEvent, RequestState};
use crashscope_store::{CaptureRecord, CaptureRequest, Store as _, StoreError};
use jiff::Timestamp;
use serde::Deserialize;

use super::params;
use super::views::Items;
use super::AppState;
use crate::error::{ApiError, JsonBody, PathId, QueryParams};

/// Largest capture accepted from an agent (the flight recorder keeps at most 64 MiB per
/// container; the file adds its process list).
pub const MAX_CAPTURE: usize = 256 << 20;

pub async fn list(State(app): State<AppState>) -> Result<Json<Items<CaptureRecord>>, ApiError> {
    Ok(Json(Items {
        items: app.store.captures().await?,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestParams {
    state: Option<String>,
    /// Only requests with a larger id (what an agent has not seen yet).
    after: Option<i64>,
    /// When none match, wait up to this long (at most 60s) for one to be made: agents
    /// long-poll instead of asking every few seconds.
    wait: Option<String>,
}

/// Longest a long-poll of capture requests is held.
const LONGEST_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

pub async fn requests(
    State(app): State<AppState>,
    QueryParams(p): QueryParams<RequestParams>,
) -> Result<Json<Items<CaptureRequest>>, ApiError> {
    let state = p
        .state
        .as_deref()
        .map(|s| {
            RequestState::parse(s).ok_or_else(|| {
                ApiError::bad_request(
                    "state",
                    format!("state {s:?} is not one of requested, taking, taken, failed"),
                )
            })
        })
        .transpose()?;
    let wait = p
        .wait
        .as_deref()
        .map(|w| params::duration("wait", w))
        .transpose()?
        .unwrap_or_default()
        .min(LONGEST_WAIT);
    let mut changes = app.store.watch_requests();
    let mut stopping = app.stopping.clone();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let items: Vec<CaptureRequest> = app
            .store
            .capture_requests(state)
            .await?
            .into_iter()
            .filter(|r| p.after.is_none_or(|a| r.id > a))
            .collect();
        if !items.is_empty() || tokio::time::Instant::now() >= deadline || *stopping.borrow() {
            return Ok(Json(Items { items }));
        }
        // A request made meanwhile wakes the poll; the deadline or the server's stop ends it
        // empty.
        tokio::select! {
            r = tokio::time::timeout_at(deadline, changes.changed()) => {
                if r.is_err() {
                    return Ok(Json(Items { items: Vec::new() }));
                }
            }
            _ = stopping.wait_for(|s| *s) => return Ok(Json(Items { items: Vec::new() })),
        }
    }
}

/// A capture asked for by hand (alert actions make them too).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    pub namespace: String,
    pub pod: String,
    /// One container; all of the pod's when absent.
    pub container: Option<String>,
    /// How long a running container is recorded before its window is copied (default 10s).
    pub duration: Option<String>,
}

/// `POST /api/v1/capture-requests`: asks the recorder of the pod's node for a capture.
pub async fn create_request(
    State(app): State<AppState>,
    JsonBody(b): JsonBody<NewRequest>,
) -> Result<(StatusCode, Json<CaptureRequest>), ApiError> {
    let req = request(&app, b).await?;
    Ok((StatusCode::CREATED, Json(req)))
}

/// Checks and stores a capture request, as `POST /api/v1/capture-requests` does.
pub async fn request(app: &AppState, b: NewRequest) -> Result<CaptureRequest, ApiError> {
    if b.namespace.is_empty() || b.pod.is_empty() {
        return Err(ApiError::bad_request(
            "pod",
            "a capture request names a namespace and a pod",
        ));
    }
    let wait = b
        .duration
        .as_deref()
        .map(|d| params::duration("duration", d))
        .transpose()?
        .unwrap_or(std::time::Duration::from_secs(10));
    let ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
    let req = app
        .store
        .request_capture(
            None,
            &b.namespace,
            &b.pod,
            b.container.as_deref(),
            ms,
            Timestamp::now(),
        )
        .await?;
    Ok(req)
}

/// An agent's word on a request: it takes it, or could not fulfil it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestUpdate {
    /// `taking` or `failed`: `taken` comes with the capture itself.
    state: String,
}

/// `PATCH /api/v1/capture-requests/{id}`: an agent takes a request (so the server shows it
/// being taken), or gives it up (nothing of the pod was recorded within the time it waited).
pub async fn update_request(
    State(app): State<AppState>,
    PathId(id): PathId,
    JsonBody(u): JsonBody<RequestUpdate>,
) -> Result<Json<CaptureRequest>, ApiError> {
    let event = match RequestState::parse(&u.state) {
        Some(RequestState::Taking) => RequestEvent::Claimed,
        Some(RequestState::Failed) => RequestEvent::GaveUp,
        _ => {
            return Err(ApiError::bad_request(
                "state",
                "state can only be set to taking or failed (a capture sent with request=ID \
                 marks it taken)",
            ))
        }
    };
    match app
        .store
        .move_capture_request(id, event, None, Timestamp::now())
        .await
    {
        Ok(Some(req)) => Ok(Json(req)),
        Ok(None) => Err(ApiError::not_found(format!("no capture request {id}"))),
        Err(StoreError::Refused { detail, .. }) => Err(ApiError::conflict(detail)),
        Err(e) => Err(e.into()),
    }
}

/// What an agent says about the capture it sends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    namespace: String,
    pod: String,
    container: String,
    restart: Option<i64>,
    /// The window the capture covers (RFC 3339).
    from: String,
    to: String,
    #[serde(default)]
    events: i64,
    #[serde(default)]
    drops: i64,
    /// crash, request or manual.
    reason: Option<String>,
    /// The capture request this fulfils.
    request: Option<i64>,
    /// The node it was recorded on.
    node: Option<String>,
    /// The cluster of that node (several clusters feeding one server).
    cluster: Option<String>,
}

fn time(field: &str, v: &str) -> Result<Timestamp, ApiError> {
    let t: Timestamp = v
        .parse()
        .map_err(|e| ApiError::bad_request(field, format!("{field}: not an RFC 3339 time: {e}")))?;
    crashscope_model::time_range::check(t)
        .map_err(|e| ApiError::bad_request(field, format!("{field}: {e}")))
}

/// Keeps names from clients to characters that are safe in a file name.
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect()
}

/// Streams an upload (a request's body, a form's file) into a new private file under `dir`,
/// checking that it starts as a capture and stays under [`MAX_CAPTURE`]; the file is removed
/// if anything fails.
async fn receive<S, E>(
    dir: &std::path::Path,
    mut stream: S,
) -> Result<(tempfile::NamedTempFile, i64), ApiError>
where
    S: futures::Stream<Item = Result<axum::body::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let store_err = |e: &dyn std::fmt::Display| ApiError::internal("storing the capture", e);
    let file = {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || {
            crashscope_store::private::dir(&dir)?;
            tempfile::Builder::new()
                .prefix("capture-")
                .suffix(".scap")
                .tempfile_in(&dir)
        })
        .await
        .map_err(|e| store_err(&e))?
        .map_err(|e| store_err(&e))?
    };
    let mut out = file
        .as_file()
        .try_clone()
        .map(tokio::fs::File::from_std)
        .map_err(|e| store_err(&e))?;
    let mut head: Vec<u8> = Vec::with_capacity(12);
    let mut total: usize = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request("body", format!("the upload ended early: {e}")))?;
        total += chunk.len();
        if total > MAX_CAPTURE {
            return Err(ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                message: format!("a capture may be at most {} MiB", MAX_CAPTURE >> 20),
                field: Some("body".into()),
            });
        }
        if head.len() < 12 {
            head.extend(chunk.iter().take(12 - head.len()));
            if head.len() == 12 && !is_scap(&head) {
                return Err(not_scap());
            }
        }
        out.write_all(&chunk).await.map_err(|e| store_err(&e))?;
    }
    if !is_scap(&head) {
        return Err(not_scap());
    }
    out.sync_data().await.map_err(|e| store_err(&e))?;
    Ok((file, i64::try_from(total).unwrap_or(i64::MAX)))
}

fn not_scap() -> ApiError {
    ApiError::bad_request(
        "body",
        "the body is not a .scap capture (no section header block, not gzip)",
    )
}

/// A `.scap` starts with a section header block: type 0x0A0D0D0A, then (after the length)
/// the byte-order magic 0x1A2B3C4D; `sysdig -z` writes it gzip'd.
fn is_scap(b: &[u8]) -> bool {
    let plain = b.len() >= 12
        && b[0..4] == [0x0A, 0x0D, 0x0D, 0x0A]
        && b[8..12] == [0x4D, 0x3C, 0x2B, 0x1A];
    plain || b.starts_with(&[0x1f, 0x8b])
}

pub async fn upload(
    State(app): State<AppState>,
    QueryParams(p): QueryParams<UploadParams>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let from = time("from", &p.from)?;
    let to = time("to", &p.to)?;
    if to < from {
        return Err(ApiError::bad_request("to", "to is before from"));
    }
    let reason = p.reason.unwrap_or_else(|| "crash".into());
    if !["crash", "request", "manual"].contains(&reason.as_str()) {
        return Err(ApiError::bad_request(
            "reason",
            "reason must be crash, request or manual",
        ));
    }
    if let Some(id) = p.request {
        if app.store.capture_request(id).await?.is_none() {
            return Err(ApiError::bad_request(
                "request",
                format!("no capture request {id}"),
            ));
        }
    }
    // Uploads wait their turn rather than each holding a file and a connection's buffers.
    let _turn = app
        .uploads
        .acquire()
        .await
        .map_err(|e| ApiError::internal("waiting to store the capture", &e))?;
    let (file, bytes) = receive(&app.captures_dir, body.into_data_stream()).await?;
    tracing::info!(
        node = p.node.as_deref().unwrap_or("?"),
        namespace = p.namespace,
        pod = p.pod,
        bytes,
        "capture received"
    );
    let now = Timestamp::now();
    // The file's name is unique (made with O_EXCL), never derived from what the client
    // says: two uploads of the same container in one millisecond are two captures.
    let path = file
        .keep()
        .map_err(|e| ApiError::internal("storing the capture", &e.error))?
        .1;
    let rec = CaptureRecord {
        cluster: p.cluster.clone(),
        id: 0,
        path: path.display().to_string(),
        namespace: Some(p.namespace),
        pod: Some(p.pod),
        container: Some(p.container),
        restart: p.restart,
        window_from: from,
        window_to: to,
        bytes,
        events: p.events,
        drops: p.drops,
        reason,
        created_at: now,
    };
    let id = app.store.index_capture(&rec).await?;
    note_capture(&app.store, &rec, id).await;
    if let Some(req) = p.request {
        let moved = app
            .store
            .move_capture_request(req, RequestEvent::Captured, Some(&rec.path), now)
            .await;
        // The capture is kept and indexed whatever became of its request meanwhile.
        match moved {
            Err(StoreError::Refused { detail, .. }) => {
                tracing::warn!("capture {id} for request {req}: {detail}")
            }
            other => drop(other?),
        }
    }
    Ok((StatusCode::CREATED, Json(CaptureRecord { id, ..rec })).into_response())
}

/// Puts capture `id` on the feed; a failure is logged (the capture is stored and indexed
/// whatever becomes of its event).
async fn note_capture(store: &crashscope_store::SqlStore, rec: &CaptureRecord, id: i64) {
    if let Err(e) = store.upsert_event(&capture_event(rec, id)).await {
        tracing::warn!(error = %e, id, "cannot put the stored capture on the feed");
    }
}

/// The feed's record of capture `id` stored: its pod and container, its window and size.
fn capture_event(rec: &CaptureRecord, id: i64) -> crashscope_model::Event {
    use crashscope_model::{EventType, Severity};
    let whose = match (&rec.pod, &rec.container) {
        (Some(p), Some(c)) => format!(" of {p}/{c}"),
        (Some(p), None) => format!(" of {p}"),
        _ => String::new(),
    };
    let restart = rec
        .restart
        .map(|r| format!(", restart {r}"))
        .unwrap_or_default();
    crashscope_model::Event {
        source: crashscope_model::event::SOURCE_CAPTURE.into(),
        reporter: Some("crashscope, captures".into()),
        reason: "CaptureStored".into(),
        message: format!(
            "Capture #{id}{whose} ({}{restart}): {} events from {} to {}, {} bytes{}",
            rec.reason,
            rec.events,
            rec.window_from,
            rec.window_to,
            rec.bytes,
            if rec.drops > 0 {
                format!(", {} dropped", rec.drops)
            } else {
                String::new()
            }
        ),
        event_type: EventType::Normal,
        severity: Severity::Info,
        scope: crashscope_model::Scope {
            cluster: rec.cluster.clone(),
            node: None,
            namespace: rec.namespace.clone(),
            workload: None,
            pod: rec.pod.clone(),
            container: rec.container.clone(),
        },
        involved: None,
        count: 1,
        first_seen: rec.created_at,
        last_seen: rec.created_at,
        source_id: Some(format!("capture-{id}")),
        tags: [("capture".to_string(), id.to_string())].into(),
    }
}

/// Who a capture uploaded by hand (from the web UI) is of, when the person says.
#[derive(Debug, Default, Clone)]
pub struct Manual {
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub container: Option<String>,
}

/// Stores a capture someone uploads by hand: its window and event count are read from the
/// file itself (which must be one crashscope can read: the refusal says what is wrong with
/// it), its reason is `manual`.
pub async fn store_manual<S, E>(
    app: &AppState,
    stream: S,
    who: Manual,
) -> Result<CaptureRecord, ApiError>
where
    S: futures::Stream<Item = Result<axum::body::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let _turn = app
        .uploads
        .acquire()
        .await
        .map_err(|e| ApiError::internal("waiting to store the capture", &e))?;
    let (file, bytes) = receive(&app.captures_dir, stream).await?;
    let probe = file.path().to_path_buf();
    let index = tokio::task::spawn_blocking(move || {
        crashscope_inspect::index::Index::load_or_build(&probe).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::internal("reading the capture", &e))?;
    let refused = |file: &tempfile::NamedTempFile| {
        // The file goes with the temporary; its cached index must go too.
        let _ = std::fs::remove_file(crashscope_inspect::index::index_path(file.path()));
    };
    let index = match index {
        Ok(i) if i.events > 0 => i,
        Ok(i) => {
            refused(&file);
            let why = i.damage.unwrap_or_else(|| "it holds no event".into());
            return Err(ApiError::bad_request(
                "file",
                format!("crashscope cannot read this capture: {why}"),
            ));
        }
        Err(e) => {
            refused(&file);
            return Err(ApiError::bad_request(
                "file",
                format!("crashscope cannot read this capture: {e}"),
            ));
        }
    };
    let at = |ns: Option<u64>| {
        ns.and_then(|n| Timestamp::from_nanosecond(i128::from(n)).ok())
            .unwrap_or_else(Timestamp::now)
    };
    let path = file
        .keep()
        .map_err(|e| ApiError::internal("storing the capture", &e.error))?
        .1;
    // Kept under the name it was written to: the index built beside it stays valid.
    let rec = CaptureRecord {
        cluster: None,
        id: 0,
        path: path.display().to_string(),
        namespace: who.namespace,
        pod: who.pod,
        container: who.container,
        restart: None,
        window_from: at(index.first_ts),
        window_to: at(index.last_ts),
        bytes,
        events: i64::try_from(index.events).unwrap_or(i64::MAX),
        drops: 0,
        reason: "manual".into(),
        created_at: Timestamp::now(),
    };
    let id = match app.store.index_capture(&rec).await {
        Ok(id) => id,
        Err(e) => {
            // Not indexed, not kept: the file would be nobody's.
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(crashscope_inspect::index::index_path(&path));
            return Err(e.into());
        }
    };
    note_capture(&app.store, &rec, id).await;
    tracing::info!(id, bytes, "capture uploaded by hand");
    Ok(CaptureRecord { id, ..rec })
}

/// The capture file itself.
pub async fn file(State(app): State<AppState>, PathId(id): PathId) -> Result<Response, ApiError> {
    let Some(rec) = app.store.capture(id).await? else {
        return Err(ApiError::not_found(format!("no capture {id}")));
    };
    let path = PathBuf::from(&rec.path);
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::not_found(format!(
                "capture {id} is indexed but its file is gone"
            )))
        }
        Err(e) => return Err(ApiError::internal("reading the capture", &e)),
    };
    // Named for what it holds; the stored name is only unique.
    let name = [
        rec.namespace.as_deref(),
        rec.pod.as_deref(),
        rec.container.as_deref(),
    ]
    .iter()
    .flatten()
    .map(|s| safe(s))
    .chain(rec.restart.map(|r| r.to_string()))
    .chain(std::iter::once(id.to_string()))
    .collect::<Vec<_>>()
    .join("_");
    let chunks = futures::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.scap\""),
            ),
        ],
        axum::body::Body::from_stream(chunks),
    )
        .into_response())
}
