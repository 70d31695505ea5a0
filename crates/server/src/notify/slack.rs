//! Slack incoming-webhook messages: a one-line text (what notifications show) and an
//! attachment coloured by state with the alert's fields.

use super::Notification;

pub fn body(n: &Notification, base_url: &str) -> Vec<u8> {
    let icon = match (n.status.as_str(), n.severity.as_str()) {
        ("resolved", _) => ":white_check_mark:",
        ("remediated", _) => ":leftwards_arrow_with_hook:",
        (_, "critical") | (_, "error") => ":rotating_light:",
        _ => ":warning:",
    };
    let state = match n.status.as_str() {
        "resolved" => "RESOLVED",
        "remediated" => "ACTION",
        _ => "FIRING",
    };
    let color = if n.status == "resolved" {
        "#2eb886"
    } else if n.severity == "warning" {
        "#daa038"
    } else {
        "#a30200"
    };
    let pods = if n.pods.is_empty() {
        "-".to_string()
    } else {
        n.pods.join(", ")
    };
    let mut fields = vec![
        serde_json::json!({"title": "Scope", "value": n.group, "short": true}),
        serde_json::json!({"title": "Severity", "value": n.severity, "short": true}),
        serde_json::json!({"title": "Pods", "value": pods, "short": false}),
        serde_json::json!({"title": "Since", "value": n.starts_at.to_string(), "short": true}),
    ];
    let mut text = format!("{icon} [{state}] {}: {}", n.rule, n.summary);
    if let Some(d) = &n.diagnosis {
        text.push_str(&format!("\n{}", d.text()));
        fields.push(serde_json::json!({"title": "Cause", "value": format!("{} ({:.2})", d.cause, d.confidence), "short": true}));
        if let Some(c) = &d.capture {
            fields.push(serde_json::json!({"title": "Capture", "value": format!("{base_url}{c}"), "short": false}));
        }
    }
    let doc = serde_json::json!({
        "text": text,
        "attachments": [{
            "color": color,
            "fields": fields,
            "footer": format!("crashscope {base_url}/api/v1/alerts"),
        }],
    });
    serde_json::to_vec(&doc).unwrap_or_default()
}
