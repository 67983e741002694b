//! `kiln kind build`: builds a kind's component, then checks it as an upload would be checked.
//!
//! The check is the server's own code, run here: the manifest's rules (`Manifest::check`, `Kind::new`),
//! the component header (`kinds::check_component_header`), and a compile and link against Kiln's world
//! with the same engine settings and per-component limits (`Runtime::prepare`). A component that passes
//! here passes the upload (unless the server's operator set lower ceilings).

use super::{Lang, Project};
use crate::client::{EXIT_REFUSED, Failure};
use crate::kinds::{Kind, check_component_header, component_hash, kind_version};
use crate::runtime::{Runtime, RuntimeConfig};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The componentize-py release the templates are written and tested for.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// A built and checked component.
#[derive(Debug, Clone)]
pub struct Built {
    pub path: PathBuf,
    pub size: u64,
    /// How long the build and the check took (None: not built or checked by this command).
    pub build_time: Option<Duration>,
    pub check_time: Option<Duration>,
}

impl Built {
    /// Prints the component's path and size (stdout), and the timings (stderr).
    pub fn report(&self) -> Result<(), Failure> {
        if let (Some(build), Some(check)) = (self.build_time, self.check_time) {
            eprintln!(
                "kiln: built in {:.1} s; fits Kiln's world (checked in {:.1} s)",
                build.as_secs_f64(),
                check.as_secs_f64()
            );
        }
        crate::client::commands::print_stdout(&format!(
            "{}\t{} bytes ({:.1} MB)\n",
            self.path.display(),
            self.size,
            self.size as f64 / 1e6
        ))
    }
}

/// Builds the kind's component and checks it.
pub async fn build(project: &Project) -> Result<Built, Failure> {
    let started = Instant::now();
    let path = match project.lang {
        Lang::Rust => cargo_build(&project.dir).await?,
        Lang::Python => {
            let out = python_output(project);
            if is_newer_than_sources(&out, &project.dir) {
                eprintln!("kiln: {} is newer than every source; not rebuilt", out.display());
                out
            } else {
                componentize(project).await?
            }
        }
    };
    let build_time = started.elapsed();
    let component = read(&path)?;
    let check_time = check(project, component.clone(), Some(project.dir.join("build/check-cache"))).await?;
    Ok(Built {
        size: component.len() as u64,
        path,
        build_time: Some(build_time),
        check_time: Some(check_time),
    })
}

/// The component the last build left, for `push --no-build`.
pub async fn last_built(project: &Project) -> Result<Built, Failure> {
    let path = match project.lang {
        Lang::Rust => {
            #[derive(Deserialize)]
            struct Metadata {
                target_directory: PathBuf,
            }
            let output = run_tool(
                tokio::process::Command::new("cargo")
                    .args(["metadata", "--format-version", "1", "--no-deps"])
                    .current_dir(&project.dir),
                "cargo",
                RUSTUP,
            )
            .await?;
            let metadata: Metadata = serde_json::from_slice(&output)
                .map_err(|e| Failure::refused(format!("cargo metadata answered something unexpected: {e}")))?;
            let lib = project.name().replace('-', "_");
            metadata
                .target_directory
                .join(format!("wasm32-wasip2/release/{lib}.wasm"))
        }
        Lang::Python => python_output(project),
    };
    if !path.is_file() {
        return Err(Failure::refused(format!(
            "{} does not exist: build the kind first (`kiln kind build`), or push without --no-build",
            path.display()
        )));
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    Ok(Built {
        path,
        size,
        build_time: None,
        check_time: None,
    })
}

pub fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::refused(format!("cannot read {}: {e}", path.display())))
}

const RUSTUP: &str = "install Rust with rustup (https://rustup.rs), then `rustup target add wasm32-wasip2`";

/// `cargo build --target wasm32-wasip2 --release`, finding the component in cargo's JSON messages (so a
/// CARGO_TARGET_DIR or a `[build] target-dir` is honoured).
async fn cargo_build(dir: &Path) -> Result<PathBuf, Failure> {
    if let Ok(installed) = tokio::process::Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(dir)
        .stderr(Stdio::null())
        .output()
        .await
        && installed.status.success()
        && !String::from_utf8_lossy(&installed.stdout)
            .lines()
            .any(|t| t.trim() == "wasm32-wasip2")
    {
        return Err(Failure::refused(
            "the Rust target wasm32-wasip2 is not installed: run `rustup target add wasm32-wasip2`",
        ));
    }
    let stdout = run_tool(
        tokio::process::Command::new("cargo")
            .args([
                "build",
                "--target",
                "wasm32-wasip2",
                "--release",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(dir),
        "cargo",
        RUSTUP,
    )
    .await?;
    #[derive(Deserialize)]
    struct Message {
        reason: String,
        #[serde(default)]
        manifest_path: PathBuf,
        #[serde(default)]
        filenames: Vec<PathBuf>,
    }
    let manifest = dir.join("Cargo.toml");
    String::from_utf8_lossy(&stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Message>(line).ok())
        .filter(|m| m.reason == "compiler-artifact" && same_file(&m.manifest_path, &manifest))
        .flat_map(|m| m.filenames)
        .rfind(|f| f.extension().is_some_and(|e| e == "wasm"))
        .ok_or_else(|| {
            Failure::refused(format!(
                "cargo built no .wasm for {}: its [lib] needs `crate-type = [\"cdylib\", \"rlib\"]`",
                manifest.display()
            ))
        })
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || std::fs::canonicalize(a).ok() == std::fs::canonicalize(b).ok()
}

/// Whether `out` exists and was written after every source file changed (cargo decides this itself).
fn is_newer_than_sources(out: &Path, dir: &Path) -> bool {
    let Some(built) = std::fs::metadata(out).and_then(|m| m.modified()).ok() else {
        return false;
    };
    super::sources(dir)
        .values()
        .all(|(_, modified)| modified.is_some_and(|m| m <= built))
}

fn python_output(project: &Project) -> PathBuf {
    project.dir.join("build").join(format!("{}.wasm", project.name()))
}

/// `componentize-py -d wit -w handler componentize app -o build/NAME.wasm`.
async fn componentize(project: &Project) -> Result<PathBuf, Failure> {
    let out = python_output(project);
    std::fs::create_dir_all(project.dir.join("build"))
        .map_err(|e| Failure::refused(format!("cannot create {}/build: {e}", project.dir.display())))?;
    let install = format!("install it with `pip install {COMPONENTIZE_PY}` (Python 3.10 or later)");
    run_tool(
        tokio::process::Command::new("componentize-py")
            .args(["-d", "wit", "-w", "handler", "componentize", "app", "-o"])
            .arg(&out)
            .current_dir(&project.dir),
        "componentize-py",
        &install,
    )
    .await?;
    Ok(out)
}

/// Runs a build tool, its stderr shown as it goes; its stdout is returned. Missing or failing, it is
/// the user's to fix (exit 2), with `install` saying how when the tool is missing.
async fn run_tool(command: &mut tokio::process::Command, tool: &str, install: &str) -> Result<Vec<u8>, Failure> {
    let output = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Failure::refused(format!("{tool} is not installed (or not on PATH): {install}"))
            }
            _ => Failure::refused(format!("cannot run {tool}: {e}")),
        })?;
    if !output.status.success() {
        return Err(Failure::new(
            EXIT_REFUSED,
            format!("{tool} failed ({}); its messages are above", output.status),
        ));
    }
    Ok(output.stdout)
}

/// The upload's checks, here: manifest, header, compile and link against Kiln's world. Returns how long
/// they took (mostly compiling: a Python component takes tens of seconds, so the compiled code is kept in
/// `cache_dir`, as the server keeps its own, and an unchanged component is checked in a moment).
async fn check(project: &Project, component: Vec<u8>, cache_dir: Option<PathBuf>) -> Result<Duration, Failure> {
    let manifest = project.manifest.clone();
    let refused = |e: &dyn std::fmt::Display| Failure::refused(format!("kind.json: {e}"));
    manifest.check().map_err(|e| refused(&e))?;
    let hash = component_hash(&component);
    Kind::new(manifest.clone(), kind_version(&hash, &manifest)).map_err(|e| refused(&e))?;
    check_component_header(&component).map_err(Failure::refused)?;
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let runtime = Runtime::with_config(RuntimeConfig {
            cache_dir,
            max_concurrent_runs: 1,
            threads: 1,
            ..RuntimeConfig::default()
        })
        .map_err(|e| Failure::new(1, format!("cannot start the wasm engine to check the component: {e:#}")))?;
        runtime
            .prepare(&hash, &component)
            .map_err(|e| Failure::refused(e.to_string()))?;
        Ok(started.elapsed())
    })
    .await
    .map_err(|e| Failure::new(1, format!("the check stopped: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::Manifest;

    fn project(output_media_type: &str) -> Project {
        let manifest: Manifest = serde_json::from_value(serde_json::json!({
            "name": "k", "description": "d", "output_media_type": output_media_type, "input": "none"
        }))
        .unwrap();
        Project {
            dir: PathBuf::from("."),
            lang: super::super::Lang::Python,
            manifest_text: serde_json::to_string(&manifest).unwrap(),
            manifest,
        }
    }

    /// The upload's reasons, before any upload.
    #[tokio::test]
    async fn the_check_refuses_what_an_upload_would() {
        let component = wat::parse_str("(component)").unwrap();
        let error = check(&project("text/html"), component.clone(), None).await.unwrap_err();
        assert!(error.message.contains("output_media_type"), "{}", error.message);
        let core = wat::parse_str("(module)").unwrap();
        let error = check(&project("image/png"), core, None).await.unwrap_err();
        assert!(error.message.contains("core wasm module"), "{}", error.message);
        let error = check(&project("image/png"), component, None).await.unwrap_err();
        assert!(error.message.contains("kiln:job/handler"), "{}", error.message);
        assert_eq!(error.code, EXIT_REFUSED);
    }
}
