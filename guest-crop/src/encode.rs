//! The result, in the format the params chose (`kiln_guest::image::encode`; PNG with fast compression:
//! jobs are benchmarked end to end and size matters less than latency).

use image::ExtendedColorType;
use kiln_guest::image::Format;
use kiln_guest::{JobError, Output};

use crate::resample::Pixels;

pub fn encode(pixels: &Pixels, format: Format, quality: Option<u8>, input: &[u8]) -> Result<Output, JobError> {
    let color = if pixels.alpha {
        ExtendedColorType::Rgba8
    } else {
        ExtendedColorType::Rgb8
    };
    kiln_guest::image::encode(
        format,
        quality,
        input,
        &pixels.data,
        (pixels.width, pixels.height),
        color,
    )
}
