//! Tenants: API keys, isolation between tenants, admin-only routes, and fair scheduling under a flood.

use crate::common::*;
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

const ADMIN_KEY: &str = "test-admin-key";

/// Runs `kiln tenant ...` against `redis` and returns its stdout.
pub(crate) fn tenant_cli(redis: &Redis, args: &[&str]) -> (bool, String) {
    let output = Command::new(kiln_bin())
        .arg("tenant")
        .args(args)
        .env("KILN_REDIS_URL", &redis.url)
        .output()
        .unwrap();
    (output.status.success(), String::from_utf8(output.stdout).unwrap())
}

/// Adds a tenant and returns its key: the last line of stdout.
pub(crate) fn add_tenant(redis: &Redis, name: &str) -> String {
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

/// The status of `GET /v1/jobs` with `key`: whether the API takes the key.
async fn jobs_status(kiln: &Kiln, key: &str) -> u16 {
    send_status(client().get(kiln.url("/v1/jobs")).bearer_auth(key)).await
}

/// Asks [`jobs_status`] every `pause` until `key` is refused (401) or `keep_trying` says stop; whether
/// it was refused. Keys change by a reread of the key table, so a test waits for it.
async fn refused_while(kiln: &Kiln, key: &str, pause: Duration, mut keep_trying: impl FnMut() -> bool) -> bool {
    loop {
        if jobs_status(kiln, key).await == 401 {
            return true;
        }
        if !keep_trying() {
            return false;
        }
        tokio::time::sleep(pause).await;
    }
}

/// A `keep_trying` for [`refused_while`] that allows `tries` requests in all.
fn at_most(tries: u32) -> impl FnMut() -> bool {
    let mut made = 0;
    move || {
        made += 1;
        made < tries
    }
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
    send_problem(http.get(kiln.url("/v1/jobs")).header("authorization", "Basic x"), 401).await;
    send_problem(http.get(kiln.url("/v1/jobs")).bearer_auth("kiln_nope"), 401).await;

    // A tenant's job is invisible to the other tenant.
    let response = submit_as(&kiln, &acme, "plot", tiny_plot()).await;
    assert_eq!(response.status(), 202);
    let job: Value = response.json().await.unwrap();
    let id = job["id"].as_str().unwrap();
    assert_eq!(
        send_status(http.get(kiln.url(&format!("/v1/jobs/{id}"))).bearer_auth(&acme)).await,
        200
    );
    for path in [format!("/v1/jobs/{id}"), format!("/v1/jobs/{id}/result")] {
        send_problem(http.get(kiln.url(&path)).bearer_auth(&globex), 404).await;
    }
    send_problem(
        http.delete(kiln.url(&format!("/v1/jobs/{id}"))).bearer_auth(&globex),
        404,
    )
    .await;
    let listing: Value = send_json(http.get(kiln.url("/v1/jobs")).bearer_auth(&globex)).await;
    assert_eq!(listing["jobs"], json!([]));
    let listing: Value = send_json(http.get(kiln.url("/v1/jobs")).bearer_auth(&acme)).await;
    assert_eq!(listing["jobs"].as_array().unwrap().len(), 1);

    // Every Redis key of the job carries its tenant's id (`acme.<hex>`).
    let mut conn = redis.conn();
    let found: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{{kiln}}:job:acme.*:{id}"))
        .query(&mut conn)
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");

    // Admin routes: tenant keys get 403, the admin key gets through; the admin key is no tenant.
    send_problem(http.delete(kiln.url("/v1/kinds/plot")).bearer_auth(&acme), 403).await;
    send_problem(http.get(kiln.url("/v1/jobs")).bearer_auth(ADMIN_KEY), 403).await;
    send_problem(
        http.delete(kiln.url("/v1/kinds/no-such-kind")).bearer_auth(ADMIN_KEY),
        404,
    )
    .await;

    // A removed tenant's key stops working within the key cache's refresh time.
    let (ok, _) = tenant_cli(&redis, &["remove", "globex"]);
    assert!(ok);
    let (ok, _) = tenant_cli(&redis, &["remove", "globex"]);
    assert!(!ok, "removing twice fails");
    let refused = refused_while(&kiln, &globex, Duration::from_millis(100), at_most(50)).await;
    assert!(refused, "a removed key is refused");
    let stored: Vec<String> = redis::cmd("HVALS").arg("{kiln}:api-keys").query(&mut conn).unwrap();
    assert!(
        stored.len() == 1 && stored[0].starts_with("acme."),
        "keys are stored hashed, one per tenant, naming its id: {stored:?}"
    );
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

pub(crate) async fn wait_final_as(kiln: &Kiln, key: &str, id: &str) -> Value {
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
    assert_detail_contains(&problem, "max-queued");

    // The rate quota: at most 2 per second; a burst of 6 gets some 429s naming it.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = submit_as(&kiln, &other, "plot", tiny_plot()).await;
        if response.status() == 429 {
            let problem = expect_problem(response, 429).await;
            assert_detail_contains(&problem, "submit-rate");
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
    assert_detail_contains(&problem, "max-bytes");
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
pub(crate) fn add_tenant_with(redis: &Redis, name: &str, quotas: &[&str]) -> String {
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
    assert_eq!(
        send_status(admin(http.put(kiln.url("/v1/tenants/web/quotas"))).json(&json!({"max_queued": 5}))).await,
        200
    );
    assert_eq!(submit_as(&kiln, &key, "plot", tiny_plot()).await.status(), 202);

    let listed: Value = send_json(admin(http.get(kiln.url("/v1/tenants")))).await;
    assert_eq!(listed["tenants"][0]["name"], "web");
    assert_eq!(listed["tenants"][0]["quotas"]["max_queued"], 5);
    assert!(listed.to_string().find(&key).is_none(), "keys are never shown again");

    // Tenant keys cannot manage tenants; bad names and repeats are refused.
    send_problem(http.get(kiln.url("/v1/tenants")).bearer_auth(&key), 403).await;
    send_problem(
        admin(http.post(kiln.url("/v1/tenants"))).json(&json!({"name": "web"})),
        409,
    )
    .await;
    send_problem(
        admin(http.post(kiln.url("/v1/tenants"))).json(&json!({"name": "No Good"})),
        400,
    )
    .await;
    send_problem(
        admin(http.post(kiln.url("/v1/tenants"))).json(&json!({"nmae": "x"})),
        400,
    )
    .await;

    assert_eq!(
        admin(http.delete(kiln.url("/v1/tenants/web")))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    expect_problem(submit_as(&kiln, &key, "plot", tiny_plot()).await, 401).await;
    send_problem(admin(http.delete(kiln.url("/v1/tenants/web"))), 404).await;
}

/// Runs `kiln ARGS` against `redis` with `env`, expecting it to exit at once; returns (exit code, stderr).
fn kiln_exits(redis: &Redis, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(kiln_bin())
        .args(args)
        .env("KILN_REDIS_URL", &redis.url)
        .env("KILN_DATA_DIR", data.path())
        .env_remove("KILN_ADMIN_KEY")
        .env_remove("KILN_DEV")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Starts `kiln ARGS` and collects its stdout up to the API's address line; kills it after.
fn stdout_until_listening(redis: &Redis, args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    use std::io::{BufRead, BufReader};
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(kiln_bin())
        .args(args)
        .args(["--workers", "1"])
        .env("KILN_REDIS_URL", &redis.url)
        .env("KILN_DATA_DIR", data.path())
        .env("KILN_LOG", "error")
        .env_remove("KILN_ADMIN_KEY")
        .env_remove("KILN_DEV")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.starts_with("kiln: API listening on ");
        lines.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

#[tokio::test]
async fn serve_and_api_refuse_to_start_without_a_mode() {
    let redis = Redis::start();
    for role in ["serve", "api"] {
        let (code, stderr) = kiln_exits(&redis, &[role, "--listen", "127.0.0.1:0"], &[]);
        assert_eq!(code, Some(1), "{role} without a mode: {stderr}");
        assert!(
            stderr.contains("KILN_ADMIN_KEY") && stderr.contains("--dev") && stderr.contains("KILN_DEV=1"),
            "the message says how to set either: {stderr}"
        );
    }
    let (code, stderr) = kiln_exits(&redis, &["api", "--listen", "127.0.0.1:0"], &[("KILN_ADMIN_KEY", "")]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("empty"), "{stderr}");
    let (code, stderr) = kiln_exits(
        &redis,
        &["api", "--listen", "127.0.0.1:0", "--dev"],
        &[("KILN_ADMIN_KEY", ADMIN_KEY)],
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("exclude each other"), "{stderr}");

    // KILN_DEV=1 is the variable of --dev, and dev mode says so; workers need no mode at all.
    let lines = stdout_until_listening(&redis, &["api", "--listen", "127.0.0.1:0"], &[("KILN_DEV", "1")]);
    assert!(lines.iter().any(|l| l.contains("DEV MODE")), "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.contains("other machines may reach")),
        "{lines:?}"
    );
    let _worker = Kiln::worker(&redis, &[]);
    // Dev mode on a non-loopback address starts, but warns loudly.
    let lines = stdout_until_listening(&redis, &["api", "--dev", "--listen", "0.0.0.0:0"], &[]);
    assert!(
        lines.iter().any(|l| l.contains("other machines may reach")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn dev_mode_serves_only_this_machine_and_stays_dev_mode() {
    let redis = Redis::start();
    let kiln = Kiln::api_only(&redis, &[]);
    let http = client();
    let port = kiln.base.rsplit(':').next().unwrap().to_owned();
    let plot = json!({"params": tiny_plot()});

    // DNS rebinding: a page on evil.example whose name now points at 127.0.0.1 sends its own Host.
    for host in ["evil.example", &format!("evil.example:{port}"), "10.1.2.3"] {
        let problem = send_problem(http.get(kiln.url("/v1/jobs")).header("host", host), 403).await;
        assert_detail_contains(&problem, "loopback");
    }
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        assert_eq!(
            send_status(http.get(kiln.url("/v1/jobs")).header("host", host)).await,
            200
        );
    }

    // CSRF: writes from another origin are refused, from Kiln's own page (or no browser at all) not.
    let own = kiln.base.clone();
    let refused: [&[(&str, &str)]; 4] = [
        &[("origin", "http://evil.example")],
        &[("origin", "null")],
        &[("origin", &format!("http://localhost:{port}"))],
        &[("sec-fetch-site", "cross-site")],
    ];
    for headers in refused {
        let mut request = http.post(kiln.url("/v1/jobs/plot")).json(&plot);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let problem = send_problem(request, 403).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("other origins"),
            "{headers:?}: {problem}"
        );
        send_problem(
            http.delete(kiln.url("/v1/kinds/plot"))
                .header(headers[0].0, headers[0].1),
            403,
        )
        .await;
    }
    assert_eq!(
        send_status(
            http.post(kiln.url("/v1/jobs/plot"))
                .header("origin", &own)
                .header("sec-fetch-site", "same-origin")
                .json(&plot)
        )
        .await,
        202,
        "Kiln's own page may submit"
    );
    assert_eq!(
        submit_as(&kiln, "any-key-is-ignored", "plot", tiny_plot())
            .await
            .status(),
        202
    );
    // Reading from another origin is harmless (the browser hides the answer without CORS).
    assert_eq!(
        send_status(http.get(kiln.url("/v1/kinds")).header("origin", "http://evil.example")).await,
        200
    );

    // Adding tenants does not switch dev mode off (nobody would hold an admin key).
    assert_eq!(
        send_status(http.post(kiln.url("/v1/tenants")).json(&json!({"name": "acme"}))).await,
        201
    );
    add_tenant(&redis, "globex");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let listing: Value = send_json(http.get(kiln.url("/v1/jobs"))).await;
    assert_eq!(
        listing["jobs"].as_array().unwrap().len(),
        2,
        "still dev mode, tenant `default`: {listing}"
    );
    assert_eq!(
        send_status(http.get(kiln.url("/v1/stats"))).await,
        200,
        "dev mode keeps admin rights"
    );
}

#[tokio::test]
async fn an_emptied_key_table_leaves_the_api_closed() {
    let redis = Redis::start();
    let acme = add_tenant(&redis, "acme");
    let kiln = Kiln::api_only(&redis, &["--admin-key", ADMIN_KEY]);
    let http = client();
    assert_eq!(submit_as(&kiln, &acme, "plot", tiny_plot()).await.status(), 202);

    // A flush, a failover to an empty replica, a restored old backup: the key table is gone.
    let mut conn = redis.conn();
    redis::cmd("FLUSHALL").query::<()>(&mut conn).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await; // past the key cache's reread
    for path in ["/v1/jobs", "/v1/stats", "/v1/tenants"] {
        send_problem(http.get(kiln.url(path)), 401).await;
    }
    expect_problem(submit_as(&kiln, "", "plot", tiny_plot()).await, 401).await;
    send_problem(
        http.post(kiln.url("/v1/jobs/plot"))
            .json(&json!({"params": tiny_plot()})),
        401,
    )
    .await;
    send_problem(
        http.post(kiln.url("/v1/tenants")).json(&json!({"name": "intruder"})),
        401,
    )
    .await;
    expect_problem(submit_as(&kiln, &acme, "plot", tiny_plot()).await, 401).await;
    // The admin key still works: it lives in the configuration, not in Redis.
    let listed: Value = send_json(http.get(kiln.url("/v1/tenants")).bearer_auth(ADMIN_KEY)).await;
    assert_eq!(listed["tenants"], json!([]));
}

/// Calls of one Redis command so far (`INFO commandstats`), scripts' calls included.
fn command_calls(redis: &Redis, command: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(&mut redis.conn()).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

#[tokio::test]
async fn a_new_key_works_at_once_and_bad_keys_cost_no_round_trips() {
    let redis = Redis::start();
    let kiln = Kiln::api_only(&redis, &["--admin-key", ADMIN_KEY]);
    let http = client();
    // Straight into Redis with the CLI, then at once: no wait for the cache's reread.
    for name in ["first", "second", "third"] {
        let key = add_tenant(&redis, name);
        assert_eq!(
            jobs_status(&kiln, &key).await,
            200,
            "the key of `{name}` works on its first request"
        );
    }

    // A flood of one bad key: refused from memory, not by asking Redis each time.
    let before = command_calls(&redis, "zscore");
    let started = std::time::Instant::now();
    const FLOOD: u64 = 300;
    for _ in 0..FLOOD {
        assert_eq!(
            send_status(http.get(kiln.url("/v1/jobs")).bearer_auth("kiln_bad")).await,
            401
        );
    }
    let lookups = command_calls(&redis, "zscore") - before;
    let allowed = started.elapsed().as_secs() + 2; // one lookup per second of the negative cache, at most
    assert!(
        lookups <= allowed,
        "{lookups} Redis lookups for {FLOOD} requests with one bad key in {:?}",
        started.elapsed()
    );

    // A removed key stops within about 2 s (the reread); generous margin for a loaded machine.
    let doomed = add_tenant(&redis, "doomed");
    assert_eq!(jobs_status(&kiln, &doomed).await, 200);
    let (ok, _) = tenant_cli(&redis, &["remove", "doomed"]);
    assert!(ok);
    let removed_at = std::time::Instant::now();
    let refused = refused_while(&kiln, &doomed, Duration::from_millis(50), || {
        removed_at.elapsed() < Duration::from_secs(4)
    })
    .await;
    assert!(refused, "a removed key still works");
}

#[tokio::test]
async fn a_removed_tenant_takes_its_jobs_and_a_new_one_of_its_name_starts_empty() {
    let redis = Redis::start();
    let acme = add_tenant(&redis, "acme");
    let other = add_tenant(&redis, "other");
    let kiln = Kiln::api_only(&redis, &["--admin-key", ADMIN_KEY]);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let doc: Value = submit_as(&kiln, &acme, "plot", tiny_plot()).await.json().await.unwrap();
        ids.push(doc["id"].as_str().unwrap().to_owned());
    }
    let kept: Value = submit_as(&kiln, &other, "plot", tiny_plot())
        .await
        .json()
        .await
        .unwrap();
    let mut conn = redis.conn();
    let (_, listed) = tenant_cli(&redis, &["list"]);
    let acme_id = listed
        .lines()
        .find(|l| l.starts_with("acme\t"))
        .and_then(|l| l.split('\t').nth(1))
        .and_then(|f| f.strip_prefix("id "))
        .unwrap()
        .to_owned();
    assert!(acme_id.starts_with("acme.") && acme_id.len() > 5, "{listed}");
    let job_key = format!("{{kiln}}:job:{acme_id}:{}", ids[0]);
    assert!(
        redis::cmd("EXISTS").arg(&job_key).query::<bool>(&mut conn).unwrap(),
        "keys use the id"
    );

    let (ok, said) = tenant_cli(&redis, &["remove", "acme"]);
    assert!(ok && said.contains("3 jobs"), "{said}");
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{{kiln}}:*{acme_id}*"))
        .query(&mut conn)
        .unwrap();
    assert!(left.is_empty(), "everything of the removed tenant is gone: {left:?}");
    let queued: std::collections::HashMap<String, i64> = redis::cmd("HGETALL")
        .arg("{kiln}:queued-by-kind")
        .query(&mut conn)
        .unwrap();
    assert_eq!(queued.get("plot"), Some(&1), "only the other tenant's job is queued");

    // The same name again: a new id, nothing of the old tenant's.
    let again = add_tenant(&redis, "acme");
    let http = client();
    let listing: Value = send_json(http.get(kiln.url("/v1/jobs")).bearer_auth(&again)).await;
    assert_eq!(listing["jobs"], json!([]));
    for id in &ids {
        send_problem(http.get(kiln.url(&format!("/v1/jobs/{id}"))).bearer_auth(&again), 404).await;
    }
    // The removed key stops within the key cache's reread (about 2 s).
    let refused = refused_while(&kiln, &acme, Duration::from_millis(50), at_most(80)).await;
    assert!(refused, "the removed tenant's key still works");

    // A worker runs only what is left: the other tenant's job.
    let _worker = Kiln::worker(&redis, &[]);
    let doc = wait_final_as(&kiln, &other, kept["id"].as_str().unwrap()).await;
    assert_eq!(doc["status"], "succeeded");
    let results: Vec<String> = redis::cmd("KEYS").arg("{kiln}:result:*").query(&mut conn).unwrap();
    assert_eq!(results.len(), 1, "{results:?}");
}

#[tokio::test]
async fn a_running_job_of_a_removed_tenant_is_dropped() {
    let redis = Redis::start();
    let acme = add_tenant(&redis, "acme");
    let kinds = hostile_kinds_dir();
    let kinds_dir = kinds.path().to_str().unwrap();
    let kiln = Kiln::serve(&redis, &["--admin-key", ADMIN_KEY, "--kinds-dir", kinds_dir]);
    let doc: Value = submit_as(&kiln, &acme, "hostile", json!({"mode": "spin", "ms": 3000}))
        .await
        .json()
        .await
        .unwrap();
    let id = doc["id"].as_str().unwrap().to_owned();
    for _ in 0..600 {
        let doc: Value = send_json(client().get(kiln.url(&format!("/v1/jobs/{id}"))).bearer_auth(&acme)).await;
        if doc["status"] == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        send_status(client().delete(kiln.url("/v1/tenants/acme")).bearer_auth(ADMIN_KEY)).await,
        204
    );
    // The run would have ended after 3 s; nothing of it may come back.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut conn = redis.conn();
    let left: Vec<String> = redis::cmd("KEYS").arg("{kiln}:*acme.*").query(&mut conn).unwrap();
    assert!(left.is_empty(), "the dropped run wrote nothing back: {left:?}");
    let leases: u64 = redis::cmd("ZCARD").arg("{kiln}:leases").query(&mut conn).unwrap();
    assert_eq!(leases, 0);
}

#[tokio::test]
async fn rotation_gives_a_new_key_and_ends_the_old_one_after_its_grace() {
    let redis = Redis::start();
    let old = add_tenant(&redis, "acme");
    let kiln = Kiln::api_only(&redis, &["--admin-key", ADMIN_KEY]);
    let http = client();
    assert_eq!(submit_as(&kiln, &old, "plot", tiny_plot()).await.status(), 202);

    let (ok, stdout) = tenant_cli(&redis, &["rotate", "acme", "--grace-secs", "4"]);
    assert!(ok, "{stdout}");
    let new = stdout.lines().last().unwrap().trim().to_owned();
    assert!(new.starts_with("kiln_") && new != old);
    let rotated_at = std::time::Instant::now();
    assert_eq!(jobs_status(&kiln, &new).await, 200, "the new key works at once");
    assert_eq!(
        jobs_status(&kiln, &old).await,
        200,
        "the old key works during its grace"
    );
    let listing: Value = send_json(http.get(kiln.url("/v1/jobs")).bearer_auth(&new)).await;
    assert_eq!(listing["jobs"].as_array().unwrap().len(), 1, "same tenant, same jobs");
    // 4 s of grace, then at most one reread (2 s), with margin.
    let refused = refused_while(&kiln, &old, Duration::from_millis(100), || {
        rotated_at.elapsed() < Duration::from_secs(9)
    })
    .await;
    assert!(refused, "the old key outlived its grace");
    assert!(
        rotated_at.elapsed() >= Duration::from_secs(3),
        "the old key ended before its grace"
    );
    assert_eq!(jobs_status(&kiln, &new).await, 200);

    // Over HTTP (admin): no grace means the old key ends at once.
    let response = http
        .post(kiln.url("/v1/tenants/acme/rotate"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"grace_secs": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.unwrap();
    let newest = rotated["key"].as_str().unwrap().to_owned();
    assert_eq!(jobs_status(&kiln, &newest).await, 200);
    assert_eq!(jobs_status(&kiln, &new).await, 401);
    for (path, body, code) in [
        ("/v1/tenants/nobody/rotate", json!({}), 404),
        ("/v1/tenants/acme/rotate", json!({"grace_secs": 99_999_999}), 400),
        ("/v1/tenants/acme/rotate", json!({"grace": 1}), 400),
    ] {
        send_problem(http.post(kiln.url(path)).bearer_auth(ADMIN_KEY).json(&body), code).await;
    }
    send_problem(http.post(kiln.url("/v1/tenants/acme/rotate")).bearer_auth(&old), 401).await;
}

#[tokio::test]
async fn the_admin_key_reads_and_cancels_any_tenants_jobs() {
    let redis = Redis::start();
    let acme = add_tenant(&redis, "acme");
    let globex = add_tenant(&redis, "globex");
    let kiln = Kiln::api_only(&redis, &["--admin-key", ADMIN_KEY]);
    let http = client();
    let doc: Value = submit_as(&kiln, &acme, "plot", tiny_plot()).await.json().await.unwrap();
    let id = doc["id"].as_str().unwrap().to_owned();

    let listing: Value = send_json(http.get(kiln.url("/v1/jobs?tenant=acme")).bearer_auth(ADMIN_KEY)).await;
    assert_eq!(listing["jobs"][0]["id"], id.as_str(), "{listing}");
    let listing: Value = send_json(
        http.get(kiln.url("/v1/jobs?tenant=globex&status=queued"))
            .bearer_auth(ADMIN_KEY),
    )
    .await;
    assert_eq!(listing["jobs"], json!([]));
    let one: Value = send_json(
        http.get(kiln.url(&format!("/v1/jobs/{id}?tenant=acme")))
            .bearer_auth(ADMIN_KEY),
    )
    .await;
    assert_eq!(one["status"], "queued");
    // A tenant may name itself, not another.
    assert_eq!(
        send_status(http.get(kiln.url("/v1/jobs?tenant=acme")).bearer_auth(&acme)).await,
        200
    );
    for request in [
        http.get(kiln.url("/v1/jobs?tenant=acme")),
        http.get(kiln.url(&format!("/v1/jobs/{id}?tenant=acme"))),
        http.delete(kiln.url(&format!("/v1/jobs/{id}?tenant=acme"))),
    ] {
        send_problem(request.bearer_auth(&globex), 403).await;
    }
    send_problem(http.get(kiln.url("/v1/jobs?tenant=nobody")).bearer_auth(ADMIN_KEY), 404).await;

    let cancelled: Value = send_json(
        http.delete(kiln.url(&format!("/v1/jobs/{id}?tenant=acme")))
            .bearer_auth(ADMIN_KEY),
    )
    .await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    let seen: Value = send_json(http.get(kiln.url(&format!("/v1/jobs/{id}"))).bearer_auth(&acme)).await;
    assert_eq!(seen["status"], "cancelled");
}
