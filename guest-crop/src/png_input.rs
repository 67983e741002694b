//! PNG inputs, decoded with `png` directly so that the chunk checksums can be skipped.
//!
//! `image`'s own PNG decoder verifies every chunk's CRC-32 and the zlib stream's Adler-32 and offers no way
//! to turn that off. Natively the CRC costs next to nothing (`pclmulqdq`); in wasm it is a scalar table
//! loop, ~30× slower, about a tenth of a whole crop run (BENCHMARKS.md). Checksums guard against
//! corruption in transit, which HTTP's own framing already covers, not against malice: a damaged stream
//! still fails to inflate or decodes to different pixels, never to an unsafe read. Browsers skip them too.
//!
//! This type is an [`ImageDecoder`], so the caller's size checks, orientation and conversion are the same
//! for PNG as for every other format.

use std::io::Cursor;

use image::error::{DecodingError, ImageFormatHint, LimitError, LimitErrorKind, UnsupportedError};
use image::{ColorType, ImageDecoder, ImageError, ImageFormat, ImageResult, Limits};

pub struct PngInput<'a> {
    reader: png::Reader<Cursor<&'a [u8]>>,
    color: ColorType,
}

impl<'a> PngInput<'a> {
    /// Reads the header and the chunks before the pixels, within `limits` as `image`'s decoder would:
    /// per-side dimensions, and `max_alloc` for the decoder's own buffers.
    pub fn new(input: &'a [u8], limits: &Limits) -> ImageResult<Self> {
        let max_alloc = limits.max_alloc.unwrap_or(u64::MAX);
        let png_limits = png::Limits {
            bytes: usize::try_from(max_alloc).unwrap_or(usize::MAX),
        };
        let mut decoder = png::Decoder::new_with_limits(Cursor::new(input), png_limits);
        decoder.ignore_checksums(true);
        // Palette and sub-byte images become 8-bit RGB(A) or grey, as with `image`'s decoder.
        decoder.set_transformations(png::Transformations::EXPAND);
        let reader = decoder.read_info().map_err(from_png)?;
        limits.check_dimensions(reader.info().width, reader.info().height)?;
        let color = match reader.output_color_type() {
            (png::ColorType::Grayscale, png::BitDepth::Eight) => ColorType::L8,
            (png::ColorType::Grayscale, png::BitDepth::Sixteen) => ColorType::L16,
            (png::ColorType::GrayscaleAlpha, png::BitDepth::Eight) => ColorType::La8,
            (png::ColorType::GrayscaleAlpha, png::BitDepth::Sixteen) => ColorType::La16,
            (png::ColorType::Rgb, png::BitDepth::Eight) => ColorType::Rgb8,
            (png::ColorType::Rgb, png::BitDepth::Sixteen) => ColorType::Rgb16,
            (png::ColorType::Rgba, png::BitDepth::Eight) => ColorType::Rgba8,
            (png::ColorType::Rgba, png::BitDepth::Sixteen) => ColorType::Rgba16,
            (color, depth) => {
                return Err(ImageError::Unsupported(UnsupportedError::from_format_and_kind(
                    ImageFormatHint::Exact(ImageFormat::Png),
                    image::error::UnsupportedErrorKind::GenericFeature(format!(
                        "{color:?} at {} bits after expansion",
                        depth as u8
                    )),
                )));
            }
        };
        Ok(Self { reader, color })
    }
}

impl ImageDecoder for PngInput<'_> {
    fn dimensions(&self) -> (u32, u32) {
        let info = self.reader.info();
        (info.width, info.height)
    }

    fn color_type(&self) -> ColorType {
        self.color
    }

    fn exif_metadata(&mut self) -> ImageResult<Option<Vec<u8>>> {
        Ok(self.reader.info().exif_metadata.as_ref().map(|exif| exif.to_vec()))
    }

    fn read_image(mut self, buf: &mut [u8]) -> ImageResult<()> {
        self.reader.next_frame(buf).map_err(from_png)?;
        // PNG samples are big-endian; `image` wants 16-bit samples in native order.
        if self.color.bytes_per_pixel() / self.color.channel_count() == 2 {
            for sample in buf.as_chunks_mut::<2>().0 {
                *sample = u16::from_be_bytes(*sample).to_ne_bytes();
            }
        }
        Ok(())
    }

    fn read_image_boxed(self: Box<Self>, buf: &mut [u8]) -> ImageResult<()> {
        (*self).read_image(buf)
    }
}

fn from_png(error: png::DecodingError) -> ImageError {
    match error {
        png::DecodingError::IoError(e) => ImageError::IoError(e),
        png::DecodingError::LimitsExceeded => {
            ImageError::Limits(LimitError::from_kind(LimitErrorKind::InsufficientMemory))
        }
        other => ImageError::Decoding(DecodingError::new(ImageFormatHint::Exact(ImageFormat::Png), other)),
    }
}
