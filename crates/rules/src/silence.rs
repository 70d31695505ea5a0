//! Silences: an operator's "I know, stop telling me" — label matchers with an expiry. A
//! silenced alert still moves through its states and shows in the API; only notifications
//! are held back.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// `label = value` (or `!=` with `negate`), as Alertmanager's equality matchers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub negate: bool,
}

/// Whether `matchers` pick out an alert with `labels`: all of them match, and there is at
/// least one (an empty list would silence everything).
pub fn covers(matchers: &[Matcher], labels: &BTreeMap<String, String>) -> bool {
    !matchers.is_empty() && matchers.iter().all(|m| m.matches(labels))
}

impl Matcher {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.name).map(String::as_str).unwrap_or("");
        (v == self.value) != self.negate
    }
}

/// A silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: i64,
    pub matchers: Vec<Matcher>,
    pub comment: String,
    pub created_by: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
}

impl Silence {
    /// Whether it holds back notifications of an alert with `labels` at `now`.
    pub fn silences(&self, labels: &BTreeMap<String, String>, now: Timestamp) -> bool {
        now >= self.starts_at && now < self.ends_at && covers(&self.matchers, labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_matchers_must_match_within_the_time() {
        let s = Silence {
            id: 1,
            matchers: vec![
                Matcher {
                    name: "namespace".into(),
                    value: "default".into(),
                    negate: false,
                },
                Matcher {
                    name: "workload".into(),
                    value: "db".into(),
                    negate: true,
                },
            ],
            comment: "deploy in progress".into(),
            created_by: "ops".into(),
            starts_at: Timestamp::from_second(100).unwrap(),
            ends_at: Timestamp::from_second(200).unwrap(),
        };
        let labels = |w: &str| {
            BTreeMap::from([
                ("namespace".to_string(), "default".to_string()),
                ("workload".to_string(), w.to_string()),
            ])
        };
        let at = Timestamp::from_second(150).unwrap();
        assert!(s.silences(&labels("nginx"), at));
        assert!(!s.silences(&labels("db"), at));
        assert!(
            !s.silences(&labels("nginx"), Timestamp::from_second(200).unwrap()),
            "expired"
        );
        assert!(
            !s.silences(&labels("nginx"), Timestamp::from_second(99).unwrap()),
            "not yet"
        );
    }
}
