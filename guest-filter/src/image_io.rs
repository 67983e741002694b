//! Bytes in, bytes out: decoding the upload within a size budget, and encoding the PNG.
//!
//! A job kind must assume its input is hostile. A 100 KB PNG can claim to be 100000x100000 pixels; a
//! naive decoder would try to allocate 40 GB and hit the host's memory cap (a `memory-limit` failure,
//! which does not tell the user what is wrong). Instead we read the header first and refuse oversized
//! images with `invalid-input` and a message that says what to change.

use std::io::Cursor;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, Limits};

use crate::{Env, JobError};

/// The operator setting that bounds image size; its default is also declared in `kind.json`.
pub const SETTING: &str = "max-megapixels";
pub const DEFAULT_MEGAPIXELS: f64 = 40.0;
/// Decoders need some memory of their own (tables, rows) beyond the pixels: 8-bit RGBA plus headroom.
const BYTES_PER_PIXEL: u64 = 4;
const DECODER_HEADROOM: u64 = 16 << 20;

/// How many pixels a job may decode, from the operator's `max-megapixels` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub max_pixels: u64,
}

impl Budget {
    /// Reads the setting through the host. A bad value is the operator's mistake, not the user's, so it
    /// is an `internal` error.
    pub fn from_env(env: &dyn Env) -> Result<Self, JobError> {
        let megapixels = match env.setting(SETTING) {
            None => DEFAULT_MEGAPIXELS,
            Some(text) => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|mp| mp.is_finite() && *mp > 0.0 && *mp <= 1e9)
                .ok_or_else(|| {
                    JobError::internal(format!(
                        "setting {SETTING} is {text:?}; expected a positive number such as \"40\""
                    ))
                })?,
        };
        let max_pixels = ((megapixels * 1e6) as u64).max(1);
        Ok(Budget { max_pixels })
    }

    /// Limits the `image` decoders check against the header, before they allocate any pixels.
    fn limits(&self) -> Limits {
        let side = u32::try_from(self.max_pixels).unwrap_or(u32::MAX);
        let mut limits = Limits::default();
        limits.max_image_width = Some(side);
        limits.max_image_height = Some(side);
        limits.max_alloc = Some(self.max_pixels * BYTES_PER_PIXEL + DECODER_HEADROOM);
        limits
    }
}

/// Decodes the first frame of a PNG, JPEG, GIF, WebP, BMP or TIFF image (the `image` features enabled
/// in Cargo.toml), upright by its EXIF orientation, as 8-bit RGB or RGBA.
pub fn decode(input: &[u8], budget: Budget) -> Result<DynamicImage, JobError> {
    if input.is_empty() {
        return Err(JobError::invalid_input(
            "input is empty; upload a PNG, JPEG, GIF, WebP, BMP or TIFF image",
        ));
    }
    let mut reader = ImageReader::new(Cursor::new(input))
        .with_guessed_format()
        .map_err(|e| JobError::internal(format!("reading input from memory failed: {e}")))?;
    if reader.format().is_none() {
        return Err(JobError::invalid_input(
            "could not decode image: unknown format (expected PNG, JPEG, GIF, WebP, BMP or TIFF)",
        ));
    }
    reader.limits(budget.limits());

    // Only the header has been read: check the size it claims before a pixel buffer exists.
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels > budget.max_pixels {
        return Err(JobError::invalid_input(format!(
            "image is {width}x{height} ({:.1} megapixels), over the limit of {} megapixels",
            pixels as f64 / 1e6,
            budget.max_pixels as f64 / 1e6
        )));
    }
    let orientation = decoder.orientation().map_err(decode_error)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    image.apply_orientation(orientation);

    // One pixel layout for every op: 8-bit, with alpha only when the source has it.
    Ok(match image {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => image,
        _ if image.color().has_alpha() => DynamicImage::ImageRgba8(image.to_rgba8()),
        _ => DynamicImage::ImageRgb8(image.to_rgb8()),
    })
}

/// Sorts decoder failures: the user's (a corrupt or unsupported file, too large) or ours.
fn decode_error(error: ImageError) -> JobError {
    match error {
        ImageError::Limits(e) => JobError::invalid_input(format!("image is too large to decode: {e}")),
        ImageError::Decoding(_) | ImageError::Unsupported(_) | ImageError::IoError(_) => {
            JobError::invalid_input(format!("could not decode image: {error}"))
        }
        ImageError::Parameter(_) | ImageError::Encoding(_) => JobError::internal(format!("decoder failed: {error}")),
    }
}

/// PNG with fast compression: users wait for the job, and a few percent of size matters less.
pub fn encode_png(image: &DynamicImage) -> Result<Vec<u8>, JobError> {
    let mut out = Vec::new();
    let encoder = PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive);
    image
        .write_with_encoder(encoder)
        .map_err(|e| JobError::internal(format!("PNG encoding failed: {e}")))?;
    Ok(out)
}
