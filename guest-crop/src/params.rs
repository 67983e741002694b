//! The job's params: their types, from which `kind.json`'s `params_schema` is generated, and the
//! checks that need no image.
//!
//! The doc comments on the types are the schema's descriptions, for users: the host validates params
//! against the schema at submit, `kiln_guest::parse` reads them with the same rules, and [`Params::check`]
//! repeats the ranges the schema states, since the guest must not trust its input either.

use kiln_guest::JobError;
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};

/// Largest output side we produce; also the schema's `maximum` for resize width and height.
pub const MAX_SIDE: u32 = 16384;

/// All fields are optional; {} just re-encodes the image as PNG. The crop is applied first, then the
/// resize. Coordinates and sizes are in pixels of the image as displayed, i.e. after applying its EXIF
/// orientation. Animated GIF and WebP use their first frame. The output is 8-bit RGB, or RGBA when the
/// source has an alpha channel.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "crop params")]
pub struct Params {
    /// The rectangle to keep; it must lie entirely inside the image (x + width <= image width, y +
    /// height <= image height).
    pub crop: Option<Crop>,
    /// The output size, applied after the crop. Give width, height or both; with only one, the other
    /// follows from the aspect ratio (rounded, at least 1) and fit is ignored. The result may not
    /// exceed 16384 pixels per side nor the operator's max-megapixels (40 by default). Upscaling is
    /// allowed.
    pub resize: Option<Resize>,
    /// Resampling filter for the resize, from fastest and blockiest to slowest and sharpest: nearest,
    /// triangle (bilinear), catmullrom (bicubic), gaussian (soft), lanczos3 (default). Ignored without
    /// resize.
    #[serde(default)]
    pub filter: Filter,
    /// The result's file format: png (default), jpeg, webp or auto (chosen by the submit's `Accept`
    /// header); see the kind's description of each.
    #[serde(default)]
    pub format: kiln_guest::image::Format,
    /// JPEG quality from 1 (smallest) to 100 (best), default 85; ignored by png and webp (lossless).
    #[schemars(range(min = 1, max = 100))]
    pub quality: Option<u8>,
}

/// A rectangle in the decoded (EXIF-oriented) image, top-left at (x, y).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Crop {
    /// Left edge in pixels; 0 is the image's left edge.
    pub x: u32,
    /// Top edge in pixels; 0 is the image's top edge.
    pub y: u32,
    /// Width of the rectangle in pixels.
    #[schemars(range(min = 1))]
    pub width: u32,
    /// Height of the rectangle in pixels.
    #[schemars(range(min = 1))]
    pub height: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = width_or_height)]
pub struct Resize {
    /// Output width in pixels.
    #[schemars(range(min = 1, max = MAX_SIDE))]
    pub width: Option<u32>,
    /// Output height in pixels.
    #[schemars(range(min = 1, max = MAX_SIDE))]
    pub height: Option<u32>,
    /// How to treat the aspect ratio when both width and height are given. fill (default): stretch to
    /// exactly width x height. contain: the largest size that fits inside width x height keeping the
    /// aspect ratio, so one side may come out smaller. cover: keep the aspect ratio, cover width x height
    /// and cut the overflow off equally on both sides, giving exactly width x height.
    #[serde(default)]
    pub fit: Fit,
}

/// A resize names at least one side: `{"resize": {}}` is refused at submit, as [`Params::check`] does.
fn width_or_height(schema: &mut Schema) {
    schema.insert(
        "anyOf".into(),
        serde_json::json!([{"required": ["width"]}, {"required": ["height"]}]),
    );
}

/// How to reconcile the source's aspect ratio with a box given by both width and height.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    // Plain comments, not doc comments: the field's description says it all for users.
    // Stretch to exactly the box: "resize to 300×300" gives 300×300, like most tools' plain resize.
    #[default]
    Fill,
    // Largest size that fits inside the box, aspect kept; may be smaller than the box on one axis.
    Contain,
    // Smallest size that covers the box, aspect kept, centre-cropped to exactly the box.
    Cover,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Filter {
    Nearest,
    Triangle,
    Catmullrom,
    Gaussian,
    #[default]
    Lanczos3,
}

impl Params {
    /// The ranges the schema states, checked again: the guest does not trust its input.
    pub fn check(&self) -> Result<(), JobError> {
        kiln_guest::image::check_quality(self.quality)?;
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use kiln_guest::ErrorCode;

    /// Parses as the SDK does for a job, then checks.
    pub fn parse(text: &str) -> Result<Params, JobError> {
        let params: Params = kiln_guest::parse(text)?;
        params.check()?;
        Ok(params)
    }

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
            (r#"{"crop":[1,2,3,4]}"#, "`crop`: invalid type: sequence"),
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
