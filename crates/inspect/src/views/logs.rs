//! `logs`: lines written to stdout/stderr and to files that look like logs (`*.log`,
//! `/var/log/...`, `/dev/log`), with process and time; error and warning lines marked.

use std::sync::OnceLock;

use regex::Regex;

use crate::event::{Ev, IoDir};
use crate::report::{Cell, Table};
use crate::scan::View;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum LogLevel {
    Error,
    Warning,
}

/// The level a log line announces, by the words and tags loggers use (nginx's `[emerg]`,
/// Python's `ERROR:`, Go's `level=error`, `panic:`, `Traceback`).
pub fn log_level(line: &str) -> Option<LogLevel> {
    static ERR: OnceLock<Option<Regex>> = OnceLock::new();
    static WARN: OnceLock<Option<Regex>> = OnceLock::new();
    let err = ERR.get_or_init(|| {
        Regex::new(
            r"(?i)\b(error|err|fatal|crit|critical|emerg|emergency|alert|panic|exception|traceback|failed|failure|refused|denied|not found|segmentation fault|killed)\b",
        )
        .ok()
    });
    let warn = WARN.get_or_init(|| Regex::new(r"(?i)\b(warn|warning|deprecated)\b").ok());
    if err.as_ref().is_some_and(|r| r.is_match(line)) {
        Some(LogLevel::Error)
    } else if warn.as_ref().is_some_and(|r| r.is_match(line)) {
        Some(LogLevel::Warning)
    } else {
        None
    }
}

/// Where a write goes when it is a log write: `stdout`, `stderr` or the log file's path.
pub fn log_target(ev: &Ev) -> Option<String> {
    let fd = ev.fd_num()?;
    let f = ev.fd();
    let name = f.map(|f| f.name.as_str()).unwrap_or("");
    // Output sent to /dev/null is thrown away: nobody can read it as a log. (Asked first:
    // a program writing to it writes a lot.)
    if name == "/dev/null" {
        return None;
    }
    let is_file = f.is_some_and(|f| f.kind == 'f');
    if is_file
        && (name.ends_with(".log")
            || name.contains("/log/")
            || name.contains("/logs/")
            || name == "/dev/log"
            || name == "/dev/kmsg")
    {
        return Some(name.to_string());
    }
    if f.is_some_and(|f| f.kind == 'u' && name.contains("/dev/log")) {
        return Some("/dev/log".into());
    }
    match fd {
        1 => Some("stdout".into()),
        2 => Some("stderr".into()),
        _ => None,
    }
}

/// Longest line kept (its beginning, marked `…` when cut): a program writing one endless
/// line a byte at a time must cost a pass over each byte, not over the line per byte.
const MAX_LINE: usize = 64 * 1024;

/// A line being written in pieces.
struct Partial {
    ts: u64,
    bytes: Vec<u8>,
    process: String,
    cut: bool,
}

impl Partial {
    fn push(&mut self, piece: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.bytes.len());
        self.bytes
            .extend_from_slice(&piece[..piece.len().min(room)]);
        self.cut |= piece.len() > room;
    }

    fn text(&self) -> String {
        let mut t = String::from_utf8_lossy(&self.bytes)
            .trim_end_matches('\r')
            .to_string();
        if self.cut {
            t.push('…');
        }
        t
    }
}

#[derive(Default)]
pub struct Logs {
    rows: Vec<Vec<Cell>>,
    /// Unfinished last line of each (pid, target), joined with the next write.
    partial: std::collections::HashMap<(i64, String), Partial>,
}

impl View for Logs {
    fn event(&mut self, ev: &Ev) {
        if ev.io() != Some(IoDir::Write) {
            return;
        }
        let Some(target) = log_target(ev) else {
            return;
        };
        let data = ev.data().unwrap_or_default();
        let truncated = (data.len() as u64) < ev.io_bytes();
        let key = (ev.pid(), target);
        let mut line = self.partial.remove(&key).unwrap_or_else(|| Partial {
            ts: ev.ts(),
            bytes: Vec::new(),
            process: ev.proc_name().to_string(),
            cut: false,
        });
        let mut lines = Vec::new();
        let mut rest = data;
        // Only the new bytes are searched for line ends.
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            line.push(&rest[..i]);
            lines.push((line.ts, line.text()));
            line.bytes.clear();
            line.cut = false;
            line.ts = ev.ts();
            rest = &rest[i + 1..];
        }
        line.push(rest);
        if truncated && !line.bytes.is_empty() {
            // The recorder kept only the start of the write: what it has is shown as a line.
            lines.push((line.ts, line.text()));
        } else if !line.bytes.is_empty() {
            self.partial.insert(key.clone(), line);
        }
        if truncated {
            if let Some((_, last)) = lines.last_mut() {
                last.push('…');
            }
        }
        for (ts, text) in lines {
            if !text.trim().is_empty() {
                self.rows.push(row(ts, ev, &key.1, &text));
            }
        }
    }

    fn finish(self: Box<Self>) -> Table {
        let mut t = Table::new("logs", &["time", "process", "pid", "file", "level", "line"]);
        t.rows = self.rows;
        let mut rest: Vec<_> = self.partial.into_iter().collect();
        rest.sort_by_key(|(_, p)| p.ts);
        for ((pid, target), p) in rest {
            let line = p.text();
            if !line.trim().is_empty() {
                t.rows.push(vec![
                    Cell::Time(p.ts),
                    p.process.into(),
                    Cell::Int(pid),
                    target.into(),
                    level_cell(&line),
                    line.into(),
                ]);
            }
        }
        t.rows.sort_by_key(|r| match r.first() {
            Some(Cell::Time(t)) => *t,
            _ => 0,
        });
        t
    }
}

fn level_cell(line: &str) -> Cell {
    match log_level(line) {
        Some(LogLevel::Error) => "error".into(),
        Some(LogLevel::Warning) => "warning".into(),
        None => Cell::Empty,
    }
}

fn row(ts: u64, ev: &Ev, target: &str, line: &str) -> Vec<Cell> {
    vec![
        Cell::Time(ts),
        ev.proc_name().into(),
        Cell::Int(ev.pid()),
        target.into(),
        level_cell(line),
        line.into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_of_real_log_lines() {
        let nginx = r#"2024/05/01 10:00:00 [emerg] 1#1: host not found in upstream "flask" in /etc/nginx/conf.d/default.conf:3"#;
        assert_eq!(log_level(nginx), Some(LogLevel::Error));
        assert_eq!(log_level("WARNING: low disk"), Some(LogLevel::Warning));
        assert_eq!(log_level("level=error msg=boom"), Some(LogLevel::Error));
        assert_eq!(log_level("GET / 200"), None);
        assert_eq!(log_level("terror"), None);
    }
}
