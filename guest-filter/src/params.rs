//! The job's params: a list of operations, parsed and range-checked before any pixel is touched.
//!
//! [`Params`] is the JSON shape, and `kind.json`'s `params_schema` is generated from it (a test keeps the
//! two equal): the doc comments below are what users read in the schema. Kiln validates params against
//! the schema at submit, so a user with a typo gets a 422 at once; `kiln_guest` parses them with the
//! same rules, and [`Params::check`] repeats the ranges, since the guest must never trust its input.
//!
//! The shape:
//!
//! ```json
//! {"ops": [{"op": "rotate", "degrees": 90}, {"op": "blur", "sigma": 2.5}, {"op": "grayscale"}]}
//! ```

use kiln_guest::JobError;
use schemars::JsonSchema;
use serde::Deserialize;

/// Most operations one job may ask for; also the schema's `maxItems`.
pub const MAX_OPS: usize = 16;
/// Blur strength bounds (the Gaussian's standard deviation, in pixels); also in the schema.
pub const MIN_SIGMA: f64 = 0.1;
pub const MAX_SIGMA: f64 = 50.0;
/// Brighten bounds: added to every colour channel (0-255), so beyond ±255 nothing changes.
pub const MAX_BRIGHTEN: i32 = 255;

/// The operations to apply, in order; an empty list just converts the image to PNG. The image is read
/// as 8-bit RGB (RGBA when it has an alpha channel); grayscale makes it grey (with alpha if it had
/// one). Animated GIF and WebP use their first frame.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "filter params")]
pub struct Params {
    /// At most 16 operations, applied in order.
    #[schemars(length(max = MAX_OPS))]
    #[serde(deserialize_with = "kiln_guest::objects")]
    pub ops: Vec<RawOp>,
    /// The result's file format: png (default), jpeg, webp or auto (chosen by the submit's `Accept`
    /// header); see the kind's description of each.
    #[serde(default)]
    pub format: kiln_guest::image::Format,
    /// JPEG quality from 1 (smallest) to 100 (best), default 85; ignored by png and webp (lossless).
    #[schemars(range(min = 1, max = 100))]
    pub quality: Option<u8>,
}

/// One operation: an object whose `op` names it, with that operation's fields and no others.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, JsonSchema)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
#[schemars(transform = kiln_guest::schema::dispatch_on_tag)]
pub enum RawOp {
    // Empty braces (not unit variants) so that `deny_unknown_fields` refuses `{"op": "invert", "x": 1}`.
    /// Converts to grey (luma); alpha is kept.
    Grayscale {},
    /// Blurs with an approximate Gaussian.
    Blur {
        /// Standard deviation of the Gaussian, in pixels.
        #[schemars(range(min = MIN_SIGMA, max = MAX_SIGMA))]
        sigma: f64,
    },
    /// Rotates clockwise; 90 and 270 swap width and height.
    Rotate {
        /// Degrees clockwise: 90, 180 or 270.
        #[schemars(extend("enum" = [90, 180, 270]))]
        degrees: u32,
    },
    /// Mirrors the image: horizontal swaps left and right, vertical swaps top and bottom.
    Flip {
        /// horizontal or vertical.
        axis: Axis,
    },
    /// Turns each colour channel c into 255 - c; alpha is kept.
    Invert {},
    /// Adds value to each colour channel, clamped to 0-255; negative darkens. Alpha is kept.
    Brighten {
        /// Added to each colour channel, from -255 to 255.
        #[schemars(range(min = -MAX_BRIGHTEN, max = MAX_BRIGHTEN))]
        value: i32,
    },
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Axis {
    // Plain comments: the variants' docs would turn the schema's enum into a oneOf.
    // Left and right swap: pixel (x, y) moves to (width - 1 - x, y).
    Horizontal,
    // Top and bottom swap: pixel (x, y) moves to (x, height - 1 - y).
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
                90 => Rotation::Deg90,
                180 => Rotation::Deg180,
                270 => Rotation::Deg270,
                _ => return Err(format!("rotate degrees must be 90, 180 or 270, got {degrees}")),
            }),
            RawOp::Brighten { value } => {
                if !(-MAX_BRIGHTEN..=MAX_BRIGHTEN).contains(&value) {
                    return Err(format!(
                        "brighten value must be from -{MAX_BRIGHTEN} to {MAX_BRIGHTEN}, got {value}"
                    ));
                }
                Op::Brighten { value }
            }
        })
    }
}

impl Params {
    /// The ranges the schema states, checked again, into the list of operations; an `invalid-params`
    /// error says which operation is wrong (`ops[2]: ...`), so the user knows what to fix.
    pub fn check(self) -> Result<Vec<Op>, JobError> {
        if self.ops.len() > MAX_OPS {
            return Err(JobError::invalid_params(format!(
                "at most {MAX_OPS} operations per job, got {}",
                self.ops.len()
            )));
        }
        self.ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| {
                op.check()
                    .map_err(|message| JobError::invalid_params(format!("ops[{i}]: {message}")))
            })
            .collect()
    }
}

/// Parses as a job does (the SDK, then [`Params::check`]); for tests.
#[cfg(test)]
pub fn parse(text: &str) -> Result<Vec<Op>, JobError> {
    kiln_guest::parse::<Params>(text)?.check()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_guest::ErrorCode;
    use serde_json::Value;

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
            ("{}", "missing field `ops`"),
            (r#"{"ops": [], "extra": 1}"#, "unknown field `extra`"),
            (
                r#"{"ops": {"op": "invert"}}"#,
                "`ops`: invalid type: map, expected a sequence",
            ),
            (
                r#"{"ops": [["blur", 2]]}"#,
                "`ops[0]`: invalid type: sequence, expected an object",
            ),
            (
                r#"{"ops": [{"op": "sharpen"}]}"#,
                "`ops[0].op`: unknown variant `sharpen`",
            ),
            (r#"{"ops": [{}]}"#, "`ops[0]`: missing field `op`"),
            (r#"{"ops": [{"op": "invert", "x": 1}]}"#, "`ops[0]`: unknown field `x`"),
            (
                r#"{"ops": [{"op": "invert"}, {"op": "blur"}]}"#,
                "`ops[1]`: missing field `sigma`",
            ),
            (
                r#"{"ops": [{"op": "blur", "sigma": 0}]}"#,
                "sigma must be from 0.1 to 50, got 0",
            ),
            (r#"{"ops": [{"op": "blur", "sigma": 50.5}]}"#, "got 50.5"),
            (
                r#"{"ops": [{"op": "blur", "sigma": "2"}]}"#,
                "`ops[0]`: invalid type: string",
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
            (
                r#"{"ops": [{"op": "brighten", "value": 1.5}]}"#,
                "invalid type: floating point `1.5`",
            ),
            (r#"{"ops": [{"op": "brighten", "value": null}]}"#, "null is not allowed"),
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

    /// `params_schema` is what [`Params`] generates (`KILN_UPDATE_MANIFEST=1` rewrites it).
    #[test]
    fn params_schema_is_generated_from_the_params_type() {
        kiln_guest::check_manifest::<Params>(concat!(env!("CARGO_MANIFEST_DIR"), "/kind.json"));
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
