//! Watching jobs: long-poll (`?wait=N`) and Server-Sent Events.

use crate::common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn submit_spin(kiln: &Kiln, ms: u64) -> String {
    let response = client()
        .post(kiln.url("/v1/jobs/hostile"))
        .json(&json!({"params": {"mode": "spin", "ms": ms}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let doc: Value = response.json().await.unwrap();
    doc["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn events_stream_progress_until_the_job_ends() {
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    let kiln = Kiln::serve(&redis, &["--kinds-dir", kinds.path().to_str().unwrap()]);
    let id = submit_spin(&kiln, 2500).await;
    // The stream closes by itself after the final state, so reading it to the end terminates.
    let body = send_text(client().get(kiln.url(&format!("/v1/jobs/{id}/events")))).await;
    let docs: Vec<Value> = body
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    assert!(body.contains("event: job"), "{body}");
    assert_eq!(docs.last().unwrap()["status"], "succeeded", "{body}");
    let progress: Vec<f64> = docs.iter().map(|d| d["progress"].as_f64().unwrap()).collect();
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "progress only grows: {progress:?}"
    );
    let between: Vec<&f64> = progress.iter().filter(|p| **p > 0.0 && **p < 1.0).collect();
    assert!(
        !between.is_empty(),
        "a 2.5 s job reports progress on the way: {progress:?}"
    );

    send_problem(
        client().get(kiln.url("/v1/jobs/0190a0a0-0000-7000-8000-000000000000/events")),
        404,
    )
    .await;
}

#[tokio::test]
async fn wait_long_polls_for_a_change() {
    let redis = Redis::start();
    // API only: the job stays queued, so a wait runs its full length.
    let kinds = hostile_kinds_dir();
    let kiln = Kiln::api_only(&redis, &["--kinds-dir", kinds.path().to_str().unwrap()]);
    let id = submit_spin(&kiln, 10).await;
    let started = Instant::now();
    let doc: Value = send_json(client().get(kiln.url(&format!("/v1/jobs/{id}?wait=1")))).await;
    assert_eq!(doc["status"], "queued");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited for a change that did not come"
    );

    // A cancel during the wait is a change: the wait ends with it, early.
    let waiter = {
        let url = kiln.url(&format!("/v1/jobs/{id}?wait=30"));
        tokio::spawn(send_json(client().get(url)))
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    client()
        .delete(kiln.url(&format!("/v1/jobs/{id}")))
        .send()
        .await
        .unwrap();
    let doc = waiter.await.unwrap();
    assert_eq!(doc["status"], "cancelled");
    assert!(started.elapsed() < Duration::from_secs(5));

    for bad in ["?wait=x", "?wait=61", "?wait=-1", "?nope=1"] {
        send_problem(client().get(kiln.url(&format!("/v1/jobs/{id}{bad}"))), 400).await;
    }
}

#[tokio::test]
async fn submit_with_wait_returns_the_png_like_a_function_call() {
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    let kiln = Kiln::serve(&redis, &["--kinds-dir", kinds.path().to_str().unwrap()]);
    let http = client();
    let plot = json!({"params": {"title": "invoke", "series": [{"x": [0, 1], "y": [1, 0]}]}});

    // Finishes in time: the PNG itself, with the job's Location.
    let response = submit_plot_and_wait(&kiln, &plot).await;
    assert_eq!(response.headers()["content-type"], "image/png");
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/v1/jobs/")
    );
    assert_eq!(decode_png(&response.bytes().await.unwrap()).width(), 800);

    // The header form, and a job that fails: a 409 problem carrying the error.
    let problem = send_problem(
        http.post(kiln.url("/v1/jobs/hostile"))
            .header("prefer", "respond-async, wait=30")
            .json(&json!({"params": {"mode": "panic"}})),
        409,
    )
    .await;
    assert_eq!(problem["job_status"], "failed");
    assert_eq!(problem["error"]["code"], "trap");

    // Not done within the wait: the usual 202 and job document.
    let response = http
        .post(kiln.url("/v1/jobs/hostile?wait=1"))
        .json(&json!({"params": {"mode": "spin", "ms": 3000}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let doc: Value = response.json().await.unwrap();
    assert!(
        ["queued", "running"].contains(&doc["status"].as_str().unwrap()),
        "{doc}"
    );

    send_problem(http.post(kiln.url("/v1/jobs/plot?wait=99")).json(&plot), 400).await;
}
