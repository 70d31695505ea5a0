//! The phases an alert episode is stored and shown in (pending, firing, resolved): what the
//! rule engine's state machine saves and what the API and a restarted server read back.

use serde::{Deserialize, Serialize};

/// Where a stored alert episode is; an inactive alert has no episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertPhase {
    /// The condition holds, not yet for the rule's `for`.
    Pending,
    Firing,
    Resolved,
}

impl AlertPhase {
    pub const ALL: [AlertPhase; 3] = [
        AlertPhase::Pending,
        AlertPhase::Firing,
        AlertPhase::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertPhase::Pending => "pending",
            AlertPhase::Firing => "firing",
            AlertPhase::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<AlertPhase> {
        AlertPhase::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl std::fmt::Display for AlertPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_read_back_as_written() {
        for p in AlertPhase::ALL {
            assert_eq!(AlertPhase::parse(p.as_str()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        assert_eq!(AlertPhase::parse("inactive"), None);
    }
}
