//! The whole alert path against a real store (SQLite and PostgreSQL): restarts recorded by a
//! source raise the restart-rate alert, one per workload; the webhook gets a signed firing
//! notification and later a resolved one; a capture request is made; the API and /metrics
//! show it; a custom deploy event posted before sits in the feed.

mod common;

use std::sync::Arc;

use common::*;
use crashscope_server::ChannelConfig;
use crashscope_store::testing::stores;
use crashscope_store::Store;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const RULES: &str = "
rules:
  - name: PodRestartingFrequently
    summary: '{workload} restarted {value} times within {window}'
    severity: error
    metric: {name: kubernetes.pod.restart.count, by: pod, window: 3s, op: '>=', threshold: 3}
    group_by: workload
    actions:
      capture: {duration: 10s}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_fire_then_resolve_the_default_style_rule() {
    for (backend, store) in stores().await {
        let store = Arc::new(store);
        let (hook, got) = receiver().await;
        let secret = "s3cret";
        let (slack, slack_got) = receiver().await;
        let channels = vec![
            ChannelConfig::Webhook {
                url: format!("http://{hook}/hook"),
                secret: Some(secret.into()),
            },
            ChannelConfig::Slack {
                url: format!("http://{slack}/services/T0/B0/x"),
            },
        ];
        let srv = server(store.clone(), RULES, channels).await;
        let base = format!("http://{}", srv.addr);
        let http = client();

        // CI posts the deploy first.
        let r = http
            .post(format!("{base}/api/v1/events"))
            .bearer_auth(TOKEN)
            .header("Idempotency-Key", "deploy-42")
            .json(&serde_json::json!({"name": "deploy nginx", "description": "nginx 1.4.2",
                "source": "jenkins", "scope": {"namespace": "default", "workload": "deployment/nginx"},
                "tags": {"version": "1.4.2"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{backend}");

        // Two pods of the Deployment; one crash-loops.
        let now = jiff::Timestamp::now();
        store.record_pod(now, &pod("nginx-b", 0)).await.unwrap();
        for n in 0..=3 {
            store
                .record_pod(jiff::Timestamp::now(), &pod("nginx-a", n))
                .await
                .unwrap();
        }
        let firing = wait_for(&got, 10, |all| {
            all.iter().find(|(_, b)| b["status"] == "firing").cloned()
        })
        .await
        .unwrap_or_else(|| panic!("{backend}: no firing notification"));
        let (headers, body) = firing;
        assert_eq!(body["alert"]["rule"], "PodRestartingFrequently");
        assert_eq!(body["alert"]["group"], "default/deployment/nginx");
        assert_eq!(body["alert"]["pods"], serde_json::json!(["nginx-a"]));
        assert_eq!(
            body["alert"]["summary"],
            "deployment/nginx restarted 3 times within 3s"
        );
        // The receiver can check the signature over timestamp.body.
        let ts = headers["x-crashscope-timestamp"].to_str().unwrap();
        let sig = headers["x-crashscope-signature"].to_str().unwrap();
        let raw = serde_json::to_vec(&body).unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{ts}.").as_bytes());
        mac.update(&raw);
        let want: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sig, format!("sha256={want}"), "{backend}");

        // Slack's incoming-webhook format: a text line, fields in an attachment.
        let text = wait_for(&slack_got, 5, |all| {
            all.iter()
                .find_map(|(_, b)| b["text"].as_str().map(str::to_string))
        })
        .await
        .unwrap_or_else(|| panic!("{backend}: nothing posted to Slack"));
        assert!(
            text.contains("[FIRING] PodRestartingFrequently: deployment/nginx restarted 3 times"),
            "{text}"
        );
        let alerts: serde_json::Value =
            get_json(format!("{base}/api/v1/alerts?state=firing"), READ_TOKEN).await;
        assert_eq!(
            alerts["items"].as_array().unwrap().len(),
            1,
            "{backend}: {alerts}"
        );
        let requests: serde_json::Value =
            get_json(format!("{base}/api/v1/capture-requests"), TOKEN).await;
        assert_eq!(
            requests["items"][0]["pod"], "nginx-a",
            "{backend}: {requests}"
        );
        let metrics = get_text(format!("{base}/metrics"), TOKEN).await;
        assert!(
            metrics.contains("crashscope_container_restarts{namespace=\"default\",pod=\"nginx-a\",container=\"nginx\"} 3"),
            "{metrics}"
        );
        assert!(
            metrics
                .contains("crashscope_alerts{rule=\"PodRestartingFrequently\",state=\"firing\"} 1"),
            "{metrics}"
        );

        // The restarts leave the 3 s window: resolved, once.
        wait_for(&got, 10, |all| {
            all.iter()
                .find(|(_, b)| b["status"] == "resolved")
                .map(|_| ())
        })
        .await
        .unwrap_or_else(|| panic!("{backend}: no resolved notification"));
        let firing_count = got
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, b)| b["status"] == "firing")
            .count();
        assert_eq!(firing_count, 1, "{backend}: one notification per firing");

        // The deploy is in the feed.
        let feed: serde_json::Value = get_json(
            format!("{base}/api/v1/events?source=jenkins&workload=deployment/nginx"),
            TOKEN,
        )
        .await;
        assert_eq!(
            feed["items"][0]["reason"], "deploy nginx",
            "{backend}: {feed}"
        );
        assert_eq!(feed["items"][0]["tags"]["version"], "1.4.2");
        // The episode's turns are on the feed too, scoped as the alert is.
        let turns: serde_json::Value = get_json(
            format!("{base}/api/v1/events?source=alert&workload=deployment/nginx"),
            TOKEN,
        )
        .await;
        let reasons: Vec<&str> = turns["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["reason"].as_str().unwrap())
            .collect();
        assert_eq!(
            reasons,
            ["AlertResolved", "AlertFiring"],
            "{backend}: {turns}"
        );
        assert_eq!(turns["items"][1]["severity"], "error", "{backend}: {turns}");
        srv.shutdown().await.unwrap();
    }
}
