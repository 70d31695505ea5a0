//! The objects the local runtime accepts — Pod, Deployment, Service, ConfigMap, Secret,
//! Namespace — read from multi-document YAML or JSON, with errors naming file, object and field.

use crashscope_model::documents::{documents, LoadError};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// One accepted object.
#[derive(Debug, Clone)]
pub enum Object {
    Pod(Box<Pod>),
    Deployment(Box<Deployment>),
    Service(Box<Service>),
    ConfigMap(Box<ConfigMap>),
    Secret(Box<Secret>),
    Namespace(Box<Namespace>),
}

pub const KINDS: [&str; 6] = [
    "Pod",
    "Deployment",
    "Service",
    "ConfigMap",
    "Secret",
    "Namespace",
];

impl Object {
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Pod(_) => "Pod",
            Object::Deployment(_) => "Deployment",
            Object::Service(_) => "Service",
            Object::ConfigMap(_) => "ConfigMap",
            Object::Secret(_) => "Secret",
            Object::Namespace(_) => "Namespace",
        }
    }

    fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        match self {
            Object::Pod(o) => &o.metadata,
            Object::Deployment(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::ConfigMap(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
            Object::Namespace(o) => &o.metadata,
        }
    }

    pub fn name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or("")
    }

    /// The namespace, `default` when unset; empty for Namespaces (cluster-scoped).
    pub fn namespace(&self) -> &str {
        match self {
            Object::Namespace(_) => "",
            _ => self.meta().namespace.as_deref().unwrap_or("default"),
        }
    }

    pub fn to_json(&self) -> Value {
        let v = match self {
            Object::Pod(o) => serde_json::to_value(o),
            Object::Deployment(o) => serde_json::to_value(o),
            Object::Service(o) => serde_json::to_value(o),
            Object::ConfigMap(o) => serde_json::to_value(o),
            Object::Secret(o) => serde_json::to_value(o),
            Object::Namespace(o) => serde_json::to_value(o),
        };
        v.unwrap_or(Value::Null)
    }

    /// Reads an object of a known kind back from its JSON.
    pub fn from_json(kind: &str, v: Value) -> Result<Object, String> {
        fn typed<T: DeserializeOwned>(v: Value) -> Result<Box<T>, String> {
            serde_path_to_error::deserialize::<_, T>(v)
                .map(Box::new)
                .map_err(|e| format!("field {}: {}", e.path(), e.inner()))
        }
        Ok(match kind {
            "Pod" => Object::Pod(typed(v)?),
            "Deployment" => Object::Deployment(typed(v)?),
            "Service" => Object::Service(typed(v)?),
            "ConfigMap" => Object::ConfigMap(typed(v)?),
            "Secret" => Object::Secret(typed(v)?),
            "Namespace" => Object::Namespace(typed(v)?),
            other => {
                return Err(format!(
                    "kind {other:?} is not supported by the local runtime (supported: {})",
                    KINDS.join(", ")
                ))
            }
        })
    }
}

/// Reads every object of `text`; `file` names the input in errors.
pub fn parse(file: &str, text: &str) -> (Vec<Object>, Vec<LoadError>) {
    let mut errors = Vec::new();
    let mut objects: Vec<Object> = Vec::new();
    let docs = documents(file, text, &mut errors);
    let mut flat = Vec::new();
    for (label, v) in docs {
        match v {
            Value::Array(items) => flat.extend(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, x)| (format!("{label}[{i}]"), x)),
            ),
            Value::Object(mut m) if m.get("kind").and_then(Value::as_str) == Some("List") => {
                if let Some(Value::Array(items)) = m.remove("items") {
                    flat.extend(
                        items
                            .into_iter()
                            .enumerate()
                            .map(|(i, x)| (format!("{label} items[{i}]"), x)),
                    );
                }
            }
            other => flat.push((label, other)),
        }
    }
    for (label, v) in flat {
        let kind = v
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let name = v
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let err = |problem: String| LoadError {
            file: file.into(),
            object: Some(if name.is_empty() {
                label.clone()
            } else {
                format!("{label} ({kind} {name})")
            }),
            problem,
        };
        if kind.is_empty() {
            errors.push(err("the object has no kind".into()));
            continue;
        }
        if name.is_empty() {
            errors.push(err("metadata.name is required".into()));
            continue;
        }
        match Object::from_json(&kind, v) {
            Err(problem) => errors.push(err(problem)),
            Ok(o) => {
                if let Some(p) = validate(&o) {
                    errors.push(err(p));
                } else if objects.iter().any(|x| {
                    x.kind() == o.kind() && x.namespace() == o.namespace() && x.name() == o.name()
                }) {
                    errors.push(err(format!(
                        "duplicate {} {}/{} in the same input",
                        o.kind(),
                        o.namespace(),
                        o.name()
                    )));
                } else {
                    objects.push(o);
                }
            }
        }
    }
    (objects, errors)
}

/// Whether `s` is a DNS-1123 subdomain (what most object names must be).
fn is_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Whether `s` is a DNS-1123 label (namespaces, Services, container names).
fn is_label(s: &str) -> bool {
    s.len() <= 63 && !s.contains('.') && is_subdomain(s)
}

/// What the API server's validation would refuse, for the fields the runtime relies on.
fn validate(o: &Object) -> Option<String> {
    let name = o.name();
    let label_only = matches!(o, Object::Namespace(_) | Object::Service(_));
    if (label_only && !is_label(name)) || !is_subdomain(name) {
        let what = if label_only {
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
        } else {
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        };
        return Some(format!(
            "The {} {name:?} is invalid: metadata.name: Invalid value: {name:?}: {what}",
            o.kind()
        ));
    }
    let pod_spec = match o {
        Object::Pod(p) => p.spec.as_ref(),
        Object::Deployment(d) => d.spec.as_ref().and_then(|s| s.template.spec.as_ref()),
        _ => return None,
    };
    let Some(spec) = pod_spec else {
        return Some("spec.containers: Required value".into());
    };
    if spec.containers.is_empty() {
        return Some("spec.containers: Required value".into());
    }
    let mut names = std::collections::HashSet::new();
    for (i, c) in spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .enumerate()
    {
        if c.name.is_empty() {
            return Some(format!("container {i}: name: Required value"));
        }
        if !names.insert(c.name.as_str()) {
            return Some(format!(
                "spec.containers[{i}].name: Duplicate value: {:?}",
                c.name
            ));
        }
        if !is_label(&c.name) {
            return Some(format!(
                "spec.containers[{i}].name: Invalid value: {:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                c.name
            ));
        }
        let resources = c.resources.as_ref();
        for (what, list) in [
            ("limits", resources.and_then(|r| r.limits.as_ref())),
            ("requests", resources.and_then(|r| r.requests.as_ref())),
        ] {
            for (res, q) in list.into_iter().flatten() {
                if crashscope_model::quantity::value(&q.0).is_none() {
                    return Some(format!(
                        "spec.containers[{i}].resources.{what}[{res}]: Invalid value: {:?}: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                        q.0
                    ));
                }
            }
        }
        if c.command.as_deref().unwrap_or_default().is_empty()
            && c.args.as_deref().unwrap_or_default().is_empty()
        {
            return Some(format!(
                "container {:?}: command is required (the local runtime runs host programs and has no image entrypoint)",
                c.name
            ));
        }
    }
    match spec.restart_policy.as_deref() {
        None | Some("Always") | Some("OnFailure") | Some("Never") => None,
        Some(other) => Some(format!(
            "spec.restartPolicy: Unsupported value: {other:?}: supported values: \"Always\", \"OnFailure\", \"Never\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_quantities_are_refused_as_the_api_server_refuses_them() {
        let (objs, errs) = parse(
            "bad.yaml",
            "kind: Pod\nmetadata: {name: Bad_Name}\nspec: {containers: [{name: a, command: [x]}]}\n---\n\
             kind: Pod\nmetadata: {name: big}\nspec: {containers: [{name: a, command: [x], resources: {limits: {memory: 64Zb}}}]}\n---\n\
             kind: Pod\nmetadata: {name: ok.example-1}\nspec: {containers: [{name: a-1, command: [x], resources: {limits: {memory: 64Mi, cpu: 500m}}}]}\n---\n\
             kind: Service\nmetadata: {name: with.dot}\n",
        );
        assert_eq!(objs.len(), 1, "{errs:?}");
        assert_eq!(objs[0].name(), "ok.example-1");
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0]
                .problem
                .contains("metadata.name: Invalid value: \"Bad_Name\""),
            "{}",
            errs[0]
        );
        assert!(
            errs[1]
                .problem
                .contains("resources.limits[memory]: Invalid value: \"64Zb\""),
            "{}",
            errs[1]
        );
        assert!(errs[2].problem.contains("RFC 1123 label"), "{}", errs[2]);
    }

    #[test]
    fn reads_the_supported_kinds_and_names_bad_objects() {
        let (objs, errs) = parse(
            "app.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: conf}\ndata: {a: b}\n---\n\
             apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: nginx, command: [nginx]}]}\n---\n\
             kind: StatefulSet\nmetadata: {name: db}\n---\n\
             kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: x}]}\n---\n\
             kind: Pod\nmetadata: {name: q}\nspec: {restartPolicy: Sometimes, containers: [{name: a, command: [\"true\"]}]}\n---\n\
             kind: ConfigMap\nmetadata: {name: conf}\n",
        );
        assert_eq!(objs.len(), 2);
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(msgs.len(), 4, "{msgs:?}");
        assert!(
            msgs[0].contains("document 3 (StatefulSet db): kind \"StatefulSet\" is not supported"),
            "{}",
            msgs[0]
        );
        assert!(
            msgs[1].contains("(Pod p)") && msgs[1].contains("command is required"),
            "{}",
            msgs[1]
        );
        assert!(
            msgs[2].contains("spec.restartPolicy: Unsupported value"),
            "{}",
            msgs[2]
        );
        assert!(
            msgs[3].contains("duplicate ConfigMap default/conf"),
            "{}",
            msgs[3]
        );
    }
}
