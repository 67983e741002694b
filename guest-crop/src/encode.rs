//! PNG output, tuned for speed: jobs are benchmarked end to end and size matters less than latency.

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};

use crate::resample::Pixels;
use kiln_guest::JobError;

pub fn png(pixels: &Pixels) -> Result<Vec<u8>, JobError> {
    let (width, height, raw) = (pixels.width, pixels.height, &pixels.data);
    let color = if pixels.alpha {
        ExtendedColorType::Rgba8
    } else {
        ExtendedColorType::Rgb8
    };
    // Fast deflate typically lands near half the raw size on photos; start there to avoid regrowth.
    let mut out = Vec::with_capacity(raw.len() / 2 + 1024);
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
        .write_image(raw, width, height, color)
        .map_err(|e| JobError::internal(format!("PNG encoding of {width}x{height} failed: {e}")))?;
    Ok(out)
}
