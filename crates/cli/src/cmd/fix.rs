//! `crashscope fix POD [--apply]`: the changes a diagnosis proves, as the exact patch —
//! JSON patch operations on the object that makes the pod (its Deployment, else the pod) and
//! the `kubectl patch` command that sends them — or the object to create (a missing Service)
//! and the `kubectl apply` that creates it; applied to the local runtime with --apply (a
//! Deployment then rolls out the fixed template; its old pods serve until the new ones are
//! available; a created Service is served by the runtime's DNS at once).

use anyhow::{bail, Context, Result};
use crashscope_local::runtime::applied_kind;
use crashscope_model::OwnerChain;
use crashscope_store::{SqlStore, Store};
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
use std::process::ExitCode;

use crate::args::{DiagnoseArgs, FixArgs, Global, Source};
use crate::inputs;

/// `ops` (paths on a pod spec) as paths on the object: `/spec` of a Pod, the pod template's
/// spec of a workload.
fn on_object(ops: &Value, kind: &str) -> Value {
    let prefix = if kind == "Pod" {
        "/spec"
    } else {
        "/spec/template/spec"
    };
    let mut out = ops.clone();
    for op in out.as_array_mut().into_iter().flatten() {
        if let Some(p) = op.get("path").and_then(Value::as_str).map(str::to_string) {
            op["path"] = Value::String(format!("{prefix}{p}"));
        }
    }
    out
}

/// Applies `replace` and `add` operations (RFC 6902) to `doc`: `replace` needs its path
/// there, `add` its parent object; an operation that does not fit is an error naming it.
fn apply_ops(doc: &mut Value, ops: &Value) -> Result<()> {
    for op in ops.as_array().into_iter().flatten() {
        let path = op.get("path").and_then(Value::as_str).unwrap_or("");
        let value = op.get("value").cloned().unwrap_or(Value::Null);
        match op.get("op").and_then(Value::as_str) {
            Some("replace") => {
                let Some(slot) = doc.pointer_mut(path) else {
                    bail!("the object has no {path} to change");
                };
                *slot = value;
            }
            Some("add") => {
                let Some((parent, key)) = path.rsplit_once('/') else {
                    bail!("cannot add at {path:?}");
                };
                let Some(Value::Object(map)) = doc.pointer_mut(parent) else {
                    bail!("the object has no {parent} to add {key} to");
                };
                // JSON pointer escapes: ~1 is /, ~0 is ~.
                map.insert(key.replace("~1", "/").replace("~0", "~"), value);
            }
            _ => bail!("only replace and add operations are applied here, not {op}"),
        }
    }
    Ok(())
}

/// `manifest` as `kubectl apply -f -` takes it, YAML in a here-document.
fn apply_command(manifest: &Value) -> String {
    let yaml = serde_yaml_ng::to_string(manifest).unwrap_or_default();
    format!("kubectl apply -f - <<'EOF'\n{}EOF", yaml)
}

pub fn run(g: &Global, a: FixArgs) -> Result<ExitCode> {
    let now = inputs::now(g.now.as_deref())?;
    let da = DiagnoseArgs {
        target: Some(a.pod.clone()),
        source: Source {
            files: Vec::new(),
            namespace: a.namespace.clone(),
            all_namespaces: false,
        },
        container: a.container.clone(),
        logs: None,
        capture: None,
        output: Default::default(),
    };
    let (found, problems) = super::diagnose::collect(g, &da, now)?;
    if found.is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    let rt = super::runtime()?;
    let store = if super::cluster(g) {
        None
    } else {
        let path = super::store_path(g)?;
        Some(rt.block_on(SqlStore::open(&path))?)
    };
    // The local runtime's pods, read once: each diagnosis looks up its pod's owner there.
    let pods: Vec<Pod> = match &store {
        Some(s) => rt
            .block_on(s.objects("Pod"))?
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect(),
        None => Vec::new(),
    };
    let mut fixed = false;
    for d in &found {
        let Some(top) = d.top() else { continue };
        println!(
            "{}/{} container {}: {} — {}",
            d.namespace, d.pod, d.container, top.id, top.summary
        );
        let fixes: Vec<_> = top
            .remedies
            .iter()
            .filter(|r| r.patch.is_some() || r.manifest.is_some())
            .collect();
        if fixes.is_empty() {
            println!("  No change follows from the evidence alone; what to do:");
            for r in top.remedies.iter().take(3) {
                println!("  - {}", r.text);
            }
            continue;
        }
        // What makes the pod: the fix goes there.
        let pod = pods.iter().find(|p| {
            p.metadata.namespace.as_deref() == Some(d.namespace.as_str())
                && p.metadata.name.as_deref() == Some(d.pod.as_str())
        });
        let (kind, name) = pod
            .and_then(|p| OwnerChain::from_pod_meta(&p.metadata).workload())
            .map_or(("Pod".to_string(), d.pod.clone()), |w| (w.kind, w.name));
        for r in fixes {
            if let Some(m) = &r.manifest {
                println!("  Fix:      {}", r.text);
                for line in apply_command(m).lines() {
                    println!(
                        "  {}{line}",
                        if line.starts_with("kubectl") {
                            "$ "
                        } else {
                            "  "
                        }
                    );
                }
                if !a.apply {
                    continue;
                }
                let Some(s) = &store else {
                    println!("  (not applied: crashscope changes the local runtime's objects only; run the command above)");
                    continue;
                };
                let text = serde_json::to_string(m)?;
                let (objects, errors) = crashscope_local::manifest::parse("the fix", &text);
                if let Some(e) = errors.first() {
                    bail!("the fix's manifest is not one the runtime takes: {e}");
                }
                for line in rt.block_on(crashscope_local::runtime::apply(s, objects))? {
                    println!("{line}");
                }
                fixed = true;
                continue;
            }
            let Some(patch) = &r.patch else { continue };
            let ops = on_object(patch, &kind);
            println!("  Fix:      {}", r.text);
            println!(
                "  $ kubectl patch {} {name} -n {} --type=json -p '{}'",
                kind.to_lowercase(),
                d.namespace,
                ops
            );
            if !a.apply {
                continue;
            }
            let Some(s) = &store else {
                println!("  (not applied: crashscope changes the local runtime's objects only; run the command above)");
                continue;
            };
            if kind != "Deployment" {
                println!("  (not applied: a {kind}'s spec cannot change in place; change its manifest and recreate it)");
                continue;
            }
            rt.block_on(async {
                let applied_kind = applied_kind("Deployment");
                let mut body = s
                    .objects(&applied_kind)
                    .await?
                    .into_iter()
                    .find(|v| {
                        v.pointer("/metadata/namespace").and_then(Value::as_str)
                            == Some(d.namespace.as_str())
                            && v.pointer("/metadata/name").and_then(Value::as_str)
                                == Some(name.as_str())
                    })
                    .with_context(|| format!("deployment {}/{name} is not applied", d.namespace))?;
                apply_ops(&mut body, &ops)
                    .with_context(|| format!("cannot patch deployment {}/{name}", d.namespace))?;
                s.put_object(&applied_kind, &d.namespace, &name, &body)
                    .await?;
                anyhow::Ok(())
            })?;
            println!("deployment.apps/{name} patched");
            fixed = true;
        }
    }
    Ok(if problems || (a.apply && !fixed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pod_spec_patch_lands_on_the_template_of_a_workload_and_on_the_spec_of_a_pod() {
        let ops = json!([{"op": "replace", "path": "/containers/0/livenessProbe/httpGet/port", "value": 8080}]);
        assert_eq!(
            on_object(&ops, "Deployment")[0]["path"],
            "/spec/template/spec/containers/0/livenessProbe/httpGet/port"
        );
        assert_eq!(
            on_object(&ops, "Pod")[0]["path"],
            "/spec/containers/0/livenessProbe/httpGet/port"
        );
        let mut d = json!({"spec": {"template": {"spec": {"containers": [
            {"livenessProbe": {"httpGet": {"port": 8081}}}]}}}});
        apply_ops(&mut d, &on_object(&ops, "Deployment")).unwrap();
        assert_eq!(
            d.pointer("/spec/template/spec/containers/0/livenessProbe/httpGet/port"),
            Some(&json!(8080))
        );
        // An add sets a key in an object that is there.
        let mode = json!([{"op": "add", "path": "/spec/template/spec/volumes/0/configMap/defaultMode", "value": 493}]);
        let mut v =
            json!({"spec": {"template": {"spec": {"volumes": [{"configMap": {"name": "s"}}]}}}});
        apply_ops(&mut v, &mode).unwrap();
        assert_eq!(
            v.pointer("/spec/template/spec/volumes/0/configMap/defaultMode"),
            Some(&json!(493))
        );
        let nowhere = json!([{"op": "add", "path": "/spec/none/x", "value": 1}]);
        assert!(apply_ops(&mut v, &nowhere)
            .unwrap_err()
            .to_string()
            .contains("/spec/none"));
        let missing = json!([{"op": "replace", "path": "/spec/nothing", "value": 1}]);
        assert!(apply_ops(&mut d, &missing)
            .unwrap_err()
            .to_string()
            .contains("/spec/nothing"));
    }
}
