//! The job's params: their types, parsing and the checks that need no image.
//!
//! The shape must stay in step with `params_schema` in `kind.json`: the host validates against the
//! schema at submit, and this parser must accept exactly the same documents so a job the host accepted
//! never fails here on structure (a test checks the two agree on a set of documents).

use serde::Deserialize;
use serde_json::{Map, Number, Value};

use crate::JobError;

/// Largest output side we produce; also the schema's `maximum` for resize width and height.
pub const MAX_SIDE: u32 = 16384;

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub crop: Option<Crop>,
    pub resize: Option<Resize>,
    #[serde(default)]
    pub filter: Filter,
}

/// A rectangle in the decoded (EXIF-oriented) image, top-left at (x, y).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resize {
    pub width: Option<u32>,
    pub height: Option<u32>,
    #[serde(default)]
    pub fit: Fit,
}

/// How to reconcile the source's aspect ratio with a box given by both width and height.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Stretch to exactly the box: "resize to 300×300" gives 300×300, like most tools' plain resize.
    #[default]
    Fill,
    /// Largest size that fits inside the box, aspect kept; may be smaller than the box on one axis.
    Contain,
    /// Smallest size that covers the box, aspect kept, centre-cropped to exactly the box.
    Cover,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Filter {
    Nearest,
    Triangle,
    Catmullrom,
    Gaussian,
    #[default]
    Lanczos3,
}

/// Parses and checks params as far as possible without the image.
pub fn parse(text: &str) -> Result<Params, JobError> {
    let mut value: Value =
        serde_json::from_str(text).map_err(|e| JobError::invalid_params(format!("params are not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(JobError::invalid_params(format!(
            "params must be a JSON object, got {}",
            kind_of(&value)
        )));
    }
    normalize(&mut value, &mut String::new())?;
    let params: Params = serde_path_to_error::deserialize(value)
        .map_err(|e| JobError::invalid_params(format!("invalid params at `{}`: {}", e.path(), e.inner())))?;
    params.check()?;
    Ok(params)
}

impl Params {
    fn check(&self) -> Result<(), JobError> {
        if let Some(c) = &self.crop
            && (c.width == 0 || c.height == 0)
        {
            return Err(JobError::invalid_params(format!(
                "crop width and height must be at least 1, got {}x{}",
                c.width, c.height
            )));
        }
        if let Some(r) = &self.resize {
            if r.width.is_none() && r.height.is_none() {
                return Err(JobError::invalid_params("resize needs a width, a height or both"));
            }
            for (name, side) in [("width", r.width), ("height", r.height)] {
                if let Some(v) = side
                    && !(1..=MAX_SIDE).contains(&v)
                {
                    return Err(JobError::invalid_params(format!(
                        "resize {name} must be from 1 to {MAX_SIDE}, got {v}"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Brings a JSON document to what serde's derive accepts exactly when JSON Schema does.
///
/// Schema `integer` admits `10.0`, which serde's `u32` refuses, so integral floats become integers;
/// serde's derive accepts arrays for structs and `null` for options, which the schema refuses, so both
/// are rejected here, naming where they were found.
fn normalize(value: &mut Value, path: &mut String) -> Result<(), JobError> {
    let at = |path: &str| {
        if path.is_empty() {
            ".".to_owned()
        } else {
            path.to_owned()
        }
    };
    match value {
        Value::Null => Err(JobError::invalid_params(format!(
            "invalid params at `{}`: null is not allowed; leave the field out instead",
            at(path)
        ))),
        Value::Array(_) => Err(JobError::invalid_params(format!(
            "invalid params at `{}`: arrays are not allowed in crop params",
            at(path)
        ))),
        Value::Number(n) => {
            if n.is_f64()
                && let Some(f) = n.as_f64()
                && f.fract() == 0.0
            {
                // `as` saturates; values outside u64/i64 stay floats and fail as out of range later.
                if f >= 0.0 && f < u64::MAX as f64 {
                    *n = Number::from(f as u64);
                } else if f < 0.0 && f >= i64::MIN as f64 {
                    *n = Number::from(f as i64);
                }
            }
            Ok(())
        }
        Value::Object(map) => normalize_map(map, path),
        Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

fn normalize_map(map: &mut Map<String, Value>, path: &mut String) -> Result<(), JobError> {
    for (key, child) in map.iter_mut() {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        normalize(child, path)?;
        path.truncate(len);
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn err(text: &str) -> JobError {
        parse(text).expect_err(text)
    }

    #[test]
    fn empty_object_is_defaults() {
        assert_eq!(parse("{}").unwrap(), Params::default());
        assert_eq!(Params::default().filter, Filter::Lanczos3);
    }

    #[test]
    fn full_params_parse() {
        let p = parse(
            r#"{"crop":{"x":1,"y":2,"width":3,"height":4},
                "resize":{"width":5,"fit":"cover"},"filter":"catmullrom"}"#,
        )
        .unwrap();
        assert_eq!(
            p.crop,
            Some(Crop {
                x: 1,
                y: 2,
                width: 3,
                height: 4
            })
        );
        let r = p.resize.unwrap();
        assert_eq!((r.width, r.height, r.fit), (Some(5), None, Fit::Cover));
        assert_eq!(p.filter, Filter::Catmullrom);
    }

    #[test]
    fn fit_defaults_to_fill() {
        let p = parse(r#"{"resize":{"width":5,"height":6}}"#).unwrap();
        assert_eq!(p.resize.unwrap().fit, Fit::Fill);
    }

    #[test]
    fn integral_floats_are_integers_like_in_json_schema() {
        let p = parse(r#"{"crop":{"x":10.0,"y":2e1,"width":3,"height":4}}"#).unwrap();
        let c = p.crop.unwrap();
        assert_eq!((c.x, c.y), (10, 20));
    }

    #[test]
    fn structural_errors_are_invalid_params_and_name_the_field() {
        let cases = [
            ("", "not valid JSON"),
            ("{", "not valid JSON"),
            ("[]", "must be a JSON object, got an array"),
            ("3", "must be a JSON object"),
            (r#"{"crop":null}"#, "`crop`: null"),
            (r#"{"crop":[1,2,3,4]}"#, "`crop`: arrays"),
            (r#"{"zoom":2}"#, "unknown field `zoom`"),
            (
                r#"{"crop":{"x":0,"y":0,"width":1,"height":1,"z":1}}"#,
                "unknown field `z`",
            ),
            (r#"{"crop":{"x":0,"y":0,"width":1}}"#, "missing field `height`"),
            (r#"{"crop":{"x":-1,"y":0,"width":1,"height":1}}"#, "crop.x"),
            (r#"{"crop":{"x":1.5,"y":0,"width":1,"height":1}}"#, "crop.x"),
            (r#"{"crop":{"x":4294967296,"y":0,"width":1,"height":1}}"#, "crop.x"),
            (r#"{"crop":{"x":"1","y":0,"width":1,"height":1}}"#, "crop.x"),
            (r#"{"filter":"bicubic"}"#, "unknown variant `bicubic`"),
            (r#"{"resize":{"width":2,"fit":"stretch"}}"#, "resize.fit"),
        ];
        for (text, needle) in cases {
            let e = err(text);
            assert_eq!(e.code, ErrorCode::InvalidParams, "{text}: {e}");
            assert!(e.message.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn range_errors_are_invalid_params_with_values() {
        let cases = [
            (r#"{"crop":{"x":0,"y":0,"width":0,"height":5}}"#, "got 0x5"),
            (r#"{"resize":{}}"#, "needs a width, a height or both"),
            (r#"{"resize":{"fit":"cover"}}"#, "needs a width"),
            (r#"{"resize":{"width":0}}"#, "width must be from 1 to 16384, got 0"),
            (
                r#"{"resize":{"height":16385}}"#,
                "height must be from 1 to 16384, got 16385",
            ),
        ];
        for (text, needle) in cases {
            let e = err(text);
            assert_eq!(e.code, ErrorCode::InvalidParams, "{text}: {e}");
            assert!(e.message.contains(needle), "{text}: {e}");
        }
    }
}
