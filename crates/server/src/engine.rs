//! Rule evaluation: every interval, read what the rules need from the store, evaluate each
//! rule, move each alert's state machine, save the alerts, notify (unless silenced), and turn
//! a firing alert's actions into capture requests. Also refreshes the restart gauges.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crashscope_model::alert::AlertPhase;
use crashscope_model::Event;
use crashscope_rules::alert::Timing;
use crashscope_rules::{
    evaluate, AlertState, Effect, GroupKey, Inputs, Observation, Rule, RuleFile, Silence,
};
use crashscope_store::{AlertRecord, EventQuery, SqlStore, Store, StoreError};
use jiff::Timestamp;

use crate::metrics::Metrics;
use crate::notify::{Notification, Notifier};

/// One alert the engine follows.
#[derive(Debug, Clone)]
struct Tracked {
    state: AlertState,
    record_id: Option<i64>,
    last: Observation,
}

/// The evaluator and its alerts' states.
pub struct Engine {
    store: Arc<SqlStore>,
    rules: Arc<RuleFile>,
    notifier: Notifier,
    metrics: Arc<Metrics>,
    alerts: HashMap<(String, GroupKey), Tracked>,
    last_am_refresh: Option<Instant>,
    /// The last cause diagnosed per (namespace, pod, container), for `Diagnosed` events.
    causes: HashMap<(String, String, String), String>,
    /// Where the local runtime keeps logs (for diagnoses).
    data_dir: std::path::PathBuf,
    /// The watched clusters (for the `rollback` action on their Deployments).
    clusters: Vec<crate::remedy::ClusterClient>,
}

/// How often firing alerts are re-sent to Alertmanager (Prometheus' default is 1 minute;
/// Alertmanager's resolve timeout 5 minutes).
const AM_REFRESH: Duration = Duration::from_secs(60);

impl Engine {
    pub fn new(
        store: Arc<SqlStore>,
        rules: Arc<RuleFile>,
        notifier: Notifier,
        metrics: Arc<Metrics>,
    ) -> Engine {
        Engine {
            store,
            rules,
            notifier,
            metrics,
            alerts: HashMap::new(),
            last_am_refresh: None,
            causes: HashMap::new(),
            data_dir: std::path::PathBuf::new(),
            clusters: Vec::new(),
        }
    }

    /// The clusters whose Deployments the `rollback` action may patch.
    pub fn with_clusters(mut self, clusters: Vec<crate::remedy::ClusterClient>) -> Engine {
        self.clusters = clusters;
        self
    }

    /// The data directory whose logs diagnoses read.
    pub fn with_data_dir(mut self, dir: std::path::PathBuf) -> Engine {
        self.data_dir = dir;
        self
    }

    /// Picks up pending and firing alerts a previous run left, so a restart of the server
    /// neither re-notifies nor forgets to resolve them. Also what a replica does when it
    /// takes the engine over from another: what it knew before is stale, the store is not.
    pub async fn restore(&mut self) -> Result<(), StoreError> {
        self.alerts.clear();
        self.causes.clear();
        self.last_am_refresh = None;
        for rec in self.store.alerts(None, 10_000).await? {
            // A resolved episode is over: the next evaluation starts afresh.
            if rec.state == AlertPhase::Resolved {
                continue;
            }
            let state = AlertState::restored(
                rec.state,
                rec.active_since,
                rec.fired_at,
                rec.last_notified_at,
                rec.resolved_at,
            );
            let group = group_from_labels(&rec.labels);
            let key = (rec.rule.clone(), group.clone());
            if self.alerts.contains_key(&key) {
                continue;
            }
            let pods = rec.pods().into_iter().collect();
            self.alerts.insert(
                key,
                Tracked {
                    state,
                    record_id: Some(rec.id),
                    last: Observation {
                        group,
                        active: true,
                        value: rec.value,
                        pods,
                    },
                },
            );
        }
        Ok(())
    }

    /// One evaluation round at `now`.
    pub async fn round(&mut self, now: Timestamp) -> Result<(), StoreError> {
        let longest = self
            .rules
            .rules
            .iter()
            .map(window_of)
            .max()
            .unwrap_or(Duration::from_secs(240))
            .max(Duration::from_secs(240));
        let started = Instant::now();
        // Twice the window, so a container's previous sample is usually at hand.
        let samples = self
            .store
            .restart_samples(
                longest
                    .checked_mul(2)
                    .and_then(|d| now.checked_sub(d).ok())
                    .unwrap_or(Timestamp::MIN),
                now.checked_add(Duration::from_millis(1)).unwrap_or(now),
            )
            .await?;
        let pods = self.store.current_pods().await?;
        let events: Vec<Event> = self
            .store
            .events(&EventQuery {
                since: Some(now.checked_sub(longest).unwrap_or(Timestamp::MIN)),
                limit: Some(50_000),
                ..EventQuery::default()
            })
            .await?
            .into_iter()
            .map(|e| e.event)
            .collect();
        let silences = self.silences(now).await?;
        self.metrics
            .store_latency("evaluation_inputs", started.elapsed().as_secs_f64());
        let inputs = Inputs {
            now,
            samples: &samples,
            pods: &pods,
            events: &events,
        };
        self.update_gauges(&inputs);
        let rules = self.rules.clone();
        for rule in &rules.rules {
            let seen: BTreeMap<GroupKey, Observation> = evaluate(rule, &inputs)
                .into_iter()
                .map(|o| (o.group.clone(), o))
                .collect();
            let mut keys: Vec<GroupKey> = seen.keys().cloned().collect();
            keys.extend(
                self.alerts
                    .keys()
                    .filter(|(r, g)| r == &rule.name && !seen.contains_key(g))
                    .map(|(_, g)| g.clone()),
            );
            for group in keys {
                let obs = seen.get(&group).cloned();
                self.step(rule, group, obs, now, &silences).await?;
            }
        }
        self.alert_gauges();
        if self
            .last_am_refresh
            .is_none_or(|t| t.elapsed() >= AM_REFRESH)
        {
            self.last_am_refresh = Some(Instant::now());
            let firing: Vec<Notification> = self
                .alerts
                .iter()
                .filter(|(_, t)| matches!(t.state, AlertState::Firing { .. }))
                .filter_map(|((rule, _), t)| {
                    let r = rules.rules.iter().find(|r| &r.name == rule)?;
                    Some(notification(r, t, "firing", true, None))
                })
                .collect();
            self.notifier.refresh_alertmanager(firing);
        }
        self.metrics.evaluated();
        Ok(())
    }

    async fn step(
        &mut self,
        rule: &Rule,
        group: GroupKey,
        obs: Option<Observation>,
        now: Timestamp,
        silences: &[Silence],
    ) -> Result<(), StoreError> {
        let key = (rule.name.clone(), group.clone());
        let active = obs.as_ref().is_some_and(|o| o.active);
        let mut tracked = self.alerts.remove(&key).unwrap_or_else(|| Tracked {
            state: AlertState::Inactive,
            record_id: None,
            last: Observation {
                group: group.clone(),
                active: false,
                value: 0.0,
                pods: Default::default(),
            },
        });
        let before = tracked.state;
        let timing = Timing {
            for_: rule.for_,
            renotify: rule.renotify,
        };
        let (after, effects) = before.step(now, active, timing);
        if let Some(o) = obs.filter(|o| o.active) {
            tracked.last = o;
        }
        if matches!(before, AlertState::Inactive | AlertState::Resolved { .. })
            && after.since() != before.since()
        {
            tracked.record_id = None; // a new episode
        }
        tracked.state = after;
        if after != before || !effects.is_empty() {
            if let Some(rec) = record(rule, &tracked, now) {
                tracked.record_id = Some(self.store.save_alert(&rec).await?);
            }
        }
        // The episode's turns go on the feed beside the events that caused them.
        let turn = match (before, after) {
            (AlertState::Firing { .. }, AlertState::Firing { .. }) => None,
            (_, AlertState::Firing { .. }) => Some("AlertFiring"),
            (AlertState::Firing { .. }, AlertState::Resolved { .. }) => Some("AlertResolved"),
            _ => None,
        };
        if let Some(reason) = turn {
            self.store
                .upsert_event(&alert_event(rule, &tracked, reason, now))
                .await?;
        }
        let labels = labels(rule, &tracked);
        let silenced = silences.iter().any(|s| s.silences(&labels, now));
        for e in effects {
            match e {
                Effect::NotifyFiring | Effect::NotifyRepeat | Effect::NotifyResolved
                    if silenced =>
                {
                    tracing::info!(rule = %rule.name, group = %group, "notification silenced");
                }
                Effect::NotifyFiring | Effect::NotifyRepeat => {
                    let mut n =
                        notification(rule, &tracked, "firing", e == Effect::NotifyRepeat, None);
                    n.diagnosis = self.diagnosis(&tracked, now).await;
                    self.notifier.send(n);
                }
                Effect::NotifyResolved => {
                    self.notifier
                        .send(notification(rule, &tracked, "resolved", false, Some(now)));
                }
                Effect::RunActions => self.run_actions(rule, &tracked, now, silenced).await?,
            }
        }
        match after {
            AlertState::Inactive => {}
            // Resolved alerts are kept until the next round finds them quiet too, then dropped.
            AlertState::Resolved { .. } if before == after => {}
            _ => {
                self.alerts.insert(key, tracked);
            }
        }
        Ok(())
    }

    /// The diagnosis of the alert's first pod that has one, in short; a `Diagnosed` event
    /// goes on the pod's feed when its cause differs from the last one the engine saw.
    async fn diagnosis(&mut self, t: &Tracked, now: Timestamp) -> Option<crate::diagnosis::Brief> {
        let labels = t.last.group.labels();
        let ns = labels.get("namespace")?.clone();
        for pod in &t.last.pods {
            let found =
                match crate::diagnosis::diagnose_pod(&self.store, &self.data_dir, &ns, pod).await {
                    Ok(Some(d)) => d,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot diagnose {ns}/{pod}");
                        continue;
                    }
                };
            let Some(mut brief) = found.first().and_then(crate::diagnosis::Brief::of) else {
                continue;
            };
            // The capture as a download link of the API, when the index has it.
            if let Some(path) = brief.capture.take() {
                let indexed = self.store.captures().await.unwrap_or_default();
                brief.capture = indexed
                    .iter()
                    .find(|c| c.path == path)
                    .map(|c| format!("/api/v1/captures/{}/file", c.id));
            }
            let key = (ns.clone(), brief.pod.clone(), brief.container.clone());
            if self.causes.get(&key) != Some(&brief.cause) {
                self.causes.insert(key, brief.cause.clone());
                let ev = diagnosed_event(&ns, &brief, now);
                if let Err(e) = self.store.upsert_event(&ev).await {
                    tracing::warn!(error = %e, "cannot record the Diagnosed event");
                }
            }
            return Some(brief);
        }
        None
    }

    async fn run_actions(
        &self,
        rule: &Rule,
        t: &Tracked,
        now: Timestamp,
        silenced: bool,
    ) -> Result<(), StoreError> {
        if let Some(rb) = &rule.actions.rollback {
            self.roll_back(rule, rb, t, now, silenced).await;
        }
        let Some(capture) = &rule.actions.capture else {
            return Ok(());
        };
        let ns = t.last.group.namespace.clone().unwrap_or_default();
        let ms = i64::try_from(capture.duration.as_millis()).unwrap_or(i64::MAX);
        for pod in &t.last.pods {
            let req = self
                .store
                .request_capture(
                    t.record_id,
                    &ns,
                    pod,
                    t.last.group.container.as_deref(),
                    ms,
                    now,
                )
                .await?;
            tracing::info!(id = req.id, namespace = %ns, pod = %pod, "capture requested");
        }
        Ok(())
    }

    /// The `rollback` action for a Deployment's alert (never while silenced: a silence says
    /// someone is on it). A failure is logged; the alert goes on.
    async fn roll_back(
        &self,
        rule: &Rule,
        action: &crashscope_rules::rule::RollbackAction,
        t: &Tracked,
        now: Timestamp,
        silenced: bool,
    ) {
        let g = &t.last.group;
        let (Some(ns), Some("Deployment"), Some(name)) = (
            g.namespace.as_deref(),
            g.workload_kind.as_deref(),
            g.workload_name.as_deref(),
        ) else {
            return;
        };
        if silenced {
            tracing::info!(rule = %rule.name, namespace = %ns, deployment = %name, "rollback skipped: the alert is silenced");
            return;
        }
        let crashing: Vec<String> = t.last.pods.iter().cloned().collect();
        let began = t.state.since().unwrap_or(now);
        let remedy = crate::remedy::Remedy {
            store: &self.store,
            clusters: &self.clusters,
        };
        let target = crate::remedy::Target {
            cluster: g.cluster.as_deref(),
            namespace: ns,
            deployment: name,
        };
        match remedy
            .rollback(&rule.name, action, target, &crashing, began, now)
            .await
        {
            Ok(ev) => {
                tracing::info!(reason = %ev.reason, "{}", ev.message);
                // An action taken (or refused by the cluster) is news for the channels too.
                let acted =
                    ev.reason == "RollbackFailed" || (ev.reason == "RolledBack" && !action.dry_run);
                if acted {
                    let mut n = notification(rule, t, "remediated", false, None);
                    n.summary = ev.message.clone();
                    n.labels.insert("action".into(), "rollback".into());
                    n.labels.insert("outcome".into(), ev.reason.clone());
                    self.notifier.send_action(n);
                }
            }
            Err(e) => tracing::warn!(error = %e, "rollback of {ns}/{name} failed"),
        }
    }

    async fn silences(&self, now: Timestamp) -> Result<Vec<Silence>, StoreError> {
        Ok(self
            .store
            .silences(now)
            .await?
            .into_iter()
            .filter_map(|s| {
                Some(Silence {
                    id: s.id,
                    matchers: serde_json::from_value(s.matchers).ok()?,
                    comment: s.comment,
                    created_by: s.created_by,
                    starts_at: s.starts_at,
                    ends_at: s.ends_at,
                })
            })
            .collect())
    }

    fn update_gauges(&self, inputs: &Inputs<'_>) {
        self.metrics.set_restarts(inputs.pods.iter().flat_map(|p| {
            p.containers.iter().map(move |c| {
                (
                    vec![
                        ("namespace".to_string(), p.namespace.clone()),
                        ("pod".to_string(), p.name.clone()),
                        ("container".to_string(), c.name.clone()),
                    ],
                    i64::from(c.restart_count),
                )
            })
        }));
        let seen =
            crashscope_rules::restarts(inputs.samples, inputs.now - Duration::from_secs(240));
        let rates = crashscope_rules::values(
            &seen,
            crashscope_rules::MetricName::RestartRate,
            crashscope_rules::GroupBy::Pod,
            Duration::from_secs(240),
            inputs.now,
        );
        self.metrics.set_restart_rates(
            rates
                .into_iter()
                .map(|(k, v)| (k.labels().into_iter().collect(), v)),
        );
    }

    fn alert_gauges(&self) {
        let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
        for ((rule, _), t) in &self.alerts {
            *counts
                .entry((rule.clone(), t.state.name().to_string()))
                .or_default() += 1;
        }
        self.metrics
            .set_alerts(counts.into_iter().map(|((r, s), n)| (r, s, n)));
    }
}

fn window_of(r: &Rule) -> Duration {
    r.metric
        .as_ref()
        .map(|m| m.window)
        .or(r.event.as_ref().map(|e| e.window))
        .unwrap_or_default()
}

fn labels(rule: &Rule, t: &Tracked) -> BTreeMap<String, String> {
    let mut l = t.last.group.labels();
    l.insert("alertname".into(), rule.name.clone());
    l.insert("severity".into(), rule.severity.as_str().into());
    l
}

fn group_from_labels(l: &BTreeMap<String, String>) -> GroupKey {
    GroupKey {
        cluster: l.get("cluster").cloned(),
        namespace: l.get("namespace").cloned(),
        workload_kind: l.get("workload_kind").cloned(),
        workload_name: l.get("workload").cloned(),
        pod: l.get("pod").cloned(),
        container: l.get("container").cloned(),
    }
}

fn summary(rule: &Rule, t: &Tracked) -> String {
    let g = &t.last.group;
    let template = rule
        .summary
        .clone()
        .unwrap_or_else(|| "{rule} on {workload}".into());
    let window = crashscope_model::duration::format_go(window_of(rule));
    let pods: Vec<&str> = t.last.pods.iter().map(String::as_str).collect();
    template
        .replace("{rule}", &rule.name)
        .replace("{workload}", &g.short())
        .replace("{namespace}", g.namespace.as_deref().unwrap_or(""))
        .replace("{pods}", &pods.join(", "))
        .replace("{value}", &trim(t.last.value))
        .replace(
            "{threshold}",
            &rule
                .metric
                .as_ref()
                .map(|m| trim(m.threshold))
                .unwrap_or_default(),
        )
        .replace("{window}", &window)
}

fn trim(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.4}")
    }
}

/// The stored episode of an alert; none while it is inactive.
fn record(rule: &Rule, t: &Tracked, now: Timestamp) -> Option<AlertRecord> {
    let state = t.state.phase()?;
    let (fired, resolved, notified) = match t.state {
        AlertState::Firing {
            fired_at,
            notified_at,
            ..
        } => (Some(fired_at), None, Some(notified_at)),
        AlertState::Resolved {
            fired_at,
            resolved_at,
            ..
        } => (Some(fired_at), Some(resolved_at), Some(resolved_at)),
        _ => (None, None, None),
    };
    let mut labels = t.last.group.labels();
    labels.insert(
        "pods".into(),
        t.last.pods.iter().cloned().collect::<Vec<_>>().join(","),
    );
    Some(AlertRecord {
        id: t.record_id.unwrap_or(0),
        rule: rule.name.clone(),
        group_key: t.last.group.to_string(),
        state,
        severity: rule.severity,
        labels,
        summary: summary(rule, t),
        value: t.last.value,
        active_since: t.state.since().unwrap_or(now),
        fired_at: fired,
        resolved_at: resolved,
        last_notified_at: notified,
        updated_at: now,
    })
}

/// The feed's record of an alert firing or resolving, scoped as the alert's group.
fn alert_event(rule: &Rule, t: &Tracked, reason: &str, now: Timestamp) -> Event {
    use crashscope_model::{EventType, Severity};
    let g = &t.last.group;
    let firing = reason == "AlertFiring";
    let workload = match (&g.workload_kind, &g.workload_name) {
        (Some(kind), Some(name)) => Some(crashscope_model::scope::WorkloadRef {
            kind: kind.clone(),
            name: name.clone(),
        }),
        _ => None,
    };
    let pod = g.pod.clone().or_else(|| {
        // One pod in the episode: the event is that pod's too.
        (t.last.pods.len() == 1)
            .then(|| t.last.pods.iter().next().cloned())
            .flatten()
    });
    Event {
        source: crashscope_model::event::SOURCE_ALERT.into(),
        reporter: Some("crashscope, rule engine".into()),
        reason: reason.into(),
        message: if firing {
            summary(rule, t)
        } else {
            format!("{} resolved: {}", rule.name, summary(rule, t))
        },
        event_type: if firing {
            EventType::Warning
        } else {
            EventType::Normal
        },
        severity: if firing {
            rule.severity
        } else {
            Severity::Info
        },
        scope: crashscope_model::Scope {
            cluster: g.cluster.clone(),
            node: None,
            namespace: g.namespace.clone(),
            workload,
            pod,
            container: g.container.clone(),
        },
        involved: None,
        count: 1,
        first_seen: now,
        last_seen: now,
        // One event per turn of one episode (the alert's record and the turn's time).
        source_id: Some(format!(
            "alert-{}-{reason}-{}",
            t.record_id.unwrap_or(0),
            now.as_millisecond()
        )),
        tags: [("rule".to_string(), rule.name.clone())].into(),
    }
}

/// The feed's record of a diagnosis: reason `Diagnosed`, the cause and its summary.
fn diagnosed_event(ns: &str, b: &crate::diagnosis::Brief, now: Timestamp) -> Event {
    let involved = crashscope_model::ObjectRef {
        kind: "Pod".into(),
        namespace: Some(ns.to_string()),
        name: b.pod.clone(),
        uid: None,
        api_version: Some("v1".into()),
        field_path: Some(format!("spec.containers{{{}}}", b.container)),
    };
    let mut ev = Event::about(
        crashscope_model::event::SOURCE_CRASHSCOPE,
        "crashscope, diagnosis",
        crashscope_model::EventType::Warning,
        crashscope_model::Severity::Warning,
        "Diagnosed",
        format!("{}: {}", b.cause, b.summary),
        involved,
        now,
    );
    ev.scope.container = Some(b.container.clone());
    ev.tags.insert("cause".to_string(), b.cause.clone());
    ev
}

fn notification(
    rule: &Rule,
    t: &Tracked,
    status: &str,
    repeat: bool,
    ends_at: Option<Timestamp>,
) -> Notification {
    Notification {
        status: status.into(),
        repeat,
        alert_id: t.record_id.unwrap_or(0),
        rule: rule.name.clone(),
        severity: rule.severity.as_str().into(),
        summary: summary(rule, t),
        group: t.last.group.to_string(),
        labels: t.last.group.labels(),
        value: t.last.value,
        pods: t.last.pods.iter().cloned().collect(),
        starts_at: t.state.since().unwrap_or_else(Timestamp::now),
        ends_at,
        diagnosis: None,
    }
}
