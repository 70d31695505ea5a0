//! The local runtime's Deployment and ReplicaSet controllers: each Deployment keeps its
//! ReplicaSets (one per pod template it has had, numbered by revision, kept in the store as
//! kind `ReplicaSet` so that `rollout history` and `undo` outlive a run), rolls from one to
//! the next with the strategy's bounds ([`crate::rollout`]), says each scaling as the
//! deployment-controller does (`ScalingReplicaSet`), and publishes the Deployment's status
//! with its `Available` and `Progressing` conditions.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crashscope_model::change::Change;
use crashscope_model::{Catalog, Event, ObjectRef};
use crashscope_store::{SqlStore, Store, StoreError};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec, ReplicaSetStatus,
};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use crate::names;
use crate::rollout::{self, Bounds, IntOrPercent, Observed, Progress, Rollout, Set};

/// Store kind of the ReplicaSets the runtime made.
pub const REPLICASET: &str = "ReplicaSet";

/// One ReplicaSet of a Deployment.
#[derive(Debug, Clone)]
struct Rs {
    name: String,
    hash: String,
    revision: u64,
    replicas: i32,
    template: PodTemplateSpec,
    uid: String,
    created: Timestamp,
    change_cause: Option<String>,
    /// What was last written to the store, to write only changes.
    published: Option<Value>,
}

/// A Deployment as the controller follows it.
struct Deploy {
    sets: Vec<Rs>,
    rollout: Rollout,
    published: Option<Value>,
    uid: String,
    conditions: Vec<DeploymentCondition>,
}

/// A pod of the runtime, as the controller sees it.
pub struct PodView<'a> {
    /// The key of what owns it (`Deployment/ns/name/hash` for a ReplicaSet's pods).
    pub owner: &'a str,
    pub name: &'a str,
    pub pod: Pod,
}

/// What a pass of the controllers wants done.
#[derive(Default)]
pub struct Outcome {
    /// Pods the ReplicaSets want: (namespace, name) -> (owner key, pod).
    pub want: Vec<((String, String), (String, Pod))>,
    pub events: Vec<Event>,
    pub changes: Vec<Change>,
}

/// The controllers' memory between passes.
pub struct Controllers {
    deploys: BTreeMap<(String, String), Deploy>,
    catalog: Catalog,
    /// The runtime's clock (0.05 runs 20 times faster): minReadySeconds and the progress
    /// deadline pass at its pace.
    scale: f64,
}

/// The owner key of a ReplicaSet's pods.
pub fn owner_key(ns: &str, deployment: &str, hash: &str) -> String {
    format!("Deployment/{ns}/{deployment}/{hash}")
}

fn int_or_percent(v: &IntOrString) -> IntOrPercent {
    match v {
        IntOrString::Int(n) => IntOrPercent::Int(*n),
        IntOrString::String(s) => IntOrPercent::Percent(s.clone()),
    }
}

/// Whether `pod` has been ready for `min_ready` (the controller's "available").
fn available(pod: &Pod, min_ready: Duration) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| {
            c.status == "True"
                && c.last_transition_time.as_ref().is_none_or(|t| {
                    let ready_for = Timestamp::now().duration_since(t.0);
                    ready_for.as_secs_f64() >= min_ready.as_secs_f64()
                })
        })
}

fn ready(pod: &Pod) -> bool {
    available(pod, Duration::ZERO)
}

impl Rs {
    fn from_stored(v: Value) -> Option<Rs> {
        let rs: ReplicaSet = serde_json::from_value(v.clone()).ok()?;
        let meta = &rs.metadata;
        let ann = |k: &str| meta.annotations.as_ref().and_then(|a| a.get(k)).cloned();
        let spec = rs.spec?;
        Some(Rs {
            name: meta.name.clone()?,
            hash: meta
                .labels
                .as_ref()
                .and_then(|l| l.get("pod-template-hash"))
                .cloned()?,
            revision: ann(rollout::REVISION)?.parse().ok()?,
            replicas: spec.replicas.unwrap_or(0),
            template: spec.template?,
            uid: meta.uid.clone().unwrap_or_else(names::uid),
            created: meta
                .creation_timestamp
                .as_ref()
                .map_or_else(Timestamp::now, |t| t.0),
            change_cause: ann(rollout::CHANGE_CAUSE),
            published: Some(v),
        })
    }

    fn object(
        &self,
        ns: &str,
        deployment: &str,
        deployment_uid: &str,
        pods: i32,
        ready: i32,
        avail: i32,
    ) -> ReplicaSet {
        let mut annotations =
            BTreeMap::from([(rollout::REVISION.to_string(), self.revision.to_string())]);
        if let Some(c) = &self.change_cause {
            annotations.insert(rollout::CHANGE_CAUSE.into(), c.clone());
        }
        let labels = self
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone());
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(ns.to_string()),
                uid: Some(self.uid.clone()),
                creation_timestamp: Some(Time(self.created)),
                labels,
                annotations: Some(annotations),
                owner_references: Some(vec![OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "Deployment".into(),
                    name: deployment.to_string(),
                    uid: deployment_uid.to_string(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(self.replicas),
                template: Some(self.template.clone()),
                ..Default::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas: pods,
                ready_replicas: Some(ready),
                available_replicas: Some(avail),
                ..Default::default()
            }),
        }
    }
}

/// The condition `type_` at `status` for `reason`, keeping its times while it holds.
fn condition(
    old: &[DeploymentCondition],
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
) -> DeploymentCondition {
    let now = Time(Timestamp::now());
    let same = old
        .iter()
        .find(|c| c.type_ == type_ && c.status == status && c.reason.as_deref() == Some(reason));
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: Some(
            same.and_then(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.clone()),
        ),
        last_update_time: Some(same.and_then(|c| c.last_update_time.clone()).unwrap_or(now)),
    }
}

impl Controllers {
    pub fn new(catalog: Catalog, scale: f64) -> Controllers {
        Controllers {
            deploys: BTreeMap::new(),
            catalog,
            scale,
        }
    }

    /// One pass over Deployment `ns/name`: its ReplicaSets scaled one step, the pods they
    /// want, what changed.
    pub async fn deployment(
        &mut self,
        store: &SqlStore,
        (ns, name): (&str, &str),
        d: &Deployment,
        pods: &[PodView<'_>],
        out: &mut Outcome,
    ) -> Result<(), StoreError> {
        let (scale, catalog) = (self.scale, &self.catalog);
        let Some(spec) = &d.spec else {
            return Ok(());
        };
        let key = (ns.to_string(), name.to_string());
        if !self.deploys.contains_key(&key) {
            // Revision history from an earlier run.
            let mut sets: Vec<Rs> = store
                .objects(REPLICASET)
                .await?
                .into_iter()
                .filter(|v| {
                    v.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns)
                        && v.pointer("/metadata/ownerReferences/0/name")
                            .and_then(Value::as_str)
                            == Some(name)
                })
                .filter_map(Rs::from_stored)
                .collect();
            sets.sort_by_key(|s| s.revision);
            self.deploys.insert(
                key.clone(),
                Deploy {
                    sets,
                    rollout: Rollout::new(Instant::now()),
                    published: None,
                    uid: d.metadata.uid.clone().unwrap_or_else(names::uid),
                    conditions: Vec::new(),
                },
            );
        }
        let Some(dep) = self.deploys.get_mut(&key) else {
            return Ok(());
        };
        let now = Instant::now();
        let template_json = serde_json::to_value(&spec.template).unwrap_or(Value::Null);
        let hash = names::template_hash(&template_json);
        let top = dep.sets.iter().map(|s| s.revision).max().unwrap_or(0);
        let cause = d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(rollout::CHANGE_CAUSE))
            .cloned();
        match dep.sets.iter_mut().find(|s| s.hash == hash) {
            None => {
                let mut template = spec.template.clone();
                template
                    .metadata
                    .get_or_insert_with(Default::default)
                    .labels
                    .get_or_insert_with(BTreeMap::new)
                    .insert("pod-template-hash".into(), hash.clone());
                dep.sets.push(Rs {
                    name: format!("{name}-{hash}"),
                    hash: hash.clone(),
                    revision: top + 1,
                    replicas: 0,
                    template,
                    uid: names::uid(),
                    created: Timestamp::now(),
                    change_cause: cause,
                    published: None,
                });
                dep.rollout.restart(now);
            }
            // Back to an earlier template (an undo): that ReplicaSet is the newest revision.
            Some(s) if s.revision != top => {
                s.revision = top + 1;
                s.change_cause = cause;
                dep.rollout.restart(now);
            }
            Some(_) => {}
        }
        dep.sets.sort_by_key(|s| s.revision);
        let replicas = spec.replicas.unwrap_or(1).max(0);
        let min_ready =
            Duration::from_secs(u64::try_from(spec.min_ready_seconds.unwrap_or(0)).unwrap_or(0))
                .mul_f64(scale);
        let deadline = Duration::from_secs(
            u64::try_from(spec.progress_deadline_seconds.unwrap_or(600)).unwrap_or(600),
        )
        .mul_f64(scale);
        let pods_of = |s: &Rs| -> Vec<&PodView<'_>> {
            let owner = owner_key(ns, name, &s.hash);
            pods.iter().filter(|p| p.owner == owner).collect()
        };
        let avail_of = |s: &Rs| {
            pods_of(s)
                .iter()
                .filter(|p| available(&p.pod, min_ready))
                .count() as i32
        };
        let view = |s: &Rs| Set {
            name: s.name.clone(),
            revision: s.revision,
            replicas: s.replicas,
            available: avail_of(s),
        };
        let (new, old) = match dep.sets.split_last() {
            Some((new, old)) => (view(new), old.iter().map(view).collect::<Vec<_>>()),
            None => return Ok(()),
        };
        let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
        let ru = spec
            .strategy
            .as_ref()
            .and_then(|s| s.rolling_update.as_ref());
        // A bound the API would refuse falls back to the defaults' shape for one replica.
        let bounds = Bounds::resolve(
            replicas,
            ru.and_then(|r| r.max_surge.as_ref())
                .map(int_or_percent)
                .as_ref(),
            ru.and_then(|r| r.max_unavailable.as_ref())
                .map(int_or_percent)
                .as_ref(),
        )
        .unwrap_or(Bounds {
            max_surge: 1,
            max_unavailable: 0,
        });
        let scalings = if recreate {
            // Every old pod goes before the first new one starts.
            let old_pods: usize = dep.sets[..dep.sets.len() - 1]
                .iter()
                .map(|s| pods_of(s).len())
                .sum();
            let mut v: Vec<rollout::Scale> = old
                .iter()
                .filter(|s| s.replicas > 0)
                .map(|s| rollout::Scale {
                    set: s.name.clone(),
                    from: s.replicas,
                    to: 0,
                })
                .collect();
            if v.is_empty() && old_pods == 0 && new.replicas != replicas {
                v.push(rollout::Scale {
                    set: new.name.clone(),
                    from: new.replicas,
                    to: replicas,
                });
            }
            v
        } else {
            rollout::plan(replicas, bounds, &new, &old)
        };
        let involved = ObjectRef {
            kind: "Deployment".into(),
            namespace: Some(ns.to_string()),
            name: name.to_string(),
            uid: Some(dep.uid.clone()),
            api_version: Some("apps/v1".into()),
            field_path: None,
        };
        for sc in &scalings {
            if let Some(s) = dep.sets.iter_mut().find(|s| s.name == sc.set) {
                s.replicas = sc.to;
            }
            out.events.push(crate::events::object_event(
                involved.clone(),
                "deployment-controller",
                crashscope_model::EventType::Normal,
                "ScalingReplicaSet",
                sc.message(),
                catalog,
            ));
        }
        // The ReplicaSet controller: each set's pods to its replicas, ready pods kept first.
        let (mut total, mut ready_all, mut avail_all) = (0, 0, 0);
        for s in &mut dep.sets {
            let owner = owner_key(ns, name, &s.hash);
            let mut mine = pods_of(s);
            mine.sort_by_key(|p| !ready(&p.pod));
            let n = usize::try_from(s.replicas).unwrap_or(0);
            let mut names: Vec<String> = mine.iter().take(n).map(|p| p.name.to_string()).collect();
            while names.len() < n {
                names.push(format!("{}-{}", s.name, names::suffix()));
            }
            for pod_name in names {
                let mut meta = s.template.metadata.clone().unwrap_or_default();
                meta.name = Some(pod_name.clone());
                meta.namespace = Some(ns.to_string());
                meta.generate_name = Some(format!("{}-", s.name));
                meta.owner_references = Some(vec![OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "ReplicaSet".into(),
                    name: s.name.clone(),
                    uid: s.uid.clone(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]);
                let pod = Pod {
                    metadata: meta,
                    spec: s.template.spec.clone(),
                    status: None,
                };
                out.want
                    .push(((ns.to_string(), pod_name), (owner.clone(), pod)));
            }
            let pods_now = mine.len() as i32;
            let ready_now = mine.iter().filter(|p| ready(&p.pod)).count() as i32;
            let avail_now = mine.iter().filter(|p| available(&p.pod, min_ready)).count() as i32;
            total += pods_now;
            ready_all += ready_now;
            avail_all += avail_now;
            let obj = s.object(ns, name, &dep.uid, pods_now, ready_now, avail_now);
            let v = serde_json::to_value(&obj).unwrap_or(Value::Null);
            if s.published.as_ref() != Some(&v) {
                store.put_object(REPLICASET, ns, &s.name, &v).await?;
                out.changes.push(Change::ReplicaSet(Box::new(obj)));
                s.published = Some(v);
            }
        }
        // The Deployment's status.
        let Some(newest) = dep.sets.last() else {
            return Ok(());
        };
        let updated = newest.replicas;
        let updated_avail = avail_of(newest);
        let old_replicas: i32 = dep.sets[..dep.sets.len() - 1]
            .iter()
            .map(|s| s.replicas)
            .sum();
        let progress = dep.rollout.step(
            Observed {
                replicas,
                updated,
                updated_available: updated_avail,
                old: old_replicas,
            },
            now,
            deadline,
        );
        let max_unavailable = if recreate {
            replicas
        } else {
            bounds.max_unavailable
        };
        let rs_name = &newest.name;
        let available_cond = if avail_all >= replicas - max_unavailable {
            condition(
                &dep.conditions,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
            )
        } else {
            condition(
                &dep.conditions,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
            )
        };
        let progressing = match progress {
            Progress::Complete => condition(
                &dep.conditions,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
            ),
            Progress::Progressing { .. } => condition(
                &dep.conditions,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{rs_name}\" is progressing."),
            ),
            Progress::DeadlineExceeded => condition(
                &dep.conditions,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
            ),
        };
        dep.conditions = vec![available_cond, progressing];
        let mut observed = d.clone();
        observed.metadata.uid = Some(dep.uid.clone());
        observed
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(rollout::REVISION.into(), newest.revision.to_string());
        let generation = observed.metadata.generation.unwrap_or(1);
        observed.metadata.generation = Some(generation);
        observed.status = Some(DeploymentStatus {
            observed_generation: Some(generation),
            replicas: Some(total),
            updated_replicas: Some(pods_of(newest).len() as i32),
            ready_replicas: Some(ready_all),
            available_replicas: Some(avail_all),
            unavailable_replicas: Some((replicas - avail_all).max(0)),
            conditions: Some(dep.conditions.clone()),
            ..Default::default()
        });
        let v = serde_json::to_value(&observed).unwrap_or(Value::Null);
        if dep.published.as_ref() != Some(&v) {
            dep.published = Some(v);
            out.changes.push(Change::Deployment(Box::new(observed)));
        }
        Ok(())
    }

    /// Forgets Deployments no longer applied, with their ReplicaSets (deleted from the store,
    /// as the garbage collector deletes what a deleted Deployment owned); their pods are no
    /// longer wanted.
    pub async fn forget_all_but(
        &mut self,
        store: &SqlStore,
        keep: impl Fn(&(String, String)) -> bool,
        out: &mut Outcome,
    ) -> Result<(), StoreError> {
        let gone: Vec<(String, String)> =
            self.deploys.keys().filter(|k| !keep(k)).cloned().collect();
        for key in gone {
            let Some(dep) = self.deploys.remove(&key) else {
                continue;
            };
            for s in &dep.sets {
                store.delete_object(REPLICASET, &key.0, &s.name).await?;
            }
            let mut d = Deployment::default();
            d.metadata.namespace = Some(key.0.clone());
            d.metadata.name = Some(key.1.clone());
            out.changes.push(Change::DeploymentDeleted(Box::new(d)));
        }
        Ok(())
    }
}
