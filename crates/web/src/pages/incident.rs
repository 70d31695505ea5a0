//! One incident (`/ui/incidents/detail?namespace=…&workload=…&container=…&reason=…`): its
//! summary, the diagnosis of its newest crashed pod with each piece of evidence linked to
//! where it can be checked, what changed in its namespace in the hour before the first
//! crash, one timeline of everything around it — changes (deploys, rollouts), its pods'
//! events, the alerts about them, their captures —, and the previous instance's log.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use crashscope_diagnose::Diagnosis;
use crashscope_model::incident::Incident;
use crashscope_server::api::views::incident_items;
use crashscope_server::AppState;
use crashscope_store::{EventQuery, Store as _, StoredEvent};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use super::evidence::Panel;
use super::pods::{path, LogTail};
use super::scope::Scope;
use super::{render, short, Chrome};
use crate::session::Viewer;

/// How far before the first crash changes are looked for.
pub const BEFORE: SignedDuration = SignedDuration::from_hours(1);
/// Rows of the timeline at most (the newest kept).
pub const TIMELINE_ROWS: usize = 500;

#[derive(Debug, Default, Deserialize)]
pub struct IncidentQuery {
    #[serde(flatten)]
    scope: Scope,
    #[serde(default)]
    reason: String,
    /// How far back incidents are looked for (24h when absent, as the list).
    #[serde(default)]
    since: String,
}

/// One row of the combined timeline.
pub struct Moment {
    pub at: Timestamp,
    pub time: String,
    /// change, event, alert, capture.
    pub kind: &'static str,
    /// ▲ ■ ● …: the shape, so kind is never told by colour alone.
    pub symbol: &'static str,
    pub text: String,
    pub link: Option<String>,
}

#[derive(Template)]
#[template(path = "incident.html")]
struct IncidentPage {
    chrome: Chrome,
    found: bool,
    title: String,
    facts: Vec<(&'static str, String)>,
    pods: Vec<(String, String)>,
    diagnoses: Vec<Diagnosis>,
    no_diagnosis: Option<String>,
    links: HashMap<String, String>,
    changes: Vec<Moment>,
    timeline: Vec<Moment>,
    /// Moments left out of the timeline (it keeps the newest).
    cut: usize,
    logs: Vec<LogTail>,
    /// The restart chart's data: the workload's pods (or the bare pod's containers).
    chart_src: String,
    /// The pod the diagnosis and the logs are of.
    pod: String,
    pod_link: String,
    error: Option<String>,
}

impl Panel for IncidentPage {
    fn links(&self) -> &HashMap<String, String> {
        &self.links
    }
}

/// Whether the incident's key is the one `q` asks for.
fn is_asked(i: &Incident, q: &IncidentQuery) -> bool {
    let (kind, name) = q.scope.workload_parts().unwrap_or_default();
    i.key.namespace == q.scope.namespace.trim()
        && i.key.workload_kind.eq_ignore_ascii_case(&kind)
        && i.key.workload_name == name
        && i.key.container == q.scope.container.trim()
        && i.key.reason == q.reason.trim()
        && (q.scope.cluster.trim().is_empty()
            || i.key.cluster.as_deref() == Some(q.scope.cluster.trim()))
}

/// The page of incident `i` (the list links to it with this).
pub fn link(i: &Incident) -> String {
    let workload = format!(
        "{}/{}",
        i.key.workload_kind.to_lowercase(),
        i.key.workload_name
    );
    let q = super::query_string(&[
        ("cluster", i.key.cluster.as_deref().unwrap_or("")),
        ("namespace", &i.key.namespace),
        ("workload", &workload),
        ("container", &i.key.container),
        ("reason", &i.key.reason),
    ]);
    format!("/ui/incidents/detail?{q}")
}

/// Whether event `e` belongs on the incident's timeline: its pods' events, its workload's
/// (a rollout), and the changes posted for its namespace.
fn concerns(e: &StoredEvent, i: &Incident) -> bool {
    let ev = &e.event;
    let pod = ev.scope.pod.as_deref().or_else(|| {
        ev.involved
            .as_ref()
            .filter(|o| o.kind == "Pod")
            .map(|o| o.name.as_str())
    });
    let of_pod = pod.is_some_and(|p| i.pods.contains(p));
    let of_workload = ev
        .scope
        .workload
        .as_ref()
        .is_some_and(|w| w.kind == i.key.workload_kind && w.name == i.key.workload_name)
        || ev
            .involved
            .as_ref()
            .is_some_and(|o| o.kind == i.key.workload_kind && o.name == i.key.workload_name);
    of_pod || of_workload || (pod.is_none() && ev.is_change_in(&i.key.namespace))
}

fn moment(at: Timestamp, kind: &'static str, text: String, link: Option<String>) -> Moment {
    let symbol = match kind {
        "change" => "▲",
        "alert" => "◆",
        "capture" => "●",
        _ => "■",
    };
    Moment {
        at,
        time: short(at),
        kind,
        symbol,
        text,
        link,
    }
}

/// Everything around incident `i`, oldest first: from an hour before its first crash to
/// its last.
async fn timeline(app: &AppState, i: &Incident) -> Vec<Moment> {
    let from = i.first_seen.checked_sub(BEFORE).unwrap_or(i.first_seen);
    let to = i
        .last_seen
        .checked_add(SignedDuration::from_mins(5))
        .unwrap_or(i.last_seen);
    let mut out = Vec::new();
    let q = |since: Timestamp, until: Timestamp| EventQuery {
        since: Some(since),
        until: Some(until),
        cluster: i.key.cluster.clone(),
        namespace: Some(i.key.namespace.clone()),
        limit: Some(5000),
        ..EventQuery::default()
    };
    // The newest events of the whole stretch, and — read on their own, so that a long or
    // noisy loop cannot push them out — those of the hour before the first crash.
    let mut events: Vec<StoredEvent> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (since, until) in [(from, to), (from, i.first_seen)] {
        match app.store.events(&q(since, until)).await {
            Ok(found) => events.extend(found.into_iter().filter(|e| seen.insert(e.id))),
            Err(e) => tracing::warn!(error = %e, "cannot read an incident's events"),
        }
    }
    out.extend(events.iter().filter(|e| concerns(e, i)).map(|e| {
        let ev = &e.event;
        let kind = if ev.is_change_in(&i.key.namespace) {
            "change"
        } else {
            "event"
        };
        let mut text = format!("{} ({}): {}", ev.reason, ev.source, ev.message);
        if ev.count > 1 {
            text.push_str(&format!(" ×{}", ev.count));
        }
        moment(
            ev.last_seen,
            kind,
            text,
            Some(format!("/ui/events/{}", e.id)),
        )
    }));
    match app.store.alerts(None, 1000).await {
        Ok(alerts) => {
            for a in alerts.iter().filter(|a| {
                a.labels.get("namespace").map(String::as_str) == Some(&i.key.namespace)
                    && a.labels.get("cluster") == i.key.cluster.as_ref()
                    && a.pods().iter().any(|p| i.pods.contains(p))
            }) {
                let fired = a.fired_at.unwrap_or(a.active_since);
                if (from..=to).contains(&fired) {
                    let text = format!("alert {} fired: {}", a.rule, a.summary);
                    out.push(moment(fired, "alert", text, Some("/ui/alerts".into())));
                }
                if let Some(r) = a.resolved_at.filter(|r| (from..=to).contains(r)) {
                    let text = format!("alert {} resolved", a.rule);
                    out.push(moment(r, "alert", text, Some("/ui/alerts".into())));
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read an incident's alerts"),
    }
    match app.store.captures().await {
        Ok(captures) => out.extend(
            captures
                .into_iter()
                .filter(|c| {
                    c.namespace.as_deref() == Some(&i.key.namespace)
                        && c.cluster == i.key.cluster
                        && c.pod.as_deref().is_some_and(|p| i.pods.contains(p))
                        && c.container.as_deref() == Some(&i.key.container)
                        && (from..=to).contains(&c.window_to)
                })
                .map(|c| {
                    let text = format!(
                        "capture #{} of {}/{} ({}, {} events{})",
                        c.id,
                        c.pod.as_deref().unwrap_or(""),
                        c.container.as_deref().unwrap_or(""),
                        c.reason,
                        c.events,
                        c.restart
                            .map(|r| format!(", restart {r}"))
                            .unwrap_or_default()
                    );
                    let link = format!("/ui/captures/{}", c.id);
                    moment(c.window_to, "capture", text, Some(link))
                }),
        ),
        Err(e) => tracing::warn!(error = %e, "cannot read an incident's captures"),
    }
    out.sort_by_key(|m| m.at);
    out
}

/// `GET /ui/incidents/detail`.
pub async fn page(
    State(app): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<IncidentQuery>,
) -> Response {
    let chrome = Chrome::for_viewer("incidents", &viewer)
        .scoped(q.scope.bar("/ui/incidents", &[("since", q.since.as_str())]));
    let since = Some(q.since.as_str()).filter(|s| !s.trim().is_empty());
    let mut page = IncidentPage {
        chrome,
        found: false,
        title: format!(
            "{} {} in {}, ending {}",
            q.scope.workload, q.scope.container, q.scope.namespace, q.reason
        ),
        facts: Vec::new(),
        pods: Vec::new(),
        diagnoses: Vec::new(),
        no_diagnosis: None,
        links: HashMap::new(),
        changes: Vec::new(),
        timeline: Vec::new(),
        cut: 0,
        logs: Vec::new(),
        chart_src: String::new(),
        pod: String::new(),
        pod_link: String::new(),
        error: None,
    };
    let namespace = Some(q.scope.namespace.trim()).filter(|n| !n.is_empty());
    let found = match incident_items(&app, since, None, namespace).await {
        Ok(items) => items.into_iter().find(|it| is_asked(&it.incident, &q)),
        Err(e) => {
            page.error = Some(super::say(&e));
            return render(e.status, &page);
        }
    };
    let Some(item) = found else {
        return render(StatusCode::NOT_FOUND, &page);
    };
    let i = item.incident;
    page.found = true;
    // From an hour before the first crash to now: the loop and what led to it.
    let (from, to) = (
        i.first_seen.checked_sub(BEFORE).unwrap_or(i.first_seen),
        jiff::Timestamp::now().max(i.last_seen),
    );
    let window = super::query_string(&[("from", &from.to_string()), ("to", &to.to_string())]);
    page.chart_src = if i.key.workload_kind == "Pod" {
        format!(
            "{}/chart.json?{window}",
            super::pods::link(&i.key.namespace, &i.key.workload_name)
        )
    } else {
        format!(
            "/ui/workloads/{}/{}/{}/chart.json?{window}",
            path(&i.key.namespace),
            path(&i.key.workload_kind.to_ascii_lowercase()),
            path(&i.key.workload_name)
        )
    };
    page.facts = vec![
        ("namespace", i.key.namespace.clone()),
        (
            "workload",
            format!(
                "{}/{}",
                i.key.workload_kind.to_lowercase(),
                i.key.workload_name
            ),
        ),
        ("container", i.key.container.clone()),
        ("ends with", i.key.reason.clone()),
        ("restarts", i.restarts.to_string()),
        (
            "exit codes",
            i.exit_codes
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("first crash (UTC)", short(i.first_seen)),
        ("last crash (UTC)", short(i.last_seen)),
        (
            "cause last diagnosed",
            item.cause.unwrap_or_else(|| "not diagnosed yet".into()),
        ),
    ];
    page.pods = i
        .pods
        .iter()
        .map(|p| {
            let link = super::pods::link(&i.key.namespace, p);
            (p.clone(), link)
        })
        .collect();
    // The diagnosis of the first of its pods the server can diagnose for this container.
    for pod in &i.pods {
        match crashscope_server::diagnosis::diagnose_pod(
            &app.store,
            &app.data_dir,
            &i.key.namespace,
            pod,
        )
        .await
        {
            Ok(Some(d)) => {
                let mine: Vec<Diagnosis> = d
                    .into_iter()
                    .filter(|d| d.container == i.key.container)
                    .collect();
                if !mine.is_empty() {
                    page.pod = pod.clone();
                    page.diagnoses = mine;
                    break;
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, pod, "cannot diagnose an incident's pod"),
        }
    }
    if page.diagnoses.is_empty() {
        page.no_diagnosis = Some(
            "No pod of this incident can be diagnosed here: the server keeps the objects of \
             its local runtime's pods only (for a cluster: `crashscope diagnose --cluster`)."
                .into(),
        );
    } else {
        let captures = super::pods::capture_ids(&app).await;
        let pod_events = crashscope_server::api::events::query(
            &app,
            crashscope_server::api::events::ListParams {
                namespace: Some(i.key.namespace.clone()),
                pod: Some(page.pod.clone()),
                limit: Some(200),
                ..Default::default()
            },
        )
        .await
        .map(|p| p.items)
        .unwrap_or_default();
        page.links = super::evidence::links(
            &page.diagnoses,
            &captures,
            &pod_events,
            &i.key.namespace,
            &page.pod,
        );
        page.pod_link = super::pods::link(&i.key.namespace, &page.pod);
        page.logs = super::pods::previous_logs(&app, &i.key.namespace, &page.pod)
            .await
            .into_iter()
            .filter(|l| l.container == i.key.container)
            .collect();
    }
    let mut all = timeline(&app, &i).await;
    let before = i.first_seen.checked_sub(BEFORE).unwrap_or(i.first_seen);
    page.changes = all
        .iter()
        .filter(|m| m.kind == "change" && m.at >= before && m.at <= i.first_seen)
        .map(|m| moment(m.at, m.kind, m.text.clone(), m.link.clone()))
        .collect();
    page.cut = all.len().saturating_sub(TIMELINE_ROWS);
    page.timeline = all.split_off(page.cut);
    render(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crashscope_model::event::Event;

    fn incident() -> Incident {
        Incident {
            key: crashscope_model::incident::IncidentKey {
                cluster: None,
                namespace: "shop".into(),
                workload_kind: "Deployment".into(),
                workload_name: "web".into(),
                container: "web".into(),
                reason: "Error".into(),
            },
            container_kind: crashscope_model::pod::ContainerKind::App,
            pods: ["web-1".to_string()].into(),
            restarts: 3,
            exit_codes: [1].into(),
            first_seen: "2026-12-07T10:00:00Z".parse().unwrap(),
            last_seen: "2026-12-07T10:05:00Z".parse().unwrap(),
        }
    }

    fn stored(v: serde_json::Value) -> StoredEvent {
        let mut base = serde_json::json!({
            "source": "kubernetes", "type": "Normal", "severity": "info", "reason": "BackOff",
            "message": "m", "count": 1, "first_seen": "2026-12-07T10:01:00Z",
            "last_seen": "2026-12-07T10:01:00Z", "scope": {"namespace": "shop"}
        });
        for (k, val) in v.as_object().unwrap() {
            base[k] = val.clone();
        }
        StoredEvent {
            id: 1,
            event: serde_json::from_value::<Event>(base).unwrap(),
        }
    }

    #[test]
    fn the_timeline_takes_its_pods_its_workload_and_its_namespace_changes_only() {
        let i = incident();
        let pod = stored(serde_json::json!({"scope": {"namespace": "shop", "pod": "web-1"}}));
        let other = stored(serde_json::json!({"scope": {"namespace": "shop", "pod": "db-0"}}));
        let rollout = stored(serde_json::json!({"reason": "ScalingReplicaSet",
            "involved": {"kind": "Deployment", "name": "web", "namespace": "shop"}}));
        let deploy = stored(serde_json::json!({"source": "ci", "reason": "deploy"}));
        let elsewhere = stored(serde_json::json!({"source": "ci", "reason": "deploy",
            "scope": {"namespace": "other"}}));
        assert!(concerns(&pod, &i));
        assert!(!concerns(&other, &i));
        assert!(concerns(&rollout, &i));
        assert!(concerns(&deploy, &i));
        assert!(!concerns(&elsewhere, &i));
        let l = link(&i);
        assert_eq!(
            l,
            "/ui/incidents/detail?namespace=shop&workload=deployment%2Fweb&container=web&reason=Error"
        );
    }
}
