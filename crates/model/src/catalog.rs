//! The catalog of Kubernetes event reasons: for each (object class, reason), the severity an
//! operator should see and whether the event is ingested by default.
//!
//! The built-in table (`data/event-catalog.yaml`) is compiled into the binary; users override
//! entries or add new ones with a file of the same shape. Reasons in no entry fall back to the
//! event's own type: `Warning` events are warnings, everything else is information.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::event::EventType;
use crate::severity::Severity;

const BUILTIN: &str = include_str!("../data/event-catalog.yaml");

/// The kind of object an event is about, as the catalog groups reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ObjectClass {
    Node,
    Pod,
    ReplicationController,
    Deployment,
    Job,
    /// Matches events about any kind of object.
    Any,
}

impl ObjectClass {
    /// The catalog class of an involved object's `kind`.
    pub fn of_kind(kind: &str) -> ObjectClass {
        match kind {
            "Node" => ObjectClass::Node,
            "Pod" => ObjectClass::Pod,
            "ReplicationController" | "ReplicaSet" => ObjectClass::ReplicationController,
            "Deployment" => ObjectClass::Deployment,
            "Job" | "CronJob" => ObjectClass::Job,
            _ => ObjectClass::Any,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectClass::Node => "node",
            ObjectClass::Pod => "pod",
            ObjectClass::ReplicationController => "replicationController",
            ObjectClass::Deployment => "deployment",
            ObjectClass::Job => "job",
            ObjectClass::Any => "any",
        }
    }
}

impl fmt::Display for ObjectClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    pub class: ObjectClass,
    pub reason: String,
    pub severity: Severity,
    pub enabled: bool,
}

/// What the catalog says about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    pub severity: Severity,
    pub enabled: bool,
    /// False when no entry named the reason and the event type decided.
    pub listed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("event catalog {origin}: {source}")]
    Parse {
        origin: String,
        #[source]
        source: serde_yaml_ng::Error,
    },
    #[error("event catalog {origin}: entry {index} has an empty reason")]
    EmptyReason { origin: String, index: usize },
    #[error(
        "event catalog {origin}: {class}/{reason} is listed twice (entries {first} and {second})"
    )]
    Duplicate {
        origin: String,
        class: ObjectClass,
        reason: String,
        first: usize,
        second: usize,
    },
}

/// The catalog: built-in entries, possibly overridden by the user's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    entries: Vec<CatalogEntry>,
}

/// Named sets of built-in defaults (which reasons are shown by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Sysdig's catalog with every reason that explains a failed start, kill or crash on.
    #[default]
    Crash,
    /// Sysdig's own defaults.
    Sysdig,
}

/// The overrides the crash profile applies to Sysdig's catalog.
const CRASH_PROFILE: &str = include_str!("../data/crash-profile.yaml");

impl Catalog {
    /// The catalog compiled into the binary, with crashscope's default profile.
    pub fn builtin() -> Catalog {
        Catalog::profile(Profile::default())
    }

    /// The built-in catalog with the defaults of `profile`.
    pub fn profile(profile: Profile) -> Catalog {
        // The built-in tables are checked by a unit test; an error here is a build defect.
        let sysdig = Catalog::parse(BUILTIN, "built-in").unwrap_or_else(|e| panic!("{e}"));
        match profile {
            Profile::Sysdig => sysdig,
            Profile::Crash => sysdig.with_overrides(
                Catalog::parse(CRASH_PROFILE, "crash profile").unwrap_or_else(|e| panic!("{e}")),
            ),
        }
    }

    /// Parses a catalog (a YAML list of entries). `origin` names the input in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Catalog, CatalogError> {
        let entries: Vec<CatalogEntry> =
            serde_yaml_ng::from_str(text).map_err(|source| CatalogError::Parse {
                origin: origin.to_string(),
                source,
            })?;
        for (index, e) in entries.iter().enumerate() {
            if e.reason.trim().is_empty() {
                return Err(CatalogError::EmptyReason {
                    origin: origin.to_string(),
                    index: index + 1,
                });
            }
            if let Some(first) = entries[..index]
                .iter()
                .position(|p| p.class == e.class && p.reason == e.reason)
            {
                return Err(CatalogError::Duplicate {
                    origin: origin.to_string(),
                    class: e.class,
                    reason: e.reason.clone(),
                    first: first + 1,
                    second: index + 1,
                });
            }
        }
        Ok(Catalog { entries })
    }

    /// This catalog with `overrides` applied: an entry with the same class and reason replaces
    /// the built-in one, others are added.
    pub fn with_overrides(mut self, overrides: Catalog) -> Catalog {
        for o in overrides.entries {
            match self
                .entries
                .iter_mut()
                .find(|e| e.class == o.class && e.reason == o.reason)
            {
                Some(e) => *e = o,
                None => self.entries.push(o),
            }
        }
        self
    }

    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    /// Severity and default of an event with `reason` about an object of `kind`.
    pub fn classify(&self, kind: &str, reason: &str, event_type: EventType) -> Classification {
        let class = ObjectClass::of_kind(kind);
        let find = |c: ObjectClass| {
            self.entries
                .iter()
                .find(|e| e.class == c && e.reason == reason)
        };
        match find(class).or_else(|| find(ObjectClass::Any)) {
            Some(e) => Classification {
                severity: e.severity,
                enabled: e.enabled,
                listed: true,
            },
            None => Classification {
                severity: match event_type {
                    EventType::Warning => Severity::Warning,
                    EventType::Normal => Severity::Info,
                },
                enabled: true,
                listed: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_parses_and_has_no_duplicates() {
        let c = Catalog::builtin();
        assert!(c.entries().len() > 60);
    }

    #[test]
    fn the_crash_profile_shows_what_explains_a_crash() {
        let c = Catalog::builtin();
        for (kind, reason, ty) in [
            ("Pod", "Failed", EventType::Warning),
            ("Pod", "Killing", EventType::Normal),
            ("Pod", "Unhealthy", EventType::Warning),
            ("Pod", "BackOff", EventType::Warning),
            ("Node", "NodeNotReady", EventType::Normal),
            ("Node", "OOMKilling", EventType::Warning),
            ("ReplicaSet", "FailedCreate", EventType::Warning),
        ] {
            assert!(c.classify(kind, reason, ty).enabled, "{kind} {reason}");
        }
        // Severities stay Sysdig's; only what is shown by default changes.
        let killing = c.classify("Pod", "Killing", EventType::Normal);
        assert_eq!(killing.severity, Severity::Info);
        assert_eq!(
            c.entries().len(),
            Catalog::profile(Profile::Sysdig).entries().len()
        );
    }

    #[test]
    fn sysdig_severities_and_defaults() {
        let c = Catalog::profile(Profile::Sysdig);
        let backoff = c.classify("Pod", "BackOff", EventType::Warning);
        assert_eq!(
            (backoff.severity, backoff.enabled),
            (Severity::Warning, true)
        );
        let killing = c.classify("Pod", "Killing", EventType::Normal);
        assert_eq!((killing.severity, killing.enabled), (Severity::Info, false));
        let all_pods = c.classify("Node", "TerminatedAllPods", EventType::Normal);
        assert!(all_pods.enabled);
        let not_ready = c.classify("Node", "NodeNotReady", EventType::Normal);
        assert!(!not_ready.enabled);
        let rs = c.classify("ReplicaSet", "FailedCreate", EventType::Warning);
        assert_eq!((rs.severity, rs.enabled), (Severity::Warning, false));
        let oom = c.classify("Node", "OOMKilling", EventType::Warning);
        assert_eq!(oom.severity, Severity::Error);
    }

    #[test]
    fn unlisted_reasons_follow_the_event_type() {
        let c = Catalog::builtin();
        let w = c.classify(
            "PersistentVolumeClaim",
            "ProvisioningFailed",
            EventType::Warning,
        );
        assert_eq!(
            (w.severity, w.listed, w.enabled),
            (Severity::Warning, false, true)
        );
        let n = c.classify("Service", "EnsuredLoadBalancer", EventType::Normal);
        assert_eq!(n.severity, Severity::Info);
    }

    #[test]
    fn user_overrides_replace_and_extend() {
        let user = Catalog::parse(
            "- {class: pod, reason: Killing, severity: warning, enabled: true}\n\
             - {class: any, reason: MyDeploy, severity: critical, enabled: true}\n",
            "user.yaml",
        )
        .unwrap();
        let c = Catalog::builtin().with_overrides(user);
        let k = c.classify("Pod", "Killing", EventType::Normal);
        assert_eq!((k.severity, k.enabled), (Severity::Warning, true));
        assert_eq!(
            c.classify("Deployment", "MyDeploy", EventType::Normal)
                .severity,
            Severity::Critical
        );
    }

    #[test]
    fn bad_user_catalogs_are_refused_with_the_reason() {
        let dup = "- {class: pod, reason: A, severity: info, enabled: true}\n\
                   - {class: pod, reason: A, severity: info, enabled: false}\n";
        let e = Catalog::parse(dup, "mine.yaml").unwrap_err().to_string();
        assert!(e.contains("mine.yaml") && e.contains("listed twice"), "{e}");
        let bad = "- {class: pod, reason: A, severity: loud, enabled: true}\n";
        let e = Catalog::parse(bad, "mine.yaml").unwrap_err().to_string();
        assert!(e.contains("mine.yaml") && e.contains("severity"), "{e}");
        assert!(Catalog::parse("not: [a list", "x").is_err());
    }
}
