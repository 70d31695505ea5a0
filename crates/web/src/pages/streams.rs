//! A capture's I/O streams (`/ui/captures/{id}/io`): every conversation — a process's fd, with
//! its reads and writes counted in turns and bytes — and one followed in order, reads and
//! writes told apart by label and colour, as printable text or a hex dump, one direction or
//! both, a page of turns at a time with a link from each turn to the next. What Stratoshark's
//! "Follow stream" and sysdig's `echo_fds` show, from the capture's snapshots.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use crashscope_inspect::views::io::{hex_dump, printable, Turn};
use crashscope_server::api::capture_views;
use crashscope_server::AppState;
use serde::Deserialize;

use super::captures::CaptureScope;
use super::{query_string, render, say, Chrome};
use crate::session::Viewer;

/// Turns on a page.
pub const TURNS_PAGE: usize = 200;

#[derive(Debug, Default, Clone, Deserialize)]
pub struct StreamQuery {
    /// The filter and window (read by their own extractor; kept here for links).
    #[serde(skip)]
    scope: CaptureScope,
    /// The conversation followed: `PID/FD` (the busiest when absent).
    #[serde(default)]
    conv: String,
    /// both, read or write.
    #[serde(default)]
    dir: String,
    /// printable or hex.
    #[serde(default)]
    mode: String,
    /// Turns of the followed conversation skipped (its earlier pages).
    #[serde(default)]
    skip: usize,
}

/// A process's fd and what went through it.
pub struct Conversation {
    pub key: String,
    pub process: String,
    pub pid: i64,
    pub fd: String,
    pub name: String,
    pub turns: usize,
    pub read: u64,
    pub written: u64,
    pub link: String,
    pub current: bool,
}

/// One turn as the page shows it.
pub struct Shown {
    pub n: usize,
    pub time: String,
    pub write: bool,
    pub size: String,
    pub text: String,
}

#[derive(Template)]
#[template(path = "capture_io.html")]
struct StreamsPage {
    chrome: Chrome,
    id: i64,
    q: StreamQuery,
    /// The scope form's fields (`_capture_scope.html`).
    filter: String,
    from: String,
    to: String,
    conversations: Vec<Conversation>,
    current: Option<usize>,
    turns: Vec<Shown>,
    /// Turns of the followed conversation in the chosen direction.
    total: usize,
    read: u64,
    written: u64,
    older: Option<String>,
    newer: Option<String>,
    /// Links to the same conversation in each direction and mode: (label, link, chosen).
    dirs: Vec<(&'static str, String, bool)>,
    modes: Vec<(&'static str, String, bool)>,
    left_out: u64,
    error: Option<String>,
}

fn key(t: &Turn) -> String {
    match t.fd {
        Some(fd) => format!("{}/{fd}", t.pid),
        None => format!("{}/-", t.pid),
    }
}

impl StreamQuery {
    /// This page with some fields changed (`skip` back to the first page unless given).
    fn with(&self, changes: &[(&str, &str)]) -> String {
        let mut q = self.clone();
        q.skip = 0;
        for (k, v) in changes {
            let v = (*v).to_string();
            match *k {
                "conv" => q.conv = v,
                "dir" => q.dir = v,
                "mode" => q.mode = v,
                "skip" => q.skip = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        let skip = q.skip.to_string();
        let [f, a, b] = q.scope.pairs();
        let pairs = [
            f,
            a,
            b,
            ("conv", &q.conv),
            ("dir", &q.dir),
            ("mode", &q.mode),
            ("skip", if q.skip > 0 { &skip } else { "" }),
        ];
        format!("?{}", query_string(&pairs))
    }

    fn hex(&self) -> bool {
        self.mode == "hex"
    }

    fn wants(&self, t: &Turn) -> bool {
        match self.dir.as_str() {
            "read" => !t.write,
            "write" => t.write,
            _ => true,
        }
    }
}

/// The conversations of `turns`, the busiest (bytes both ways) first.
fn conversations(turns: &[Turn], q: &StreamQuery) -> Vec<Conversation> {
    let mut by: BTreeMap<String, Conversation> = BTreeMap::new();
    for t in turns {
        let k = key(t);
        let c = by.entry(k.clone()).or_insert_with(|| Conversation {
            link: q.with(&[("conv", &k)]),
            key: k,
            process: t.process.clone(),
            pid: t.pid,
            fd: t.fd.map(|f| f.to_string()).unwrap_or_default(),
            name: t.name.clone(),
            turns: 0,
            read: 0,
            written: 0,
            current: false,
        });
        c.turns += 1;
        if t.write {
            c.written += t.moved;
        } else {
            c.read += t.moved;
        }
        // An fd's name is known once it is opened; keep the last one seen.
        if !t.name.is_empty() {
            c.name = t.name.clone();
        }
    }
    let mut all: Vec<Conversation> = by.into_values().collect();
    all.sort_by(|a, b| {
        (b.read + b.written, b.turns, &a.key).cmp(&(a.read + a.written, a.turns, &b.key))
    });
    all
}

fn shown(n: usize, t: &Turn, hex: bool) -> Shown {
    let size = if (t.data.len() as u64) < t.moved {
        format!("{} bytes ({} captured)", t.moved, t.data.len())
    } else {
        format!("{} bytes", t.moved)
    };
    Shown {
        n,
        time: crashscope_inspect::report::Cell::Time(t.ts).text(),
        write: t.write,
        size,
        text: if hex {
            hex_dump(&t.data)
        } else {
            printable(&t.data)
        },
    }
}

/// `GET /ui/captures/{id}/io`.
pub async fn page(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<i64>,
    Query(q): Query<StreamQuery>,
    Query(scope): Query<CaptureScope>,
) -> Response {
    let params = scope.params();
    let q = StreamQuery { scope, ..q };
    let mut page = StreamsPage {
        chrome: Chrome::for_viewer("captures", &viewer),
        id,
        q: q.clone(),
        filter: q.scope.filter.clone(),
        from: q.scope.from.clone(),
        to: q.scope.to.clone(),
        conversations: Vec::new(),
        current: None,
        turns: Vec::new(),
        total: 0,
        read: 0,
        written: 0,
        older: None,
        newer: None,
        dirs: Vec::new(),
        modes: Vec::new(),
        left_out: 0,
        error: None,
    };
    let (collected, _) = match capture_views::turns(&app, id, params).await {
        Ok(c) => c,
        Err(e) => {
            page.error = Some(say(&e));
            return render(e.status, &page);
        }
    };
    page.left_out = collected.left_out;
    page.conversations = conversations(&collected.turns, &q);
    let current = if q.conv.is_empty() {
        page.conversations.first().map(|c| c.key.clone())
    } else {
        Some(q.conv.clone())
    };
    let Some(current) = current else {
        return render(StatusCode::OK, &page);
    };
    page.q.conv = current.clone();
    page.current = page.conversations.iter().position(|c| c.key == current);
    if let Some(i) = page.current {
        page.conversations[i].current = true;
    }
    let followed: Vec<&Turn> = collected
        .turns
        .iter()
        .filter(|t| key(t) == current && q.wants(t))
        .collect();
    page.total = followed.len();
    page.read = followed.iter().filter(|t| !t.write).map(|t| t.moved).sum();
    page.written = followed.iter().filter(|t| t.write).map(|t| t.moved).sum();
    let skip = q.skip.min(followed.len());
    page.turns = followed
        .iter()
        .enumerate()
        .skip(skip)
        .take(TURNS_PAGE)
        .map(|(n, t)| shown(n + 1, t, q.hex()))
        .collect();
    let q = &page.q;
    if skip > 0 {
        let back = skip.saturating_sub(TURNS_PAGE).to_string();
        page.newer = Some(q.with(&[("skip", &back)]));
    }
    if skip + TURNS_PAGE < followed.len() {
        let next = (skip + TURNS_PAGE).to_string();
        page.older = Some(q.with(&[("skip", &next)]));
    }
    page.dirs = [("both ways", ""), ("reads", "read"), ("writes", "write")]
        .into_iter()
        .map(|(label, d)| (label, q.with(&[("dir", d)]), q.dir == d))
        .collect();
    page.modes = [("printable", ""), ("hex", "hex")]
        .into_iter()
        .map(|(label, m)| (label, q.with(&[("mode", m)]), q.mode == m))
        .collect();
    render(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(pid: i64, fd: i64, write: bool, data: &[u8]) -> Turn {
        Turn {
            ts: 1_800_000_000_000_000_000,
            process: "nginx".into(),
            pid,
            fd: Some(fd),
            name: format!("fd{fd}"),
            write,
            moved: data.len() as u64,
            data: data.to_vec(),
        }
    }

    #[test]
    fn conversations_are_counted_per_process_fd_and_the_busiest_comes_first() {
        let turns = [
            turn(1, 3, false, b"GET / HTTP/1.1\r\n"),
            turn(1, 3, true, b"HTTP/1.1 502 Bad Gateway\r\n"),
            turn(2, 3, true, b"x"),
        ];
        let c = conversations(&turns, &StreamQuery::default());
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].key.as_str(), c[0].turns), ("1/3", 2));
        assert_eq!((c[0].read, c[0].written), (16, 26));
        assert_eq!(c[0].link, "?conv=1%2F3");
        assert_eq!(c[1].key, "2/3");
    }

    #[test]
    fn a_turn_is_shown_as_text_or_hex_and_says_when_the_capture_cut_it() {
        let mut t = turn(1, 3, true, b"ok\n\x01");
        t.moved = 100;
        let s = shown(1, &t, false);
        assert_eq!(s.text, "ok\n.");
        assert_eq!(s.size, "100 bytes (4 captured)");
        assert!(shown(1, &t, true).text.starts_with("00000000  6f 6b 0a 01"));
        let q = StreamQuery {
            dir: "read".into(),
            ..StreamQuery::default()
        };
        assert!(!q.wants(&t));
    }
}
