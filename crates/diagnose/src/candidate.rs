//! Candidates: causes rules proposed for a case, each with the evidence that supports it, the
//! specifics a summary names, remedies with commands, and causes a rule ruled out (with why).

use crate::evidence::{Evidence, Tier};

/// A remedy: what to do, and a command that does it when there is one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Remedy {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The change itself when the evidence gives every value of it: JSON patch operations
    /// (RFC 6902) on the pod's spec (paths from the spec: `/containers/0/...`), so that
    /// they apply to a Pod's `spec` and to a workload's `spec.template.spec` alike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<serde_json::Value>,
    /// An object to create (a missing Service), whole, when the evidence gives every value of
    /// it: what `kubectl apply -f` takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<serde_json::Value>,
}

/// One proposed cause.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: &'static str,
    /// The summary given by the strongest evidence so far.
    pub summary: String,
    summary_tier: Tier,
    pub support: Vec<(Tier, Evidence)>,
    pub remedies: Vec<Remedy>,
    /// The specifics the evidence names: a DNS name, `host:port`, a path.
    pub subjects: Vec<String>,
}

impl Candidate {
    /// The tiers present, strongest first, each once.
    pub fn tiers(&self) -> Vec<Tier> {
        let mut t: Vec<Tier> = self.support.iter().map(|(t, _)| *t).collect();
        t.sort();
        t.dedup();
        t
    }
}

/// Everything the rules proposed for one case.
#[derive(Debug, Default)]
pub struct Candidates {
    pub list: Vec<Candidate>,
    /// (cause, why not), from rules that found a look-alike's deciding evidence.
    pub ruled_out: Vec<(&'static str, String)>,
    /// Facts worth showing with the top cause whatever it is (a change before the first
    /// crash, a dependency that itself crash-loops).
    pub context: Vec<Evidence>,
    /// Words appended to the top cause's summary (the change, the upstream pod).
    pub notes: Vec<String>,
}

impl Candidates {
    /// Adds support for cause `id`; the summary of the strongest evidence wins.
    pub fn add(
        &mut self,
        id: &'static str,
        tier: Tier,
        evidence: Evidence,
        summary: impl Into<String>,
    ) {
        let summary = summary.into();
        match self.list.iter_mut().find(|c| c.id == id) {
            Some(c) => {
                if tier < c.summary_tier && !summary.is_empty() {
                    c.summary = summary;
                    c.summary_tier = tier;
                }
                if !c.support.iter().any(|(_, e)| *e == evidence) {
                    c.support.push((tier, evidence));
                }
            }
            None => self.list.push(Candidate {
                id,
                summary,
                summary_tier: tier,
                support: vec![(tier, evidence)],
                remedies: Vec::new(),
                subjects: Vec::new(),
            }),
        }
    }

    /// A remedy specific to this case (shown before the cause's usual ones).
    pub fn remedy(&mut self, id: &'static str, text: impl Into<String>, command: Option<String>) {
        if let Some(c) = self.list.iter_mut().find(|c| c.id == id) {
            let r = Remedy {
                text: text.into(),
                command,
                patch: None,
                manifest: None,
            };
            if !c.remedies.contains(&r) {
                c.remedies.push(r);
            }
        }
    }

    /// A remedy of `id` that is a concrete change: `patch` on the pod's spec. It goes first:
    /// it is the remedy the evidence proves.
    pub fn fix(&mut self, id: &'static str, text: impl Into<String>, patch: serde_json::Value) {
        if let Some(c) = self.list.iter_mut().find(|c| c.id == id) {
            let r = Remedy {
                text: text.into(),
                command: None,
                patch: Some(patch),
                manifest: None,
            };
            if !c.remedies.contains(&r) {
                c.remedies.insert(0, r);
            }
        }
    }

    /// A remedy of `id` that is an object to create (`manifest`), first as [`Self::fix`]'s.
    pub fn create(
        &mut self,
        id: &'static str,
        text: impl Into<String>,
        manifest: serde_json::Value,
    ) {
        if let Some(c) = self.list.iter_mut().find(|c| c.id == id) {
            let r = Remedy {
                text: text.into(),
                command: None,
                patch: None,
                manifest: Some(manifest),
            };
            if !c.remedies.contains(&r) {
                c.remedies.insert(0, r);
            }
        }
    }

    /// Records a specific the evidence for `id` names (for joins with the cluster's objects).
    pub fn subject(&mut self, id: &'static str, subject: impl Into<String>) {
        let subject = subject.into();
        if let Some(c) = self.list.iter_mut().find(|c| c.id == id) {
            if !subject.is_empty() && !c.subjects.contains(&subject) {
                c.subjects.push(subject);
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&Candidate> {
        self.list.iter().find(|c| c.id == id)
    }

    /// Rules cause `id` out, saying why.
    pub fn rule_out(&mut self, id: &'static str, why: impl Into<String>) {
        self.ruled_out.push((id, why.into()));
    }

    pub fn has(&self, id: &str) -> bool {
        self.list.iter().any(|c| c.id == id)
    }
}
