//! Bounded jobs: lean job documents (params beside the job, never read by the API), size caps on what
//! tenants and guests write (error messages, problem details, params), and a Redis that is full.
//!
//! The test-only `hostile` kind accepts any params with a string `mode`, so large params are schema-valid.

use crate::common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const TENANT: &str = "default";

fn args<'a>(kinds: &'a tempfile::TempDir, extra: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["--kinds-dir", kinds.path().to_str().unwrap()];
    all.extend_from_slice(extra);
    all
}

async fn post(kiln: &Kiln, kind: &str, body: &Value) -> reqwest::Response {
    client()
        .post(kiln.url(&format!("/v1/jobs/{kind}")))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn submit(kiln: &Kiln, body: &Value) -> String {
    let response = post(kiln, "hostile", body).await;
    assert_eq!(response.status(), 202, "{:?}", response.text().await);
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The peak resident memory of a process (`VmHWM`), in KiB.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

fn used_memory(conn: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("memory").query(conn).unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn listing_after_thousands_of_large_params_jobs_stays_fast_and_small() {
    const JOBS: usize = 2000;
    const PAD: usize = 100 << 10;
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    // No workers: every job stays queued with its params.
    let api = Kiln::api_only(&redis, &args(&kinds, &[]));
    let body = json!({"params": {"mode": "noop", "pad": "p".repeat(PAD)}});
    let mut ids = Vec::new();
    for _ in 0..JOBS / 8 {
        let batch = futures_util::future::join_all((0..8).map(|_| submit(&api, &body))).await;
        ids.extend(batch);
    }
    let mut conn = redis.conn();
    let held = used_memory(&mut conn);
    assert!(held > (JOBS * PAD) as u64, "Redis holds {held} bytes");

    // The document holds no params; they are beside it, whole.
    let job_key = format!("{{kiln}}:job:{TENANT}:{}", ids[0]);
    let fields: Vec<String> = redis::cmd("HKEYS").arg(&job_key).query(&mut conn).unwrap();
    assert!(!fields.iter().any(|f| f == "params"), "{fields:?}");
    let params: String = redis::cmd("GET")
        .arg(format!("{{kiln}}:params:{TENANT}:{}", ids[0]))
        .query(&mut conn)
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(&params).unwrap(), body["params"]);

    // Reading jobs costs what the answer shows: an empty listing that scans 2000 documents, a job,
    // a long-poll and an SSE stream.
    let before = peak_rss_kb(api.pid());
    let started = Instant::now();
    let listing = send_json(client().get(api.url("/v1/jobs?kind=crop"))).await;
    let took = started.elapsed();
    assert_eq!(listing["jobs"], json!([]), "{listing}");
    let page = send_json(client().get(api.url("/v1/jobs?limit=100"))).await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 100);
    assert!(!page.to_string().contains("ppppp"), "a listing never shows params");
    let doc = send_json(client().get(api.url(&format!("/v1/jobs/{}?wait=1", ids[1])))).await;
    assert_eq!(doc["status"], "queued");
    let events = client()
        .get(api.url(&format!("/v1/jobs/{}/events", ids[2])))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    drop(events);
    let after = peak_rss_kb(api.pid());
    eprintln!("limits: the empty listing took {took:?}; peak RSS {before} -> {after} KiB");
    assert!(took < Duration::from_secs(1), "the empty listing took {took:?}");
    assert!(
        after.saturating_sub(before) < 30 << 10,
        "the API's peak RSS grew from {before} KiB to {after} KiB"
    );
}

#[tokio::test]
async fn size_caps_on_params_schema_errors_and_guest_messages() {
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    // A copy of the hostile kind whose manifest asks for 4 MiB params, above the 2 MiB ceiling.
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(kinds.path().join("hostile.json")).unwrap()).unwrap();
    manifest["name"] = json!("roomy");
    manifest["limits"] = json!({"max_params_kb": 4096});
    std::fs::write(kinds.path().join("roomy.json"), manifest.to_string()).unwrap();
    std::fs::copy(kinds.path().join("hostile.wasm"), kinds.path().join("roomy.wasm")).unwrap();
    let kiln = Kiln::serve(&redis, &args(&kinds, &["--max-kind-params-mb", "2"]));

    // A 3 MB value that does not fit the schema: the 422 names the path, not the value.
    let huge = vec![123_456_789u32; 300_000];
    let response = post(&kiln, "hostile", &json!({"params": {"mode": huge}})).await;
    let text_len = response.content_length();
    let problem = expect_problem(response, 422).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.len() <= 2048 && text_len.is_none_or(|n| n < 4096), "{detail}");
    assert!(
        detail.contains("/mode") && detail.contains("[123456789,123456789"),
        "{detail}"
    );

    // Params over the kind's cap: 413 naming it. The default is 1 MiB; a manifest may ask for more, up to
    // the operator's ceiling.
    let sized = |bytes: usize| json!({"params": {"mode": "noop", "pad": "p".repeat(bytes)}});
    let problem = expect_problem(post(&kiln, "hostile", &sized(1100 << 10)).await, 413).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("at most 1024 KiB (limit `max-params`"),
        "{problem}"
    );
    let id = {
        let response = post(&kiln, "roomy", &sized(1500 << 10)).await;
        assert_eq!(response.status(), 202);
        response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let problem = expect_problem(post(&kiln, "roomy", &sized(2100 << 10)).await, 413).await;
    assert_detail_contains(&problem, "at most 2048 KiB");
    // The worker got the params whole and the guest parsed them.
    let done = wait_final(&kiln, &id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "succeeded", "{done}");

    // A guest's error message is cut at 2 KiB, at a char boundary, with "…", in the job and in Redis.
    let path = "é".repeat(50_000);
    let id = submit(&kiln, &json!({"params": {"mode": "read-file", "path": path}})).await;
    let done = wait_final(&kiln, &id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "failed", "{done}");
    let message = done["error"]["message"].as_str().unwrap();
    assert!(message.len() <= 2048 && message.len() > 2000, "{} bytes", message.len());
    assert!(
        message.starts_with("cannot read éé") && message.ends_with("é…"),
        "{message}"
    );
    let stored: String = redis::cmd("HGET")
        .arg(format!("{{kiln}}:job:{TENANT}:{id}"))
        .arg("error_message")
        .query(&mut redis.conn())
        .unwrap();
    assert_eq!(stored, message);
    // A failed job keeps its params for the job TTL.
    let ttl = redis.int("PTTL", &format!("{{kiln}}:params:{TENANT}:{id}"));
    assert!(ttl > 0, "{ttl}");
}

#[tokio::test]
async fn a_full_redis_finishes_every_accepted_job_and_refuses_new_submits() {
    let redis = Redis::start_with(&["--maxmemory", "30mb"]);
    let kinds = hostile_kinds_dir();
    let kiln = Kiln::serve(&redis, &args(&kinds, &["--workers", "2"]));
    let input = encode_png(&coordinate_image(200, 200));
    let mut ids = Vec::new();
    for i in 0..16 {
        let body = if i % 2 == 0 {
            json!({"params": {"mode": "sleep", "ms": 1500}})
        } else {
            json!({"params": {"mode": "echo"}, "input_base64": base64_encode(&input)})
        };
        ids.push(submit(&kiln, &body).await);
    }
    // Fill Redis to the brim while those run and wait: big filler keys, then ever smaller ones.
    let mut conn = redis.conn();
    let mut filled = 0;
    let mut fill = |conn: &mut redis::Connection| {
        for size in [64 << 10, 4 << 10, 256, 16] {
            let filler = vec![b'f'; size];
            loop {
                let set: redis::RedisResult<()> = redis::cmd("SET")
                    .arg(format!("filler:{filled}"))
                    .arg(&filler)
                    .query(conn);
                match set {
                    Ok(()) => filled += 1,
                    Err(e) => {
                        assert!(e.to_string().contains("OOM"), "{e}");
                        break;
                    }
                }
            }
        }
        filled
    };
    assert!(fill(&mut conn) > 100);
    let queued_or_running: Vec<Value> = futures_util::future::join_all(
        ids.iter()
            .map(|id| send_json(client().get(kiln.url(&format!("/v1/jobs/{id}"))))),
    )
    .await;
    assert!(
        queued_or_running
            .iter()
            .any(|doc| !doc["status"].as_str().unwrap().ends_with("ed")),
        "some jobs were still queued or running when Redis filled up"
    );

    // A new submit is refused before anything is written, with a hint to retry.
    fill(&mut conn);
    let index = format!("{{kiln}}:jobs:{TENANT}");
    let listed_before: i64 = redis::cmd("ZCARD").arg(&index).query(&mut conn).unwrap();
    // Filled to within a few bytes of the limit, a job finishing meanwhile could free enough to let one
    // submit in; so the limit moves 256 KiB below what is used, and Redis stays full however the jobs go.
    let info: String = redis::cmd("INFO").arg("memory").query(&mut conn).unwrap();
    let used: u64 = info
        .lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(used - (256 << 10))
        .query(&mut conn)
        .unwrap();
    let response = post(&kiln, "hostile", &json!({"params": {"mode": "noop"}})).await;
    assert_eq!(
        response.headers().get("retry-after").map(|v| v.to_str().unwrap()),
        Some("1"),
        "{}",
        response.status()
    );
    expect_problem(response, 503).await;
    let listed_after: i64 = redis::cmd("ZCARD").arg(&index).query(&mut conn).unwrap();
    assert_eq!(listed_after, listed_before, "a refused submit writes nothing");

    // Every accepted job still reaches its final state, whole.
    for (i, id) in ids.iter().enumerate() {
        let done = wait_final(&kiln, id, Duration::from_secs(120)).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        let job_key = format!("{{kiln}}:job:{TENANT}:{id}");
        let doc: std::collections::HashMap<String, String> =
            redis::cmd("HGETALL").arg(&job_key).query(&mut conn).unwrap();
        for field in ["finished_at", "expires_at", "media_type", "result_len"] {
            assert!(doc.contains_key(field), "job {id} lacks `{field}`: {doc:?}");
        }
        assert!(!doc.contains_key("lease"), "{doc:?}");
        let ttl: i64 = redis::cmd("PTTL").arg(&job_key).query(&mut conn).unwrap();
        assert!(ttl > 0, "job {id} has no expiry");
        let result: Vec<u8> = redis::cmd("GET")
            .arg(format!("{{kiln}}:result:{TENANT}:{id}"))
            .query(&mut conn)
            .unwrap();
        assert_eq!(result.len().to_string(), doc["result_len"]);
        if i % 2 == 1 {
            assert_eq!(result, input, "an echo returns its input");
        }
        for gone in ["input", "params"] {
            let exists = redis.int("EXISTS", &format!("{{kiln}}:{gone}:{TENANT}:{id}"));
            assert_eq!(exists, 0, "the {gone} of job {id} was freed");
        }
    }
}

#[tokio::test]
async fn a_byte_quota_counts_inputs_and_kept_results_until_they_expire() {
    const QUOTA: usize = 300_000;
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    let quota = QUOTA.to_string();
    let kiln = Kiln::serve(
        &redis,
        &args(
            &kinds,
            &[
                "--max-bytes-per-tenant",
                &quota,
                "--job-ttl-secs",
                "3",
                "--sweep-secs",
                "1",
            ],
        ),
    );
    // A PNG of noise, so about 3 bytes per pixel whatever the encoder does; the echo returns it.
    let noise = |side: u32| {
        let mut state = 12345u32;
        encode_png(&image::RgbImage::from_fn(side, side, |_, _| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            image::Rgb([(state >> 24) as u8, (state >> 16) as u8, (state >> 8) as u8])
        }))
    };
    let echo = |input: &[u8]| json!({"params": {"mode": "echo"}, "input_base64": base64_encode(input)});
    let (small, medium, huge) = (noise(180), noise(225), noise(330));
    assert!(
        small.len() < 100_000 && medium.len() > 150_000 && huge.len() > QUOTA,
        "{}",
        huge.len()
    );
    let held = || async {
        let stats = send_json(client().get(kiln.url("/v1/stats"))).await;
        stats["bytes_by_tenant"][TENANT].as_u64().unwrap_or(0)
    };

    // One job bigger than the whole quota can never fit: 413.
    let problem = expect_problem(post(&kiln, "hostile", &echo(&huge)).await, 413).await;
    assert_detail_contains(&problem, "max-bytes");

    // Two echo jobs of < 100 kB: their results stay counted once they are done (the inputs are released).
    let mut ids = Vec::new();
    for _ in 0..2 {
        let id = submit(&kiln, &echo(&small)).await;
        let done = wait_final(&kiln, &id, Duration::from_secs(60)).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        ids.push(id);
    }
    let after_two = held().await;
    let results = 2 * small.len() as u64;
    assert!((results..results + 1000).contains(&after_two), "{after_two} bytes held");
    let metrics = send_text(client().get(kiln.url("/metrics"))).await;
    assert!(metrics.contains(&format!("kiln_bytes_held {after_two}")), "{metrics}");

    // A third does not fit while those are kept: 429 naming the quota, with Retry-After.
    let response = post(&kiln, "hostile", &echo(&medium)).await;
    assert!(response.headers().contains_key("retry-after"));
    let problem = expect_problem(response, 429).await;
    assert_detail_contains(&problem, "quota `max-bytes`");

    // Once they expire, the sweep releases their bytes and the tenant may submit again.
    let deadline = Instant::now() + Duration::from_secs(30);
    while held().await > 0 {
        assert!(Instant::now() < deadline, "the expired results are still counted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let entries = redis.int("ZCARD", &format!("{{kiln}}:held:{TENANT}"));
    assert_eq!(entries, 0);
    let id = submit(&kiln, &echo(&medium)).await;
    assert_eq!(
        wait_final(&kiln, &id, Duration::from_secs(60)).await["status"],
        "succeeded"
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
