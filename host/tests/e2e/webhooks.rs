//! Completion webhooks: signed deliveries to receivers started here on 127.0.0.1, retries, the
//! allowlist, redirects, and deliveries that never take a worker slot.

use crate::api::submit_json;
use crate::common::*;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a receiver answers to one request.
#[derive(Clone)]
enum Answer {
    Status(u16),
    /// 302 to this URL.
    Redirect(String),
    /// Holds the request this long before answering 200.
    Hang(Duration),
}

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Call {
    headers: HeaderMap,
    body: Vec<u8>,
}

#[derive(Clone)]
struct Receiver {
    calls: Arc<Mutex<Vec<Call>>>,
    /// Answers in order; when they run out, 200.
    answers: Arc<Mutex<VecDeque<Answer>>>,
    url: String,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    receiver.calls.lock().unwrap().push(Call {
        headers,
        body: body.to_vec(),
    });
    let answer = receiver.answers.lock().unwrap().pop_front();
    match answer.unwrap_or(Answer::Status(200)) {
        Answer::Status(status) => StatusCode::from_u16(status).unwrap().into_response(),
        Answer::Redirect(to) => (StatusCode::FOUND, [("location", to)]).into_response(),
        Answer::Hang(time) => {
            tokio::time::sleep(time).await;
            StatusCode::OK.into_response()
        }
    }
}

impl Receiver {
    async fn start(answers: Vec<Answer>) -> Self {
        let port = free_port();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let receiver = Receiver {
            calls: Arc::default(),
            answers: Arc::new(Mutex::new(answers.into())),
            url: format!("http://127.0.0.1:{port}/hook"),
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Waits for the receiver to have had `n` requests; panics after `timeout`.
    async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Call> {
        let deadline = Instant::now() + timeout;
        loop {
            let calls = self.calls();
            if calls.len() >= n {
                return calls;
            }
            assert!(
                Instant::now() < deadline,
                "{} requests after {timeout:?}, not {n}",
                calls.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `kiln serve` (dev mode) with the test-only `hostile` kind, webhooks allowed to `allow`, and short retries.
fn serve(allow: &str, extra: &[&str]) -> (Redis, Kiln, tempfile::TempDir) {
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    let mut args = vec![
        "--kinds-dir",
        kinds.path().to_str().unwrap(),
        "--webhook-allow",
        allow,
        "--webhook-retry-base-ms",
        "100",
    ];
    args.extend_from_slice(extra);
    let kiln = Kiln::serve(&redis, &args);
    (redis, kiln, kinds)
}

async fn submit(kiln: &Kiln, body: Value) -> reqwest::Response {
    submit_json(kiln, "hostile", body).await
}

async fn deliveries(kiln: &Kiln, id: &str) -> Value {
    send_json(client().get(kiln.url(&format!("/v1/jobs/{id}/deliveries")))).await
}

/// Polls the deliveries route until the webhook's state is `state`.
async fn wait_delivery_state(kiln: &Kiln, id: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = deliveries(kiln, id).await;
        if found["state"] == state {
            return found;
        }
        assert!(Instant::now() < deadline, "the webhook of {id} is not {state}: {found}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The signature check a receiver makes, written here from the Standard Webhooks spec rather than taken
/// from Kiln: HMAC-SHA256 keyed with the base64-decoded secret over `id.timestamp.body`.
fn assert_signed(call: &Call, secret: &str) {
    let header = |name: &str| call.headers[name].to_str().unwrap().to_owned();
    let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&call.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let signatures = header("webhook-signature");
    assert!(
        signatures.split(' ').any(|s| s == expected),
        "signature {signatures} is not {expected}"
    );
    let sent: i64 = timestamp.parse().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((now - sent).abs() < 60, "timestamp {sent} is not now ({now})");
    assert_eq!(call.headers["content-type"], "application/json");
}

fn body_of(call: &Call) -> Value {
    serde_json::from_slice(&call.body).unwrap()
}

#[tokio::test]
async fn a_delivery_carries_the_job_document_signed_with_the_tenant_secret() {
    let receiver = Receiver::start(vec![]).await;
    let (_redis, kiln, _kinds) = serve("127.0.0.1", &[]);
    let secret = send_json(client().get(kiln.url("/v1/webhook-secret"))).await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    // Stable until rotated.
    assert_eq!(
        send_json(client().get(kiln.url("/v1/webhook-secret"))).await["secret"],
        secret
    );

    // `plot`, a deterministic kind, so that the same submit again is a result-cache hit.
    let plot = json!({"params": {"series": [{"x": [0, 1], "y": [0, 1]}]}, "callback_url": receiver.url});
    let submitted = submit_json(&kiln, "plot", plot.clone()).await;
    assert_eq!(submitted.status(), 202);
    let id = submitted.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let calls = receiver.wait_for(1, Duration::from_secs(30)).await;
    assert_signed(&calls[0], &secret);
    assert_eq!(calls[0].headers["webhook-id"], id.as_str());
    // The same document as GET /v1/jobs/{id}.
    let doc = send_json(client().get(kiln.url(&format!("/v1/jobs/{id}")))).await;
    assert_eq!(body_of(&calls[0]), doc);
    assert_eq!(doc["status"], "succeeded");
    let found = wait_delivery_state(&kiln, &id, "delivered").await;
    assert_eq!(found["callback_url"], receiver.url.as_str());
    let attempts = found["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{found}");
    assert_eq!(attempts[0]["status"], 200);
    assert_eq!(attempts[0]["attempt"], 1);
    assert!(
        attempts[0]["duration_ms"].is_u64() && attempts[0]["at"].is_string(),
        "{found}"
    );

    // A result-cache hit is final at submit, and delivered too; after a rotation, with the new secret.
    let rotated = send_json(client().post(kiln.url("/v1/webhook-secret"))).await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(rotated, secret);
    let cached = submit_json(&kiln, "plot", plot).await;
    assert_eq!(cached.status(), 200);
    let cached = cached.json::<Value>().await.unwrap();
    assert_eq!(cached["cached"], true, "{cached}");
    let calls = receiver.wait_for(2, Duration::from_secs(30)).await;
    assert_signed(&calls[1], &rotated);
    assert_eq!(body_of(&calls[1])["id"], cached["id"]);
    assert_eq!(body_of(&calls[1])["status"], "succeeded");

    // A job without a callback has no webhook.
    let plain = submit(&kiln, json!({"params": {"mode": "noop"}, "cache": false})).await;
    let plain = plain.json::<Value>().await.unwrap();
    wait_final(&kiln, plain["id"].as_str().unwrap(), Duration::from_secs(30)).await;
    let none = deliveries(&kiln, plain["id"].as_str().unwrap()).await;
    assert_eq!(none, json!({"callback_url": null, "state": null, "attempts": []}));
}

#[tokio::test]
async fn a_receiver_that_fails_twice_gets_the_delivery_on_the_third_attempt() {
    let receiver = Receiver::start(vec![Answer::Status(500), Answer::Status(503)]).await;
    let (_redis, kiln, _kinds) = serve("127.0.0.0/8", &[]);
    let doc = submit(&kiln, json!({"params": {"mode": "noop"}, "callback_url": receiver.url})).await;
    let id = doc.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let calls = receiver.wait_for(3, Duration::from_secs(30)).await;
    // One message, three tries: the same id and body each time.
    assert!(
        calls
            .iter()
            .all(|c| c.headers["webhook-id"] == id.as_str() && c.body == calls[0].body)
    );
    let found = wait_delivery_state(&kiln, &id, "delivered").await;
    let statuses: Vec<&Value> = found["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(503), &json!(200)], "{found}");
    let numbers: Vec<&Value> = found["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["attempt"])
        .collect();
    assert_eq!(numbers, [&json!(1), &json!(2), &json!(3)]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.calls().len(), 3, "a delivered webhook is not sent again");
}

#[tokio::test]
async fn callbacks_are_refused_at_submit_when_webhooks_are_off_or_the_host_is_not_allowed() {
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    let off = Kiln::api_only(&redis, &["--kinds-dir", kinds.path().to_str().unwrap()]);
    let body = json!({"params": {"mode": "noop"}, "callback_url": "http://127.0.0.1:9/hook"});
    let problem = expect_problem(submit(&off, body.clone()).await, 422).await;
    assert_detail_contains(&problem, "webhooks are off");
    assert_detail_contains(&problem, "KILN_WEBHOOK_ALLOW");
    // Nothing was queued.
    let listed = send_json(client().get(off.url("/v1/jobs"))).await;
    assert_eq!(listed["jobs"], json!([]), "{listed}");

    let on = Kiln::api_only(
        &redis,
        &[
            "--kinds-dir",
            kinds.path().to_str().unwrap(),
            "--webhook-allow",
            "127.0.0.1,hooks.invalid",
        ],
    );
    // Each refused with 422 and a detail that says why: the host named, or what is wrong with the URL.
    let long = format!("http://127.0.0.1/{}", "a".repeat(2048));
    for (url, says) in [
        ("http://10.1.2.3/hook", "`10.1.2.3`"),
        ("http://example.com/hook", "`example.com`"),
        ("https://[::1]/hook", "`::1`"),
        ("ftp://127.0.0.1/hook", "http or https"),
        ("not a url", "not a URL"),
        ("http://user:pw@127.0.0.1/", "user name or password"),
        (long.as_str(), "2048"),
    ] {
        let problem = expect_problem(
            submit(&on, json!({"callback_url": url, "params": {"mode": "noop"}})).await,
            422,
        )
        .await;
        assert_detail_contains(&problem, says);
    }
    // The multipart form and pipelines check it the same way.
    let form = reqwest::multipart::Form::new()
        .text("params", r#"{"mode": "noop"}"#)
        .text("callback_url", "http://10.9.9.9/");
    let multipart = client()
        .post(on.url("/v1/jobs/hostile"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_detail_contains(&expect_problem(multipart, 422).await, "`10.9.9.9`");
    let pipeline = client()
        .post(off.url("/v1/pipelines"))
        .json(&json!({"steps": [{"kind": "hostile", "params": {"mode": "noop"}}], "callback_url": "http://127.0.0.1/"}))
        .send()
        .await
        .unwrap();
    assert_detail_contains(&expect_problem(pipeline, 422).await, "webhooks are off");
    // An allowed one is taken (it stays queued: no worker runs here).
    let allowed = submit(
        &on,
        json!({"params": {"mode": "noop"}, "callback_url": "http://127.0.0.1:9/hook"}),
    )
    .await;
    assert_eq!(allowed.status(), 202);
    let id = allowed.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let waiting = deliveries(&on, &id).await;
    assert_eq!(waiting["state"], "waiting", "{waiting}");
}

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed() {
    let elsewhere = Receiver::start(vec![]).await;
    let other_host = elsewhere.url.replace("127.0.0.1", "localhost");
    let receiver = Receiver::start(vec![Answer::Redirect(other_host); 8]).await;
    // Both hosts allowed: what stops the redirect is the policy, not the allowlist.
    let (_redis, kiln, _kinds) = serve("127.0.0.1,localhost", &[]);
    let doc = submit(&kiln, json!({"params": {"mode": "noop"}, "callback_url": receiver.url})).await;
    let id = doc.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    receiver.wait_for(2, Duration::from_secs(30)).await;
    let found = deliveries(&kiln, &id).await;
    let first = &found["attempts"][0];
    assert_eq!(first["status"], 302, "{found}");
    assert!(first["error"].as_str().unwrap().contains("redirect"), "{found}");
    assert_eq!(found["state"], "retrying", "{found}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(elsewhere.calls().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn failed_and_cancelled_jobs_are_delivered_too() {
    let receiver = Receiver::start(vec![]).await;
    let (_redis, kiln, _kinds) = serve("127.0.0.1", &[]);
    let failed = submit(
        &kiln,
        json!({"params": {"mode": "panic"}, "callback_url": receiver.url}),
    )
    .await;
    let failed = failed.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let later = submit(
        &kiln,
        json!({"params": {"mode": "noop"}, "delay_secs": 600, "callback_url": receiver.url}),
    )
    .await;
    let later = later.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        send_status(client().delete(kiln.url(&format!("/v1/jobs/{later}")))).await,
        200
    );
    let calls = receiver.wait_for(2, Duration::from_secs(30)).await;
    let mut seen: Vec<(String, String)> = calls
        .iter()
        .map(|c| {
            let doc = body_of(c);
            (
                doc["id"].as_str().unwrap().to_owned(),
                doc["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    let mut expected = vec![
        (failed.clone(), "failed".to_owned()),
        (later.clone(), "cancelled".to_owned()),
    ];
    expected.sort();
    assert_eq!(seen, expected);
    let failed_doc = calls.iter().map(body_of).find(|d| d["id"] == failed.as_str()).unwrap();
    assert_eq!(failed_doc["error"]["code"], "trap", "{failed_doc}");
    for id in [&failed, &later] {
        wait_delivery_state(&kiln, id, "delivered").await;
    }
}

#[tokio::test]
async fn a_hanging_receiver_does_not_hold_the_only_worker_slot() {
    let receiver = Receiver::start(vec![Answer::Hang(Duration::from_secs(30))]).await;
    let (_redis, kiln, _kinds) = serve("127.0.0.1", &["--workers", "1"]);
    let first = submit(&kiln, json!({"params": {"mode": "noop"}, "callback_url": receiver.url})).await;
    let first = first.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    receiver.wait_for(1, Duration::from_secs(30)).await;
    // The delivery is in flight (the receiver holds it); the one worker slot is free for the next job.
    let started = Instant::now();
    let next = submit(&kiln, json!({"params": {"mode": "noop"}, "cache": false})).await;
    let next = next.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let done = wait_final(&kiln, &next, Duration::from_secs(5)).await;
    assert_eq!(done["status"], "succeeded");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The attempt is still open: nothing recorded yet.
    let found = deliveries(&kiln, &first).await;
    assert_eq!(found["state"], "pending", "{found}");
    assert_eq!(found["attempts"], json!([]));
}

/// Runs the client `kiln ARGS --url BASE` (without blocking the receiver's runtime); its stdout.
async fn cli(base: &str, args: &[&str]) -> String {
    let output = tokio::process::Command::new(kiln_bin())
        .args(args)
        .args(["--url", base])
        .env_remove("KILN_API_KEY")
        .env("KILN_LOG", "warn")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kiln {args:?}: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text
}

#[tokio::test]
async fn the_cli_submits_with_a_callback_shows_deliveries_and_rotates_the_secret() {
    let receiver = Receiver::start(vec![]).await;
    let (_redis, kiln, _kinds) = serve("127.0.0.1", &[]);
    let secret = cli(&kiln.base, &["webhook-secret"]).await.trim().to_owned();
    assert_eq!(
        send_json(client().get(kiln.url("/v1/webhook-secret"))).await["secret"],
        secret
    );
    let submitted = cli(
        &kiln.base,
        &[
            "submit",
            "hostile",
            "--params",
            r#"{"mode": "noop"}"#,
            "--callback-url",
            &receiver.url,
            "--wait",
        ],
    )
    .await;
    let calls = receiver.wait_for(1, Duration::from_secs(30)).await;
    assert_signed(&calls[0], &secret);
    let id = body_of(&calls[0])["id"].as_str().unwrap().to_owned();
    assert!(submitted.contains(&id), "{submitted}");
    wait_delivery_state(&kiln, &id, "delivered").await;
    let shown: Value = serde_json::from_str(&cli(&kiln.base, &["deliveries", &id]).await).unwrap();
    assert_eq!(shown["state"], "delivered", "{shown}");
    assert_eq!(shown["attempts"][0]["status"], 200, "{shown}");
    let rotated = cli(&kiln.base, &["webhook-secret", "--rotate"]).await.trim().to_owned();
    assert!(rotated.starts_with("whsec_") && rotated != secret, "{rotated}");
    assert_eq!(cli(&kiln.base, &["webhook-secret"]).await.trim(), rotated);
}

#[tokio::test]
async fn each_tenant_has_its_own_secret_which_the_admin_can_read_and_rotate() {
    let redis = Redis::start();
    let (acme, other) = (
        crate::tenants::add_tenant(&redis, "acme"),
        crate::tenants::add_tenant(&redis, "other"),
    );
    let kiln = Kiln::api_only(&redis, &["--admin-key", "test-admin-key"]);
    let secret_of = |key: &str| {
        let request = client().get(kiln.url("/v1/webhook-secret")).bearer_auth(key);
        async move { send_json(request).await["secret"].as_str().unwrap().to_owned() }
    };
    let (a, b) = (secret_of(&acme).await, secret_of(&other).await);
    assert_ne!(a, b);
    let admin_read = client()
        .get(kiln.url("/v1/tenants/acme/webhook-secret"))
        .bearer_auth("test-admin-key");
    assert_eq!(send_json(admin_read).await["secret"], a.as_str());
    let rotated = client()
        .post(kiln.url("/v1/tenants/acme/webhook-secret"))
        .bearer_auth("test-admin-key");
    let rotated = send_json(rotated).await["secret"].as_str().unwrap().to_owned();
    assert_ne!(rotated, a);
    assert_eq!(secret_of(&acme).await, rotated);
    assert_eq!(secret_of(&other).await, b, "another tenant's secret is untouched");
    // A tenant's key is not the admin's.
    let refused = client()
        .get(kiln.url("/v1/tenants/other/webhook-secret"))
        .bearer_auth(&acme);
    assert_eq!(send_status(refused).await, 403);
    let unknown = client()
        .get(kiln.url("/v1/tenants/nobody/webhook-secret"))
        .bearer_auth("test-admin-key");
    assert_eq!(send_status(unknown).await, 404);
}

#[tokio::test]
async fn a_job_failed_for_a_lost_worker_is_delivered_by_another_process() {
    let receiver = Receiver::start(vec![]).await;
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    let kinds_dir = kinds.path().to_str().unwrap();
    let flags = [
        "--kinds-dir",
        kinds_dir,
        "--webhook-allow",
        "127.0.0.1",
        "--lease-secs",
        "2",
    ];
    let api = Kiln::api_only(&redis, &[&flags[..], &["--max-attempts", "1"]].concat());
    let mut doomed = Kiln::worker(&redis, &flags);
    let body = json!({"params": {"mode": "spin", "ms": 60_000}, "callback_url": receiver.url});
    let id = submit(&api, body).await.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    while send_json(client().get(api.url(&format!("/v1/jobs/{id}")))).await["status"] != "running" {
        assert!(Instant::now() < deadline, "the job never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    doomed.kill9();
    // The next worker finds the lease run out: its last attempt is lost, the job failed, and delivered.
    let _next = Kiln::worker(&redis, &flags);
    let calls = receiver.wait_for(1, Duration::from_secs(30)).await;
    let doc = body_of(&calls[0]);
    assert_eq!(
        (doc["status"].as_str(), doc["error"]["code"].as_str()),
        (Some("failed"), Some("lost-worker")),
        "{doc}"
    );
    wait_delivery_state(&api, &id, "delivered").await;
}
