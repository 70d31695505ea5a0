//! Printing objects as JSON or YAML, one object alone or several as a `List` like kubectl.

use anyhow::Result;
use serde::Serialize;

pub fn json<T: Serialize>(v: &T) -> Result<String> {
    Ok(serde_json::to_string_pretty(v)? + "\n")
}

pub fn yaml<T: Serialize>(v: &T) -> Result<String> {
    Ok(serde_yaml_ng::to_string(v)?)
}

/// kubectl prints one object as itself and several as a v1 List.
pub fn as_list<T: Serialize>(items: &[T]) -> Result<serde_json::Value> {
    if items.len() == 1 {
        return Ok(serde_json::to_value(&items[0])?);
    }
    Ok(serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": items,
    }))
}
