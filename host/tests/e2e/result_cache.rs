//! The result cache: a submit whose kind version, params and input match a job of the tenant that
//! succeeded within the TTL is answered from that job's result, with no run.

use crate::common::*;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use std::time::Duration;

const JOB_TIMEOUT: Duration = Duration::from_secs(60);

/// `kiln_run_seconds_count{kind=...}` summed over this process's series: sandbox runs of `kind`.
async fn runs(kiln: &Kiln, kind: &str) -> f64 {
    metric_of_kind(kiln, "kiln_run_seconds_count", kind).await
}

async fn submit_crop(kiln: &Kiln, params: &Value, image: &[u8], cache: Option<&str>) -> (u16, Value) {
    let mut form = Form::new()
        .text("params", params.to_string())
        .part("input", Part::bytes(image.to_vec()).file_name("in.png"));
    if let Some(cache) = cache {
        form = form.text("cache", cache.to_owned());
    }
    let response = client()
        .post(kiln.url("/v1/jobs/crop"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn result(kiln: &Kiln, id: &Value) -> Vec<u8> {
    let response = client()
        .get(kiln.url(&format!("/v1/jobs/{}/result", id.as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn a_repeated_submit_is_answered_from_the_cache_without_a_run() {
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    let kiln = Kiln::serve(&redis, &["--kinds-dir", kinds.path().to_str().unwrap()]);
    let image = encode_png(&coordinate_image(64, 48));
    let params = json!({"crop": {"x": 8, "y": 4, "width": 32, "height": 24}, "resize": {"width": 16}});

    let (status, first) = submit_crop(&kiln, &params, &image, None).await;
    assert_eq!(status, 202, "{first}");
    let done = wait_final(&kiln, first["id"].as_str().unwrap(), JOB_TIMEOUT).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let original = result(&kiln, &first["id"]).await;
    assert_eq!(runs(&kiln, "crop").await, 1.0);

    // The same kind, params (keys in another order) and input: succeeded at once, no attempt, no run.
    let reordered = json!({"resize": {"width": 16}, "crop": {"height": 24, "width": 32, "y": 4, "x": 8}});
    let (status, hit) = submit_crop(&kiln, &reordered, &image, None).await;
    assert_eq!(status, 200, "{hit}");
    assert_eq!(
        (&hit["status"], &hit["cached"], &hit["attempts"]),
        (&json!("succeeded"), &json!(true), &json!(0))
    );
    assert_ne!(hit["id"], first["id"]);
    assert_eq!(result(&kiln, &hit["id"]).await, original);
    let shown = send_json(client().get(kiln.url(&format!("/v1/jobs/{}", hit["id"].as_str().unwrap())))).await;
    assert_eq!(shown["cached"], true, "{shown}");
    assert_eq!(runs(&kiln, "crop").await, 1.0, "a cache hit runs nothing");
    assert_eq!(metric_of_kind(&kiln, "kiln_jobs_cached_total", "crop").await, 1.0);

    // A blob of the same bytes is the same input; `?wait=` answers with the picture itself.
    let blob: Value = send_json(
        client()
            .post(kiln.url("/v1/blobs"))
            .header("content-type", "image/png")
            .body(image.clone()),
    )
    .await;
    let invoked = client()
        .post(kiln.url("/v1/jobs/crop?wait=10"))
        .json(&json!({"params": params, "input": {"blob": blob["id"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(invoked.status(), 200);
    assert_eq!(invoked.headers()["content-type"], "image/png");
    assert_eq!(invoked.bytes().await.unwrap().to_vec(), original);
    assert_eq!(runs(&kiln, "crop").await, 1.0);

    // `cache: false`, other params, another input: each runs.
    let (status, forced) = submit_crop(&kiln, &params, &image, Some("false")).await;
    assert_eq!(status, 202, "{forced}");
    let other = json!({"crop": {"x": 0, "y": 0, "width": 32, "height": 24}, "resize": {"width": 16}});
    let (status, _) = submit_crop(&kiln, &other, &image, None).await;
    assert_eq!(status, 202);
    let (status, _) = submit_crop(&kiln, &params, &encode_png(&coordinate_image(64, 49)), None).await;
    assert_eq!(status, 202);
    let deadline = std::time::Instant::now() + JOB_TIMEOUT;
    while runs(&kiln, "crop").await < 4.0 {
        assert!(std::time::Instant::now() < deadline, "the three jobs did not run");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let forced_doc = wait_final(&kiln, forced["id"].as_str().unwrap(), JOB_TIMEOUT).await;
    assert!(forced_doc.get("cached").is_none(), "{forced_doc}");

    // A kind whose manifest says it is not deterministic is never answered from the cache.
    for _ in 0..2 {
        let response = client()
            .post(kiln.url("/v1/jobs/hostile?wait=10"))
            .json(&json!({"params": {"mode": "noop"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(runs(&kiln, "hostile").await, 2.0);
}
