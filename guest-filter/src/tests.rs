//! End-to-end tests of [`run`] on small images built in memory, checked pixel by pixel.

use image::{ColorType, DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

use kiln_guest::test::TestHost;
use kiln_guest::test::images::{coordinates, encoded};
use kiln_guest::{ErrorCode, JobError};

use crate::Filter;

/// Runs a job with the kind's defaults; its output must be labelled PNG.
fn run(params: &str, input: &[u8]) -> Result<Vec<u8>, JobError> {
    kiln_guest::test::output::<Filter>("image/png", params, input)
}

fn png(image: RgbImage) -> Vec<u8> {
    encoded(&image.into(), ImageFormat::Png)
}

/// Runs a job that must succeed; its output must be a PNG, returned decoded.
fn run_ok(params: &str, input: &[u8]) -> DynamicImage {
    let out = run(params, input).unwrap_or_else(|e| panic!("{params}: {e}"));
    assert!(out.starts_with(b"\x89PNG\r\n\x1a\n"), "output is not a PNG");
    image::load_from_memory_with_format(&out, ImageFormat::Png).unwrap()
}

fn run_err(params: &str, input: &[u8]) -> JobError {
    run(params, input).expect_err(params)
}

#[test]
fn no_ops_converts_to_png_unchanged() {
    let source = coordinates(40, 30, 7);
    for format in [ImageFormat::Png, ImageFormat::Bmp, ImageFormat::Tiff] {
        let out = run_ok(r#"{"ops": []}"#, &encoded(&source.clone().into(), format));
        assert_eq!(out.color(), ColorType::Rgb8, "{format:?}");
        assert_eq!(out.to_rgb8(), source, "{format:?}");
    }
}

#[test]
fn flip_horizontal_mirrors_columns() {
    let out = run_ok(
        r#"{"ops": [{"op": "flip", "axis": "horizontal"}]}"#,
        &png(coordinates(40, 30, 7)),
    )
    .to_rgb8();
    assert_eq!(out.dimensions(), (40, 30));
    for (x, y) in [(0, 0), (39, 0), (0, 29), (12, 17)] {
        assert_eq!(out.get_pixel(x, y).0, [(39 - x) as u8, y as u8, 7], "({x}, {y})");
    }
}

#[test]
fn flip_vertical_mirrors_rows() {
    let out = run_ok(
        r#"{"ops": [{"op": "flip", "axis": "vertical"}]}"#,
        &png(coordinates(40, 30, 7)),
    )
    .to_rgb8();
    for (x, y) in [(0, 0), (39, 0), (0, 29), (12, 17)] {
        assert_eq!(out.get_pixel(x, y).0, [x as u8, (29 - y) as u8, 7], "({x}, {y})");
    }
}

#[test]
fn rotate_is_clockwise_and_90_swaps_dimensions() {
    let input = png(coordinates(40, 30, 7));
    // Clockwise by 90: the source's bottom-left corner (0, 29) lands at the top-left.
    let out = run_ok(r#"{"ops": [{"op": "rotate", "degrees": 90}]}"#, &input).to_rgb8();
    assert_eq!(out.dimensions(), (30, 40));
    for (x, y) in [(0, 0), (29, 0), (0, 39), (5, 11)] {
        // Output (x, y) comes from source (y, 29 - x).
        assert_eq!(out.get_pixel(x, y).0, [y as u8, (29 - x) as u8, 7], "({x}, {y})");
    }
    let out = run_ok(r#"{"ops": [{"op": "rotate", "degrees": 180}]}"#, &input).to_rgb8();
    assert_eq!(out.dimensions(), (40, 30));
    assert_eq!(out.get_pixel(0, 0).0, [39, 29, 7]);
    let out = run_ok(r#"{"ops": [{"op": "rotate", "degrees": 270}]}"#, &input).to_rgb8();
    assert_eq!(out.dimensions(), (30, 40));
    // Counter-clockwise by 90: the source's top-right corner (39, 0) lands at the top-left.
    assert_eq!(out.get_pixel(0, 0).0, [39, 0, 7]);
}

#[test]
fn four_quarter_turns_and_two_flips_are_identity() {
    let source = coordinates(33, 17, 7);
    let turn = r#"{"op": "rotate", "degrees": 90}"#;
    let out = run_ok(
        &format!(r#"{{"ops": [{turn}, {turn}, {turn}, {turn}]}}"#),
        &png(source.clone()),
    );
    assert_eq!(out.to_rgb8(), source);
    let flip = r#"{"op": "flip", "axis": "vertical"}"#;
    let out = run_ok(&format!(r#"{{"ops": [{flip}, {flip}]}}"#), &png(source.clone()));
    assert_eq!(out.to_rgb8(), source);
}

#[test]
fn grayscale_makes_a_grey_png_with_equal_channels() {
    let out = run_ok(r#"{"ops": [{"op": "grayscale"}]}"#, &png(coordinates(40, 30, 7)));
    assert_eq!(out.color(), ColorType::L8, "a grey PNG, one channel");
    let rgb = out.to_rgb8();
    assert!(rgb.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    // Pure colours come out at their luma weights (Rec. 709: 0.2126 R + 0.7152 G + 0.0722 B).
    let primaries = RgbImage::from_fn(3, 1, |x, _| {
        let mut p = [0; 3];
        p[x as usize] = 255;
        Rgb(p)
    });
    let grey = run_ok(r#"{"ops": [{"op": "grayscale"}]}"#, &png(primaries)).to_luma8();
    assert_eq!(grey.as_raw(), &[54, 182, 18]);
}

#[test]
fn invert_flips_colour_channels_and_keeps_alpha() {
    let out = run_ok(r#"{"ops": [{"op": "invert"}]}"#, &png(coordinates(40, 30, 7))).to_rgb8();
    for (x, y) in [(0, 0), (39, 29), (12, 17)] {
        assert_eq!(out.get_pixel(x, y).0, [255 - x as u8, 255 - y as u8, 248], "({x}, {y})");
    }
    let rgba = RgbaImage::from_pixel(2, 2, Rgba([10, 20, 30, 100]));
    let out = run_ok(
        r#"{"ops": [{"op": "invert"}]}"#,
        &encoded(&rgba.into(), ImageFormat::Png),
    );
    assert_eq!(out.color(), ColorType::Rgba8);
    assert_eq!(out.to_rgba8().get_pixel(1, 1).0, [245, 235, 225, 100]);
}

#[test]
fn brighten_adds_and_clamps() {
    let source = RgbImage::from_pixel(2, 2, Rgb([10, 128, 250]));
    let out = run_ok(r#"{"ops": [{"op": "brighten", "value": 20}]}"#, &png(source.clone())).to_rgb8();
    assert_eq!(out.get_pixel(0, 0).0, [30, 148, 255]);
    let out = run_ok(r#"{"ops": [{"op": "brighten", "value": -20}]}"#, &png(source)).to_rgb8();
    assert_eq!(out.get_pixel(1, 1).0, [0, 108, 230]);
}

#[test]
fn blur_keeps_flat_areas_and_spreads_a_dot() {
    // A flat image stays flat, whatever the sigma.
    let flat = RgbImage::from_pixel(20, 20, Rgb([90, 90, 90]));
    let out = run_ok(r#"{"ops": [{"op": "blur", "sigma": 3}]}"#, &png(flat.clone())).to_rgb8();
    assert_eq!(out, flat);
    // A white dot on black spreads out: its centre darkens, its neighbours light up, symmetrically.
    let mut dot = RgbImage::new(21, 21);
    dot.put_pixel(10, 10, Rgb([255, 255, 255]));
    let out = run_ok(r#"{"ops": [{"op": "blur", "sigma": 2}]}"#, &png(dot)).to_rgb8();
    let centre = out.get_pixel(10, 10)[0];
    assert!(centre > 0 && centre < 255, "{centre}");
    assert!(out.get_pixel(11, 10)[0] > 0);
    assert_eq!(out.get_pixel(9, 10), out.get_pixel(11, 10));
    assert_eq!(out.get_pixel(10, 9), out.get_pixel(10, 11));
    assert_eq!(out.get_pixel(0, 0)[0], 0, "far corners stay black");
}

#[test]
fn blur_larger_than_the_image_is_fine() {
    let out = run_ok(r#"{"ops": [{"op": "blur", "sigma": 50}]}"#, &png(coordinates(3, 2, 7)));
    assert_eq!((out.width(), out.height()), (3, 2));
    let out = run_ok(r#"{"ops": [{"op": "blur", "sigma": 50}]}"#, &png(coordinates(1, 1, 7)));
    assert_eq!(out.to_rgb8().get_pixel(0, 0).0, [0, 0, 7]);
}

#[test]
fn ops_apply_in_order() {
    // Flip then rotate differs from rotate then flip.
    let input = png(coordinates(4, 2, 7));
    let a = run_ok(
        r#"{"ops": [{"op": "flip", "axis": "horizontal"}, {"op": "rotate", "degrees": 90}]}"#,
        &input,
    )
    .to_rgb8();
    let b = run_ok(
        r#"{"ops": [{"op": "rotate", "degrees": 90}, {"op": "flip", "axis": "horizontal"}]}"#,
        &input,
    )
    .to_rgb8();
    assert_eq!(a.dimensions(), (2, 4));
    assert_ne!(a, b);
    // Flipped horizontally, (0, 0) holds source (3, 0); rotating clockwise puts the bottom-left,
    // flipped (0, 1) = source (3, 1), at the top-left.
    assert_eq!(a.get_pixel(0, 0).0, [3, 1, 7]);
    // Rotated, (0, 0) holds source (0, 1); flipping then brings rotated (1, 0) = source (0, 0) there.
    assert_eq!(b.get_pixel(0, 0).0, [0, 0, 7]);
}

#[test]
fn progress_is_reported_per_op_and_logged() {
    let mut host = TestHost::new();
    let params =
        r#"{"ops": [{"op": "invert"}, {"op": "grayscale"}, {"op": "rotate", "degrees": 90}, {"op": "invert"}]}"#;
    host.run::<Filter>(params, &png(coordinates(8, 8, 7))).unwrap();
    let expected = [0.1, 0.3, 0.5, 0.7, 0.9, 1.0];
    assert_eq!(host.progress().len(), expected.len(), "{:?}", host.progress());
    for (got, want) in host.progress().iter().zip(expected) {
        assert!((got - want).abs() < 1e-6, "{:?}", host.progress());
    }
    assert!(
        host.logs().iter().any(|l| l.contains("ops[2]: rotate done, now 8x8")),
        "{:?}",
        host.logs()
    );
}

#[test]
fn params_are_checked_before_the_input() {
    let e = run_err(r#"{"ops": [{"op": "rotate", "degrees": 45}]}"#, b"not an image");
    assert_eq!(e.code, ErrorCode::InvalidParams, "{e}");
}

#[test]
fn bad_input_is_invalid_input() {
    let input = png(coordinates(10, 10, 7));
    for (bytes, needle) in [
        (&b""[..], "input is empty"),
        (&b"definitely not an image"[..], "unknown format"),
        (&input[..input.len() / 2], "could not decode image"),
    ] {
        let e = run_err(r#"{"ops": []}"#, bytes);
        assert_eq!(e.code, ErrorCode::InvalidInput, "{e}");
        assert!(e.message.contains(needle), "{e}");
    }
}

#[test]
fn images_over_the_budget_are_refused_before_decoding() {
    let mut host = TestHost::new().setting("max-megapixels", "0.001"); // 1000 pixels
    let e = host
        .run::<Filter>(r#"{"ops": []}"#, &png(coordinates(40, 30, 7)))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput, "{e}");
    assert!(
        e.message
            .contains("40x30 (0.0 megapixels), over the limit of 0.001 megapixels"),
        "{e}"
    );
    assert!(
        host.run::<Filter>(r#"{"ops": []}"#, &png(coordinates(40, 25, 7)))
            .is_ok()
    );

    let mut host = TestHost::new().setting("max-megapixels", "lots");
    let e = host
        .run::<Filter>(r#"{"ops": []}"#, &png(coordinates(4, 4, 7)))
        .unwrap_err();
    assert_eq!(
        e.code,
        ErrorCode::Internal,
        "an operator's mistake, not the user's: {e}"
    );
}
