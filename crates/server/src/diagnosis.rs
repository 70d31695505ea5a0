//! The diagnosis engine over what the server's store knows of a pod — its object (pods of
//! the local runtime), its events and the custom events of its namespace, the Services and
//! pods around it, and the captures indexed for its containers — for the API and for
//! notifications, which carry a short form of it.

use std::collections::BTreeMap;

use crashscope_diagnose::capture::read_capture;
use crashscope_diagnose::{diagnose, Diagnosis, Inputs, LogText, World};
use crashscope_store::{EventQuery, SqlStore, Store, StoreError};
use k8s_openapi::api::core::v1::{Pod, Service};
use serde::{Deserialize, Serialize};

fn objects<T: serde::de::DeserializeOwned>(v: Vec<serde_json::Value>) -> Vec<T> {
    v.into_iter()
        .filter_map(|o| serde_json::from_value(o).ok())
        .collect()
}

/// The stored object of pod `namespace/name`, if the server keeps it (its local runtime's
/// pods).
pub async fn pod_object(
    store: &SqlStore,
    namespace: &str,
    name: &str,
) -> Result<Option<Pod>, StoreError> {
    let pods: Vec<Pod> = objects(store.objects("Pod").await?);
    Ok(find_pod(&pods, namespace, name).cloned())
}

/// Pod `namespace/name` among `pods`.
fn find_pod<'a>(pods: &'a [Pod], namespace: &str, name: &str) -> Option<&'a Pod> {
    pods.iter().find(|p| {
        p.metadata.name.as_deref() == Some(name)
            && p.metadata.namespace.as_deref().unwrap_or("default") == namespace
    })
}

/// Where the local runtime keeps the log of each container's last ended instance (the one
/// `kubectl logs --previous` shows; the current one when it has ended).
pub fn previous_log_paths(
    pod: &Pod,
    data_dir: &std::path::Path,
) -> BTreeMap<String, std::path::PathBuf> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let uid = pod.metadata.uid.as_deref().unwrap_or("");
    let mut log_files = BTreeMap::new();
    for st in pod.status.iter().flat_map(|s| {
        s.container_statuses
            .iter()
            .flatten()
            .chain(s.init_container_statuses.iter().flatten())
    }) {
        let terminated = st
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .is_some();
        let instance = if terminated {
            st.restart_count
        } else {
            (st.restart_count - 1).max(0)
        };
        let path =
            crashscope_model::logfile::log_path(data_dir, namespace, name, uid, &st.name, instance);
        log_files.insert(st.name.clone(), path);
    }
    log_files
}

/// The diagnoses of a pod's crashed containers; `None` when the store has no object of the
/// pod (the server keeps the objects of its local runtime's pods only).
pub async fn diagnose_pod(
    store: &SqlStore,
    data_dir: &std::path::Path,
    namespace: &str,
    name: &str,
) -> Result<Option<Vec<Diagnosis>>, StoreError> {
    let pods: Vec<Pod> = objects(store.objects("Pod").await?);
    let Some(pod) = find_pod(&pods, namespace, name).cloned() else {
        return Ok(None);
    };
    let events = store
        .events(&EventQuery {
            namespace: Some(namespace.to_string()),
            limit: Some(5000),
            ..EventQuery::default()
        })
        .await?
        .into_iter()
        .map(|e| e.event)
        .collect::<Vec<_>>();
    let services: Vec<Service> = objects(store.objects("Service").await?);
    // The newest capture indexed per container of the pod.
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let mut records = store.captures().await?;
    records.sort_by_key(|c| c.created_at);
    for c in records {
        if c.namespace.as_deref() == Some(namespace) && c.pod.as_deref() == Some(name) {
            if let Some(container) = c.container {
                files.insert(container, c.path);
            }
        }
    }
    let log_files = previous_log_paths(&pod, data_dir);
    let run = move || {
        let logs: BTreeMap<String, LogText> = log_files
            .into_iter()
            .filter_map(|(c, p)| {
                let text = crashscope_model::logfile::plain_text(&std::fs::read(&p).ok()?);
                Some((c, LogText::new(p.display().to_string(), &text)))
            })
            .collect();
        let mut captures = BTreeMap::new();
        for (container, path) in files {
            if let Ok(mut f) = read_capture(std::path::Path::new(&path)) {
                f.keep_container(&container);
                captures.insert(container, f);
            }
        }
        let world = World {
            services: Some(services),
            pods: pods.clone(),
        };
        let inputs = Inputs {
            pod: &pod,
            events: &events,
            logs: &logs,
            captures: &captures,
            world: &world,
            now: jiff::Timestamp::now(),
        };
        diagnose(&inputs, None)
    };
    // Reading captures is blocking work; off the async threads when there are some.
    match tokio::task::spawn_blocking(run).await {
        Ok(d) => Ok(Some(d)),
        Err(e) => {
            tracing::warn!(error = %e, "diagnosis task failed");
            Ok(Some(Vec::new()))
        }
    }
}

/// What a notification says of a diagnosis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Brief {
    pub pod: String,
    pub container: String,
    /// The cause id (`dns-nxdomain`, ..., or `unknown`).
    pub cause: String,
    pub confidence: f64,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
    /// The capture the evidence cites, as a path on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<String>,
}

impl Brief {
    pub fn of(d: &Diagnosis) -> Option<Brief> {
        let top = d.top()?;
        let capture = top
            .evidence
            .iter()
            .filter(|e| e.source == crashscope_diagnose::Source::Capture)
            .find_map(|e| e.pointer.split(" event #").next().map(str::to_string));
        Some(Brief {
            pod: d.pod.clone(),
            container: d.container.clone(),
            cause: top.id.clone(),
            confidence: top.confidence,
            summary: top.summary.clone(),
            evidence: top
                .evidence
                .first()
                .map(|e| format!("{}: {}", e.pointer, e.text)),
            remedy: top.remedies.first().map(|r| r.text.clone()),
            capture,
        })
    }

    /// One line for chat and Alertmanager: cause, summary, evidence, remedy.
    pub fn text(&self) -> String {
        let mut s = format!(
            "Cause: {} ({:.2}) in {}/{}: {}",
            self.cause, self.confidence, self.pod, self.container, self.summary
        );
        if let Some(e) = &self.evidence {
            s.push_str(&format!(". Evidence: {e}"));
        }
        if let Some(r) = &self.remedy {
            s.push_str(&format!(". Remedy: {r}"));
        }
        s
    }
}
