//! A pod's quality-of-service class as the API server assigns it (Guaranteed, Burstable,
//! BestEffort), for pods whose status does not carry one yet (the local runtime's, manifests).

use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeMap;

/// QoS class: the status field when present, else computed from requests and limits.
pub fn qos_class(pod: &Pod) -> String {
    if let Some(q) = pod
        .status
        .as_ref()
        .and_then(|s| s.qos_class.as_deref())
        .filter(|s| !s.is_empty())
    {
        return q.to_string();
    }
    let Some(spec) = &pod.spec else {
        return "BestEffort".into();
    };
    let all = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter());
    let mut any = false;
    let mut guaranteed = true;
    for c in all {
        let r = c.resources.clone().unwrap_or_default();
        let get = |m: &Option<
            BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
        >,
                   k: &str| {
            // Quantities compare by value: "1000m" equals "1", and "0m" is no request at all.
            m.as_ref()
                .and_then(|m| m.get(k))
                .and_then(|q| crate::quantity::value(&q.0))
                .filter(|v| *v > 0.0)
        };
        for res in ["cpu", "memory"] {
            let (req, lim) = (get(&r.requests, res), get(&r.limits, res));
            any |= req.is_some() || lim.is_some();
            // A request defaults to the limit when only the limit is set.
            if lim.is_none() || req.is_some_and(|q| Some(q) != lim) {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort".into()
    } else if guaranteed {
        "Guaranteed".into()
    } else {
        "Burstable".into()
    }
}
