//! Live updates of the events feed: `GET /ui/events/live?after=ID&…filters` is a stream of
//! Server-Sent Events saying how many events matching the feed's filters arrived after the
//! newest one on the page. Each message's id is the newest event's id (the feed's cursor),
//! so a reconnecting browser (`Last-Event-ID`) resumes exactly. The page shows a "N new
//! events" pill and never moves rows under the reader's eyes.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use crashscope_server::api::events;
use crashscope_server::AppState;
use futures::Stream;
use serde::Deserialize;

use super::events::Filters;

/// How often the store is asked for new events.
pub const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Default, Deserialize)]
pub struct LiveQuery {
    #[serde(default)]
    after: i64,
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
        .and_then(|v| v.parse::<i64>().ok());
    let after = resumed.unwrap_or(q.after);
    Sse::new(updates(app, f, after))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn updates(app: AppState, f: Filters, after: i64) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold((app, f, after), |(app, f, mut after)| async move {
        loop {
            tokio::time::sleep(POLL).await;
            let mut params = f.params();
            params.cursor = None;
            params.limit = Some(1000);
            let Ok(page) = events::query(&app, params).await else {
                continue;
            };
            let new = page.items.iter().filter(|e| e.id > after).count();
            if new == 0 {
                continue;
            }
            after = page.items.iter().map(|e| e.id).max().unwrap_or(after);
            let message = Event::default()
                .event("new")
                .id(after.to_string())
                .data(new.to_string());
            return Some((Ok(message), (app, f, after)));
        }
    })
}
