//! Params JSON to the kind's typed params, accepting exactly the documents the generated schema does.
//!
//! The host validates params against `kind.json`'s schema at submit; the guest parses them again (it
//! must not trust its input), and a job the host accepted must never fail here on structure. serde's
//! derive and JSON Schema differ in three places, which [`Strict`] closes:
//!
//! - JSON Schema's `integer` admits `10.0`; serde's `u32` does not. Whole floats become integers.
//! - serde reads `null` as `None`; the generated schemas refuse null (see `schema.rs`). Null is refused
//!   everywhere: a field is left out instead.
//! - serde's derive reads a struct from an array (`[1, 2]`); a schema's `object` does not.
//!
//! Params are small next to the input, so going through a `serde_json::Value` costs little.

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{
    self, DeserializeOwned, Deserializer, IntoDeserializer, Unexpected, Visitor, value::MapAccessDeserializer,
};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Number, Value};

use crate::JobError;

/// Parses the params text into `P`, or an `invalid-params` error naming the field (`crop.x: ...`).
pub fn parse<P: DeserializeOwned>(text: &str) -> Result<P, JobError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| JobError::invalid_params(format!("params are not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(JobError::invalid_params(format!(
            "params must be a JSON object, got {}",
            kind_of(&value)
        )));
    }
    serde_path_to_error::deserialize(Strict(value)).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            JobError::invalid_params(format!("invalid params: {}", e.inner()))
        } else {
            JobError::invalid_params(format!("invalid params at `{path}`: {}", e.inner()))
        }
    })
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `#[serde(deserialize_with = "kiln_guest::object")]` for a field whose type is an internally tagged
/// enum (`#[serde(tag = "op")]`): serde reads those from an array too (`["blur", 2]`), which the schema
/// refuses; this reads them from an object only.
pub fn object<'de, D: Deserializer<'de>, T: de::Deserialize<'de>>(deserializer: D) -> Result<T, D::Error> {
    deserializer.deserialize_map(ObjectVisitor(std::marker::PhantomData))
}

/// [`object`] for every element of a list: `#[serde(deserialize_with = "kiln_guest::objects")]`.
pub fn objects<'de, D: Deserializer<'de>, T: de::Deserialize<'de>>(deserializer: D) -> Result<Vec<T>, D::Error> {
    struct Element<T>(T);
    impl<'de, T: de::Deserialize<'de>> de::Deserialize<'de> for Element<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            object(deserializer).map(Element)
        }
    }
    let elements: Vec<Element<T>> = de::Deserialize::deserialize(deserializer)?;
    Ok(elements.into_iter().map(|Element(t)| t).collect())
}

struct ObjectVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: de::Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

/// A JSON value that deserializes the way JSON Schema validates (see the module doc).
struct Strict(Value);

type Error = serde_json::Error;

fn whole(n: Number) -> Number {
    match n.as_f64() {
        // `as` saturates; floats outside u64/i64 stay floats and fail as out of range.
        Some(f) if n.is_f64() && f.fract() == 0.0 && f >= 0.0 && f < u64::MAX as f64 => Number::from(f as u64),
        Some(f) if n.is_f64() && f.fract() == 0.0 && f < 0.0 && f >= i64::MIN as f64 => Number::from(f as i64),
        _ => n,
    }
}

fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Unexpected::Unsigned(u),
            (_, Some(i), _) => Unexpected::Signed(i),
            (_, _, f) => Unexpected::Float(f.unwrap_or(f64::NAN)),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

fn null_error() -> Error {
    de::Error::custom("null is not allowed; leave the field out instead")
}

fn visit_map<'de, V: Visitor<'de>>(map: Map<String, Value>, visitor: V) -> Result<V::Value, Error> {
    let mut entries = MapDeserializer::new(map.into_iter().map(|(k, v)| (k, Strict(v))));
    let value = visitor.visit_map(&mut entries)?;
    entries.end()?;
    Ok(value)
}

fn visit_seq<'de, V: Visitor<'de>>(items: Vec<Value>, visitor: V) -> Result<V::Value, Error> {
    let mut items = SeqDeserializer::new(items.into_iter().map(Strict));
    let value = visitor.visit_seq(&mut items)?;
    items.end()?;
    Ok(value)
}

impl<'de> IntoDeserializer<'de, Error> for Strict {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> Deserializer<'de> for Strict {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => Err(null_error()),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => whole(n).deserialize_any(visitor),
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => visit_seq(items, visitor),
            Value::Object(map) => visit_map(map, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => Err(null_error()),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(map) => visit_map(map, visitor),
            Value::Null => Err(null_error()),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(s) => visitor.visit_enum(s.into_deserializer()),
            Value::Object(map) if map.len() == 1 => visitor.visit_enum(MapAccessDeserializer::new(
                MapDeserializer::new(map.into_iter().map(|(k, v)| (k, Strict(v)))),
            )),
            Value::Null => Err(null_error()),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;
    use crate::ErrorCode;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Params {
        count: Option<u32>,
        #[serde(default)]
        inner: Option<Inner>,
        #[serde(default)]
        mode: Mode,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        extra: BTreeMap<String, f64>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Tagged {
        #[serde(default, deserialize_with = "crate::objects")]
        ops: Vec<Op>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
    enum Op {
        Blur { sigma: f64 },
        Rotate { degrees: u32 },
    }

    #[test]
    fn tagged_enums_take_objects_only() {
        let p: Tagged = parse(r#"{"ops": [{"op": "blur", "sigma": 2}, {"op": "rotate", "degrees": 90.0}]}"#).unwrap();
        assert_eq!(p.ops, [Op::Blur { sigma: 2.0 }, Op::Rotate { degrees: 90 }]);
        for (text, needle) in [
            (
                r#"{"ops": [["blur", 2]]}"#,
                "at `ops[0]`: invalid type: sequence, expected an object",
            ),
            (r#"{"ops": [{"op": "blur"}]}"#, "at `ops[0]`: missing field `sigma`"),
            (r#"{"ops": [{"op": "blur", "sigma": null}]}"#, "null is not allowed"),
            (
                r#"{"ops": [{"op": "sharpen"}]}"#,
                "at `ops[0].op`: unknown variant `sharpen`",
            ),
        ] {
            let e = parse::<Tagged>(text).expect_err(text);
            assert!(e.message.contains(needle), "{text}: {e}");
        }
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        x: i64,
    }

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        #[default]
        Fast,
        Exact {
            digits: u8,
        },
    }

    fn err(text: &str) -> JobError {
        let e = parse::<Params>(text).expect_err(text);
        assert_eq!(e.code, ErrorCode::InvalidParams, "{text}: {e}");
        e
    }

    #[test]
    fn parses_what_json_schema_accepts() {
        let p: Params =
            parse(r#"{"count": 3.0, "inner": {"x": -2e1}, "mode": {"exact": {"digits": 4}}, "tags": ["a"]}"#).unwrap();
        assert_eq!(p.count, Some(3));
        assert_eq!(p.inner, Some(Inner { x: -20 }));
        assert_eq!(p.mode, Mode::Exact { digits: 4 });
        assert_eq!(p.tags, ["a"]);
        let p: Params = parse(r#"{"mode": "fast", "extra": {"a": 1, "b": 2.5}}"#).unwrap();
        assert_eq!(p.count, None);
        assert_eq!(p.extra["a"], 1.0);
    }

    #[test]
    fn refuses_what_json_schema_refuses_and_names_the_field() {
        for (text, needle) in [
            ("", "not valid JSON"),
            ("{", "not valid JSON"),
            ("{} x", "not valid JSON"),
            ("[]", "must be a JSON object, got an array"),
            ("null", "must be a JSON object, got null"),
            (r#"{"count": null}"#, "at `count`: null is not allowed"),
            (r#"{"inner": null}"#, "at `inner`: null is not allowed"),
            (r#"{"inner": [1]}"#, "at `inner`: invalid type: sequence"),
            (r#"{"tags": [null]}"#, "at `tags[0]`: null"),
            (r#"{"count": 1.5}"#, "at `count`: invalid type: floating point `1.5`"),
            (r#"{"count": -1}"#, "at `count`: invalid value"),
            (r#"{"count": 4294967296}"#, "at `count`"),
            (r#"{"inner": {"x": 1, "y": 2}}"#, "at `inner.y`: unknown field `y`"),
            (r#"{"inner": {}}"#, "at `inner`: missing field `x`"),
            (r#"{"mode": "slow"}"#, "at `mode`: unknown variant `slow`"),
            (r#"{"mode": {"exact": {"digits": 256}}}"#, "at `mode.exact.digits`"),
            (r#"{"zoom": 2}"#, "unknown field `zoom`"),
        ] {
            let e = err(text);
            assert!(e.message.contains(needle), "{text}: {e}");
        }
    }
}
