//! Bytes in, bytes out: decoding the upload within a size budget, and encoding the PNG.
//!
//! A job kind must assume its input is hostile. A 100 KB PNG can claim to be 100000x100000 pixels; a
//! naive decoder would try to allocate 40 GB and hit the host's memory cap (a `memory-limit` failure,
//! which does not tell the user what is wrong). Instead we read the header first and refuse oversized
//! images with `invalid-input` and a message that says what to change: `kiln_guest::image::Budget`
//! holds the operator's `max-megapixels` setting and the checks.

use image::{DynamicImage, ExtendedColorType, GenericImageView, ImageFormat};
use kiln_guest::image::{Budget, Format};
use kiln_guest::{JobError, Output};

/// Decodes the first frame of a PNG, JPEG, GIF, WebP, BMP or TIFF image (the `image` features enabled
/// in Cargo.toml), upright by its EXIF orientation, as 8-bit RGB or RGBA.
pub fn decode(input: &[u8], budget: Budget) -> Result<DynamicImage, JobError> {
    const FORMATS: [ImageFormat; 6] = [
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::Gif,
        ImageFormat::WebP,
        ImageFormat::Bmp,
        ImageFormat::Tiff,
    ];
    let image = kiln_guest::image::decode(input, budget, &FORMATS, "PNG, JPEG, GIF, WebP, BMP or TIFF")?;

    // One pixel layout for every op: 8-bit, with alpha only when the source has it.
    Ok(match image {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => image,
        _ if image.color().has_alpha() => DynamicImage::ImageRgba8(image.to_rgba8()),
        _ => DynamicImage::ImageRgb8(image.to_rgb8()),
    })
}

/// The result in the params' format (`kiln_guest::image::encode`: PNG with fast compression, JPEG,
/// lossless WebP); grey stays one channel, grey with alpha is widened to RGBA.
pub fn encode(image: &DynamicImage, format: Format, quality: Option<u8>, input: &[u8]) -> Result<Output, JobError> {
    let (raw, color) = match image {
        DynamicImage::ImageLuma8(grey) => (grey.as_raw().clone(), ExtendedColorType::L8),
        _ if image.color().has_alpha() => (image.to_rgba8().into_raw(), ExtendedColorType::Rgba8),
        _ => (image.to_rgb8().into_raw(), ExtendedColorType::Rgb8),
    };
    kiln_guest::image::encode(format, quality, input, &raw, image.dimensions(), color)
}
