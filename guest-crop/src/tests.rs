//! End-to-end tests of [`run`] on synthetic images built in memory.

use std::time::{Duration, Instant};

use image::codecs::png::PngEncoder;
use image::{ColorType, DynamicImage, ImageEncoder, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

use kiln_guest::test::TestHost;
use kiln_guest::test::images::{coordinates, encoded};
use kiln_guest::{ErrorCode, JobError};

use crate::Crop;

/// Runs a job with the kind's defaults; its output must be labelled PNG.
fn run(params: &str, input: &[u8]) -> Result<Vec<u8>, JobError> {
    kiln_guest::test::output::<Crop>("image/png", params, input)
}

/// Runs a job that must succeed and decodes its output, which must be a PNG.
fn run_ok(params: &str, input: &[u8]) -> DynamicImage {
    let out = run(params, input).unwrap_or_else(|e| panic!("{params}: {e}"));
    assert!(out.starts_with(b"\x89PNG\r\n\x1a\n"), "output is not a PNG");
    image::load_from_memory_with_format(&out, ImageFormat::Png).unwrap()
}

fn run_err(params: &str, input: &[u8]) -> JobError {
    match run(params, input) {
        Ok(_) => panic!("{params}: expected an error"),
        Err(e) => e,
    }
}

fn assert_err(e: &JobError, code: ErrorCode, needle: &str) {
    assert_eq!(e.code, code, "{e}");
    assert!(e.message.contains(needle), "{e:?} should mention {needle:?}");
}

const LOSSLESS: [ImageFormat; 4] = [ImageFormat::Png, ImageFormat::Bmp, ImageFormat::Tiff, ImageFormat::WebP];

#[test]
fn empty_params_reencode_lossless_formats_exactly() {
    let src = coordinates(256, 256, 0);
    for format in LOSSLESS {
        let out = run_ok("{}", &encoded(&src.clone().into(), format));
        assert_eq!(out.color(), ColorType::Rgb8, "{format:?}");
        assert_eq!(out.to_rgb8(), src, "{format:?}");
    }
}

#[test]
fn png_checksums_are_not_verified() {
    // Decoding skips the CRC-32s and the Adler-32 for speed in wasm (png_input.rs): a PNG whose checksums
    // are all wrong decodes to the same pixels.
    let src = coordinates(64, 48, 0);
    let mut png = encoded(&src.clone().into(), ImageFormat::Png);
    let ihdr_crc = 8 + 4 + 4 + 13;
    png[ihdr_crc] ^= 0xff;
    let iend_crc = png.len() - 4;
    png[iend_crc] ^= 0xff;
    let idat_end = iend_crc - 8; // the IDAT's CRC sits before IEND's length and type
    png[idat_end - 1] ^= 0xff; // the last byte of the zlib stream: its Adler-32
    png[idat_end + 3] ^= 0xff; // the IDAT's CRC
    assert_eq!(run_ok("{}", &png).to_rgb8(), src);
}

#[test]
fn lossy_and_palette_formats_decode() {
    let src = DynamicImage::from(coordinates(64, 48, 0));
    let jpeg = run_ok("{}", &encoded(&src, ImageFormat::Jpeg));
    assert_eq!((jpeg.width(), jpeg.height(), jpeg.color()), (64, 48, ColorType::Rgb8));
    let px = jpeg.to_rgb8().get_pixel(40, 30).0;
    assert!(px[0].abs_diff(40) <= 8 && px[1].abs_diff(30) <= 8, "{px:?}");

    // GIF decodes to RGBA; few colours so the palette holds them exactly.
    let flat = RgbImage::from_fn(20, 10, |x, _| if x < 10 { Rgb([255, 0, 0]) } else { Rgb([0, 0, 255]) });
    let gif = run_ok("{}", &encoded(&flat.into(), ImageFormat::Gif));
    assert_eq!((gif.width(), gif.height()), (20, 10));
    assert_eq!(gif.to_rgb8().get_pixel(2, 2).0, [255, 0, 0]);
    assert_eq!(gif.to_rgb8().get_pixel(15, 2).0, [0, 0, 255]);
}

#[test]
fn crop_keeps_exact_pixels_in_every_lossless_format() {
    let src = DynamicImage::from(coordinates(256, 256, 0));
    for format in LOSSLESS {
        let out = run_ok(
            r#"{"crop":{"x":10,"y":20,"width":50,"height":40}}"#,
            &encoded(&src, format),
        )
        .to_rgb8();
        assert_eq!(out.dimensions(), (50, 40), "{format:?}");
        assert_eq!(out.get_pixel(0, 0).0, [10, 20, 0], "{format:?}");
        assert_eq!(out.get_pixel(49, 39).0, [59, 59, 0], "{format:?}");
        assert_eq!(out, src.crop_imm(10, 20, 50, 40).to_rgb8(), "{format:?}");
    }
}

#[test]
fn crop_of_whole_image_and_last_pixel() {
    let png = encoded(&coordinates(256, 256, 0).into(), ImageFormat::Png);
    let all = run_ok(r#"{"crop":{"x":0,"y":0,"width":256,"height":256}}"#, &png);
    assert_eq!(all.to_rgb8(), coordinates(256, 256, 0));
    let last = run_ok(r#"{"crop":{"x":255,"y":255,"width":1,"height":1}}"#, &png).to_rgb8();
    assert_eq!(last.dimensions(), (1, 1));
    assert_eq!(last.get_pixel(0, 0).0, [255, 255, 0]);
}

#[test]
fn resize_one_side_keeps_aspect() {
    let png = encoded(&coordinates(256, 128, 0).into(), ImageFormat::Png);
    let w = run_ok(r#"{"resize":{"width":64}}"#, &png);
    assert_eq!((w.width(), w.height()), (64, 32));
    let h = run_ok(r#"{"resize":{"height":64}}"#, &png);
    assert_eq!((h.width(), h.height()), (128, 64));
}

#[test]
fn fit_modes_give_documented_sizes() {
    let png = encoded(&coordinates(256, 128, 0).into(), ImageFormat::Png);
    for (fit, size) in [
        ("", (100, 100)), // fill is the default
        (r#","fit":"fill""#, (100, 100)),
        (r#","fit":"contain""#, (100, 50)),
        (r#","fit":"cover""#, (100, 100)),
    ] {
        let out = run_ok(&format!(r#"{{"resize":{{"width":100,"height":100{fit}}}}}"#), &png);
        assert_eq!((out.width(), out.height()), size, "{fit}");
    }
}

#[test]
fn cover_takes_the_centre() {
    // 256x128 covering 64x64 keeps columns 64..192: red runs from about 64 to about 191.
    let png = encoded(&coordinates(256, 128, 0).into(), ImageFormat::Png);
    let out = run_ok(
        r#"{"resize":{"width":64,"height":64,"fit":"cover"},"filter":"nearest"}"#,
        &png,
    )
    .to_rgb8();
    let left = out.get_pixel(0, 0).0[0];
    let right = out.get_pixel(63, 0).0[0];
    assert!((64..=66).contains(&left), "left edge red {left}");
    assert!((188..=191).contains(&right), "right edge red {right}");
}

#[test]
fn crop_then_resize() {
    let png = encoded(&coordinates(256, 256, 0).into(), ImageFormat::Png);
    let out = run_ok(
        r#"{"crop":{"x":100,"y":50,"width":40,"height":20},"resize":{"width":20},"filter":"nearest"}"#,
        &png,
    )
    .to_rgb8();
    assert_eq!(out.dimensions(), (20, 10));
    // Nearest at exactly half size samples one of each 2x2 block of the cropped region.
    let px = out.get_pixel(0, 0).0;
    assert!((100..=101).contains(&px[0]) && (50..=51).contains(&px[1]), "{px:?}");
}

#[test]
fn resize_after_crop_sees_only_the_crop() {
    // Black left half, white right half; the crop keeps only white, so every filter must give white.
    let src = RgbImage::from_fn(40, 10, |x, _| if x < 20 { Rgb([0; 3]) } else { Rgb([255; 3]) });
    let png = encoded(&src.into(), ImageFormat::Png);
    for filter in ["triangle", "catmullrom", "gaussian", "lanczos3"] {
        let params =
            format!(r#"{{"crop":{{"x":20,"y":0,"width":20,"height":10}},"resize":{{"width":7}},"filter":"{filter}"}}"#);
        let out = run_ok(&params, &png).to_rgb8();
        assert_eq!(out.dimensions(), (7, 4), "{filter}");
        assert!(
            out.pixels().all(|p| p.0 == [255; 3]),
            "{filter}: {:?}",
            out.get_pixel(0, 0)
        );
    }
}

#[test]
fn every_filter_runs() {
    let png = encoded(&coordinates(64, 64, 0).into(), ImageFormat::Png);
    for filter in ["nearest", "triangle", "catmullrom", "gaussian", "lanczos3"] {
        let out = run_ok(&format!(r#"{{"resize":{{"width":33}},"filter":"{filter}"}}"#), &png);
        assert_eq!((out.width(), out.height()), (33, 33), "{filter}");
    }
}

#[test]
fn alpha_is_kept_only_when_present() {
    let rgba = RgbaImage::from_fn(8, 8, |x, y| Rgba([x as u8, y as u8, 0, (x * 30) as u8]));
    let out = run_ok("{}", &encoded(&rgba.clone().into(), ImageFormat::Png));
    assert_eq!(out.color(), ColorType::Rgba8);
    assert_eq!(out.to_rgba8(), rgba);

    let gray = DynamicImage::ImageLuma8(image::GrayImage::from_fn(8, 8, |x, _| image::Luma([x as u8])));
    let out = run_ok("{}", &encoded(&gray, ImageFormat::Png));
    assert_eq!(out.color(), ColorType::Rgb8);
    assert_eq!(out.to_rgb8().get_pixel(5, 0).0, [5, 5, 5]);
}

#[test]
fn sixteen_bit_becomes_eight_bit() {
    let src =
        image::ImageBuffer::<Rgb<u16>, _>::from_fn(16, 16, |x, y| Rgb([(x * 4096) as u16, (y * 4096) as u16, 65535]));
    let out = run_ok(
        r#"{"crop":{"x":2,"y":3,"width":4,"height":4}}"#,
        &encoded(&src.into(), ImageFormat::Png),
    );
    assert_eq!(out.color(), ColorType::Rgb8);
    assert_eq!(out.to_rgb8().get_pixel(0, 0).0, [32, 48, 255]);
}

#[test]
fn transparent_pixels_do_not_bleed_into_edges() {
    // Opaque white left half, fully transparent black right half: the classic dark-fringe trap.
    let src = RgbaImage::from_fn(64, 8, |x, _| {
        if x < 32 {
            Rgba([255, 255, 255, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    let png = encoded(&src.into(), ImageFormat::Png);
    for filter in ["triangle", "lanczos3"] {
        let out = run_ok(&format!(r#"{{"resize":{{"width":12}},"filter":"{filter}"}}"#), &png).to_rgba8();
        let mut saw_partial = false;
        for p in out.pixels() {
            if p[3] > 0 {
                assert!(p[0] >= 250 && p[1] >= 250 && p[2] >= 250, "{filter}: fringe {p:?}");
            }
            saw_partial |= p[3] > 0 && p[3] < 255;
        }
        assert!(saw_partial, "{filter}: test needs a soft edge");
    }
}

#[test]
fn exif_orientation_is_applied_before_crop() {
    // A little-endian TIFF header with one IFD entry: Orientation (0x0112) = 6, "rotate 90° clockwise".
    let exif: Vec<u8> = [
        &b"II*\0"[..],
        &8u32.to_le_bytes(),
        &1u16.to_le_bytes(),
        &0x0112u16.to_le_bytes(),
        &3u16.to_le_bytes(),
        &1u32.to_le_bytes(),
        &6u16.to_le_bytes(),
        &0u16.to_le_bytes(),
        &0u32.to_le_bytes(),
    ]
    .concat();
    let src = coordinates(30, 20, 0);
    let mut png = Vec::new();
    let mut encoder = PngEncoder::new(&mut png);
    encoder.set_exif_metadata(exif).unwrap();
    encoder
        .write_image(src.as_raw(), 30, 20, image::ExtendedColorType::Rgb8)
        .unwrap();

    let out = run_ok("{}", &png).to_rgb8();
    assert_eq!(out.dimensions(), (20, 30));
    // Clockwise: the source's bottom-left corner becomes the top-left.
    assert_eq!(out.get_pixel(0, 0).0, [0, 19, 0]);
    let out = run_ok(r#"{"crop":{"x":1,"y":2,"width":3,"height":4}}"#, &png).to_rgb8();
    assert_eq!(out.get_pixel(0, 0).0, [2, 18, 0]);
}

#[test]
fn progress_reports_milestones_in_order() {
    let png = encoded(&coordinates(32, 32, 0).into(), ImageFormat::Png);
    let mut host = TestHost::new();
    host.run::<Crop>(r#"{"resize":{"width":16}}"#, &png).unwrap();
    assert_eq!(host.progress(), [0.1, 0.4, 0.7, 1.0]);
    assert!(
        host.logs().iter().any(|l| l.contains("decoded 32x32")),
        "{:?}",
        host.logs()
    );

    let mut host = TestHost::new();
    host.run::<Crop>("{}", b"not an image").unwrap_err();
    assert_eq!(host.progress(), [0.1]);
}

#[test]
fn bad_input_is_invalid_input() {
    assert_err(&run_err("{}", b""), ErrorCode::InvalidInput, "input is empty");
    assert_err(
        &run_err("{}", b"hello, world"),
        ErrorCode::InvalidInput,
        "unknown format",
    );
    assert_err(
        &run_err("{}", b"qoif\0\0\0\x10"),
        ErrorCode::InvalidInput,
        "unsupported image format Qoi",
    );

    let png = encoded(&coordinates(64, 64, 0).into(), ImageFormat::Png);
    for cut in [4, 20, 40, png.len() / 2, png.len() - 13] {
        assert_err(
            &run_err("{}", &png[..cut]),
            ErrorCode::InvalidInput,
            "could not decode image",
        );
    }
    let mut corrupt = png.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid..mid + 16].fill(0xAB);
    assert_err(
        &run_err("{}", &corrupt),
        ErrorCode::InvalidInput,
        "could not decode image",
    );

    for format in [ImageFormat::Bmp, ImageFormat::Tiff, ImageFormat::WebP, ImageFormat::Gif] {
        let bytes = encoded(&coordinates(64, 64, 0).into(), format);
        let e = run_err("{}", &bytes[..bytes.len() / 2]);
        assert_eq!(e.code, ErrorCode::InvalidInput, "{format:?}: {e}");
    }
}

#[test]
fn bad_params_are_invalid_params() {
    let png = encoded(&coordinates(256, 256, 0).into(), ImageFormat::Png);
    for (params, needle) in [
        ("{", "not valid JSON"),
        (r#"{"crop":{"x":0,"y":0,"width":0,"height":10}}"#, "at least 1"),
        (
            r#"{"crop":{"x":200,"y":0,"width":100,"height":10}}"#,
            "does not fit inside the 256x256 image",
        ),
        (r#"{"crop":{"x":0,"y":250,"width":1,"height":7}}"#, "got 1 and 257"),
        (
            r#"{"crop":{"x":4294967295,"y":4294967295,"width":4294967295,"height":4294967295}}"#,
            "does not fit",
        ),
        (
            r#"{"resize":{"width":16384,"height":16384}}"#,
            "over the limit of 40 megapixels",
        ),
        (
            r#"{"crop":{"x":0,"y":0,"width":1,"height":256},"resize":{"width":100}}"#,
            "100x25600, over the limit of 16384 pixels per side",
        ),
        (r#"{"resize":{"width":20000}}"#, "from 1 to 16384, got 20000"),
        (r#"{"rotate":90}"#, "unknown field `rotate`"),
    ] {
        assert_err(&run_err(params, &png), ErrorCode::InvalidParams, needle);
    }
}

/// A PNG chunk: length, type, data, CRC-32 of type and data.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in kind.iter().chain(data) {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    let len = u32::try_from(data.len()).unwrap();
    [&len.to_be_bytes()[..], kind, data, &(!crc).to_be_bytes()].concat()
}

/// A 57-byte PNG whose header claims `width`×`height` RGB8 pixels and whose IDAT holds almost nothing.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    png_header(width, height, 8, 2)
}

/// A PNG with the given IHDR (bit depth, colour type) and a one-byte IDAT.
fn png_header(width: u32, height: u32, depth: u8, color: u8) -> Vec<u8> {
    let ihdr = [
        &width.to_be_bytes()[..],
        &height.to_be_bytes(),
        &[depth, color, 0, 0, 0],
    ]
    .concat();
    // zlib stream of a single zero byte (one scanline's filter byte).
    let idat = [0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01];
    [
        &b"\x89PNG\r\n\x1a\n"[..],
        &chunk(b"IHDR", &ihdr),
        &chunk(b"IDAT", &idat),
        &chunk(b"IEND", &[]),
    ]
    .concat()
}

#[test]
fn decompression_bomb_fails_fast_before_allocating() {
    let bomb = png_claiming(100_000, 100_000);
    assert!(bomb.len() < 100);
    let start = Instant::now();
    let e = run_err("{}", &bomb);
    assert!(start.elapsed() < Duration::from_secs(1), "took {:?}", start.elapsed());
    assert_err(&e, ErrorCode::InvalidInput, "100000x100000");
    assert!(e.message.contains("over the limit of 40 megapixels"), "{e}");

    // A strip longer than the whole budget trips the decoder's own per-side limit.
    let e = run_err("{}", &png_claiming(50_000_000, 1));
    assert_err(&e, ErrorCode::InvalidInput, "too large");

    // The crafted file is otherwise sound: within the limit it decodes (as truncated data).
    let e = run_err("{}", &png_claiming(1000, 1000));
    assert_err(&e, ErrorCode::InvalidInput, "could not decode image");
}

#[test]
fn bmp_bomb_fails_fast() {
    // BITMAPFILEHEADER + BITMAPINFOHEADER claiming 60000x60000 at 24 bits (under the BMP decoder's
    // own 65535 cap, so our budget is what refuses it), with no pixel data.
    let header: Vec<u8> = [
        &b"BM"[..],
        &54u32.to_le_bytes(),
        &0u32.to_le_bytes(),
        &54u32.to_le_bytes(),
        &40u32.to_le_bytes(),
        &60_000i32.to_le_bytes(),
        &60_000i32.to_le_bytes(),
        &1u16.to_le_bytes(),
        &24u16.to_le_bytes(),
        &[0; 24],
    ]
    .concat();
    let start = Instant::now();
    let e = run_err("{}", &header);
    assert!(start.elapsed() < Duration::from_secs(1), "took {:?}", start.elapsed());
    assert_err(&e, ErrorCode::InvalidInput, "60000x60000 (3600.0 megapixels)");
}

#[test]
fn max_megapixels_setting_is_honoured() {
    let png = encoded(&coordinates(256, 256, 0).into(), ImageFormat::Png);
    let with = |value: &str| TestHost::new().setting("max-megapixels", value);
    let e = with("0.06").run::<Crop>("{}", &png).unwrap_err();
    assert_err(
        &e,
        ErrorCode::InvalidInput,
        "256x256 (0.1 megapixels), over the limit of 0.06 megapixels",
    );
    with("0.07").run::<Crop>("{}", &png).unwrap();

    let e = with("0.07")
        .run::<Crop>(r#"{"resize":{"width":300}}"#, &png)
        .unwrap_err();
    assert_err(&e, ErrorCode::InvalidParams, "300x300");

    // Within the pixel budget but 8 bytes a pixel (RGBA, 16 bits): refused on its header.
    let e = with("5").run::<Crop>("{}", &png_header(2400, 2000, 16, 6)).unwrap_err();
    assert_err(
        &e,
        ErrorCode::InvalidInput,
        "2400x2000 in Rgba16, which needs 36 MB to decode",
    );

    let e = with("lots").run::<Crop>("{}", &png).unwrap_err();
    assert_err(&e, ErrorCode::Internal, "max-megapixels");
}

mod manifest {
    use serde_json::Value;

    use kiln_guest::image::{DEFAULT_MEGAPIXELS, SETTING};

    use crate::params::Params;
    use crate::params::tests::parse;

    fn kind() -> Value {
        serde_json::from_str(include_str!("../kind.json")).unwrap()
    }

    #[test]
    fn has_the_agreed_shape() {
        let kind = kind();
        let mut keys: Vec<_> = kind.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "description",
                "input",
                "limits",
                "name",
                "output_media_type",
                "output_media_types",
                "params_schema",
                "settings"
            ]
        );
        // A 40-megapixel RGBA image (160 MB) and its resize buffers need more than the 256 MiB default.
        assert_eq!(kind["limits"], serde_json::json!({"memory_mb": 512}));
        assert_eq!(kind["name"], "crop");
        assert_eq!(kind["output_media_type"], "image/png");
        assert_eq!(kind["input"], "required");
        let settings = kind["settings"].as_object().unwrap();
        assert_eq!(settings.len(), 1);
        assert_eq!(settings[SETTING], DEFAULT_MEGAPIXELS.to_string());
        assert_eq!(
            kind["params_schema"]["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
    }

    /// `params_schema` is what [`Params`] generates (`KILN_UPDATE_MANIFEST=1` rewrites it).
    #[test]
    fn params_schema_is_generated_from_the_params_type() {
        kiln_guest::check_manifest::<Params>(concat!(env!("CARGO_MANIFEST_DIR"), "/kind.json"));
    }

    /// The host validates against the schema, the guest parses: they must agree on every document,
    /// or jobs would be accepted at submit and then fail on structure (or be refused needlessly).
    #[test]
    fn schema_and_parser_agree() {
        let schema = kind()["params_schema"].clone();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let documents = [
            "{}",
            r#"{"crop":{"x":0,"y":0,"width":1,"height":1}}"#,
            r#"{"crop":{"x":4294967295,"y":0,"width":4294967295,"height":1}}"#,
            r#"{"crop":{"x":4294967296,"y":0,"width":1,"height":1}}"#,
            r#"{"crop":{"x":10.0,"y":0,"width":1,"height":1}}"#,
            r#"{"crop":{"x":1.5,"y":0,"width":1,"height":1}}"#,
            r#"{"crop":{"x":1e300,"y":0,"width":1,"height":1}}"#,
            r#"{"crop":{"x":-1,"y":0,"width":1,"height":1}}"#,
            r#"{"crop":{"x":-0.0,"y":0,"width":1,"height":1}}"#,
            r#"{"crop":{"x":0,"y":0,"width":0,"height":1}}"#,
            r#"{"crop":{"x":0,"y":0,"width":1}}"#,
            r#"{"crop":{"x":0,"y":0,"width":1,"height":1,"z":0}}"#,
            r#"{"crop":{"x":"0","y":0,"width":1,"height":1}}"#,
            r#"{"crop":{"x":true,"y":0,"width":1,"height":1}}"#,
            r#"{"crop":{"x":null,"y":0,"width":1,"height":1}}"#,
            r#"{"crop":[0,0,1,1]}"#,
            r#"{"crop":null}"#,
            r#"{"crop":{}}"#,
            r#"{"resize":{"width":1}}"#,
            r#"{"resize":{"height":16384}}"#,
            r#"{"resize":{"width":16385}}"#,
            r#"{"resize":{"width":0}}"#,
            r#"{"resize":{"width":5,"height":5,"fit":"contain"}}"#,
            r#"{"resize":{"width":5,"fit":"cover"}}"#,
            r#"{"resize":{"width":5,"fit":"Cover"}}"#,
            r#"{"resize":{"width":5,"fit":null}}"#,
            r#"{"resize":{"fit":"fill"}}"#,
            r#"{"resize":{}}"#,
            r#"{"resize":{"width":5,"scale":2}}"#,
            r#"{"filter":"lanczos3"}"#,
            r#"{"filter":"catmullrom","resize":{"height":3}}"#,
            r#"{"filter":"bicubic"}"#,
            r#"{"filter":3}"#,
            r#"{"crop":{"x":0,"y":0,"width":1,"height":1},"crop2":{}}"#,
            r#"[]"#,
            r#"[{}]"#,
            r#""crop""#,
            r#"null"#,
            r#"7"#,
        ];
        for text in documents {
            let value: Value = serde_json::from_str(text).unwrap();
            let schema_ok = validator.is_valid(&value);
            let parse_ok = parse(text).is_ok();
            assert_eq!(
                schema_ok, parse_ok,
                "schema says {schema_ok}, parser says {parse_ok} for {text}"
            );
        }
    }
}
