//! What else the cluster holds, for the joins a diagnosis makes: whether a name a program
//! asked for is a Service (here, in another namespace, or nowhere), which Service an address
//! belongs to, and whether that Service's pods crash-loop themselves (a cascade).

use k8s_openapi::api::core::v1::{Pod, Service};

/// The cluster's other objects; `services` is `None` when they are not known (then nothing is
/// concluded from a Service's absence).
#[derive(Debug, Clone, Default)]
pub struct World {
    pub services: Option<Vec<Service>>,
    pub pods: Vec<Pod>,
}

fn ns_of(s: &Service) -> &str {
    s.metadata.namespace.as_deref().unwrap_or("default")
}

/// The (namespace, name) a DNS name means from namespace `ns`, by the cluster's search rules.
pub fn service_name(host: &str, ns: &str) -> Option<(String, String)> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let parts: Vec<&str> = host.split('.').collect();
    match parts.as_slice() {
        [svc] => Some((ns.to_string(), svc.to_string())),
        [svc, n] | [svc, n, "svc"] | [svc, n, "svc", "cluster", "local"] => {
            Some((n.to_string(), svc.to_string()))
        }
        _ => None,
    }
}

impl World {
    /// Services named `name`, in any namespace.
    pub fn services_named(&self, name: &str) -> Vec<&Service> {
        self.services
            .iter()
            .flatten()
            .filter(|s| s.metadata.name.as_deref() == Some(name))
            .collect()
    }

    /// The Service at `host:port`: by ClusterIP, or by DNS name, with a matching port.
    pub fn service_at(&self, ns: &str, host: &str, port: u16) -> Option<&Service> {
        let by_name = service_name(host, ns);
        self.services.iter().flatten().find(|s| {
            let spec = s.spec.as_ref();
            let ip = spec.and_then(|x| x.cluster_ip.as_deref()) == Some(host);
            let named = by_name.as_ref().is_some_and(|(n, svc)| {
                n == ns_of(s) && s.metadata.name.as_deref() == Some(svc.as_str())
            });
            let port_ok = spec
                .and_then(|x| x.ports.as_ref())
                .is_none_or(|ps| ps.iter().any(|p| i32::from(port) == p.port));
            (ip || named) && port_ok
        })
    }

    /// The pods a Service selects.
    pub fn backends(&self, svc: &Service) -> Vec<&Pod> {
        let Some(sel) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
            return Vec::new();
        };
        if sel.is_empty() {
            return Vec::new();
        }
        self.pods
            .iter()
            .filter(|p| p.metadata.namespace.as_deref().unwrap_or("default") == ns_of(svc))
            .filter(|p| {
                let labels = p.metadata.labels.as_ref();
                sel.iter()
                    .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_map_to_services() {
        assert_eq!(
            service_name("flask", "shop"),
            Some(("shop".into(), "flask".into()))
        );
        assert_eq!(
            service_name("db.data.svc.cluster.local.", "shop"),
            Some(("data".into(), "db".into()))
        );
        assert_eq!(service_name("example.com.au.x.y.z", "shop"), None);
    }
}
