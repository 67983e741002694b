//! Holds a result to what it claims: its size, the media type its kind declares, and for images a file
//! of that format. A PNG is walked chunk by chunk: its header may not claim more pixels than the
//! operator allows (whoever downloads it decodes it), and it must be complete up to `IEND`.

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
    if output.media_type != request.expected_media_type {
        return invalid(format!(
            "the job returned media type `{}` but its kind declares `{}`",
            output.media_type, request.expected_media_type
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
/// for PNG, also its dimensions and completeness. The others are checked by their signature only, for now.
fn check_format(media_type: &str, data: &[u8], max_pixels: u64) -> Result<(), String> {
    let signature_ok = match media_type {
        "image/png" => return check_png(data, max_pixels),
        "image/jpeg" => data.starts_with(&[0xff, 0xd8, 0xff]),
        "image/gif" => data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a"),
        "image/webp" => data.len() >= 12 && data.starts_with(b"RIFF") && &data[8..12] == b"WEBP",
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
            first = false;
        }
        if kind == b"IEND" {
            return Ok(());
        }
        rest = &rest[12 + length..];
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

    #[test]
    fn other_image_types_are_checked_by_signature() {
        assert!(check_format("image/jpeg", &[0xff, 0xd8, 0xff, 0xe0], 1).is_ok());
        assert!(check_format("image/jpeg", b"\x89PNG", 1).is_err());
        assert!(check_format("image/gif", b"GIF89a...", 1).is_ok());
        assert!(check_format("image/webp", b"RIFF\0\0\0\0WEBPVP8 ", 1).is_ok());
        assert!(check_format("image/webp", b"RIFF\0\0\0\0AVI ", 1).is_err());
    }
}
