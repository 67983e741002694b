//! Turning the uploaded bytes into pixels, refusing oversized images before their pixels are allocated.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader};
use kiln_guest::JobError;
use kiln_guest::image::Budget;

use crate::png_input::PngInput;

/// The formats whose `image` features we enable; anything else is refused by name.
const SUPPORTED: [ImageFormat; 6] = [
    ImageFormat::Png,
    ImageFormat::Jpeg,
    ImageFormat::Gif,
    ImageFormat::WebP,
    ImageFormat::Bmp,
    ImageFormat::Tiff,
];
const SUPPORTED_NAMES: &str = "PNG, JPEG, GIF, WebP, BMP or TIFF";

/// Decodes the first frame, turned upright by its EXIF orientation so that crop coordinates mean what
/// the user sees in a viewer (our PNG output carries no orientation tag).
pub fn decode(input: &[u8], budget: Budget) -> Result<DynamicImage, JobError> {
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
        Some(format) => {
            return Err(JobError::invalid_input(format!(
                "unsupported image format {format:?}; upload a {SUPPORTED_NAMES} image"
            )));
        }
        None => {
            return Err(JobError::invalid_input(format!(
                "could not decode image: unknown format (expected {SUPPORTED_NAMES})"
            )));
        }
    }
    let limits = budget.limits();
    reader.limits(limits.clone());

    // Only the header has been read so far: check the size it claims before any pixel buffer exists.
    let decoder: Result<Box<dyn ImageDecoder>, ImageError> = match reader.format() {
        Some(ImageFormat::Png) => PngInput::new(input, &limits).map(|png| Box::new(png) as _),
        _ => reader.into_decoder().map(|decoder| Box::new(decoder) as _),
    };
    let mut decoder = decoder.map_err(|e| budget.decode_error(e))?;
    let (width, height) = decoder.dimensions();
    budget.check(width, height)?;
    if decoder.total_bytes() > budget.max_alloc() {
        return Err(JobError::invalid_input(format!(
            "image is {width}x{height} in {:?}, which needs {} MB to decode, over the limit of {} MB",
            decoder.color_type(),
            decoder.total_bytes() >> 20,
            budget.max_alloc() >> 20
        )));
    }
    let orientation = decoder.orientation().map_err(|e| budget.decode_error(e))?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| budget.decode_error(e))?;
    image.apply_orientation(orientation);
    Ok(image)
}
