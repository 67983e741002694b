//! Test harness: a private `redis-server` per test and the real `kiln` binary on a free port.
//!
//! Each test gets its own Redis on a unix socket in a temp dir, so tests run in parallel and can kill or
//! restart their Redis. Compiled components are cached in one dir shared by all tests (wasmtime's cache
//! is safe to share), so only the first test pays for compilation.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub struct Redis {
    dir: TempDir,
    child: Option<Child>,
    extra_args: Vec<String>,
    pub url: String,
}

impl Redis {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// With AOF on, as production runs it, so a restart keeps every accepted job.
    pub fn start_persistent() -> Self {
        Self::start_with(&["--appendonly", "yes", "--appendfsync", "always"])
    }

    /// With extra `redis-server` arguments, e.g. a TLS port or ACL users.
    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_with_query(extra, "")
    }

    /// With extra arguments and a query on the harness's own socket URL (`?user=..&pass=..` for a Redis
    /// whose default user is off).
    pub fn start_with_query(extra: &[&str], query: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("redis+unix://{}{query}", dir.path().join("redis.sock").display());
        let mut redis = Self {
            dir,
            child: None,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            url,
        };
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--maxmemory-policy", "noeviction"])
            .arg("--unixsocket")
            .arg(self.dir.path().join("redis.sock"))
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not come up");
    }

    pub fn ping(&self) -> bool {
        redis::Client::open(self.url.as_str())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut conn| redis::cmd("PING").query::<String>(&mut conn))
            .is_ok()
    }

    /// A synchronous connection for inspecting what Kiln stored.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// The integer answer of a one-key command (`ZCARD`, `LLEN`, `PTTL`, `EXISTS`...) on `key`.
    pub fn int(&self, command: &str, key: &str) -> i64 {
        redis::cmd(command).arg(key).query(&mut self.conn()).unwrap()
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.dir.path().join("redis.sock"));
    }

    /// Starts it again after [`Redis::kill`], on the same socket and data dir (AOF, if on, is replayed).
    pub fn start_again(&mut self) {
        self.spawn();
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running `kiln` process.
pub struct Kiln {
    child: Child,
    /// The API's base URL; empty for a lone `kiln worker`.
    pub base: String,
    /// Every line it wrote to stdout, and (if started with [`Kiln::start_capturing`]) to stderr.
    pub output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _data: TempDir,
}

/// What a line of Kiln's stdout says about readiness: the API's URL, or (for a lone worker, `""`) that it
/// runs. The lines are text (`kiln: API listening on URL`) or, with `KILN_LOG_FORMAT=json`, JSON objects
/// with an `event`.
pub fn readiness(line: &str, worker: bool) -> Option<String> {
    if let Ok(event) = serde_json::from_str::<serde_json::Value>(line) {
        return match event["event"].as_str() {
            Some("api-listening") => event["url"].as_str().map(str::to_owned),
            Some("worker-running") if worker => Some(String::new()),
            _ => None,
        };
    }
    if let Some(addr) = line.strip_prefix("kiln: API listening on ") {
        Some(addr.trim().to_owned())
    } else if worker && line.starts_with("kiln: worker running") {
        Some(String::new())
    } else {
        None
    }
}

pub fn kiln_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kiln")
}

/// Shared by all tests so components compile once per test run.
pub fn shared_cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("kiln-test-cache")
}

impl Kiln {
    /// `kiln serve` against `redis`, with extra flags after the subcommand.
    pub fn serve(redis: &Redis, extra: &[&str]) -> Self {
        Self::start("serve", redis, extra)
    }

    /// `kiln api` alone: nothing runs jobs, so they stay queued.
    pub fn api_only(redis: &Redis, extra: &[&str]) -> Self {
        Self::start("api", redis, extra)
    }

    /// `kiln worker` alone: runs jobs, serves no HTTP.
    pub fn worker(redis: &Redis, extra: &[&str]) -> Self {
        Self::start("worker", redis, extra)
    }

    pub fn start(role: &str, redis: &Redis, extra: &[&str]) -> Self {
        Self::start_with_url(role, &redis.url, extra)
    }

    /// `kiln serve` against any Redis URL (e.g. a `redis+cluster://` one).
    pub fn serve_at(redis_url: &str, extra: &[&str]) -> Self {
        Self::start_with_url("serve", redis_url, extra)
    }

    fn start_with_url(role: &str, redis_url: &str, extra: &[&str]) -> Self {
        Self::start_capturing(role, redis_url, extra, &[], false)
    }

    /// Any role against any Redis URL, with extra environment; with `capture_stderr`, its stderr is kept
    /// in [`Kiln::output`] (else it goes to the test's).
    pub fn start_capturing(
        role: &str,
        redis_url: &str,
        extra: &[&str],
        env: &[(&str, &str)],
        capture_stderr: bool,
    ) -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        // The compile cache lives under the data dir; point it at the shared one.
        std::fs::create_dir_all(shared_cache_dir()).unwrap();
        std::os::unix::fs::symlink(shared_cache_dir(), data.path().join("cache")).unwrap();
        let workers: &[&str] = if extra.contains(&"--workers") {
            &[]
        } else {
            &["--workers", "2"]
        };
        // An API needs a mode: dev mode, unless the test runs keyed mode with an admin key.
        let keyed = extra.contains(&"--admin-key") || env.iter().any(|(name, _)| *name == "KILN_ADMIN_KEY");
        let dev: &[&str] = if role == "worker" || keyed || extra.contains(&"--dev") {
            &[]
        } else {
            &["--dev"]
        };
        let mut child = Command::new(kiln_bin())
            .arg(role)
            .args(["--listen", "127.0.0.1:0"])
            .args(workers)
            .args(dev)
            .args(extra)
            .env("KILN_REDIS_URL", redis_url)
            .env("KILN_DATA_DIR", data.path())
            .env("KILN_LOG", "warn")
            // The test's own environment, not the developer's, decides the mode.
            .env_remove("KILN_ADMIN_KEY")
            .env_remove("KILN_DEV")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(if capture_stderr {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .expect("start kiln");
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    output.lock().unwrap().push(line);
                }
            });
        }
        let stdout = child.stdout.take().unwrap();
        let role_is_worker = role == "worker";
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(ready) = readiness(&line, role_is_worker) {
                    let _ = tx.send(ready);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("kiln did not report its address (or, a worker, that it runs)");
        Self {
            child,
            base,
            output,
            _data: data,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a crash or a lost machine would: no shutdown code runs.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as an orchestrator stopping the process would (the workspace has no `unsafe` for libc).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit; `None` if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Kiln {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A kinds dir holding the test-only `hostile` kind, for `--kinds-dir`.
pub fn hostile_kinds_dir() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (_, manifest, component) = kiln::kinds::TEST_GUESTS
        .iter()
        .find(|(name, _, _)| *name == "guest-hostile")
        .expect("build.rs builds guest-hostile");
    std::fs::copy(manifest, dir.path().join("hostile.json")).unwrap();
    std::fs::copy(component, dir.path().join("hostile.wasm")).unwrap();
    dir
}

/// Runs `openssl ARGS` in `dir`; panics with its stderr if it fails.
pub fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed (deploy/local.sh installs it)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A self-signed certificate `{name}.pem` with its key `{name}.key` in `dir`, for `subject`, valid for
/// `days`, with `extra` `openssl req` arguments (e.g. `-addext`s).
pub fn self_signed_certificate(dir: &Path, name: &str, subject: &str, days: &str, extra: &[&str]) {
    let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
    let mut args = vec![
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", days, "-subj", subject,
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-keyout", &key, "-out", &cert]);
    openssl(dir, &args);
}

/// A TCP port on 127.0.0.1 that was free a moment ago, for a server the test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// The `sh` code block between `<!-- {marker}:start -->` and `<!-- {marker}:end -->` in the README, which a
/// test runs word for word.
pub fn readme_block(marker: &str) -> String {
    doc_block(include_str!("../../../README.md"), marker)
}

/// The `sh` code block between `<!-- {marker}:start -->` and `<!-- {marker}:end -->` in a document.
pub fn doc_block(doc: &str, marker: &str) -> String {
    let start = doc.find(&format!("<!-- {marker}:start -->")).expect("start marker");
    let end = doc.find(&format!("<!-- {marker}:end -->")).expect("end marker");
    doc[start..end]
        .lines()
        .skip_while(|l| !l.starts_with("```sh"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sends `request` and parses its body as JSON, whatever the status; panics if either fails.
pub async fn send_json(request: reqwest::RequestBuilder) -> serde_json::Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// Sends `request` and reads its body as text, whatever the status; panics if either fails.
pub async fn send_text(request: reqwest::RequestBuilder) -> String {
    request.send().await.unwrap().text().await.unwrap()
}

/// Sends `request` and returns its status code, for requests whose answer is judged by status alone.
pub async fn send_status(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.unwrap().status().as_u16()
}

/// Sends `request` and asserts an RFC 9457 problem response with `status` (see [`expect_problem`]),
/// returning its body.
pub async fn send_problem(request: reqwest::RequestBuilder, status: u16) -> serde_json::Value {
    expect_problem(request.send().await.unwrap(), status).await
}

/// Submits `body` (`{"params": ..}`) to `plot` with `?wait=30` and expects the 200 that carries the PNG;
/// returns the response for its headers and bytes.
pub async fn submit_plot_and_wait(kiln: &Kiln, body: &serde_json::Value) -> reqwest::Response {
    let response = client()
        .post(kiln.url("/v1/jobs/plot?wait=30"))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}

/// GETs `path` up to `tries` times, `pause` apart, until it answers 200; whether it did. For a service that
/// is to come back (Redis restarted, load gone).
pub async fn answers_200_within(kiln: &Kiln, path: &str, tries: u32, pause: Duration) -> bool {
    let http = client();
    for _ in 0..tries {
        if http.get(kiln.url(path)).send().await.unwrap().status() == 200 {
            return true;
        }
        tokio::time::sleep(pause).await;
    }
    false
}

/// Polls a job until it reaches a final state; panics after `timeout`.
pub async fn wait_final(kiln: &Kiln, id: &str, timeout: Duration) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    loop {
        let doc: serde_json::Value = send_json(client().get(kiln.url(&format!("/v1/jobs/{id}")))).await;
        let status = doc["status"].as_str().unwrap().to_owned();
        if ["succeeded", "failed", "cancelled"].contains(&status.as_str()) {
            return doc;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} still {status} after {timeout:?}: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Asserts an RFC 9457 problem response with `status`, returning its body.
pub async fn expect_problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["type"].is_string() && body["title"].is_string(), "{body}");
    assert!(!body["detail"].as_str().unwrap().is_empty(), "{body}");
    body
}

/// Asserts that a problem's `detail` contains `text` (a flag, a quota's name), showing the problem if not.
#[track_caller]
pub fn assert_detail_contains(problem: &serde_json::Value, text: &str) {
    assert!(problem["detail"].as_str().unwrap().contains(text), "{problem}");
}

/// An RGB test image whose pixel (x, y) is (x, y, 128), so crops can be checked exactly.
pub fn coordinate_image(width: u32, height: u32) -> image::RgbImage {
    image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 128]))
}

pub fn encode_png(image: &image::RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

pub fn decode_png(bytes: &[u8]) -> image::DynamicImage {
    image::load_from_memory_with_format(bytes, image::ImageFormat::Png).expect("a valid PNG")
}

/// A succeeded job's result download, answered 200.
pub async fn result_response(kiln: &Kiln, doc: &serde_json::Value) -> reqwest::Response {
    assert_eq!(doc["status"], "succeeded", "{doc}");
    let response = client()
        .get(kiln.url(doc["result_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}

/// A succeeded job's PNG result, downloaded and decoded.
pub async fn result_image(kiln: &Kiln, doc: &serde_json::Value) -> image::DynamicImage {
    let response = result_response(kiln, doc).await;
    assert_eq!(response.headers()["content-type"], "image/png");
    decode_png(&response.bytes().await.unwrap())
}

/// Submits a multipart job (`params` JSON + `input` file), expects 202, and waits for its final document.
pub async fn run_multipart(
    kiln: &Kiln,
    kind: &str,
    params: serde_json::Value,
    input: Vec<u8>,
    file_name: &str,
) -> serde_json::Value {
    let form = reqwest::multipart::Form::new().text("params", params.to_string()).part(
        "input",
        reqwest::multipart::Part::bytes(input).file_name(file_name.to_owned()),
    );
    let response = client()
        .post(kiln.url(&format!("/v1/jobs/{kind}")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let doc: serde_json::Value = response.json().await.unwrap();
    wait_final(kiln, doc["id"].as_str().unwrap(), Duration::from_secs(60)).await
}

/// The sum of a metric's samples for one kind on this process's `/metrics` (e.g.
/// `kiln_guest_memory_peak_bytes_count`, which has one sample per sandbox run).
pub async fn metric_of_kind(kiln: &Kiln, name: &str, kind: &str) -> f64 {
    let text = client()
        .get(kiln.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(&format!("kind=\"{kind}\"")))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}
