//! A fact a conclusion rests on, with where a user can check it (its provenance), and how
//! much each kind of fact weighs.

use serde::{Deserialize, Serialize};

/// Where a fact comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The pod's status (container states, reasons, exit codes, messages).
    Status,
    /// A Kubernetes event (Unhealthy, Killing, Failed, SandboxChanged, ...).
    Event,
    /// A line of the crashed instance's log.
    Log,
    /// An event of a system-call capture.
    Capture,
    /// The pod's spec (probes, mounts, security context, limits).
    Spec,
    /// A change in the pod's scope before the first crash (a deploy, a rollout).
    Change,
}

impl Source {
    /// The lowercase name the JSON output uses, for text output.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Status => "status",
            Source::Event => "event",
            Source::Log => "log",
            Source::Capture => "capture",
            Source::Spec => "spec",
            Source::Change => "change",
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One fact: `pointer` says where to look (an object field path, `event Killing@…`,
/// `log line 12`, `capture event #1234`), `text` what is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub source: Source,
    pub pointer: String,
    pub text: String,
}

impl Evidence {
    pub fn new(source: Source, pointer: impl Into<String>, text: impl Into<String>) -> Evidence {
        Evidence {
            source,
            pointer: pointer.into(),
            text: text.into(),
        }
    }
}

/// How strongly a kind of fact supports a cause: a system call seen failing proves more than
/// a status reason, which says more than an event, a log line, or an exit code's usual meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// Seen in the capture: the failing call, the signal, the DNS answer.
    Capture,
    /// Said by the status in so many words (`OOMKilled`, a runtime error message).
    Status,
    /// Said by a Kubernetes event.
    Event,
    /// Printed by the program.
    Log,
    /// Read off the capture by a heuristic (the last unrecovered failure before a silent
    /// exit): worth naming, not enough alone to claim a cause.
    Inferred,
    /// What the exit code usually means.
    ExitCode,
    /// Context that fits (the spec, timing) but proves nothing alone.
    Context,
}

impl Tier {
    /// The probability this tier alone gives; tiers combine as independent evidence.
    pub fn weight(self) -> f64 {
        match self {
            Tier::Capture => 0.85,
            Tier::Status => 0.8,
            Tier::Event => 0.75,
            Tier::Log => 0.65,
            Tier::Inferred => 0.45,
            Tier::ExitCode => 0.3,
            Tier::Context => 0.15,
        }
    }
}
