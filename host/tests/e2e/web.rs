//! The web page at `/`, driven in headless Chromium by a real automation client (playwright-core on
//! Debian's `chromium`; `tests/web/drive.mjs`): with a tenant key entered on the page, it submits a crop
//! job by dragging the rectangle on the preview and sees the result appear, sees a failed job's error and
//! a refused submit's detail in words, uses that result as the input of a pipeline (crop, then crop
//! again), then plots a CSV on a phone-sized screen. With the admin key, its console retries and cancels
//! jobs and pauses a kind (`tests/web/console.mjs`).
//!
//! Needs `chromium`, `node` and `npm` (`deploy/local.sh prerequisites` installs them); fails, saying so,
//! when they are missing. Screenshots: /tmp/kiln-web.png and /tmp/kiln-web-phone.png.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const INSTALL: &str = "install it with `apt-get install chromium nodejs npm` (or run `deploy/local.sh prerequisites`)";

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("KILN_CHROMIUM") {
        return path.into();
    }
    ["chromium", "chromium-browser"]
        .iter()
        .find_map(|name| on_path(name))
        .unwrap_or_else(|| panic!("the web test needs Debian's chromium, which is not installed: {INSTALL}"))
}

/// `tests/web`, with its locked npm packages installed.
fn driver_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web");
    if on_path("node").is_none() {
        panic!("the web test needs node, which is not installed: {INSTALL}");
    }
    if !dir.join("node_modules/playwright-core/package.json").is_file() {
        let npm = on_path("npm").unwrap_or_else(|| panic!("the web test needs npm, which is not installed: {INSTALL}"));
        let status = Command::new(npm)
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("run npm ci");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    }
    dir
}

/// Adds a tenant with `kiln tenant add` and returns its key, so the page has to ask for one.
fn add_tenant(redis: &Redis, name: &str) -> String {
    let output = Command::new(kiln_bin())
        .args(["tenant", "add", name])
        .env("KILN_REDIS_URL", &redis.url)
        .output()
        .unwrap();
    assert!(output.status.success(), "kiln tenant add failed");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned()
}

#[tokio::test]
async fn the_page_submits_a_crop_and_shows_the_result() {
    let redis = Redis::start();
    let key = add_tenant(&redis, "web");
    let kiln = Kiln::serve(&redis, &["--admin-key", "web-test-admin-key"]);
    drive_the_page(&kiln, Some(&key)).await;
}

/// Dev mode refuses cross-origin writes and foreign hosts; the page, served by Kiln itself, passes both.
#[tokio::test]
async fn the_page_works_in_dev_mode() {
    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &["--dev"]);
    drive_the_page(&kiln, None).await;
}

/// The operator console, driven with the admin key: a kind paused from the page holds the jobs submitted
/// meanwhile, a failed job is retried by its checkbox, the queued jobs are cancelled as one selection,
/// the kind is resumed; each checked through the API.
#[tokio::test]
async fn the_console_retries_cancels_a_selection_and_pauses_a_kind() {
    const ADMIN_KEY: &str = "web-test-admin-key";
    let chromium = chromium();
    let driver = driver_dir();
    let redis = Redis::start();
    let key = add_tenant(&redis, "web");
    let kinds = hostile_kinds_dir();
    let kiln = Kiln::serve(
        &redis,
        &["--admin-key", ADMIN_KEY, "--kinds-dir", kinds.path().to_str().unwrap()],
    );
    let submitted = send_json(
        client()
            .post(kiln.url("/v1/jobs/hostile"))
            .bearer_auth(&key)
            .json(&serde_json::json!({"params": {"mode": "panic"}})),
    )
    .await;
    let failed = submitted["id"].as_str().unwrap().to_owned();
    let doc = crate::tenants::wait_final_as(&kiln, &key, &failed).await;
    assert_eq!(doc["status"], "failed", "{doc}");

    let output = Command::new("node")
        .arg(driver.join("console.mjs"))
        .current_dir(&driver)
        .env("KILN_URL", kiln.url("/"))
        .env("KILN_ADMIN_KEY", ADMIN_KEY)
        .env("KILN_FAILED", &failed)
        .env("KILN_QUEUE", &key)
        .env("CHROMIUM", &chromium)
        .env("KILN_SHOT", "/tmp/kiln-console.png")
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "driving Chromium failed:\n{stderr}\n{stdout}");
    let result: Value = stdout
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .map(|json| serde_json::from_str(json).unwrap())
        .unwrap_or_else(|| panic!("console.mjs printed no result:\n{stdout}\n{stderr}"));
    eprintln!("console test: {result}");
    assert_eq!(result["problems"], serde_json::json!([]), "{result}");
    assert!(result["params_shown"].as_str().unwrap().contains("panic"), "{result}");
    assert!(
        result["own_jobs_hint"].as_str().unwrap().contains("admin key"),
        "{result}"
    );
    assert!(
        result["retry_message"].as_str().unwrap().starts_with("1 retried"),
        "{result}"
    );
    assert!(
        result["cancel_message"].as_str().unwrap().starts_with("3 cancelled"),
        "{result}"
    );

    let job = |id: String| {
        let key = key.clone();
        let url = kiln.url(&format!("/v1/jobs/{id}"));
        async move { send_json(client().get(url).bearer_auth(key)).await }
    };
    let original = job(failed.clone()).await;
    let retry_id = original["retried_as"].as_str().unwrap().to_owned();
    let retry = job(retry_id).await;
    assert_eq!(retry["retry_of"], failed.as_str(), "{retry}");
    assert_eq!(retry["status"], "cancelled", "{retry}");
    for id in result["queued"].as_array().unwrap() {
        assert_eq!(job(id.as_str().unwrap().to_owned()).await["status"], "cancelled");
    }
    let kind = send_json(client().get(kiln.url("/v1/kinds/hostile"))).await;
    assert_eq!(kind["paused"], false, "{kind}");
}

/// Drives the page in Chromium (entering `key` when given) and checks what it did.
async fn drive_the_page(kiln: &Kiln, key: Option<&str>) {
    let chromium = chromium();
    let driver = driver_dir();

    // The page and its assets are served with their types.
    for (path, media_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
    ] {
        let response = client().get(kiln.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], media_type, "{path}");
    }

    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("coordinates.png");
    std::fs::write(&image, encode_png(&coordinate_image(200, 150))).unwrap();

    let output = Command::new("node")
        .arg(driver.join("drive.mjs"))
        .current_dir(&driver)
        .env("KILN_URL", kiln.url("/"))
        .env("KILN_IMAGE", &image)
        .env("KILN_API_KEY", key.unwrap_or_default())
        .env("CHROMIUM", &chromium)
        .env("KILN_SHOT", "/tmp/kiln-web.png")
        .env("KILN_SHOT_PHONE", "/tmp/kiln-web-phone.png")
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "driving Chromium failed:\n{stderr}\n{stdout}");
    let result: Value = stdout
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .map(|json| serde_json::from_str(json).unwrap())
        .unwrap_or_else(|| panic!("drive.mjs printed no result:\n{stdout}\n{stderr}"));
    eprintln!("web test: {result}");

    // The drag from image pixel (20, 30) to (120, 90) filled the crop fields.
    assert_eq!(
        result["crop"],
        serde_json::json!({"x": 20, "y": 30, "w": 100, "h": 60}),
        "{result}"
    );
    // Width 50 of a 100 × 60 crop: height 30.
    assert_eq!(
        (result["natural_width"].as_u64(), result["natural_height"].as_u64()),
        (Some(50), Some(30)),
        "{result}"
    );
    assert_eq!(result["status"], "succeeded", "{result}");
    assert_eq!(result["progress"], "100", "{result}");
    assert_eq!(result["row_status"], "succeeded", "{result}");
    assert_eq!(result["download_visible"], true, "{result}");
    assert!(
        result["failed_error"].as_str().unwrap().contains("could not be used"),
        "{result}"
    );
    assert!(
        result["refused_detail"].as_str().unwrap().contains("resize"),
        "{result}"
    );
    assert_eq!(
        result["plot"],
        serde_json::json!({"natural_width": 640, "natural_height": 400}),
        "{result}"
    );
    // On the phone, a drag from 50%, 20% to 90%, 80% of the preview.
    assert_eq!(
        result["phone_crop"],
        serde_json::json!({"x": 100, "y": 30, "w": 80, "h": 90}),
        "{result}"
    );
    assert_eq!(result["phone_crop_overflow"], 0, "{result}");
    assert_eq!(
        result["phone_overflow"], 0,
        "a phone-wide page must not scroll sideways: {result}"
    );
    assert_eq!(result["problems"], serde_json::json!([]), "console errors: {result}");

    // The pipeline the page made from the first job's result: crop to 20 wide, then to 10; two steps.
    let pipeline = &result["pipeline"];
    assert_eq!(pipeline["kind"], "pipeline", "{result}");
    assert_eq!(pipeline["natural_width"], 10, "{result}");
    assert_eq!(
        pipeline["steps"],
        serde_json::json!(["succeeded", "succeeded"]),
        "{result}"
    );
    let doc: Value = client()
        .get(kiln.url(&format!("/v1/jobs/{}", pipeline["job_id"].as_str().unwrap())))
        .bearer_auth(key.unwrap_or_default())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["steps"][1]["kind"], "crop", "{doc}");

    // The job the page submitted is the crop asked for: the result's top-left pixel came from (20, 30).
    let id = result["job_id"].as_str().unwrap();
    let png = client()
        .get(kiln.url(&format!("/v1/jobs/{id}/result")))
        .bearer_auth(key.unwrap_or_default())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let picture = decode_png(&png).to_rgb8();
    assert_eq!(picture.dimensions(), (50, 30));
    let [r, g, b] = picture.get_pixel(0, 0).0;
    assert!(
        (20..=22).contains(&r) && (30..=32).contains(&g) && b == 128,
        "top-left pixel {r},{g},{b}"
    );
}
