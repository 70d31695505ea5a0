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

/// Deepest nesting of `[` and `{` read. The YAML scanner takes time quadratic in flow
/// nesting before its own recursion limit (128) stops it: 100,000 `[` took 42 s. Real
/// manifests nest a dozen levels.
pub const MAX_NESTING: usize = 128;

/// Errors kept per input; past it one line says how many more there were, so that a huge
/// file of bad objects costs a bounded amount of memory.
pub const MAX_ERRORS: usize = 1000;

/// Adds `e` to `errors` unless [`MAX_ERRORS`] are there already (the last slot then
/// counts what was left out).
pub fn push_error(errors: &mut Vec<LoadError>, e: LoadError) {
    match errors.len().cmp(&MAX_ERRORS) {
        std::cmp::Ordering::Less => errors.push(e),
        std::cmp::Ordering::Equal => errors.push(LoadError {
            file: e.file,
            object: None,
            problem: "1 more error not shown".into(),
        }),
        std::cmp::Ordering::Greater => {
            if let Some(last) = errors.last_mut() {
                let n = last
                    .problem
                    .split(' ')
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
                last.problem = format!("{} more errors not shown", n + 1);
            }
        }
    }
}

/// The deepest `[`/`{` nesting outside quoted strings: a linear scan done before parsing.
fn flow_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '[' | '{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        // A quote never spans lines in a flow collection; an apostrophe in a plain scalar
        // (`it's`) must not hide the rest of the file.
        if c == '\n' {
            quote = None;
        }
    }
    deepest
}

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
    if flow_depth(trimmed) > MAX_NESTING {
        errors.push(LoadError {
            file: file.into(),
            object: None,
            problem: format!("nested deeper than {MAX_NESTING} levels of [ and {{"),
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
            Ok(other) => push_error(
                errors,
                LoadError {
                    file: file.into(),
                    object: Some(label),
                    problem: format!(
                        "not JSON or YAML describing an object (found {})",
                        value_kind(&other)
                    ),
                },
            ),
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
            Err(e) => push_error(
                errors,
                LoadError {
                    file: file.into(),
                    object: Some(format!("line {}", i + 1)),
                    problem: format!("not valid JSON: {e}"),
                },
            ),
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
    fn deep_nesting_is_refused_at_once_and_normal_nesting_is_read() {
        for text in [
            format!("x: {}", "[".repeat(100_000)),
            "{\"a\":".repeat(7000) + "1" + &"}".repeat(7000),
        ] {
            let started = std::time::Instant::now();
            let mut errors = Vec::new();
            assert!(documents("deep.yaml", &text, &mut errors).is_empty());
            assert!(errors[0].problem.contains("nested deeper"), "{errors:?}");
            assert!(started.elapsed() < std::time::Duration::from_secs(1));
        }
        let mut errors = Vec::new();
        let ok = documents(
            "ok.yaml",
            "args: [\"it's [not] nesting\", 'a [b']\nnote: it's [fine]\nv: [[[1]]]\n",
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(ok[0].1["v"][0][0][0], 1);
    }

    #[test]
    fn errors_past_the_cap_are_counted_not_kept() {
        let mut errors = Vec::new();
        let e = |i: usize| LoadError {
            file: "f".into(),
            object: Some(format!("line {i}")),
            problem: "bad".into(),
        };
        for i in 0..MAX_ERRORS + 5 {
            push_error(&mut errors, e(i));
        }
        assert_eq!(errors.len(), MAX_ERRORS + 1);
        assert_eq!(errors[MAX_ERRORS].problem, "5 more errors not shown");
    }

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
