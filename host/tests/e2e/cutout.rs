//! The built-in `cutout` kind end to end: GrabCut inside the sandbox, its PNG decoded and checked against
//! a scene with a known mask, and a real photograph.

use crate::common::*;
use guest_cutout::scene::{Scene, iou, synthetic};
use image::{DynamicImage, GenericImageView};
use serde_json::{Value, json};

/// A public-domain photograph shipped with matplotlib (see host/tests/data/README.md).
const PHOTO: &[u8] = include_bytes!("../data/grace_hopper.jpg");

fn rect(scene: &Scene) -> Value {
    let r = scene.rect;
    json!({"x": r.x, "y": r.y, "width": r.width, "height": r.height})
}

/// Runs a cutout job on `input` and returns its decoded result.
async fn cutout(kiln: &Kiln, params: Value, input: Vec<u8>) -> DynamicImage {
    let doc = run_multipart(kiln, "cutout", params, input, "in.png").await;
    result_image(kiln, &doc).await
}

fn opaque(image: &DynamicImage) -> Vec<bool> {
    image.to_rgba8().pixels().map(|p| p[3] == 255).collect()
}

#[tokio::test]
async fn cuts_the_object_out_of_a_synthetic_scene() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    let scene = synthetic(320, 240);
    let input = encode_png(&scene.image);

    let out = cutout(&kiln, json!({"rect": rect(&scene), "iterations": 5}), input.clone()).await;
    assert_eq!(out.dimensions(), (320, 240));
    let DynamicImage::ImageRgba8(rgba) = &out else {
        panic!("expected RGBA, got {:?}", out.color());
    };
    assert_eq!(rgba.get_pixel(0, 0).0, [0, 0, 0, 0], "background is transparent");
    assert_eq!(rgba.get_pixel(319, 239).0[3], 0);
    let centre = rgba.get_pixel(160, 120).0;
    assert_eq!(centre[3], 255, "foreground is opaque");
    assert_eq!(centre[..3], scene.image.get_pixel(160, 120).0, "with its colour");
    let score = iou(&opaque(&out), &scene.truth);
    assert!(score >= 0.95, "IoU {score}");

    // The mask alone, from the default rectangle.
    let mask = cutout(&kiln, json!({"output": "mask"}), input.clone()).await;
    let DynamicImage::ImageLuma8(grey) = &mask else {
        panic!("expected greyscale, got {:?}", mask.color());
    };
    assert!(grey.pixels().all(|p| p[0] == 0 || p[0] == 255));
    let foreground: Vec<bool> = grey.pixels().map(|p| p[0] == 255).collect();
    let score = iou(&foreground, &scene.truth);
    assert!(score >= 0.95, "IoU of the mask {score}");

    // A foreground stroke outside the rectangle changes the result there.
    let params = json!({
        "rect": rect(&scene),
        "strokes": [{"label": "foreground", "points": [[4, 4], [20, 4]], "radius": 3}]
    });
    let hinted = opaque(&cutout(&kiln, params, input).await);
    assert!(hinted[4 * 320 + 12], "the stroke is foreground");
    assert!(!opaque(&out)[4 * 320 + 12]);
}

#[tokio::test]
async fn bad_params_are_refused_at_submit_or_fail_as_invalid_params() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    let input = encode_png(&synthetic(64, 48).image);
    let b64 = |bytes: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    for params in [
        json!({"iterations": 0}),
        json!({"iterations": 11}),
        json!({"output": "jpeg"}),
        json!({"rect": {"x": 0, "y": 0, "width": 0, "height": 5}}),
        json!({"strokes": [{"label": "maybe", "points": [[1, 1]]}]}),
        json!({"strokes": [{"label": "foreground", "points": [[1, 1]], "radius": 101}]}),
    ] {
        let response = client()
            .post(kiln.url("/v1/jobs/cutout"))
            .json(&json!({"params": params, "input_base64": b64(&input)}))
            .send()
            .await
            .unwrap();
        expect_problem(response, 422).await;
    }
    // What only the image can tell: the job fails, not retried, with a message saying what to change.
    for (params, needle) in [
        (
            json!({"rect": {"x": 60, "y": 0, "width": 10, "height": 10}}),
            "does not lie inside the 64x48 image",
        ),
        (
            json!({"rect": {"x": 0, "y": 0, "width": 64, "height": 48}}),
            "nothing is background",
        ),
    ] {
        let doc = run_multipart(&kiln, "cutout", params, input.clone(), "in.png").await;
        assert_eq!(doc["status"], "failed", "{doc}");
        assert_eq!(doc["error"]["code"], "invalid-params", "{doc}");
        assert!(doc["error"]["message"].as_str().unwrap().contains(needle), "{doc}");
        assert_eq!(doc["attempts"], 1);
    }
    let doc = run_multipart(&kiln, "cutout", json!({}), b"not an image".to_vec(), "in.png").await;
    assert_eq!(doc["error"]["code"], "invalid-input", "{doc}");
}

#[tokio::test]
async fn a_real_photograph_keeps_the_person_and_drops_the_corners() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    // 512x600, a head-and-shoulders portrait before a flag and the sky: the rectangle leaves some of
    // both at the sides and the top.
    let rect = json!({"x": 60, "y": 20, "width": 400, "height": 580});
    let plain = opaque(&cutout(&kiln, json!({"rect": rect}), PHOTO.to_vec()).await);
    // The flag's dark blue is background, and so at first is the navy uniform, which is as dark: one
    // foreground stroke across the jacket tells them apart, GrabCut's usual correction.
    let stroke = json!({"label": "foreground", "points": [[100, 570], [256, 480], [420, 570]], "radius": 12});
    let out = cutout(&kiln, json!({"rect": rect, "strokes": [stroke]}), PHOTO.to_vec()).await;
    assert_eq!(out.dimensions(), (512, 600));
    let hinted = opaque(&out);
    let share = |mask: &[bool], xs: std::ops::Range<usize>, ys: std::ops::Range<usize>| {
        let cells: Vec<bool> = ys.flat_map(|y| xs.clone().map(move |x| mask[y * 512 + x])).collect();
        cells.iter().filter(|k| **k).count() as f64 / cells.len() as f64
    };
    for mask in [&plain, &hinted] {
        for (x, y) in [(2, 2), (509, 2), (30, 300), (490, 300), (2, 597), (509, 597)] {
            assert!(!mask[y * 512 + x], "({x}, {y}) is backdrop");
        }
        let face = share(mask, 200..310, 200..320);
        assert!(face >= 0.9, "only {face:.2} of the face is kept");
    }
    let (before, after) = (share(&plain, 120..400, 500..590), share(&hinted, 120..400, 500..590));
    assert!(
        before < 0.5 && after >= 0.85,
        "the jacket: {before:.2} kept without the stroke, {after:.2} with"
    );
}

/// The largest image the default setting allows, with the default (nearly whole-image) rectangle: the
/// graph's peak fits the kind's memory limit; one pixel more is refused before decoding.
#[tokio::test]
async fn the_largest_allowed_image_fits_the_memory_limit() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    let scene = synthetic(2000, 1500);
    let out = cutout(
        &kiln,
        json!({"iterations": 1, "output": "mask"}),
        encode_png(&scene.image),
    )
    .await;
    assert_eq!(out.dimensions(), (2000, 1500));
    let score = iou(
        &out.to_luma8().pixels().map(|p| p[0] == 255).collect::<Vec<_>>(),
        &scene.truth,
    );
    assert!(score >= 0.95, "IoU {score}");

    let over = encode_png(&image::RgbImage::new(2000, 1501));
    let doc = run_multipart(&kiln, "cutout", json!({}), over, "in.png").await;
    assert_eq!(doc["error"]["code"], "invalid-input", "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("over the limit of 3 megapixels"),
        "{doc}"
    );
}
