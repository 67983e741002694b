//! The result cache's keys, and the payload hash that `Idempotency-Key`s stand for. A cache key names a
//! kind version, the params with their object keys sorted and the input's SHA-256; submits
//! (`api::jobs`) and pipeline steps (`worker`) compute the same key for the same work, so either may be
//! answered from what the other ran.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// SHA-256 of `label`, the params with their object keys sorted (so the same params in another order
/// are the same payload) and the input bytes.
pub fn payload_hash(label: &str, params: &Value, input: Option<&[u8]>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(label.as_bytes());
    hasher.update([0]);
    hasher.update(canonical(params).to_string().as_bytes());
    hasher.update([0]);
    match input {
        Some(bytes) => {
            hasher.update([1]);
            hasher.update(bytes);
        }
        None => hasher.update([0]),
    }
    hex::encode(hasher.finalize())
}

/// The result-cache key of running `version` on `params` and an input whose SHA-256 (hex) is
/// `input_sha256` (`None`: no input).
pub fn key(version: &str, params: &Value, input_sha256: Option<&str>) -> String {
    payload_hash(
        &format!("result cache\0{version}"),
        params,
        input_sha256.map(str::as_bytes),
    )
}

fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: std::collections::BTreeMap<&String, Value> =
                map.iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_matter_but_everything_else_does() {
        let a = key(
            "v1",
            &json!({"x": 1, "y": {"b": 2, "a": [3, {"d": 4, "c": 5}]}}),
            Some("ff"),
        );
        let b = key(
            "v1",
            &json!({"y": {"a": [3, {"c": 5, "d": 4}], "b": 2}, "x": 1}),
            Some("ff"),
        );
        assert_eq!(a, b);
        assert_ne!(
            a,
            key(
                "v2",
                &json!({"x": 1, "y": {"b": 2, "a": [3, {"d": 4, "c": 5}]}}),
                Some("ff")
            )
        );
        assert_ne!(
            a,
            key("v1", &json!({"x": 1, "y": {"b": 2, "a": [3, {"d": 4, "c": 5}]}}), None)
        );
        assert_ne!(
            key("v1", &json!({"a": [1, 2]}), None),
            key("v1", &json!({"a": [2, 1]}), None)
        );
    }
}
