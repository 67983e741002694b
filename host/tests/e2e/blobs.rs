//! Inputs by reference: blobs uploaded once and used by many jobs, and a finished job's result as the
//! next job's input. References that are not the tenant's, or not there, are refused at submit.

use crate::common::*;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use std::time::Duration;

const JOB_TIMEOUT: Duration = Duration::from_secs(60);
const ADMIN_KEY: &str = "blob-admin-key";

/// Forty years of two columns, `year,a,b`.
fn years_csv() -> Vec<u8> {
    let mut csv = String::from("year,a,b\n");
    for year in 2000..2040 {
        csv.push_str(&format!("{year},{},{}\n", year - 2000, (year * 7) % 13));
    }
    csv.into_bytes()
}

async fn put_blob(kiln: &Kiln, key: Option<&str>, bytes: &[u8], media_type: &str) -> (u16, Value) {
    let mut request = client()
        .post(kiln.url("/v1/blobs"))
        .header("content-type", media_type)
        .body(bytes.to_vec());
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn range_params(start: i64, end: i64) -> Value {
    json!({"csv": {"x": "year", "y": ["a", "b"]}, "start": start, "end": end, "width": 320, "height": 240})
}

/// Submits `kind` with `params` and the input reference `input` as JSON; returns the answer.
async fn submit_ref(kiln: &Kiln, key: Option<&str>, kind: &str, params: Value, input: Value) -> reqwest::Response {
    let mut request = client()
        .post(kiln.url(&format!("/v1/jobs/{kind}")))
        .json(&json!({"params": params, "input": input}));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

async fn accepted_id(response: reqwest::Response) -> String {
    let status = response.status();
    let doc: Value = response.json().await.unwrap();
    assert_eq!(status, 202, "{doc}");
    doc["id"].as_str().unwrap().to_owned()
}

async fn result_bytes(kiln: &Kiln, key: Option<&str>, id: &str) -> Vec<u8> {
    let mut request = client().get(kiln.url(&format!("/v1/jobs/{id}/result")));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "job {id}");
    response.bytes().await.unwrap().to_vec()
}

fn bytes_held(redis: &Redis, tenant: &str) -> i64 {
    let held: Option<i64> = redis::cmd("HGET")
        .arg("{kiln}:bytes")
        .arg(tenant)
        .query(&mut redis.conn())
        .unwrap();
    held.unwrap_or(0)
}

#[tokio::test]
async fn twenty_plot_jobs_over_ranges_of_one_uploaded_csv_blob() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    let csv = years_csv();
    let (status, blob) = put_blob(&kiln, None, &csv, "text/csv").await;
    assert_eq!(status, 201, "{blob}");
    let id = blob["id"].as_str().unwrap().to_owned();
    assert_eq!(id, format!("sha256:{}", kiln::kinds::component_hash(&csv)));
    assert_eq!(blob["size"], csv.len());
    assert_eq!(blob["media_type"], "text/csv");
    // The same bytes again: the same blob, stored and counted once.
    let (status, again) = put_blob(&kiln, None, &csv, "text/csv").await;
    assert_eq!((status, &again["id"]), (200, &blob["id"]));
    assert_eq!(bytes_held(&redis, "default"), csv.len() as i64);
    let downloaded = client().get(kiln.url(&format!("/v1/blobs/{id}"))).send().await.unwrap();
    assert_eq!(downloaded.headers()["content-type"], "text/csv");
    assert_eq!(downloaded.bytes().await.unwrap().as_ref(), csv.as_slice());

    // Twenty ranges, half named in JSON, half in a multipart `input_ref` part; none sends the CSV.
    let mut jobs = Vec::new();
    for n in 0..20 {
        let (start, end) = (2000 + n, 2010 + n);
        let reference = json!({"blob": id});
        let response = if n % 2 == 0 {
            submit_ref(&kiln, None, "plot", range_params(start, end), reference).await
        } else {
            let form = Form::new()
                .text("params", range_params(start, end).to_string())
                .part("input_ref", Part::text(reference.to_string()));
            client()
                .post(kiln.url("/v1/jobs/plot"))
                .multipart(form)
                .send()
                .await
                .unwrap()
        };
        jobs.push(accepted_id(response).await);
    }
    let mut pictures = std::collections::HashSet::new();
    for id in &jobs {
        let doc = wait_final(&kiln, id, JOB_TIMEOUT).await;
        assert_eq!(doc["status"], "succeeded", "{doc}");
        let png = result_bytes(&kiln, None, id).await;
        let image = decode_png(&png);
        assert_eq!((image.width(), image.height()), (320, 240));
        pictures.insert(png);
    }
    assert_eq!(pictures.len(), 20, "each range draws its own picture");

    // The same range from an uploaded copy of the CSV, run again (not from the result cache), draws the
    // same picture as from the blob.
    let form = Form::new()
        .text("params", range_params(2000, 2010).to_string())
        .part("input", Part::bytes(csv.clone()).file_name("data.csv"))
        .text("cache", "false");
    let uploaded = client()
        .post(kiln.url("/v1/jobs/plot"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let uploaded = accepted_id(uploaded).await;
    wait_final(&kiln, &uploaded, JOB_TIMEOUT).await;
    assert_eq!(
        result_bytes(&kiln, None, &uploaded).await,
        result_bytes(&kiln, None, &jobs[0]).await
    );
}

#[tokio::test]
async fn a_job_whose_input_is_another_jobs_result() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    let first = client()
        .post(kiln.url("/v1/jobs/plot"))
        .json(&json!({"params": {"width": 400, "height": 300, "series": [{"x": [0, 1, 2], "y": [2, 0, 1]}]}}))
        .send()
        .await
        .unwrap();
    let first = accepted_id(first).await;
    wait_final(&kiln, &first, JOB_TIMEOUT).await;
    let crop = json!({"crop": {"x": 50, "y": 40, "width": 200, "height": 100}});
    let chained = accepted_id(submit_ref(&kiln, None, "crop", crop.clone(), json!({"job": first})).await).await;
    let doc = wait_final(&kiln, &chained, JOB_TIMEOUT).await;
    assert_eq!(doc["status"], "succeeded", "{doc}");
    let by_reference = result_bytes(&kiln, None, &chained).await;
    let image = decode_png(&by_reference);
    assert_eq!((image.width(), image.height()), (200, 100));

    // The same crop of the downloaded result, uploaded: the same bytes.
    let form = Form::new().text("params", crop.to_string()).part(
        "input",
        Part::bytes(result_bytes(&kiln, None, &first).await).file_name("plot.png"),
    );
    let uploaded = client()
        .post(kiln.url("/v1/jobs/crop"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let uploaded = accepted_id(uploaded).await;
    wait_final(&kiln, &uploaded, JOB_TIMEOUT).await;
    assert_eq!(result_bytes(&kiln, None, &uploaded).await, by_reference);
}

#[tokio::test]
async fn references_that_are_not_the_tenants_or_not_there_are_refused_at_submit() {
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    let kiln = Kiln::serve(
        &redis,
        &[
            "--admin-key",
            ADMIN_KEY,
            "--kinds-dir",
            kinds.path().to_str().unwrap(),
            "--blob-ttl-secs",
            "2",
        ],
    );
    let alice = crate::tenants::add_tenant(&redis, "alice");
    let bob = crate::tenants::add_tenant(&redis, "bob");
    let csv = years_csv();
    let (status, blob) = put_blob(&kiln, Some(&alice), &csv, "text/csv").await;
    assert_eq!(status, 201, "{blob}");
    let blob_id = blob["id"].as_str().unwrap().to_owned();
    let alice_job = accepted_id(
        submit_ref(
            &kiln,
            Some(&alice),
            "plot",
            range_params(2000, 2010),
            json!({"blob": blob_id}),
        )
        .await,
    )
    .await;
    crate::tenants::wait_final_as(&kiln, &alice, &alice_job).await;

    // Bob can neither see nor use Alice's blob or job.
    let (status, _) = {
        let response = client()
            .get(kiln.url(&format!("/v1/blobs/{blob_id}")))
            .bearer_auth(&bob)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), ())
    };
    assert_eq!(status, 404);
    for input in [json!({"blob": blob_id}), json!({"job": alice_job})] {
        let refused = submit_ref(&kiln, Some(&bob), "plot", range_params(2000, 2010), input).await;
        let problem = expect_problem(refused, 422).await;
        assert!(
            problem["type"].as_str().unwrap().ends_with("invalid-reference"),
            "{problem}"
        );
    }
    // A job that has not succeeded, an unknown blob, a malformed reference, both an input and a reference.
    let sleeper = accepted_id(
        client()
            .post(kiln.url("/v1/jobs/hostile"))
            .bearer_auth(&alice)
            .json(&json!({"params": {"mode": "sleep", "ms": 20_000}, "input_base64": "eA=="}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let refused = submit_ref(&kiln, Some(&alice), "crop", json!({}), json!({"job": sleeper})).await;
    assert_detail_contains(&expect_problem(refused, 422).await, "not succeeded");
    let unknown = format!("sha256:{}", "0".repeat(64));
    let refused = submit_ref(&kiln, Some(&alice), "crop", json!({}), json!({"blob": unknown})).await;
    assert_detail_contains(&expect_problem(refused, 422).await, "POST /v1/blobs");
    for bad in [
        json!({"blob": "md5:abc"}),
        json!({"blob": blob_id, "job": alice_job}),
        json!({"file": 1}),
    ] {
        expect_problem(submit_ref(&kiln, Some(&alice), "crop", json!({}), bad).await, 400).await;
    }
    let both = client()
        .post(kiln.url("/v1/jobs/crop"))
        .bearer_auth(&alice)
        .json(&json!({"params": {}, "input_base64": "eA==", "input": {"blob": blob_id}}))
        .send()
        .await
        .unwrap();
    expect_problem(both, 400).await;

    // Deleted: gone at once, its bytes released; a submit naming it is refused.
    let alice_id: String = {
        let entry: String = redis::cmd("HGET")
            .arg("{kiln}:tenants")
            .arg("alice")
            .query(&mut redis.conn())
            .unwrap();
        serde_json::from_str::<Value>(&entry).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let before = bytes_held(&redis, &alice_id);
    let deleted = client()
        .delete(kiln.url(&format!("/v1/blobs/{blob_id}")))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(bytes_held(&redis, &alice_id), before - csv.len() as i64);
    let refused = submit_ref(
        &kiln,
        Some(&alice),
        "plot",
        range_params(2000, 2010),
        json!({"blob": blob_id}),
    )
    .await;
    expect_problem(refused, 422).await;

    // Expired (a 2 s TTL here): refused too.
    let (_, blob) = put_blob(&kiln, Some(&alice), b"year,a\n2000,1\n", "text/csv").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let refused = submit_ref(
        &kiln,
        Some(&alice),
        "plot",
        range_params(2000, 2010),
        json!({"blob": blob["id"]}),
    )
    .await;
    expect_problem(refused, 422).await;
}

#[tokio::test]
async fn blobs_past_the_body_limit_or_the_tenants_byte_quota_are_refused() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &["--admin-key", ADMIN_KEY, "--max-body-bytes", "4096"]);
    let small = crate::tenants::add_tenant_with(&redis, "small", &["--max-bytes", "3000"]);
    // Over the request body limit: 413, nothing stored.
    let (status, problem) = put_blob(&kiln, Some(&small), &[7u8; 5000], "application/octet-stream").await;
    assert_eq!(status, 413, "{problem}");
    // Bigger than the tenant may hold at all: 413; then two that fit one at a time but not together: 429.
    let (status, problem) = put_blob(&kiln, Some(&small), &[1u8; 3500], "application/octet-stream").await;
    assert_eq!(status, 413, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("max-bytes"), "{problem}");
    let (status, first) = put_blob(&kiln, Some(&small), &[2u8; 2000], "application/octet-stream").await;
    assert_eq!(status, 201, "{first}");
    let (status, problem) = put_blob(&kiln, Some(&small), &[3u8; 2000], "application/octet-stream").await;
    assert_eq!(status, 429, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("max-bytes"), "{problem}");
    // The same bytes again are not counted twice; deleting the first frees room for the second.
    let (status, _) = put_blob(&kiln, Some(&small), &[2u8; 2000], "application/octet-stream").await;
    assert_eq!(status, 200);
    let deleted = client()
        .delete(kiln.url(&format!("/v1/blobs/{}", first["id"].as_str().unwrap())))
        .bearer_auth(&small)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let (status, second) = put_blob(&kiln, Some(&small), &[3u8; 2000], "application/octet-stream").await;
    assert_eq!(status, 201, "{second}");
    // An empty blob and a made-up media type are 400s.
    let (status, _) = put_blob(&kiln, Some(&small), b"", "text/plain").await;
    assert_eq!(status, 400);
    let (status, _) = put_blob(&kiln, Some(&small), b"x", "not a type").await;
    assert_eq!(status, 400);
}
