//! Writing watched changes into the store and saying what was news: pod states over time
//! (a restart sample each time a restart count rises), events deduplicated (an Event updated
//! in place is the same occurrence, its count rises), owner chains confirmed from the
//! ReplicaSets themselves, node readiness. A relist or a replayed list changes nothing twice.

use std::collections::{HashMap, HashSet};

use crashscope_model::owner::{controller_of, OwnerLink};
use crashscope_model::{Catalog, Event, PodState};
use crashscope_store::{RestartSample, Store, StoreError, Upsert};
use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;

use crate::watch::Change;

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

/// Writes changes into the store and says what was new.
pub struct Recorder<'s, S: Store> {
    pub store: &'s S,
    pub catalog: Catalog,
    /// Pods and events seen so far (for the status line).
    pub pods: u64,
    pub events: u64,
    /// Containers whose restart count this recorder has seen: a first sighting is history,
    /// not news.
    known: HashSet<(String, String, String)>,
    /// ReplicaSets by (namespace, name): their controller, if any.
    replicasets: HashMap<(String, String), Option<OwnerLink>>,
    /// Node readiness as last seen.
    nodes: HashMap<String, bool>,
}

impl<'s, S: Store> Recorder<'s, S> {
    pub fn new(store: &'s S, catalog: Catalog) -> Self {
        Recorder {
            store,
            catalog,
            pods: 0,
            events: 0,
            known: HashSet::new(),
            replicasets: HashMap::new(),
            nodes: HashMap::new(),
        }
    }

    /// Records one change; returns the feed lines it produced.
    pub async fn record(&mut self, change: Change) -> Result<Vec<Feed>, StoreError> {
        match change {
            Change::Pod(p) => self.pod(PodState::from_pod(&p)).await,
            Change::Event(e) => self.event(&e).await,
            Change::ReplicaSet(rs) => {
                let owner = controller_of(&rs.metadata).map(OwnerLink::from_ref);
                self.replicasets
                    .insert((rs.namespace().unwrap_or_default(), rs.name_any()), owner);
                Ok(Vec::new())
            }
            Change::ReplicaSetDeleted(rs) => {
                self.replicasets
                    .remove(&(rs.namespace().unwrap_or_default(), rs.name_any()));
                Ok(Vec::new())
            }
            Change::Deployment(d) => {
                let body = serde_json::to_value(&*d).unwrap_or_default();
                let ns = d.namespace().unwrap_or_default();
                self.store
                    .put_object("Deployment", &ns, &d.name_any(), &body)
                    .await?;
                Ok(Vec::new())
            }
            Change::DeploymentDeleted(d) => {
                let ns = d.namespace().unwrap_or_default();
                self.store
                    .delete_object("Deployment", &ns, &d.name_any())
                    .await?;
                Ok(Vec::new())
            }
            Change::Node(n) => self.node(&n).await,
            Change::NodeDeleted(n) => {
                self.nodes.remove(&n.name_any());
                self.store.delete_object("Node", "", &n.name_any()).await?;
                Ok(Vec::new())
            }
            Change::Error { message, .. } => Ok(vec![Feed::Warning { message }]),
            Change::PodDeleted(_) | Change::Relist(_) | Change::Synced(_) => Ok(Vec::new()),
        }
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
        self.pods += 1;
        self.confirm_owners(&mut state);
        let c = self
            .store
            .record_pod(jiff::Timestamp::now(), &state)
            .await?;
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

    async fn event(
        &mut self,
        e: &k8s_openapi::api::core::v1::Event,
    ) -> Result<Vec<Feed>, StoreError> {
        self.events += 1;
        let Some(ev) = Event::from_kube(e, &self.catalog) else {
            return Ok(Vec::new());
        };
        let added = match self.store.upsert_event(&ev).await? {
            Upsert::Inserted { .. } => 1,
            Upsert::Updated { added, .. } => added,
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
        let name = n.name_any();
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
