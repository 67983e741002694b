//! Output formats end to end: `format` and `quality` on crop and cutout, `auto` resolved from
//! the submit's `Accept` header, the result's Content-Type and file name, and the host's header check of
//! a JPEG result.

use crate::common::*;
use image::{DynamicImage, GenericImageView, ImageFormat};
use serde_json::{Value, json};

/// Submits a multipart `kind` job with `accept` as the Accept header, waits, and downloads the result:
/// its Content-Type, its Content-Disposition and its bytes.
async fn run_with_accept(
    kiln: &Kiln,
    kind: &str,
    params: Value,
    input: Vec<u8>,
    accept: Option<&str>,
) -> (String, String, Vec<u8>) {
    let form = reqwest::multipart::Form::new()
        .text("params", params.to_string())
        .part("input", reqwest::multipart::Part::bytes(input).file_name("in"));
    let mut request = client().post(kiln.url(&format!("/v1/jobs/{kind}"))).multipart(form);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let doc: Value = response.json().await.unwrap();
    // 200: answered from the result cache (auto left to the guest keys on the input, rightly).
    assert!(status == 202 || status == 200, "{status}: {doc}");
    let doc = wait_final(kiln, doc["id"].as_str().unwrap(), std::time::Duration::from_secs(60)).await;
    let response = result_response(kiln, &doc).await;
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
    let (media_type, disposition) = (header("content-type"), header("content-disposition"));
    (media_type, disposition, response.bytes().await.unwrap().to_vec())
}

/// Decodes `bytes`, which must be of `format`.
fn decode(bytes: &[u8], format: ImageFormat) -> DynamicImage {
    assert_eq!(image::guess_format(bytes).unwrap(), format);
    image::load_from_memory_with_format(bytes, format).unwrap()
}

fn encode(image: &image::RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A smooth image, so JPEG's error stays small.
fn gradient(width: u32, height: u32) -> image::RgbImage {
    image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x * 2) as u8, (y * 2) as u8, 100]))
}

#[tokio::test]
async fn crop_writes_jpeg_and_webp_with_their_types_and_pixels() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    let source = gradient(120, 100);
    let input = encode_png(&source);
    let crop = json!({"x": 10, "y": 20, "width": 80, "height": 60});
    let expected = image::imageops::crop_imm(&source, 10, 20, 80, 60).to_image();

    let (media_type, disposition, webp) = run_with_accept(
        &kiln,
        "crop",
        json!({"crop": crop, "format": "webp"}),
        input.clone(),
        None,
    )
    .await;
    assert_eq!(media_type, "image/webp");
    assert!(disposition.ends_with(".webp\""), "{disposition}");
    let out = decode(&webp, ImageFormat::WebP);
    assert_eq!(out.to_rgb8(), expected, "webp is lossless");

    let mut sizes = Vec::new();
    for quality in [30, 95] {
        let params = json!({"crop": crop, "format": "jpeg", "quality": quality});
        let (media_type, disposition, jpeg) = run_with_accept(&kiln, "crop", params, input.clone(), None).await;
        assert_eq!(media_type, "image/jpeg");
        assert!(disposition.ends_with(".jpg\""), "{disposition}");
        let out = decode(&jpeg, ImageFormat::Jpeg).to_rgb8();
        assert_eq!(out.dimensions(), (80, 60));
        let worst = out
            .pixels()
            .zip(expected.pixels())
            .flat_map(|(a, b)| a.0.into_iter().zip(b.0).map(|(a, b)| a.abs_diff(b)))
            .max()
            .unwrap();
        assert!(
            worst <= if quality == 95 { 12 } else { 40 },
            "quality {quality}: off by {worst}"
        );
        sizes.push(jpeg.len());
    }
    assert!(sizes[0] < sizes[1], "quality 30 is smaller than 95: {sizes:?}");

    // cutout takes the same params (filter, a plugin, too: its unit tests).
    let params = json!({"iterations": 1, "format": "jpeg"});
    let (media_type, _, bytes) = run_with_accept(&kiln, "cutout", params, input, None).await;
    assert_eq!(media_type, "image/jpeg");
    let flat = decode(&bytes, ImageFormat::Jpeg).to_rgb8();
    assert!(
        flat.get_pixel(0, 0).0.iter().all(|&c| c >= 245),
        "background flattened on white"
    );
}

#[tokio::test]
async fn auto_follows_the_accept_header_then_the_input() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    let source = gradient(64, 48);
    let auto = json!({"format": "auto", "resize": {"width": 32}});
    let browser = Some("image/avif,image/webp,image/apng,image/*,*/*;q=0.8");
    for (input, accept, media_type) in [
        (encode_png(&source), browser, "image/webp"),
        (encode(&source, ImageFormat::Jpeg), browser, "image/webp"),
        (encode_png(&source), Some("*/*"), "image/png"),
        (encode(&source, ImageFormat::Jpeg), None, "image/jpeg"),
        (encode(&source, ImageFormat::Jpeg), Some("image/webp;q=0"), "image/jpeg"),
    ] {
        let (found, _, bytes) = run_with_accept(&kiln, "crop", auto.clone(), input, accept).await;
        assert_eq!(found, media_type, "Accept {accept:?}");
        let format = ImageFormat::from_mime_type(media_type).unwrap();
        assert_eq!(decode(&bytes, format).dimensions(), (32, 24));
    }
}

#[tokio::test]
async fn bad_formats_and_qualities_are_refused_at_submit() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    for params in [
        json!({"format": "gif"}),
        json!({"format": "JPEG"}),
        json!({"format": "jpeg", "quality": 0}),
        json!({"format": "jpeg", "quality": 101}),
    ] {
        let request = client()
            .post(kiln.url("/v1/jobs/crop"))
            .json(&json!({"params": params, "input_base64": "aGk="}));
        let problem = send_problem(request, 422).await;
        assert_detail_contains(&problem, "params do not fit kind `crop`");
    }
}

#[tokio::test]
async fn a_jpeg_result_claiming_too_many_pixels_is_invalid_output() {
    let kinds = hostile_kinds_dir();
    let redis = Redis::start();
    let kiln = Kiln::serve(
        &redis,
        &[
            "--kinds-dir",
            kinds.path().to_str().unwrap(),
            "--max-output-megapixels",
            "1",
        ],
    );
    let kiln = &kiln;
    let run = |params: Value| async move {
        let request = client()
            .post(kiln.url("/v1/jobs/hostile"))
            .json(&json!({"params": params}));
        let doc = send_json(request).await;
        wait_final(kiln, doc["id"].as_str().unwrap(), std::time::Duration::from_secs(60)).await
    };
    let doc = run(json!({"mode": "huge-jpeg", "width": 1001, "height": 1000})).await;
    assert_eq!(doc["status"], "failed", "{doc}");
    assert_eq!(doc["error"]["code"], "invalid-output", "{doc}");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("claims 1001×1000 pixels"), "{message}");
    let doc = run(json!({"mode": "huge-jpeg", "width": 1000, "height": 1000})).await;
    let response = result_response(kiln, &doc).await;
    assert_eq!(response.headers()["content-type"], "image/jpeg");
}
