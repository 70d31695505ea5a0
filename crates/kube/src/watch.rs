//! Watching a cluster: kube-runtime watchers for Pods and core/v1 Events, merged into one
//! stream of changes, and the recorder that writes them into the store — pod states over
//! time, a restart sample each time a restart count rises, events deduplicated — so a
//! dropped connection, a `410 Gone` relist or a replayed list changes nothing twice.

use std::path::Path;

use crashscope_model::{Catalog, Event, PodState};
use crashscope_store::{RestartSample, Store, StoreError, Upsert};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Event as KubeEvent, Pod};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};

/// Why the cluster could not be reached or read.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("kubeconfig {path}")]
    Kubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error("no cluster configuration found (set KUBECONFIG, pass --kubeconfig, or run in a pod)")]
    Infer(#[from] kube::config::InferConfigError),
    #[error("cluster configuration")]
    Config(#[from] kube::config::KubeconfigError),
    #[error("cannot create a Kubernetes client")]
    Client(#[from] kube::Error),
}

/// A client from `--kubeconfig`/`--context`, else `KUBECONFIG`/`~/.kube/config`, else the
/// in-cluster service account.
pub async fn client(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<Client, WatchError> {
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let config = match (kubeconfig, context) {
        (Some(path), _) => {
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|source| {
                WatchError::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                }
            })?;
            kube::Config::from_custom_kubeconfig(kc, &options).await?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options).await?,
        (None, None) => kube::Config::infer().await?,
    };
    Ok(Client::try_from(config)?)
}

/// What the watchers saw.
#[derive(Debug)]
pub enum Change {
    Pod(Box<Pod>),
    PodDeleted(Box<Pod>),
    Event(Box<KubeEvent>),
    /// A watcher starts listing again (at start, after `410 Gone` or a failed list).
    Relist(&'static str),
    /// A watcher's list finished: the view of that resource is complete.
    Synced(&'static str),
    /// A failure the watcher will retry; the text says what and, for 403, which permission.
    Error(String),
}

/// Which objects to watch.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// One namespace, or all.
    pub namespace: Option<String>,
    /// A label selector for pods (`app=web,tier!=db`).
    pub labels: Option<String>,
    /// Back off after errors (off in tests, which script failures and must not sleep).
    pub backoff: bool,
}

fn api<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Pods and core/v1 Events of the selection, as one stream of changes. It never ends: errors
/// are items, and the watchers recover by themselves (re-watch, or relist after 410).
pub fn changes(client: &Client, sel: &Selection) -> impl Stream<Item = Change> + Send + use<> {
    let ns = sel.namespace.as_deref();
    let mut pod_cfg = watcher::Config::default();
    if let Some(l) = &sel.labels {
        pod_cfg = pod_cfg.labels(l);
    }
    let owned_ns = sel.namespace.clone();
    let pods =
        watch_of(api::<Pod>(client, ns), pod_cfg, sel.backoff, "pods").map(move |c| match c {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => Change::Pod(Box::new(p)),
            Ok(watcher::Event::Delete(p)) => Change::PodDeleted(Box::new(p)),
            Ok(watcher::Event::Init) => Change::Relist("pods"),
            Ok(watcher::Event::InitDone) => Change::Synced("pods"),
            Err(e) => Change::Error(explain(&e, "pods", owned_ns.as_deref())),
        });
    let events = watch_of(
        api::<KubeEvent>(client, ns),
        watcher::Config::default(),
        sel.backoff,
        "events",
    )
    .filter_map(|c| {
        futures::future::ready(match c {
            Ok(watcher::Event::Apply(e) | watcher::Event::InitApply(e)) => {
                Some(Change::Event(Box::new(e)))
            }
            // An Event object expiring (TTL) is no news: what it said is kept.
            Ok(watcher::Event::Delete(_)) => None,
            Ok(watcher::Event::Init) => Some(Change::Relist("events")),
            Ok(watcher::Event::InitDone) => Some(Change::Synced("events")),
            Err(e) => Some(Change::Error(explain(&e, "events", None))),
        })
    });
    futures::stream::select(pods, events)
}

type WatchItem<K> = Result<watcher::Event<K>, watcher::Error>;

fn watch_of<K>(
    api: Api<K>,
    cfg: watcher::Config,
    backoff: bool,
    _what: &'static str,
) -> futures::stream::BoxStream<'static, WatchItem<K>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let w = watcher(api, cfg);
    if backoff {
        w.default_backoff().boxed()
    } else {
        w.boxed()
    }
}

/// A watcher error in words; a 403 names the permission the RBAC role must grant.
pub fn explain(e: &watcher::Error, resource: &str, ns: Option<&str>) -> String {
    let status = match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s)) => Some(s.as_ref()),
        watcher::Error::WatchError(s) => Some(s.as_ref()),
        _ => None,
    };
    let verb = match e {
        watcher::Error::InitialListFailed(_) => "list",
        _ => "watch",
    };
    match status {
        Some(s) if s.code == 403 => format!(
            "forbidden: crashscope may not {verb} {resource} {} (grant get/list/watch on {resource}; \
             deploy/rbac.yaml has the role): {}",
            match ns {
                Some(ns) => format!("in namespace {ns}"),
                None => "at cluster scope".into(),
            },
            s.message
        ),
        Some(s) if s.code == 401 => format!(
            "unauthorized: the credentials were refused (expired token or certificate?): {}",
            s.message
        ),
        Some(s) if s.code == 410 => {
            format!("{resource}: the watch expired (410 Gone), listing again")
        }
        _ => format!("{resource}: {e}"),
    }
}

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
    /// Something went wrong; the watchers retry.
    Warning { message: String },
}

/// Writes changes into the store and says what was new.
pub struct Recorder<'s, S: Store> {
    pub store: &'s S,
    pub catalog: Catalog,
    /// Pods and events seen so far (for the health line).
    pub pods: u64,
    pub events: u64,
    /// Containers whose restart count this recorder has seen: a first sighting is history,
    /// not news.
    known: std::collections::HashSet<(String, String, String)>,
}

impl<'s, S: Store> Recorder<'s, S> {
    pub fn new(store: &'s S, catalog: Catalog) -> Self {
        Recorder {
            store,
            catalog,
            pods: 0,
            events: 0,
            known: Default::default(),
        }
    }

    /// Records one change; returns the feed lines it produced. Restart samples whose
    /// restart count was first seen (not risen) are not news.
    pub async fn record(&mut self, change: Change) -> Result<Vec<Feed>, StoreError> {
        let now = jiff::Timestamp::now();
        match change {
            Change::Pod(p) => {
                self.pods += 1;
                let state = PodState::from_pod(&p);
                let c = self.store.record_pod(now, &state).await?;
                let mut feed = Vec::new();
                for r in c.restarts {
                    let key = (r.namespace.clone(), r.pod.clone(), r.container.clone());
                    if self.known.contains(&key) && r.restart_count > 0 {
                        feed.push(Feed::Restart(r));
                    }
                }
                for ct in &state.containers {
                    self.known.insert((
                        state.namespace.clone(),
                        state.name.clone(),
                        ct.name.clone(),
                    ));
                }
                Ok(feed)
            }
            Change::Event(e) => {
                self.events += 1;
                let Some(ev) = Event::from_kube(&e, &self.catalog) else {
                    return Ok(Vec::new());
                };
                Ok(match self.store.upsert_event(&ev).await? {
                    Upsert::Inserted { .. } => vec![Feed::Event {
                        event: Box::new(ev),
                        added: 1,
                    }],
                    Upsert::Updated { added, .. } if added > 0 => vec![Feed::Event {
                        event: Box::new(ev),
                        added,
                    }],
                    _ => Vec::new(),
                })
            }
            Change::Error(message) => Ok(vec![Feed::Warning { message }]),
            Change::PodDeleted(_) | Change::Relist(_) | Change::Synced(_) => Ok(Vec::new()),
        }
    }
}
