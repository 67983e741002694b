//! Tenants: API keys, isolation between tenants, admin-only routes, and fair scheduling under a flood.

use crate::common::*;
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

const ADMIN_KEY: &str = "test-admin-key";

/// Runs `kiln tenant ...` against `redis` and returns its stdout.
fn tenant_cli(redis: &Redis, args: &[&str]) -> (bool, String) {
    let output = Command::new(kiln_bin())
        .arg("tenant")
        .args(args)
        .env("KILN_REDIS_URL", &redis.url)
        .output()
        .unwrap();
    (output.status.success(), String::from_utf8(output.stdout).unwrap())
}

/// Adds a tenant and returns its key: the last line of stdout.
fn add_tenant(redis: &Redis, name: &str) -> String {
    add_tenant_with(redis, name, &[])
}

async fn submit_as(kiln: &Kiln, key: &str, kind: &str, params: Value) -> reqwest::Response {
    client()
        .post(kiln.url(&format!("/v1/jobs/{kind}")))
        .bearer_auth(key)
        .json(&json!({ "params": params }))
        .send()
        .await
        .unwrap()
}

fn tiny_plot() -> Value {
    json!({"series": [{"x": [0, 1], "y": [1, 0]}]})
}

#[tokio::test]
async fn keys_isolate_tenants_and_guard_admin_routes() {
    let redis = Redis::start();
    let acme = add_tenant(&redis, "acme");
    let globex = add_tenant(&redis, "globex");
    assert!(acme.starts_with("kiln_") && acme != globex);
    let (ok, _) = tenant_cli(&redis, &["add", "acme"]);
    assert!(!ok, "a tenant name can be taken once");
    let (ok, _) = tenant_cli(&redis, &["add", "Not Valid"]);
    assert!(!ok);
    let (_, listed) = tenant_cli(&redis, &["list"]);
    assert!(listed.contains("acme") && listed.contains("globex"), "{listed}");

    let kiln = Kiln::api_only(&redis, &["--admin-key", ADMIN_KEY]);
    let http = client();

    // No key, a malformed header, an unknown key: 401 with a Bearer challenge.
    let response = http.get(kiln.url("/v1/jobs")).send().await.unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    expect_problem(response, 401).await;
    let response = http
        .get(kiln.url("/v1/jobs"))
        .header("authorization", "Basic x")
        .send()
        .await
        .unwrap();
    expect_problem(response, 401).await;
    let response = http
        .get(kiln.url("/v1/jobs"))
        .bearer_auth("kiln_nope")
        .send()
        .await
        .unwrap();
    expect_problem(response, 401).await;

    // A tenant's job is invisible to the other tenant.
    let response = submit_as(&kiln, &acme, "plot", tiny_plot()).await;
    assert_eq!(response.status(), 202);
    let job: Value = response.json().await.unwrap();
    let id = job["id"].as_str().unwrap();
    let own = http
        .get(kiln.url(&format!("/v1/jobs/{id}")))
        .bearer_auth(&acme)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    for path in [format!("/v1/jobs/{id}"), format!("/v1/jobs/{id}/result")] {
        let other = http.get(kiln.url(&path)).bearer_auth(&globex).send().await.unwrap();
        expect_problem(other, 404).await;
    }
    let other = http
        .delete(kiln.url(&format!("/v1/jobs/{id}")))
        .bearer_auth(&globex)
        .send()
        .await
        .unwrap();
    expect_problem(other, 404).await;
    let listing: Value = send_json(http.get(kiln.url("/v1/jobs")).bearer_auth(&globex)).await;
    assert_eq!(listing["jobs"], json!([]));
    let listing: Value = send_json(http.get(kiln.url("/v1/jobs")).bearer_auth(&acme)).await;
    assert_eq!(listing["jobs"].as_array().unwrap().len(), 1);

    // Every Redis key of the job carries its tenant.
    let mut conn = redis.conn();
    let exists: bool = redis::cmd("EXISTS")
        .arg(format!("{{kiln}}:job:acme:{id}"))
        .query(&mut conn)
        .unwrap();
    assert!(exists);

    // Admin routes: tenant keys get 403, the admin key gets through; the admin key is no tenant.
    let response = http
        .delete(kiln.url("/v1/kinds/plot"))
        .bearer_auth(&acme)
        .send()
        .await
        .unwrap();
    expect_problem(response, 403).await;
    let response = http
        .get(kiln.url("/v1/jobs"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    expect_problem(response, 403).await;
    let response = http
        .delete(kiln.url("/v1/kinds/no-such-kind"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    expect_problem(response, 404).await;

    // A removed tenant's key stops working within the key cache's refresh time.
    let (ok, _) = tenant_cli(&redis, &["remove", "globex"]);
    assert!(ok);
    let (ok, _) = tenant_cli(&redis, &["remove", "globex"]);
    assert!(!ok, "removing twice fails");
    let mut refused = false;
    for _ in 0..50 {
        let response = http
            .get(kiln.url("/v1/jobs"))
            .bearer_auth(&globex)
            .send()
            .await
            .unwrap();
        if response.status() == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "a removed key is refused");
    let stored: Vec<String> = redis::cmd("HVALS").arg("{kiln}:api-keys").query(&mut conn).unwrap();
    assert_eq!(stored, ["acme"], "keys are stored hashed, one per tenant");
    let hashes: Vec<String> = redis::cmd("HKEYS").arg("{kiln}:api-keys").query(&mut conn).unwrap();
    assert!(!hashes.contains(&acme), "the key itself is never stored");
}

#[tokio::test]
async fn a_flooding_tenant_does_not_starve_another() {
    let redis = Redis::start();
    let flooder = add_tenant(&redis, "flooder");
    let polite = add_tenant(&redis, "polite");
    let kinds = hostile_kinds_dir();
    let kinds_dir = kinds.path().to_str().unwrap();
    // Queue everything before any worker runs, so the order of starts depends only on the scheduler.
    let kiln = Kiln::api_only(&redis, &["--admin-key", ADMIN_KEY, "--kinds-dir", kinds_dir]);
    const FLOOD: usize = 60;
    let job = json!({"mode": "spin", "ms": 40});
    let mut flood_ids = Vec::new();
    for _ in 0..FLOOD {
        let response = submit_as(&kiln, &flooder, "hostile", job.clone()).await;
        assert_eq!(response.status(), 202);
        let doc: Value = response.json().await.unwrap();
        flood_ids.push(doc["id"].as_str().unwrap().to_owned());
    }
    // Submitted after the whole flood, yet it must not wait for it: round-robin across tenants.
    let response = submit_as(&kiln, &polite, "hostile", job.clone()).await;
    let doc: Value = response.json().await.unwrap();
    let polite_id = doc["id"].as_str().unwrap().to_owned();
    let _worker = Kiln::worker(&redis, &["--kinds-dir", kinds_dir]);

    let started = |doc: &Value| time_of(doc["started_at"].as_str().unwrap());
    let polite_doc = wait_final_as(&kiln, &polite, &polite_id).await;
    assert_eq!(polite_doc["status"], "succeeded", "{polite_doc}");
    let polite_started = started(&polite_doc);
    let mut flood_started_later = 0;
    for id in &flood_ids {
        let doc = wait_final_as(&kiln, &flooder, id).await;
        assert_eq!(doc["status"], "succeeded");
        if started(&doc) > polite_started {
            flood_started_later += 1;
        }
    }
    assert!(
        flood_started_later >= FLOOD - 2,
        "the polite tenant's job should start within about one job per worker, not after the flood; \
         only {flood_started_later} of {FLOOD} flood jobs started after it"
    );
}

fn time_of(rfc3339: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).unwrap()
}

async fn wait_final_as(kiln: &Kiln, key: &str, id: &str) -> Value {
    for _ in 0..1200 {
        let doc: Value = send_json(client().get(kiln.url(&format!("/v1/jobs/{id}"))).bearer_auth(key)).await;
        if ["succeeded", "failed", "cancelled"].contains(&doc["status"].as_str().unwrap()) {
            return doc;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} did not finish");
}

#[tokio::test]
async fn quotas_refuse_with_429_and_name_the_quota() {
    let redis = Redis::start();
    let small = add_tenant_with(&redis, "small", &["--max-queued", "3"]);
    let other = add_tenant(&redis, "other");
    let (ok, _) = tenant_cli(&redis, &["set", "other", "--max-per-second", "2"]);
    assert!(ok);
    let (ok, _) = tenant_cli(&redis, &["set", "nobody", "--max-per-second", "2"]);
    assert!(!ok, "setting quotas of an unknown tenant fails");
    let (_, listed) = tenant_cli(&redis, &["list"]);
    assert!(listed.contains("max-queued 3"), "{listed}");
    // API only: nothing runs, so the queue only grows.
    let kiln = Kiln::api_only(&redis, &["--admin-key", ADMIN_KEY]);

    for _ in 0..3 {
        assert_eq!(submit_as(&kiln, &small, "plot", tiny_plot()).await.status(), 202);
    }
    let refused = submit_as(&kiln, &small, "plot", tiny_plot()).await;
    assert_eq!(refused.headers()["retry-after"], "5");
    let problem = expect_problem(refused, 429).await;
    assert!(problem["detail"].as_str().unwrap().contains("max-queued"), "{problem}");

    // The rate quota: at most 2 per second; a burst of 6 gets some 429s naming it.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = submit_as(&kiln, &other, "plot", tiny_plot()).await;
        if response.status() == 429 {
            let problem = expect_problem(response, 429).await;
            assert!(problem["detail"].as_str().unwrap().contains("submit-rate"), "{problem}");
            statuses.push(429);
        } else {
            statuses.push(response.status().as_u16());
        }
    }
    let accepted = statuses.iter().filter(|s| **s == 202).count();
    assert!(
        (2..=4).contains(&accepted),
        "2 per second over at most two seconds: {statuses:?}"
    );
    assert!(statuses.contains(&429));

    // The byte quota, set per tenant: queued params count, so the third tiny plot does not fit.
    let tiny = add_tenant(&redis, "tiny");
    let params_len = tiny_plot().to_string().len();
    let max_bytes = (params_len * 5 / 2).to_string();
    let (ok, _) = tenant_cli(&redis, &["set", "tiny", "--max-bytes", &max_bytes]);
    assert!(ok);
    tokio::time::sleep(Duration::from_millis(2500)).await; // the key ring rereads quotas every 2 s
    for _ in 0..2 {
        assert_eq!(submit_as(&kiln, &tiny, "plot", tiny_plot()).await.status(), 202);
    }
    let refused = submit_as(&kiln, &tiny, "plot", tiny_plot()).await;
    assert!(refused.headers().contains_key("retry-after"));
    let problem = expect_problem(refused, 429).await;
    assert!(problem["detail"].as_str().unwrap().contains("max-bytes"), "{problem}");
}

#[tokio::test]
async fn a_running_limit_holds_a_tenant_to_its_share() {
    let redis = Redis::start();
    let limited = add_tenant_with(&redis, "limited", &["--max-running", "1"]);
    let free = add_tenant(&redis, "free");
    let kinds = hostile_kinds_dir();
    let kinds_dir = kinds.path().to_str().unwrap();
    let kiln = Kiln::api_only(&redis, &["--admin-key", ADMIN_KEY, "--kinds-dir", kinds_dir]);
    let job = json!({"mode": "spin", "ms": 300});
    let mut limited_ids = Vec::new();
    for _ in 0..3 {
        let doc: Value = submit_as(&kiln, &limited, "hostile", job.clone())
            .await
            .json()
            .await
            .unwrap();
        limited_ids.push(doc["id"].as_str().unwrap().to_owned());
    }
    let doc: Value = submit_as(&kiln, &free, "hostile", job.clone())
        .await
        .json()
        .await
        .unwrap();
    let free_id = doc["id"].as_str().unwrap().to_owned();
    let _worker = Kiln::worker(&redis, &["--kinds-dir", kinds_dir, "--workers", "2"]);

    let mut spans = Vec::new();
    for id in &limited_ids {
        let doc = wait_final_as(&kiln, &limited, id).await;
        assert_eq!(doc["status"], "succeeded");
        spans.push((
            time_of(doc["started_at"].as_str().unwrap()),
            time_of(doc["finished_at"].as_str().unwrap()),
        ));
    }
    spans.sort();
    for pair in spans.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "the limited tenant ran two jobs at once: {spans:?}"
        );
    }
    // Meanwhile the other worker served the other tenant.
    let free_doc = wait_final_as(&kiln, &free, &free_id).await;
    assert!(time_of(free_doc["started_at"].as_str().unwrap()) < spans[1].0);
}

/// Adds a tenant with quota flags and returns its key.
fn add_tenant_with(redis: &Redis, name: &str, quotas: &[&str]) -> String {
    let mut args = vec!["add", name];
    args.extend_from_slice(quotas);
    let (ok, stdout) = tenant_cli(redis, &args);
    assert!(ok, "kiln tenant add {name} failed: {stdout}");
    stdout.lines().last().unwrap().trim().to_owned()
}

#[tokio::test]
async fn the_admin_key_manages_tenants_over_http() {
    let redis = Redis::start();
    let kiln = Kiln::api_only(&redis, &["--admin-key", ADMIN_KEY]);
    let http = client();
    let admin = |request: reqwest::RequestBuilder| request.bearer_auth(ADMIN_KEY);

    let response = admin(http.post(kiln.url("/v1/tenants")))
        .json(&json!({"name": "web", "quotas": {"max_queued": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let issued: Value = response.json().await.unwrap();
    let key = issued["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("kiln_"));

    // The key works at once on this API, and the quota with it.
    assert_eq!(submit_as(&kiln, &key, "plot", tiny_plot()).await.status(), 202);
    expect_problem(submit_as(&kiln, &key, "plot", tiny_plot()).await, 429).await;
    let response = admin(http.put(kiln.url("/v1/tenants/web/quotas")))
        .json(&json!({"max_queued": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(submit_as(&kiln, &key, "plot", tiny_plot()).await.status(), 202);

    let listed: Value = send_json(admin(http.get(kiln.url("/v1/tenants")))).await;
    assert_eq!(listed["tenants"][0]["name"], "web");
    assert_eq!(listed["tenants"][0]["quotas"]["max_queued"], 5);
    assert!(listed.to_string().find(&key).is_none(), "keys are never shown again");

    // Tenant keys cannot manage tenants; bad names and repeats are refused.
    expect_problem(
        http.get(kiln.url("/v1/tenants"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    let taken = admin(http.post(kiln.url("/v1/tenants")))
        .json(&json!({"name": "web"}))
        .send()
        .await
        .unwrap();
    expect_problem(taken, 409).await;
    let bad = admin(http.post(kiln.url("/v1/tenants")))
        .json(&json!({"name": "No Good"}))
        .send()
        .await
        .unwrap();
    expect_problem(bad, 400).await;
    let typo = admin(http.post(kiln.url("/v1/tenants")))
        .json(&json!({"nmae": "x"}))
        .send()
        .await
        .unwrap();
    expect_problem(typo, 400).await;

    assert_eq!(
        admin(http.delete(kiln.url("/v1/tenants/web")))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    expect_problem(submit_as(&kiln, &key, "plot", tiny_plot()).await, 401).await;
    expect_problem(
        admin(http.delete(kiln.url("/v1/tenants/web"))).send().await.unwrap(),
        404,
    )
    .await;
}
