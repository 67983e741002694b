//! A first run on a fresh machine: with no `KILN_REDIS_URL` and nothing on the default address,
//! `kiln serve` starts a private redis-server (and says so); with no Redis to be had at all, it exits
//! with a message that says what was tried and how to fix it, never a backtrace.

use crate::common::*;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Something answering on 127.0.0.1:6379 would be used instead of an embedded Redis.
fn default_redis_answers() -> bool {
    std::net::TcpStream::connect_timeout(&"127.0.0.1:6379".parse().unwrap(), Duration::from_millis(200)).is_ok()
}

#[tokio::test]
async fn serve_starts_its_own_redis_when_none_is_configured() {
    if default_redis_answers() {
        eprintln!("skipped: a Redis answers on 127.0.0.1:6379, so no embedded one would start");
        return;
    }
    // The default data dir, `.kiln` relative to where kiln starts, as on a first `deploy/local.sh run`.
    let cwd = tempfile::tempdir().unwrap();
    let data = cwd.path().join(".kiln");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(shared_cache_dir()).unwrap();
    std::os::unix::fs::symlink(shared_cache_dir(), data.join("cache")).unwrap();
    let mut child = Command::new(kiln_bin())
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--workers", "1"])
        .current_dir(cwd.path())
        .env_remove("KILN_REDIS_URL")
        .env_remove("KILN_DATA_DIR")
        .env("KILN_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut said_so = false;
    let base = loop {
        let line = lines.next().expect("kiln exited early").unwrap();
        said_so |= line.contains("started a private redis-server");
        if let Some(addr) = line.strip_prefix("kiln: API listening on ") {
            break addr.trim().to_owned();
        }
    };
    assert!(said_so, "kiln says that it started its own Redis");
    assert!(data.join("redis").join("redis.sock").exists());

    let response = client()
        .post(format!("{base}/v1/jobs/plot?wait=60"))
        .json(&json!({"params": {"series": [{"x": [0, 1], "y": [0, 1]}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "a job runs on the embedded Redis");

    // A clean stop takes the embedded Redis down with it, its data (AOF) kept in the data dir.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "kiln exits 0 on SIGTERM: {exit}");
    assert!(
        !data.join("redis").join("redis.sock").exists(),
        "the embedded redis-server stopped"
    );
    let aof = data.join("redis").join("appendonlydir");
    assert!(aof.exists(), "persistence was on");
}

#[test]
fn without_any_redis_kiln_says_what_it_tried() {
    if default_redis_answers() {
        eprintln!("skipped: a Redis answers on 127.0.0.1:6379");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    // No redis-server on PATH, nothing on the default address, no URL.
    let output = Command::new(kiln_bin())
        .args(["serve", "--dev", "--listen", "127.0.0.1:0"])
        .env_remove("KILN_REDIS_URL")
        .env("KILN_DATA_DIR", data.path())
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("127.0.0.1:6379"), "{stderr}");
    assert!(stderr.contains("redis-server"), "{stderr}");
    assert!(stderr.contains("KILN_REDIS_URL"), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );

    // And a URL that leads nowhere names itself.
    let output = Command::new(kiln_bin())
        .args(["api", "--dev", "--listen", "127.0.0.1:0"])
        .env("KILN_REDIS_URL", "redis://127.0.0.1:1")
        .env("KILN_DATA_DIR", data.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("redis://127.0.0.1:1"), "{stderr}");
}
