//! `kiln kind`: what a new user does, from an empty folder outside the repository to a job of their own
//! kind, in Rust and in Python, run as the guide (`docs/write-a-job-kind.md`) writes it; the worked
//! Python example (`examples/python-identicon`); the edit loop (`kiln kind dev`); versions.
//!
//! Python tests need componentize-py (on PATH, or in `target/py-venv/bin` where `deploy/local.sh
//! prerequisites` installs it): without it they are skipped, except under CI=true, where they fail.
//! The Rust kinds share one CARGO_TARGET_DIR (`target/kind-templates`), so the template's dependencies
//! compile once.

use crate::common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const GUIDE: &str = include_str!("../../../docs/write-a-job-kind.md");

/// This build's target folder (`CARGO_TARGET_TMPDIR` is `<target>/tmp`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().to_owned()
}

fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// The folder holding componentize-py, or None (the test is then skipped; under CI it fails).
fn componentize_py_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| dir.join("componentize-py").is_file());
    let venv = target_dir().join("py-venv/bin");
    let found = on_path.or_else(|| venv.join("componentize-py").is_file().then_some(venv));
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "componentize-py is missing: `deploy/local.sh prerequisites` installs it in target/py-venv"
        );
        eprintln!("skipped: componentize-py not found (deploy/local.sh prerequisites installs it)");
    }
    found
}

/// PATH with the `kiln` binary's folder (and `extra`) first, as a user who installed both would have.
fn path_with(extra: &[&Path]) -> std::ffi::OsString {
    let kiln_dir = Path::new(kiln_bin()).parent().unwrap().to_owned();
    let mut dirs: Vec<PathBuf> = extra.iter().map(|p| p.to_path_buf()).collect();
    dirs.push(kiln_dir);
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(dirs).unwrap()
}

/// A command with the environment of a user talking to `kiln` (KILN_URL), componentize-py on PATH
/// (when given), and the shared Rust target folder.
fn user_env(command: &mut Command, kiln: &Kiln, python: Option<&Path>) {
    command
        .env("KILN_URL", &kiln.base)
        .env_remove("KILN_API_KEY")
        .env("PATH", path_with(&python.into_iter().collect::<Vec<_>>()))
        .env("CARGO_TARGET_DIR", target_dir().join("kind-templates"));
}

/// `kiln ARGS` in `cwd` as a user would run it.
async fn kiln_cli(kiln: &Kiln, python: Option<&Path>, cwd: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(kiln_bin());
    command.args(args).current_dir(cwd);
    user_env(&mut command, kiln, python);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// Runs a `sh` block of the guide with bash in `cwd`; panics with its output if it fails.
async fn run_guide_block(marker: &str, kiln: &Kiln, python: Option<&Path>, cwd: &Path) -> String {
    let script = doc_block(GUIDE, marker);
    let mut command = Command::new("bash");
    command.args(["-euo", "pipefail", "-c", &script]).current_dir(cwd);
    user_env(&mut command, kiln, python);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the guide's `{marker}` block failed\nscript:\n{}\nstdout:\n{stdout}\nstderr:\n{}",
        doc_block(GUIDE, marker),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A Kiln with the default limits: they take Python-sized components.
fn serve(redis: &Redis) -> Kiln {
    Kiln::serve(redis, &[])
}

/// The only PNG in `dir`, decoded.
fn only_png(dir: &Path) -> image::RgbImage {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    decode_png(&std::fs::read(&files[0]).unwrap()).to_rgb8()
}

/// The template's picture, as `--params '{"width": 120, "height": 80, "color": [255, 0, 0]}'` draws it.
fn assert_template_picture(image: &image::RgbImage) {
    assert_eq!(image.dimensions(), (120, 80));
    assert_eq!(image.get_pixel(60, 40).0, [255, 0, 0], "the disc's centre");
    let corner = image.get_pixel(0, 0).0;
    assert!(
        corner[0] == corner[1] && corner[1] == corner[2],
        "grey outside: {corner:?}"
    );
    assert!(
        image.get_pixel(119, 0).0[0] > corner[0],
        "the gradient brightens to the right"
    );
}

#[tokio::test]
async fn python_kind_from_new_to_job_as_the_guide_says() {
    let Some(python) = componentize_py_dir() else { return };
    let redis = Redis::start();
    let kiln = serve(&redis);
    let home = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let stdout = run_guide_block("guide-python", &kiln, Some(&python), home.path()).await;
    eprintln!("python guide: {:.1} s", started.elapsed().as_secs_f64());
    assert!(
        stdout.contains("hello-py.wasm"),
        "build prints the component's path: {stdout}"
    );
    assert_template_picture(&only_png(&home.path().join("hello-py/results")));
}

#[tokio::test]
async fn rust_kind_from_new_to_job_as_the_guide_says() {
    let redis = Redis::start();
    let kiln = serve(&redis);
    let home = tempfile::tempdir().unwrap();
    let stdout = run_guide_block("guide-rust", &kiln, None, home.path()).await;
    assert!(
        stdout.contains("hello_rs.wasm"),
        "build prints the component's path: {stdout}"
    );
    assert_template_picture(&only_png(&home.path().join("hello-rs/results")));
    // The generated kind stands alone: its own workspace, the SDK vendored with exact versions.
    let cargo = std::fs::read_to_string(home.path().join("hello-rs/Cargo.toml")).unwrap();
    assert!(cargo.contains("\n[workspace]\n"), "{cargo}");
    assert!(home.path().join("hello-rs/kiln-guest/src/lib.rs").is_file());
}

/// The worked example: built by `kiln kind build`, uploaded, run; its picture decoded and checked.
#[tokio::test]
async fn python_example_identicon_builds_uploads_and_draws() {
    let Some(python) = componentize_py_dir() else { return };
    let example = repo_dir().join("examples/python-identicon");
    assert_eq!(
        std::fs::read_to_string(example.join("wit/job.wit")).unwrap(),
        std::fs::read_to_string(repo_dir().join("wit/job.wit")).unwrap(),
        "the example's WIT is Kiln's"
    );
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("identicon");
    copy_dir(&example, &dir);
    let unit = Command::new("python3")
        .args(["-m", "unittest"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(unit.status.success(), "{}", String::from_utf8_lossy(&unit.stderr));
    let redis = Redis::start();
    let kiln = serve(&redis);

    let started = Instant::now();
    let build = kiln_cli(&kiln, Some(&python), &dir, &["kind", "build"]).await;
    assert!(build.status.success(), "{}", String::from_utf8_lossy(&build.stderr));
    eprintln!(
        "identicon build + check: {:.1} s; {}",
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&build.stderr).lines().last().unwrap_or("")
    );
    let push = kiln_cli(&kiln, Some(&python), &dir, &["kind", "push", "--no-build"]).await;
    assert!(push.status.success(), "{}", String::from_utf8_lossy(&push.stderr));
    let version = String::from_utf8_lossy(&push.stdout).trim().to_owned();
    assert_eq!(version.len(), 64, "push prints the version: {version}");

    let avatar = |text: &str| {
        let kiln = &kiln;
        let params = serde_json::json!({"text": text, "size": 120});
        async move {
            let response = client()
                .post(kiln.url("/v1/jobs/identicon?wait=60"))
                .json(&serde_json::json!({ "params": params }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{:?}", response.text().await);
            decode_png(&response.bytes().await.unwrap()).to_rgb8()
        }
    };
    let ada = avatar("ada@example.com").await;
    assert_eq!(ada.dimensions(), (120, 120));
    for y in 0..120 {
        for x in 0..60 {
            assert_eq!(ada.get_pixel(x, y), ada.get_pixel(119 - x, y), "mirrored at ({x}, {y})");
        }
    }
    assert_eq!(ada.get_pixel(0, 0).0, [240, 240, 240], "the margin is background");
    let colours: std::collections::BTreeSet<[u8; 3]> = ada.pixels().map(|p| p.0).collect();
    assert_eq!(colours.len(), 2, "background and one colour: {colours:?}");
    assert_eq!(avatar("ada@example.com").await, ada, "the same text, the same picture");
    assert_ne!(avatar("grace@example.com").await, ada);

    // Errors the Python code raises reach the job as the WIT's codes. The schema refuses these params
    // at submit, so upload the same component under an open schema to reach the guest's own check.
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("kind.json")).unwrap()).unwrap();
    manifest["params_schema"] = serde_json::json!({"type": "object"});
    std::fs::write(dir.join("kind.json"), manifest.to_string()).unwrap();
    let push = kiln_cli(&kiln, Some(&python), &dir, &["kind", "push", "--no-build"]).await;
    assert!(push.status.success(), "{}", String::from_utf8_lossy(&push.stderr));
    let response = client()
        .post(kiln.url("/v1/jobs/identicon"))
        .json(&serde_json::json!({"params": {"text": "a", "size": 3}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let job: serde_json::Value = response.json().await.unwrap();
    let job = wait_final(&kiln, job["id"].as_str().unwrap(), Duration::from_secs(60)).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "invalid-params", "{job}");
    assert!(
        job["error"]["message"].as_str().unwrap().contains("size must be"),
        "{job}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "build" || name == "__pycache__" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// `kiln kind dev` on a new Rust kind: it pushes and runs the sample at start, and again after a source
/// changes, with a new version and a different picture.
#[tokio::test(flavor = "multi_thread")]
async fn dev_rebuilds_repushes_and_reruns_the_sample_on_a_change() {
    let redis = Redis::start();
    let kiln = serve(&redis);
    let home = tempfile::tempdir().unwrap();
    let new = kiln_cli(&kiln, None, home.path(), &["kind", "new", "dev-disc", "--lang", "rust"]).await;
    assert!(new.status.success(), "{}", String::from_utf8_lossy(&new.stderr));
    let dir = home.path().join("dev-disc");

    let mut command = Command::new(kiln_bin());
    command.args(["kind", "dev"]).current_dir(&dir).stdout(Stdio::piped());
    user_env(&mut command, &kiln, None);
    let mut child = command.spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Until the sample job's line: (version, that line).
    let next_round = || {
        let mut version = None;
        let deadline = Instant::now() + Duration::from_secs(900);
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("kiln kind dev printed a round in time");
            eprintln!("dev: {line}");
            assert!(!line.starts_with("error:"), "{line}");
            if let Some(v) = line.strip_prefix("version ") {
                version = Some(v.to_owned());
            }
            if line.starts_with("sample job ") {
                return (version.expect("a version before the sample"), line);
            }
        }
    };
    let saved = dir.join("build/sample.png");
    let (first, line) = tokio::task::block_in_place(next_round);
    assert!(line.contains("succeeded: a 96x64 PNG"), "{line}");
    let before = decode_png(&std::fs::read(&saved).unwrap()).to_rgb8();
    assert_eq!(before.get_pixel(48, 32).0, [230, 90, 20], "sample.json's colour");

    // The user changes the gradient: the corner turns black.
    let lib = dir.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    assert!(source.contains("(64.0 + 128.0 *"));
    std::fs::write(&lib, source.replace("(64.0 + 128.0 *", "(0.0 + 128.0 *")).unwrap();
    let (second, line) = tokio::task::block_in_place(next_round);
    assert!(line.contains("succeeded"), "{line}");
    assert_ne!(first, second, "a new version");
    let after = decode_png(&std::fs::read(&saved).unwrap()).to_rgb8();
    assert_eq!(after.get_pixel(0, 0).0, [0, 0, 0], "the changed code ran");
    assert_ne!(before.get_pixel(0, 0), after.get_pixel(0, 0));

    // Ctrl-C ends it, cleanly.
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = tokio::task::block_in_place(|| child.wait()).unwrap();
    assert!(status.success(), "{status:?}");
}

/// A kind folder whose component is already built (the test guest `noop`), for the version commands.
fn noop_kind(home: &Path, name: &str, description: &str) -> PathBuf {
    let dir = home.join(name);
    std::fs::create_dir_all(dir.join("build")).unwrap();
    std::fs::write(dir.join("app.py"), "# built elsewhere\n").unwrap();
    std::fs::write(
        dir.join("kind.json"),
        serde_json::json!({"name": name, "description": description, "output_media_type": "image/png", "input": "none"})
            .to_string(),
    )
    .unwrap();
    let (_, _, component) = kiln::kinds::TEST_GUESTS
        .iter()
        .find(|(name, _, _)| *name == "guest-noop")
        .expect("the noop guest is built");
    std::fs::copy(component, dir.join(format!("build/{name}.wasm"))).unwrap();
    dir
}

#[tokio::test]
async fn rm_unregisters_a_pushed_kind() {
    let redis = Redis::start();
    let kiln = serve(&redis);
    let home = tempfile::tempdir().unwrap();
    let dir = noop_kind(home.path(), "gone", "to be removed");
    let push = kiln_cli(&kiln, None, &dir, &["kind", "push", "--no-build"]).await;
    assert!(push.status.success(), "{}", String::from_utf8_lossy(&push.stderr));
    assert_eq!(send_status(client().get(kiln.url("/v1/kinds/gone"))).await, 200);
    let rm = kiln_cli(&kiln, None, &dir, &["kind", "rm", "gone"]).await;
    assert!(rm.status.success(), "{}", String::from_utf8_lossy(&rm.stderr));
    assert_eq!(send_status(client().get(kiln.url("/v1/kinds/gone"))).await, 404);
    let again = kiln_cli(&kiln, None, &dir, &["kind", "rm", "gone"]).await;
    assert_eq!(again.status.code(), Some(2), "an unknown kind is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("404"));
}

/// Until the versions routes exist, `versions` and `use` say what the server answered (404), exit 2.
#[tokio::test]
async fn versions_and_use_report_the_servers_refusal() {
    let redis = Redis::start();
    let kiln = serve(&redis);
    let home = tempfile::tempdir().unwrap();
    for args in [&["kind", "versions", "nosuch"][..], &["kind", "use", "nosuch", "abc"]] {
        let output = kiln_cli(&kiln, None, home.path(), args).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("404"), "{args:?}");
    }
}

/// Every upload is a version; `versions` lists them newest first, `use` makes an older one current.
#[tokio::test]
async fn versions_lists_uploads_and_use_goes_back() {
    let redis = Redis::start();
    let kiln = serve(&redis);
    let home = tempfile::tempdir().unwrap();
    let dir = noop_kind(home.path(), "versioned", "first");
    let push = |dir: PathBuf| {
        let kiln = &kiln;
        async move {
            let output = kiln_cli(kiln, None, &dir, &["kind", "push", "--no-build"]).await;
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        }
    };
    let first = push(dir.clone()).await;
    noop_kind_description(&dir, "second");
    let second = push(dir.clone()).await;
    assert_ne!(first, second);
    let listed = kiln_cli(&kiln, None, &dir, &["kind", "versions", "versioned"]).await;
    let table = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(
        rows[0].starts_with(&format!("* {second}")) && rows[0].ends_with("second"),
        "{table}"
    );
    assert!(rows[1].starts_with(&format!("  {first}")), "{table}");
    let used = kiln_cli(&kiln, None, &dir, &["kind", "use", "versioned", &first]).await;
    assert!(used.status.success(), "{}", String::from_utf8_lossy(&used.stderr));
    let kind = send_json(client().get(kiln.url("/v1/kinds/versioned"))).await;
    assert_eq!(kind["version"], first.as_str(), "{kind}");
    assert_eq!(kind["description"], "first");
}

fn noop_kind_description(dir: &Path, description: &str) {
    let path = dir.join("kind.json");
    let mut manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    manifest["description"] = description.into();
    std::fs::write(path, manifest.to_string()).unwrap();
}

/// The guide's versions block, word for word, after the Python track's kind is pushed twice.
#[tokio::test]
async fn the_guides_version_commands_run_as_written() {
    let redis = Redis::start();
    let kiln = serve(&redis);
    let home = tempfile::tempdir().unwrap();
    let dir = noop_kind(home.path(), "hello-py", "first");
    let push = kiln_cli(&kiln, None, &dir, &["kind", "push", "--no-build"]).await;
    assert!(push.status.success());
    noop_kind_description(&dir, "second");
    let push = kiln_cli(&kiln, None, &dir, &["kind", "push", "--no-build"]).await;
    assert!(push.status.success());
    let stdout = run_guide_block("guide-versions", &kiln, None, home.path()).await;
    assert!(stdout.contains("second") && stdout.contains("first"), "{stdout}");
    assert_eq!(
        send_status(client().get(kiln.url("/v1/kinds/hello-py"))).await,
        404,
        "rm ran last"
    );
}

/// What is missing is named, with the command that installs it; a non-empty folder is not overwritten.
#[tokio::test]
async fn build_says_how_to_install_what_is_missing() {
    let redis = Redis::start();
    let kiln = serve(&redis);
    let home = tempfile::tempdir().unwrap();
    let new = kiln_cli(&kiln, None, home.path(), &["kind", "new", "py", "--lang", "python"]).await;
    assert!(new.status.success());
    let again = kiln_cli(&kiln, None, home.path(), &["kind", "new", "py", "--lang", "rust"]).await;
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    // Only the kiln binary on PATH: no componentize-py, no cargo.
    let kiln_dir = Path::new(kiln_bin()).parent().unwrap();
    let bare = |dir: PathBuf| {
        let mut command = Command::new(kiln_bin());
        command.args(["kind", "build"]).current_dir(dir).env("PATH", kiln_dir);
        command.output().unwrap()
    };
    let python = bare(home.path().join("py"));
    assert_eq!(python.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&python.stderr);
    assert!(stderr.contains("pip install componentize-py==0.25.1"), "{stderr}");

    let new = kiln_cli(&kiln, None, home.path(), &["kind", "new", "rs", "--lang", "rust"]).await;
    assert!(new.status.success());
    let rust = bare(home.path().join("rs"));
    assert_eq!(rust.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&rust.stderr);
    assert!(
        stderr.contains("cargo is not installed") && stderr.contains("rustup"),
        "{stderr}"
    );
}
