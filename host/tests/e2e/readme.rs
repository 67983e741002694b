//! The README's curl examples, run word for word against a live Kiln, so they cannot drift from the API.

use crate::common::*;
use std::process::Command;

#[tokio::test]
async fn readme_examples_run_as_written() {
    let script = readme_block("readme-examples");
    assert!(script.contains("curl"), "the examples block holds the curl examples");

    let redis = Redis::start();
    let kiln = Kiln::serve(&redis, &[]);
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::task::spawn_blocking({
        let base = kiln.base.clone();
        let cwd = dir.path().to_owned();
        move || {
            Command::new("bash")
                .args(["-euo", "pipefail", "-c", &script])
                .env("KILN", base)
                .current_dir(cwd)
                .output()
                .expect("bash and curl are installed")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "README examples failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("\"status\":\"succeeded\""), "{stdout}");
    assert_eq!(
        stdout.matches("\"status\":\"queued\"").count(),
        6,
        "six submits answered 202: {stdout}"
    );
    let chart = decode_png(&std::fs::read(dir.path().join("chart.png")).unwrap());
    assert_eq!(chart.width(), 800);
}
