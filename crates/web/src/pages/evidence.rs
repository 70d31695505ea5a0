//! Where each piece of a diagnosis's evidence can be checked in the UI: a capture event
//! opens the capture's event list at that event, a Kubernetes event opens that event (or,
//! when it is not among the pod's stored ones, the feed narrowed to the pod and its reason),
//! a log line the pod page's log of the ended instance. Made
//! from the evidence's pointer (`PATH event #N`, `event REASON … at T`, `PATH line N`) and
//! the captures the server indexed, never guessed from names.

use std::collections::HashMap;

use crashscope_diagnose::evidence::{Evidence, Source};
use crashscope_diagnose::Diagnosis;

use super::events::Filters;

/// Evidence pointer → the page that shows it, for the diagnoses of pod `namespace/pod`.
/// `captures` maps a capture's file path to its id.
pub fn links(
    diagnoses: &[Diagnosis],
    captures: &HashMap<String, i64>,
    events: &[crashscope_store::StoredEvent],
    namespace: &str,
    pod: &str,
) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for e in diagnoses
        .iter()
        .flat_map(|d| d.causes.iter())
        .flat_map(|c| c.evidence.iter())
    {
        if let Some(link) = link(e, captures, events, namespace, pod) {
            out.insert(e.pointer.clone(), link);
        }
    }
    out
}

fn link(
    e: &Evidence,
    captures: &HashMap<String, i64>,
    events: &[crashscope_store::StoredEvent],
    namespace: &str,
    pod: &str,
) -> Option<String> {
    match e.source {
        Source::Capture => {
            let (file, num) = e.pointer.rsplit_once(" event #")?;
            let num: u64 = num.trim().parse().ok()?;
            let id = captures.get(file)?;
            // The page starts after the event before it: the cited event is its first row.
            Some(format!(
                "/ui/captures/{id}/events?after={}",
                num.saturating_sub(1)
            ))
        }
        Source::Event => {
            let reason = e.pointer.strip_prefix("event ")?.split(' ').next()?;
            // The pointer says `at LAST_SEEN`: the stored event with that reason and time.
            let stored = events.iter().find(|s| {
                s.event.reason == reason
                    && e.pointer.contains(&format!(" at {}", s.event.last_seen))
            });
            if let Some(s) = stored {
                return Some(format!("/ui/events/{}", s.id));
            }
            Some(
                Filters {
                    namespace: namespace.to_string(),
                    pod: pod.to_string(),
                    reason: reason.to_string(),
                    ..Filters::default()
                }
                .link(),
            )
        }
        Source::Log if e.pointer.contains(" line ") => {
            Some(format!("{}#logs-title", super::pods::link(namespace, pod)))
        }
        _ => None,
    }
}

/// What a page showing diagnoses (`_diagnosis.html`) gives its template.
pub trait Panel {
    /// Evidence pointer → where to check it (made by [`links`]).
    fn links(&self) -> &HashMap<String, String>;

    fn evidence_link(&self, e: &Evidence) -> Option<&String> {
        self.links().get(&e.pointer)
    }

    fn percent(&self, c: &f64) -> String {
        format!("{:.0} %", c * 100.0)
    }

    fn confidence(&self, c: &f64) -> &'static str {
        super::pods::confidence_word(*c)
    }

    fn time(&self, t: &jiff::Timestamp) -> String {
        super::pods::short_utc(*t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(source: Source, pointer: &str) -> Evidence {
        Evidence::new(source, pointer, "")
    }

    #[test]
    fn each_kind_of_evidence_opens_where_it_can_be_checked() {
        let captures = HashMap::from([("/data/captures/c1.scap".to_string(), 7)]);
        let stored = crashscope_store::StoredEvent {
            id: 42,
            event: serde_json::from_value(serde_json::json!({
                "source": "kubernetes", "type": "Warning", "severity": "warning",
                "reason": "Killing", "message": "m", "count": 1,
                "first_seen": "2026-12-07T10:00:00Z", "last_seen": "2026-12-07T10:00:00Z",
                "scope": {"namespace": "shop", "pod": "web-1"}
            }))
            .unwrap(),
        };
        let events = [stored];
        let at = |e| link(&e, &captures, &events, "shop", "web-1");
        assert_eq!(
            at(ev(Source::Capture, "/data/captures/c1.scap event #1234")).as_deref(),
            Some("/ui/captures/7/events?after=1233")
        );
        // A capture the server does not index has nowhere to open.
        assert_eq!(at(ev(Source::Capture, "/tmp/other.scap event #5")), None);
        assert_eq!(
            at(ev(
                Source::Event,
                "event Unhealthy at 2026-12-07T10:00:00Z x3"
            ))
            .as_deref(),
            Some("/ui/events?reason=Unhealthy&namespace=shop&pod=web-1")
        );
        assert_eq!(
            at(ev(Source::Log, "/data/logs/web/0.log line 12")).as_deref(),
            Some("/ui/pods/shop/web-1#logs-title")
        );
        assert_eq!(
            at(ev(Source::Event, "event Killing at 2026-12-07T10:00:00Z")).as_deref(),
            Some("/ui/events/42")
        );
        assert_eq!(at(ev(Source::Status, "status.containerStatuses[0]")), None);
    }
}
