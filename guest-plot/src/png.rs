//! PNG encoding of the rendered RGB buffer.

use image::ImageEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};

use crate::JobError;

/// Encodes tightly packed RGB8 pixels. Fast compression: charts are mostly flat colour, which deflates
/// well even at the lowest effort, and encoding time counts against the job.
pub fn encode(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, JobError> {
    let mut out = Vec::with_capacity(rgb.len() / 8);
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
        .write_image(rgb, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| JobError::internal(format!("PNG encoding failed: {e}")))?;
    Ok(out)
}
