//! The job's params: a list of operations, parsed and range-checked before any pixel is touched.
//!
//! Kiln validates params against `params_schema` in `kind.json` at submit, so a user with a typo gets a
//! 422 at once. This parser must still check everything itself (the guest must never trust its input),
//! and it must accept exactly the documents the schema accepts, so a job the host accepted never fails
//! here. A test (`schema_and_parser_agree`) keeps the two in step.
//!
//! The shape:
//!
//! ```json
//! {"ops": [{"op": "rotate", "degrees": 90}, {"op": "blur", "sigma": 2.5}, {"op": "grayscale"}]}
//! ```

use serde::Deserialize;
use serde_json::Value;

use crate::JobError;

/// Most operations one job may ask for; also the schema's `maxItems`.
pub const MAX_OPS: usize = 16;
/// Blur strength bounds (the Gaussian's standard deviation, in pixels); also in the schema.
pub const MIN_SIGMA: f64 = 0.1;
pub const MAX_SIGMA: f64 = 50.0;
/// Brighten bounds: added to every colour channel (0-255), so beyond ±255 nothing changes.
pub const MAX_BRIGHTEN: i64 = 255;

/// One image operation, checked and ready to apply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// Luma from the colour channels (alpha kept); the output is a grey PNG.
    Grayscale,
    /// Gaussian-like blur with this standard deviation in pixels.
    Blur { sigma: f32 },
    /// Clockwise rotation; 90 and 270 swap width and height.
    Rotate(Rotation),
    /// Mirror image.
    Flip(Axis),
    /// Each colour channel c becomes 255 - c (alpha kept).
    Invert,
    /// Adds `value` to each colour channel, clamped to 0-255 (alpha kept).
    Brighten { value: i32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    Deg90,
    Deg180,
    Deg270,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Axis {
    /// Left and right swap: pixel (x, y) moves to (width - 1 - x, y).
    Horizontal,
    /// Top and bottom swap: pixel (x, y) moves to (x, height - 1 - y).
    Vertical,
}

impl Op {
    /// A short name for logs and messages, e.g. `blur`.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Grayscale => "grayscale",
            Op::Blur { .. } => "blur",
            Op::Rotate(_) => "rotate",
            Op::Flip(_) => "flip",
            Op::Invert => "invert",
            Op::Brighten { .. } => "brighten",
        }
    }
}

/// The JSON shape of one operation, as serde reads it: `{"op": "<name>", ...fields}`.
///
/// Numbers are read as `f64` on purpose: JSON Schema calls `90.0` an integer, so we must accept it
/// too, and the range checks in [`RawOp::check`] then turn the raw values into an [`Op`].
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
enum RawOp {
    // Empty braces (not unit variants) so that `deny_unknown_fields` refuses `{"op": "invert", "x": 1}`.
    Grayscale {},
    Blur { sigma: f64 },
    Rotate { degrees: f64 },
    Flip { axis: Axis },
    Invert {},
    Brighten { value: f64 },
}

impl RawOp {
    fn check(self) -> Result<Op, String> {
        Ok(match self {
            RawOp::Grayscale {} => Op::Grayscale,
            RawOp::Invert {} => Op::Invert,
            RawOp::Flip { axis } => Op::Flip(axis),
            RawOp::Blur { sigma } => {
                if !(MIN_SIGMA..=MAX_SIGMA).contains(&sigma) {
                    return Err(format!(
                        "blur sigma must be from {MIN_SIGMA} to {MAX_SIGMA}, got {sigma}"
                    ));
                }
                Op::Blur { sigma: sigma as f32 }
            }
            RawOp::Rotate { degrees } => Op::Rotate(match degrees {
                90.0 => Rotation::Deg90,
                180.0 => Rotation::Deg180,
                270.0 => Rotation::Deg270,
                _ => return Err(format!("rotate degrees must be 90, 180 or 270, got {degrees}")),
            }),
            RawOp::Brighten { value } => {
                let max = MAX_BRIGHTEN as f64;
                if value.fract() != 0.0 || !(-max..=max).contains(&value) {
                    return Err(format!(
                        "brighten value must be a whole number from -{MAX_BRIGHTEN} to {MAX_BRIGHTEN}, got {value}"
                    ));
                }
                // In range and whole, so the cast is exact.
                Op::Brighten { value: value as i32 }
            }
        })
    }
}

/// Parses the params text into the list of operations, or an `invalid-params` error that says which
/// operation is wrong (`ops[2]: ...`), so the user knows what to fix.
pub fn parse(text: &str) -> Result<Vec<Op>, JobError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| JobError::invalid_params(format!("params are not valid JSON: {e}")))?;
    let Value::Object(mut params) = value else {
        return Err(JobError::invalid_params(
            "params must be a JSON object like {\"ops\": [...]}",
        ));
    };
    let ops = params
        .remove("ops")
        .ok_or_else(|| JobError::invalid_params("params need `ops`, a list of operations"))?;
    if let Some(other) = params.keys().next() {
        return Err(JobError::invalid_params(format!(
            "unknown field `{other}` in params; the only field is `ops`"
        )));
    }
    let Value::Array(ops) = ops else {
        return Err(JobError::invalid_params("`ops` must be a list of operations"));
    };
    if ops.len() > MAX_OPS {
        return Err(JobError::invalid_params(format!(
            "at most {MAX_OPS} operations per job, got {}",
            ops.len()
        )));
    }
    ops.into_iter()
        .enumerate()
        .map(|(i, op)| {
            // serde would also read a list like ["blur", 2] as a tagged enum; the schema wants objects.
            if !op.is_object() {
                return Err(JobError::invalid_params(format!(
                    "ops[{i}] must be an object like {{\"op\": \"grayscale\"}}"
                )));
            }
            serde_json::from_value::<RawOp>(op)
                .map_err(|e| e.to_string())
                .and_then(RawOp::check)
                .map_err(|message| JobError::invalid_params(format!("ops[{i}]: {message}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn every_op_parses() {
        let ops = parse(
            r#"{"ops": [
                {"op": "grayscale"}, {"op": "blur", "sigma": 2.5}, {"op": "rotate", "degrees": 270},
                {"op": "flip", "axis": "vertical"}, {"op": "invert"}, {"op": "brighten", "value": -40}
            ]}"#,
        )
        .unwrap();
        assert_eq!(
            ops,
            [
                Op::Grayscale,
                Op::Blur { sigma: 2.5 },
                Op::Rotate(Rotation::Deg270),
                Op::Flip(Axis::Vertical),
                Op::Invert,
                Op::Brighten { value: -40 },
            ]
        );
    }

    #[test]
    fn whole_floats_are_integers_like_in_json_schema() {
        let ops = parse(r#"{"ops": [{"op": "rotate", "degrees": 90.0}, {"op": "brighten", "value": 1e1}]}"#).unwrap();
        assert_eq!(ops, [Op::Rotate(Rotation::Deg90), Op::Brighten { value: 10 }]);
    }

    #[test]
    fn bad_params_are_invalid_params_and_say_where() {
        let cases = [
            ("", "not valid JSON"),
            ("[]", "must be a JSON object"),
            ("{}", "need `ops`"),
            (r#"{"ops": [], "extra": 1}"#, "unknown field `extra`"),
            (r#"{"ops": {"op": "invert"}}"#, "must be a list"),
            (r#"{"ops": [["blur", 2]]}"#, "ops[0] must be an object"),
            (r#"{"ops": [{"op": "sharpen"}]}"#, "ops[0]: unknown variant `sharpen`"),
            (r#"{"ops": [{}]}"#, "ops[0]: missing field `op`"),
            (r#"{"ops": [{"op": "invert", "x": 1}]}"#, "ops[0]: unknown field `x`"),
            (
                r#"{"ops": [{"op": "invert"}, {"op": "blur"}]}"#,
                "ops[1]: missing field `sigma`",
            ),
            (
                r#"{"ops": [{"op": "blur", "sigma": 0}]}"#,
                "sigma must be from 0.1 to 50, got 0",
            ),
            (r#"{"ops": [{"op": "blur", "sigma": 50.5}]}"#, "got 50.5"),
            (
                r#"{"ops": [{"op": "blur", "sigma": "2"}]}"#,
                "ops[0]: invalid type: string",
            ),
            (
                r#"{"ops": [{"op": "rotate", "degrees": 45}]}"#,
                "90, 180 or 270, got 45",
            ),
            (
                r#"{"ops": [{"op": "flip", "axis": "diagonal"}]}"#,
                "unknown variant `diagonal`",
            ),
            (r#"{"ops": [{"op": "brighten", "value": 256}]}"#, "-255 to 255, got 256"),
            (r#"{"ops": [{"op": "brighten", "value": 1.5}]}"#, "whole number"),
            (
                r#"{"ops": [{"op": "brighten", "value": null}]}"#,
                "ops[0]: invalid type: null",
            ),
        ];
        for (text, needle) in cases {
            let e = parse(text).expect_err(text);
            assert_eq!(e.code, ErrorCode::InvalidParams, "{text}: {e}");
            assert!(e.message.contains(needle), "{text}: {e}");
        }
        let seventeen = format!(r#"{{"ops": [{}]}}"#, vec![r#"{"op": "invert"}"#; 17].join(","));
        let e = parse(&seventeen).unwrap_err();
        assert!(e.message.contains("at most 16 operations per job, got 17"), "{e}");
    }

    /// The host checks `kind.json`'s schema at submit; this parser must agree with it on every document.
    #[test]
    fn schema_and_parser_agree() {
        let manifest: Value = serde_json::from_str(include_str!("../kind.json")).unwrap();
        let schema = jsonschema::validator_for(&manifest["params_schema"]).expect("a valid JSON Schema");
        let sixteen = format!(r#"{{"ops": [{}]}}"#, vec![r#"{"op": "invert"}"#; 16].join(","));
        let seventeen = format!(r#"{{"ops": [{}]}}"#, vec![r#"{"op": "invert"}"#; 17].join(","));
        let documents = [
            r#"{"ops": []}"#,
            r#"{"ops": [{"op": "grayscale"}, {"op": "invert"}]}"#,
            r#"{"ops": [{"op": "blur", "sigma": 0.1}, {"op": "blur", "sigma": 50}]}"#,
            r#"{"ops": [{"op": "blur", "sigma": 0.09}]}"#,
            r#"{"ops": [{"op": "blur", "sigma": 50.01}]}"#,
            r#"{"ops": [{"op": "blur", "sigma": "1"}]}"#,
            r#"{"ops": [{"op": "blur"}]}"#,
            r#"{"ops": [{"op": "rotate", "degrees": 90}, {"op": "rotate", "degrees": 180.0}]}"#,
            r#"{"ops": [{"op": "rotate", "degrees": 270}]}"#,
            r#"{"ops": [{"op": "rotate", "degrees": 0}]}"#,
            r#"{"ops": [{"op": "rotate", "degrees": -90}]}"#,
            r#"{"ops": [{"op": "flip", "axis": "horizontal"}, {"op": "flip", "axis": "vertical"}]}"#,
            r#"{"ops": [{"op": "flip", "axis": "both"}]}"#,
            r#"{"ops": [{"op": "flip"}]}"#,
            r#"{"ops": [{"op": "brighten", "value": -255}, {"op": "brighten", "value": 255}]}"#,
            r#"{"ops": [{"op": "brighten", "value": 256}]}"#,
            r#"{"ops": [{"op": "brighten", "value": 2.5}]}"#,
            r#"{"ops": [{"op": "brighten", "value": 2.0}]}"#,
            r#"{"ops": [{"op": "invert", "extra": true}]}"#,
            r#"{"ops": [{"op": "sharpen"}]}"#,
            r#"{"ops": [{}]}"#,
            r#"{"ops": [["invert"]]}"#,
            r#"{"ops": [null]}"#,
            r#"{"ops": null}"#,
            r#"{"ops": [], "extra": 1}"#,
            r#"{}"#,
            r#"[]"#,
            &sixteen,
            &seventeen,
        ];
        for text in documents {
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                schema.is_valid(&value),
                parse(text).is_ok(),
                "schema and parser disagree on {text}: {:?}",
                parse(text)
            );
        }
    }
}
