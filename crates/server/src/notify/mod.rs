//! Notification channels: a generic webhook (JSON, HMAC-signed, retried), Slack incoming
//! webhooks, and Prometheus Alertmanager's v2 API. Deliveries run in the background so a slow
//! receiver never holds up rule evaluation; failures are logged and counted.

pub mod alertmanager;
pub mod slack;
pub mod webhook;

use crashscope_model::redact;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;

/// What a channel is told about an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// firing or resolved; remediated for an action crashscope took (a rollback: what it
    /// did is the summary, the `action` and `outcome` labels say which).
    pub status: String,
    /// True for a reminder of an alert already notified.
    pub repeat: bool,
    pub alert_id: i64,
    pub rule: String,
    pub severity: String,
    pub summary: String,
    /// The alert's group: `default/deployment/nginx`.
    pub group: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub pods: Vec<String>,
    pub starts_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
    /// Why the alert's first pod crashes, when the server could diagnose it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<crate::diagnosis::Brief>,
}

/// Where notifications go, as configured in the rule file's `notify` section or by flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum ChannelConfig {
    /// POST the notification as JSON; signed with HMAC-SHA256 when a secret is set.
    Webhook {
        url: String,
        #[serde(default)]
        secret: Option<String>,
    },
    /// A Slack incoming webhook.
    Slack { url: String },
    /// An Alertmanager (its base URL, e.g. `http://alertmanager:9093`).
    Alertmanager { url: String },
}

impl ChannelConfig {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelConfig::Webhook { .. } => "webhook",
            ChannelConfig::Slack { .. } => "slack",
            ChannelConfig::Alertmanager { .. } => "alertmanager",
        }
    }
}

/// The configured channels and an HTTP client to reach them.
#[derive(Clone)]
pub struct Notifier {
    channels: Arc<Vec<ChannelConfig>>,
    client: reqwest::Client,
    metrics: Arc<Metrics>,
    retries: u32,
    /// Where links in messages point (the server's own address).
    pub base_url: String,
}

impl Notifier {
    pub fn new(channels: Vec<ChannelConfig>, metrics: Arc<Metrics>, base_url: String) -> Notifier {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("crashscope/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Notifier {
            channels: Arc::new(channels),
            client,
            metrics,
            retries: 4,
            base_url,
        }
    }

    pub fn channels(&self) -> &[ChannelConfig] {
        &self.channels
    }

    /// Sends `n` to every channel in the background. Alertmanager also gets the reminders
    /// (it forgets alerts that are not re-sent); the others only news and hourly reminders.
    pub fn send(&self, n: Notification) {
        for ch in self.channels.iter() {
            let ch = ch.clone();
            let this = self.clone();
            let n = n.clone();
            tokio::spawn(async move {
                let kind = ch.kind();
                match this.deliver(&ch, &[n]).await {
                    Ok(()) => this.metrics.notification(kind, true),
                    Err(e) => {
                        tracing::warn!(channel = kind, error = %e, "notification failed");
                        this.metrics.notification(kind, false);
                    }
                }
            });
        }
    }

    /// Sends what crashscope did about an alert (status `remediated`: a rollback) to the
    /// webhook and Slack channels; Alertmanager takes alerts only.
    pub fn send_action(&self, n: Notification) {
        let others: Vec<ChannelConfig> = self
            .channels
            .iter()
            .filter(|c| !matches!(c, ChannelConfig::Alertmanager { .. }))
            .cloned()
            .collect();
        let this = Notifier {
            channels: Arc::new(others),
            ..self.clone()
        };
        this.send(n);
    }

    /// Re-sends firing alerts to Alertmanager, which drops alerts not refreshed within its
    /// resolve timeout.
    pub fn refresh_alertmanager(&self, firing: Vec<Notification>) {
        if firing.is_empty() {
            return;
        }
        for ch in self.channels.iter() {
            if let ChannelConfig::Alertmanager { .. } = ch {
                let ch = ch.clone();
                let this = self.clone();
                let firing = firing.clone();
                tokio::spawn(async move {
                    if let Err(e) = this.deliver(&ch, &firing).await {
                        tracing::warn!(channel = "alertmanager", error = %e, "refresh failed");
                        this.metrics.notification("alertmanager", false);
                    }
                });
            }
        }
    }

    async fn deliver(&self, ch: &ChannelConfig, ns: &[Notification]) -> Result<(), String> {
        let (url, body, headers) = match ch {
            ChannelConfig::Webhook { url, secret } => {
                let body = webhook::body(&ns[0]);
                (
                    url.clone(),
                    body.clone(),
                    webhook::headers(&body, secret.as_deref()),
                )
            }
            ChannelConfig::Slack { url } => {
                (url.clone(), slack::body(&ns[0], &self.base_url), vec![])
            }
            ChannelConfig::Alertmanager { url } => (
                alertmanager::endpoint(url),
                alertmanager::body(ns, &self.base_url),
                vec![],
            ),
        };
        self.post_with_retries(&url, body, headers).await
    }

    /// POSTs with exponential back-off on network errors, 429 and 5xx; 4xx is final.
    async fn post_with_retries(
        &self,
        url: &str,
        body: Vec<u8>,
        headers: Vec<(&'static str, String)>,
    ) -> Result<(), String> {
        let mut delay = Duration::from_millis(250);
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            let mut req = self
                .client
                .post(url)
                .header("content-type", "application/json")
                .body(body.clone());
            for (k, v) in &headers {
                req = req.header(*k, v);
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    last = format!(
                        "{} answered {status}: {}",
                        redact::url(url),
                        text.chars().take(200).collect::<String>()
                    );
                    if status.is_client_error() && status.as_u16() != 429 {
                        return Err(last);
                    }
                }
                // reqwest's error text carries the URL whole; say it redacted.
                Err(e) => last = format!("{}: {}", redact::url(url), e.without_url()),
            }
        }
        Err(format!(
            "{last} (gave up after {} attempts)",
            self.retries + 1
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a failed delivery says is what the log prints: no secret of the URL in it.
    #[tokio::test]
    async fn a_failed_delivery_names_the_endpoint_without_its_secrets() {
        let refused = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = refused.local_addr().unwrap().port();
        drop(refused);
        let answering = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let answering_port = answering.local_addr().unwrap().port();
        tokio::spawn(async move {
            let app = axum::Router::new()
                .fallback(|| async { (axum::http::StatusCode::FORBIDDEN, "no") });
            axum::serve(answering, app).await
        });
        let mut n = Notifier::new(vec![], Arc::new(Metrics::new()), "http://x".into());
        n.retries = 0;
        for p in [port, answering_port] {
            let url =
                format!("http://bot:hunter2@127.0.0.1:{p}/services/T00/B00/XSECRETX?token=s3cr3t");
            let e = n
                .post_with_retries(&url, b"{}".to_vec(), vec![])
                .await
                .unwrap_err();
            for secret in ["hunter2", "XSECRETX", "s3cr3t"] {
                assert!(!e.contains(secret), "{e}");
            }
            assert!(e.contains(&format!("127.0.0.1:{p}")), "{e}");
        }
    }
}
