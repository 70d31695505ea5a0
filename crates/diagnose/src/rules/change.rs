//! Changes before the first crash: a custom event (a deploy, a rollback, a config change
//! posted by CI) or a rollout in the pod's namespace or workload shortly before the first
//! crash is evidence for whatever the top cause is — "started 40 s after deploy 1.4.2".

use crate::candidate::Candidates;
use crate::case::Case;
use crate::evidence::{Evidence, Source};

/// How long before the first crash a change still counts.
const WINDOW_SECS: i64 = 30 * 60;

pub fn propose(case: &Case, out: &mut Candidates) {
    // The first crash: the oldest BackOff the pod got, else this instance's end.
    let backoffs = case.events_with(&["BackOff"]);
    let first = backoffs
        .iter()
        .map(|e| e.first_seen)
        .min()
        .or_else(|| case.ended.as_ref().and_then(|e| e.finished_at));
    let Some(first) = first else {
        return;
    };
    let change = case
        .changes
        .iter()
        .filter(|c| {
            let d = first.duration_since(c.last_seen).as_secs();
            (0..=WINDOW_SECS).contains(&d)
        })
        .max_by_key(|c| c.last_seen);
    if let Some(c) = change {
        let secs = first.duration_since(c.last_seen).as_secs();
        let who = if c.source == crashscope_model::event::SOURCE_KUBERNETES {
            String::new()
        } else {
            format!(" by {}", c.source)
        };
        let what = if c.message.is_empty() {
            c.reason.clone()
        } else {
            format!("{}: {}", c.reason, c.message)
        };
        out.context.push(Evidence::new(
            Source::Change,
            Case::event_pointer(c),
            format!("{what}{who}"),
        ));
        out.notes.push(format!(
            "the first crash came {} after {}{who}",
            human(secs),
            c.reason
        ));
    }
}

fn human(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s => format!("{} min", s / 60),
    }
}
