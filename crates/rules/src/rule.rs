//! The alert rule file: what an operator writes in YAML, read strictly (unknown fields and
//! bad values are errors naming where they are), with the shipped defaults.

use std::collections::BTreeSet;
use std::time::Duration;

use crashscope_model::duration::parse_go;
use crashscope_model::Severity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Deserializer, Serialize};

/// The rules `crashscope serve` uses when given none.
pub const DEFAULT_RULES: &str = include_str!("../default-rules.yaml");

/// A rule file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// Where alerts are sent (besides `crashscope serve`'s channel flags).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<crate::Receiver>,
    pub rules: Vec<Rule>,
}

/// One alert rule.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    /// One line for notifications; `{workload}`, `{namespace}`, `{pods}`, `{value}`,
    /// `{threshold}`, `{window}` and `{rule}` are filled in.
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default = "default_severity")]
    pub severity: Severity,
    #[serde(default)]
    pub metric: Option<MetricCondition>,
    #[serde(default)]
    pub event: Option<EventCondition>,
    #[serde(default)]
    pub group_by: GroupBy,
    /// How long the condition must hold before the alert fires.
    #[serde(default, rename = "for", with = "go_duration")]
    pub for_: Duration,
    /// How often a firing alert is notified again.
    #[serde(default = "default_renotify", with = "go_duration")]
    pub renotify: Duration,
    #[serde(default)]
    pub scope: ScopeFilter,
    #[serde(default)]
    pub actions: Actions,
}

fn default_severity() -> Severity {
    Severity::Warning
}

fn default_renotify() -> Duration {
    Duration::from_secs(3600)
}

/// The restart metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum MetricName {
    /// Restarts within the window.
    #[serde(rename = "kubernetes.pod.restart.count")]
    RestartCount,
    /// Restarts per second over the window.
    #[serde(rename = "kubernetes.pod.restart.rate")]
    RestartRate,
}

impl MetricName {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricName::RestartCount => "kubernetes.pod.restart.count",
            MetricName::RestartRate => "kubernetes.pod.restart.rate",
        }
    }

    pub fn parse(s: &str) -> Option<MetricName> {
        [MetricName::RestartCount, MetricName::RestartRate]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// The level a value is computed at, or alerts are grouped by.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Container,
    Pod,
    #[default]
    Workload,
    Namespace,
}

/// A comparison of a value with a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum Op {
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "==")]
    Eq,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Ge => ">=",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Lt => "<",
            Op::Eq => "==",
        }
    }

    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Ge => value >= threshold,
            Op::Gt => value > threshold,
            Op::Le => value <= threshold,
            Op::Lt => value < threshold,
            Op::Eq => (value - threshold).abs() < f64::EPSILON,
        }
    }
}

/// A metric rule's condition.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricCondition {
    pub name: MetricName,
    /// The level the metric is computed at before grouping.
    #[serde(default = "default_by")]
    pub by: GroupBy,
    #[serde(with = "go_duration")]
    pub window: Duration,
    #[serde(default = "default_op")]
    pub op: Op,
    pub threshold: f64,
}

fn default_by() -> GroupBy {
    GroupBy::Pod
}

fn default_op() -> Op {
    Op::Ge
}

/// An event rule's condition: matching events seen within the window.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EventCondition {
    /// Event reasons, any of which matches (empty: any reason).
    #[serde(default, deserialize_with = "one_or_many")]
    pub reason: BTreeSet<String>,
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Case-insensitive substring of the message.
    #[serde(default)]
    pub text: Option<String>,
    /// Event sources, any of which matches (empty: any source). The kubelet's reasons are
    /// matched from `kubernetes` and `local` only, so a custom event that happens to be
    /// named `BackOff` does not fire a kubelet rule.
    #[serde(default, deserialize_with = "one_or_many")]
    pub source: BTreeSet<String>,
    #[serde(with = "go_duration")]
    pub window: Duration,
    #[serde(default = "one")]
    pub min_count: u32,
}

fn one() -> u32 {
    1
}

/// Which pods and events a rule looks at.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeFilter {
    /// Only these clusters (as watchers and agents name them); empty: every cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
    #[serde(default)]
    pub namespaces: NamespaceFilter,
    /// A Kubernetes label selector on the pods (`matchLabels`, `matchExpressions`).
    #[serde(default)]
    pub labels: Option<LabelSelector>,
    #[serde(default = "yes")]
    pub init_containers: bool,
}

impl Default for ScopeFilter {
    fn default() -> Self {
        ScopeFilter {
            clusters: Vec::new(),
            namespaces: NamespaceFilter::default(),
            labels: None,
            init_containers: true,
        }
    }
}

impl ScopeFilter {
    /// Whether something of `cluster` (None: a source that names no cluster) is covered.
    pub fn admits_cluster(&self, cluster: Option<&str>) -> bool {
        self.clusters.is_empty() || cluster.is_some_and(|c| self.clusters.iter().any(|x| x == c))
    }
}

fn yes() -> bool {
    true
}

/// Namespaces a rule covers: all but `exclude`, or only `include` when it is given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceFilter {
    #[serde(default)]
    pub include: BTreeSet<String>,
    #[serde(default)]
    pub exclude: BTreeSet<String>,
}

impl NamespaceFilter {
    pub fn admits(&self, ns: &str) -> bool {
        (self.include.is_empty() || self.include.contains(ns)) && !self.exclude.contains(ns)
    }
}

/// What a firing alert does besides notifying.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Actions {
    #[serde(default)]
    pub capture: Option<CaptureAction>,
    #[serde(default)]
    pub rollback: Option<RollbackAction>,
}

/// Roll a Deployment back to its previous revision when its crash loop began right after
/// a rollout and the previous revision was healthy: opt-in (no shipped rule has it) and only
/// in the namespaces listed; once per alert episode, never while a silence covers the alert.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackAction {
    /// The namespaces where rolling back is allowed (required: nothing is rolled back by
    /// default).
    #[serde(deserialize_with = "one_or_many")]
    pub namespaces: BTreeSet<String>,
    /// How soon after the rollout the crashes must begin for the rollout to be the change
    /// that broke it.
    #[serde(default = "default_rollback_window", with = "go_duration")]
    pub window: Duration,
    /// How long the previous revision's pods must have run without a restart.
    #[serde(default = "default_healthy_for", with = "go_duration")]
    pub healthy_for: Duration,
    /// Say what would be done (a `RolledBack` event marked dry run), change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

fn default_rollback_window() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_healthy_for() -> Duration {
    Duration::from_secs(10 * 60)
}

/// Request a capture of the alert's pods.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureAction {
    #[serde(with = "go_duration")]
    pub duration: Duration,
}

/// Why a rule file was refused.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("{source_name}: {path}: {message}")]
    Parse {
        source_name: String,
        path: String,
        message: String,
    },
    #[error("{source_name}: rule {rule:?}: {message}")]
    Invalid {
        source_name: String,
        rule: String,
        message: String,
    },
    #[error("{source_name}: notify[{index}]: {message}")]
    Receiver {
        source_name: String,
        index: usize,
        message: String,
    },
}

impl RuleFile {
    /// Reads and checks a rule file; `source_name` names it in errors.
    pub fn parse(source_name: &str, text: &str) -> Result<RuleFile, RuleError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let file: RuleFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = match e.path().to_string() {
                p if p == "." => "(top level)".into(),
                p => p,
            };
            // The YAML reader names the path itself; say it once.
            let inner = e.inner().to_string();
            let message = inner
                .strip_prefix(&format!("{path}: "))
                .map_or(inner.clone(), str::to_string);
            RuleError::Parse {
                source_name: source_name.into(),
                path,
                message,
            }
        })?;
        file.check(source_name)?;
        Ok(file)
    }

    /// The shipped defaults.
    pub fn defaults() -> RuleFile {
        // Tested to parse (see the tests below); an empty set is the safe fallback.
        RuleFile::parse("default rules", DEFAULT_RULES).unwrap_or(RuleFile {
            notify: vec![],
            rules: vec![],
        })
    }

    fn check(&self, source_name: &str) -> Result<(), RuleError> {
        for (index, r) in self.notify.iter().enumerate() {
            r.target().map_err(|message| RuleError::Receiver {
                source_name: source_name.into(),
                index,
                message,
            })?;
        }
        let mut names = BTreeSet::new();
        for r in &self.rules {
            let bad = |message: &str| RuleError::Invalid {
                source_name: source_name.into(),
                rule: r.name.clone(),
                message: message.into(),
            };
            if r.name.trim().is_empty() {
                return Err(bad("the name is empty"));
            }
            if !names.insert(r.name.as_str()) {
                return Err(bad("two rules have this name"));
            }
            match (&r.metric, &r.event) {
                (Some(_), Some(_)) => return Err(bad("has both `metric` and `event`; give one")),
                (None, None) => return Err(bad("needs a `metric` or an `event` condition")),
                _ => {}
            }
            if let Some(m) = &r.metric {
                if m.window.is_zero() {
                    return Err(bad("metric.window must be longer than 0s"));
                }
                if !m.threshold.is_finite() {
                    return Err(bad("metric.threshold must be a number"));
                }
                if m.by > r.group_by {
                    return Err(bad(
                        "metric.by must be as fine as group_by (container < pod < workload < namespace)",
                    ));
                }
            }
            if let Some(e) = &r.event {
                if e.window.is_zero() {
                    return Err(bad("event.window must be longer than 0s"));
                }
            }
            if let Some(sel) = &r.scope.labels {
                kube_core::Selector::try_from(sel.clone())
                    .map_err(|e| bad(&format!("scope.labels: {e}")))?;
            }
            if r.renotify.is_zero() {
                return Err(bad("renotify must be longer than 0s"));
            }
            if let Some(rb) = &r.actions.rollback {
                if rb.namespaces.is_empty() || rb.namespaces.iter().any(|n| n.trim().is_empty()) {
                    return Err(bad(
                        "actions.rollback.namespaces must list the namespaces where rolling back is allowed",
                    ));
                }
                if rb.window.is_zero() {
                    return Err(bad("actions.rollback.window must be longer than 0s"));
                }
            }
            // Windows reach back from now; a year is more than the store keeps in view, and
            // bounding them keeps every time computed from them representable.
            let windows = [
                ("metric.window", r.metric.as_ref().map(|m| m.window)),
                ("event.window", r.event.as_ref().map(|e| e.window)),
                ("for", Some(r.for_)),
                ("renotify", Some(r.renotify)),
                (
                    "actions.rollback.window",
                    r.actions.rollback.as_ref().map(|b| b.window),
                ),
                (
                    "actions.rollback.healthy_for",
                    r.actions.rollback.as_ref().map(|b| b.healthy_for),
                ),
            ];
            for (what, d) in windows {
                if d.is_some_and(|d| d > MAX_SPAN) {
                    return Err(bad(&format!("{what} must be at most 366d")));
                }
            }
        }
        Ok(())
    }
}

/// The longest window, `for` or `renotify` a rule may have.
pub const MAX_SPAN: Duration = Duration::from_secs(366 * 86_400);

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(BTreeSet<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => BTreeSet::from([s]),
        OneOrMany::Many(v) => v,
    })
}

/// Durations written the Go way (`4m`, `90s`, `1h30m`), as Prometheus and Kubernetes do.
mod go_duration {
    use super::*;
    use crashscope_model::duration::format_go;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_go(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse_go(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{s:?} is not a duration (write it like 30s, 4m, 1h30m)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receivers_come_with_the_rules_and_a_wrong_one_is_named() {
        let rules = "rules:\n- name: R\n  event: {reason: [BackOff], window: 5m}\n";
        let f = RuleFile::parse(
            "r.yaml",
            &format!(
                "notify:\n- webhook: https://hooks.example/crash\n  secret_file: /etc/s\n\
                 - alertmanager: http://alertmanager:9093\n{rules}"
            ),
        )
        .unwrap();
        assert_eq!(f.notify.len(), 2);
        assert_eq!(
            f.notify[1].target(),
            Ok(crate::Target::Alertmanager("http://alertmanager:9093"))
        );
        let e = RuleFile::parse(
            "r.yaml",
            &format!("notify:\n- slack: https://a\n  webhook: https://b\n{rules}"),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "r.yaml: notify[0]: gives more than one of webhook, slack, alertmanager"
        );
        let e = RuleFile::parse("r.yaml", &format!("notify:\n- email: ops@example\n{rules}"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("r.yaml: notify[0].email:") && e.contains("unknown field `email`"),
            "{e}"
        );
    }

    #[test]
    fn the_shipped_defaults_parse_and_hold_the_restart_rule() {
        let f = RuleFile::parse("default rules", DEFAULT_RULES).unwrap();
        let r = &f.rules[0];
        let m = r.metric.as_ref().unwrap();
        assert_eq!(m.name, MetricName::RestartCount);
        assert_eq!(m.window, Duration::from_secs(240));
        assert_eq!((m.op, m.threshold), (Op::Ge, 3.0));
        assert_eq!(r.group_by, GroupBy::Workload);
        assert!(f.rules[1]
            .event
            .as_ref()
            .unwrap()
            .reason
            .contains("BackOff"));
    }

    #[test]
    fn rolling_back_is_opt_in_per_namespace_and_off_in_the_shipped_rules() {
        let base =
            "rules:\n- name: r\n  event: {reason: BackOff, window: 5m}\n  actions:\n    rollback: ";
        let f = RuleFile::parse("r.yaml", &format!("{base}{{namespaces: shop}}\n")).unwrap();
        let rb = f.rules[0].actions.rollback.clone().unwrap();
        assert_eq!(rb.namespaces, BTreeSet::from(["shop".to_string()]));
        assert_eq!(
            (rb.window, rb.healthy_for, rb.dry_run),
            (Duration::from_secs(900), Duration::from_secs(600), false)
        );
        let e = RuleFile::parse("r.yaml", &format!("{base}{{namespaces: []}}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("must list the namespaces"), "{e}");
        assert!(RuleFile::parse("r.yaml", &format!("{base}{{}}\n")).is_err());
        let shipped = RuleFile::parse("default rules", DEFAULT_RULES).unwrap();
        assert!(shipped.rules.iter().all(|r| r.actions.rollback.is_none()));
    }

    #[test]
    fn windows_past_a_year_are_refused() {
        let rules = "rules:\n- name: far\n  event: {reason: BackOff, window: 99999999999h}\n";
        let e = RuleFile::parse("r.yaml", rules).unwrap_err().to_string();
        assert!(e.contains("event.window must be at most 366d"), "{e}");
        let rules = "rules:\n- name: far\n  event: {reason: BackOff, window: 5m}\n  for: 400d\n";
        let e = RuleFile::parse("r.yaml", rules).unwrap_err().to_string();
        assert!(e.contains("for must be at most"), "{e}");
    }

    #[test]
    fn errors_name_the_place_and_the_problem() {
        let bad_window = "rules:\n- name: x\n  metric: {name: kubernetes.pod.restart.count, window: 4 minutes, threshold: 3}\n";
        let e = RuleFile::parse("r.yaml", bad_window)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("r.yaml") && e.contains("rules[0].metric.window"),
            "{e}"
        );
        assert!(e.contains("not a duration"), "{e}");
        assert_eq!(
            e.matches("rules[0].metric.window").count(),
            1,
            "said once: {e}"
        );
        let unknown = "rules:\n- name: x\n  treshold: 3\n";
        let e = RuleFile::parse("r.yaml", unknown).unwrap_err().to_string();
        assert!(e.contains("treshold"), "{e}");
        let neither = "rules:\n- name: x\n";
        let e = RuleFile::parse("r.yaml", neither).unwrap_err().to_string();
        assert!(e.contains("\"x\"") && e.contains("needs a `metric`"), "{e}");
        let metric = "rules:\n- name: x\n  metric: {name: cpu, window: 1m, threshold: 1}\n";
        let e = RuleFile::parse("r.yaml", metric).unwrap_err().to_string();
        assert!(e.contains("rules[0].metric.name"), "{e}");
        assert_eq!(
            e.matches("rules[0].metric.name").count(),
            1,
            "said once: {e}"
        );
        assert_eq!(e.matches("rules[0].metric.window").count(), 0, "{e}");
    }

    #[test]
    fn namespaces_include_and_exclude() {
        let f = NamespaceFilter {
            include: BTreeSet::new(),
            exclude: BTreeSet::from(["kube-system".to_string()]),
        };
        assert!(f.admits("default") && !f.admits("kube-system"));
        let only = NamespaceFilter {
            include: BTreeSet::from(["shop".to_string()]),
            exclude: BTreeSet::new(),
        };
        assert!(only.admits("shop") && !only.admits("default"));
    }
}
