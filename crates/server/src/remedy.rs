//! The rule action `rollback`: when a Deployment's crash loop began right after a rollout
//! and the revision before it was healthy, go back to that revision — in the local runtime,
//! as `crashscope rollout undo` does, or in a watched cluster through its API, as `kubectl
//! rollout undo` does (under the opt-in role of `deploy/rollback-rbac.yaml`). [`decide`] is
//! the judgement, from evidence only (the Deployment's revisions, which pods crash, how the
//! previous revision's pods have run); [`Remedy::rollback`] gathers that evidence, acts (or,
//! in a dry run, does not), and leaves a `RolledBack`, `RollbackSkipped` or `RollbackFailed`
//! event on the feed saying why.

use std::time::Duration;

use crashscope_model::{Event, EventType, ObjectRef, PodState, Severity};
use crashscope_rules::rule::RollbackAction;
use crashscope_store::{SqlStore, Store};
use jiff::Timestamp;

/// One revision of the Deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub number: u64,
    /// Its `pod-template-hash`.
    pub hash: String,
    /// When it was rolled out (its ReplicaSet was made).
    pub created: Timestamp,
}

/// A pod of the Deployment, as the store has it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRun {
    pub name: String,
    pub hash: String,
    pub restarts: u32,
    pub created: Option<Timestamp>,
}

/// What the judgement needs.
pub struct Situation<'a> {
    pub namespace: &'a str,
    pub deployment: &'a str,
    /// Oldest first.
    pub revisions: &'a [Revision],
    pub pods: &'a [PodRun],
    /// The alert's pods (the crash-looping ones).
    pub crashing: &'a [String],
    /// When the alert's condition began (the crashes began no later).
    pub began: Timestamp,
    pub now: Timestamp,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    RollBack { from: u64, to: u64, why: String },
    Skip(String),
}

fn span(d: jiff::SignedDuration) -> String {
    let secs = d.as_secs().max(0);
    crashscope_model::duration::format_go(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

/// Whether to roll back, and why (or why not).
pub fn decide(rule: &RollbackAction, s: &Situation<'_>) -> Decision {
    let skip = |why: String| Decision::Skip(why);
    if !rule.namespaces.contains(s.namespace) {
        return skip(format!(
            "namespace {} is not among actions.rollback.namespaces",
            s.namespace
        ));
    }
    let [.., previous, newest] = s.revisions else {
        return skip(format!(
            "deployment {} has no earlier revision to go back to",
            s.deployment
        ));
    };
    let crashing: Vec<&PodRun> = s
        .pods
        .iter()
        .filter(|p| s.crashing.contains(&p.name))
        .collect();
    if crashing.is_empty() || crashing.iter().any(|p| p.hash != newest.hash) {
        return skip(format!(
            "the crash-looping pods are not all revision {}'s (the newest): the rollout is not what broke them",
            newest.number
        ));
    }
    let after = s.began.duration_since(newest.created);
    let window = jiff::SignedDuration::try_from(rule.window).unwrap_or(jiff::SignedDuration::MAX);
    if after.is_negative() || after > window {
        return skip(format!(
            "the crash loop began {} after the rollout to revision {}, outside the {} window",
            span(after),
            newest.number,
            crashscope_model::duration::format_go(rule.window)
        ));
    }
    let old: Vec<&PodRun> = s.pods.iter().filter(|p| p.hash == previous.hash).collect();
    if old.is_empty() {
        return skip(format!(
            "revision {} has no pods left to show it was healthy",
            previous.number
        ));
    }
    if let Some(p) = old.iter().find(|p| p.restarts > 0) {
        return skip(format!(
            "revision {} crashed too ({} restarted {} times): going back would not help",
            previous.number, p.name, p.restarts
        ));
    }
    let ran = old
        .iter()
        .map(|p| {
            p.created
                .map_or(jiff::SignedDuration::ZERO, |c| s.now.duration_since(c))
        })
        .min()
        .unwrap_or(jiff::SignedDuration::ZERO);
    let healthy =
        jiff::SignedDuration::try_from(rule.healthy_for).unwrap_or(jiff::SignedDuration::MAX);
    if ran < healthy {
        return skip(format!(
            "revision {} has run only {} without restarts; healthy_for asks {}",
            previous.number,
            span(ran),
            crashscope_model::duration::format_go(rule.healthy_for)
        ));
    }
    Decision::RollBack {
        from: newest.number,
        to: previous.number,
        why: format!(
            "the crash loop began {} after the rollout to revision {}; revision {} ran {} without restarts",
            span(after),
            newest.number,
            previous.number,
            span(ran)
        ),
    }
}

/// A watched cluster the engine may act on: its name as the watcher labels its objects
/// (None: the kubeconfig's current cluster, unnamed) and an API client.
#[derive(Clone)]
pub struct ClusterClient {
    pub name: Option<String>,
    pub client: kube::Client,
}

/// The Deployment an alert is about.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The cluster its pods came from (None: the local runtime or an unnamed cluster).
    pub cluster: Option<&'a str>,
    pub namespace: &'a str,
    pub deployment: &'a str,
}

/// Why the evidence could not be gathered (the decision then is not made).
#[derive(Debug, thiserror::Error)]
pub enum RemedyError {
    #[error(transparent)]
    Local(#[from] crashscope_local::history::UndoError),
    #[error(transparent)]
    Store(#[from] crashscope_store::StoreError),
}

/// Where a Deployment's history is: the local runtime's store, or a cluster.
enum Place<'a> {
    Local(Box<k8s_openapi::api::apps::v1::Deployment>),
    Cluster(&'a ClusterClient),
    Nowhere,
}

/// The evidence for [`decide`] from the store (and the cluster), and the action.
pub struct Remedy<'a> {
    pub store: &'a SqlStore,
    pub clusters: &'a [ClusterClient],
}

impl Remedy<'_> {
    /// Where Deployment `t` lives: the local runtime when it runs it (and the alert is not
    /// a named cluster's), else the watched cluster the alert came from.
    async fn place(&self, t: Target<'_>) -> Result<Place<'_>, RemedyError> {
        use crashscope_local::history::{self, UndoError};
        if t.cluster.is_none() {
            match history::applied(self.store, t.namespace, t.deployment).await {
                Ok(d) => return Ok(Place::Local(Box::new(d))),
                Err(UndoError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(self
            .clusters
            .iter()
            .find(|c| c.name.as_deref() == t.cluster)
            .map_or(Place::Nowhere, Place::Cluster))
    }

    /// Decides and acts for the alert of rule `rule_name` about Deployment `t`; the event
    /// left on the feed.
    pub async fn rollback(
        &self,
        rule_name: &str,
        action: &RollbackAction,
        t: Target<'_>,
        crashing: &[String],
        began: Timestamp,
        now: Timestamp,
    ) -> Result<Event, RemedyError> {
        use crashscope_local::history;
        let (ns, name) = (t.namespace, t.deployment);
        let place = self.place(t).await?;
        // A Deployment with no history here has nothing to go back to, which the decision
        // says; a cluster that cannot be read is a failure the feed tells.
        let sets = match &place {
            Place::Local(d) => history::revisions(self.store, ns, d).await?,
            Place::Cluster(c) => match crashscope_kube::rollout::history(&c.client, ns, name).await
            {
                Ok((_, h)) => h,
                Err(e) => return self.failed(rule_name, t, &e.to_string(), now).await,
            },
            Place::Nowhere => Vec::new(),
        };
        let revisions: Vec<Revision> = sets
            .iter()
            .filter_map(|(n, rs)| {
                Some(Revision {
                    number: *n,
                    hash: rs
                        .metadata
                        .labels
                        .as_ref()?
                        .get("pod-template-hash")?
                        .clone(),
                    created: rs.metadata.creation_timestamp.as_ref()?.0,
                })
            })
            .collect();
        let hashes: Vec<&str> = revisions.iter().map(|r| r.hash.as_str()).collect();
        let pods: Vec<PodRun> = self
            .store
            .current_pods()
            .await?
            .into_iter()
            .filter(|p: &PodState| p.namespace == ns && p.cluster.as_deref() == t.cluster)
            .filter_map(|p| {
                let hash = p.labels.get("pod-template-hash")?.clone();
                hashes.contains(&hash.as_str()).then(|| PodRun {
                    restarts: p.containers.iter().map(|c| c.restart_count).sum(),
                    created: p.created,
                    name: p.name,
                    hash,
                })
            })
            .collect();
        let decision = decide(
            action,
            &Situation {
                namespace: ns,
                deployment: name,
                revisions: &revisions,
                pods: &pods,
                crashing,
                began,
                now,
            },
        );
        let (reason, message) = match decision {
            Decision::Skip(why) => (
                "RollbackSkipped",
                format!("Not rolling back deployment {name} (rule {rule_name}): {why}"),
            ),
            Decision::RollBack { from, to, why } if action.dry_run => (
                "RolledBack",
                format!(
                    "Dry run: would roll back deployment {name} from revision {from} to {to} (rule {rule_name}): {why}"
                ),
            ),
            Decision::RollBack { from, to, why } => {
                match &place {
                    Place::Cluster(c) => {
                        match crashscope_kube::rollout::undo(&c.client, ns, name, to).await {
                            Ok(crashscope_kube::rollout::Undone::RolledBack { .. }) => {}
                            // Someone went back already: nothing was done, and the feed says so.
                            Ok(crashscope_kube::rollout::Undone::Skipped { to }) => {
                                let message = format!(
                                    "Not rolling back deployment {name} (rule {rule_name}): its template already is revision {to}'s"
                                );
                                return self
                                    .record(rule_name, t, "RollbackSkipped", message, Severity::Warning, now)
                                    .await;
                            }
                            Err(e) => return self.failed(rule_name, t, &e.to_string(), now).await,
                        }
                    }
                    _ => {
                        crashscope_local::history::undo(self.store, ns, name, to).await?;
                    }
                }
                (
                    "RolledBack",
                    format!(
                        "Rolled back deployment {name} from revision {from} to {to} (rule {rule_name}): {why}"
                    ),
                )
            }
        };
        self.record(rule_name, t, reason, message, Severity::Warning, now)
            .await
    }

    /// A `RollbackFailed` event: the cluster refused or could not be read.
    async fn failed(
        &self,
        rule_name: &str,
        t: Target<'_>,
        why: &str,
        now: Timestamp,
    ) -> Result<Event, RemedyError> {
        let message = format!(
            "Could not roll back deployment {} (rule {rule_name}): {why}",
            t.deployment
        );
        self.record(
            rule_name,
            t,
            "RollbackFailed",
            message,
            Severity::Error,
            now,
        )
        .await
    }

    /// Leaves the event about Deployment `t` on the feed.
    async fn record(
        &self,
        rule_name: &str,
        t: Target<'_>,
        reason: &str,
        message: String,
        severity: Severity,
        now: Timestamp,
    ) -> Result<Event, RemedyError> {
        let (ns, name) = (t.namespace, t.deployment);
        let involved = ObjectRef {
            kind: "Deployment".into(),
            namespace: Some(ns.to_string()),
            name: name.to_string(),
            uid: None,
            api_version: Some("apps/v1".into()),
            field_path: None,
        };
        let mut ev = Event::about(
            crashscope_model::event::SOURCE_CRASHSCOPE,
            "crashscope, rule engine",
            if severity >= Severity::Error {
                EventType::Warning
            } else {
                EventType::Normal
            },
            severity,
            reason,
            message,
            involved,
            now,
        );
        ev.scope.cluster = t.cluster.map(str::to_string);
        ev.tags.insert("rule".to_string(), rule_name.to_string());
        self.store.upsert_event(&ev).await?;
        Ok(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_765_000_000;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(T0 + secs).unwrap()
    }

    fn rule() -> RollbackAction {
        RollbackAction {
            namespaces: ["shop".to_string()].into(),
            window: Duration::from_secs(900),
            healthy_for: Duration::from_secs(600),
            dry_run: false,
        }
    }

    fn revisions() -> Vec<Revision> {
        vec![
            Revision {
                number: 1,
                hash: "aaa".into(),
                created: at(0),
            },
            Revision {
                number: 2,
                hash: "bbb".into(),
                created: at(3600),
            },
        ]
    }

    fn pod(name: &str, hash: &str, restarts: u32, created: i64) -> PodRun {
        PodRun {
            name: name.into(),
            hash: hash.into(),
            restarts,
            created: Some(at(created)),
        }
    }

    fn situation<'a>(
        ns: &'a str,
        revs: &'a [Revision],
        pods: &'a [PodRun],
        crashing: &'a [String],
        began: i64,
    ) -> Situation<'a> {
        Situation {
            namespace: ns,
            deployment: "web",
            revisions: revs,
            pods,
            crashing,
            began: at(began),
            now: at(began + 30),
        }
    }

    #[test]
    fn a_crash_loop_right_after_a_rollout_goes_back_to_the_healthy_revision() {
        let revs = revisions();
        let pods = [
            pod("web-aaa-1", "aaa", 0, 10),
            pod("web-bbb-1", "bbb", 4, 3600),
        ];
        let crashing = ["web-bbb-1".to_string()];
        match decide(&rule(), &situation("shop", &revs, &pods, &crashing, 3650)) {
            Decision::RollBack { from, to, why } => {
                assert_eq!((from, to), (2, 1));
                assert!(
                    why.contains("began 50s after the rollout to revision 2"),
                    "{why}"
                );
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn it_abstains_when_any_condition_is_not_proven() {
        let revs = revisions();
        let crashing = ["web-bbb-1".to_string()];
        let healthy = [
            pod("web-aaa-1", "aaa", 0, 10),
            pod("web-bbb-1", "bbb", 4, 3600),
        ];
        let skip = |d: Decision, what: &str| match d {
            Decision::Skip(why) => assert!(why.contains(what), "{why}"),
            d => panic!("{d:?}"),
        };
        // Not an allowed namespace.
        skip(
            decide(
                &rule(),
                &situation("prod", &revs, &healthy, &crashing, 3650),
            ),
            "not among",
        );
        // The crashes began long after the rollout.
        skip(
            decide(
                &rule(),
                &situation("shop", &revs, &healthy, &crashing, 3600 + 7200),
            ),
            "outside the 15m0s window",
        );
        // The previous revision crashed too.
        let both = [
            pod("web-aaa-1", "aaa", 2, 10),
            pod("web-bbb-1", "bbb", 4, 3600),
        ];
        skip(
            decide(&rule(), &situation("shop", &revs, &both, &crashing, 3650)),
            "crashed too",
        );
        // The previous revision has not run long enough to call it healthy.
        let young = [
            pod("web-aaa-1", "aaa", 0, 3500),
            pod("web-bbb-1", "bbb", 4, 3600),
        ];
        skip(
            decide(&rule(), &situation("shop", &revs, &young, &crashing, 3650)),
            "has run only",
        );
        // Nothing left of it.
        let gone = [pod("web-bbb-1", "bbb", 4, 3600)];
        skip(
            decide(&rule(), &situation("shop", &revs, &gone, &crashing, 3650)),
            "no pods left",
        );
        // The crashing pod is the old revision's: the rollout did not break it.
        let old_crash = ["web-aaa-1".to_string()];
        skip(
            decide(
                &rule(),
                &situation("shop", &revs, &healthy, &old_crash, 3650),
            ),
            "not all revision 2's",
        );
        // One revision only.
        skip(
            decide(
                &rule(),
                &situation("shop", &revs[1..], &healthy, &crashing, 3650),
            ),
            "no earlier revision",
        );
    }
}
