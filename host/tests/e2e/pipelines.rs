//! Pipelines: several kinds in order on one input, as one job, checked whole at submit.

use crate::common::*;
use base64::Engine as _;
use serde_json::{Value, json};
use std::time::Duration;

const JOB_TIMEOUT: Duration = Duration::from_secs(90);

/// Uploads the test guest `guest-filter` as kind `filter`, with `manifest` changed by `edit`.
async fn upload_filter(kiln: &Kiln, edit: impl FnOnce(&mut Value)) {
    let (mut manifest, component) = crate::plugins::test_guest("guest-filter");
    edit(&mut manifest);
    let response = crate::plugins::upload(kiln, "filter", &manifest, &component).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

async fn post(kiln: &Kiln, path: &str, body: Value) -> reqwest::Response {
    client().post(kiln.url(path)).json(&body).send().await.unwrap()
}

async fn accepted(response: reqwest::Response) -> Value {
    let status = response.status();
    let doc: Value = response.json().await.unwrap();
    assert_eq!(status, 202, "{doc}");
    doc
}

async fn result(kiln: &Kiln, id: &str) -> Vec<u8> {
    let response = client()
        .get(kiln.url(&format!("/v1/jobs/{id}/result")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "job {id}");
    response.bytes().await.unwrap().to_vec()
}

fn time(value: &Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(value.as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap()
}

#[tokio::test]
async fn crop_then_filter_gives_the_bytes_of_the_two_jobs_run_one_after_the_other() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    upload_filter(&kiln, |_| {}).await;
    let image = encode_png(&coordinate_image(64, 48));
    let b64 = base64::engine::general_purpose::STANDARD.encode(&image);
    let crop = json!({"crop": {"x": 8, "y": 4, "width": 32, "height": 24}});
    let invert = json!({"ops": [{"op": "invert"}]});

    let queued = accepted(
        post(
            &kiln,
            "/v1/pipelines",
            json!({"steps": [{"kind": "crop", "params": crop}, {"kind": "filter", "params": invert}],
                   "input_base64": b64}),
        )
        .await,
    )
    .await;
    assert_eq!(queued["kind"], "pipeline");
    assert_eq!(queued["steps"].as_array().unwrap().len(), 2, "{queued}");
    assert_eq!(queued["steps"][0]["status"], "pending");
    let id = queued["id"].as_str().unwrap();
    let doc = wait_final(&kiln, id, JOB_TIMEOUT).await;
    assert_eq!(doc["status"], "succeeded", "{doc}");
    assert_eq!(doc["progress"], 1.0);
    for step in doc["steps"].as_array().unwrap() {
        assert_eq!(step["status"], "succeeded", "{doc}");
        assert!(time(&step["started_at"]) <= time(&step["finished_at"]), "{doc}");
    }
    assert!(
        time(&doc["steps"][0]["finished_at"]) <= time(&doc["steps"][1]["started_at"]),
        "{doc}"
    );
    let piped = result(&kiln, id).await;
    // The crop's output, kept beside the job for the filter (and a retry), is held against the byte quota.
    let held: Vec<String> = redis::cmd("ZRANGE")
        .arg("{kiln}:held:default")
        .arg(0)
        .arg(-1)
        .query(&mut redis.conn())
        .unwrap();
    assert!(held.iter().any(|m| m.starts_with(&format!("{id}:step-0/"))), "{held:?}");

    // The same two steps as two jobs, the second on the first's result.
    let first = accepted(
        post(
            &kiln,
            "/v1/jobs/crop",
            json!({"params": crop, "input_base64": b64, "cache": false}),
        )
        .await,
    )
    .await;
    let first_id = first["id"].as_str().unwrap().to_owned();
    wait_final(&kiln, &first_id, JOB_TIMEOUT).await;
    let second = accepted(
        post(
            &kiln,
            "/v1/jobs/filter",
            json!({"params": invert, "input": {"job": first_id}}),
        )
        .await,
    )
    .await;
    let second_id = second["id"].as_str().unwrap().to_owned();
    assert_eq!(wait_final(&kiln, &second_id, JOB_TIMEOUT).await["status"], "succeeded");
    assert_eq!(
        piped,
        result(&kiln, &second_id).await,
        "the pipeline's bytes are the two jobs'"
    );
    let picture = decode_png(&piped).to_rgb8();
    assert_eq!(picture.dimensions(), (32, 24));
    // Inverted: the source pixel (8 + 3, 4 + 2) = (11, 6, 128) becomes (244, 249, 127).
    assert_eq!(picture.get_pixel(3, 2).0, [244, 249, 127]);
    let listed = send_json(client().get(kiln.url("/v1/jobs?kind=pipeline"))).await;
    assert_eq!(listed["jobs"][0]["id"], id, "{listed}");
}

#[tokio::test]
async fn a_failing_middle_step_is_named_and_its_retry_starts_at_it() {
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    let kiln = Kiln::serve(
        &redis,
        &[
            "--kinds-dir",
            kinds.path().to_str().unwrap(),
            "--timeout-secs",
            "1",
            "--max-attempts",
            "2",
        ],
    );
    let image = encode_png(&coordinate_image(64, 48));
    let queued = accepted(
        post(
            &kiln,
            "/v1/pipelines",
            json!({"steps": [
                {"kind": "crop", "params": {"crop": {"x": 0, "y": 0, "width": 16, "height": 16}}},
                {"kind": "hostile", "params": {"mode": "sleep", "ms": 5000}},
                {"kind": "crop", "params": {}}],
                "input_base64": base64::engine::general_purpose::STANDARD.encode(&image)}),
        )
        .await,
    )
    .await;
    let doc = wait_final(&kiln, queued["id"].as_str().unwrap(), JOB_TIMEOUT).await;
    assert_eq!(doc["status"], "failed", "{doc}");
    assert_eq!(doc["attempts"], 2, "{doc}");
    assert_eq!(doc["error"]["code"], "timeout", "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("step 2 of 3 (`hostile`) failed"),
        "{doc}"
    );
    let steps = doc["steps"].as_array().unwrap();
    assert_eq!(
        steps.iter().map(|s| s["status"].as_str().unwrap()).collect::<Vec<_>>(),
        ["succeeded", "failed", "pending"],
        "{doc}"
    );
    // The retry began at step 2: step 1 ran once, in the first attempt, a retry delay and a timeout
    // before step 2's last start.
    let gap = time(&steps[1]["started_at"]) - time(&steps[0]["finished_at"]);
    assert!(
        gap > time::Duration::milliseconds(1500),
        "step 2 last started {gap} after step 1: {doc}"
    );
    let crop_runs = runs_of(&kiln, "crop").await;
    assert_eq!(crop_runs, 1.0, "step 1 ran once over both attempts");
}

#[tokio::test]
async fn pipelines_that_cannot_work_are_refused_at_submit_naming_the_step() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    // A filter that takes only GIF cannot follow crop, which makes PNG, JPEG or WebP.
    upload_filter(&kiln, |m| m["input_media_types"] = json!(["image/gif"])).await;
    let b64 = base64::engine::general_purpose::STANDARD.encode(encode_png(&coordinate_image(8, 8)));
    let refused = |steps: Value| {
        let body = json!({"steps": steps, "input_base64": b64});
        let kiln = &kiln;
        async move { post(kiln, "/v1/pipelines", body).await }
    };
    let problem = expect_problem(refused(json!([{"kind": "crop"}, {"kind": "nope"}])).await, 422).await;
    assert_detail_contains(&problem, "step 2: no job kind named `nope`");
    let problem = expect_problem(refused(json!([{"kind": "crop", "params": {"crop": 3}}])).await, 422).await;
    assert_detail_contains(&problem, "step 1 (`crop`)");
    let problem = expect_problem(
        refused(json!([{"kind": "crop"}, {"kind": "filter", "params": {"ops": []}}])).await,
        422,
    )
    .await;
    assert_detail_contains(&problem, "takes image/gif");
    expect_problem(refused(json!([])).await, 422).await;
    let nine: Vec<Value> = (0..9).map(|_| json!({"kind": "crop"})).collect();
    assert_detail_contains(&expect_problem(refused(json!(nine)).await, 422).await, "1 to 8 steps");
    let nine_outputs: serde_json::Map<String, Value> =
        (0..9).map(|n| (format!("o{n}"), json!([{"kind": "crop"}]))).collect();
    let too_many = post(
        &kiln,
        "/v1/pipelines",
        json!({"outputs": nine_outputs, "input_base64": b64}),
    )
    .await;
    assert_detail_contains(&expect_problem(too_many, 422).await, "at most 8 outputs");
    let long_branch: Vec<Value> = (0..9).map(|_| json!({"kind": "crop"})).collect();
    let too_long = post(
        &kiln,
        "/v1/pipelines",
        json!({"outputs": {"a": long_branch}, "input_base64": b64}),
    )
    .await;
    assert_detail_contains(&expect_problem(too_long, 422).await, "1 to 8 steps");
    let no_input = post(&kiln, "/v1/pipelines", json!({"steps": [{"kind": "crop"}]})).await;
    assert_detail_contains(&expect_problem(no_input, 400).await, "needs an input");
    let reserved = client()
        .put(kiln.url("/v1/kinds/pipeline"))
        .header("content-type", "application/wasm")
        .body(vec![0u8; 8])
        .send()
        .await
        .unwrap();
    assert_detail_contains(&expect_problem(reserved, 400).await, "reserved");
}

#[tokio::test]
async fn one_pipeline_with_three_named_outputs() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    upload_filter(&kiln, |_| {}).await;
    let image = encode_png(&coordinate_image(64, 48));
    let queued = accepted(
        post(
            &kiln,
            "/v1/pipelines",
            json!({
                "steps": [{"kind": "crop", "params": {"crop": {"x": 4, "y": 2, "width": 40, "height": 30}}}],
                "outputs": {
                    "small": [{"kind": "crop", "params": {"resize": {"width": 10}}}],
                    "large": [{"kind": "crop", "params": {"resize": {"width": 80}}}],
                    "inverted": [{"kind": "filter", "params": {"ops": [{"op": "invert"}]}}]
                },
                "input_base64": base64::engine::general_purpose::STANDARD.encode(&image)
            }),
        )
        .await,
    )
    .await;
    let id = queued["id"].as_str().unwrap();
    let doc = wait_final(&kiln, id, JOB_TIMEOUT).await;
    assert_eq!(doc["status"], "succeeded", "{doc}");
    let outputs: Vec<&str> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["output"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(outputs, ["-", "inverted", "large", "small"], "{doc}");
    let named = |name: &str| {
        let url = kiln.url(&format!("/v1/jobs/{id}/result/{name}"));
        async move {
            let response = client().get(url).send().await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["content-type"], "image/png");
            decode_png(&response.bytes().await.unwrap()).to_rgb8()
        }
    };
    assert_eq!(named("small").await.dimensions(), (10, 8));
    assert_eq!(named("large").await.dimensions(), (80, 60));
    let inverted = named("inverted").await;
    assert_eq!(inverted.dimensions(), (40, 30));
    // The shared crop starts at (4, 2): its pixel (1, 1) is the source's (5, 3, 128), inverted.
    assert_eq!(inverted.get_pixel(1, 1).0, [250, 252, 127]);
    // The job's own result is its first output's.
    assert_eq!(decode_png(&result(&kiln, id).await).to_rgb8(), inverted);
    let missing = client()
        .get(kiln.url(&format!("/v1/jobs/{id}/result/nope")))
        .send()
        .await
        .unwrap();
    assert_detail_contains(&expect_problem(missing, 404).await, "no output named `nope`");
}

/// Runs of `kind` this process counted (`kiln_guest_memory_peak_bytes` has one sample per run).
async fn runs_of(kiln: &Kiln, kind: &str) -> f64 {
    metric_of_kind(kiln, "kiln_guest_memory_peak_bytes_count", kind).await
}

#[tokio::test]
async fn pipeline_steps_are_answered_from_the_result_cache_and_fill_it() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    upload_filter(&kiln, |_| {}).await;
    let b64 = base64::engine::general_purpose::STANDARD.encode(encode_png(&coordinate_image(64, 48)));
    let crop = json!({"crop": {"x": 8, "y": 4, "width": 32, "height": 24}});
    let invert = json!({"ops": [{"op": "invert"}]});
    let cropped = accepted(post(&kiln, "/v1/jobs/crop", json!({"params": crop, "input_base64": b64})).await).await;
    let cropped = cropped["id"].as_str().unwrap().to_owned();
    wait_final(&kiln, &cropped, JOB_TIMEOUT).await;
    assert_eq!(runs_of(&kiln, "crop").await, 1.0);

    let spec = |cache: bool| {
        json!({"steps": [{"kind": "crop", "params": crop}, {"kind": "filter", "params": invert}],
               "input_base64": b64, "cache": cache})
    };
    let piped = accepted(post(&kiln, "/v1/pipelines", spec(true)).await).await;
    let doc = wait_final(&kiln, piped["id"].as_str().unwrap(), JOB_TIMEOUT).await;
    assert_eq!(doc["status"], "succeeded", "{doc}");
    assert_eq!(
        doc["steps"][0]["cached"], true,
        "the crop step was answered by the crop job: {doc}"
    );
    assert!(doc["steps"][1].get("cached").is_none(), "{doc}");
    assert_eq!(
        (runs_of(&kiln, "crop").await, runs_of(&kiln, "filter").await),
        (1.0, 1.0)
    );

    // Its last step filled the cache: the same filter on the crop's bytes is answered from it.
    let crop_bytes = base64::engine::general_purpose::STANDARD.encode(result(&kiln, &cropped).await);
    let hit = post(
        &kiln,
        "/v1/jobs/filter",
        json!({"params": invert, "input_base64": crop_bytes}),
    )
    .await;
    assert_eq!(hit.status(), 200);
    let hit: Value = hit.json().await.unwrap();
    assert_eq!(hit["cached"], true, "{hit}");
    assert_eq!(
        result(&kiln, hit["id"].as_str().unwrap()).await,
        result(&kiln, piped["id"].as_str().unwrap()).await
    );

    // `"cache": false` runs every step.
    let forced = accepted(post(&kiln, "/v1/pipelines", spec(false)).await).await;
    wait_final(&kiln, forced["id"].as_str().unwrap(), JOB_TIMEOUT).await;
    assert_eq!(
        (runs_of(&kiln, "crop").await, runs_of(&kiln, "filter").await),
        (2.0, 2.0)
    );
}
