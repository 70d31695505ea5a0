//! Live updates of the events feed: `GET /ui/events/live?after=CURSOR&…filters` is a stream
//! of Server-Sent Events saying how many events matching the feed's filters are newer in the
//! feed than the newest one on the page — new ones, and repeats of shown ones (a BackOff seen
//! again moves to the top of the feed, and counts). Each message's id is the feed cursor of
//! the newest event told, so a reconnecting browser (`Last-Event-ID`) resumes exactly. The
//! page shows a "N new events" pill and never moves rows under the reader's eyes.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use crashscope_server::api::events;
use crashscope_server::AppState;
use crashscope_store::Cursor;
use futures::Stream;
use serde::Deserialize;

use super::events::Filters;

/// How often the store is asked for new events.
pub const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Default, Deserialize)]
pub struct LiveQuery {
    /// The feed cursor of the newest event shown (empty: the feed's start).
    #[serde(default)]
    after: String,
}

/// Where counting starts: a cursor as the feed hands them out; anything else is the start.
fn cursor(s: &str) -> Cursor {
    Cursor::decode(s).unwrap_or(Cursor {
        last_seen: i64::MIN,
        id: i64::MIN,
    })
}

/// Whether `e` comes after `c` in the feed (newer, or as new and stored later).
fn newer(e: &crashscope_store::StoredEvent, c: &Cursor) -> bool {
    let at = Cursor::after(e);
    (at.last_seen, at.id) > (c.last_seen, c.id)
}

/// `GET /ui/events/live`.
pub async fn stream(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(f): Query<Filters>,
    Query(q): Query<LiveQuery>,
) -> Response {
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(Cursor::decode);
    let after = resumed.unwrap_or_else(|| cursor(&q.after));
    Sse::new(updates(app, f, after))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn updates(
    app: AppState,
    f: Filters,
    after: Cursor,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold((app, f, after), |(app, f, mut after)| async move {
        loop {
            tokio::time::sleep(POLL).await;
            let mut params = f.params();
            params.cursor = None;
            params.limit = Some(1000);
            let Ok(page) = events::query(&app, params).await else {
                continue;
            };
            let new = page.items.iter().filter(|e| newer(e, &after)).count();
            if new == 0 {
                continue;
            }
            // The feed is newest first: its first event is the newest told.
            if let Some(first) = page.items.first() {
                after = Cursor::after(first);
            }
            let message = Event::default()
                .event("new")
                .id(after.encode())
                .data(new.to_string());
            return Some((Ok(message), (app, f, after)));
        }
    })
}
