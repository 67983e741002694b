//! For kinds that decode uploaded images: the operator's `max-megapixels` budget, which bounds what is
//! decoded before any pixel buffer exists, and sorting decoder failures into the user's and ours.
//!
//! A kind must assume its input is hostile: a 100 KB PNG can claim to be 100000x100000 pixels, and a
//! naive decode would run into the host's memory cap (a `memory-limit` failure that does not tell the
//! user what is wrong). With a [`Budget`], the header is checked first and the image refused with
//! `invalid-input` and a message that says what to change.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};

use crate::JobError;

/// The setting's name; its default is declared in the kind's `kind.json` too.
pub const SETTING: &str = "max-megapixels";
pub const DEFAULT_MEGAPIXELS: f64 = 40.0;

/// Decoded bytes allowed per pixel of the budget: 8-bit RGBA. Wider layouts (16-bit, float) are
/// accepted up to a correspondingly smaller size, and refused with a clear message beyond it.
const BYTES_PER_PIXEL: u64 = 4;
/// Decoders' own buffers (tables, rows, metadata) on top of the pixels, so tiny budgets still decode.
const DECODER_HEADROOM: u64 = 16 << 20;

/// How many pixels a job may decode (and produce), from the `max-megapixels` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub max_pixels: u64,
}

impl Budget {
    /// Reads the setting through the host. A bad value is the operator's mistake, not the user's, so
    /// it is an `internal` error.
    pub fn from_setting() -> Result<Self, JobError> {
        let megapixels = match crate::setting(SETTING) {
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
        // At most 1e15: the cast cannot saturate.
        let max_pixels = (megapixels * 1e6) as u64;
        if max_pixels == 0 {
            return Err(JobError::internal(format!(
                "setting {SETTING} is {megapixels}, which allows no pixels at all"
            )));
        }
        Ok(Budget { max_pixels })
    }

    pub fn megapixels(&self) -> f64 {
        self.max_pixels as f64 / 1e6
    }

    /// Memory a decoder may use: the largest allowed image as 8-bit RGBA, plus headroom.
    pub fn max_alloc(&self) -> u64 {
        self.max_pixels
            .saturating_mul(BYTES_PER_PIXEL)
            .saturating_add(DECODER_HEADROOM)
    }

    /// Limits for `image`: decoders check them against the header before allocating pixels. Per side
    /// the whole budget is allowed (a 1-pixel-high strip); [`Budget::allows`] bounds the area.
    pub fn limits(&self) -> Limits {
        let side = u32::try_from(self.max_pixels).unwrap_or(u32::MAX);
        let mut limits = Limits::default();
        limits.max_image_width = Some(side);
        limits.max_image_height = Some(side);
        limits.max_alloc = Some(self.max_alloc());
        limits
    }

    /// Whether `width`×`height` fits the budget.
    pub fn allows(&self, width: u32, height: u32) -> bool {
        u64::from(width) * u64::from(height) <= self.max_pixels
    }

    /// `Ok` when `width`×`height` fits, else the `invalid-input` error that says by how much it does not.
    pub fn check(&self, width: u32, height: u32) -> Result<(), JobError> {
        if self.allows(width, height) {
            return Ok(());
        }
        Err(JobError::invalid_input(format!(
            "image is {width}x{height} ({:.1} megapixels), over the limit of {} megapixels",
            megapixels(width, height),
            self.megapixels()
        )))
    }

    /// Sorts a decoder failure: the user's (a corrupt, unsupported or too large file) or ours.
    pub fn decode_error(&self, error: ImageError) -> JobError {
        match error {
            ImageError::Limits(e) => JobError::invalid_input(format!(
                "image is too large to decode within the limit of {} megapixels ({SETTING}): {e}",
                self.megapixels()
            )),
            ImageError::Decoding(_) | ImageError::Unsupported(_) | ImageError::IoError(_) => {
                JobError::invalid_input(format!("could not decode image: {error}"))
            }
            ImageError::Parameter(_) | ImageError::Encoding(_) => {
                JobError::internal(format!("decoder failed: {error}"))
            }
        }
    }
}

/// Decodes the first frame of `input`, upright by its EXIF orientation, refusing an empty input, a
/// format not in `formats` (`names` lists them for the message) and a size over `budget` from its header,
/// before any pixel buffer exists. The formats' decoders are the kind's `image` features.
pub fn decode(input: &[u8], budget: Budget, formats: &[ImageFormat], names: &str) -> Result<DynamicImage, JobError> {
    if input.is_empty() {
        return Err(JobError::invalid_input(format!(
            "input is empty; upload a {names} image"
        )));
    }
    let mut reader = ImageReader::new(Cursor::new(input))
        .with_guessed_format()
        .map_err(|e| JobError::internal(format!("reading input from memory failed: {e}")))?;
    match reader.format() {
        Some(format) if formats.contains(&format) => {}
        Some(format) => {
            return Err(JobError::invalid_input(format!(
                "unsupported image format {format:?}; upload a {names} image"
            )));
        }
        None => {
            return Err(JobError::invalid_input(format!(
                "could not decode image: unknown format (expected {names})"
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
    Ok(image)
}

/// Megapixels of a size, for messages.
pub fn megapixels(width: u32, height: u32) -> f64 {
    (u64::from(width) * u64::from(height)) as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use crate::test::TestHost;

    fn budget(setting: Option<&str>) -> Result<Budget, JobError> {
        let mut host = TestHost::new();
        if let Some(value) = setting {
            host = host.setting(SETTING, value);
        }
        host.enter(Budget::from_setting)
    }

    #[test]
    fn default_is_40_megapixels() {
        let b = budget(None).unwrap();
        assert_eq!(b.max_pixels, 40_000_000);
        assert!(b.allows(8000, 5000));
        assert!(!b.allows(8000, 5001));
        assert!(!b.allows(100_000, 100_000));
        assert_eq!(b.max_alloc(), 160_000_000 + (16 << 20));
        let e = b.check(8000, 5001).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(
            e.message.contains("8000x5001 (40.0 megapixels), over the limit of 40"),
            "{e}"
        );
    }

    #[test]
    fn setting_may_be_fractional() {
        assert_eq!(budget(Some(" 0.5 ")).unwrap().max_pixels, 500_000);
    }

    #[test]
    fn bad_setting_is_internal() {
        for text in ["", "forty", "-1", "0", "NaN", "inf", "1e-9", "1e10"] {
            let e = budget(Some(text)).unwrap_err();
            assert_eq!(e.code, ErrorCode::Internal, "{text:?}");
            assert!(e.message.contains(SETTING), "{}", e.message);
        }
    }
}

/// The file format of an image result, chosen by a kind's `format` param: png (lossless, the default),
/// jpeg (lossy, `quality` 1-100, no alpha: transparent pixels are flattened onto white), webp (lossless
/// only: the `image` crate's WebP encoder takes no quality, so `quality` is ignored), or auto, which the
/// API replaces at submit: webp when the submit's `Accept` header accepts `image/webp`, else the input's
/// family (jpeg for a JPEG input, png otherwise). A guest that still sees auto (e.g. `kiln kind dev`)
/// uses the input's family.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Png,
    Jpeg,
    Webp,
    Auto,
}

/// JPEG quality when a job gives none.
pub const DEFAULT_QUALITY: u8 = 85;

impl Format {
    /// `auto` resolved against the input (`jpeg` for a JPEG, else `png`); the others as they are.
    pub fn resolve(self, input: &[u8]) -> Format {
        match self {
            Format::Auto if input.starts_with(&[0xff, 0xd8, 0xff]) => Format::Jpeg,
            Format::Auto => Format::Png,
            other => other,
        }
    }
}

/// The `quality` range the schema states, checked again.
pub fn check_quality(quality: Option<u8>) -> Result<(), JobError> {
    match quality {
        Some(q) if !(1..=100).contains(&q) => Err(JobError::invalid_params(format!(
            "quality must be from 1 to 100, got {q}"
        ))),
        _ => Ok(()),
    }
}

/// Encodes 8-bit `raw` pixels (`L8`, `Rgb8` or `Rgba8`) of `width` x `height` as `format` (see
/// [`Format`]; `auto` by `input`), with `quality` for JPEG, into a result of the matching media type.
pub fn encode(
    format: Format,
    quality: Option<u8>,
    input: &[u8],
    raw: &[u8],
    (width, height): (u32, u32),
    color: image::ExtendedColorType,
) -> Result<crate::Output, JobError> {
    use image::ImageEncoder;
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let mut out = Vec::with_capacity(raw.len() / 4 + 1024);
    let failed =
        |name: &str, e: ImageError| JobError::internal(format!("{name} encoding of {width}x{height} failed: {e}"));
    let media_type = match format.resolve(input) {
        Format::Png | Format::Auto => {
            PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
                .write_image(raw, width, height, color)
                .map_err(|e| failed("PNG", e))?;
            "image/png"
        }
        Format::Jpeg => {
            let quality = quality.unwrap_or(DEFAULT_QUALITY).clamp(1, 100);
            let flat;
            let (raw, color) = if color == image::ExtendedColorType::Rgba8 {
                flat = flatten_on_white(raw);
                (flat.as_slice(), image::ExtendedColorType::Rgb8)
            } else {
                (raw, color)
            };
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
                .write_image(raw, width, height, color)
                .map_err(|e| failed("JPEG", e))?;
            "image/jpeg"
        }
        Format::Webp => {
            image::codecs::webp::WebPEncoder::new_lossless(&mut out)
                .write_image(raw, width, height, color)
                .map_err(|e| failed("WebP", e))?;
            "image/webp"
        }
    };
    Ok(crate::Output::new(media_type, out))
}

/// RGBA composited over white, as RGB.
fn flatten_on_white(rgba: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(rgba.len() / 4 * 3);
    for pixel in rgba.chunks_exact(4) {
        let alpha = u16::from(pixel[3]);
        for &channel in &pixel[..3] {
            rgb.push(((u16::from(channel) * alpha + 255 * (255 - alpha) + 127) / 255) as u8);
        }
    }
    rgb
}

#[cfg(test)]
mod encode_tests {
    use super::*;
    use image::ExtendedColorType::{L8, Rgb8, Rgba8};

    fn decoded(output: &crate::Output) -> (image::ImageFormat, DynamicImage) {
        let format = image::guess_format(&output.data).unwrap();
        (format, image::load_from_memory(&output.data).unwrap())
    }

    #[test]
    fn each_format_gives_its_media_type_and_decodes_to_the_pixels() {
        let raw: Vec<u8> = (0..16 * 8 * 3).map(|i| (i % 7 * 30) as u8).collect();
        for (format, media_type, image_format) in [
            (Format::Png, "image/png", ImageFormat::Png),
            (Format::Webp, "image/webp", ImageFormat::WebP),
            (Format::Jpeg, "image/jpeg", ImageFormat::Jpeg),
        ] {
            let output = encode(format, Some(100), b"", &raw, (16, 8), Rgb8).unwrap();
            assert_eq!(output.media_type, media_type);
            let (found, image) = decoded(&output);
            assert_eq!(found, image_format);
            assert_eq!((image.width(), image.height()), (16, 8));
            if format != Format::Jpeg {
                assert_eq!(image.to_rgb8().into_raw(), raw, "{media_type} is lossless");
            }
        }
        let grey = encode(Format::Webp, None, b"", &[7; 12], (4, 3), L8).unwrap();
        assert_eq!(decoded(&grey).1.to_luma8().into_raw(), vec![7; 12]);
    }

    #[test]
    fn auto_follows_the_input_and_jpeg_flattens_alpha_on_white() {
        assert_eq!(Format::Auto.resolve(&[0xff, 0xd8, 0xff, 0xe0]), Format::Jpeg);
        assert_eq!(Format::Auto.resolve(b"\x89PNG"), Format::Png);
        assert_eq!(Format::Webp.resolve(&[0xff, 0xd8, 0xff]), Format::Webp);
        let clear = [10, 20, 30, 0].repeat(64);
        let output = encode(Format::Jpeg, Some(95), b"", &clear, (8, 8), Rgba8).unwrap();
        let pixel = decoded(&output).1.to_rgb8().get_pixel(3, 3).0;
        assert!(pixel.iter().all(|&c| c >= 250), "{pixel:?}");
        assert_eq!(
            flatten_on_white(&[200, 100, 0, 255, 0, 0, 0, 128]),
            [200, 100, 0, 127, 127, 127]
        );
    }

    #[test]
    fn jpeg_quality_changes_the_size() {
        let raw: Vec<u8> = (0..64 * 64 * 3u32).map(|i| (i * 37 % 251) as u8).collect();
        let size = |q| {
            encode(Format::Jpeg, Some(q), b"", &raw, (64, 64), Rgb8)
                .unwrap()
                .data
                .len()
        };
        assert!(size(20) < size(90), "{} vs {}", size(20), size(90));
    }
}
