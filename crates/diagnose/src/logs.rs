//! The crashed instance's log (`logs --previous`) as the engine reads it: numbered lines,
//! searched from the end, because the line that explains a crash is usually among the last.

use regex::{Captures, Regex};

/// A log, with where it came from (for evidence pointers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogText {
    /// What to show as the log's name: a file, or `logs --previous`.
    pub source: String,
    lines: Vec<String>,
}

/// One matching line: its 1-based number, text and the pattern's groups.
pub struct Hit<'a> {
    pub line: usize,
    pub text: &'a str,
    pub caps: Captures<'a>,
}

impl Hit<'_> {
    /// Group `i` of the match, or empty.
    pub fn group(&self, i: usize) -> &str {
        self.caps.get(i).map(|m| m.as_str()).unwrap_or("")
    }
}

/// Logs this long are read from their end: crash evidence is at the end, and a runaway log
/// must not make a diagnosis slow.
const MAX_LINES: usize = 5000;

impl LogText {
    pub fn new(source: impl Into<String>, text: &str) -> LogText {
        let all: Vec<&str> = text.lines().collect();
        let skip = all.len().saturating_sub(MAX_LINES);
        LogText {
            source: source.into(),
            lines: all[skip..]
                .iter()
                .map(|l| l.trim_end_matches('\r').to_string())
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lines.iter().all(|l| l.trim().is_empty())
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The last line matching `re`.
    pub fn find<'a>(&'a self, re: &Regex) -> Option<Hit<'a>> {
        self.lines.iter().enumerate().rev().find_map(|(i, l)| {
            re.captures(l).map(|caps| Hit {
                line: i + 1,
                text: l,
                caps,
            })
        })
    }

    /// The last line containing `needle` (case-sensitive).
    pub fn find_text(&self, needle: &str) -> Option<(usize, &str)> {
        if needle.is_empty() {
            return None;
        }
        self.lines
            .iter()
            .enumerate()
            .rev()
            .find(|(_, l)| l.contains(needle))
            .map(|(i, l)| (i + 1, l.as_str()))
    }

    /// The last non-empty line: what the program said last.
    pub fn last_line(&self) -> Option<(usize, &str)> {
        self.lines
            .iter()
            .enumerate()
            .rev()
            .find(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| (i + 1, l.as_str()))
    }

    /// The pointer to line `n`.
    pub fn pointer(&self, n: usize) -> String {
        format!("{} line {n}", self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_last_match_with_its_line_number() {
        let log = LogText::new("x.log", "a\nerror one\nb\nerror two\r\n\n");
        let re = Regex::new(r"error (\w+)").unwrap();
        let hit = log.find(&re).unwrap();
        assert_eq!((hit.line, hit.group(1)), (4, "two"));
        assert_eq!(log.last_line(), Some((4, "error two")));
        assert_eq!(log.find_text("one").map(|h| h.0), Some(2));
        assert!(LogText::new("e", "\n \n").is_empty());
    }
}
