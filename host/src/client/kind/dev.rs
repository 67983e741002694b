//! `kiln kind dev`: an edit loop. Watches the kind's sources (polling their size and mtime: no watcher
//! threads, works on every filesystem), and after each change settles, rebuilds, re-pushes and runs a
//! sample job, printing its outcome. A failed build or job is printed and the loop goes on; Ctrl-C ends
//! it.

use super::{Project, build, registry, sources};
use crate::client::submit::{read_input, read_params, submit_request};
use crate::client::{Failure, Job, Remote, commands};
use crate::config::KindDevArgs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often the sources are looked at.
const POLL: Duration = Duration::from_millis(400);
/// A change counts once nothing has changed for this long (an editor saving several files, a formatter).
const SETTLE: Duration = Duration::from_millis(300);

pub async fn run(args: KindDevArgs) -> Result<(), Failure> {
    let remote = Remote::new(&args.remote)?;
    let dir = Project::open(&args.dir)?.dir;
    let mut seen = sources(&dir);
    eprintln!(
        "kiln: watching {} (pushing to {}); Ctrl-C stops",
        dir.display(),
        args.remote.url
    );
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    let mut pending = true;
    loop {
        if pending {
            tokio::select! {
                _ = &mut stop => return Ok(()),
                () = cycle(&remote, &dir, &args) => {}
            }
            eprintln!("kiln: waiting for changes");
            pending = false;
        }
        tokio::select! {
            _ = &mut stop => return Ok(()),
            () = tokio::time::sleep(POLL) => {}
        }
        let mut now = sources(&dir);
        if now == seen {
            continue;
        }
        loop {
            tokio::time::sleep(SETTLE).await;
            let again = sources(&dir);
            if again == now {
                break;
            }
            now = again;
        }
        seen = now;
        eprintln!("kiln: sources changed");
        pending = true;
    }
}

/// One round: build, push, sample job. Prints one line per step on stdout.
async fn cycle(remote: &Remote, dir: &Path, args: &KindDevArgs) {
    if let Err(e) = try_cycle(remote, dir, args).await {
        println!("error: {}", e.message);
    }
}

async fn try_cycle(remote: &Remote, dir: &Path, args: &KindDevArgs) -> Result<(), Failure> {
    let project = Project::open(dir)?;
    let built = build(&project).await?;
    println!("built {} ({} bytes)", built.path.display(), built.size);
    let version = registry::push(remote, &project, &built).await?;
    println!("version {version}");
    let sample = dir.join("sample.json");
    let params = match (&args.params, sample.is_file()) {
        (Some(raw), _) => read_params(Some(raw))?,
        (None, true) => read_params(Some(&format!("@{}", sample.display())))?,
        (None, false) => Default::default(),
    };
    let input = match &args.input {
        Some(path) => Some(read_input(path).await?),
        None => None,
    };
    let params = serde_json::Value::Object(params).to_string();
    let job: Job = remote
        .json(submit_request(
            remote,
            project.name(),
            &params,
            input.as_ref(),
            None,
            false,
        ))
        .await?;
    let job = remote.wait_final(&job.id, |_| {}).await?;
    if job.status != "succeeded" {
        println!("sample job {} {}: {}", job.id, job.status, job.reason());
        return Ok(());
    }
    let bytes = commands::download(remote, &job.id).await?;
    let out = args.output.clone().unwrap_or_else(|| default_output(&project));
    if let Some(parent) = out.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    commands::save(&out, &bytes)?;
    let what = match png_size(&bytes) {
        Some((width, height)) => format!("a {width}x{height} PNG"),
        None => project.manifest.output_media_type.clone(),
    };
    println!(
        "sample job {} succeeded: {what}, {} bytes, saved {}",
        job.id,
        bytes.len(),
        out.display()
    );
    Ok(())
}

fn default_output(project: &Project) -> PathBuf {
    let ext = match project.manifest.output_media_type.as_str() {
        "image/jpeg" => "jpg",
        other => other.rsplit('/').next().unwrap_or("out"),
    };
    project.dir.join("build").join(format!("sample.{ext}"))
}

/// Width and height from a PNG's header.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let info = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().ok()?;
    Some((info.info().width, info.info().height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_not_sources() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("build")).unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("build/x.wasm"), "1").unwrap();
        let before = sources(dir.path());
        assert!(before.is_empty());
        std::fs::write(dir.path().join("build/x.wasm"), "22").unwrap();
        assert_eq!(sources(dir.path()), before);
        std::fs::write(dir.path().join("src/lib.rs"), "").unwrap();
        assert_eq!(sources(dir.path()).len(), 1);
    }
}
