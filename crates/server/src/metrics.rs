//! `/metrics` in the Prometheus text format: restart counts and rates per container, events
//! ingested by severity, alerts by state, notification outcomes, and store latency.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    restarts: Family<Labels, Gauge>,
    restart_rate: Family<Labels, Gauge<f64, AtomicU64>>,
    events: Family<Labels, Counter>,
    alerts: Family<Labels, Gauge>,
    notifications: Family<Labels, Counter>,
    notification_failures: Family<Labels, Counter>,
    store_seconds: Family<Labels, Histogram>,
    evaluations: Counter,
    evaluation_failures: Counter,
    panics: Counter,
    rows_skipped: Gauge,
    leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("crashscope");
        let restarts = Family::<Labels, Gauge>::default();
        registry.register(
            "container_restarts",
            "Restart count of each container as last observed (kube-state-metrics' restarts_total)",
            restarts.clone(),
        );
        let restart_rate = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "pod_restart_rate",
            "kubernetes.pod.restart.rate: restarts per second over the last 4 minutes, per pod",
            restart_rate.clone(),
        );
        let events = Family::<Labels, Counter>::default();
        registry.register(
            "events_ingested",
            "Events stored through the API, by source and severity",
            events.clone(),
        );
        let alerts = Family::<Labels, Gauge>::default();
        registry.register("alerts", "Alerts by rule and state", alerts.clone());
        let notifications = Family::<Labels, Counter>::default();
        registry.register(
            "notifications",
            "Notifications delivered, by channel",
            notifications.clone(),
        );
        let notification_failures = Family::<Labels, Counter>::default();
        registry.register(
            "notification_failures",
            "Notifications that failed after retries, by channel",
            notification_failures.clone(),
        );
        let store_seconds = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        registry.register(
            "store_query_seconds",
            "Time spent in store queries, by operation",
            store_seconds.clone(),
        );
        let evaluations = Counter::default();
        registry.register(
            "rule_evaluations",
            "Rule evaluation rounds run",
            evaluations.clone(),
        );
        let evaluation_failures = Counter::default();
        registry.register(
            "rule_evaluation_failures",
            "Rule evaluation rounds that failed (the store could not be read)",
            evaluation_failures.clone(),
        );
        let panics = Counter::default();
        registry.register(
            "handler_panics",
            "Requests whose handler panicked (answered with a JSON 500)",
            panics.clone(),
        );
        let rows_skipped = Gauge::default();
        registry.register(
            "store_rows_skipped",
            "Stored rows that could not be decoded and were left out of listings",
            rows_skipped.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "engine_leader",
            "1 on the replica that evaluates the rules and notifies (it holds the engine's lease), 0 on standbys",
            leader.clone(),
        );
        Metrics {
            registry,
            leader,
            evaluation_failures,
            panics,
            rows_skipped,
            restarts,
            restart_rate,
            events,
            alerts,
            notifications,
            notification_failures,
            store_seconds,
            evaluations,
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    pub fn event_ingested(&self, source: &str, severity: &str) {
        self.events
            .get_or_create(&vec![
                ("source".into(), source.into()),
                ("severity".into(), severity.into()),
            ])
            .inc();
    }

    pub fn notification(&self, channel: &str, ok: bool) {
        let labels = vec![("channel".to_string(), channel.to_string())];
        if ok {
            self.notifications.get_or_create(&labels).inc();
        } else {
            self.notification_failures.get_or_create(&labels).inc();
        }
    }

    pub fn store_latency(&self, op: &str, seconds: f64) {
        self.store_seconds
            .get_or_create(&vec![("op".into(), op.into())])
            .observe(seconds);
    }

    pub fn evaluated(&self) {
        self.evaluations.inc();
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    pub fn evaluation_failed(&self) {
        self.evaluation_failures.inc();
    }

    pub fn handler_panic(&self) {
        self.panics.inc();
    }

    /// The store's count of rows it skipped because they could not be decoded.
    pub fn set_rows_skipped(&self, n: u64) {
        self.rows_skipped.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Replaces the per-container restart counts.
    pub fn set_restarts(&self, rows: impl IntoIterator<Item = (Labels, i64)>) {
        self.restarts.clear();
        for (l, v) in rows {
            self.restarts.get_or_create(&l).set(v);
        }
    }

    /// Replaces the per-pod restart rates.
    pub fn set_restart_rates(&self, rows: impl IntoIterator<Item = (Labels, f64)>) {
        self.restart_rate.clear();
        for (l, v) in rows {
            self.restart_rate.get_or_create(&l).set(v);
        }
    }

    /// Replaces the alert counts by rule and state.
    pub fn set_alerts(&self, rows: impl IntoIterator<Item = (String, String, i64)>) {
        self.alerts.clear();
        for (rule, state, n) in rows {
            self.alerts
                .get_or_create(&vec![("rule".into(), rule), ("state".into(), state)])
                .set(n);
        }
    }
}
