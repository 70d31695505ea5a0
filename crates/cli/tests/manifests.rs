//! The install manifests in `deploy/` and the README's "Install in a cluster" commands, checked
//! offline (no API server can run here): every manifest against the Kubernetes 1.33 and 1.37
//! schemas with kubernetes-validate in strict mode (its schemas ship in the package; `make
//! test` installs it into /opt/kubernetes-validate), the kustomize layout, that every
//! Secret and ConfigMap a pod needs is in the manifests or created by the README's commands
//! with the keys the pods read, the server's arguments as crashscope parses them, the
//! shipped rules equal to the defaults, the images tagged with this version, and the
//! monitoring resources pointing at a real port and real metrics.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml_ng::Value;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Every YAML file under deploy/, sorted.
fn files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![deploy()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The objects of a manifest file.
fn objects(p: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(p).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn all_objects() -> Vec<(PathBuf, Value)> {
    files()
        .into_iter()
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .flat_map(|p| objects(&p).into_iter().map(move |o| (p.clone(), o)))
        .collect()
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    s(v, path).and_then(Value::as_str).unwrap_or("")
}

#[test]
fn manifests_validate_against_the_kubernetes_1_33_and_1_37_schemas() {
    let tool = Path::new("/opt/kubernetes-validate/bin/kubernetes-validate");
    if !tool.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "kubernetes-validate is not installed under CI (make test installs it)"
        );
        eprintln!(
            "skipping: kubernetes-validate not installed (scripts/test-kubernetes-validate.sh)"
        );
        return;
    }
    let manifests: Vec<PathBuf> = files()
        .into_iter()
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .collect();
    let out = Command::new(tool)
        .args(["-k", "1.33.0", "-k", "1.37.0", "--strict"])
        .args(&manifests)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    // Every built-in kind was checked, for both versions; only the Prometheus Operator's
    // kinds have no schema in the package (checked by hand below).
    for (p, o) in all_objects() {
        let kind = str_at(&o, &["kind"]);
        let name = str_at(&o, &["metadata", "name"]);
        if str_at(&o, &["apiVersion"]).starts_with("monitoring.coreos.com/") {
            continue;
        }
        for v in ["1.33", "1.37"] {
            let said = format!(
                "passed for resource {}/{name} against version {v}",
                kind.to_lowercase()
            );
            assert!(
                text.contains(&said),
                "{}: {said:?} not said:\n{text}",
                p.display()
            );
        }
    }
}

#[test]
fn kustomizations_list_files_that_exist() {
    let mut seen = 0;
    for k in files()
        .into_iter()
        .filter(|p| p.ends_with("kustomization.yaml"))
    {
        let dir = k.parent().unwrap();
        for o in objects(&k) {
            assert_eq!(str_at(&o, &["kind"]), "Kustomization", "{}", k.display());
            for r in s(&o, &["resources"]).and_then(Value::as_sequence).unwrap() {
                let target = dir.join(r.as_str().unwrap());
                let ok = target.is_file() || target.join("kustomization.yaml").is_file();
                assert!(ok, "{}: {} is missing", k.display(), target.display());
                seen += 1;
            }
        }
    }
    assert!(seen >= 8, "{seen}");
}

/// The README's "Install in a cluster" section: its sh blocks' lines.
fn install_section() -> String {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("## Install in a cluster")
        .expect("README has an 'Install in a cluster' section");
    let rest = &readme[start + 3..];
    let end = rest.find("\n## ").map_or(rest.len(), |i| i);
    rest[..end].to_string()
}

#[test]
fn every_secret_and_config_map_a_pod_reads_exists_with_its_keys() {
    let install = install_section().replace("\\\n", " ");
    // Secrets the README creates: name -> keys.
    let mut made: Vec<(String, BTreeSet<String>)> = Vec::new();
    for line in install.lines() {
        let Some(rest) = line.split("create secret generic ").nth(1) else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let name = words.next().unwrap().to_string();
        let keys = words
            .filter_map(|w| {
                w.strip_prefix("--from-literal=")
                    .or_else(|| w.strip_prefix("--from-file="))
                    .and_then(|kv| kv.split_once('='))
                    .map(|(k, _)| k.to_string())
            })
            .collect();
        made.push((name, keys));
    }
    assert!(made.len() >= 2, "{install}");
    let objects = all_objects();
    let maps: BTreeSet<String> = objects
        .iter()
        .filter(|(_, o)| str_at(o, &["kind"]) == "ConfigMap")
        .map(|(_, o)| str_at(o, &["metadata", "name"]).to_string())
        .collect();
    let secret_has = |name: &str, key: Option<&str>| {
        made.iter()
            .any(|(n, keys)| n == name && key.is_none_or(|k| keys.contains(k)))
    };
    let mut checked = 0;
    for (p, o) in &objects {
        let Some(spec) = s(o, &["spec", "template", "spec"]) else {
            continue;
        };
        for v in s(spec, &["volumes"])
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            if let Some(name) = s(v, &["secret", "secretName"]).and_then(Value::as_str) {
                let items = s(v, &["secret", "items"]).and_then(Value::as_sequence);
                let keys: Vec<Option<&str>> = match items {
                    Some(items) => items
                        .iter()
                        .map(|i| i.get("key").and_then(Value::as_str))
                        .collect(),
                    None => vec![None],
                };
                for k in keys {
                    assert!(
                        secret_has(name, k),
                        "{}: Secret {name} key {k:?} is made by no README command",
                        p.display()
                    );
                    checked += 1;
                }
            }
            if let Some(name) = s(v, &["configMap", "name"]).and_then(Value::as_str) {
                assert!(
                    maps.contains(name),
                    "{}: ConfigMap {name} is in no manifest",
                    p.display()
                );
                checked += 1;
            }
        }
        for c in s(spec, &["containers"])
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            for e in c
                .get("env")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                if let Some(r) = s(e, &["valueFrom", "secretKeyRef"]) {
                    let (name, key) = (str_at(r, &["name"]), str_at(r, &["key"]));
                    assert!(
                        secret_has(name, Some(key)),
                        "{}: Secret {name} key {key} is made by no README command",
                        p.display()
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 7, "{checked}");
    // The tokens file the token Secrets carry is made by the README too.
    assert!(install.contains("> tokens"), "{install}");
    // And the README installs each server layout that exists.
    for dir in ["deploy/single", "deploy/ha"] {
        assert!(
            install.contains(&format!("kubectl apply -k {dir}")),
            "{dir}:\n{install}"
        );
    }
}

#[test]
fn the_server_arguments_parse_the_rules_are_the_defaults_and_images_are_this_version() {
    let objects = all_objects();
    let version = env!("CARGO_PKG_VERSION");
    let mut servers = 0;
    for (p, o) in &objects {
        for c in s(o, &["spec", "template", "spec", "containers"])
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let image = str_at(c, &["image"]);
            assert_eq!(
                image.rsplit_once(':').map(|(_, t)| t),
                Some(version),
                "{}: {image} is not this version",
                p.display()
            );
            let args: Vec<&str> = c
                .get("args")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if !args.contains(&"serve") {
                continue;
            }
            servers += 1;
            // crashscope parses them (`--print-default-rules` stops before anything starts).
            let out = Command::new(env!("CARGO_BIN_EXE_crashscope"))
                .args(&args)
                .arg("--print-default-rules")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {args:?}: {}",
                p.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            // The probes ask what the server answers without a token.
            for probe in ["livenessProbe", "readinessProbe"] {
                let path = str_at(c, &[probe, "httpGet", "path"]);
                assert!(matches!(path, "/healthz" | "/readyz"), "{probe}: {path}");
            }
        }
    }
    assert_eq!(
        servers, 2,
        "deploy/single and deploy/ha each run the server"
    );
    let rules = objects
        .iter()
        .find(|(_, o)| str_at(o, &["metadata", "name"]) == "crashscope-rules")
        .map(|(_, o)| str_at(o, &["data", "rules.yaml"]).to_string())
        .expect("the crashscope-rules ConfigMap");
    let shipped = crashscope_rules::RuleFile::parse("crashscope-rules", &rules).unwrap();
    let defaults =
        crashscope_rules::RuleFile::parse("defaults", crashscope_rules::rule::DEFAULT_RULES)
            .unwrap();
    assert_eq!(
        shipped, defaults,
        "the ConfigMap's rules drifted from the defaults"
    );
}

#[test]
fn monitoring_points_at_the_servers_port_and_metrics_that_exist() {
    let objects = all_objects();
    let service = objects
        .iter()
        .map(|(_, o)| o)
        .find(|o| {
            str_at(o, &["kind"]) == "Service" && str_at(o, &["metadata", "name"]) == "crashscope"
        })
        .expect("the server's Service");
    let ports: Vec<&str> = s(service, &["spec", "ports"])
        .and_then(Value::as_sequence)
        .unwrap()
        .iter()
        .map(|p| str_at(p, &["name"]))
        .collect();
    let service_labels = s(service, &["metadata", "labels"]).unwrap();
    let monitor = objects
        .iter()
        .map(|(_, o)| o)
        .find(|o| str_at(o, &["kind"]) == "ServiceMonitor")
        .expect("a ServiceMonitor");
    for (k, v) in s(monitor, &["spec", "selector", "matchLabels"])
        .and_then(Value::as_mapping)
        .unwrap()
    {
        assert_eq!(
            service_labels.get(k),
            Some(v),
            "the ServiceMonitor selects no Service"
        );
    }
    for e in s(monitor, &["spec", "endpoints"])
        .and_then(Value::as_sequence)
        .unwrap()
    {
        assert!(ports.contains(&str_at(e, &["port"])), "{e:?}");
    }
    // Every metric an alert uses is one the server exports.
    // Labelled families show once they have a series: one of each kind is made.
    let metrics = crashscope_server::Metrics::new();
    metrics.notification("webhook", false);
    metrics.notification("webhook", true);
    let exported = metrics.render();
    let rule = objects
        .iter()
        .map(|(_, o)| o)
        .find(|o| str_at(o, &["kind"]) == "PrometheusRule")
        .expect("a PrometheusRule");
    let names = |expr: &str| -> Vec<String> {
        expr.match_indices("crashscope_")
            .map(|(i, _)| {
                expr[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect()
            })
            .collect()
    };
    let mut used = 0;
    for g in s(rule, &["spec", "groups"])
        .and_then(Value::as_sequence)
        .unwrap()
    {
        for r in g.get("rules").and_then(Value::as_sequence).unwrap() {
            for m in names(str_at(r, &["expr"])) {
                let family = m.trim_end_matches("_total");
                assert!(
                    exported.contains(&format!("# TYPE {family} ")),
                    "{m} is not a metric the server exports"
                );
                used += 1;
            }
        }
    }
    assert!(used >= 3, "{used}");
}
