//! The operator's routes behind the web page's console: retrying a failed or cancelled job (once, on its
//! kept params and input), every tenant's jobs in one listing with filters, cancel and retry of a
//! selection, and retrying a kind's failed (dead-letter) jobs.

use crate::common::*;
use crate::tenants::{add_tenant, wait_final_as};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::HashSet;

const ADMIN_KEY: &str = "test-admin-key";

fn hostile_kiln(redis: &Redis) -> (Kiln, tempfile::TempDir) {
    let kinds = hostile_kinds_dir();
    let kiln = Kiln::serve(
        redis,
        &["--admin-key", ADMIN_KEY, "--kinds-dir", kinds.path().to_str().unwrap()],
    );
    (kiln, kinds)
}

async fn post(kiln: &Kiln, key: &str, path: &str, body: Option<Value>) -> reqwest::Response {
    let request = client().post(kiln.url(path)).bearer_auth(key);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.unwrap()
}

async fn accepted(kiln: &Kiln, key: &str, kind: &str, body: Value) -> String {
    let response = post(kiln, key, &format!("/v1/jobs/{kind}"), Some(body)).await;
    assert_eq!(response.status(), 202);
    let doc: Value = response.json().await.unwrap();
    doc["id"].as_str().unwrap().to_owned()
}

async fn job(kiln: &Kiln, key: &str, id: &str) -> Value {
    send_json(client().get(kiln.url(&format!("/v1/jobs/{id}"))).bearer_auth(key)).await
}

async fn admin(kiln: &Kiln, path: &str) -> Value {
    send_json(client().get(kiln.url(path)).bearer_auth(ADMIN_KEY)).await
}

fn ids(list: &Value) -> Vec<String> {
    list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_cancelled_job_is_retried_once_on_its_own_params_and_input() {
    let redis = Redis::start();
    let key = add_tenant(&redis, "acme");
    let (kiln, _kinds) = hostile_kiln(&redis);
    // Held in its queue by a pause, then cancelled: it keeps its params and input for the TTL.
    assert_eq!(
        post(&kiln, ADMIN_KEY, "/v1/kinds/hostile/pause", None).await.status(),
        200
    );
    let input = encode_png(&coordinate_image(5, 3));
    let body = json!({
        "params": {"mode": "echo"},
        "input_base64": base64::engine::general_purpose::STANDARD.encode(&input),
    });
    let id = accepted(&kiln, &key, "hostile", body).await;
    let cancelled: Value = client()
        .delete(kiln.url(&format!("/v1/jobs/{id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    let params = send_json(
        client()
            .get(kiln.url(&format!("/v1/jobs/{id}/params")))
            .bearer_auth(&key),
    )
    .await;
    assert_eq!(params, json!({"mode": "echo"}));
    assert_eq!(
        post(&kiln, ADMIN_KEY, "/v1/kinds/hostile/resume", None).await.status(),
        200
    );

    let response = post(&kiln, &key, &format!("/v1/jobs/{id}/retry"), None).await;
    assert_eq!(response.status(), 202);
    let retry: Value = response.json().await.unwrap();
    let retry_id = retry["id"].as_str().unwrap().to_owned();
    assert_ne!(retry_id, id);
    assert_eq!(retry["retry_of"], id.as_str(), "{retry}");
    assert_eq!(job(&kiln, &key, &id).await["retried_as"], retry_id.as_str());
    // Once only: a second retry names the first.
    let again = expect_problem(post(&kiln, &key, &format!("/v1/jobs/{id}/retry"), None).await, 409).await;
    assert_eq!(again["retried_as"], retry_id.as_str(), "{again}");
    assert_detail_contains(&again, "retried already");

    // The retry ran on the kept input: `echo` gives it back byte for byte.
    let done = wait_final_as(&kiln, &key, &retry_id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let result = client()
        .get(kiln.url(&format!("/v1/jobs/{retry_id}/result")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(result.as_ref(), input.as_slice());
    let image = decode_png(&result);
    assert_eq!((image.width(), image.height()), (5, 3));

    // A succeeded job is not retried, and its params are gone.
    let problem = expect_problem(
        post(&kiln, &key, &format!("/v1/jobs/{retry_id}/retry"), None).await,
        409,
    )
    .await;
    assert_detail_contains(&problem, "only failed or cancelled jobs");
    assert_eq!(problem["job_status"], "succeeded");
    expect_problem(
        client()
            .get(kiln.url(&format!("/v1/jobs/{retry_id}/params")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    // Another tenant's key cannot reach it.
    let other = add_tenant(&redis, "other");
    expect_problem(post(&kiln, &other, &format!("/v1/jobs/{id}/retry"), None).await, 404).await;
}

#[tokio::test]
async fn the_admin_lists_every_tenants_jobs_with_filters_and_pages() {
    let redis = Redis::start();
    let a = add_tenant(&redis, "alpha");
    let b = add_tenant(&redis, "beta");
    let (kiln, _kinds) = hostile_kiln(&redis);
    let mut made = Vec::new();
    for (key, mode) in [(&a, "noop"), (&b, "panic"), (&a, "panic"), (&b, "noop"), (&a, "noop")] {
        let id = accepted(&kiln, key, "hostile", json!({"params": {"mode": mode}})).await;
        let done = wait_final_as(&kiln, key, &id).await;
        made.push((id, done["status"].as_str().unwrap().to_owned()));
    }
    let all = admin(&kiln, "/v1/admin/jobs").await;
    let newest_first: Vec<String> = made.iter().rev().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids(&all), newest_first, "{all}");
    let tenants: Vec<&str> = all["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, ["alpha", "beta", "alpha", "beta", "alpha"]);
    assert_eq!(all["next_cursor"], Value::Null);

    // Filters: tenant, status, error code, kind, time.
    assert_eq!(
        ids(&admin(&kiln, "/v1/admin/jobs?tenant=beta").await),
        [made[3].0.clone(), made[1].0.clone()]
    );
    let failed = admin(&kiln, "/v1/admin/jobs?status=failed&error=trap").await;
    assert_eq!(ids(&failed), [made[2].0.clone(), made[1].0.clone()], "{failed}");
    assert_eq!(failed["jobs"][0]["error"]["code"], "trap");
    assert!(ids(&admin(&kiln, "/v1/admin/jobs?error=timeout").await).is_empty());
    assert!(ids(&admin(&kiln, "/v1/admin/jobs?kind=plot").await).is_empty());
    assert!(ids(&admin(&kiln, "/v1/admin/jobs?since=2999-01-01T00:00:00Z").await).is_empty());
    assert!(ids(&admin(&kiln, "/v1/admin/jobs?until=2000-01-01T00:00:00Z").await).is_empty());
    assert_eq!(
        ids(&admin(
            &kiln,
            "/v1/admin/jobs?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z"
        )
        .await)
        .len(),
        5
    );
    // A tenant's own listing takes the same filters.
    let own = send_json(
        client()
            .get(kiln.url("/v1/jobs?status=failed&error=trap"))
            .bearer_auth(&a),
    )
    .await;
    assert_eq!(ids(&own), [made[2].0.clone()]);

    // Pages of two, across tenants, cover every job once, in order.
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = admin(&kiln, &format!("/v1/admin/jobs?limit=2&cursor={cursor}")).await;
        paged.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(paged, newest_first);

    // Bad filters are 400s that say what is wrong; a tenant's key is not the admin's.
    for (query, text) in [
        ("error=nonsense", "error codes"),
        ("since=yesterday", "RFC 3339"),
        ("status=done", "status"),
        ("limit=0", "limit"),
    ] {
        let problem = expect_problem(
            client()
                .get(kiln.url(&format!("/v1/admin/jobs?{query}")))
                .bearer_auth(ADMIN_KEY)
                .send()
                .await
                .unwrap(),
            400,
        )
        .await;
        assert_detail_contains(&problem, text);
    }
    expect_problem(
        client()
            .get(kiln.url("/v1/admin/jobs?tenant=nobody"))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    let refused = client()
        .get(kiln.url("/v1/admin/jobs"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert!([401, 403].contains(&refused.status().as_u16()), "{}", refused.status());
}

#[tokio::test]
async fn a_selection_is_cancelled_and_retried_at_once_and_each_job_says_what_became_of_it() {
    let redis = Redis::start();
    let a = add_tenant(&redis, "alpha");
    let b = add_tenant(&redis, "beta");
    let (kiln, _kinds) = hostile_kiln(&redis);
    let finished = accepted(&kiln, &a, "hostile", json!({"params": {"mode": "noop"}})).await;
    wait_final_as(&kiln, &a, &finished).await;
    assert_eq!(
        post(&kiln, ADMIN_KEY, "/v1/kinds/hostile/pause", None).await.status(),
        200
    );
    let mut queued = Vec::new();
    for (name, key) in [("alpha", &a), ("beta", &b), ("alpha", &a)] {
        queued.push((
            name,
            accepted(&kiln, key, "hostile", json!({"params": {"mode": "noop"}})).await,
        ));
    }
    let mut selection: Vec<Value> = queued.iter().map(|(t, id)| json!({"tenant": t, "id": id})).collect();
    selection.push(json!({"tenant": "alpha", "id": finished}));
    selection.push(json!({"tenant": "nobody", "id": finished}));
    let response = post(
        &kiln,
        ADMIN_KEY,
        "/v1/admin/jobs/cancel",
        Some(json!({"jobs": selection})),
    )
    .await;
    assert_eq!(response.status(), 200);
    let done: Value = response.json().await.unwrap();
    let outcomes: Vec<(bool, u64)> = done["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["ok"].as_bool().unwrap(), r["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [(true, 200), (true, 200), (true, 200), (false, 409), (false, 404)],
        "{done}"
    );
    for (name, id) in &queued {
        let key = if *name == "alpha" { &a } else { &b };
        assert_eq!(job(&kiln, key, id).await["status"], "cancelled");
    }

    // Retry the cancelled ones at once: each answer names its new job, which runs after the resume.
    let selection: Vec<Value> = queued.iter().map(|(t, id)| json!({"tenant": t, "id": id})).collect();
    let done: Value = post(
        &kiln,
        ADMIN_KEY,
        "/v1/admin/jobs/retry",
        Some(json!({"jobs": selection.clone()})),
    )
    .await
    .json()
    .await
    .unwrap();
    let mut new_ids = HashSet::new();
    for (result, (name, _)) in done["results"].as_array().unwrap().iter().zip(&queued) {
        assert_eq!(
            (result["ok"].as_bool(), result["status"].as_u64()),
            (Some(true), Some(202)),
            "{done}"
        );
        new_ids.insert((*name, result["job"].as_str().unwrap().to_owned()));
    }
    assert_eq!(new_ids.len(), 3);
    // The same selection again: every one was retried already.
    let again: Value = post(
        &kiln,
        ADMIN_KEY,
        "/v1/admin/jobs/retry",
        Some(json!({"jobs": selection})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(
        again["results"].as_array().unwrap().iter().all(|r| r["status"] == 409),
        "{again}"
    );
    assert_eq!(
        post(&kiln, ADMIN_KEY, "/v1/kinds/hostile/resume", None).await.status(),
        200
    );
    for (name, id) in &new_ids {
        let key = if *name == "alpha" { &a } else { &b };
        assert_eq!(wait_final_as(&kiln, key, id).await["status"], "succeeded");
    }

    // Bounded, and admin only.
    let too_many: Vec<Value> = (0..101).map(|_| json!({"tenant": "alpha", "id": finished})).collect();
    let problem = expect_problem(
        post(
            &kiln,
            ADMIN_KEY,
            "/v1/admin/jobs/cancel",
            Some(json!({"jobs": too_many})),
        )
        .await,
        400,
    )
    .await;
    assert_detail_contains(&problem, "at most 100");
    let refused = post(&kiln, &a, "/v1/admin/jobs/retry", Some(json!({"jobs": []}))).await;
    assert!([401, 403].contains(&refused.status().as_u16()), "{}", refused.status());
}

#[tokio::test]
async fn retry_failed_requeues_a_kinds_dead_letter_set_once() {
    let redis = Redis::start();
    let a = add_tenant(&redis, "alpha");
    let b = add_tenant(&redis, "beta");
    let (kiln, _kinds) = hostile_kiln(&redis);
    let mut failed = Vec::new();
    for key in [&a, &a, &b] {
        let id = accepted(&kiln, key, "hostile", json!({"params": {"mode": "panic"}})).await;
        assert_eq!(wait_final_as(&kiln, key, &id).await["status"], "failed");
        failed.push(id);
    }
    // Held queued by a pause, so the retries stay put while the test counts them.
    assert_eq!(
        post(&kiln, ADMIN_KEY, "/v1/kinds/hostile/pause", None).await.status(),
        200
    );
    let only_beta: Value = post(&kiln, ADMIN_KEY, "/v1/kinds/hostile/retry-failed?tenant=beta", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(only_beta["retried"], 1, "{only_beta}");
    let rest: Value = post(&kiln, ADMIN_KEY, "/v1/kinds/hostile/retry-failed", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest, json!({"retried": 2, "refused": [], "more": false}));
    let none: Value = post(&kiln, ADMIN_KEY, "/v1/kinds/hostile/retry-failed", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["retried"], 0, "{none}");
    let queued = admin(&kiln, "/v1/admin/jobs?status=queued&kind=hostile").await;
    let retried: HashSet<String> = queued["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["retry_of"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(retried, failed.iter().cloned().collect::<HashSet<_>>());
}

#[tokio::test]
async fn the_cli_lists_every_tenants_jobs_and_retries_and_cancels_them() {
    use crate::flow::cli;
    let redis = Redis::start();
    let a = add_tenant(&redis, "alpha");
    let b = add_tenant(&redis, "beta");
    let (kiln, _kinds) = hostile_kiln(&redis);
    let failed_a = accepted(&kiln, &a, "hostile", json!({"params": {"mode": "panic"}})).await;
    let failed_b = accepted(&kiln, &b, "hostile", json!({"params": {"mode": "panic"}})).await;
    wait_final_as(&kiln, &a, &failed_a).await;
    wait_final_as(&kiln, &b, &failed_b).await;

    let (code, out) = cli(
        &kiln,
        ADMIN_KEY,
        &["jobs", "--all-tenants", "--status", "failed", "--error", "trap"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("TENANT"), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("alpha") && l.contains(&failed_a)),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("beta") && l.contains(&failed_b)),
        "{out}"
    );

    // A tenant retries its own job; a second retry is refused (exit 2) and names the first.
    assert_eq!(
        post(&kiln, ADMIN_KEY, "/v1/kinds/hostile/pause", None).await.status(),
        200
    );
    let (code, out) = cli(&kiln, &a, &["retry", &failed_a]);
    assert_eq!(code, 0, "{out}");
    let (retry_a, status) = out.trim().split_once('\t').unwrap();
    assert_eq!(status, "queued", "{out}");
    let (code, out) = cli(&kiln, &a, &["retry", &failed_a]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains(retry_a), "{out}");

    // The admin: the dead-letter set of the kind (only beta's is left), then a selection cancelled.
    let (code, out) = cli(&kiln, ADMIN_KEY, &["admin", "retry-failed", "hostile"]);
    assert_eq!((code, out.trim()), (0, "retried 1"), "{out}");
    let queued = admin(&kiln, "/v1/admin/jobs?status=queued&tenant=beta").await;
    let retry_b = ids(&queued).pop().unwrap();
    let selection = [format!("alpha/{retry_a}"), format!("beta/{retry_b}")];
    let mut args = vec!["admin", "cancel"];
    args.extend(selection.iter().map(String::as_str));
    let (code, out) = cli(&kiln, ADMIN_KEY, &args);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().filter(|l| l.ends_with("\tok")).count(), 2, "{out}");
    // Again: both are final now, so both are refused, and the exit code says so.
    let (code, out) = cli(&kiln, ADMIN_KEY, &args);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("409"), "{out}");
    let (code, out) = cli(&kiln, ADMIN_KEY, &["admin", "cancel", "no-slash"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("TENANT/ID"), "{out}");
}
