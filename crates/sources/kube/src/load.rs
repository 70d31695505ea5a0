//! Reading Kubernetes objects from files: JSON or YAML, one object or many (multi-document
//! YAML, `List`/`PodList`/`EventList`), watch streams (one `{"type","object"}` per line, as the
//! API server sends them) and recorded API exchanges (`request_url` + `response_body`).
//!
//! Bad input never stops the load: each object that cannot be read becomes a [`LoadError`]
//! naming the file, the object and what is wrong, and every readable object is kept.

pub use crashscope_model::documents::{documents, value_kind, LoadError};
use k8s_openapi::api::core::v1::{Event as KubeEvent, Pod};
use k8s_openapi::api::events::v1::Event as EventsV1;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;

/// Objects read from one or more inputs, and what could not be read.
#[derive(Debug, Default)]
pub struct Loaded {
    pub pods: Vec<Pod>,
    pub events: Vec<KubeEvent>,
    pub errors: Vec<LoadError>,
}

/// Which kinds the caller wants; anything else is reported as an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    pub pods: bool,
    pub events: bool,
}

impl Loaded {
    /// Reads every object in `text`; `file` names the input in errors.
    pub fn add_text(&mut self, file: &str, text: &str, want: Want) {
        let mut ctx = Ctx {
            file,
            want,
            out: self,
            watched: Vec::new(),
            watched_at: HashMap::new(),
            in_exchange: false,
        };
        for (label, doc) in documents(file, text, &mut ctx.out.errors) {
            ctx.value(&label, doc);
        }
        let watched = std::mem::take(&mut ctx.watched);
        self.pods.extend(watched.into_iter().flatten());
    }
}

fn pod_key(pod: &Pod) -> String {
    match &pod.metadata.uid {
        Some(uid) => uid.clone(),
        None => format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or(""),
            pod.metadata.name.as_deref().unwrap_or("")
        ),
    }
}

struct Ctx<'a> {
    file: &'a str,
    want: Want,
    out: &'a mut Loaded,
    /// Pods of a watch stream, by key: the last ADDED/MODIFIED wins, DELETED removes, as a
    /// reflector keeps them.
    watched: Vec<Option<Pod>>,
    /// Where each key's pod is in `watched` (a stream can hold millions of events).
    watched_at: HashMap<String, usize>,
    /// Inside a recorded API exchange: objects of other kinds are traffic, not mistakes.
    in_exchange: bool,
}

impl Ctx<'_> {
    fn error(&mut self, object: &str, problem: impl Into<String>) {
        crashscope_model::documents::push_error(
            &mut self.out.errors,
            LoadError {
                file: self.file.into(),
                object: Some(object.to_string()),
                problem: problem.into(),
            },
        );
    }

    fn value(&mut self, label: &str, v: Value) {
        match v {
            Value::Array(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    self.value(&format!("{label}[{i}]"), item);
                }
            }
            Value::Object(ref map) => {
                if let (Some(body), Some(_)) = (map.get("response_body"), map.get("request_url")) {
                    self.recorded_exchange(label, map, body);
                } else if let (Some(Value::String(t)), Some(_)) =
                    (map.get("type"), map.get("object"))
                {
                    self.watch_event(label, t.clone(), v);
                } else {
                    self.object(label, v);
                }
            }
            other => self.error(
                label,
                format!("expected an object, found {}", value_kind(&other)),
            ),
        }
    }

    fn recorded_exchange(
        &mut self,
        label: &str,
        map: &serde_json::Map<String, Value>,
        body: &Value,
    ) {
        let status = map
            .get("response_status_code")
            .and_then(Value::as_u64)
            .unwrap_or(200);
        if !(200..300).contains(&status) {
            return;
        }
        let Some(body) = body.as_str() else {
            self.error(label, "response_body is not a string");
            return;
        };
        // An API answer never holds a recorded exchange; following one inside another would
        // let a crafted file nest without bound (each level's label holding all above it).
        if self.in_exchange {
            self.error(label, "a recorded exchange inside another exchange's body");
            return;
        }
        let url = map.get("request_url").and_then(Value::as_str).unwrap_or("");
        let inner_label = format!("{label} ({url})");
        let mut nested = Vec::new();
        let was = std::mem::replace(&mut self.in_exchange, true);
        for (l, doc) in documents(self.file, body, &mut nested) {
            self.value(&format!("{inner_label} {l}"), doc);
        }
        self.in_exchange = was;
        for e in nested {
            crashscope_model::documents::push_error(&mut self.out.errors, e);
        }
    }

    fn watch_event(&mut self, label: &str, kind: String, v: Value) {
        let Value::Object(mut map) = v else { return };
        let object = map.remove("object").unwrap_or(Value::Null);
        let is_pod = object.get("kind").and_then(Value::as_str) == Some("Pod");
        match kind.as_str() {
            "ADDED" | "MODIFIED" if is_pod && self.want.pods => {
                let label = format!("{label} ({kind})");
                if let Some(pod) = self.typed::<Pod>(&label, object) {
                    let key = pod_key(&pod);
                    match self.watched_at.get(&key) {
                        Some(&i) => self.watched[i] = Some(pod),
                        None => {
                            self.watched_at.insert(key, self.watched.len());
                            self.watched.push(Some(pod));
                        }
                    }
                }
            }
            "ADDED" | "MODIFIED" => self.object(&format!("{label} ({kind})"), object),
            "DELETED" => {
                if let Ok(pod) = serde_json::from_value::<Pod>(object) {
                    let key = pod_key(&pod);
                    if let Some(i) = self.watched_at.remove(&key) {
                        self.watched[i] = None;
                    }
                }
            }
            "BOOKMARK" => {}
            "ERROR" => self.error(
                label,
                format!("the watch stream carried an error: {object}"),
            ),
            other => self.error(label, format!("unknown watch event type {other:?}")),
        }
    }

    fn object(&mut self, label: &str, v: Value) {
        self.object_of(label, v, "");
    }

    /// Reads one object; `list_kind` is the kind its list implies (items of an API
    /// `PodList` carry no kind of their own).
    fn object_of(&mut self, label: &str, v: Value, list_kind: &str) {
        let mut kind = v
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or(list_kind)
            .to_string();
        // Archives such as the OpenShift insights archive strip apiVersion/kind; an object with
        // spec.containers and no kind can only be a Pod.
        if kind.is_empty() && v.pointer("/spec/containers").is_some_and(Value::is_array) {
            kind = "Pod".into();
        }
        let name = describe_name(&v);
        let label = if name.is_empty() {
            label.to_string()
        } else {
            format!(
                "{label} ({} {name})",
                if kind.is_empty() { "object" } else { &kind }
            )
        };
        match kind.as_str() {
            "Pod" if self.want.pods => {
                // (Pods of a watch stream are handled in watch_event.)
                if let Some(p) = self.typed::<Pod>(&label, v) {
                    self.out.pods.push(p);
                }
            }
            "Event" if self.want.events => {
                let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or("v1");
                match api {
                    "v1" => {
                        if let Some(e) = self.typed::<KubeEvent>(&label, v) {
                            self.out.events.push(e);
                        }
                    }
                    "events.k8s.io/v1" => {
                        if let Some(e) = self.typed::<EventsV1>(&label, v) {
                            self.out
                                .events
                                .push(crashscope_model::event::core_from_v1(&e));
                        }
                    }
                    other => self.error(
                        &label,
                        format!("Events of {other} are not read; use v1 or events.k8s.io/v1"),
                    ),
                }
            }
            k if k.ends_with("List") => match v.get("items") {
                Some(Value::Array(_)) => {
                    let item_kind = k.strip_suffix("List").unwrap_or("").to_string();
                    // Taken, not copied: a list can be most of a large file.
                    let items = match v {
                        Value::Object(mut map) => map.remove("items"),
                        _ => None,
                    };
                    if let Some(Value::Array(items)) = items {
                        for (i, item) in items.into_iter().enumerate() {
                            self.object_of(&format!("{label} items[{i}]"), item, &item_kind);
                        }
                    }
                }
                Some(Value::Null) | None => {}
                Some(other) => self.error(
                    &label,
                    format!("items must be a list, found {}", value_kind(other)),
                ),
            },
            "" => self.error(&label, "the object has no kind; expected kind: Pod"),
            "Event" | "Pod" => {}
            _ if self.in_exchange => {}
            other => self.error(&label, format!("is a {other}, not a Pod")),
        }
    }

    fn typed<T: DeserializeOwned>(&mut self, label: &str, v: Value) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(v) {
            Ok(t) => Some(t),
            Err(e) => {
                let path = e.path().to_string();
                self.error(label, format!("field {path}: {}", e.into_inner()));
                None
            }
        }
    }
}

fn describe_name(v: &Value) -> String {
    let meta = v.get("metadata");
    let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str);
    let ns = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str);
    match (ns, name) {
        (Some(ns), Some(n)) => format!("{ns}/{n}"),
        (None, Some(n)) => n.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_modes_are_read_as_kubectl_reads_them() {
        let mut loaded = Loaded::default();
        loaded.add_text(
            "m.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: m}\nspec:\n  containers: [{name: c, image: x}]\n  volumes:\n  - name: v\n    configMap: {name: x, defaultMode: 0755, items: [{key: a, path: a, mode: 0o600}]}\n",
            Want { pods: true, events: false },
        );
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let cm = loaded.pods[0]
            .spec
            .as_ref()
            .unwrap()
            .volumes
            .as_ref()
            .unwrap()[0]
            .config_map
            .clone()
            .unwrap();
        assert_eq!(cm.default_mode, Some(0o755));
        assert_eq!(cm.items.unwrap()[0].mode, Some(0o600));
    }

    use super::*;

    const PODS: Want = Want {
        pods: true,
        events: true,
    };

    fn load(text: &str) -> Loaded {
        let mut l = Loaded::default();
        l.add_text("in.yaml", text, PODS);
        l
    }

    #[test]
    fn multi_document_yaml_with_lists_and_events() {
        let l = load(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n\
             kind: List\nitems:\n- {kind: Pod, metadata: {name: b}}\n- {kind: Event, metadata: {name: e}, involvedObject: {name: b}}\n",
        );
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        assert_eq!(l.pods.len(), 2);
        assert_eq!(l.events.len(), 1);
    }

    #[test]
    fn bad_objects_are_named_and_good_ones_kept() {
        let l = load(
            "kind: Pod\nmetadata: {name: good, namespace: ns}\n---\n\
             kind: Deployment\nmetadata: {name: web, namespace: ns}\n---\n\
             kind: Pod\nmetadata: {name: odd, namespace: ns}\nstatus: {containerStatuses: [{name: c, restartCount: many}]}\n---\n\
             metadata: {name: nokind}\n",
        );
        assert_eq!(l.pods.len(), 1);
        let msgs: Vec<String> = l.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(
            msgs[0].contains("document 2 (Deployment ns/web): is a Deployment, not a Pod"),
            "{}",
            msgs[0]
        );
        assert!(
            msgs[1].contains("status.containerStatuses[0].restartCount"),
            "{}",
            msgs[1]
        );
        assert!(
            msgs[1].starts_with("in.yaml: document 3 (Pod ns/odd)"),
            "{}",
            msgs[1]
        );
        assert!(msgs[2].contains("no kind"), "{}", msgs[2]);
    }

    #[test]
    fn garbage_is_reported_not_panicked_on() {
        for text in [
            "",
            "{not json",
            "\u{0}\u{1}binary",
            ": : :",
            "- [",
            "42",
            "[1, 2]",
        ] {
            let l = load(text);
            assert!(l.pods.is_empty());
            assert!(!l.errors.is_empty(), "no error for {text:?}");
        }
    }

    #[test]
    fn watch_stream_keeps_the_last_state_and_honours_deletes() {
        let text = [
            r#"{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"a","uid":"1"}}}"#,
            r#"{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"b","uid":"2"}}}"#,
            r#"{"type":"MODIFIED","object":{"kind":"Pod","metadata":{"name":"a","uid":"1","labels":{"v":"2"}}}}"#,
            r#"{"type":"DELETED","object":{"kind":"Pod","metadata":{"name":"b","uid":"2"}}}"#,
            r#"{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"9"}}}"#,
        ]
        .join("\n");
        let l = load(&text);
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        assert_eq!(l.pods.len(), 1);
        assert!(l.pods[0].metadata.labels.is_some());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(s in ".{0,200}") {
            let _ = load(&s);
        }
    }
}
