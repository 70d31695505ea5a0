//! Watching a cluster: kube-runtime watchers for Pods, both Event APIs (core/v1 and
//! events.k8s.io/v1), ReplicaSets and Deployments (the owner chain) and Nodes, merged into
//! one stream of changes. The watchers resume by themselves: a dropped watch restarts from
//! the last resourceVersion (bookmarks keep it fresh), a `410 Gone` relists, errors back off.

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event as KubeEvent, Node, Pod};
use k8s_openapi::api::events::v1::Event as EventsV1;
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};

use crate::cluster::{api_error, namespaced};

pub use crashscope_model::change::{
    Change, DEPLOYMENTS, EVENTS, EVENTS_V1, NODES, PODS, REPLICASETS, RESOURCES,
};

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

/// Maps a watcher's items to changes: `apply`/`delete` say what an object means.
fn stream_of<K>(
    api: Api<K>,
    cfg: watcher::Config,
    sel: &Selection,
    resource: &'static str,
    apply: fn(K) -> Change,
    delete: fn(K) -> Option<Change>,
) -> futures::stream::BoxStream<'static, Change>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let ns = if resource == NODES {
        None
    } else {
        sel.namespace.clone()
    };
    let w = watcher(api, cfg.any_semantic());
    let w = if sel.backoff {
        w.default_backoff().boxed()
    } else {
        w.boxed()
    };
    w.filter_map(move |item| {
        futures::future::ready(match item {
            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => Some(apply(o)),
            Ok(watcher::Event::Delete(o)) => delete(o),
            Ok(watcher::Event::Init) => Some(Change::Relist(resource)),
            Ok(watcher::Event::InitDone) => Some(Change::Synced(resource)),
            Err(e) => Some(Change::Error {
                resource,
                message: explain(&e, resource, ns.as_deref()),
            }),
        })
    })
    .boxed()
}

/// Everything the selection covers, as one stream of changes. It never ends: errors are
/// items, and the watchers recover by themselves (re-watch, or relist after 410).
pub fn changes(client: &Client, sel: &Selection) -> impl Stream<Item = Change> + Send + use<> {
    let ns = sel.namespace.as_deref();
    let mut pod_cfg = watcher::Config::default();
    if let Some(l) = &sel.labels {
        pod_cfg = pod_cfg.labels(l);
    }
    let all = watcher::Config::default;
    futures::stream::select_all([
        stream_of(
            namespaced::<Pod>(client, ns),
            pod_cfg,
            sel,
            PODS,
            |p| Change::Pod(Box::new(p)),
            |p| Some(Change::PodDeleted(Box::new(p))),
        ),
        // An Event object expiring (TTL) is no news: what it said is kept.
        stream_of(
            namespaced::<KubeEvent>(client, ns),
            all(),
            sel,
            EVENTS,
            |e| Change::Event(Box::new(e)),
            |_| None,
        ),
        // The same objects through the newer API: reporters that use it fill `series`, and
        // both views normalize to the same stored occurrence.
        stream_of(
            namespaced::<EventsV1>(client, ns),
            all(),
            sel,
            EVENTS_V1,
            |e| Change::Event(Box::new(crashscope_model::event::core_from_v1(&e))),
            |_| None,
        ),
        stream_of(
            namespaced::<ReplicaSet>(client, ns),
            all(),
            sel,
            REPLICASETS,
            |o| Change::ReplicaSet(Box::new(o)),
            |o| Some(Change::ReplicaSetDeleted(Box::new(o))),
        ),
        stream_of(
            namespaced::<Deployment>(client, ns),
            all(),
            sel,
            DEPLOYMENTS,
            |o| Change::Deployment(Box::new(o)),
            |o| Some(Change::DeploymentDeleted(Box::new(o))),
        ),
        stream_of(
            Api::<Node>::all(client.clone()),
            all(),
            sel,
            NODES,
            |o| Change::Node(Box::new(o)),
            |o| Some(Change::NodeDeleted(Box::new(o))),
        ),
    ])
}

/// The pods scheduled to one node, in every namespace (a node agent's view: the API server
/// filters by `spec.nodeName`, so an agent sees only its node's pods).
pub fn node_pods(
    client: &Client,
    node: &str,
    backoff: bool,
) -> impl Stream<Item = Change> + Send + use<> {
    let sel = Selection {
        backoff,
        ..Selection::default()
    };
    stream_of(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default().fields(&format!("spec.nodeName={node}")),
        &sel,
        PODS,
        |p| Change::Pod(Box::new(p)),
        |p| Some(Change::PodDeleted(Box::new(p))),
    )
}

/// A watcher error in words; a 403 names the permission the RBAC role must grant.
pub fn explain(e: &watcher::Error, resource: &str, ns: Option<&str>) -> String {
    let gone = |code: u16| code == 410;
    match e {
        watcher::Error::WatchError(s) if gone(s.code) => {
            format!("{resource}: the watch expired (410 Gone), listing again")
        }
        watcher::Error::WatchError(s) => {
            api_error(&kube::Error::Api(s.clone()), "watch", resource, ns)
        }
        watcher::Error::InitialListFailed(k) => api_error(k, "list", resource, ns),
        watcher::Error::WatchStartFailed(k) | watcher::Error::WatchFailed(k) => {
            api_error(k, "watch", resource, ns)
        }
        other => format!("{resource}: {other}"),
    }
}
