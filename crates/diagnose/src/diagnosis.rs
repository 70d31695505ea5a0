//! What the engine concludes for one crashed container instance: causes best first, each with
//! a confidence, a summary naming the specifics, the evidence (with where to check it), the
//! look-alikes it ruled out and why, and remedies. JSON and YAML print this as it is.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use crate::candidate::Remedy;
use crate::evidence::Evidence;

/// A look-alike cause, and why it is not the one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    pub id: String,
    pub why_not: String,
}

/// One cause with its case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CauseReport {
    /// A cause id of `research/crash-causes.md`, or `unknown`.
    pub id: String,
    pub title: String,
    /// 0 to 1: how strongly the evidence supports it.
    pub confidence: f64,
    pub summary: String,
    pub evidence: Vec<Evidence>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<Rejected>,
    pub remedies: Vec<Remedy>,
    /// For a weak or unknown cause: what would confirm one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confirm: Vec<String>,
}

/// The diagnosis of one crashed container instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub init: bool,
    /// The restart count of the instance diagnosed (the one that ended).
    pub restart: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exited_at: Option<Timestamp>,
    pub causes: Vec<CauseReport>,
    /// Which inputs were read (status, events, log, capture) and which were missing.
    pub inputs: Vec<String>,
    /// Caveats about the inputs (a damaged capture, recorder losses).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub diagnosed_at: Timestamp,
}

impl Diagnosis {
    /// The best cause (every diagnosis has at least one, possibly `unknown`).
    pub fn top(&self) -> Option<&CauseReport> {
        self.causes.first()
    }
}
