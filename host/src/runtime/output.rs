//! Holds a result to what it claims: its size, the media type its kind declares, and for images a file
//! of that format. A PNG is walked chunk by chunk: its header may not claim more pixels than the
//! operator allows (whoever downloads it decodes it), and it must be complete up to `IEND`. A JPEG's
//! segments are walked to its first start-of-frame and a WebP's first chunk is read (`VP8 `, `VP8L` or
//! `VP8X`), and the dimensions they claim are held to the same limit.

use super::{Output, RunRequest, wit};
use crate::job::{ErrorCode, JobError};
#[cfg(doc)]
use crate::kinds::OUTPUT_MEDIA_TYPES;

pub(super) fn check(output: wit::Output, request: &RunRequest) -> Result<Output, JobError> {
    let invalid = |message: String| Err(JobError::new(ErrorCode::InvalidOutput, message));
    if output.data.len() > request.limits.max_output_bytes {
        return Err(JobError::new(
            ErrorCode::OutputTooLarge,
            format!(
                "the job produced {} bytes, over the limit of {} bytes",
                output.data.len(),
                request.limits.max_output_bytes
            ),
        ));
    }
    if !request.expected_media_types.contains(&output.media_type) {
        return invalid(format!(
            "the job returned media type `{}` but its kind declares `{}`",
            output.media_type,
            request.expected_media_types.join("`, `")
        ));
    }
    if let Err(problem) = check_format(&output.media_type, &output.data, request.limits.max_output_pixels) {
        return invalid(format!("the job returned an invalid {}: {problem}", output.media_type));
    }
    Ok(Output {
        media_type: output.media_type,
        data: output.data,
    })
}

/// Checks that `data` is a file of `media_type` (one of [`OUTPUT_MEDIA_TYPES`], as uploads are checked);
/// for PNG, JPEG and WebP, also the dimensions its header claims (and a PNG's completeness). GIF is
/// checked by its signature only.
fn check_format(media_type: &str, data: &[u8], max_pixels: u64) -> Result<(), String> {
    let signature_ok = match media_type {
        "image/png" => return check_png(data, max_pixels),
        "image/jpeg" => return check_dimensions(jpeg_dimensions(data)?, max_pixels),
        "image/webp" => return check_dimensions(webp_dimensions(data)?, max_pixels),
        "image/gif" => data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a"),
        // A kind registered before media types were checked at upload: nothing to hold it to.
        _ => true,
    };
    if signature_ok {
        Ok(())
    } else {
        Err("the bytes do not start with its signature".into())
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Walks a PNG's chunks (length, type, data, CRC) from the signature to `IEND`: the first chunk must be
/// a 13-byte `IHDR` whose width × height is within `max_pixels`, and every chunk must be whole, with a
/// matching CRC.
fn check_png(data: &[u8], max_pixels: u64) -> Result<(), String> {
    let Some(mut rest) = data.strip_prefix(PNG_SIGNATURE) else {
        return Err("not a PNG (no PNG signature)".into());
    };
    let mut first = true;
    loop {
        if rest.len() < 12 {
            return Err("the file is truncated (it ends before its IEND chunk)".into());
        }
        let length = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let kind = &rest[4..8];
        let Some(chunk) = rest.get(4..8 + length + 4) else {
            return Err(format!(
                "the file is truncated (its {} chunk needs {length} bytes)",
                String::from_utf8_lossy(kind)
            ));
        };
        let (typed_data, crc) = chunk.split_at(4 + length);
        if crc32fast::hash(typed_data).to_be_bytes() != crc {
            return Err(format!(
                "the {} chunk's CRC does not match its bytes",
                String::from_utf8_lossy(kind)
            ));
        }
        let body = &typed_data[4..];
        if first {
            if kind != b"IHDR" || length != 13 {
                return Err("the first chunk is not a 13-byte IHDR".into());
            }
            let width = u32::from_be_bytes(body[..4].try_into().expect("4 bytes"));
            let height = u32::from_be_bytes(body[4..8].try_into().expect("4 bytes"));
            check_dimensions((width, height), max_pixels)?;
            first = false;
        }
        if kind == b"IEND" {
            return Ok(());
        }
        rest = &rest[12 + length..];
    }
}

/// Refuses an empty image or one of more than `max_pixels`.
fn check_dimensions((width, height): (u32, u32), max_pixels: u64) -> Result<(), String> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels == 0 {
        return Err(format!("its header claims {width}×{height} pixels"));
    }
    if pixels > max_pixels {
        return Err(format!(
            "its header claims {width}×{height} pixels ({} megapixels), over the limit of {} megapixels",
            pixels / 1_000_000,
            max_pixels / 1_000_000
        ));
    }
    Ok(())
}

/// The width and height in a JPEG's first start-of-frame marker (SOF0-SOF15 but DHT, JPG and DAC),
/// reached by walking the segments from SOI; an error when there is none before the data ends or the
/// scan starts.
fn jpeg_dimensions(data: &[u8]) -> Result<(u32, u32), String> {
    let Some(mut rest) = data.strip_prefix(&[0xff, 0xd8]) else {
        return Err("the bytes do not start with its signature".into());
    };
    loop {
        // Fill bytes (0xff) may precede a marker.
        let skip = rest.iter().take_while(|&&b| b == 0xff).count();
        if skip == 0 || rest.len() < skip + 3 {
            return Err("the file ends or breaks off before its start-of-frame header".into());
        }
        let marker = rest[skip];
        rest = &rest[skip + 1..];
        if matches!(marker, 0x01 | 0xd0..=0xd7) {
            continue; // markers without a length
        }
        if marker == 0xda || marker == 0xd9 {
            return Err("the scan starts before any start-of-frame header".into());
        }
        let length = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let Some(segment) = rest.get(2..length.max(2)) else {
            return Err("the file is truncated (a segment runs past its end)".into());
        };
        if matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc) {
            if segment.len() < 5 {
                return Err("its start-of-frame header is too short".into());
            }
            let height = u16::from_be_bytes([segment[1], segment[2]]);
            let width = u16::from_be_bytes([segment[3], segment[4]]);
            return Ok((width.into(), height.into()));
        }
        rest = &rest[length.max(2)..];
    }
}

/// The width and height a WebP's first chunk claims: `VP8 ` (lossy: 14-bit sizes after the key-frame
/// start code), `VP8L` (lossless: 14-bit sizes minus one after the 0x2f signature) or `VP8X` (extended:
/// 24-bit canvas sizes minus one).
fn webp_dimensions(data: &[u8]) -> Result<(u32, u32), String> {
    if data.len() < 12 || !data.starts_with(b"RIFF") || &data[8..12] != b"WEBP" {
        return Err("the bytes do not start with its signature".into());
    }
    let Some(chunk) = data.get(12..16) else {
        return Err("the file is truncated (no chunk after the header)".into());
    };
    let body = &data[20.min(data.len())..];
    let short = || Err("the file is truncated (its first chunk is too short)".to_string());
    match chunk {
        b"VP8 " => {
            let Some(b) = body.get(..10) else { return short() };
            if b[3..6] != [0x9d, 0x01, 0x2a] {
                return Err("its VP8 chunk has no key-frame start code".into());
            }
            let width = u16::from_le_bytes([b[6], b[7]]) & 0x3fff;
            let height = u16::from_le_bytes([b[8], b[9]]) & 0x3fff;
            Ok((width.into(), height.into()))
        }
        b"VP8L" => {
            let Some(b) = body.get(..5) else { return short() };
            if b[0] != 0x2f {
                return Err("its VP8L chunk has no 0x2f signature".into());
            }
            let bits = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
            Ok(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
        }
        b"VP8X" => {
            let Some(b) = body.get(..10) else { return short() };
            let width = u32::from_le_bytes([b[4], b[5], b[6], 0]) + 1;
            let height = u32::from_le_bytes([b[7], b[8], b[9], 0]) + 1;
            Ok((width, height))
        }
        other => Err(format!(
            "its first chunk is `{}`, not VP8, VP8L or VP8X",
            String::from_utf8_lossy(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG of `width` × `height`, encoded for real (so IDAT and CRCs are right).
    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Grayscale);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&vec![0; (width * height) as usize]).unwrap();
        writer.finish().unwrap();
        bytes
    }

    /// The 8-byte signature and an IHDR claiming `width` × `height`, with a right CRC, and an IEND.
    fn header_only(width: u32, height: u32) -> Vec<u8> {
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend(width.to_be_bytes());
        ihdr.extend(height.to_be_bytes());
        ihdr.extend([8, 0, 0, 0, 0]);
        let mut bytes = PNG_SIGNATURE.to_vec();
        bytes.extend(13u32.to_be_bytes());
        bytes.extend(&ihdr);
        bytes.extend(crc32fast::hash(&ihdr).to_be_bytes());
        bytes.extend(0u32.to_be_bytes());
        bytes.extend(b"IEND");
        bytes.extend(crc32fast::hash(b"IEND").to_be_bytes());
        bytes
    }

    #[test]
    fn a_whole_png_within_the_limit_passes() {
        assert_eq!(check_png(&png(64, 32), 100_000_000), Ok(()));
        assert_eq!(check_png(&header_only(10_000, 10_000), 100_000_000), Ok(()));
    }

    #[test]
    fn a_header_over_the_limit_is_refused() {
        let problem = check_png(&header_only(100_000, 100_000), 100_000_000).unwrap_err();
        assert!(problem.contains("100000×100000"), "{problem}");
        assert!(problem.contains("10000 megapixels"), "{problem}");
        assert!(check_png(&header_only(0, 5), 100_000_000).is_err());
    }

    #[test]
    fn truncated_or_corrupt_files_are_refused() {
        let whole = png(64, 32);
        for cut in [whole.len() - 1, whole.len() - 12, whole.len() / 2, 20, 8] {
            let problem = check_png(&whole[..cut], 100_000_000).unwrap_err();
            assert!(problem.contains("truncated"), "cut at {cut}: {problem}");
        }
        let mut flipped = whole.clone();
        flipped[40] ^= 1;
        assert!(check_png(&flipped, 100_000_000).unwrap_err().contains("CRC"));
        assert!(check_png(b"GIF89a....", 100_000_000).unwrap_err().contains("signature"));
    }

    /// `image` encodes `width` × `height` grey pixels as `format`.
    fn encoded(format: image::ImageFormat, width: u32, height: u32) -> Vec<u8> {
        let pixels = image::RgbImage::from_pixel(width, height, image::Rgb([90, 120, 200]));
        let mut bytes = std::io::Cursor::new(Vec::new());
        pixels.write_to(&mut bytes, format).unwrap();
        bytes.into_inner()
    }

    #[test]
    fn jpeg_and_webp_dimensions_are_read_from_their_headers() {
        let jpeg = encoded(image::ImageFormat::Jpeg, 300, 200);
        assert_eq!(jpeg_dimensions(&jpeg), Ok((300, 200)));
        assert_eq!(check_format("image/jpeg", &jpeg, 60_000), Ok(()));
        assert!(
            check_format("image/jpeg", &jpeg, 59_999)
                .unwrap_err()
                .contains("300×200")
        );
        let webp = encoded(image::ImageFormat::WebP, 301, 17);
        assert_eq!(webp_dimensions(&webp), Ok((301, 17)));
        assert!(check_format("image/webp", &webp, 5_000).unwrap_err().contains("301×17"));
    }

    #[test]
    fn lossy_and_extended_webp_headers_are_read() {
        // VP8: frame tag (3 bytes), start code, 14-bit width and height with 2 scale bits each.
        let mut lossy = b"RIFF\0\0\0\0WEBPVP8 \x0a\0\0\0".to_vec();
        lossy.extend([0, 0, 0, 0x9d, 0x01, 0x2a]);
        lossy.extend((640u16 | 0x4000).to_le_bytes());
        lossy.extend(480u16.to_le_bytes());
        assert_eq!(webp_dimensions(&lossy), Ok((640, 480)));
        let mut extended = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0".to_vec();
        extended.extend([0; 4]);
        extended.extend(&99_999u32.to_le_bytes()[..3]);
        extended.extend(&49_999u32.to_le_bytes()[..3]);
        assert_eq!(webp_dimensions(&extended), Ok((100_000, 50_000)));
        assert!(
            check_format("image/webp", &extended, 100_000_000)
                .unwrap_err()
                .contains("megapixels")
        );
        assert!(webp_dimensions(&lossy[..24]).is_err());
    }

    #[test]
    fn a_jpeg_claiming_huge_dimensions_or_without_a_frame_is_refused() {
        let mut huge = vec![0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0, 0xff, 0xc0, 0, 11, 8];
        huge.extend(60_000u16.to_be_bytes());
        huge.extend(60_000u16.to_be_bytes());
        huge.extend([1, 1, 0x11, 0]);
        assert_eq!(jpeg_dimensions(&huge), Ok((60_000, 60_000)));
        assert!(
            check_format("image/jpeg", &huge, 100_000_000)
                .unwrap_err()
                .contains("60000×60000")
        );
        assert!(check_format("image/jpeg", &[0xff, 0xd8, 0xff, 0xe0], 1).is_err());
        assert!(check_format("image/jpeg", &[0xff, 0xd8, 0xff, 0xda, 0, 2], 1).is_err());
        assert!(check_format("image/jpeg", b"\x89PNG", 1).is_err());
    }

    #[test]
    fn other_image_types_are_checked_by_signature() {
        assert!(check_format("image/gif", b"GIF89a...", 1).is_ok());
        assert!(check_format("image/webp", b"RIFF\0\0\0\0AVI ", 1).is_err());
    }
}
