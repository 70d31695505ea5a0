//! Splitting an input into the documents it holds — one JSON value, JSON lines, or
//! multi-document YAML read as kubectl reads it — with an error naming the file and the
//! document for each that cannot be read. Every reader of manifests and recorded API objects
//! starts here.

use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// One object (or whole input) that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    /// Which object in the file, e.g. `document 2` or `items[3] (Pod default/web-0)`.
    pub object: Option<String>,
    pub problem: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.object {
            Some(o) => write!(f, "{}: {}: {}", self.file, o, self.problem),
            None => write!(f, "{}: {}", self.file, self.problem),
        }
    }
}

impl std::error::Error for LoadError {}

/// Splits an input into documents: one JSON value, JSON lines, or YAML documents.
pub fn documents(file: &str, text: &str, errors: &mut Vec<LoadError>) -> Vec<(String, Value)> {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        errors.push(LoadError {
            file: file.into(),
            object: None,
            problem: "the file is empty".into(),
        });
        return Vec::new();
    }
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        match serde_json::from_str::<Value>(trimmed) {
            Ok(v) => return vec![("object".into(), v)],
            Err(whole) => {
                let lines: Vec<&str> = trimmed.lines().filter(|l| !l.trim().is_empty()).collect();
                if lines.len() > 1 {
                    return json_lines(file, &lines, errors);
                }
                errors.push(LoadError {
                    file: file.into(),
                    object: None,
                    problem: format!("not valid JSON: {whole}"),
                });
                return Vec::new();
            }
        }
    }
    let mut docs = Vec::new();
    for (i, de) in serde_yaml_ng::Deserializer::from_str(trimmed).enumerate() {
        let label = format!("document {}", i + 1);
        match Value::deserialize(de) {
            Ok(Value::Null) => {}
            Ok(mut v @ Value::Object(_)) | Ok(mut v @ Value::Array(_)) => {
                octal_modes(&mut v);
                docs.push((label, v));
            }
            Ok(other) => errors.push(LoadError {
                file: file.into(),
                object: Some(label),
                problem: format!(
                    "not JSON or YAML describing an object (found {})",
                    value_kind(&other)
                ),
            }),
            Err(e) => {
                errors.push(LoadError {
                    file: file.into(),
                    object: Some(label),
                    problem: format!("not valid YAML: {e}"),
                });
                // The YAML parser cannot resynchronise after a syntax error.
                break;
            }
        }
    }
    docs
}

fn json_lines(file: &str, lines: &[&str], errors: &mut Vec<LoadError>) -> Vec<(String, Value)> {
    let mut docs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<Value>(line) {
            Ok(v) => docs.push((format!("line {}", i + 1), v)),
            Err(e) => errors.push(LoadError {
                file: file.into(),
                object: Some(format!("line {}", i + 1)),
                problem: format!("not valid JSON: {e}"),
            }),
        }
    }
    docs
}

pub fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a plain string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// File modes written as kubectl reads them. Manifests write `defaultMode: 0755`, which
/// kubectl's YAML 1.1 reads as octal (493); YAML 1.2 leaves it a string. Only the fields that
/// hold file modes are read so, so that a ConfigMap's data keeps its strings.
fn octal_modes(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if matches!(k.as_str(), "defaultMode" | "mode") {
                    if let Some(n) = x.as_str().and_then(octal) {
                        *x = Value::from(n);
                        continue;
                    }
                }
                octal_modes(x);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(octal_modes),
        _ => {}
    }
}

/// `0755` or `0o755` as a number.
fn octal(s: &str) -> Option<i64> {
    let digits = s.strip_prefix("0o").or_else(|| s.strip_prefix('0'))?;
    if digits.is_empty() || !digits.chars().all(|c| ('0'..='7').contains(&c)) {
        return None;
    }
    i64::from_str_radix(digits, 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_file_modes_are_numbers_and_data_keeps_its_strings() {
        let mut errors = Vec::new();
        let docs = documents(
            "m.yaml",
            "kind: ConfigMap\ndata: {mode: '0755'}\n---\nvolumes: [{configMap: {defaultMode: 0755, items: [{mode: 0o600}]}}]\n",
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].1["volumes"][0]["configMap"]["defaultMode"], 493);
        assert_eq!(
            docs[1].1["volumes"][0]["configMap"]["items"][0]["mode"],
            384
        );
        assert_eq!(octal("0644"), Some(420));
        assert_eq!(octal("0849"), None);
        assert_eq!(octal("755"), None);
    }

    #[test]
    fn empty_and_broken_inputs_are_named() {
        let mut errors = Vec::new();
        assert!(documents("e.yaml", " \n", &mut errors).is_empty());
        assert_eq!(errors[0].to_string(), "e.yaml: the file is empty");
        errors.clear();
        let docs = documents("b.yaml", "a: 1\n---\n: : [\n", &mut errors);
        assert_eq!(docs.len(), 1);
        assert_eq!(errors[0].object.as_deref(), Some("document 2"));
    }
}
