//! Turning the uploaded bytes into 8-bit RGB, refusing oversized images before their pixels exist.

use image::{ImageFormat, RgbImage};
use kiln_guest::JobError;
use kiln_guest::image::Budget;

/// The formats whose `image` features we enable.
const SUPPORTED: [ImageFormat; 4] = [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Gif, ImageFormat::WebP];
const SUPPORTED_NAMES: &str = "PNG, JPEG, GIF or WebP";

/// The first frame, upright, as RGB: alpha is dropped, since the cut decides it.
pub fn decode(input: &[u8], budget: Budget) -> Result<RgbImage, JobError> {
    Ok(kiln_guest::image::decode(input, budget, &SUPPORTED, SUPPORTED_NAMES)?.into_rgb8())
}
