//! Flow control: priorities, delayed and scheduled jobs (`delay_secs`, `run_at`), and pausing a kind or a
//! tenant, through the real API and workers.

use crate::common::*;
use crate::tenants::{add_tenant, add_tenant_with, wait_final_as};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const ADMIN_KEY: &str = "test-admin-key";

/// A job of the test-only `hostile` kind that takes a little while, so starts are well apart.
fn spin() -> Value {
    json!({"mode": "spin", "ms": 30})
}

async fn submit(kiln: &Kiln, key: &str, kind: &str, body: Value) -> reqwest::Response {
    client()
        .post(kiln.url(&format!("/v1/jobs/{kind}")))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Submits and expects `202`; the job document.
async fn accepted(kiln: &Kiln, key: &str, kind: &str, body: Value) -> Value {
    let response = submit(kiln, key, kind, body).await;
    assert_eq!(response.status(), 202);
    response.json().await.unwrap()
}

/// A quick `plot` job, accepted.
async fn accepted_plot(kiln: &Kiln, key: &str) -> Value {
    accepted(
        kiln,
        key,
        "plot",
        json!({"params": {"series": [{"x": [0, 1], "y": [1, 0]}]}}),
    )
    .await
}

async fn job(kiln: &Kiln, key: &str, id: &str) -> Value {
    send_json(client().get(kiln.url(&format!("/v1/jobs/{id}"))).bearer_auth(key)).await
}

async fn admin_post(kiln: &Kiln, path: &str) -> reqwest::Response {
    client()
        .post(kiln.url(path))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
}

async fn stats(kiln: &Kiln) -> Value {
    send_json(client().get(kiln.url("/v1/stats")).bearer_auth(ADMIN_KEY)).await
}

fn time_of(doc: &Value, field: &str) -> OffsetDateTime {
    OffsetDateTime::parse(
        doc[field].as_str().unwrap_or_else(|| panic!("no {field}: {doc}")),
        &Rfc3339,
    )
    .unwrap()
}

/// Asserts that the job stays `status` for `secs` seconds (checked every 200 ms).
async fn stays(kiln: &Kiln, key: &str, id: &str, status: &str, secs: u64) {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        let doc = job(kiln, key, id).await;
        assert_eq!(doc["status"], status, "{doc}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_high_priority_job_overtakes_queued_normal_ones_and_low_ones_go_last() {
    let redis = Redis::start();
    let key = add_tenant(&redis, "acme");
    let kinds = hostile_kinds_dir();
    let kinds_dir = kinds.path().to_str().unwrap();
    // No worker yet: everything is queued before the first start.
    let kiln = Kiln::api_only(&redis, &["--admin-key", ADMIN_KEY, "--kinds-dir", kinds_dir]);
    let low = accepted(&kiln, &key, "hostile", json!({"params": spin(), "priority": "low"})).await;
    assert_eq!(low["priority"], "low");
    let mut normal = Vec::new();
    for _ in 0..4 {
        let doc = accepted(&kiln, &key, "hostile", json!({"params": spin()})).await;
        assert_eq!(doc["priority"], "normal");
        normal.push(doc["id"].as_str().unwrap().to_owned());
    }
    let high = accepted(&kiln, &key, "hostile", json!({"params": spin(), "priority": "high"})).await;
    assert_eq!(high["priority"], "high");
    // A cancelled high job leaves its own queue (and never runs).
    let dropped = accepted(&kiln, &key, "hostile", json!({"params": spin(), "priority": "high"})).await;
    let dropped_id = dropped["id"].as_str().unwrap().to_owned();
    assert_eq!(stats(&kiln).await["queued"], 7);
    let cancelled = client()
        .delete(kiln.url(&format!("/v1/jobs/{dropped_id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert!(cancelled.status().is_success(), "{}", cancelled.status());
    // The other six count against the queue, whatever their priority.
    let now = stats(&kiln).await;
    assert_eq!(
        (now["queued"].as_u64(), now["queued_by_kind"]["hostile"].as_u64()),
        (Some(6), Some(6)),
        "{now}"
    );
    let _worker = Kiln::worker(&redis, &["--kinds-dir", kinds_dir, "--workers", "1"]);

    let mut order = vec![high["id"].as_str().unwrap().to_owned()];
    order.extend(normal);
    order.push(low["id"].as_str().unwrap().to_owned());
    let mut starts = Vec::new();
    for id in &order {
        let doc = wait_final_as(&kiln, &key, id).await;
        assert_eq!(doc["status"], "succeeded", "{doc}");
        starts.push(time_of(&doc, "started_at"));
    }
    assert_eq!(job(&kiln, &key, &order[0]).await["priority"], "high");
    let dropped = job(&kiln, &key, &dropped_id).await;
    assert_eq!(
        (dropped["status"].as_str(), dropped["attempts"].as_u64()),
        (Some("cancelled"), Some(0)),
        "{dropped}"
    );
    for pair in starts.windows(2) {
        assert!(
            pair[0] < pair[1],
            "with one slot, jobs must start high first, then normal in submit order, then low: {starts:?}"
        );
    }
}

#[tokio::test]
async fn a_run_at_job_is_scheduled_until_its_time_then_starts_within_about_a_second() {
    let redis = Redis::start();
    let key = add_tenant(&redis, "acme");
    let kiln = Kiln::serve(&redis, &["--admin-key", ADMIN_KEY]);
    let run_at = OffsetDateTime::now_utc() + Duration::from_secs(4);
    let body = json!({
        "params": {"series": [{"x": [0, 1], "y": [1, 0]}]},
        "run_at": run_at.format(&Rfc3339).unwrap(),
    });
    let doc = accepted(&kiln, &key, "plot", body).await;
    let id = doc["id"].as_str().unwrap().to_owned();
    assert_eq!(doc["status"], "scheduled", "{doc}");
    let shown = time_of(&doc, "run_at");
    assert!((shown - run_at).abs() < time::Duration::milliseconds(2), "{doc}");

    // The listing filters by it, stats count it apart from the queue.
    let listed = send_json(client().get(kiln.url("/v1/jobs?status=scheduled")).bearer_auth(&key)).await;
    assert_eq!(listed["jobs"][0]["id"], id.as_str(), "{listed}");
    let now = stats(&kiln).await;
    assert_eq!(now["scheduled"], 1, "{now}");
    assert_eq!(now["queued"], 0, "{now}");
    assert_eq!(now["retrying"], 0, "{now}");

    // Not before its time (the workers are idle all along)...
    while OffsetDateTime::now_utc() < run_at - Duration::from_millis(300) {
        let doc = job(&kiln, &key, &id).await;
        assert_eq!(doc["status"], "scheduled", "{doc}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ...and soon after it.
    let done = wait_final_as(&kiln, &key, &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let started = time_of(&done, "started_at");
    assert!(started >= run_at, "started {started} before its run_at {run_at}");
    assert!(
        started - run_at < time::Duration::milliseconds(2500),
        "started {started}, more than a second (plus a loaded machine's margin) after {run_at}"
    );
    let png = client()
        .get(kiln.url(&format!("/v1/jobs/{id}/result")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(decode_png(&png).width() > 0);
    assert_eq!(stats(&kiln).await["scheduled"], 0);
}

#[tokio::test]
async fn a_delayed_job_can_be_cancelled_and_never_runs() {
    let redis = Redis::start();
    let key = add_tenant_with(&redis, "acme", &["--max-queued", "2"]);
    let kiln = Kiln::serve(&redis, &["--admin-key", ADMIN_KEY]);
    let plot = json!({"series": [{"x": [0, 1], "y": [1, 0]}]});
    let doc = accepted(&kiln, &key, "plot", json!({"params": plot, "delay_secs": 2})).await;
    let id = doc["id"].as_str().unwrap().to_owned();
    assert_eq!(doc["status"], "scheduled", "{doc}");
    // A scheduled job counts as queued for the quota: one more fits, then none.
    let later = accepted(&kiln, &key, "plot", json!({"params": plot, "delay_secs": 600})).await;
    let refused = submit(&kiln, &key, "plot", json!({"params": plot})).await;
    let problem = expect_problem(refused, 429).await;
    assert_detail_contains(&problem, "max-queued");

    let response = client()
        .delete(kiln.url(&format!("/v1/jobs/{id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(job(&kiln, &key, &id).await["status"], "cancelled");
    // Past its due time it is still cancelled and never started.
    stays(&kiln, &key, &id, "cancelled", 4).await;
    let doc = job(&kiln, &key, &id).await;
    assert_eq!(doc["attempts"], 0, "{doc}");
    assert!(doc["started_at"].is_null(), "{doc}");
    let now = stats(&kiln).await;
    assert_eq!(now["scheduled"], 1, "only the 10-minute one is left: {now}");
    // The cancel freed its place: a job fits again, and runs.
    let ran = accepted(&kiln, &key, "plot", json!({"params": plot})).await;
    let ran = wait_final_as(&kiln, &key, ran["id"].as_str().unwrap()).await;
    assert_eq!(ran["status"], "succeeded", "{ran}");
    assert_eq!(
        job(&kiln, &key, later["id"].as_str().unwrap()).await["status"],
        "scheduled"
    );
}

#[tokio::test]
async fn a_paused_kinds_jobs_wait_while_other_kinds_run_and_run_after_resume() {
    let redis = Redis::start();
    let key = add_tenant(&redis, "acme");
    let kinds = hostile_kinds_dir();
    let kinds_dir = kinds.path().to_str().unwrap();
    // One slot, so the order the paused jobs start in after the resume is their queue order.
    let kiln = Kiln::serve(
        &redis,
        &["--admin-key", ADMIN_KEY, "--kinds-dir", kinds_dir, "--workers", "1"],
    );
    let response = admin_post(&kiln, "/v1/kinds/hostile/pause").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"name": "hostile", "paused": true}));
    let kind = send_json(client().get(kiln.url("/v1/kinds/hostile"))).await;
    assert_eq!(kind["paused"], true, "{kind}");

    // The paused kind's jobs are at the head of the tenant's queue; the plot job behind them still runs.
    let mut paused_ids = Vec::new();
    for _ in 0..3 {
        let paused = accepted(&kiln, &key, "hostile", json!({"params": spin()})).await;
        paused_ids.push(paused["id"].as_str().unwrap().to_owned());
    }
    let paused_id = paused_ids[0].clone();
    let plot = accepted_plot(&kiln, &key).await;
    let plot = wait_final_as(&kiln, &key, plot["id"].as_str().unwrap()).await;
    assert_eq!(plot["status"], "succeeded", "{plot}");
    stays(&kiln, &key, &paused_id, "queued", 3).await;
    let now = stats(&kiln).await;
    assert_eq!(now["paused"]["kinds"], json!(["hostile"]), "{now}");
    assert_eq!(now["queued"], 3, "{now}");

    let response = admin_post(&kiln, "/v1/kinds/hostile/resume").await;
    assert_eq!(response.status(), 200);
    // Stepped over and put back, they kept their order.
    let mut starts = Vec::new();
    for id in &paused_ids {
        let done = wait_final_as(&kiln, &key, id).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        starts.push(time_of(&done, "started_at"));
    }
    assert!(starts.windows(2).all(|pair| pair[0] < pair[1]), "{starts:?}");
    let kind = send_json(client().get(kiln.url("/v1/kinds/hostile"))).await;
    assert_eq!(kind["paused"], false, "{kind}");
    assert_eq!(stats(&kiln).await["paused"]["kinds"], json!([]));

    // Deleting a paused kind lifts the pause: its queued jobs still run on their version.
    assert_eq!(admin_post(&kiln, "/v1/kinds/hostile/pause").await.status(), 200);
    let last = accepted(&kiln, &key, "hostile", json!({"params": spin()})).await;
    let response = client()
        .delete(kiln.url("/v1/kinds/hostile"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let last = wait_final_as(&kiln, &key, last["id"].as_str().unwrap()).await;
    assert_eq!(last["status"], "succeeded", "{last}");
}

#[tokio::test]
async fn a_paused_tenants_jobs_wait_while_another_tenants_run() {
    let redis = Redis::start();
    let paused_key = add_tenant(&redis, "paused");
    let other_key = add_tenant(&redis, "other");
    let kiln = Kiln::serve(&redis, &["--admin-key", ADMIN_KEY]);
    assert_eq!(admin_post(&kiln, "/v1/tenants/paused/pause").await.status(), 200);
    // `cache: false`: each one runs, none is answered from the result cache.
    let plot = json!({"params": {"series": [{"x": [0, 1], "y": [1, 0]}]}, "cache": false});
    let waiting = accepted(&kiln, &paused_key, "plot", plot.clone()).await;
    let waiting_id = waiting["id"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        let other = accepted(&kiln, &other_key, "plot", plot.clone()).await;
        let other = wait_final_as(&kiln, &other_key, other["id"].as_str().unwrap()).await;
        assert_eq!(other["status"], "succeeded", "{other}");
    }
    stays(&kiln, &paused_key, &waiting_id, "queued", 3).await;
    let now = stats(&kiln).await;
    assert_eq!(now["paused"]["tenants"], json!(["paused"]), "{now}");

    assert_eq!(admin_post(&kiln, "/v1/tenants/paused/resume").await.status(), 200);
    let done = wait_final_as(&kiln, &paused_key, &waiting_id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(stats(&kiln).await["paused"]["tenants"], json!([]));
}

#[tokio::test]
async fn bad_priorities_schedules_and_pauses_are_refused_with_useful_problems() {
    let redis = Redis::start();
    let key = add_tenant(&redis, "acme");
    let kiln = Kiln::api_only(&redis, &["--admin-key", ADMIN_KEY]);
    let plot = json!({"series": [{"x": [0, 1], "y": [1, 0]}]});
    let refused = |body: Value| {
        let kiln = &kiln;
        let key = &key;
        async move { expect_problem(submit(kiln, key, "plot", body).await, 400).await }
    };
    let problem = refused(json!({"params": plot, "priority": "urgent"})).await;
    assert_detail_contains(&problem, "unknown priority `urgent`; expected one of high, normal, low");
    let soon = (OffsetDateTime::now_utc() + Duration::from_secs(60))
        .format(&Rfc3339)
        .unwrap();
    let problem = refused(json!({"params": plot, "delay_secs": 5, "run_at": soon})).await;
    assert_detail_contains(&problem, "either `delay_secs` or `run_at`, not both");
    let far = (OffsetDateTime::now_utc() + Duration::from_secs(31 * 86_400))
        .format(&Rfc3339)
        .unwrap();
    let problem = refused(json!({"params": plot, "run_at": far})).await;
    assert_detail_contains(&problem, "more than 30 days ahead");
    let problem = refused(json!({"params": plot, "delay_secs": 31 * 86_400})).await;
    assert_detail_contains(&problem, "delay_secs may be at most 2592000");
    let problem = refused(json!({"params": plot, "run_at": "tomorrow"})).await;
    assert_detail_contains(&problem, "not an RFC 3339 time");
    let form = reqwest::multipart::Form::new()
        .text("params", plot.to_string())
        .text("priority", "urgent");
    let response = client()
        .post(kiln.url("/v1/jobs/plot"))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_detail_contains(&expect_problem(response, 400).await, "unknown priority `urgent`");
    // A multipart submit may carry them too.
    let form = reqwest::multipart::Form::new()
        .text("params", plot.to_string())
        .text("priority", "high")
        .text("delay_secs", "60");
    let response = client()
        .post(kiln.url("/v1/jobs/plot"))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let doc: Value = response.json().await.unwrap();
    assert_eq!(
        (doc["status"].as_str(), doc["priority"].as_str()),
        (Some("scheduled"), Some("high"))
    );

    let problem = expect_problem(admin_post(&kiln, "/v1/kinds/nonesuch/pause").await, 404).await;
    assert_detail_contains(&problem, "no job kind named `nonesuch`");
    let problem = expect_problem(admin_post(&kiln, "/v1/tenants/nobody/resume").await, 404).await;
    assert_detail_contains(&problem, "no tenant named `nobody`");
    // Admin routes: a tenant's key may not pause anything.
    let response = client()
        .post(kiln.url("/v1/kinds/plot/pause"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    expect_problem(response, 403).await;
    let kind = send_json(client().get(kiln.url("/v1/kinds/plot"))).await;
    assert_eq!(kind["paused"], false, "{kind}");
}

/// Runs the `kiln` client against `kiln` with `key`; (exit code, stdout).
pub(crate) fn cli(kiln: &Kiln, key: &str, args: &[&str]) -> (i32, String) {
    let output = std::process::Command::new(kiln_bin())
        .args(args)
        .args(["--url", &kiln.base, "--key", key])
        .env("KILN_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let code = output.status.code().expect("kiln exited");
    (code, String::from_utf8(output.stdout).unwrap() + &stderr)
}

#[tokio::test]
async fn the_cli_submits_with_priority_and_delay_and_pauses_kinds_and_tenants() {
    let redis = Redis::start();
    let key = add_tenant(&redis, "acme");
    let kiln = Kiln::api_only(&redis, &["--admin-key", ADMIN_KEY]);
    let params = r#"{"series": [{"x": [0, 1], "y": [1, 0]}]}"#;
    let (code, out) = cli(
        &kiln,
        &key,
        &[
            "submit",
            "plot",
            "--params",
            params,
            "--priority",
            "high",
            "--delay-secs",
            "600",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let id = out.split('\t').next().unwrap().trim();
    let doc = job(&kiln, &key, id).await;
    assert_eq!(
        (doc["status"].as_str(), doc["priority"].as_str()),
        (Some("scheduled"), Some("high")),
        "{doc}"
    );
    let (code, out) = cli(
        &kiln,
        &key,
        &["submit", "plot", "--params", params, "--priority", "urgent"],
    );
    assert_eq!(code, 2, "clap refuses it: {out}");

    let (code, out) = cli(&kiln, ADMIN_KEY, &["admin", "pause", "kind", "plot"]);
    assert_eq!((code, out.as_str()), (0, "plot\tpaused\n"));
    let (code, out) = cli(&kiln, ADMIN_KEY, &["admin", "pause", "tenant", "acme"]);
    assert_eq!((code, out.as_str()), (0, "acme\tpaused\n"));
    let paused = stats(&kiln).await["paused"].clone();
    assert_eq!(paused, json!({"kinds": ["plot"], "tenants": ["acme"]}));
    let (code, out) = cli(&kiln, ADMIN_KEY, &["admin", "resume", "kind", "plot"]);
    assert_eq!((code, out.as_str()), (0, "plot\trunning\n"));
    let (code, out) = cli(&kiln, ADMIN_KEY, &["admin", "resume", "tenant", "acme"]);
    assert_eq!((code, out.as_str()), (0, "acme\trunning\n"));
    // A tenant's key is refused, an unknown name is a 404: both exit 2 with the reason.
    let (code, out) = cli(&kiln, &key, &["admin", "pause", "kind", "plot"]);
    assert_eq!(code, 2, "{out}");
    let (code, out) = cli(&kiln, ADMIN_KEY, &["admin", "pause", "kind", "nonesuch"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no job kind named `nonesuch`"), "{out}");
}

/// `GET /v1/tenants`'s entry of one tenant.
async fn tenant_view(kiln: &Kiln, name: &str) -> Value {
    let list = send_json(client().get(kiln.url("/v1/tenants")).bearer_auth(ADMIN_KEY)).await;
    let found = list["tenants"].as_array().unwrap().iter().find(|t| t["name"] == name);
    found.unwrap_or_else(|| panic!("no tenant {name}: {list}")).clone()
}

#[tokio::test]
async fn a_kind_running_limit_holds_the_tenant_to_two_of_that_kind_while_its_other_kinds_run() {
    let redis = Redis::start();
    let key = add_tenant_with(&redis, "acme", &["--kind-running", "hostile=2"]);
    let kinds = hostile_kinds_dir();
    let kinds_dir = kinds.path().to_str().unwrap();
    let kiln = Kiln::api_only(&redis, &["--admin-key", ADMIN_KEY, "--kinds-dir", kinds_dir]);
    let tenant = tenant_view(&kiln, "acme").await;
    assert_eq!(tenant["quotas"]["kind_running"], json!({"hostile": 2}), "{tenant}");
    // Six slow jobs at the head of the queue, a plot job behind them; slots for all.
    let mut slow = Vec::new();
    for _ in 0..6 {
        let doc = accepted(&kiln, &key, "hostile", json!({"params": {"mode": "sleep", "ms": 1000}})).await;
        slow.push(doc["id"].as_str().unwrap().to_owned());
    }
    let plot = accepted_plot(&kiln, &key).await;
    let _worker = Kiln::worker(&redis, &["--kinds-dir", kinds_dir, "--workers", "6"]);

    let mut most = 0;
    let mut plot_done = None;
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < until, "the slow jobs did not finish");
        let running = send_json(
            client()
                .get(kiln.url("/v1/jobs?status=running&kind=hostile"))
                .bearer_auth(&key),
        )
        .await;
        let now = running["jobs"].as_array().unwrap().len();
        assert!(now <= 2, "{now} hostile jobs ran at once: {running}");
        most = most.max(now);
        if plot_done.is_none() && job(&kiln, &key, plot["id"].as_str().unwrap()).await["status"] == "succeeded" {
            plot_done = Some(OffsetDateTime::now_utc());
        }
        let mut finished = 0;
        for id in &slow {
            if job(&kiln, &key, id).await["status"] == "succeeded" {
                finished += 1;
            }
        }
        if finished == slow.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(most, 2, "the limit was never reached, so the test proved nothing");
    // The plot job behind the held-back ones ran meanwhile, before the last slow job started.
    let mut starts = Vec::new();
    for id in &slow {
        starts.push(time_of(&job(&kiln, &key, id).await, "started_at"));
    }
    starts.sort();
    let plot_done = plot_done.expect("the plot job did not succeed while the slow ones ran");
    assert!(plot_done < starts[5], "plot done {plot_done}, slow starts {starts:?}");
    // The count kept beside the running set is back to nothing.
    let counts: std::collections::HashMap<String, i64> = redis::cmd("HGETALL")
        .arg(format!("{{kiln}}:running-by-kind:{}", tenant["id"].as_str().unwrap()))
        .query(&mut redis.conn())
        .unwrap();
    assert!(counts.is_empty(), "{counts:?}");

    // Over HTTP too: a new limit replaces the old; a bad kind name is refused.
    let response = client()
        .put(kiln.url("/v1/tenants/acme/quotas"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"kind_running": {"plot": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let tenant = tenant_view(&kiln, "acme").await;
    assert_eq!(tenant["quotas"]["kind_running"], json!({"plot": 1}), "{tenant}");
    let response = client()
        .put(kiln.url("/v1/tenants/acme/quotas"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"kind_running": {"Not A Kind": 1}}))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, 400).await;
    assert_detail_contains(&problem, "not a valid kind name");

    // Cancelling a running job frees its slot of the kind at once (cancel.lua keeps the count).
    let response = client()
        .put(kiln.url("/v1/tenants/acme/quotas"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"kind_running": {"hostile": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let long = json!({"params": {"mode": "sleep", "ms": 4000}});
    let first = accepted(&kiln, &key, "hostile", long.clone()).await;
    let second = accepted(&kiln, &key, "hostile", long).await;
    let (first, second) = (first["id"].as_str().unwrap(), second["id"].as_str().unwrap());
    let until = Instant::now() + Duration::from_secs(20);
    while job(&kiln, &key, first).await["status"] != "running" {
        assert!(Instant::now() < until, "the first long job never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(job(&kiln, &key, second).await["status"], "queued");
    let cancelled = client()
        .delete(kiln.url(&format!("/v1/jobs/{first}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert!(cancelled.status().is_success());
    let cancelled_at = Instant::now();
    while job(&kiln, &key, second).await["status"] == "queued" {
        assert!(
            cancelled_at.elapsed() < Duration::from_secs(3),
            "the second job waited for the cancelled one's slot"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let done = wait_final_as(&kiln, &key, second).await;
    assert_eq!(done["status"], "succeeded", "{done}");
}
