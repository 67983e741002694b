//! What operators watch: `GET /v1/stats` (queue, live workers with their jobs, throughput), `GET /metrics`
//! on the API and on a worker's `--ops-listen`, and request ids.

use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn stats_show_live_workers_their_jobs_and_throughput() {
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    let kinds_dir = kinds.path().to_str().unwrap();
    let kiln = Kiln::serve(&redis, &["--kinds-dir", kinds_dir]);
    let ops_port = free_port();
    let ops = format!("127.0.0.1:{ops_port}");
    let _worker = Kiln::worker(&redis, &["--kinds-dir", kinds_dir, "--ops-listen", &ops]);
    let http = client();

    for i in 0..3 {
        let plot = json!({"params": {"title": format!("{i}"), "series": [{"x": [0, 1], "y": [0, i]}]}});
        let response = submit_plot_and_wait(&kiln, &plot).await;
        assert!(
            response.headers().contains_key("x-request-id"),
            "every answer carries its request id"
        );
    }
    let response = http
        .post(kiln.url("/v1/jobs/hostile"))
        .json(&json!({"params": {"mode": "spin", "ms": 3000}}))
        .send()
        .await
        .unwrap();
    let spin: Value = response.json().await.unwrap();
    let spin_member = format!("default/{}", spin["id"].as_str().unwrap());

    // Both worker processes (the one inside `serve` and the separate one) report in, one of them
    // running the spin job.
    let mut seen = None;
    for _ in 0..50 {
        let stats: Value = send_json(http.get(kiln.url("/v1/stats"))).await;
        let workers = stats["workers"].as_array().unwrap().clone();
        let running_spin = workers.iter().any(|w| {
            w["running"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m == spin_member.as_str())
        });
        if workers.len() == 2 && running_spin {
            seen = Some(stats);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = seen.expect("two live workers, one running the spin job");
    for worker in stats["workers"].as_array().unwrap() {
        assert!(
            worker["pid"].as_u64().unwrap() > 0 && worker["host"].is_string(),
            "{worker}"
        );
    }
    let finished: u64 = stats["finished_per_minute"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert!(finished >= 3, "{stats}");
    assert_eq!(stats["running"], 1, "{stats}");

    // Metrics: the API's counters and gauges, and the worker's on its ops address.
    let metrics = send_text(http.get(kiln.url("/metrics"))).await;
    assert!(
        metrics.contains("kiln_jobs_submitted_total{kind=\"plot\",tenant=\"default\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("kiln_http_requests_total{"), "{metrics}");
    assert!(metrics.contains("kiln_running 1"), "{metrics}");
    let worker_metrics = send_text(http.get(format!("http://{ops}/metrics"))).await;
    assert!(
        worker_metrics.contains("# TYPE kiln_redis_errors counter"),
        "{worker_metrics}"
    );
    // Instantiation time and guest memory are recorded where jobs ran: `serve`'s own workers or the
    // separate one; the three plots ran in one or the other.
    let count = |text: &str, prefix: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    let both = [&metrics, &worker_metrics];
    let instantiations: u64 = both.iter().map(|m| count(m, "kiln_instantiate_seconds_count ")).sum();
    assert!(instantiations >= 3, "{metrics}\n{worker_metrics}");
    let plot_peaks: u64 = both
        .iter()
        .map(|m| count(m, "kiln_guest_memory_peak_bytes_count{kind=\"plot\"} "))
        .sum();
    assert!(plot_peaks >= 3, "{metrics}\n{worker_metrics}");
    assert_eq!(
        http.get(format!("http://{ops}/readyz")).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn stats_count_queued_jobs_by_kind_and_tenant() {
    let redis = Redis::start();
    let kiln = Kiln::api_only(&redis, &[]);
    let http = client();
    let plot = json!({"params": {"series": [{"x": [0, 1], "y": [0, 1]}]}});
    let mut plots = Vec::new();
    for _ in 0..2 {
        let doc: Value = send_json(http.post(kiln.url("/v1/jobs/plot")).json(&plot)).await;
        plots.push(doc["id"].as_str().unwrap().to_owned());
    }
    let png = encode_png(&coordinate_image(8, 8));
    let form = reqwest::multipart::Form::new().part("input", reqwest::multipart::Part::bytes(png).file_name("a.png"));
    assert_eq!(
        http.post(kiln.url("/v1/jobs/crop"))
            .multipart(form)
            .send()
            .await
            .unwrap()
            .status(),
        202
    );

    let now = send_json(http.get(kiln.url("/v1/stats"))).await;
    assert_eq!(now["queued_by_kind"], json!({"plot": 2, "crop": 1}), "{now}");
    assert_eq!(now["queued_by_tenant"], json!({"default": 3}), "{now}");

    http.delete(kiln.url(&format!("/v1/jobs/{}", plots[0])))
        .send()
        .await
        .unwrap();
    let now = send_json(http.get(kiln.url("/v1/stats"))).await;
    assert_eq!(
        now["queued_by_kind"],
        json!({"plot": 1, "crop": 1}),
        "a cancelled job leaves the count: {now}"
    );
    assert_eq!(
        now["queued_by_tenant"],
        json!({"default": 2}),
        "and its tenant's queue: {now}"
    );
    assert_eq!(now["queued"], 2, "{now}");

    // A worker drains the queue, and the counts with it.
    let _worker = Kiln::worker(&redis, &[]);
    let mut drained = false;
    for _ in 0..200 {
        let now = send_json(http.get(kiln.url("/v1/stats"))).await;
        if now["queued_by_kind"] == json!({}) && now["running"] == 0 {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(drained, "the queue and its per-kind counts drain");
}

/// Asserts that each line is a JSON object (a tracing line or an announcement).
fn assert_json_lines(lines: &[String]) {
    assert!(!lines.is_empty());
    for line in lines {
        let parsed: Result<Value, _> = serde_json::from_str(line);
        assert!(
            parsed.as_ref().is_ok_and(Value::is_object),
            "not a JSON object: {line:?}\nall lines:\n{}",
            lines.join("\n")
        );
    }
}

#[tokio::test]
async fn with_json_logs_every_line_the_process_writes_is_a_json_object() {
    let redis = Redis::start();
    let mut kiln = Kiln::start_capturing(
        "serve",
        &redis.url,
        &[],
        &[("KILN_LOG_FORMAT", "json"), ("KILN_LOG", "info")],
        true,
    );
    let plot = json!({"params": {"title": "json", "series": [{"x": [0, 1], "y": [0, 1]}]}});
    let response = submit_plot_and_wait(&kiln, &plot).await;
    decode_png(&response.bytes().await.unwrap());
    kiln.terminate();
    assert!(kiln.wait_exit(Duration::from_secs(60)).is_some(), "kiln did not stop");
    // The reader threads see EOF once the process is gone; give them a moment to store the last lines.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = kiln.output.lock().unwrap().clone();
    assert_json_lines(&lines);
    let events: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    for event in ["api-listening", "worker-running", "dev-mode"] {
        assert!(
            events.iter().any(|e| e["event"] == event),
            "no `{event}` line: {lines:?}"
        );
    }
    assert!(
        events.iter().any(|e| e["fields"]["message"] == "kiln stopped"),
        "the log itself is JSON too: {lines:?}"
    );

    // A process that cannot start says why in JSON as well.
    let failed = std::process::Command::new(kiln_bin())
        .args(["api", "--dev", "--listen", "127.0.0.1:0"])
        .env("KILN_REDIS_URL", "redis://127.0.0.1:1")
        .env("KILN_LOG_FORMAT", "json")
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let lines: Vec<String> = [failed.stdout, failed.stderr]
        .iter()
        .flat_map(|out| {
            String::from_utf8_lossy(out)
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_json_lines(&lines);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"event\":\"fatal\"") && l.contains("cannot reach Redis")),
        "{lines:?}"
    );
}
