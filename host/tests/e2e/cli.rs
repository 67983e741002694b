//! The command-line client (`kiln submit|status|get|jobs|cancel|kinds|bench`): the real binary against a live
//! Kiln, its stdout lines, saved files and exit codes.

use crate::common::*;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `kiln ARGS --url BASE` and returns its output.
fn kiln(base: &str, args: &[&str]) -> Output {
    Command::new(kiln_bin())
        .args(args)
        .args(["--url", base])
        .env_remove("KILN_API_KEY")
        .env("KILN_LOG", "warn")
        .output()
        .expect("run kiln")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("kiln exited, not killed")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout(output),
        stderr(output)
    )
}

fn write_png(path: &Path, width: u32, height: u32) {
    std::fs::write(path, encode_png(&coordinate_image(width, height))).unwrap();
}

#[test]
fn submit_a_folder_then_status_get_jobs_cancel_kinds() {
    let redis = Redis::start();
    let server = Kiln::serve(&redis, &[]);
    let base = server.base.as_str();
    let photos = tempfile::tempdir().unwrap();
    write_png(&photos.path().join("a.png"), 40, 30);
    write_png(&photos.path().join("b.png"), 80, 20);
    write_png(&photos.path().join("c.png"), 60, 60);
    std::fs::write(photos.path().join(".hidden.png"), b"not an image, and skipped").unwrap();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("thumbs");
    let output = kiln(
        base,
        &[
            "submit",
            "crop",
            "--params",
            r#"{"resize":{"width":20}}"#,
            "--input",
            photos.path().to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&output), 0, "{}", describe(&output));
    let lines: Vec<Vec<String>> = stdout(&output)
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect();
    assert_eq!(lines.len(), 3, "one line per job: {}", describe(&output));
    for line in &lines {
        assert_eq!(line.len(), 4, "id, status, file, error: {line:?}");
        assert_eq!(line[1], "succeeded", "{line:?}");
        assert!(line[3].is_empty(), "no error: {line:?}");
    }
    for (name, height) in [("a", 15), ("b", 5), ("c", 20)] {
        let input = photos.path().join(format!("{name}.png"));
        assert!(
            lines.iter().any(|l| l[2] == input.to_str().unwrap()),
            "a line names {}",
            input.display()
        );
        let png = std::fs::read(out_dir.join(format!("{name}.png"))).expect("result saved as <stem>.png");
        let image = decode_png(&png);
        assert_eq!((image.width(), image.height()), (20, height), "{name}.png");
    }
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 3, "nothing else in --out");
    assert!(stderr(&output).contains("3 jobs: 3 succeeded"), "{}", describe(&output));

    let id = lines[0][0].clone();
    // status: the job document as JSON.
    let output = kiln(base, &["status", &id]);
    assert_eq!(code(&output), 0, "{}", describe(&output));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("status prints JSON");
    assert_eq!(doc["id"], id.as_str());
    assert_eq!(doc["status"], "succeeded");

    // get -o: the result.
    let saved = out.path().join("got.png");
    let output = kiln(base, &["get", &id, "-o", saved.to_str().unwrap()]);
    assert_eq!(code(&output), 0, "{}", describe(&output));
    assert_eq!(decode_png(&std::fs::read(&saved).unwrap()).width(), 20);

    // jobs: a table with a header and the three jobs; filters reach the server.
    let output = kiln(base, &["jobs"]);
    assert_eq!(code(&output), 0, "{}", describe(&output));
    let table = stdout(&output);
    assert!(table.starts_with("ID "), "{table}");
    for line in &lines {
        assert!(table.contains(&line[0]), "{table}");
    }
    assert_eq!(table.lines().count(), 4, "{table}");
    let output = kiln(base, &["jobs", "--status", "failed", "--kind", "crop", "--limit", "5"]);
    assert_eq!(code(&output), 0, "{}", describe(&output));
    assert_eq!(
        stdout(&output).lines().count(),
        1,
        "only the header: {}",
        describe(&output)
    );
    let output = kiln(base, &["jobs", "--status", "sleeping"]);
    assert_eq!(code(&output), 2, "a 400 is exit 2: {}", describe(&output));

    // cancel of a finished job: 409, exit 2, the server's reason.
    let output = kiln(base, &["cancel", &id]);
    assert_eq!(code(&output), 2, "{}", describe(&output));
    assert!(
        stderr(&output).contains("409") && stderr(&output).contains("already finished"),
        "{}",
        describe(&output)
    );

    // kinds: the built-in kinds with their descriptions.
    let output = kiln(base, &["kinds"]);
    assert_eq!(code(&output), 0, "{}", describe(&output));
    let kinds = stdout(&output);
    assert!(
        kinds.lines().any(|l| l.starts_with("crop ")) && kinds.lines().any(|l| l.starts_with("plot ")),
        "{kinds}"
    );

    // Unknown jobs are 404: exit 2.
    let output = kiln(base, &["status", "0190b5d2-0000-7000-8000-000000000000"]);
    assert_eq!(code(&output), 2, "{}", describe(&output));
    assert!(stderr(&output).contains("404"), "{}", describe(&output));
}

#[test]
fn failures_and_their_exit_codes() {
    let redis = Redis::start();
    let server = Kiln::serve(&redis, &[]);
    let base = server.base.as_str();
    let photos = tempfile::tempdir().unwrap();
    write_png(&photos.path().join("good.png"), 30, 30);
    std::fs::write(photos.path().join("broken.png"), b"this is not an image").unwrap();
    let out = tempfile::tempdir().unwrap();
    let dir = photos.path().to_str().unwrap();

    // One corrupt file among good ones: the good one is saved, the summary names the bad one, exit 1.
    let output = kiln(
        base,
        &["submit", "crop", "--input", dir, "--out", out.path().to_str().unwrap()],
    );
    assert_eq!(code(&output), 1, "{}", describe(&output));
    assert!(out.path().join("good.png").exists());
    assert!(!out.path().join("broken.png").exists());
    let summary = stderr(&output);
    assert!(summary.contains("1 succeeded, 1 did not"), "{}", describe(&output));
    assert!(
        summary
            .lines()
            .any(|l| l.contains("broken.png") && l.contains("failed") && l.contains("invalid-input")),
        "the summary names the failure and why: {}",
        describe(&output)
    );
    let lines = stdout(&output);
    let failed: Vec<&str> = lines.lines().filter(|l| l.contains("\tfailed\t")).collect();
    assert_eq!(failed.len(), 1, "{}", describe(&output));
    assert!(failed[0].contains("broken.png") && failed[0].contains("invalid-input"));

    // An unknown kind: 404 before any upload, exit 2.
    let output = kiln(base, &["submit", "no-such-kind", "--input", dir]);
    assert_eq!(code(&output), 2, "{}", describe(&output));
    assert!(stderr(&output).contains("no job kind named"), "{}", describe(&output));
    assert!(
        stdout(&output).is_empty(),
        "no job was submitted: {}",
        describe(&output)
    );

    // Params that do not fit the kind's schema: 422 for the job, exit 2.
    let output = kiln(
        base,
        &[
            "submit",
            "crop",
            "--params",
            r#"{"resize":{"width":"wide"}}"#,
            "--input",
            dir,
        ],
    );
    assert_eq!(code(&output), 2, "{}", describe(&output));
    assert!(
        stdout(&output).lines().all(|l| l.contains("\trejected\t")),
        "{}",
        describe(&output)
    );
    assert!(stderr(&output).contains("422"), "{}", describe(&output));

    // Params that are not JSON: a usage error before anything is sent.
    let output = kiln(base, &["submit", "crop", "--params", "{resize", "--input", dir]);
    assert_eq!(code(&output), 2, "{}", describe(&output));
    assert!(stderr(&output).contains("not valid JSON"), "{}", describe(&output));

    // Nothing listens: exit 3.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    for args in [&["kinds"][..], &["submit", "crop", "--input", dir], &["status", "x"]] {
        let output = kiln(&closed, args);
        assert_eq!(code(&output), 3, "{args:?}: {}", describe(&output));
        assert!(stderr(&output).contains("cannot be reached"), "{}", describe(&output));
    }

    // clap's own usage errors are exit 2 as well.
    let output = kiln(base, &["submit"]);
    assert_eq!(code(&output), 2, "{}", describe(&output));
}

#[test]
fn queued_jobs_without_wait_can_be_cancelled() {
    let redis = Redis::start();
    // The API alone: nothing runs jobs, so they stay queued.
    let server = Kiln::api_only(&redis, &[]);
    let base = server.base.as_str();
    let output = kiln(
        base,
        &["submit", "plot", "--params", r#"{"series":[{"x":[0,1],"y":[0,1]}]}"#],
    );
    assert_eq!(code(&output), 0, "{}", describe(&output));
    let line = stdout(&output);
    let fields: Vec<&str> = line.trim_end_matches('\n').split('\t').collect();
    assert_eq!(fields[1..], ["queued", "-", ""], "{}", describe(&output));
    let id = fields[0];

    // Not finished: no result yet (409, exit 2).
    let output = kiln(base, &["get", id]);
    assert_eq!(code(&output), 2, "{}", describe(&output));
    assert!(stderr(&output).contains("no result yet"), "{}", describe(&output));

    let output = kiln(base, &["cancel", id]);
    assert_eq!(code(&output), 0, "{}", describe(&output));
    assert_eq!(stdout(&output), format!("{id}\tcancelled\n"));
    // get --wait of a cancelled job: exit 1.
    let output = kiln(base, &["get", id, "--wait"]);
    assert_eq!(code(&output), 1, "{}", describe(&output));
}

#[test]
fn readme_client_examples_run_as_written() {
    let script = readme_block("cli-examples");
    assert!(script.contains("kiln submit"), "the block holds the client examples");

    let redis = Redis::start();
    let server = Kiln::serve(&redis, &[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("photos")).unwrap();
    write_png(&dir.path().join("photos/a.png"), 40, 30);
    write_png(&dir.path().join("photos/b.png"), 80, 20);
    let bin_dir = Path::new(kiln_bin()).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("PATH", path)
        .env("KILN_URL", &server.base)
        .env_remove("KILN_API_KEY")
        .env("KILN_LOG", "warn")
        .current_dir(dir.path())
        .output()
        .expect("bash is installed");
    assert!(
        output.status.success(),
        "README client examples failed\n{}",
        describe(&output)
    );
    for name in ["a", "b"] {
        let image = decode_png(&std::fs::read(dir.path().join(format!("thumbs/{name}.png"))).unwrap());
        assert_eq!(image.width(), 20);
    }
    assert_eq!(
        decode_png(&std::fs::read(dir.path().join("a-small.png")).unwrap()).width(),
        20
    );
    let stdout = stdout(&output);
    assert!(stdout.contains("\"status\": \"succeeded\""), "{stdout}");
    assert!(stdout.contains("exit code 2"), "cancel of a finished job: {stdout}");
    // The pipeline saved its result and both named outputs.
    let piped: Vec<std::path::PathBuf> = std::fs::read_dir(dir.path().join("piped"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    let width_of = |suffix: &str| {
        let path = piped
            .iter()
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("no piped/*{suffix} in {piped:?}"));
        decode_png(&std::fs::read(path).unwrap()).width()
    };
    assert_eq!((width_of("-small.png"), width_of("-tiny.png")), (12, 4));
    assert_eq!(piped.len(), 3, "{piped:?}");
    // The two jobs on referenced inputs succeeded (set -e would have stopped at a failed one).
    assert_eq!(
        stdout.lines().filter(|l| l.contains("\tsucceeded\t-\t")).count(),
        2,
        "{stdout}"
    );
}

#[test]
fn bench_runs_whole_lifecycles_and_fails_on_a_wrong_result() {
    let redis = Redis::start();
    let kinds = hostile_kinds_dir();
    let server = Kiln::serve(&redis, &["--kinds-dir", kinds.path().to_str().unwrap()]);
    let base = server.url("");
    let noop = [
        "bench",
        "hostile",
        "--params",
        r#"{"mode":"noop"}"#,
        "-n",
        "12",
        "-c",
        "3",
    ];

    let out = kiln(&base, &[&noop[..], &["--expect", "1x1", "--json"]].concat());
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(report["jobs"], 12);
    assert_eq!(report["failed"], 0);
    assert!(report["jobs_per_sec"].as_f64().unwrap() > 0.0);
    let latency = &report["latency_ms"];
    assert!(latency["p50"].as_f64().unwrap() <= latency["p99"].as_f64().unwrap());
    // The jobs really ran: 12 measured plus 5 warm-up.
    let listed = kiln(&base, &["jobs", "--kind", "hostile", "--limit", "100"]);
    assert_eq!(stdout(&listed).lines().filter(|l| l.contains("succeeded")).count(), 17);

    // Every result is decoded and checked: a size that cannot match fails the run, exit 1, with the reason.
    let out = kiln(&base, &[&noop[..], &["--expect", "2x2"]].concat());
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        stderr(&out).contains("the result is 1×1, expected 2×2"),
        "{}",
        describe(&out)
    );

    // A job that fails is a failed round with the job's own error.
    let out = kiln(
        &base,
        &[
            "bench",
            "hostile",
            "--params",
            r#"{"mode":"panic"}"#,
            "-n",
            "2",
            "--warmup",
            "0",
        ],
    );
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        stderr(&out).contains("2 of 2 jobs failed") && stderr(&out).contains("trap"),
        "{}",
        describe(&out)
    );
}

#[test]
fn https_urls_are_reached_with_the_system_trust_store() {
    // A TLS server that is not Kiln: `openssl s_server -www` answers any GET with an HTML page.
    let dir = tempfile::tempdir().unwrap();
    self_signed_certificate(
        dir.path(),
        "server",
        "/CN=127.0.0.1",
        "1",
        &[
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ],
    );
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    let port = free_port();
    let mut server = Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-www",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
        ])
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let up = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let base = format!("https://127.0.0.1:{port}");

    // Trusted (SSL_CERT_FILE adds to the system's store): the handshake and the request go through, and
    // what comes back is HTML, not Kiln's JSON.
    let trusted = Command::new(kiln_bin())
        .args(["kinds", "--url", &base])
        .env("SSL_CERT_FILE", &cert)
        .env_remove("KILN_API_KEY")
        .output()
        .unwrap();
    // Not trusted: the certificate is refused, and the client says so.
    let untrusted = kiln(&base, &["kinds"]);
    server.kill().unwrap();
    let _ = server.wait();
    assert!(up, "openssl s_server did not start");
    assert_eq!(code(&trusted), 3, "{}", describe(&trusted));
    assert!(
        stderr(&trusted).contains("not the JSON expected"),
        "{}",
        describe(&trusted)
    );
    assert_eq!(code(&untrusted), 3, "{}", describe(&untrusted));
    assert!(
        stderr(&untrusted).to_lowercase().contains("certificate"),
        "{}",
        describe(&untrusted)
    );
}

#[tokio::test]
async fn blob_put_prints_an_id_that_submits_take_and_a_result_feeds_the_next_job() {
    let redis = Redis::start();
    let kiln_server = Kiln::serve(&redis, &[]);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("data.csv");
    std::fs::write(&csv, "year,a,b\n2000,1,2\n2005,3,1\n2010,4,4\n2015,6,5\n2020,7,9\n").unwrap();
    let put = kiln(&kiln_server.base, &["blob", "put", csv.to_str().unwrap()]);
    assert_eq!(code(&put), 0, "{}", describe(&put));
    let blob = stdout(&put).trim().to_owned();
    assert!(blob.starts_with("sha256:") && blob.len() == 71, "{}", describe(&put));

    let out = dir.path().join("out");
    let params = r#"{"csv": {"x": "year", "y": ["a", "b"]}, "start": 2000, "end": 2015, "width": 300, "height": 200}"#;
    let plotted = kiln(
        &kiln_server.base,
        &[
            "submit",
            "plot",
            "--input-blob",
            &blob,
            "--params",
            params,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&plotted), 0, "{}", describe(&plotted));
    let plot_id = stdout(&plotted).split('\t').next().unwrap().to_owned();
    let chart = decode_png(&std::fs::read(out.join(format!("{plot_id}.png"))).unwrap());
    assert_eq!((chart.width(), chart.height()), (300, 200));

    let cropped = kiln(
        &kiln_server.base,
        &[
            "submit",
            "crop",
            "--input-job",
            &plot_id,
            "--params",
            r#"{"crop": {"x": 0, "y": 0, "width": 120, "height": 80}}"#,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&cropped), 0, "{}", describe(&cropped));
    let crop_id = stdout(&cropped).split('\t').next().unwrap().to_owned();
    let crop = decode_png(&std::fs::read(out.join(format!("{crop_id}.png"))).unwrap()).to_rgb8();
    assert_eq!(crop.dimensions(), (120, 80));
    assert_eq!(
        crop.get_pixel(5, 5),
        chart.to_rgb8().get_pixel(5, 5),
        "the crop is of the chart"
    );

    // A reference that is not there: refused (exit 2), with the server's reason.
    let unknown = format!("sha256:{}", "f".repeat(64));
    let refused = kiln(
        &kiln_server.base,
        &["submit", "plot", "--input-blob", &unknown, "--params", params],
    );
    assert_eq!(code(&refused), 2, "{}", describe(&refused));
    assert!(stderr(&refused).contains("no blob"), "{}", describe(&refused));
    let removed = kiln(&kiln_server.base, &["blob", "rm", &blob]);
    assert_eq!(code(&removed), 0, "{}", describe(&removed));
    let again = kiln(&kiln_server.base, &["blob", "rm", &blob]);
    assert_eq!(code(&again), 2, "{}", describe(&again));
}
