//! The incidents (`/ui/incidents`): one per crash loop — workload, container and the reason
//! its runs end — most recently active first, with its restarts, exit codes, pods (linked to
//! their pages, where the diagnosis and the chart are) and the cause last diagnosed; the
//! same list as `GET /api/v1/incidents`.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use crashscope_server::api::views::incident_items;
use crashscope_server::AppState;
use serde::Deserialize;

use super::scope::{Scope, Scoped};
use super::{render, say, short, Chrome};
use crate::session::Viewer;

/// The look-back choices.
const SINCE: [(&str, &str); 4] = [
    ("1h", "last hour"),
    ("24h", "last 24 hours"),
    ("7d", "last 7 days"),
    ("30d", "last 30 days"),
];

#[derive(Debug, Default, Deserialize)]
pub struct IncidentQuery {
    #[serde(default)]
    since: String,
    #[serde(flatten)]
    scope: Scope,
}

/// A pod of an incident, linked.
pub struct PodLink {
    pub name: String,
    pub link: String,
}

/// One incident as the table shows it.
pub struct IncidentRow {
    pub namespace: String,
    pub workload: String,
    pub container: String,
    pub reason: String,
    pub restarts: u32,
    pub exit_codes: String,
    pub pods: Vec<PodLink>,
    pub first_seen: String,
    pub last_seen: String,
    pub cause: String,
    /// The incident's own page.
    pub link: String,
}

#[derive(Template)]
#[template(path = "incidents.html")]
struct IncidentsPage {
    chrome: Chrome,
    since: String,
    choices: &'static [(&'static str, &'static str)],
    namespace: String,
    rows: Vec<IncidentRow>,
    error: Option<String>,
}

/// `GET /ui/incidents`.
pub async fn page(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<IncidentQuery>,
) -> Response {
    let since = if q.since.is_empty() {
        "24h".to_string()
    } else {
        q.since.clone()
    };
    let namespace = Some(q.scope.namespace.trim()).filter(|n| !n.is_empty());
    let (status, rows, error) = match incident_items(&app, Some(&since), None, namespace).await {
        Ok(items) => {
            let rows = items
                .into_iter()
                .filter(|item| {
                    let k = &item.incident.key;
                    q.scope.admits(&Scoped {
                        cluster: k.cluster.as_deref(),
                        namespace: &k.namespace,
                        workload: Some((&k.workload_kind, &k.workload_name)),
                        // An incident is in a pod's scope when the pod is one of its.
                        pod: Some(q.scope.pod.trim()).filter(|p| item.incident.pods.contains(*p)),
                        container: Some(&k.container),
                    })
                })
                .map(|item| {
                    let i = item.incident;
                    let link = super::incident::link(&i);
                    let ns = i.key.namespace.clone();
                    IncidentRow {
                        workload: format!(
                            "{} {}",
                            i.key.workload_kind.to_lowercase(),
                            i.key.workload_name
                        ),
                        container: i.key.container,
                        reason: i.key.reason,
                        restarts: i.restarts,
                        exit_codes: i
                            .exit_codes
                            .iter()
                            .map(i32::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                        pods: i
                            .pods
                            .iter()
                            .map(|p| PodLink {
                                name: p.clone(),
                                link: super::pods::link(&ns, p),
                            })
                            .collect(),
                        first_seen: short(i.first_seen),
                        last_seen: short(i.last_seen),
                        cause: item.cause.unwrap_or_default(),
                        namespace: ns,
                        link,
                    }
                })
                .collect();
            (StatusCode::OK, rows, None)
        }
        Err(e) => {
            let text = say(&e);
            (e.status, Vec::new(), Some(text))
        }
    };
    render(
        status,
        &IncidentsPage {
            chrome: Chrome::for_viewer("incidents", &viewer)
                .scoped(q.scope.bar("/ui/incidents", &[("since", q.since.as_str())])),
            since,
            choices: &SINCE,
            namespace: q.scope.namespace.clone(),
            rows,
            error,
        },
    )
}
