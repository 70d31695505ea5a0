//! Prometheus Alertmanager's v2 API: `POST /api/v2/alerts` with labels (alertname, severity,
//! namespace, workload, ...), annotations (summary, pods, value; the diagnosis as `description`,
//! `cause` and `capture`), `startsAt`, and `endsAt` once
//! resolved — the same contract Prometheus itself follows, so Alertmanager routes, groups,
//! inhibits and silences crashscope's alerts like any other.

use super::Notification;

pub fn endpoint(base: &str) -> String {
    format!("{}/api/v2/alerts", base.trim_end_matches('/'))
}

pub fn body(ns: &[Notification], base_url: &str) -> Vec<u8> {
    let alerts: Vec<serde_json::Value> = ns
        .iter()
        .map(|n| {
            let mut labels = n.labels.clone();
            labels.insert("alertname".into(), n.rule.clone());
            labels.insert("severity".into(), n.severity.clone());
            labels.insert("source".into(), "crashscope".into());
            let mut a = serde_json::json!({
                "labels": labels,
                "annotations": {
                    "summary": n.summary,
                    "pods": n.pods.join(", "),
                    "value": n.value.to_string(),
                    "group": n.group,
                },
                "startsAt": n.starts_at.to_string(),
                "generatorURL": format!("{base_url}/api/v1/alerts/{}", n.alert_id),
            });
            if let Some(d) = &n.diagnosis {
                a["annotations"]["description"] = serde_json::Value::String(d.text());
                a["annotations"]["cause"] = serde_json::Value::String(d.cause.clone());
                if let Some(c) = &d.capture {
                    a["annotations"]["capture"] =
                        serde_json::Value::String(format!("{base_url}{c}"));
                }
            }
            if let Some(end) = n.ends_at {
                a["endsAt"] = serde_json::Value::String(end.to_string());
            }
            a
        })
        .collect();
    serde_json::to_vec(&alerts).unwrap_or_default()
}
