//! Turning the uploaded bytes into 8-bit RGB, refusing oversized images before their pixels exist.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};
use kiln_guest::JobError;
use kiln_guest::image::Budget;

/// The formats whose `image` features we enable.
const SUPPORTED: [ImageFormat; 4] = [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Gif, ImageFormat::WebP];
const SUPPORTED_NAMES: &str = "PNG, JPEG, GIF or WebP";

/// Decodes the first frame, upright by its EXIF orientation, as RGB (alpha is dropped: the cut decides
/// it).
pub fn decode(input: &[u8], budget: Budget) -> Result<RgbImage, JobError> {
    if input.is_empty() {
        return Err(JobError::invalid_input(format!(
            "input is empty; upload a {SUPPORTED_NAMES} image"
        )));
    }
    let mut reader = ImageReader::new(Cursor::new(input))
        .with_guessed_format()
        .map_err(|e| JobError::internal(format!("reading input from memory failed: {e}")))?;
    match reader.format() {
        Some(format) if SUPPORTED.contains(&format) => {}
        other => {
            let what = other.map_or("an unknown format".to_owned(), |f| format!("{f:?}"));
            return Err(JobError::invalid_input(format!(
                "could not decode image: {what} is not supported; upload a {SUPPORTED_NAMES} image"
            )));
        }
    }
    reader.limits(budget.limits());
    let mut decoder = reader.into_decoder().map_err(|e| budget.decode_error(e))?;
    let (width, height) = decoder.dimensions();
    budget.check(width, height)?;
    let orientation = decoder.orientation().map_err(|e| budget.decode_error(e))?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| budget.decode_error(e))?;
    image.apply_orientation(orientation);
    Ok(image.into_rgb8())
}
