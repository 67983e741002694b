//! The job's params: their types, from which `kind.json`'s `params_schema` is generated, and the checks
//! that need no image (those that do are in `hints`).
//!
//! The doc comments on the types are the schema's descriptions, for users. The host validates params
//! against the schema at submit; [`Params::check`] repeats the ranges, since the guest trusts no input.

use kiln_guest::JobError;
use serde::{Deserialize, Serialize};

use kiln_guest::JsonSchema;

pub const MAX_ITERATIONS: u32 = 10;
pub const DEFAULT_ITERATIONS: u32 = 5;
pub const MAX_STROKES: usize = 64;
pub const MAX_POINTS: usize = 1000;
pub const MAX_RADIUS: u32 = 100;
pub const DEFAULT_RADIUS: u32 = 5;

/// All fields are optional; {} cuts out the object inside the image less a margin of 5% of its shorter
/// side. GrabCut (Rother et al. 2004, as OpenCV's grabCut): everything outside `rect` is background;
/// inside it, colour models of foreground and background (mixtures of 5 Gaussians) and a graph cut
/// between 8-neighbours decide each pixel, `iterations` times. Strokes mark pixels as sure foreground or
/// background anywhere, overriding the rectangle. Coordinates are in pixels of the image as displayed
/// (after its EXIF orientation); animated GIF and WebP use their first frame.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "cutout params")]
pub struct Params {
    /// The rectangle that holds the object; pixels outside it are background. It must lie inside the
    /// image and leave some background outside it, unless a background stroke marks some. Default: the
    /// image less a margin of 5% of its shorter side (at least 1 pixel) on every side.
    pub rect: Option<Rect>,
    /// Rounds of model fitting and graph cut, from 1 to 10; more rounds settle the edges more, each
    /// costing about the same time. OpenCV's examples use 5.
    #[serde(default = "default_iterations")]
    #[schemars(range(min = 1, max = MAX_ITERATIONS))]
    pub iterations: u32,
    /// Hints, up to 64: polylines painted as sure foreground or sure background (a stroke that touches
    /// the rectangle's outside can claim foreground there too). Later strokes paint over earlier ones.
    #[schemars(length(max = MAX_STROKES))]
    pub strokes: Option<Vec<Stroke>>,
    /// What to return. cutout (default): an RGBA PNG of the image with the background transparent
    /// (alpha 0, colour zeroed) and the foreground opaque. mask: a greyscale PNG, 255 for foreground
    /// and 0 for background.
    #[serde(default)]
    pub output: OutputMode,
    /// The result's file format: png (default), jpeg, webp or auto (chosen by the submit's `Accept`
    /// header); see the kind's description of each.
    #[serde(default)]
    pub format: kiln_guest::image::Format,
    /// JPEG quality from 1 (smallest) to 100 (best), default 85; ignored by png and webp (lossless).
    #[schemars(range(min = 1, max = 100))]
    pub quality: Option<u8>,
}

/// A rectangle, top-left at (x, y).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rect {
    /// Left edge in pixels; 0 is the image's left edge.
    pub x: u32,
    /// Top edge in pixels; 0 is the image's top edge.
    pub y: u32,
    /// Width in pixels.
    #[schemars(range(min = 1))]
    pub width: u32,
    /// Height in pixels.
    #[schemars(range(min = 1))]
    pub height: u32,
}

/// A hint: a line through `points` of the given `radius`, whose pixels are sure `label`. One point
/// paints a disc.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stroke {
    /// What the painted pixels are: foreground or background.
    pub label: StrokeLabel,
    /// The line's points as [x, y] pixel coordinates, 1 to 1000 of them; points outside the image are
    /// allowed (the part inside is painted).
    #[schemars(length(min = 1, max = MAX_POINTS))]
    pub points: Vec<Point>,
    /// Half the line's width in pixels, from 1 to 100 (default 5).
    #[serde(default = "default_radius")]
    #[schemars(range(min = 1, max = MAX_RADIUS))]
    pub radius: u32,
}

/// A point [x, y] in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[schemars(extend("items" = {"type": "integer", "minimum": 0, "maximum": 4_294_967_295u32, "description": "A coordinate in pixels."}))]
pub struct Point(#[schemars(length(min = 2, max = 2))] pub [u32; 2]);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StrokeLabel {
    Foreground,
    Background,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutputMode {
    #[default]
    Cutout,
    Mask,
}

fn default_iterations() -> u32 {
    DEFAULT_ITERATIONS
}

fn default_radius() -> u32 {
    DEFAULT_RADIUS
}

impl Default for Params {
    fn default() -> Self {
        Params {
            rect: None,
            iterations: DEFAULT_ITERATIONS,
            strokes: None,
            output: OutputMode::default(),
            format: Default::default(),
            quality: None,
        }
    }
}

impl Params {
    /// The ranges the schema states, checked again.
    pub fn check(&self) -> Result<(), JobError> {
        kiln_guest::image::check_quality(self.quality)?;
        if !(1..=MAX_ITERATIONS).contains(&self.iterations) {
            return Err(JobError::invalid_params(format!(
                "iterations must be from 1 to {MAX_ITERATIONS}, got {}",
                self.iterations
            )));
        }
        if let Some(r) = &self.rect
            && (r.width == 0 || r.height == 0)
        {
            return Err(JobError::invalid_params(format!(
                "rect width and height must be at least 1, got {}x{}",
                r.width, r.height
            )));
        }
        let strokes = self.strokes.as_deref().unwrap_or_default();
        if strokes.len() > MAX_STROKES {
            return Err(JobError::invalid_params(format!(
                "at most {MAX_STROKES} strokes, got {}",
                strokes.len()
            )));
        }
        for (n, s) in strokes.iter().enumerate() {
            if s.points.is_empty() || s.points.len() > MAX_POINTS {
                return Err(JobError::invalid_params(format!(
                    "strokes[{n}] needs 1 to {MAX_POINTS} points, got {}",
                    s.points.len()
                )));
            }
            if !(1..=MAX_RADIUS).contains(&s.radius) {
                return Err(JobError::invalid_params(format!(
                    "strokes[{n}].radius must be from 1 to {MAX_RADIUS}, got {}",
                    s.radius
                )));
            }
        }
        Ok(())
    }
}
