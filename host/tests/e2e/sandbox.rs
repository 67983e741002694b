//! The sandbox against hostile components, end to end: the real `kiln` binary, real Redis, and the
//! test-only `hostile` kind (guest-hostile), which misbehaves on request.

use crate::common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

#[path = "../shared/wat_components.rs"]
mod wat_components;
use wat_components::answering_component;

const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// Flags that keep the suite fast: a short deadline, small caps, and no retries of timeouts.
const STRICT: &[&str] = &[
    "--timeout-secs",
    "1",
    "--memory-mb",
    "64",
    "--max-output-mb",
    "1",
    "--max-attempts",
    "1",
];

fn serve_hostile(kinds: &Path, extra: &[&str]) -> (Redis, Kiln) {
    let redis = Redis::start();
    let mut args = vec!["--kinds-dir", kinds.to_str().unwrap()];
    args.extend_from_slice(extra);
    let kiln = Kiln::serve(&redis, &args);
    (redis, kiln)
}

async fn submit(kiln: &Kiln, kind: &str, params: Value) -> String {
    let response = client()
        .post(kiln.url(&format!("/v1/jobs/{kind}")))
        .json(&json!({ "params": params }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    let doc: Value = response.json().await.unwrap();
    doc["id"].as_str().unwrap().to_owned()
}

async fn run(kiln: &Kiln, params: Value) -> Value {
    let id = submit(kiln, "hostile", params).await;
    wait_final(kiln, &id, JOB_TIMEOUT).await
}

async fn job_log(kiln: &Kiln, id: &str) -> String {
    let response = client()
        .get(kiln.url(&format!("/v1/jobs/{id}/log")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    response.text().await.unwrap()
}

fn assert_failed(doc: &Value, code: &str, message_contains: &str) {
    assert_eq!(doc["status"], "failed", "{doc}");
    assert_eq!(doc["error"]["code"], code, "{doc}");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(message_contains),
        "`{message}` lacks `{message_contains}`"
    );
}

/// After misbehaviour, the same kiln still serves and runs a normal job.
async fn assert_healthy(kiln: &Kiln) {
    let health = client().get(kiln.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let doc = run(kiln, json!({"mode": "noop"})).await;
    assert_eq!(doc["status"], "succeeded", "{doc}");
    let id = submit(kiln, "plot", json!({"series": [{"x": [0, 1], "y": [0, 1]}]})).await;
    let doc = wait_final(kiln, &id, JOB_TIMEOUT).await;
    assert_eq!(doc["status"], "succeeded", "{doc}");
}

#[tokio::test]
async fn every_hostile_mode_fails_with_its_code_and_the_worker_stays_healthy() {
    let kinds = hostile_kinds_dir();
    let (_redis, kiln) = serve_hostile(kinds.path(), STRICT);
    let cases = [
        (json!({"mode": "loop"}), "timeout", "deadline"),
        (json!({"mode": "sleep", "ms": 5000}), "timeout", "deadline"),
        (json!({"mode": "alloc"}), "memory-limit", "64 MiB"),
        (json!({"mode": "panic"}), "trap", "hostile guest panics on purpose"),
        // The guest's shadow stack in linear memory overflows before wasm's own stack does.
        (json!({"mode": "recurse"}), "trap", "the job crashed"),
        (
            json!({"mode": "huge-output", "mb": 2}),
            "output-too-large",
            "over the limit",
        ),
        (json!({"mode": "wrong-type"}), "invalid-output", "text/plain"),
        (json!({"mode": "not-png"}), "invalid-output", "not a PNG"),
        // 10 gigapixels claimed by a 70-byte file: whoever decoded it would allocate 40 GB.
        (
            json!({"mode": "huge-png", "width": 100_000, "height": 100_000}),
            "invalid-output",
            "claims 100000×100000 pixels (10000 megapixels), over the limit of 100 megapixels",
        ),
        (json!({"mode": "truncated-png"}), "invalid-output", "truncated"),
        // No capabilities: the guest's own error message says what the sandbox answered.
        (
            json!({"mode": "read-file", "path": "/etc/passwd"}),
            "internal",
            "cannot read /etc/passwd",
        ),
        (
            json!({"mode": "connect", "addr": "127.0.0.1:22"}),
            "internal",
            "cannot connect",
        ),
        (json!({"mode": "environment"}), "internal", "env vars: 0, args: 0"),
    ];
    let mut ids = Vec::new();
    for (params, _, _) in &cases {
        ids.push(submit(&kiln, "hostile", params.clone()).await);
    }
    for ((params, code, message), id) in cases.iter().zip(&ids) {
        let doc = wait_final(&kiln, id, JOB_TIMEOUT).await;
        assert_eq!(doc["attempts"], 1, "{params}: {doc}");
        assert_failed(&doc, code, message);
    }
    assert_healthy(&kiln).await;
}

/// `wasi:cli/exit` is the guest ending without an answer, whatever the code: its fault, so `trap` and
/// not retried (retries are on here: the default of 3 attempts).
#[tokio::test]
async fn a_guest_that_exits_fails_once_as_a_trap() {
    let kinds = hostile_kinds_dir();
    let (_redis, kiln) = serve_hostile(kinds.path(), &[]);
    // WASI 0.2's `exit` takes only ok or err, so the guest's 3 arrives as 1.
    for (code, seen) in [(3, 1), (0, 0)] {
        let doc = run(&kiln, json!({"mode": "exit", "code": code})).await;
        assert_failed(
            &doc,
            "trap",
            &format!("exited with code {seen} instead of returning a result"),
        );
        assert_eq!(doc["attempts"], 1, "{doc}");
    }
    // The operator's limit on claimed pixels is theirs to set.
    drop(kiln);
    let (_redis, kiln) = serve_hostile(kinds.path(), &["--max-output-megapixels", "1"]);
    let doc = run(&kiln, json!({"mode": "huge-png", "width": 1001, "height": 1000})).await;
    assert_failed(&doc, "invalid-output", "over the limit of 1 megapixels");
    let doc = run(&kiln, json!({"mode": "huge-png", "width": 1000, "height": 1000})).await;
    assert_eq!(doc["status"], "succeeded", "{doc}");
}

#[tokio::test]
async fn a_guest_blocked_in_a_host_call_is_stopped_at_the_deadline() {
    let kinds = hostile_kinds_dir();
    let (_redis, kiln) = serve_hostile(kinds.path(), STRICT);
    let started = Instant::now();
    let doc = run(&kiln, json!({"mode": "sleep", "ms": 20_000})).await;
    assert_failed(&doc, "timeout", "deadline of 1s");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "a 1 s deadline took {:?}",
        started.elapsed()
    );
    assert_healthy(&kiln).await;
}

#[tokio::test]
async fn cancel_stops_a_computing_or_sleeping_guest_and_frees_the_worker() {
    let kinds = hostile_kinds_dir();
    // One worker and a long deadline: only the cancel can free it for the next job.
    let (_redis, kiln) = serve_hostile(kinds.path(), &["--workers", "1", "--timeout-secs", "60"]);
    for params in [
        json!({"mode": "spin", "ms": 60_000}),
        json!({"mode": "sleep", "ms": 60_000}),
    ] {
        let id = submit(&kiln, "hostile", params.clone()).await;
        let deadline = Instant::now() + JOB_TIMEOUT;
        loop {
            let doc: Value = send_json(client().get(kiln.url(&format!("/v1/jobs/{id}")))).await;
            if doc["status"] == "running" {
                break;
            }
            assert!(Instant::now() < deadline, "{params} never started: {doc}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let cancelled = client()
            .delete(kiln.url(&format!("/v1/jobs/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(cancelled.status(), 200);
        let started = Instant::now();
        let next = run(&kiln, json!({"mode": "noop"})).await;
        assert_eq!(next["status"], "succeeded", "{next}");
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{params}: the worker was freed only after {:?}",
            started.elapsed()
        );
        let doc = wait_final(&kiln, &id, JOB_TIMEOUT).await;
        assert_eq!(doc["status"], "cancelled", "{doc}");
    }
}

#[tokio::test]
async fn chatty_guests_are_bounded_and_their_log_is_kept() {
    let kinds = hostile_kinds_dir();
    // 9000 host calls: more than STRICT's 1 s deadline on a loaded machine.
    let (_redis, kiln) = serve_hostile(kinds.path(), &["--timeout-secs", "20", "--max-attempts", "1"]);
    let id = submit(&kiln, "hostile", json!({"mode": "log-flood", "lines": 3000})).await;
    let doc = wait_final(&kiln, &id, JOB_TIMEOUT).await;
    assert_eq!(
        doc["status"], "succeeded",
        "stdout past the capture cap is dropped, not an error: {doc}"
    );
    let log = job_log(&kiln, &id).await;
    assert!(log.len() <= kiln::runtime::MAX_LOG_BYTES, "{} bytes", log.len());
    assert!(log.starts_with("[info] log line 0 "), "{}", &log[..100]);
    assert!(log.contains("more log lines dropped"));
    assert!(
        log.contains("[stdout] stdout line 0\n"),
        "stdout is captured, not inherited"
    );
    assert!(log.contains("[stderr] stderr line 0\n"));

    let doc = run(&kiln, json!({"mode": "progress-flood", "calls": 100_000})).await;
    assert_eq!(doc["status"], "succeeded", "{doc}");
    assert_eq!(job_log(&kiln, doc["id"].as_str().unwrap()).await, "", "nothing logged");

    send_problem(
        client().get(kiln.url("/v1/jobs/0190b5a0-0000-7000-8000-000000000000/log")),
        404,
    )
    .await;
}

#[tokio::test]
async fn every_run_gets_a_fresh_instance() {
    let kinds = hostile_kinds_dir();
    let (_redis, kiln) = serve_hostile(kinds.path(), STRICT);
    for _ in 0..3 {
        let doc = run(&kiln, json!({"mode": "global"})).await;
        assert_eq!(doc["status"], "succeeded", "a previous run's globals leaked: {doc}");
    }
}

#[tokio::test]
async fn kinds_choose_their_limits_within_the_operators_ceilings() {
    let kinds = hostile_kinds_dir();
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(kinds.path().join("hostile.json")).unwrap()).unwrap();
    manifest["name"] = json!("hostile-limited");
    manifest["limits"] = json!({"timeout_secs": 0.5, "memory_mb": 4096});
    std::fs::write(kinds.path().join("hostile-limited.json"), manifest.to_string()).unwrap();
    // The same component under another manifest: a version of its own, with its own limits.
    std::fs::copy(
        kinds.path().join("hostile.wasm"),
        kinds.path().join("hostile-limited.wasm"),
    )
    .unwrap();
    let (_redis, kiln) = serve_hostile(
        kinds.path(),
        &[
            "--timeout-secs",
            "30",
            "--max-attempts",
            "1",
            "--memory-mb",
            "16",
            "--max-kind-memory-mb",
            "32",
        ],
    );

    let id = submit(&kiln, "hostile-limited", json!({"mode": "sleep", "ms": 10_000})).await;
    let doc = wait_final(&kiln, &id, Duration::from_secs(5)).await;
    assert_failed(&doc, "timeout", "deadline of 500ms");
    let id = submit(&kiln, "hostile-limited", json!({"mode": "alloc"})).await;
    let doc = wait_final(&kiln, &id, JOB_TIMEOUT).await;
    assert_failed(&doc, "memory-limit", "32 MiB");
    // The same code under the operator's defaults is not limited by the other kind's manifest.
    let doc = run(&kiln, json!({"mode": "sleep", "ms": 700})).await;
    assert_eq!(doc["status"], "succeeded", "{doc}");
    let doc = run(&kiln, json!({"mode": "alloc"})).await;
    assert_failed(&doc, "memory-limit", "16 MiB");
}

#[test]
fn manifest_limits_reject_unknown_fields() {
    let manifest = json!({
        "name": "x", "description": "", "output_media_type": "image/png", "input": "none",
        "limits": {"memory_mb": 1, "cpu": 2}
    });
    let error = serde_json::from_value::<kiln::kinds::Manifest>(manifest).unwrap_err();
    assert!(error.to_string().contains("cpu"), "{error}");
}

/// A restart with the same data dir loads compiled components from the disk cache: wasmtime counts a
/// hit and no miss, a signal that does not depend on timing.
#[test]
fn a_restart_does_not_recompile() {
    let cache = tempfile::tempdir().unwrap();
    let (_, _, component) = kiln::kinds::TEST_GUESTS[0];
    let component = std::fs::read(component).unwrap();
    let start = || {
        let runtime = kiln::runtime::Runtime::new(Some(cache.path().to_owned())).unwrap();
        runtime.prepare("v", &component).unwrap();
        runtime.cache_stats().unwrap()
    };
    assert_eq!(start(), (0, 1), "the first start compiles");
    assert_eq!(start(), (1, 0), "the second start only loads");
}

/// A component that returns a 1×1 PNG at once but takes long to compile: `functions` functions of
/// `body` additions each. `nonce` makes it unlike any other (a miss in the compile cache).
fn slow_to_compile_component(functions: usize, body: usize, nonce: &str) -> Vec<u8> {
    let png = include_bytes!("../../../guest-noop/one-pixel.png");
    let png_data: String = png.iter().map(|b| format!("\\{b:02x}")).collect();
    let step = "local.get 0 i32.const 7 i32.mul i32.const 3 i32.add local.set 0\n".repeat(body);
    let filler: String = (0..functions)
        .map(|i| format!("(func $f{i} (param i32) (result i32) {step} local.get 0)\n"))
        .collect();
    let png_len = u8::try_from(png.len()).unwrap();
    let more_fields = format!("(data (i32.const 1024) \"{nonce}\")\n{filler}");
    answering_component("image/png", 9, &png_data, png_len, &more_fields)
}

/// An upload whose compile outlasts `KILN_MAX_COMPILE_SECS` is refused at the limit with a 422 that
/// says so, while the API goes on answering; the same component uploaded again is refused at once.
#[tokio::test]
async fn an_upload_that_compiles_too_long_is_refused_and_holds_no_other_request() {
    let redis = Redis::start();
    let data = tempfile::tempdir().unwrap();
    let api = Kiln::api_only(
        &redis,
        &["--data-dir", data.path().to_str().unwrap(), "--max-compile-secs", "1"],
    );
    let nonce = format!("{:?}", std::time::SystemTime::now());
    // The same size as the lease test's, which takes over 3 s to compile.
    let component = slow_to_compile_component(3000, 50, &nonce);
    let upload = || {
        client()
            .put(api.url("/v1/kinds/slow"))
            .header("content-type", "application/wasm")
            .body(component.clone())
            .timeout(Duration::from_secs(60))
            .send()
    };
    let started = std::time::Instant::now();
    let (refused, listed) = tokio::join!(upload(), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let asked = std::time::Instant::now();
        let status = client().get(api.url("/v1/kinds")).send().await.unwrap().status();
        (status, asked.elapsed())
    });
    let problem = expect_problem(refused.unwrap(), 422).await;
    assert_detail_contains(&problem, "KILN_MAX_COMPILE_SECS");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "refused after {:?}",
        started.elapsed()
    );
    assert_eq!(listed.0, 200);
    assert!(
        listed.1 < Duration::from_secs(1),
        "a listing waited {:?} for the compile",
        listed.1
    );

    let again = std::time::Instant::now();
    let problem = expect_problem(upload().await.unwrap(), 422).await;
    assert_detail_contains(&problem, "KILN_MAX_COMPILE_SECS");
    assert!(
        again.elapsed() < Duration::from_secs(1),
        "refused after {:?}",
        again.elapsed()
    );
    let (status, _) = (
        client().get(api.url("/v1/kinds/slow")).send().await.unwrap().status(),
        (),
    );
    assert_eq!(status, 404, "a refused kind is not registered");
}

/// Compiling a new version happens after the claim, on the worker: the lease is renewed meanwhile and
/// the run's deadline starts after it. With a 2 s lease (the least there is), a 1 s deadline and a compile of several seconds, a worker that
/// did not renew would lose the job to its other slot (a second attempt), and a deadline counted from
/// the claim would time it out.
#[tokio::test]
async fn compiling_does_not_eat_into_the_lease_or_the_deadline() {
    let redis = Redis::start();
    // The API checks (compiles) uploads with a cache of its own, so the worker finds nothing compiled.
    let api_data = tempfile::tempdir().unwrap();
    let api = Kiln::api_only(&redis, &["--data-dir", api_data.path().to_str().unwrap()]);
    // Started before the upload, so its warm-up does not compile the kind either.
    let _worker = Kiln::worker(&redis, &["--lease-secs", "2", "--timeout-secs", "1", "--workers", "2"]);
    let nonce = format!("{:?}", std::time::SystemTime::now());
    let component = slow_to_compile_component(16000, 50, &nonce);
    let upload = client()
        .put(api.url("/v1/kinds/slow"))
        .header("content-type", "application/wasm")
        .body(component)
        .timeout(Duration::from_secs(300))
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201, "{}", upload.text().await.unwrap());
    let id = submit(&api, "slow", json!({})).await;
    let doc = wait_final(&api, &id, Duration::from_secs(120)).await;
    assert_eq!(doc["status"], "succeeded", "{doc}");
    assert_eq!(doc["attempts"], 1, "the lease ran out while compiling: {doc}");
    let at = |field: &str| {
        time::OffsetDateTime::parse(
            doc[field].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let claimed_to_end = at("finished_at") - at("started_at");
    assert!(
        claimed_to_end > time::Duration::seconds(3),
        "the compile took {claimed_to_end}, too short to outlast the lease: make the component bigger"
    );
}
