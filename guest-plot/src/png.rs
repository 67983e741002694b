//! PNG encoding of the rendered RGB buffer.

use image::ImageEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};

use kiln_guest::JobError;

/// Encodes tightly packed RGB8 pixels. Fast compression: charts are mostly flat colour, which deflates
/// well even at the lowest effort, and encoding time counts against the job.
///
/// One filter, Paeth, for every row rather than `Adaptive` (which tries all five per row and sums each
/// result): on the default chart the file is as small (35.5 KB against 35.0 KB) and encoding takes 400
/// instead of 655 µs natively. In wasm the gain is larger: the adaptive heuristic's byte sums are the
/// slowest loop of the whole plot there (BENCHMARKS.md).
pub fn encode(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, JobError> {
    let mut out = Vec::with_capacity(rgb.len() / 8);
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Paeth)
        .write_image(rgb, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| JobError::internal(format!("PNG encoding failed: {e}")))?;
    Ok(out)
}
