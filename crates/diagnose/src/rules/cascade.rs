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

fn names(out: &Candidates) -> Vec<String> {
    let mut v: Vec<String> = out
        .get("dns-nxdomain")
        .map(|c| c.subjects.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            // `api:8080` (nginx upstreams) and quoted names: the host alone.
            let s = s.trim_matches('"');
            s.split(':').next().unwrap_or(s).to_string()
        })
        .filter(|s| !s.is_empty() && !s.contains(' '))
        .collect();
    v.sort();
    v.dedup();
    v
}

pub fn propose(case: &Case, out: &mut Candidates) {
    let world = case.world;
    if world.services.is_some() {
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
