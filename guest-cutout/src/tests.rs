//! The kind end to end, natively: quality on synthetic scenes, params and input errors, the manifest.

use image::{DynamicImage, GenericImageView};
use kiln_guest::test::TestHost;
use kiln_guest::{ErrorCode, JobError};
use serde_json::json;

use crate::Cutout;
use crate::scene::{Scene, iou, synthetic};

fn png(scene: &Scene) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    scene.image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn run(params: serde_json::Value, input: &[u8]) -> Result<DynamicImage, JobError> {
    let output = kiln_guest::run::<Cutout>(&params.to_string(), input)?;
    assert_eq!(output.media_type, "image/png");
    Ok(image::load_from_memory_with_format(&output.data, image::ImageFormat::Png).unwrap())
}

fn rect_json(scene: &Scene) -> serde_json::Value {
    let r = scene.rect;
    json!({"x": r.x, "y": r.y, "width": r.width, "height": r.height})
}

fn alpha_mask(image: &DynamicImage) -> Vec<bool> {
    image.to_rgba8().pixels().map(|p| p[3] == 255).collect()
}

#[test]
fn synthetic_scene_is_cut_out_with_iou_over_095() {
    let scene = synthetic(160, 120);
    let out = run(json!({"rect": rect_json(&scene)}), &png(&scene)).unwrap();
    assert_eq!(out.dimensions(), (160, 120));
    assert!(matches!(out, DynamicImage::ImageRgba8(_)), "{:?}", out.color());
    let rgba = out.to_rgba8();
    for p in rgba.pixels() {
        assert!(p[3] == 0 || p[3] == 255, "alpha is all or nothing");
    }
    assert_eq!(rgba.get_pixel(2, 2).0, [0, 0, 0, 0], "a corner is transparent");
    // The centre is kept with its colour.
    assert_eq!(rgba.get_pixel(80, 60).0[..3], scene.image.get_pixel(80, 60).0);
    assert_eq!(rgba.get_pixel(80, 60).0[3], 255);
    let score = iou(&alpha_mask(&out), &scene.truth);
    assert!(score >= 0.95, "IoU {score}");
}

#[test]
fn default_rect_and_mask_output() {
    let scene = synthetic(120, 100);
    let out = run(json!({"output": "mask", "iterations": 3}), &png(&scene)).unwrap();
    assert!(matches!(out, DynamicImage::ImageLuma8(_)), "{:?}", out.color());
    let grey = out.to_luma8();
    assert!(grey.pixels().all(|p| p[0] == 0 || p[0] == 255));
    let mask: Vec<bool> = grey.pixels().map(|p| p[0] == 255).collect();
    let score = iou(&mask, &scene.truth);
    assert!(score >= 0.95, "IoU {score}");
}

#[test]
fn strokes_change_the_result() {
    // A purple patch inside the rectangle but off the object: no background outside the rectangle
    // looks like it, so plain GrabCut keeps it; a background stroke on it teaches the model otherwise.
    let mut scene = synthetic(120, 100);
    for y in 16..26 {
        for x in 19..29 {
            scene.image.put_pixel(x, y, image::Rgb([150, 40, 190]));
        }
    }
    let input = png(&scene);
    let at = |mask: &[bool], x: usize, y: usize| mask[y * 120 + x];
    let plain = alpha_mask(&run(json!({"rect": rect_json(&scene)}), &input).unwrap());
    assert!(at(&plain, 23, 20), "the patch is kept without hints");
    let params = json!({
        "rect": rect_json(&scene),
        "strokes": [{"label": "background", "points": [[22, 19], [25, 22]], "radius": 2}]
    });
    let hinted = alpha_mask(&run(params, &input).unwrap());
    assert!(!at(&hinted, 27, 24), "the whole patch goes, not only the stroke");
    let score = iou(&hinted, &scene.truth);
    assert!(score >= 0.95, "IoU {score}");
    // A foreground stroke outside the rectangle claims that corner.
    let params = json!({
        "rect": rect_json(&scene),
        "strokes": [{"label": "foreground", "points": [[3, 3]], "radius": 2}]
    });
    let claimed = alpha_mask(&run(params, &input).unwrap());
    assert!(at(&claimed, 3, 3) && !at(&plain, 3, 3));
}

#[test]
fn progress_is_reported_per_iteration() {
    let scene = synthetic(64, 48);
    let mut host = TestHost::new();
    host.enter(|| run(json!({"iterations": 4}), &png(&scene))).unwrap();
    let progress = host.progress();
    assert_eq!(progress.len(), 6, "{progress:?}");
    assert!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");
    assert_eq!(progress.last(), Some(&1.0));
}

fn assert_err(e: &JobError, code: ErrorCode, needle: &str) {
    assert_eq!(e.code, code, "{e}");
    assert!(e.message.contains(needle), "{e}");
}

#[test]
fn bad_params_are_invalid_params() {
    let input = png(&synthetic(40, 30));
    let cases = [
        (
            json!({"rect": {"x": 30, "y": 0, "width": 20, "height": 10}}),
            "does not lie inside the 40x30 image",
        ),
        (
            json!({"rect": {"x": 0, "y": 0, "width": 40, "height": 30}}),
            "nothing is background",
        ),
        (
            json!({"rect": {"x": 5, "y": 5, "width": 10, "height": 10},
                   "strokes": [{"label": "background", "points": [[10, 10]], "radius": 20}]}),
            "nothing is foreground",
        ),
        (json!({"iterations": 0}), "iterations"),
        (json!({"iterations": 11}), "iterations"),
        (json!({"output": "alpha"}), "unknown variant `alpha`"),
        (
            json!({"strokes": [{"label": "maybe", "points": [[1, 1]]}]}),
            "strokes[0].label",
        ),
        (
            json!({"strokes": [{"label": "foreground", "points": []}]}),
            "strokes[0] needs 1 to 1000 points",
        ),
        (
            json!({"strokes": [{"label": "foreground", "points": [[1, 2, 3]]}]}),
            "strokes[0].points[0]",
        ),
        (
            json!({"strokes": [{"label": "foreground", "points": [[1, 1]], "radius": 0}]}),
            "radius must be from 1 to 100",
        ),
        (
            json!({"strokes": [{"label": "foreground", "points": [[0, 0], [100000, 100000], [0, 0]], "radius": 100}]}),
            "the strokes paint about",
        ),
        (json!({"mode": "fast"}), "unknown field `mode`"),
    ];
    for (params, needle) in cases {
        let e = run(params.clone(), &input).expect_err(&params.to_string());
        assert_err(&e, ErrorCode::InvalidParams, needle);
    }
}

#[test]
fn bad_input_is_invalid_input() {
    let input = png(&synthetic(40, 30));
    let e = run(json!({}), b"").unwrap_err();
    assert_err(&e, ErrorCode::InvalidInput, "input is empty");
    let e = run(json!({}), &input[..input.len() / 2]).unwrap_err();
    assert_err(&e, ErrorCode::InvalidInput, "could not decode image");
    let e = run(json!({}), b"BM not really a bitmap").unwrap_err();
    assert_err(&e, ErrorCode::InvalidInput, "unsupported image format Bmp");
    let e = TestHost::new()
        .setting("max-megapixels", "0.001")
        .enter(|| run(json!({}), &input))
        .unwrap_err();
    assert_err(&e, ErrorCode::InvalidInput, "over the limit of 0.001 megapixels");
}

mod manifest {
    use serde_json::Value;

    use crate::params::Params;

    fn kind() -> Value {
        serde_json::from_str(include_str!("../kind.json")).unwrap()
    }

    #[test]
    fn has_the_agreed_shape() {
        let kind = kind();
        assert_eq!(kind["name"], "cutout");
        assert_eq!(kind["output_media_type"], "image/png");
        assert_eq!(kind["input"], "required");
        assert_eq!(kind["settings"], serde_json::json!({"max-megapixels": "3"}));
        // About 200 bytes a pixel at the peak (the graph's arcs and their capacities, nodes, labels, the
        // image) when the rectangle covers most of the image: 3 megapixels fit in 768 MiB.
        assert_eq!(kind["limits"], serde_json::json!({"memory_mb": 768}));
    }

    /// `params_schema` is what [`Params`] generates (`KILN_UPDATE_MANIFEST=1` rewrites it).
    #[test]
    fn params_schema_is_generated_from_the_params_type() {
        kiln_guest::check_manifest::<Params>(concat!(env!("CARGO_MANIFEST_DIR"), "/kind.json"));
    }

    /// The host validates against the schema, the guest parses: they agree on every document.
    #[test]
    fn schema_and_parser_agree() {
        let schema = kind()["params_schema"].clone();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let documents = [
            "{}",
            r#"{"rect":{"x":1,"y":2,"width":3,"height":4},"iterations":10,"output":"mask"}"#,
            r#"{"strokes":[{"label":"foreground","points":[[1,2],[3,4]],"radius":100}]}"#,
            r#"{"strokes":[{"label":"background","points":[[4294967295,0]]}]}"#,
            r#"{"iterations":0}"#,
            r#"{"iterations":11}"#,
            r#"{"rect":{"x":0,"y":0,"width":0,"height":1}}"#,
            r#"{"rect":{"x":0,"y":0,"width":1}}"#,
            r#"{"strokes":[]}"#,
            r#"{"strokes":[{"label":"foreground","points":[]}]}"#,
            r#"{"strokes":[{"label":"foreground","points":[[1]]}]}"#,
            r#"{"strokes":[{"label":"foreground","points":[[1,2,3]]}]}"#,
            r#"{"strokes":[{"label":"foreground","points":[[-1,2]]}]}"#,
            r#"{"strokes":[{"label":"foreground","points":[[4294967296,2]]}]}"#,
            r#"{"strokes":[{"label":"foreground","points":[[1,2]],"radius":0}]}"#,
            r#"{"strokes":[{"label":"foreground","points":[[1,2]],"radius":101}]}"#,
            r#"{"strokes":[{"label":"x","points":[[1,2]]}]}"#,
            r#"{"strokes":null}"#,
            r#"{"output":"png"}"#,
            r#"{"extra":1}"#,
        ];
        for text in documents {
            let value: Value = serde_json::from_str(text).unwrap();
            let by_schema = validator.is_valid(&value);
            let by_parser = kiln_guest::parse::<Params>(text).and_then(|p| p.check()).is_ok();
            assert_eq!(by_schema, by_parser, "{text}: schema {by_schema}, parser {by_parser}");
        }
    }
}

/// The time of one run on the benchmark's 1024×768 scene, natively:
/// `cargo test -p guest-cutout --release -- --ignored --nocapture timing`.
#[test]
#[ignore = "a measurement, not a check; run in release"]
fn timing_on_the_benchmark_scene() {
    let scene = synthetic(1024, 768);
    let input = png(&scene);
    let params = json!({"rect": rect_json(&scene), "iterations": 5});
    for _ in 0..3 {
        let start = std::time::Instant::now();
        let out = run(params.clone(), &input).unwrap();
        let elapsed = start.elapsed();
        let score = iou(&alpha_mask(&out), &scene.truth);
        println!(
            "1024x768, 5 iterations: {:.0} ms, IoU {score:.4}",
            elapsed.as_secs_f64() * 1e3
        );
    }
}
