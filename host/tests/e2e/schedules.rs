//! Recurring schedules (`/v1/schedules`): one job per due time however many API and worker processes
//! run, refusals at creation, the tenant's limit, skipped due times, deletion, and `kiln schedule`.

use crate::common::*;
use crate::flow::cli;
use crate::tenants::{add_tenant, add_tenant_with, wait_final_as};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const ADMIN_KEY: &str = "schedule-admin-key";

fn plot_params() -> Value {
    json!({"series": [{"x": [0, 1], "y": [1, 0]}]})
}

async fn create(kiln: &Kiln, key: &str, body: Value) -> reqwest::Response {
    client()
        .post(kiln.url("/v1/schedules"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Creates a schedule and expects `201`; the schedule.
async fn created(kiln: &Kiln, key: &str, body: Value) -> Value {
    let response = create(kiln, key, body).await;
    let status = response.status();
    let doc: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{doc}");
    doc
}

async fn schedule(kiln: &Kiln, key: &str, id: &str) -> reqwest::Response {
    client()
        .get(kiln.url(&format!("/v1/schedules/{id}")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

async fn delete(kiln: &Kiln, key: &str, id: &str) -> u16 {
    let response = client()
        .delete(kiln.url(&format!("/v1/schedules/{id}")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

/// The tenant's jobs (up to 100), newest first.
async fn jobs(kiln: &Kiln, key: &str) -> Vec<Value> {
    let list = send_json(client().get(kiln.url("/v1/jobs?limit=100")).bearer_auth(key)).await;
    list["jobs"].as_array().unwrap().clone()
}

fn time_of(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        value.as_str().unwrap_or_else(|| panic!("not a time: {value}")),
        &Rfc3339,
    )
    .unwrap()
}

fn sleep(secs: u64) -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_secs(secs))
}

#[tokio::test]
async fn a_schedule_every_2_s_makes_one_job_per_due_time_across_two_apis_and_two_workers() {
    let redis = Redis::start();
    let key = add_tenant(&redis, "acme");
    let flags = ["--admin-key", ADMIN_KEY, "--min-schedule-secs", "2"];
    let apis = [Kiln::api_only(&redis, &flags), Kiln::api_only(&redis, &flags)];
    let _workers = [Kiln::worker(&redis, &[]), Kiln::worker(&redis, &[])];

    let made = created(
        &apis[0],
        &key,
        json!({"cron": "*/2 * * * * *", "kind": "plot", "params": plot_params(), "priority": "high"}),
    )
    .await;
    let id = made["id"].as_str().unwrap().to_owned();
    assert_eq!(made["cron"], "*/2 * * * * *", "{made}");
    let first_due = time_of(&made["next_at"]);
    assert_eq!(first_due.second() % 2, 0, "{made}");
    assert_eq!(first_due.nanosecond(), 0, "{made}");
    // Both APIs see it.
    let listed = send_json(client().get(apis[1].url("/v1/schedules")).bearer_auth(&key)).await;
    assert_eq!(listed["schedules"][0]["id"], id.as_str(), "{listed}");

    sleep(20).await;
    assert_eq!(delete(&apis[1], &key, &id).await, 204);
    // Settled: a fire racing the delete has ended.
    sleep(1).await;
    let mut due_times: Vec<OffsetDateTime> = Vec::new();
    for job in jobs(&apis[0], &key).await {
        assert_eq!(job["schedule"], id.as_str(), "{job}");
        assert_eq!(job["kind"], "plot", "{job}");
        assert_eq!(job["priority"], "high", "{job}");
        due_times.push(time_of(&job["scheduled_for"]));
    }
    due_times.sort();
    assert!(
        due_times.len() >= 8,
        "only {} jobs in 20 s: {due_times:?}",
        due_times.len()
    );
    assert_eq!(due_times[0], first_due, "{due_times:?}");
    for pair in due_times.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            time::Duration::seconds(2),
            "a duplicate or a gap between due times: {due_times:?}"
        );
    }
    // Deleted: no more jobs, and the schedule is gone.
    let count = due_times.len();
    sleep(3).await;
    assert_eq!(jobs(&apis[0], &key).await.len(), count);
    assert_eq!(schedule(&apis[0], &key, &id).await.status(), 404);
    // The jobs ran.
    let newest = jobs(&apis[0], &key).await[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(wait_final_as(&apis[0], &key, &newest).await["status"], "succeeded");
}

#[tokio::test]
async fn bad_schedules_are_refused_and_the_tenants_limit_holds() {
    let redis = Redis::start();
    let key = add_tenant(&redis, "acme");
    let other = add_tenant(&redis, "other");
    let kiln = Kiln::api_only(
        &redis,
        &[
            "--admin-key",
            ADMIN_KEY,
            "--min-schedule-secs",
            "60",
            "--max-schedules-per-tenant",
            "2",
        ],
    );
    let cases = [
        (json!({"cron": "* * *", "kind": "plot"}), 422, "5 (minute hour"),
        (
            json!({"cron": "99 * * * *", "kind": "plot"}),
            422,
            "not a cron expression",
        ),
        (
            json!({"cron": "*/2 * * * * *", "kind": "plot"}),
            422,
            "KILN_MIN_SCHEDULE_SECS",
        ),
        (
            json!({"cron": "0 * * * *", "kind": "no-such-kind"}),
            422,
            "no job kind named `no-such-kind`",
        ),
        (
            json!({"cron": "0 * * * *", "kind": "plot", "params": {"series": "nope"}}),
            422,
            "params do not fit",
        ),
        (
            json!({"cron": "0 * * * *", "kind": "crop", "params": {}}),
            422,
            "needs an input",
        ),
        (
            json!({"cron": "0 * * * *", "kind": "plot", "params": plot_params(), "input": {"blob": format!("sha256:{}", "0".repeat(64))}}),
            422,
            "POST /v1/blobs",
        ),
        (
            json!({"cron": "0 * * * *", "kind": "plot", "nonsense": 1}),
            400,
            "nonsense",
        ),
    ];
    for (body, status, detail) in cases {
        let problem = expect_problem(create(&kiln, &key, body.clone()).await, status).await;
        assert_detail_contains(&problem, detail);
    }
    // The tenant's limit, named; a delete makes room.
    let hourly = json!({"cron": "0 * * * *", "kind": "plot", "params": plot_params()});
    let first = created(&kiln, &key, hourly.clone()).await;
    created(&kiln, &key, hourly.clone()).await;
    let refused = create(&kiln, &key, hourly.clone()).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_detail_contains(&expect_problem(refused, 429).await, "KILN_MAX_SCHEDULES_PER_TENANT");
    let first_id = first["id"].as_str().unwrap();
    // Another tenant sees nothing of it.
    assert_eq!(schedule(&kiln, &other, first_id).await.status(), 404);
    assert_eq!(delete(&kiln, &other, first_id).await, 404);
    assert_eq!(delete(&kiln, &key, first_id).await, 204);
    assert_eq!(delete(&kiln, &key, first_id).await, 404);
    assert_eq!(schedule(&kiln, &key, "not-an-id").await.status(), 404);
    created(&kiln, &key, hourly).await;
    // An hourly cron is due on the hour.
    let listed = send_json(client().get(kiln.url("/v1/schedules")).bearer_auth(&key)).await;
    for s in listed["schedules"].as_array().unwrap() {
        let next = time_of(&s["next_at"]);
        assert_eq!((next.minute(), next.second()), (0, 0), "{s}");
    }

    // Removing the tenant removes its schedules.
    let (ok, _) = crate::tenants::tenant_cli(&redis, &["remove", "acme"]);
    assert!(ok);
    let left: i64 = redis::cmd("ZCARD")
        .arg("{kiln}:schedules")
        .query(&mut redis.conn())
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn a_schedule_keeps_its_own_input_and_a_due_time_the_quota_refuses_is_skipped_and_recorded() {
    let redis = Redis::start();
    // One job waiting at most, and no workers: the second due time finds the queue full.
    let key = add_tenant_with(&redis, "acme", &["--max-queued", "1"]);
    let kiln = Kiln::api_only(&redis, &["--admin-key", ADMIN_KEY, "--min-schedule-secs", "1"]);
    let mut csv = String::from("year,a\n");
    for year in 2000..2010 {
        csv.push_str(&format!("{year},{}\n", year - 2000));
    }
    let response = client()
        .post(kiln.url("/v1/blobs"))
        .bearer_auth(&key)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let blob: Value = response.json().await.unwrap();
    let blob_id = blob["id"].as_str().unwrap().to_owned();
    let params = json!({"csv": {"x": "year", "y": ["a"]}, "width": 320, "height": 240});
    let made = created(
        &kiln,
        &key,
        json!({"cron": "* * * * * *", "kind": "plot", "params": params, "input": {"blob": blob_id}}),
    )
    .await;
    assert_eq!(made["input"], format!("blob:{blob_id}"), "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    // The blob goes; the schedule has its own copy.
    let response = client()
        .delete(kiln.url(&format!("/v1/blobs/{blob_id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());

    let until = Instant::now() + Duration::from_secs(20);
    let doc = loop {
        let doc: Value = schedule(&kiln, &key, &id).await.json().await.unwrap();
        if doc["skipped"].as_u64().unwrap() >= 2 {
            break doc;
        }
        assert!(Instant::now() < until, "no due time was skipped: {doc}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(doc["fired"], 1, "{doc}");
    assert!(
        doc["last_error"]["message"].as_str().unwrap().contains("quota:queued"),
        "{doc}"
    );
    let listed = jobs(&kiln, &key).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(doc["last_job"], listed[0]["id"], "{doc}");

    // A worker runs the one job on the schedule's copy of the input.
    let _worker = Kiln::worker(&redis, &[]);
    let job_id = listed[0]["id"].as_str().unwrap();
    let done = wait_final_as(&kiln, &key, job_id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(delete(&kiln, &key, &id).await, 204);
}

#[tokio::test]
async fn the_cli_adds_lists_and_removes_schedules() {
    let redis = Redis::start();
    let key = add_tenant(&redis, "acme");
    let kiln = Kiln::api_only(&redis, &["--admin-key", ADMIN_KEY]);
    let params = plot_params().to_string();
    let (code, out) = cli(
        &kiln,
        &key,
        &["schedule", "add", "*/5 * * * *", "plot", "--params", &params],
    );
    assert_eq!(code, 0, "{out}");
    let (id, next) = out.trim().split_once('\t').unwrap_or_else(|| panic!("{out}"));
    assert_eq!(time_of(&json!(next)).minute() % 5, 0, "{out}");
    let (code, out) = cli(&kiln, &key, &["schedule", "list"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with(&format!("{id}\t*/5 * * * *\tplot\tnext ")), "{out}");
    let (code, out) = cli(&kiln, &key, &["schedule", "add", "every day", "plot"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("fields"), "{out}");
    let (code, out) = cli(&kiln, &key, &["schedule", "rm", id]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = cli(&kiln, &key, &["schedule", "list"]);
    assert_eq!((code, out.as_str()), (0, ""));
    let (code, out) = cli(&kiln, &key, &["schedule", "--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("add") && out.contains("list") && out.contains("rm"),
        "{out}"
    );
}
