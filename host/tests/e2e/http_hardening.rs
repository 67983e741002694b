//! HTTP that a stranger cannot tie up: half-sent requests are dropped after the header-read timeout,
//! requests past the concurrency limit are shed with 503, slow requests time out with a problem, a tenant
//! cannot hold more than its share of event streams and long-polls, `/metrics` on the API needs the admin
//! key, and every answer says `nosniff`.

use crate::common::*;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADMIN_KEY: &str = "hardening-admin-key";

/// `host:port` of a Kiln's API.
fn authority(kiln: &Kiln) -> String {
    kiln.base.trim_start_matches("http://").to_owned()
}

/// Opens a connection and sends `bytes`, leaving the rest of the request unsent.
async fn half_sent(kiln: &Kiln, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(authority(kiln)).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream
}

/// Whether the server closed `stream` (EOF or reset) within `within`; what it sent first is returned too.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> (bool, String) {
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let mut buf = [0u8; 4096];
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (false, String::from_utf8_lossy(&received).into_owned()),
            Ok(Ok(0)) | Ok(Err(_)) => return (true, String::from_utf8_lossy(&received).into_owned()),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn a_slowloris_does_not_stop_a_normal_request_and_is_dropped_after_the_header_timeout() {
    let redis = Redis::start();
    let kiln = Kiln::api_only(&redis, &["--header-timeout-secs", "3"]);
    let started = Instant::now();
    let mut loris = Vec::new();
    for i in 0..300 {
        let head = format!("GET /v1/kinds HTTP/1.1\r\nHost: localhost\r\nX-Slow-{i}: ");
        loris.push(half_sent(&kiln, head.as_bytes()).await);
    }
    // And connections that send nothing at all.
    for _ in 0..20 {
        loris.push(half_sent(&kiln, b"").await);
    }

    let asked = Instant::now();
    assert_eq!(send_status(client().get(kiln.url("/v1/kinds"))).await, 200);
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "a normal request waited {:?} behind 320 half-sent ones",
        asked.elapsed()
    );

    // Each half-sent request is closed once its 3 s are up (generous margin: the machine is loaded).
    for stream in &mut loris {
        let (closed, _) = closed_within(stream, Duration::from_secs(20)).await;
        assert!(
            closed,
            "a half-sent request is still open after {:?}",
            started.elapsed()
        );
    }
    assert!(started.elapsed() >= Duration::from_secs(3), "closed before the timeout");
    assert_eq!(client().get(kiln.url("/healthz")).send().await.unwrap().status(), 200);
}

/// A submit whose headers promise a body it never sends: its handler is running (and holds a permit)
/// while it waits for the body.
const SLOW_SUBMIT: &[u8] = b"POST /v1/jobs/plot HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                              Content-Length: 1000\r\n\r\n{\"params\": ";

/// A slow submit that is in its handler, holding one of the permits. One that is shed at once (a permit
/// was still held by a request just answered, e.g. the submit before) is sent again.
async fn slow_submit_in_flight(kiln: &Kiln) -> TcpStream {
    for _ in 0..50 {
        let mut stream = half_sent(kiln, SLOW_SUBMIT).await;
        let (closed, answer) = closed_within(&mut stream, Duration::from_millis(300)).await;
        if !closed && answer.is_empty() {
            return stream;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no slow submit got into its handler in 50 tries");
}

#[tokio::test]
async fn requests_past_the_concurrency_limit_are_shed_with_503_at_once() {
    let redis = Redis::start();
    let kiln = Kiln::api_only(&redis, &["--max-concurrent-requests", "2"]);
    let http = client();
    let job = send_json(
        http.post(kiln.url("/v1/jobs/plot"))
            .json(&json!({"params": {"series": [{"x": [0, 1], "y": [0, 1]}]}})),
    )
    .await;
    let mut slow = vec![slow_submit_in_flight(&kiln).await, slow_submit_in_flight(&kiln).await];

    // Both slow submits are in their handlers once a third request is refused (generous: a loaded
    // machine may take a while to get them there).
    let deadline = Instant::now() + Duration::from_secs(30);
    let response = loop {
        let response = http.get(kiln.url("/v1/kinds")).send().await.unwrap();
        if response.status() == 503 {
            break response;
        }
        if Instant::now() >= deadline {
            // Say what became of a slow submit, to tell a lost permit from one never taken.
            let (closed, got) = closed_within(&mut slow[0], Duration::from_secs(1)).await;
            panic!(
                "the third request in flight is not shed ({}); a slow submit is closed: {closed}, got {got:?}",
                response.status()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let problem = expect_problem(response, 503).await;
    assert_eq!(problem["type"], "urn:kiln:problem:overloaded", "{problem}");
    assert_detail_contains(&problem, "KILN_MAX_CONCURRENT_REQUESTS");
    // A GET long-poll holds no permit (the per-tenant stream cap bounds those).
    assert_eq!(
        send_status(http.get(kiln.url(&format!("/v1/jobs/{}?wait=1", job["id"].as_str().unwrap())))).await,
        200
    );

    slow.clear();
    let recovered = answers_200_within(&kiln, "/v1/kinds", 100, Duration::from_millis(50)).await;
    assert!(recovered, "permits come back when the slow requests go");
}

#[tokio::test]
async fn a_request_past_its_deadline_is_a_503_problem() {
    let redis = Redis::start();
    let kiln = Kiln::api_only(&redis, &["--request-timeout-secs", "2"]);
    let started = Instant::now();
    let mut slow = half_sent(&kiln, SLOW_SUBMIT).await;
    let (_, answer) = closed_within(&mut slow, Duration::from_secs(30)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("urn:kiln:problem:timeout"), "{answer}");
    assert!(answer.contains("KILN_REQUEST_TIMEOUT_SECS"), "{answer}");
    assert!(started.elapsed() >= Duration::from_secs(2), "{:?}", started.elapsed());
}

#[tokio::test]
async fn the_101st_stream_of_a_tenant_is_429_and_a_closed_one_frees_its_slot() {
    let redis = Redis::start();
    // No worker: the job stays queued, so its streams stay open.
    let kiln = Kiln::api_only(&redis, &[]);
    let http = client();
    let job = send_json(
        http.post(kiln.url("/v1/jobs/plot"))
            .json(&json!({"params": {"series": [{"x": [0, 1], "y": [0, 1]}]}})),
    )
    .await;
    let events = kiln.url(&format!("/v1/jobs/{}/events", job["id"].as_str().unwrap()));

    let mut streams = Vec::new();
    for i in 0..100 {
        let response = http.get(&events).send().await.unwrap();
        assert_eq!(response.status(), 200, "stream {i}");
        streams.push(response);
    }
    let refused = http.get(&events).send().await.unwrap();
    assert_eq!(refused.headers()["retry-after"], "1");
    let problem = expect_problem(refused, 429).await;
    assert_detail_contains(&problem, "KILN_MAX_STREAMS_PER_TENANT");
    // Long-polls share the cap; plain reads do not.
    send_problem(
        http.get(kiln.url(&format!("/v1/jobs/{}?wait=5", job["id"].as_str().unwrap()))),
        429,
    )
    .await;
    assert_eq!(
        send_status(http.get(kiln.url(&format!("/v1/jobs/{}", job["id"].as_str().unwrap())))).await,
        200
    );

    // One client leaves; the server notices at its next write (a keep-alive comment within 15 s).
    drop(streams.pop());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = http.get(&events).send().await.unwrap();
        if response.status() == 200 {
            streams.push(response);
            break;
        }
        assert_eq!(response.status(), 429);
        assert!(Instant::now() < deadline, "the closed stream's slot never came back");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn metrics_on_the_api_need_the_admin_key_and_made_up_methods_add_no_labels() {
    let redis = Redis::start();
    let kiln = Kiln::api_only(&redis, &["--admin-key", ADMIN_KEY]);
    let http = client();
    let anonymous = http.get(kiln.url("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.headers()["x-content-type-options"], "nosniff");
    expect_problem(anonymous, 401).await;

    let brew = reqwest::Method::from_bytes(b"BREW").unwrap();
    for _ in 0..3 {
        let response = http.request(brew.clone(), kiln.url("/healthz")).send().await.unwrap();
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
    let response = http
        .get(kiln.url("/metrics"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let metrics = response.text().await.unwrap();
    assert!(metrics.contains("method=\"other\""), "{metrics}");
    assert!(!metrics.contains("BREW"), "{metrics}");
    assert!(metrics.contains("method=\"GET\""), "{metrics}");

    for path in ["/healthz", "/v1/kinds", "/no/such/route"] {
        let response = http.get(kiln.url(path)).bearer_auth(ADMIN_KEY).send().await.unwrap();
        assert_eq!(response.headers()["x-content-type-options"], "nosniff", "{path}");
    }
}

#[tokio::test]
async fn sigterm_lets_a_request_in_flight_finish_and_takes_no_new_connections() {
    let redis = Redis::start();
    let mut kiln = Kiln::api_only(&redis, &[]);
    let body = json!({"params": {"series": [{"x": [0, 1], "y": [0, 1]}]}}).to_string();
    let head = format!(
        "POST /v1/jobs/plot HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (first, rest) = body.as_bytes().split_at(10);
    let mut in_flight = half_sent(&kiln, &[head.as_bytes(), first].concat()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    kiln.terminate();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(authority(&kiln)).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting connections after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The request that was half-way in is still answered, and then the process ends.
    in_flight.write_all(rest).await.unwrap();
    let (closed, answer) = closed_within(&mut in_flight, Duration::from_secs(30)).await;
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    assert!(closed, "the connection closes after its answer");
    let status = kiln
        .wait_exit(Duration::from_secs(30))
        .expect("kiln exits after draining");
    assert!(status.success(), "{status:?}");
}
