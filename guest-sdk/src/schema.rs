//! The params JSON Schema, generated from the kind's params type so that `kind.json` cannot drift from
//! the parser.
//!
//! Generation follows how [`parse`](crate::parse) reads params: draft 2020-12, subschemas inlined (the
//! manifest reads top to bottom), no `null` anywhere (schemars makes `Option<T>` nullable; the parser
//! refuses null, and a left-out field is how params say "none"), and the ranges of Rust's integer types
//! spelled out (the parser refuses 2^32 for a `u32`, so the schema must too).

use std::path::Path;

use schemars::generate::SchemaSettings;
use schemars::transform::{RecursiveTransform, Transform};
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value};

/// The JSON Schema of `P`, as `kind.json`'s `params_schema` holds it.
pub fn schema_for<P: JsonSchema>() -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.inline_subschemas = true;
    let mut schema = settings.into_generator().into_root_schema_for::<P>();
    RecursiveTransform(refuse_null).transform(&mut schema);
    RecursiveTransform(bound_integers).transform(&mut schema);
    RecursiveTransform(unwrap_descriptions).transform(&mut schema);
    schema.to_value()
}

/// Removes what schemars adds to make an `Option<T>` accept null.
fn refuse_null(schema: &mut Schema) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(types)) = obj.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            obj.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(values)) = obj.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    if obj.get("default").is_some_and(Value::is_null) {
        obj.remove("default");
    }
    if let Some(Value::Array(options)) = obj.get_mut("anyOf") {
        options.retain(|o| o.get("type").and_then(Value::as_str) != Some("null"));
        if options.len() == 1
            && let Some(Value::Object(only)) = options.pop()
        {
            obj.remove("anyOf");
            merge(obj, only);
        }
    }
}

/// Doc comments are wrapped at the source's line width; a description reads as one paragraph per
/// blank-line-separated block.
fn unwrap_descriptions(schema: &mut Schema) {
    if let Some(Value::String(text)) = schema.get_mut("description") {
        *text = text
            .split("\n\n")
            .map(|paragraph| paragraph.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n\n");
    }
}

/// States the range of fixed-width integers (`"format": "uint32"`) as `minimum`/`maximum`, which
/// validators check (they ignore `format`), so that the schema refuses what the parser refuses; the
/// Rust-specific `format` itself goes.
fn bound_integers(schema: &mut Schema) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if obj
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| f == "double" || f == "float")
    {
        obj.remove("format");
    }
    let (min, max): (i64, u64) = match obj.remove("format").as_ref().and_then(Value::as_str) {
        Some("uint8") => (0, u8::MAX.into()),
        Some("uint16") => (0, u16::MAX.into()),
        Some("uint32") => (0, u32::MAX.into()),
        Some("uint64") | Some("uint") => (0, u64::MAX),
        Some("int8") => (i8::MIN.into(), i8::MAX as u64),
        Some("int16") => (i16::MIN.into(), i16::MAX as u64),
        Some("int32") => (i32::MIN.into(), i32::MAX as u64),
        Some("int64") | Some("int") => (i64::MIN, i64::MAX as u64),
        Some(other) => {
            obj.insert("format".into(), other.into());
            return;
        }
        None => return,
    };
    obj.entry("minimum").or_insert(min.into());
    obj.entry("maximum").or_insert(max.into());
}

/// For an internally tagged enum (`#[serde(tag = "op")]`): turns schemars' `oneOf` of variants into
/// one `if`/`then` per variant, keyed on the tag. Both accept the same documents, but a validator can
/// then say what is wrong inside the chosen variant (`/ops/0/degrees: 45 is not one of ...`) instead of
/// "not valid under any of the schemas listed in oneOf". Use it as
/// `#[schemars(transform = kiln_guest::schema::dispatch_on_tag)]` on the enum.
///
/// # Panics
/// When the schema is not a `oneOf` of objects sharing one `const` property (a bug in the kind's code,
/// found by its schema test).
pub fn dispatch_on_tag(schema: &mut Schema) {
    let Some(Value::Array(variants)) = schema.remove("oneOf") else {
        panic!("dispatch_on_tag: expected the oneOf of an internally tagged enum, got {schema:?}");
    };
    let tag_of = |variant: &Value| -> Option<(String, Value)> {
        variant["properties"].as_object()?.iter().find_map(|(name, property)| {
            let value = property.get("const")?;
            variant["required"]
                .as_array()?
                .contains(&Value::from(name.as_str()))
                .then(|| (name.clone(), value.clone()))
        })
    };
    let tag = tag_of(&variants[0])
        .expect("dispatch_on_tag: variants carry a `const` tag")
        .0;
    let mut names = Vec::new();
    let mut branches = Vec::new();
    for mut variant in variants {
        let (name, value) = tag_of(&variant)
            .filter(|(name, _)| *name == tag)
            .expect("one tag for all variants");
        let then = variant.as_object_mut().expect("a variant is an object schema");
        then.remove("type");
        // The tag is checked by the `if`; the variant's own fields stay closed.
        then["properties"][&name] = Value::Bool(true);
        if let Some(Value::Array(required)) = then.get_mut("required") {
            required.retain(|r| *r != name);
            if required.is_empty() {
                then.remove("required");
            }
        }
        branches.push(serde_json::json!({
            "if": {"required": [&name], "properties": {&name: {"const": &value}}},
            "then": then,
        }));
        names.push(value);
    }
    schema.insert("type".into(), "object".into());
    schema.insert("required".into(), serde_json::json!([&tag]));
    schema.insert("properties".into(), serde_json::json!({&tag: {"enum": names}}));
    schema.insert("allOf".into(), Value::Array(branches));
}

/// Moves `from`'s keywords into `into`, keeping `into`'s own (e.g. a field's description) on clashes.
fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (key, value) in from {
        into.entry(key).or_insert(value);
    }
}

/// Checks that the manifest at `path` (a kind's `kind.json`) holds `P`'s schema as its
/// `params_schema`; for a unit test in every kind. With `KILN_UPDATE_MANIFEST=1` it rewrites the
/// manifest instead (`params_schema` must be its last field). Also checks that every object of the
/// schema closes its properties (a typo is a 422, not silently ignored) and that every property has a
/// description (users read the schema to learn the params): doc comments on the params type.
///
/// # Panics
/// When they differ or the schema is open or undescribed (that is the test failing), or the manifest
/// cannot be read.
pub fn check_manifest<P: JsonSchema>(path: impl AsRef<Path>) {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let manifest: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    let generated = schema_for::<P>();
    check_closed_and_described(&generated, "params");
    if manifest.get("params_schema") == Some(&generated) {
        return;
    }
    if std::env::var_os("KILN_UPDATE_MANIFEST").is_some_and(|v| v == "1") {
        std::fs::write(path, with_schema(&text, &generated))
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    panic!(
        "{}'s params_schema differs from what {} generates; rerun the test with KILN_UPDATE_MANIFEST=1 to \
         rewrite it.\ngenerated:\n{}",
        path.display(),
        std::any::type_name::<P>(),
        serde_json::to_string_pretty(&generated).expect("a Value serializes")
    );
}

fn check_closed_and_described(schema: &Value, path: &str) {
    assert!(
        schema["description"].is_string(),
        "{path} lacks a description: give it a doc comment"
    );
    if schema["type"] == "object" {
        // A tagged enum (`dispatch_on_tag`) closes each variant in its `then` instead.
        let variants: Vec<&Value> = match schema["allOf"].as_array() {
            Some(branches) if schema.get("additionalProperties").is_none() => {
                branches.iter().map(|b| &b["then"]).collect()
            }
            _ => vec![schema],
        };
        for object in variants {
            assert_eq!(
                object["additionalProperties"], false,
                "{path} accepts unknown fields: add #[serde(deny_unknown_fields)]"
            );
            for (name, child) in object["properties"].as_object().into_iter().flatten() {
                // `dispatch_on_tag` leaves the tag as `true` in each variant: the `if` checked it.
                if child != &Value::Bool(true) {
                    check_closed_and_described(child, &format!("{path}.{name}"));
                }
            }
        }
    }
    if schema["type"] == "array" {
        check_closed_and_described(&schema["items"], &format!("{path}[]"));
    }
}

/// The manifest text with its trailing `params_schema` replaced, the fields before it left as written.
fn with_schema(manifest: &str, schema: &Value) -> String {
    let at = manifest
        .rfind("\"params_schema\"")
        .expect("kind.json ends with a params_schema field");
    let pretty = serde_json::to_string_pretty(schema).expect("a Value serializes");
    format!(
        "{}\"params_schema\": {}\n}}\n",
        &manifest[..at],
        pretty.replace('\n', "\n  ")
    )
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    /// What the test kind takes.
    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[schemars(title = "test params")]
    #[allow(dead_code)] // only the schema is under test
    struct Params {
        /// How
        /// many.
        #[schemars(range(min = 1, max = 10))]
        count: Option<u32>,
        #[serde(default)]
        mode: Option<Mode>,
        inner: Option<Inner>,
    }

    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Mode {
        Fast,
        Exact,
    }

    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        x: i64,
    }

    #[test]
    fn options_are_optional_but_not_nullable_and_subschemas_are_inline() {
        let schema = schema_for::<Params>();
        let text = schema.to_string();
        assert!(!text.contains("null"), "{text}");
        assert!(!text.contains("$ref") && !text.contains("$defs"), "{text}");
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(schema["title"], "test params");
        assert_eq!(schema["description"], "What the test kind takes.");
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["properties"]["count"]["type"], "integer");
        assert_eq!(schema["properties"]["count"]["maximum"], 10);
        assert_eq!(schema["properties"]["count"]["description"], "How many.");
        assert_eq!(schema["properties"]["inner"]["properties"]["x"]["minimum"], i64::MIN);
        assert_eq!(schema["properties"]["inner"]["required"], serde_json::json!(["x"]));
        assert!(schema.get("required").is_none(), "{text}");
    }

    #[test]
    #[should_panic(expected = "params.inner lacks a description")]
    fn undescribed_properties_are_refused() {
        check_closed_and_described(&schema_for::<Params>(), "params");
    }

    #[test]
    fn rewriting_keeps_the_fields_before_params_schema() {
        let manifest = "{\n  \"name\": \"x\",\n  \"params_schema\": {\"type\": \"object\"}\n}\n";
        let schema = serde_json::json!({"type": "object", "required": ["a"]});
        let rewritten = with_schema(manifest, &schema);
        assert!(
            rewritten.starts_with("{\n  \"name\": \"x\",\n  \"params_schema\": {\n    \""),
            "{rewritten}"
        );
        let value: Value = serde_json::from_str(&rewritten).unwrap();
        assert_eq!(value["params_schema"], schema);
        assert_eq!(value["name"], "x");
    }

    /// This crate's WIT is what kinds are built against; it must be Kiln's, byte for byte.
    #[test]
    fn the_wit_is_kilns() {
        let ours = include_str!("../wit/job.wit");
        let kilns = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/job.wit"));
        if let Ok(kilns) = kilns {
            assert_eq!(
                ours, kilns,
                "guest-sdk/wit/job.wit differs from wit/job.wit: copy it over"
            );
        }
    }
}
