//! The HTTP API v1 end to end: real Redis, the real `kiln` binary, the real components.

use crate::common::*;
use base64::Engine as _;
use image::GenericImageView;
use serde_json::{Value, json};
use std::time::Duration;

const JOB_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) async fn submit_json(kiln: &Kiln, kind: &str, body: Value) -> reqwest::Response {
    client()
        .post(kiln.url(&format!("/v1/jobs/{kind}")))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Submits, expects 202, waits for the job to end and returns its final document.
async fn run_job(kiln: &Kiln, kind: &str, body: Value) -> Value {
    let response = submit_json(kiln, kind, body).await;
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let doc: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/v1/jobs/{}", doc["id"].as_str().unwrap()));
    assert_eq!(doc["status"], "queued");
    wait_final(kiln, doc["id"].as_str().unwrap(), JOB_TIMEOUT).await
}

async fn download(kiln: &Kiln, doc: &Value) -> Vec<u8> {
    assert_eq!(doc["status"], "succeeded", "{doc}");
    let response = client()
        .get(kiln.url(doc["result_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    let id = doc["id"].as_str().unwrap();
    assert_eq!(
        response.headers()["content-disposition"].to_str().unwrap(),
        format!("attachment; filename=\"{id}.png\"")
    );
    response.bytes().await.unwrap().to_vec()
}

/// The smallest valid plot params.
fn tiny_plot(title: &str) -> Value {
    json!({"params": {"title": title, "series": [{"x": [0, 1], "y": [0, 1]}]}})
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn plot_job_renders_a_png_of_the_requested_size() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    let doc = run_job(
        &kiln,
        "plot",
        json!({"params": {
            "type": "line", "title": "Growth", "x_label": "year", "y_label": "value",
            "width": 640, "height": 400,
            "series": [
                {"name": "a", "x": [1, 2, 3, 4], "y": [1, 4, 9, 16]},
                {"name": "b", "x": [1, 2, 3, 4], "y": [2, 3, 5, 8]}
            ]
        }}),
    )
    .await;
    assert_eq!(doc["progress"], 1.0);
    assert_eq!(doc["attempts"], 1);
    assert!(doc["started_at"].is_string() && doc["finished_at"].is_string() && doc["expires_at"].is_string());
    let png = download(&kiln, &doc).await;
    let image = decode_png(&png).to_rgb8();
    assert_eq!(image.dimensions(), (640, 400));
    let dark = image.pixels().filter(|p| p.0.iter().all(|&c| c < 80)).count();
    assert!(dark > 500, "a chart with text and axes has dark pixels; found {dark}");
    let distinct: std::collections::HashSet<_> = image.pixels().map(|p| p.0).collect();
    assert!(distinct.len() > 4, "two series in distinct colours, axes and text");
    std::fs::write(std::env::temp_dir().join("kiln-test-plot.png"), &png).unwrap();
}

#[tokio::test]
async fn plot_from_csv_input_multipart() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    let mut csv = String::from("year,a,b\n");
    for year in 1995..=2025 {
        csv.push_str(&format!("{year},{},{}\n", year - 1990, (year - 1990) * 2));
    }
    let params = json!({"csv": {"x": "year", "y": ["a", "b"]}, "start": 2001, "end": 2021, "title": "Seed"});
    let doc = run_multipart(&kiln, "plot", params, csv.into_bytes(), "data.csv").await;
    let image = decode_png(&download(&kiln, &doc).await);
    assert_eq!(image.dimensions(), (800, 600), "the default size");
}

#[tokio::test]
async fn crop_json_cuts_exactly_the_requested_rectangle() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    let source = coordinate_image(200, 150);
    let doc = run_job(
        &kiln,
        "crop",
        json!({
            "params": {"crop": {"x": 10, "y": 20, "width": 64, "height": 32}},
            "input_base64": b64(&encode_png(&source)),
        }),
    )
    .await;
    let image = decode_png(&download(&kiln, &doc).await).to_rgb8();
    assert_eq!(image.dimensions(), (64, 32));
    for (x, y) in [(0, 0), (63, 0), (0, 31), (63, 31), (17, 9)] {
        assert_eq!(
            image.get_pixel(x, y).0,
            [(x + 10) as u8, (y + 20) as u8, 128],
            "pixel ({x}, {y})"
        );
    }
}

#[tokio::test]
async fn crop_multipart_with_resize_and_other_formats() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    let source = coordinate_image(240, 120);
    let mut jpeg = std::io::Cursor::new(Vec::new());
    source.write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
    let params = json!({"resize": {"width": 60}, "filter": "triangle"});
    let doc = run_multipart(&kiln, "crop", params, jpeg.into_inner(), "in.jpg").await;
    let image = decode_png(&download(&kiln, &doc).await);
    assert_eq!(image.dimensions(), (60, 30), "width only keeps the aspect ratio");
    // Re-encode only (no params): same size, same pixels.
    let doc = run_job(&kiln, "crop", json!({"input_base64": b64(&encode_png(&source))})).await;
    let image = decode_png(&download(&kiln, &doc).await).to_rgb8();
    assert_eq!(image, source);
}

#[tokio::test]
async fn bad_jobs_fail_with_clear_codes_and_the_worker_carries_on() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    let png = encode_png(&coordinate_image(50, 40));

    let outside = run_job(
        &kiln,
        "crop",
        json!({"params": {"crop": {"x": 40, "y": 0, "width": 20, "height": 10}}, "input_base64": b64(&png)}),
    )
    .await;
    assert_eq!(outside["status"], "failed");
    assert_eq!(outside["error"]["code"], "invalid-params", "{outside}");
    assert_eq!(outside["attempts"], 1, "invalid params are not retried");

    let corrupt = run_job(&kiln, "crop", json!({"input_base64": b64(&png[..png.len() / 2])})).await;
    assert_eq!(corrupt["error"]["code"], "invalid-input", "{corrupt}");
    let garbage = run_job(&kiln, "crop", json!({"input_base64": b64(b"definitely not an image")})).await;
    assert_eq!(garbage["error"]["code"], "invalid-input", "{garbage}");

    // A 100000×100000 PNG header over a tiny body: refused before any allocation.
    let bomb = decompression_bomb_png(100_000, 100_000);
    let bomb = run_job(&kiln, "crop", json!({"input_base64": b64(&bomb)})).await;
    assert_eq!(bomb["error"]["code"], "invalid-input", "{bomb}");

    // The result of a failed job is a 409 that carries the error.
    let problem = send_problem(
        client().get(kiln.url(&format!("/v1/jobs/{}/result", outside["id"].as_str().unwrap()))),
        409,
    )
    .await;
    assert_eq!(problem["job_status"], "failed");
    assert_eq!(problem["error"]["code"], "invalid-params");

    // And a good job right after still works.
    let ok = run_job(&kiln, "crop", json!({"input_base64": b64(&png)})).await;
    assert_eq!(ok["status"], "succeeded");
}

/// A valid PNG signature and IHDR claiming `width`×`height`, then a tiny IDAT and IEND.
fn decompression_bomb_png(width: u32, height: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(&mut png, b"IEND", &[]);
    png
}

#[tokio::test]
async fn submit_rejects_bad_requests_with_problems() {
    let redis = Redis::start();
    let kiln = Kiln::api_only(&redis, &["--max-body-bytes", "4096"]);
    let http = client();
    let post = |kind: &str| http.post(kiln.url(&format!("/v1/jobs/{kind}")));

    let body = expect_problem(submit_json(&kiln, "nope", json!({})).await, 404).await;
    assert!(body["detail"].as_str().unwrap().contains("nope"));

    send_problem(
        post("plot")
            .header("content-type", "application/json")
            .body("{\"params\": "),
        400,
    )
    .await;
    let unknown_field = submit_json(&kiln, "plot", json!({"parms": {}})).await;
    expect_problem(unknown_field, 400).await;
    let not_object = submit_json(&kiln, "plot", json!({"params": [1, 2]})).await;
    expect_problem(not_object, 400).await;
    let bad_b64 = submit_json(&kiln, "crop", json!({"input_base64": "***not base64***"})).await;
    let body = expect_problem(bad_b64, 400).await;
    assert_detail_contains(&body, "base64");
    let missing_input = submit_json(&kiln, "crop", json!({"params": {}})).await;
    let body = expect_problem(missing_input, 400).await;
    assert_detail_contains(&body, "input");
    let empty_input = submit_json(&kiln, "crop", json!({"input_base64": ""})).await;
    expect_problem(empty_input, 400).await;

    let typo = submit_json(&kiln, "plot", json!({"params": {"tpye": "line"}})).await;
    let body = expect_problem(typo, 422).await;
    assert_detail_contains(&body, "tpye");
    let wrong_type = submit_json(&kiln, "plot", json!({"params": {"width": "wide"}})).await;
    expect_problem(wrong_type, 422).await;
    let bad_filter = submit_json(
        &kiln,
        "crop",
        json!({"params": {"filter": "blurry"}, "input_base64": b64(b"x")}),
    )
    .await;
    expect_problem(bad_filter, 422).await;

    let body = send_problem(
        post("plot").json(&json!({"params": {"title": "x".repeat(10_000)}})),
        413,
    )
    .await;
    assert_detail_contains(&body, "4096");
    let big_form = reqwest::multipart::Form::new().part(
        "input",
        reqwest::multipart::Part::bytes(vec![0u8; 10_000]).file_name("big.png"),
    );
    send_problem(post("crop").multipart(big_form), 413).await;

    let form = reqwest::multipart::Form::new().text("extra", "1");
    send_problem(post("plot").multipart(form), 400).await;
    let form = reqwest::multipart::Form::new().text("params", "{not json");
    send_problem(post("plot").multipart(form), 400).await;

    send_problem(post("plot").header("content-type", "text/plain").body("hi"), 415).await;

    // Nothing above was accepted.
    let list: Value = send_json(http.get(kiln.url("/v1/jobs"))).await;
    assert_eq!(list["jobs"], json!([]));
}

#[tokio::test]
async fn queued_jobs_cancel_list_and_conflict() {
    let redis = Redis::start();
    // API only: nothing runs, so jobs stay queued.
    let kiln = Kiln::api_only(&redis, &[]);
    let http = client();
    let mut ids = Vec::new();
    for i in 0..5 {
        let response = submit_json(&kiln, "plot", tiny_plot(&format!("job {i}"))).await;
        assert_eq!(response.status(), 202);
        let doc: Value = response.json().await.unwrap();
        ids.push(doc["id"].as_str().unwrap().to_owned());
    }

    let problem = send_problem(http.get(kiln.url(&format!("/v1/jobs/{}/result", ids[0]))), 409).await;
    assert_eq!(problem["job_status"], "queued");

    // Newest first, paged by cursor.
    let page: Value = send_json(http.get(kiln.url("/v1/jobs?limit=3"))).await;
    let listed: Vec<&str> = page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[4].as_str(), ids[3].as_str(), ids[2].as_str()]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let page: Value = send_json(http.get(kiln.url(&format!("/v1/jobs?limit=3&cursor={cursor}")))).await;
    let listed: Vec<&str> = page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[1].as_str(), ids[0].as_str()]);
    assert_eq!(page["next_cursor"], Value::Null);

    // Cancel one: it is cancelled at once, and a second cancel conflicts.
    let cancelled: Value = send_json(http.delete(kiln.url(&format!("/v1/jobs/{}", ids[1])))).await;
    assert_eq!(cancelled["status"], "cancelled");
    send_problem(http.delete(kiln.url(&format!("/v1/jobs/{}", ids[1]))), 409).await;

    let filtered: Value = send_json(http.get(kiln.url("/v1/jobs?status=cancelled&kind=plot"))).await;
    assert_eq!(filtered["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["jobs"][0]["id"], ids[1].as_str());
    let none: Value = send_json(http.get(kiln.url("/v1/jobs?kind=crop"))).await;
    assert_eq!(none["jobs"], json!([]));

    for bad in [
        "/v1/jobs?limit=0",
        "/v1/jobs?limit=1000",
        "/v1/jobs?limit=x",
        "/v1/jobs?status=done",
        "/v1/jobs?cursor=zz",
    ] {
        send_problem(http.get(kiln.url(bad)), 400).await;
    }
    for unknown in ["/v1/jobs/not-a-uuid", "/v1/jobs/0190a0a0-0000-7000-8000-000000000000"] {
        send_problem(http.get(kiln.url(unknown)), 404).await;
        send_problem(http.get(kiln.url(&format!("{unknown}/result"))), 404).await;
        send_problem(http.delete(kiln.url(unknown)), 404).await;
    }
    send_problem(http.get(kiln.url("/v2/nothing")), 404).await;
    send_problem(http.put(kiln.url("/v1/jobs")), 405).await;
}

#[tokio::test]
async fn kinds_health_and_readiness() {
    let mut redis = Redis::start();
    let kiln = Kiln::api_only(&redis, &[]);
    let http = client();
    let kinds: Value = send_json(http.get(kiln.url("/v1/kinds"))).await;
    let names: Vec<&str> = kinds["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["crop", "cutout", "plot"]);
    for kind in kinds["kinds"].as_array().unwrap() {
        assert!(!kind["description"].as_str().unwrap().is_empty());
        assert_eq!(kind["params_schema"]["type"], "object");
        assert_eq!(kind["version"].as_str().unwrap().len(), 64);
    }
    assert_eq!(http.get(kiln.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(http.get(kiln.url("/readyz")).send().await.unwrap().status(), 200);

    redis.kill();
    let response = http.get(kiln.url("/readyz")).send().await.unwrap();
    assert_eq!(response.headers()["retry-after"], "1");
    expect_problem(response, 503).await;
    let response = submit_json(&kiln, "plot", tiny_plot("while Redis is down")).await;
    expect_problem(response, 503).await;
    assert_eq!(http.get(kiln.url("/healthz")).send().await.unwrap().status(), 200);

    redis.restart();
    let ready = answers_200_within(&kiln, "/readyz", 100, Duration::from_millis(100)).await;
    assert!(ready, "the API reconnects once Redis is back");
}

#[tokio::test]
async fn jobs_live_in_redis_under_the_tenant() {
    let redis = Redis::start();
    let kiln = Kiln::api_only(&redis, &[]);
    let response = submit_json(&kiln, "plot", tiny_plot("t")).await;
    let doc: Value = response.json().await.unwrap();
    let id = doc["id"].as_str().unwrap();
    let mut conn = redis.conn();
    let status: String = redis::cmd("HGET")
        .arg(format!("{{kiln}}:job:default:{id}"))
        .arg("status")
        .query(&mut conn)
        .unwrap();
    assert_eq!(status, "queued");
    let queued: Vec<String> = redis::cmd("LRANGE")
        .arg("{kiln}:queue:default")
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .unwrap();
    assert_eq!(queued, [id]);
}

#[tokio::test]
async fn a_kind_may_accept_less_input_than_the_body_limit() {
    let redis = Redis::start();
    // The hostile component, registered under a manifest that caps its input at 1 MiB.
    let kinds = hostile_kinds_dir();
    let manifest = kinds.path().join("hostile.json");
    let mut parsed: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    parsed["limits"] = json!({"max_input_mb": 1});
    std::fs::write(&manifest, parsed.to_string()).unwrap();
    let kiln = Kiln::api_only(&redis, &["--kinds-dir", kinds.path().to_str().unwrap()]);
    let upload = |bytes: usize| {
        let form = reqwest::multipart::Form::new()
            .text("params", json!({"mode": "echo"}).to_string())
            .part(
                "input",
                reqwest::multipart::Part::bytes(vec![7u8; bytes]).file_name("in.bin"),
            );
        client().post(kiln.url("/v1/jobs/hostile")).multipart(form).send()
    };
    let body = expect_problem(upload(2 << 20).await.unwrap(), 413).await;
    assert_detail_contains(&body, "at most 1 MiB");
    assert_eq!(upload(100_000).await.unwrap().status(), 202);
}
