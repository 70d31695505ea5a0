//! Joins with the rest of the cluster. A name that does not resolve: does a Service of that
//! name exist — now (created after the program started: start-up order), in another namespace
//! (the wrong name), or nowhere? A dependency that refuses or times out: is it a Service whose
//! own pods crash-loop? Then the root cause is upstream, and the diagnosis points at it.

use crate::candidate::Candidates;
use crate::case::Case;
use crate::evidence::{Evidence, Source};
use crate::world::service_name;
use crashscope_model::pod::namespace_name;

fn crash_looping(p: &k8s_openapi::api::core::v1::Pod) -> Option<(String, i32)> {
    let st = p.status.as_ref()?.container_statuses.as_ref()?;
    st.iter()
        .find(|c| {
            c.state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref())
                == Some("CrashLoopBackOff")
        })
        .map(|c| (c.name.clone(), c.restart_count))
}

/// A name as the evidence gives it (`api:8080` in an nginx upstream, `"flask"` quoted): the
/// host, and the port when one was asked.
fn host_port(subject: &str) -> (String, Option<u16>) {
    let s = subject.trim_matches('"');
    match s.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_string(), p.parse().ok()),
        _ => (s.split(':').next().unwrap_or(s).to_string(), None),
    }
}

/// The port a name was asked with, per host.
fn asked_ports(out: &Candidates) -> Vec<(String, u16)> {
    out.get("dns-nxdomain")
        .map(|c| c.subjects.clone())
        .unwrap_or_default()
        .iter()
        .filter_map(|s| match host_port(s) {
            (h, Some(p)) => Some((h, p)),
            _ => None,
        })
        .collect()
}

/// The Service that would give name `svc` in `ns` its backends, when the evidence leaves no
/// choice: the pods of `ns` labelled with the name the program asked for (`app: flask` for
/// `flask`) are all of one workload, and the port is settled — the one the program asked for,
/// declared by those pods, or else the only one they declare. Anything less is a choice for
/// a person, and no manifest is made.
fn missing_service(
    world: &crate::world::World,
    ns: &str,
    svc: &str,
    asked: Option<u16>,
) -> Option<serde_json::Value> {
    let mut label: Option<(String, String)> = None;
    let mut ports: Vec<i32> = Vec::new();
    // The owner of the first matching pod (itself None for a bare pod), once one is seen.
    let mut owner: Option<Option<String>> = None;
    for p in world
        .pods
        .iter()
        .filter(|p| p.metadata.namespace.as_deref().unwrap_or("default") == ns)
    {
        let Some(labels) = p.metadata.labels.as_ref() else {
            continue;
        };
        // The label whose value is the name; app-ish keys before any other.
        let mut keys: Vec<&String> = labels
            .iter()
            .filter(|(k, v)| v.as_str() == svc && !k.ends_with("pod-template-hash"))
            .map(|(k, _)| k)
            .collect();
        keys.sort_by_key(|k| (!matches!(k.as_str(), "app" | "app.kubernetes.io/name"), *k));
        let Some(key) = keys.first() else { continue };
        let this = crashscope_model::OwnerChain::from_pod_meta(&p.metadata)
            .workload()
            .map(|w| format!("{}/{}", w.kind, w.name));
        // Two workloads (or a bare pod and a workload) wearing the name: a choice, not a fact.
        match &owner {
            Some(o) if *o != this => return None,
            _ => owner = Some(this),
        }
        label = Some(((*key).clone(), svc.to_string()));
        for c in p.spec.iter().flat_map(|s| s.containers.iter()) {
            for port in c.ports.iter().flatten() {
                if port.protocol.as_deref().unwrap_or("TCP") == "TCP"
                    && !ports.contains(&port.container_port)
                {
                    ports.push(port.container_port);
                }
            }
        }
    }
    let (key, value) = label?;
    let port = match (asked, ports.as_slice()) {
        (Some(p), declared) if declared.contains(&i32::from(p)) => i32::from(p),
        (None, [only]) => *only,
        _ => return None,
    };
    let ports = vec![serde_json::json!({"port": port, "targetPort": port, "protocol": "TCP"})];
    Some(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": svc, "namespace": ns},
        "spec": {"selector": {key: value}, "ports": ports},
    }))
}

fn names(out: &Candidates) -> Vec<String> {
    let mut v: Vec<String> = out
        .get("dns-nxdomain")
        .map(|c| c.subjects.clone())
        .unwrap_or_default()
        .into_iter()
        // `api:8080` (nginx upstreams) and quoted names: the host alone.
        .map(|s| host_port(&s).0)
        .filter(|s| !s.is_empty() && !s.contains(' '))
        .collect();
    v.sort();
    v.dedup();
    v
}

pub fn propose(case: &Case, out: &mut Candidates) {
    let world = case.world;
    if world.services.is_some() {
        let asked = asked_ports(out);
        for host in names(out) {
            let Some((ns, svc)) = service_name(&host, &case.namespace) else {
                continue;
            };
            let all = world.services_named(&svc);
            let here = all
                .iter()
                .any(|s| s.metadata.namespace.as_deref().unwrap_or("default") == ns);
            if here {
                out.context.push(Evidence::new(
                    Source::Change,
                    format!("service {ns}/{svc}"),
                    format!("the Service \"{svc}\" exists now"),
                ));
                out.notes.push(format!("the Service \"{svc}\" exists now: it was created after this instance started (start-up order), so the next start should resolve it"));
            } else if let Some(other) = all.first() {
                let (other_ns, _) = namespace_name(&other.metadata);
                out.context.push(Evidence::new(
                    Source::Spec,
                    format!("service {other_ns}/{svc}"),
                    format!("a Service \"{svc}\" exists in namespace {other_ns}, not in {ns}"),
                ));
                out.notes.push(format!(
                    "a Service \"{svc}\" exists in namespace {other_ns}: the program asks in {ns}"
                ));
                out.remedy("dns-nxdomain", format!("point the program at {svc}.{other_ns}.svc.cluster.local (the Service lives in {other_ns})"), None);
            } else {
                out.context.push(Evidence::new(
                    Source::Spec,
                    "services",
                    format!("no Service named \"{svc}\" in any namespace"),
                ));
                out.notes.push(format!("no Service named \"{svc}\" exists"));
                let port = asked.iter().find(|(h, _)| *h == host).map(|(_, p)| *p);
                if let Some(m) = missing_service(world, &ns, &svc, port) {
                    let selector = m["spec"]["selector"].to_string();
                    out.create(
                        "dns-nxdomain",
                        format!("create the Service {ns}/{svc} (selecting {selector}) before the program starts"),
                        m,
                    );
                }
            }
        }
    }
    // Dependencies: the Service behind host:port, and its pods.
    for id in ["dependency-refused", "dependency-timeout"] {
        let Some(c) = out.get(id) else { continue };
        let targets = c.subjects.clone();
        for t in targets {
            let Some((host, port)) = t.rsplit_once(':') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            let host = host.trim_matches(['[', ']']);
            // The names that resolved to this address in the capture.
            let mut hosts = vec![host.to_string()];
            if let Some(f) = case.capture {
                for q in &f.dns {
                    if q.answers.iter().any(|a| a.ends_with(&format!(" {host}"))) {
                        hosts.push(q.name.trim_end_matches('.').to_string());
                    }
                }
            }
            let Some(svc) = hosts
                .iter()
                .find_map(|h| world.service_at(&case.namespace, h, port))
            else {
                continue;
            };
            let (sns, sname) = namespace_name(&svc.metadata);
            let backends = world.backends(svc);
            if backends.is_empty() {
                out.context.push(Evidence::new(
                    Source::Spec,
                    format!("service {sns}/{sname}"),
                    "the Service selects no pod",
                ));
                out.notes.push(format!(
                    "{t} is the Service \"{sname}\", which selects no pod"
                ));
            }
            for p in backends {
                if let Some((container, restarts)) = crash_looping(p) {
                    let pn = p.metadata.name.clone().unwrap_or_default();
                    out.context.push(Evidence::new(Source::Status, format!("pod {sns}/{pn} container {container}"), format!("CrashLoopBackOff, {restarts} restarts: a backend of Service \"{sname}\"")));
                    out.notes.push(format!("the dependency crash-loops itself: {t} is Service \"{sname}\", whose pod {pn} is in CrashLoopBackOff — see crashscope diagnose {pn} -n {sns}"));
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::World;

    fn pod(
        name: &str,
        owner: &str,
        labels: serde_json::Value,
        port: Option<i32>,
    ) -> k8s_openapi::api::core::v1::Pod {
        let ports = port.map(|p| serde_json::json!([{"containerPort": p}]));
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "shop", "labels": labels,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                      "uid": "u", "controller": true}]},
            "spec": {"containers": [{"name": "c", "image": "i", "ports": ports}]}
        }))
        .unwrap()
    }

    fn world(pods: Vec<k8s_openapi::api::core::v1::Pod>) -> World {
        World {
            services: Some(Vec::new()),
            pods,
        }
    }

    #[test]
    fn a_missing_service_is_made_for_the_one_workload_labelled_with_its_name() {
        let w = world(vec![
            pod(
                "flask-6b7f9-a",
                "flask-6b7f9",
                serde_json::json!({"app": "flask", "pod-template-hash": "6b7f9"}),
                Some(5000),
            ),
            // The next revision's pod: another ReplicaSet of the same Deployment.
            pod(
                "flask-8c2d1-b",
                "flask-8c2d1",
                serde_json::json!({"app": "flask", "pod-template-hash": "8c2d1"}),
                Some(5000),
            ),
            pod(
                "nginx-1",
                "nginx-55d4",
                serde_json::json!({"app": "nginx"}),
                Some(80),
            ),
        ]);
        let m = missing_service(&w, "shop", "flask", Some(5000)).unwrap();
        assert_eq!(m["kind"], "Service");
        assert_eq!(m["metadata"]["name"], "flask");
        assert_eq!(m["metadata"]["namespace"], "shop");
        assert_eq!(m["spec"]["selector"], serde_json::json!({"app": "flask"}));
        assert_eq!(m["spec"]["ports"][0]["port"], 5000);
        assert_eq!(m["spec"]["ports"][0]["targetPort"], 5000);
        // Asked on a port the pods do not declare: which port is meant is a choice.
        assert!(missing_service(&w, "shop", "flask", Some(80)).is_none());
        // Not asked: their only port.
        let m = missing_service(&w, "shop", "flask", None).unwrap();
        assert_eq!(m["spec"]["ports"][0]["port"], 5000);
        // Nothing wears the name, or another namespace's pods do: no manifest.
        assert!(missing_service(&w, "shop", "redis", None).is_none());
        assert!(missing_service(&w, "other", "flask", None).is_none());
    }

    #[test]
    fn no_manifest_when_the_evidence_leaves_a_choice_or_a_value_open() {
        let two = world(vec![
            pod(
                "flask-a-1",
                "flask-a",
                serde_json::json!({"app": "flask"}),
                Some(5000),
            ),
            pod(
                "flask-b-1",
                "flask-b",
                serde_json::json!({"app": "flask"}),
                Some(5000),
            ),
        ]);
        assert!(missing_service(&two, "shop", "flask", None).is_none());
        let portless = world(vec![pod(
            "flask-a-1",
            "flask-a",
            serde_json::json!({"app": "flask"}),
            None,
        )]);
        assert!(missing_service(&portless, "shop", "flask", Some(5000)).is_none());
    }
}
