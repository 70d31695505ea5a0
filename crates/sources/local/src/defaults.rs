//! The defaults the API server fills in when a pod is created, so the local runtime's pods
//! read like a cluster's (`describe` prints `timeout=1s period=10s #success=1 #failure=3`,
//! not zeros) and the diagnosis sees the probe budget the kubelet applies.

use k8s_openapi::api::core::v1::{Container, PodSpec, Probe};

fn probe(p: &mut Probe) {
    p.timeout_seconds.get_or_insert(1);
    p.period_seconds.get_or_insert(10);
    p.success_threshold.get_or_insert(1);
    p.failure_threshold.get_or_insert(3);
    if let Some(h) = p.http_get.as_mut() {
        h.scheme.get_or_insert_with(|| "HTTP".into());
        h.path.get_or_insert_with(|| "/".into());
    }
}

fn container(c: &mut Container) {
    c.termination_message_path
        .get_or_insert_with(|| "/dev/termination-log".into());
    c.termination_message_policy
        .get_or_insert_with(|| "File".into());
    if c.image_pull_policy.is_none() {
        // Always for `:latest` or no tag, else IfNotPresent (the API's rule).
        let image = c.image.as_deref().unwrap_or("");
        let tag = image
            .rsplit('/')
            .next()
            .and_then(|n| n.split_once(':'))
            .map(|(_, t)| t);
        let policy = match tag {
            None | Some("latest") if !image.contains('@') => "Always",
            _ => "IfNotPresent",
        };
        c.image_pull_policy = Some(policy.into());
    }
    for p in [
        c.liveness_probe.as_mut(),
        c.readiness_probe.as_mut(),
        c.startup_probe.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        probe(p);
    }
}

/// Fills the API server's defaults into `spec`.
pub fn apply(spec: &mut PodSpec) {
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    spec.scheduler_name
        .get_or_insert_with(|| "default-scheduler".into());
    spec.service_account_name
        .get_or_insert_with(|| "default".into());
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        container(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_and_containers_get_the_apis_defaults() {
        let mut spec: PodSpec = serde_json::from_value(serde_json::json!({
            "containers": [
                {"name": "a", "image": "nginx", "livenessProbe": {"httpGet": {"port": 80}}},
                {"name": "b", "image": "nginx:1.27", "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5}}
            ]
        }))
        .unwrap();
        apply(&mut spec);
        let l = spec.containers[0].liveness_probe.as_ref().unwrap();
        assert_eq!(
            (
                l.timeout_seconds,
                l.period_seconds,
                l.success_threshold,
                l.failure_threshold
            ),
            (Some(1), Some(10), Some(1), Some(3))
        );
        assert_eq!(l.http_get.as_ref().unwrap().scheme.as_deref(), Some("HTTP"));
        let r = spec.containers[1].readiness_probe.as_ref().unwrap();
        assert_eq!(r.period_seconds, Some(5), "a value given is kept");
        assert_eq!(
            spec.containers[0].image_pull_policy.as_deref(),
            Some("Always")
        );
        assert_eq!(
            spec.containers[1].image_pull_policy.as_deref(),
            Some("IfNotPresent")
        );
        assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
        assert_eq!(
            spec.containers[0].termination_message_path.as_deref(),
            Some("/dev/termination-log")
        );
    }
}
