//! `kiln submit KIND`: one job per input file (a folder counts as each file in it), uploaded a few at a
//! time, optionally waited for and their results saved, with progress bars on stderr and one
//! tab-separated line per job on stdout: `<id>\t<status>\t<input file or ->\t<error>`.
//!
//! Each upload carries a fresh `Idempotency-Key`, so a submit retried after a lost answer (no answer, or
//! a 5xx) never queues a second job. Waiting uses the server's long-poll (`GET /v1/jobs/{id}?wait=N`),
//! not tight polling.

use super::commands::{download, extension, save};
use super::{EXIT_JOB_FAILED, EXIT_REFUSED, EXIT_UNREACHABLE, Failure, Job, Remote, field, path_segment};
use crate::config::SubmitArgs;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Jobs waited for at once: each is one open long-poll request.
const WATCHERS: usize = 32;
/// Attempts of one upload when the server cannot be reached or fails (5xx).
const SUBMIT_ATTEMPTS: u32 = 3;
/// Longest one upload may take.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// One job to submit.
struct Planned {
    input: Option<PathBuf>,
    /// The result's file name in `--out`, without `.png`; `None`: the job id.
    stem: Option<String>,
}

/// What became of one job.
struct Outcome {
    id: Option<String>,
    input: Option<PathBuf>,
    status: String,
    error: String,
    /// 0 fine, else the exit code this job calls for.
    code: u8,
}

impl Outcome {
    fn line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}",
            self.id.as_deref().unwrap_or("-"),
            self.status,
            self.input
                .as_ref()
                .map_or("-".into(), |p| field(&p.display().to_string())),
            field(&self.error)
        )
    }

    fn label(&self) -> String {
        match (&self.input, &self.id) {
            (Some(input), _) => input.display().to_string(),
            (None, Some(id)) => format!("job {id}"),
            (None, None) => "the job".into(),
        }
    }
}

/// Shared by the per-job tasks.
struct Batch {
    remote: Remote,
    kind: String,
    params: String,
    /// `--input-blob`/`--input-job` as the submit's `input` JSON.
    input_ref: Option<String>,
    /// False with `--no-cache`: every job runs.
    cache: bool,
    flow: Flow,
    wait: bool,
    out: Option<PathBuf>,
    uploads: Semaphore,
    watchers: Semaphore,
    uploaded: ProgressBar,
    finished: ProgressBar,
}

pub async fn run(args: SubmitArgs) -> Result<(), Failure> {
    let remote = Remote::new(&args.remote)?;
    let params = read_params(args.params.as_deref())?;
    let planned = plan(&args.input)?;
    let wait = args.wait || args.out.is_some();
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out)
            .map_err(|e| Failure::refused(format!("cannot create --out folder {}: {e}", out.display())))?;
    }
    // Once, before any upload: the server answers, the kind exists, the key is good. Otherwise every file
    // would fail alike.
    remote
        .json::<Value>(remote.request(Method::GET, &format!("/v1/kinds/{}", path_segment(&args.kind))))
        .await?;
    remote
        .json::<Value>(remote.request(Method::GET, "/v1/jobs").query(&[("limit", "1")]))
        .await?;

    let total = planned.len() as u64;
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let uploaded = multi.add(
        ProgressBar::new(total)
            .with_style(style.clone())
            .with_prefix("uploaded"),
    );
    let finished = if wait {
        multi.add(ProgressBar::new(total).with_style(style).with_prefix("finished"))
    } else {
        ProgressBar::hidden()
    };
    uploaded.tick();
    finished.tick();
    let batch = Arc::new(Batch {
        remote,
        kind: args.kind.clone(),
        params: Value::Object(params).to_string(),
        input_ref: input_ref(&args),
        cache: !args.no_cache,
        flow: Flow {
            priority: args.priority.clone(),
            delay_secs: args.delay_secs,
            run_at: args.run_at.clone(),
            callback_url: args.callback_url.clone(),
        },
        wait,
        out: args.out.clone(),
        uploads: Semaphore::new(args.concurrency as usize),
        watchers: Semaphore::new(WATCHERS),
        uploaded: uploaded.clone(),
        finished: finished.clone(),
    });

    let mut tasks = tokio::task::JoinSet::new();
    for job in planned {
        tasks.spawn(one(batch.clone(), job));
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined.unwrap_or_else(|e| Outcome {
            id: None,
            input: None,
            status: "error".into(),
            error: format!("the client task failed: {e}"),
            code: EXIT_UNREACHABLE,
        });
        let line = outcome.line();
        multi.suspend(|| println!("{line}"));
        outcomes.push(outcome);
    }
    uploaded.finish_and_clear();
    finished.finish_and_clear();
    summarise(&outcomes, wait, args.out.as_deref())
}

/// Submits one job, and with `wait`, follows it to its end and saves its result.
async fn one(batch: Arc<Batch>, job: Planned) -> Outcome {
    let mut outcome = Outcome {
        id: None,
        input: job.input.clone(),
        status: "error".into(),
        error: String::new(),
        code: 0,
    };
    let submitted = {
        let _permit = batch.uploads.acquire().await;
        let submitted = submit(&batch, job.input.as_deref()).await;
        batch.uploaded.inc(1);
        submitted
    };
    let submitted = match submitted {
        Ok(submitted) => submitted,
        Err(e) => {
            batch.finished.inc(1);
            outcome.status = if e.code == EXIT_REFUSED { "rejected" } else { "error" }.into();
            outcome.error = e.message;
            outcome.code = e.code;
            return outcome;
        }
    };
    outcome.id = Some(submitted.id.clone());
    outcome.status = submitted.status.clone();
    if !batch.wait {
        return outcome;
    }
    let _permit = batch.watchers.acquire().await;
    let ended = batch.remote.wait_final(&submitted.id, |_| {}).await;
    batch.finished.inc(1);
    let ended = match ended {
        Ok(ended) => ended,
        Err(e) => {
            outcome.status = "error".into();
            outcome.error = format!("lost track of the job: {}", e.message);
            outcome.code = e.code;
            return outcome;
        }
    };
    outcome.status = ended.status.clone();
    if ended.status != "succeeded" {
        outcome.error = ended.reason();
        outcome.code = EXIT_JOB_FAILED;
        batch
            .finished
            .set_message(format!("{} {}", outcome.label(), ended.status));
        return outcome;
    }
    if let Some(out) = &batch.out {
        let stem = job.stem.as_deref().unwrap_or(&ended.id);
        let saved = match download(&batch.remote, &ended.id).await {
            Ok(bytes) => save(&out.join(format!("{stem}.{}", extension(&bytes))), &bytes),
            Err(e) => Err(e),
        };
        if let Err(e) = saved {
            outcome.error = format!("succeeded, but its result was not saved: {}", e.message);
            outcome.code = e.code.max(EXIT_JOB_FAILED);
            return outcome;
        }
    }
    batch.finished.set_message(outcome.label());
    outcome
}

/// One upload, retried when the server cannot be reached or fails.
async fn submit(batch: &Batch, input: Option<&Path>) -> Result<Job, Failure> {
    let input = match input {
        Some(path) => Some(read_input(path).await?),
        None => None,
    };
    let key = uuid::Uuid::new_v4().to_string();
    let mut attempt = 1;
    loop {
        let request = submit_request_with(
            &batch.remote,
            &batch.kind,
            &batch.params,
            input.as_ref(),
            batch.input_ref.as_deref(),
            batch.cache,
            &batch.flow,
        )
        .header("idempotency-key", &key);
        match batch.remote.json::<Job>(request).await {
            Err(e) if e.is_transient() && attempt < SUBMIT_ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// An input file's bytes and the file name it is uploaded under.
pub(super) async fn read_input(path: &Path) -> Result<(bytes::Bytes, String), Failure> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| Failure::refused(format!("cannot read {}: {e}", path.display())))?;
    let name = path
        .file_name()
        .map_or_else(|| "input".into(), |n| n.to_string_lossy().into_owned());
    Ok((bytes::Bytes::from(bytes), name))
}

/// `--input-blob ID` / `--input-job ID` as the JSON of the submit's `input` reference.
fn input_ref(args: &SubmitArgs) -> Option<String> {
    match (&args.input_blob, &args.input_job) {
        (Some(blob), _) => Some(json!({ "blob": blob }).to_string()),
        (None, Some(job)) => Some(json!({ "job": job }).to_string()),
        (None, None) => None,
    }
}

/// `--priority`, `--delay-secs`, `--run-at`, `--callback-url`: the submit's flow fields, sent only when given.
#[derive(Debug, Default)]
pub(super) struct Flow {
    priority: Option<String>,
    delay_secs: Option<u64>,
    run_at: Option<String>,
    callback_url: Option<String>,
}

impl Flow {
    /// The fields given, as (name, JSON value): text parts of a multipart form, or members of a JSON body.
    fn fields(&self) -> Vec<(&'static str, Value)> {
        let mut fields = Vec::new();
        if let Some(priority) = &self.priority {
            fields.push(("priority", Value::from(priority.as_str())));
        }
        if let Some(secs) = self.delay_secs {
            fields.push(("delay_secs", Value::from(secs)));
        }
        if let Some(at) = &self.run_at {
            fields.push(("run_at", Value::from(at.as_str())));
        }
        if let Some(url) = &self.callback_url {
            fields.push(("callback_url", Value::from(url.as_str())));
        }
        fields
    }
}

/// `POST /v1/jobs/{kind}`: params (JSON text) as a JSON body (with `input_ref`, JSON text, as its
/// `input`), or with an input file as multipart.
pub(super) fn submit_request(
    remote: &Remote,
    kind: &str,
    params: &str,
    input: Option<&(bytes::Bytes, String)>,
    input_ref: Option<&str>,
    cache: bool,
) -> reqwest::RequestBuilder {
    submit_request_with(remote, kind, params, input, input_ref, cache, &Flow::default())
}

/// [`submit_request`] with the flow fields.
fn submit_request_with(
    remote: &Remote,
    kind: &str,
    params: &str,
    input: Option<&(bytes::Bytes, String)>,
    input_ref: Option<&str>,
    cache: bool,
    flow: &Flow,
) -> reqwest::RequestBuilder {
    let request = remote
        .request(Method::POST, &format!("/v1/jobs/{}", path_segment(kind)))
        .timeout(UPLOAD_TIMEOUT);
    match input {
        Some((bytes, name)) => {
            let part = Part::stream_with_length(bytes.clone(), bytes.len() as u64).file_name(name.clone());
            let mut form = Form::new().text("params", params.to_owned()).part("input", part);
            for (name, value) in flow.fields() {
                form = form.text(name, value.as_str().map_or_else(|| value.to_string(), str::to_owned));
            }
            request.multipart(if cache { form } else { form.text("cache", "false") })
        }
        None => {
            let mut body = format!("{{\"params\":{params}");
            if let Some(reference) = input_ref {
                body.push_str(&format!(",\"input\":{reference}"));
            }
            if !cache {
                body.push_str(",\"cache\":false");
            }
            for (name, value) in flow.fields() {
                body.push_str(&format!(",\"{name}\":{value}"));
            }
            body.push('}');
            request.header("content-type", "application/json").body(body)
        }
    }
}

/// Prints the summary on stderr; the batch's exit code is the highest any job called for.
fn summarise(outcomes: &[Outcome], wait: bool, out: Option<&Path>) -> Result<(), Failure> {
    let count = |status: &str| outcomes.iter().filter(|o| o.status == status && o.code == 0).count();
    let bad: Vec<&Outcome> = outcomes.iter().filter(|o| o.code != 0).collect();
    let total = outcomes.len();
    let jobs = if total == 1 { "job" } else { "jobs" };
    match (wait, bad.len()) {
        (true, 0) => eprintln!("kiln: {total} {jobs}: {total} succeeded"),
        (true, n) => eprintln!("kiln: {total} {jobs}: {} succeeded, {n} did not", count("succeeded")),
        (false, 0) => eprintln!("kiln: {total} {jobs} submitted; `kiln status ID` shows how one is doing"),
        (false, n) => eprintln!("kiln: {total} {jobs}: {} submitted, {n} not", total - n),
    }
    for outcome in &bad {
        eprintln!("  {:<9}  {}: {}", outcome.status, outcome.label(), outcome.error);
    }
    if let Some(out) = out
        && bad.len() < total
    {
        eprintln!("kiln: results saved in {}", out.display());
    }
    match bad.iter().map(|o| o.code).max() {
        None => Ok(()),
        Some(code) => Err(Failure::new(
            code,
            format!("{} of {total} {jobs} did not succeed", bad.len()),
        )),
    }
}

/// `--params`: inline JSON or `@FILE`; must be an object. Absent: `{}`.
pub(super) fn read_params(raw: Option<&str>) -> Result<Map<String, Value>, Failure> {
    let (text, origin) = match raw {
        None => return Ok(Map::new()),
        Some(raw) => match raw.strip_prefix('@') {
            Some(path) => (
                std::fs::read_to_string(path)
                    .map_err(|e| Failure::refused(format!("cannot read --params file {path}: {e}")))?,
                format!("--params file {path}"),
            ),
            None => (raw.to_owned(), "--params".to_owned()),
        },
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Failure::refused(format!(
            "{origin} must be a JSON object like {}, not {}",
            json!({"resize": {"width": 200}}),
            other
        ))),
        Err(e) => Err(Failure::refused(format!("{origin} is not valid JSON: {e}"))),
    }
}

/// The jobs of `--input`: a file is one job, a folder one job per file in it (sorted by name; hidden
/// files and subfolders skipped); no `--input` is one job without input. Result names are the input
/// file stems, made unique.
fn plan(inputs: &[PathBuf]) -> Result<Vec<Planned>, Failure> {
    if inputs.is_empty() {
        return Ok(vec![Planned {
            input: None,
            stem: None,
        }]);
    }
    let mut files = Vec::new();
    for input in inputs {
        let meta =
            std::fs::metadata(input).map_err(|e| Failure::refused(format!("--input {}: {e}", input.display())))?;
        if !meta.is_dir() {
            files.push(input.clone());
            continue;
        }
        let entries = std::fs::read_dir(input)
            .map_err(|e| Failure::refused(format!("cannot list --input folder {}: {e}", input.display())))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| Failure::refused(format!("cannot list --input folder {}: {e}", input.display())))?;
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            let path = entry.path();
            if !hidden && path.is_file() {
                found.push(path);
            }
        }
        if found.is_empty() {
            return Err(Failure::refused(format!(
                "--input folder {} holds no files",
                input.display()
            )));
        }
        found.sort();
        files.extend(found);
    }
    let mut taken = HashSet::new();
    Ok(files
        .into_iter()
        .map(|file| {
            let stem = unique_stem(&file, &mut taken);
            Planned {
                input: Some(file),
                stem: Some(stem),
            }
        })
        .collect())
}

/// `photo.jpg` → `photo`; if taken (`photo.png` beside it), `photo.jpg`; then `photo-2`, `photo-3`...
fn unique_stem(file: &Path, taken: &mut HashSet<String>) -> String {
    let stem = file
        .file_stem()
        .map_or_else(|| "input".into(), |s| s.to_string_lossy().into_owned());
    let name = file
        .file_name()
        .map_or_else(|| stem.clone(), |s| s.to_string_lossy().into_owned());
    let mut candidates = vec![stem.clone(), name];
    candidates.extend((2..).take(10_000).map(|n| format!("{stem}-{n}")));
    let chosen = candidates
        .into_iter()
        .find(|c| !taken.contains(c))
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    taken.insert(chosen.clone());
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_inline_json_or_a_file() {
        assert!(read_params(None).unwrap().is_empty());
        assert_eq!(read_params(Some(r#"{"a": 1}"#)).unwrap()["a"], 1);
        assert_eq!(read_params(Some("[1]")).unwrap_err().code, EXIT_REFUSED);
        assert_eq!(read_params(Some("{")).unwrap_err().code, EXIT_REFUSED);
        assert_eq!(read_params(Some("@/no/such/file")).unwrap_err().code, EXIT_REFUSED);
    }

    #[test]
    fn result_names_are_unique() {
        let mut taken = HashSet::new();
        assert_eq!(unique_stem(Path::new("a/photo.jpg"), &mut taken), "photo");
        assert_eq!(unique_stem(Path::new("b/photo.png"), &mut taken), "photo.png");
        assert_eq!(unique_stem(Path::new("c/photo.png"), &mut taken), "photo-2");
    }

    #[test]
    fn folders_expand_to_their_visible_files_sorted() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.png", "a.png", ".hidden.png"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let planned = plan(&[dir.path().to_owned()]).unwrap();
        let stems: Vec<_> = planned.iter().map(|p| p.stem.clone().unwrap()).collect();
        assert_eq!(stems, ["a", "b"]);
        assert!(
            plan(&[dir.path().join("sub")]).is_err(),
            "an empty folder is a usage error"
        );
    }
}
