//! The reliable queue, with real processes and a real `redis-server`: crashed and stopped workers, a
//! restarted Redis, retries, cancellation, idempotent submits, expiry, and a small soak.
//!
//! Jobs that are "in the middle" when something is killed use the test-only `hostile` kind
//! (`{"mode": "spin", "ms": N}` is a CPU-bound job of known length).

use crate::common::*;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

const TENANT: &str = "default";

/// Every role gets the hostile kind, so the API accepts it and any worker can run it.
fn args<'a>(kinds: &'a tempfile::TempDir, extra: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["--kinds-dir", kinds.path().to_str().unwrap()];
    all.extend_from_slice(extra);
    all
}

async fn submit(api: &Kiln, kind: &str, body: Value) -> String {
    let response = client()
        .post(api.url(&format!("/v1/jobs/{kind}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{:?}", response.text().await);
    let doc: Value = response.json().await.unwrap();
    doc["id"].as_str().unwrap().to_owned()
}

async fn spin(api: &Kiln, ms: u64) -> String {
    submit(api, "hostile", json!({"params": {"mode": "spin", "ms": ms}})).await
}

async fn job(api: &Kiln, id: &str) -> reqwest::Response {
    client().get(api.url(&format!("/v1/jobs/{id}"))).send().await.unwrap()
}

async fn doc(api: &Kiln, id: &str) -> Value {
    let response = job(api, id).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Polls until the job has `status`; panics after `timeout`.
async fn wait_status(api: &Kiln, id: &str, status: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let doc = doc(api, id).await;
        if doc["status"] == status {
            return doc;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} not {status} after {timeout:?}: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_job_of_a_killed_worker_runs_again_on_another() {
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    let worker_args = args(&kinds, &["--lease-secs", "2", "--workers", "1"]);
    let api = Kiln::api_only(&redis, &args(&kinds, &[]));
    let mut workers = [Kiln::worker(&redis, &worker_args), Kiln::worker(&redis, &worker_args)];
    let id = spin(&api, 2000).await;
    wait_status(&api, &id, "running", Duration::from_secs(30)).await;
    // The lease names the worker's process: `<host>-<pid>-<uuid>:<attempt>`.
    let lease: String = redis::cmd("HGET")
        .arg(format!("{{kiln}}:job:{TENANT}:{id}"))
        .arg("lease")
        .query(&mut redis.conn())
        .unwrap();
    let holder = workers
        .iter()
        .position(|w| lease.contains(&format!("-{}-", w.pid())))
        .expect("one of the workers holds the lease");
    workers[holder].kill9();

    let done = wait_final(&api, &id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 2, "the killed run counts: {done}");
}

#[tokio::test]
async fn sigterm_lets_a_running_job_finish_within_the_grace_period() {
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    let api = Kiln::api_only(&redis, &args(&kinds, &[]));
    let mut worker = Kiln::worker(&redis, &args(&kinds, &["--grace-secs", "20"]));
    let id = spin(&api, 1500).await;
    wait_status(&api, &id, "running", Duration::from_secs(30)).await;
    worker.terminate();
    let status = worker.wait_exit(Duration::from_secs(20)).expect("the worker exits");
    assert!(status.success(), "{status:?}");
    let done = doc(&api, &id).await;
    assert_eq!(done["status"], "succeeded", "finished before exiting: {done}");
    assert_eq!(done["attempts"], 1);
}

#[tokio::test]
async fn sigterm_past_the_grace_period_hands_the_job_back_without_using_an_attempt() {
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    // One attempt only: a handback that used it up would fail the job.
    let api = Kiln::api_only(&redis, &args(&kinds, &["--max-attempts", "1"]));
    let worker_args = args(&kinds, &["--grace-secs", "0", "--workers", "1"]);
    let mut worker = Kiln::worker(&redis, &worker_args);
    let id = spin(&api, 4000).await;
    wait_status(&api, &id, "running", Duration::from_secs(30)).await;
    let stopping = Instant::now();
    worker.terminate();
    let status = worker.wait_exit(Duration::from_secs(10)).expect("the worker exits");
    assert!(status.success(), "{status:?}");
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "took {:?}",
        stopping.elapsed()
    );
    let handed_back = doc(&api, &id).await;
    assert_eq!(handed_back["status"], "queued", "{handed_back}");
    assert_eq!(handed_back["attempts"], 0, "{handed_back}");

    let _next = Kiln::worker(&redis, &worker_args);
    let done = wait_final(&api, &id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 1, "{done}");
}

#[tokio::test]
async fn redis_restart_loses_no_queued_or_running_job() {
    let mut redis = Redis::start_persistent();
    let kinds = hostile_kinds_dir();
    let kiln = Kiln::serve(&redis, &args(&kinds, &["--lease-secs", "3"]));
    // Long enough that the first job is still running once all six are in, however slow the machine's
    // submits are (at a load average of 10 six submits took longer than a 700 ms job).
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(spin(&kiln, 3000).await);
    }
    wait_status(&kiln, &ids[0], "running", Duration::from_secs(30)).await;

    redis.kill();
    // Down: the API answers 503 with Retry-After, promptly.
    let asked = Instant::now();
    let response = job(&kiln, &ids[0]).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert!(asked.elapsed() < Duration::from_secs(10), "took {:?}", asked.elapsed());
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.start_again();

    for id in &ids {
        let done = wait_final(&kiln, id, Duration::from_secs(60)).await;
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    // Waiting still works after the restart (the API's change subscription reconnects): an invoke answers
    // with the PNG itself.
    let invoked = client()
        .post(kiln.url("/v1/jobs/hostile?wait=30"))
        .json(&json!({"params": {"mode": "noop"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(invoked.status(), 200);
    assert_eq!(decode_png(&invoked.bytes().await.unwrap()).width(), 1);
    // The outage shows in the metrics: failed Redis calls, the workers' as well as the API's.
    let metrics = send_text(client().get(kiln.url("/metrics"))).await;
    let errors: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("kiln_redis_errors_total "))
        .expect("kiln_redis_errors_total is exported")
        .parse()
        .unwrap();
    assert!(errors >= 1.0, "{metrics}");
}

#[tokio::test]
async fn retryable_failures_back_off_then_fail_and_user_errors_do_not_retry() {
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    let kiln = Kiln::serve(&redis, &args(&kinds, &["--timeout-secs", "1", "--max-attempts", "2"]));
    let looping = submit(&kiln, "hostile", json!({"params": {"mode": "loop"}})).await;
    let png = encode_png(&coordinate_image(20, 20));
    let outside = submit(
        &kiln,
        "crop",
        json!({"params": {"crop": {"x": 15, "y": 0, "width": 20, "height": 10}},
               "input_base64": base64_encode(&png)}),
    )
    .await;

    let user_error = wait_final(&kiln, &outside, Duration::from_secs(30)).await;
    assert_eq!(user_error["error"]["code"], "invalid-params", "{user_error}");
    assert_eq!(user_error["attempts"], 1, "not retried: {user_error}");

    let failed = wait_final(&kiln, &looping, Duration::from_secs(30)).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], "timeout", "{failed}");
    assert_eq!(failed["attempts"], 2, "{failed}");

    // The dead-letter view: failed jobs with their reason and attempts.
    let list: Value = send_json(client().get(kiln.url("/v1/jobs?status=failed&kind=hostile"))).await;
    let listed = &list["jobs"][0];
    assert_eq!(listed["id"], looping.as_str(), "{list}");
    assert_eq!(listed["error"]["code"], "timeout");
    assert_eq!(listed["attempts"], 2);
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn cancel_queued_and_running_jobs_and_refuse_finished_ones() {
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    let kiln = Kiln::serve(&redis, &args(&kinds, &["--workers", "1"]));
    let http = client();
    let running = spin(&kiln, 20_000).await;
    wait_status(&kiln, &running, "running", Duration::from_secs(30)).await;
    // The only slot is busy, so this one waits.
    let queued = submit(&kiln, "hostile", json!({"params": {"mode": "noop"}})).await;

    let cancelled: Value = send_json(http.delete(kiln.url(&format!("/v1/jobs/{queued}")))).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");

    let cancelling = Instant::now();
    let response = http
        .delete(kiln.url(&format!("/v1/jobs/{running}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The guest is interrupted within a renewal period, so the slot frees up at once.
    let next = submit(&kiln, "hostile", json!({"params": {"mode": "noop"}})).await;
    let next = wait_final(&kiln, &next, Duration::from_secs(10)).await;
    assert_eq!(next["status"], "succeeded");
    assert!(
        cancelling.elapsed() < Duration::from_millis(2500),
        "the worker was busy for {:?} after the cancel",
        cancelling.elapsed()
    );
    assert_eq!(doc(&kiln, &running).await["status"], "cancelled");

    // Finished jobs cannot be cancelled.
    for finished in [&running, next["id"].as_str().unwrap()] {
        send_problem(http.delete(kiln.url(&format!("/v1/jobs/{finished}"))), 409).await;
    }
}

#[tokio::test]
async fn idempotency_key_returns_the_same_job_and_refuses_another_payload() {
    let redis = Redis::start();
    let api = Kiln::api_only(&redis, &[]);
    let http = client();
    let post = |key: &'static str, body: Value| {
        http.post(api.url("/v1/jobs/plot"))
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let params = json!({"params": {"title": "t", "series": [{"x": [0, 1], "y": [0, 1]}]}});
    let first = post("order-1", params.clone()).await.unwrap();
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();

    // The same payload, its keys in another order: the same job, 200 instead of 202.
    let again = post(
        "order-1",
        json!({"params": {"series": [{"y": [0, 1], "x": [0, 1]}], "title": "t"}}),
    )
    .await
    .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(
        again.headers()["location"].to_str().unwrap(),
        format!("/v1/jobs/{}", first["id"].as_str().unwrap())
    );
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);

    let other = post(
        "order-1",
        json!({"params": {"title": "other", "series": [{"x": [0], "y": [0]}]}}),
    )
    .await
    .unwrap();
    let problem = expect_problem(other, 422).await;
    assert_detail_contains(&problem, "Idempotency-Key");

    let fresh = post("order-2", params.clone()).await.unwrap();
    assert_eq!(fresh.status(), 202);
    let fresh: Value = fresh.json().await.unwrap();
    assert_ne!(fresh["id"], first["id"]);

    send_problem(
        http.post(api.url("/v1/jobs/plot"))
            .header("Idempotency-Key", "x".repeat(300))
            .json(&params),
        400,
    )
    .await;

    // Two jobs queued, not three; the key expires with the window (the job TTL).
    let queued = redis.int("LLEN", &format!("{{kiln}}:queue:{TENANT}"));
    assert_eq!(queued, 2);
    let ttl = redis.int("PTTL", &format!("{{kiln}}:idem:{TENANT}:order-1"));
    assert!(ttl > 0 && ttl <= 24 * 3600 * 1000, "{ttl}");
}

#[tokio::test]
async fn finished_jobs_expire_and_leave_nothing_behind() {
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    let kiln = Kiln::serve(&redis, &args(&kinds, &["--job-ttl-secs", "2", "--sweep-secs", "1"]));
    let response = client()
        .post(kiln.url("/v1/jobs/hostile"))
        .header("Idempotency-Key", "expiring")
        .json(&json!({"params": {"mode": "echo"}, "input_base64": base64_encode(&encode_png(&coordinate_image(2, 2)))}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = wait_final(&kiln, &id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let expires_at = time::OffsetDateTime::parse(
        done["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let finished_at = time::OffsetDateTime::parse(
        done["finished_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!((expires_at - finished_at).whole_seconds(), 2, "{done}");

    let job_key = format!("{{kiln}}:job:{TENANT}:{id}");
    let result_key = format!("{{kiln}}:result:{TENANT}:{id}");
    let input_key = format!("{{kiln}}:input:{TENANT}:{id}");
    let index_key = format!("{{kiln}}:jobs:{TENANT}");
    let mut conn = redis.conn();
    let exists = |conn: &mut redis::Connection, key: &str| -> bool {
        redis::cmd("EXISTS").arg(key).query::<i64>(conn).unwrap() == 1
    };
    assert!(exists(&mut conn, &job_key) && exists(&mut conn, &result_key));
    assert!(!exists(&mut conn, &input_key), "the input goes at the final state");
    let params_key = format!("{{kiln}}:params:{TENANT}:{id}");
    assert!(!exists(&mut conn, &params_key), "a succeeded job's params go at once");

    // Nobody lists, so only the workers' sweep can clean the index.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let indexed: Option<f64> = redis::cmd("ZSCORE").arg(&index_key).arg(&id).query(&mut conn).unwrap();
        let gone = [&job_key, &result_key, &input_key]
            .iter()
            .all(|key| !exists(&mut conn, key))
            && indexed.is_none()
            && !exists(&mut conn, &format!("{{kiln}}:idem:{TENANT}:expiring"));
        if gone {
            break;
        }
        assert!(Instant::now() < deadline, "keys of job {id} still there");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = job(&kiln, &id).await;
    expect_problem(response, 404).await;
    assert!(
        !exists(&mut conn, "{kiln}:indexed"),
        "a tenant with no jobs left is forgotten"
    );
}

/// Submits `jobs` noop jobs from `clients` concurrent clients against `kiln api` and 2 `kiln worker`s,
/// kills one worker with SIGKILL when half are submitted and starts it again, then checks that every job
/// succeeded and ended exactly once. Returns a one-line summary.
pub async fn soak(jobs: usize, clients: usize) -> String {
    let started = Instant::now();
    let redis = Redis::start_persistent();
    let kinds = hostile_kinds_dir();
    let worker_args = args(&kinds, &["--lease-secs", "2", "--workers", "2"]);
    let api = std::sync::Arc::new(Kiln::api_only(&redis, &args(&kinds, &[])));
    let _steady = Kiln::worker(&redis, &worker_args);
    let mut victim = Kiln::worker(&redis, &worker_args);

    let submitted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let api = api.clone();
        let submitted = submitted.clone();
        tasks.spawn(async move {
            let mut ids = Vec::new();
            while submitted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < jobs {
                ids.push(submit(&api, "hostile", json!({"params": {"mode": "noop"}})).await);
            }
            ids
        });
    }
    while submitted.load(std::sync::atomic::Ordering::SeqCst) < jobs / 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    victim.kill9();
    let _restarted = Kiln::worker(&redis, &worker_args);
    let mut ids = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        ids.extend(joined.unwrap());
    }
    let submit_time = started.elapsed();
    assert_eq!(ids.len(), jobs);

    let mut attempts: HashMap<u64, usize> = HashMap::new();
    let deadline = Duration::from_secs(60 + jobs as u64 / 20);
    for id in &ids {
        let done = wait_final(&api, id, deadline).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        *attempts.entry(done["attempts"].as_u64().unwrap()).or_default() += 1;
    }
    // Each job has exactly one final state and one result: listing them all finds each id once.
    let mut listed = HashSet::new();
    let mut cursor = String::new();
    loop {
        let page: Value =
            send_json(client().get(api.url(&format!("/v1/jobs?status=succeeded&limit=100&cursor={cursor}")))).await;
        for job in page["jobs"].as_array().unwrap() {
            assert!(
                listed.insert(job["id"].as_str().unwrap().to_owned()),
                "listed twice: {job}"
            );
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(listed, ids.iter().cloned().collect::<HashSet<_>>());
    let mut conn = redis.conn();
    let results: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{{kiln}}:result:{TENANT}:*"))
        .query(&mut conn)
        .unwrap();
    assert_eq!(results.len(), jobs, "one result per job");
    let leftovers: i64 = redis::cmd("ZCARD").arg("{kiln}:leases").query(&mut conn).unwrap();
    assert_eq!(leftovers, 0);

    let mut attempts: Vec<_> = attempts.into_iter().collect();
    attempts.sort();
    format!(
        "{jobs} jobs from {clients} clients, 2 workers (one SIGKILLed and restarted at {} submitted): \
         {jobs} succeeded, each once; attempts histogram {attempts:?}; submitted in {submit_time:.1?}, \
         all done in {:.1?}",
        jobs / 2,
        started.elapsed()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_small_every_job_succeeds_exactly_once_across_a_worker_crash() {
    let summary = soak(300, 8).await;
    println!("soak: {summary}");
}

/// The full soak, for `deploy/soak.sh`: `KILN_SOAK_JOBS` (default 5000), `KILN_SOAK_CLIENTS` (16).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long; run by deploy/soak.sh"]
async fn soak_full() {
    let var = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let summary = soak(var("KILN_SOAK_JOBS", 5000), var("KILN_SOAK_CLIENTS", 16)).await;
    println!("soak: {summary}");
}

/// A claim pops at most 1000 queue entries; a live job right behind exactly that many stale ones (the
/// 1001st pop) must still run on a later claim, never be dropped with the stale entries. Stale entries are
/// those of jobs that expired while queued (cancel takes its job out of the queue): here their documents
/// are deleted, as their TTL would.
#[tokio::test]
async fn a_job_behind_many_stale_queue_entries_is_not_lost() {
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    let api = Kiln::api_only(&redis, &args(&kinds, &[]));
    let mut stale = Vec::new();
    for _ in 0..1000 {
        stale.push(submit(&api, "hostile", json!({"params": {"mode": "noop"}})).await);
    }
    let live = submit(&api, "hostile", json!({"params": {"mode": "noop"}})).await;
    let mut expire = redis::pipe();
    for id in &stale {
        expire.del(format!("{{kiln}}:job:default:{id}")).ignore();
    }
    let () = expire.query(&mut redis.conn()).unwrap();
    let _worker = Kiln::worker(&redis, &args(&kinds, &[]));
    let done = wait_status(&api, &live, "succeeded", Duration::from_secs(30)).await;
    assert_eq!(done["attempts"], 1);
}
