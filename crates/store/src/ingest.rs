//! The one writer every source uses to put what it saw into the store, saying what was news:
//! pod states over time (a restart sample each time a restart count rises), events
//! deduplicated (an Event updated in place is the same occurrence, its count rises), owner
//! chains confirmed from the ReplicaSets themselves, node readiness. A relist or a replayed
//! list changes nothing twice. The Kubernetes watcher, the local runtime and `ingest` of files
//! all go through [`Ingest::record`], so a pod reaches the store the same way from each.

use std::collections::{HashMap, HashSet};
use std::future::Future;

use futures::{Stream, StreamExt};

use crashscope_model::change::Change;
use crashscope_model::owner::{controller_of, OwnerLink};
use crashscope_model::{Catalog, Event, PodState};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::{RestartSample, Store, StoreError, Upsert};

/// One line of the live feed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Feed {
    /// A container restarted (its restart count rose).
    Restart(RestartSample),
    /// An event occurred for the first time, or again (`added` more times).
    Event {
        #[serde(flatten)]
        event: Box<Event>,
        added: u32,
    },
    /// A node became ready or not ready (pods on a NotReady node are evicted or stall).
    Node {
        name: String,
        ready: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Something went wrong; the watchers retry.
    Warning { message: String },
}

/// What an ingest wrote so far (for status lines and `ingest`'s summary).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Pod states seen, and how many differed from the last one stored.
    pub pods: u64,
    pub states: u64,
    /// Restart samples written (a first sighting counts: it is history).
    pub samples: u64,
    /// Events seen; first occurrences, repeats counted on an existing row, and events
    /// without a timestamp (nothing to place them by).
    pub events: u64,
    pub events_new: u64,
    pub events_updated: u64,
    pub events_skipped: u64,
}

/// Writes changes into the store and says what was new.
pub struct Ingest<'s, S: Store> {
    pub store: &'s S,
    pub catalog: Catalog,
    pub tally: Tally,
    /// Also keep each Pod object itself, for sources that are the API server of their pods
    /// (the local runtime): `get`/`describe` read them back.
    keep_pods: bool,
    /// The time states are recorded at; the wall clock when unset.
    clock: Option<Timestamp>,
    /// Containers whose restart count this recorder has seen: a first sighting is history,
    /// not news.
    known: HashSet<(String, String, String)>,
    /// ReplicaSets by (namespace, name): their controller, if any.
    replicasets: HashMap<(String, String), Option<OwnerLink>>,
    /// Node readiness as last seen.
    nodes: HashMap<String, bool>,
    /// The cluster this source watches, stamped on its pods and events (several clusters
    /// feeding one store).
    cluster: Option<String>,
}

impl<'s, S: Store> Ingest<'s, S> {
    pub fn new(store: &'s S, catalog: Catalog) -> Self {
        Ingest {
            store,
            catalog,
            tally: Tally::default(),
            keep_pods: false,
            clock: None,
            known: HashSet::new(),
            replicasets: HashMap::new(),
            nodes: HashMap::new(),
            cluster: None,
        }
    }

    /// Names the cluster of everything recorded.
    pub fn in_cluster(mut self, cluster: Option<String>) -> Self {
        self.cluster = cluster;
        self
    }

    /// Keeps Pod objects too (see the field).
    pub fn keeping_pods(mut self) -> Self {
        self.keep_pods = true;
        self
    }

    /// Records at `at` instead of the wall clock (replayed files, reproducible runs).
    pub fn at(mut self, at: Timestamp) -> Self {
        self.clock = Some(at);
        self
    }

    /// Records one change; returns the feed lines it produced.
    pub async fn record(&mut self, change: Change) -> Result<Vec<Feed>, StoreError> {
        match change {
            Change::Pod(p) => {
                if self.keep_pods {
                    let (ns, name) = ns_name(&p.metadata);
                    let body = serde_json::to_value(&*p).unwrap_or_default();
                    self.store.put_object("Pod", &ns, &name, &body).await?;
                }
                self.pod(PodState::from_pod(&p)).await
            }
            Change::PodDeleted(p) => {
                if self.keep_pods {
                    self.delete_pod(&p).await?;
                }
                Ok(Vec::new())
            }
            Change::Event(e) => {
                self.tally.events += 1;
                match Event::from_kube(&e, &self.catalog) {
                    Some(ev) => self.event(ev).await,
                    None => {
                        self.tally.events_skipped += 1;
                        Ok(Vec::new())
                    }
                }
            }
            Change::Occurred(ev) => {
                self.tally.events += 1;
                self.event(*ev).await
            }
            Change::ReplicaSet(rs) => {
                let owner = controller_of(&rs.metadata).map(OwnerLink::from_ref);
                self.replicasets.insert(ns_name(&rs.metadata), owner);
                Ok(Vec::new())
            }
            Change::ReplicaSetDeleted(rs) => {
                self.replicasets.remove(&ns_name(&rs.metadata));
                Ok(Vec::new())
            }
            Change::Deployment(d) => {
                let body = serde_json::to_value(&*d).unwrap_or_default();
                let (ns, name) = ns_name(&d.metadata);
                self.store
                    .put_object("Deployment", &ns, &name, &body)
                    .await?;
                Ok(Vec::new())
            }
            Change::DeploymentDeleted(d) => {
                let (ns, name) = ns_name(&d.metadata);
                self.store.delete_object("Deployment", &ns, &name).await?;
                Ok(Vec::new())
            }
            Change::Node(n) => self.node(&n).await,
            Change::NodeDeleted(n) => {
                let (_, name) = ns_name(&n.metadata);
                self.nodes.remove(&name);
                self.store.delete_object("Node", "", &name).await?;
                Ok(Vec::new())
            }
            Change::Error { message, .. } => Ok(vec![Feed::Warning { message }]),
            Change::Relist(_) | Change::Synced(_) => Ok(Vec::new()),
        }
    }

    /// Records every change of `changes` until they end or `stop` completes: the watcher's
    /// pump into the store. `seen` learns of each change before it is recorded (health,
    /// logs), `feed` gets the news it made.
    pub async fn pump<E: From<StoreError>>(
        &mut self,
        changes: impl Stream<Item = Change>,
        stop: impl Future<Output = ()>,
        mut seen: impl FnMut(&Change),
        mut feed: impl FnMut(Vec<Feed>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut changes = std::pin::pin!(changes);
        let mut stop = std::pin::pin!(stop);
        loop {
            let change = tokio::select! {
                c = changes.next() => match c {
                    Some(c) => c,
                    None => return Ok(()),
                },
                _ = &mut stop => return Ok(()),
            };
            seen(&change);
            feed(self.record(change).await?)?;
        }
    }

    /// Removes a kept pod unless a newer pod (another uid) has taken its name since.
    async fn delete_pod(&self, pod: &Pod) -> Result<(), StoreError> {
        let (ns, name) = ns_name(&pod.metadata);
        let current = self.store.objects("Pod").await?.into_iter().find(|p| {
            p.pointer("/metadata/namespace").and_then(|v| v.as_str()) == Some(ns.as_str())
                && p.pointer("/metadata/name").and_then(|v| v.as_str()) == Some(name.as_str())
        });
        let current_uid = current
            .as_ref()
            .and_then(|p| p.pointer("/metadata/uid"))
            .and_then(|v| v.as_str());
        let uid = pod.metadata.uid.as_deref();
        if current.is_some() && (uid.is_none() || current_uid == uid) {
            self.store.delete_object("Pod", &ns, &name).await?;
        }
        Ok(())
    }

    /// The pod's owner chain with the ReplicaSet's real controller in place of the one
    /// guessed from the pod-template-hash (an Argo Rollout's ReplicaSet is no Deployment's).
    fn confirm_owners(&self, state: &mut PodState) {
        let Some(rs) = state.owners.controller().filter(|c| c.kind == "ReplicaSet") else {
            return;
        };
        let key = (state.namespace.clone(), rs.name.clone());
        if let Some(owner) = self.replicasets.get(&key) {
            state.owners.links.truncate(1);
            state.owners.links.extend(owner.clone());
        }
    }

    async fn pod(&mut self, mut state: PodState) -> Result<Vec<Feed>, StoreError> {
        self.tally.pods += 1;
        if state.cluster.is_none() {
            state.cluster.clone_from(&self.cluster);
        }
        self.confirm_owners(&mut state);
        let at = self.clock.unwrap_or_else(Timestamp::now);
        let c = self.store.record_pod(at, &state).await?;
        self.tally.states += u64::from(c.stored);
        self.tally.samples += c.restarts.len() as u64;
        let mut feed = Vec::new();
        for r in c.restarts {
            let key = (r.namespace.clone(), r.pod.clone(), r.container.clone());
            if self.known.contains(&key) && r.restart_count > 0 {
                feed.push(Feed::Restart(r));
            }
        }
        for ct in &state.containers {
            self.known
                .insert((state.namespace.clone(), state.name.clone(), ct.name.clone()));
        }
        Ok(feed)
    }

    async fn event(&mut self, mut ev: Event) -> Result<Vec<Feed>, StoreError> {
        if ev.scope.cluster.is_none() {
            ev.scope.cluster.clone_from(&self.cluster);
        }
        let added = match self.store.upsert_event(&ev).await? {
            Upsert::Inserted { .. } => {
                self.tally.events_new += 1;
                1
            }
            Upsert::Updated { added, .. } => {
                self.tally.events_updated += 1;
                added
            }
            Upsert::Unchanged { .. } => 0,
        };
        Ok(if added > 0 {
            vec![Feed::Event {
                event: Box::new(ev),
                added,
            }]
        } else {
            Vec::new()
        })
    }

    async fn node(&mut self, n: &Node) -> Result<Vec<Feed>, StoreError> {
        let (_, name) = ns_name(&n.metadata);
        let ready = n
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
        let is_ready = ready.is_some_and(|c| c.status == "True");
        let body = serde_json::to_value(n).unwrap_or_default();
        self.store.put_object("Node", "", &name, &body).await?;
        let before = self.nodes.insert(name.clone(), is_ready);
        // A node first seen ready is no news; one first seen not ready is.
        let news = match before {
            Some(b) => b != is_ready,
            None => !is_ready,
        };
        Ok(if news {
            vec![Feed::Node {
                name,
                ready: is_ready,
                reason: ready.and_then(|c| c.reason.clone()),
            }]
        } else {
            Vec::new()
        })
    }
}

/// An object's namespace (empty when cluster-scoped) and name.
fn ns_name(meta: &ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}
