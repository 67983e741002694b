//! The one-request client commands: `status`, `get`, `jobs`, `cancel`, `kinds`.

use super::{EXIT_JOB_FAILED, EXIT_UNREACHABLE, Failure, Job, Remote, field, path_segment};
use crate::config::{GetArgs, JobsArgs};
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `kiln status ID`: the job document, pretty JSON, on stdout.
pub async fn status(remote: &Remote, id: &str) -> Result<(), Failure> {
    let doc: Value = remote
        .json(remote.request(Method::GET, &format!("/v1/jobs/{}", path_segment(id))))
        .await?;
    print_stdout(&format!("{}\n", serde_json::to_string_pretty(&doc).unwrap_or_default()))
}

/// `kiln get ID [-o FILE] [--wait]`: downloads the result.
pub async fn get(args: GetArgs) -> Result<(), Failure> {
    let remote = Remote::new(&args.remote)?;
    if args.wait {
        let job = remote.wait_final(&args.id, |_| {}).await?;
        if job.status != "succeeded" {
            return Err(Failure::new(
                EXIT_JOB_FAILED,
                format!("job {} {}: {}", job.id, job.status, job.reason()),
            ));
        }
    }
    let bytes = download(&remote, &args.id).await?;
    let output = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("{}.{}", args.id, extension(&bytes))));
    if output == Path::new("-") {
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(&bytes)
            .and_then(|()| stdout.flush())
            .map_err(|e| Failure::new(EXIT_JOB_FAILED, format!("cannot write to stdout: {e}")));
    }
    save(&output, &bytes)?;
    eprintln!("kiln: saved {} ({} bytes)", output.display(), bytes.len());
    Ok(())
}

/// The file extension for a result, from its first bytes: `jpg`, `webp`, `gif`, else `png` (the kinds'
/// `format` param chooses among them).
pub fn extension(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        "jpg"
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        "webp"
    } else if bytes.starts_with(b"GIF8") {
        "gif"
    } else {
        "png"
    }
}

/// The result bytes of a finished job (409 while it runs, or when it failed: exit 2 with the reason).
pub async fn download(remote: &Remote, id: &str) -> Result<bytes::Bytes, Failure> {
    let request = remote
        .request(Method::GET, &format!("/v1/jobs/{}/result", path_segment(id)))
        .timeout(std::time::Duration::from_secs(300));
    let response = remote.send(request).await?;
    response.bytes().await.map_err(|e| {
        Failure::new(
            EXIT_UNREACHABLE,
            format!("the download of job {id}'s result broke off: {e}"),
        )
    })
}

/// Writes `bytes` to `path` through a temporary file beside it, so a broken run leaves no half file.
pub fn save(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partial = path.with_file_name(format!(".{name}.partial"));
    std::fs::write(&partial, bytes)
        .and_then(|()| std::fs::rename(&partial, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            Failure::new(EXIT_JOB_FAILED, format!("cannot write {}: {e}", path.display()))
        })
}

#[derive(Deserialize)]
struct JobPage {
    jobs: Vec<Job>,
    next_cursor: Option<String>,
}

/// `kiln jobs`: a table of jobs, newest first, following the server's pages up to `--limit`.
pub async fn jobs(args: JobsArgs) -> Result<(), Failure> {
    let remote = Remote::new(&args.remote)?;
    let wanted = args.limit as usize;
    let mut jobs: Vec<Job> = Vec::new();
    let mut cursor: Option<String> = None;
    while jobs.len() < wanted {
        let mut query: Vec<(&str, String)> = vec![("limit", (wanted - jobs.len()).min(100).to_string())];
        let filters = [
            ("status", &args.status),
            ("kind", &args.kind),
            ("error", &args.error),
            ("since", &args.since),
            ("until", &args.until),
            ("tenant", &args.tenant),
            ("cursor", &cursor),
        ];
        query.extend(
            filters
                .into_iter()
                .filter_map(|(name, value)| Some((name, value.clone()?))),
        );
        let path = if args.all_tenants { "/v1/admin/jobs" } else { "/v1/jobs" };
        let page: JobPage = remote.json(remote.request(Method::GET, path).query(&query)).await?;
        jobs.extend(page.jobs);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let tenant_column = |tenant: &str| match args.all_tenants {
        true => format!("{tenant:<16}  "),
        false => String::new(),
    };
    let mut out = format!(
        "{}{:<36}  {:<12}  {:<9}  {:>4}  {:<24}  ERROR\n",
        tenant_column("TENANT"),
        "ID",
        "KIND",
        "STATUS",
        "DONE",
        "CREATED"
    );
    for job in &jobs {
        let error = job
            .error
            .as_ref()
            .map(|e| field(&format!("{}: {}", e.code, e.message)))
            .unwrap_or_default();
        out.push_str(&format!(
            "{}{:<36}  {:<12}  {:<9}  {:>3}%  {:<24}  {error}\n",
            tenant_column(job.tenant.as_deref().unwrap_or_default()),
            job.id,
            job.kind,
            job.status,
            (job.progress * 100.0).round() as u32,
            job.created_at,
        ));
    }
    print_stdout(&out)
}

/// `kiln cancel ID`: prints `<id>\t<status>` (`cancelled`); a finished job is a 409 (exit 2).
pub async fn cancel(remote: &Remote, id: &str) -> Result<(), Failure> {
    let job: Job = remote
        .json(remote.request(Method::DELETE, &format!("/v1/jobs/{}", path_segment(id))))
        .await?;
    print_stdout(&format!("{}\t{}\n", job.id, job.status))
}

/// `kiln retry ID`: prints `<new id>\t<status>` (`queued`); a job that is not failed or cancelled, or
/// was retried already, is a 409 (exit 2).
pub async fn retry(remote: &Remote, id: &str) -> Result<(), Failure> {
    let job: Job = remote
        .json(remote.request(Method::POST, &format!("/v1/jobs/{}/retry", path_segment(id))))
        .await?;
    print_stdout(&format!("{}\t{}\n", job.id, job.status))
}

/// `kiln admin cancel|retry TENANT/ID...`: one line per job, `TENANT/ID\tok[\tNEW ID]` or
/// `TENANT/ID\t<status>\t<why not>`; exit 2 when any was refused.
pub async fn act_on_selection(remote: &Remote, action: &str, jobs: &[String]) -> Result<(), Failure> {
    let selection = jobs
        .iter()
        .map(|job| {
            job.split_once('/')
                .map(|(tenant, id)| serde_json::json!({"tenant": tenant, "id": id}))
                .ok_or_else(|| Failure::refused(format!("`{job}` is not TENANT/ID")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let done: Value = remote
        .json(
            remote
                .request(Method::POST, &format!("/v1/admin/jobs/{action}"))
                .json(&serde_json::json!({ "jobs": selection })),
        )
        .await?;
    let mut out = String::new();
    let mut refused = 0;
    for result in done["results"].as_array().into_iter().flatten() {
        let job = format!(
            "{}/{}",
            result["tenant"].as_str().unwrap_or(""),
            result["id"].as_str().unwrap_or("")
        );
        match (result["ok"].as_bool(), result["job"].as_str()) {
            (Some(true), Some(new)) => out.push_str(&format!("{job}\tok\t{new}\n")),
            (Some(true), None) => out.push_str(&format!("{job}\tok\n")),
            _ => {
                refused += 1;
                let detail = result["detail"].as_str().unwrap_or_default();
                out.push_str(&format!("{job}\t{}\t{}\n", result["status"], field(detail)));
            }
        }
    }
    print_stdout(&out)?;
    match refused {
        0 => Ok(()),
        n => Err(Failure::refused(format!("{n} of {} jobs were refused", jobs.len()))),
    }
}

/// `kiln admin retry-failed KIND`: prints `retried N`, then a line for each refusal shown.
pub async fn retry_failed(remote: &Remote, kind: &str, tenant: Option<&str>) -> Result<(), Failure> {
    let mut request = remote.request(Method::POST, &format!("/v1/kinds/{}/retry-failed", path_segment(kind)));
    if let Some(tenant) = tenant {
        request = request.query(&[("tenant", tenant)]);
    }
    let done: Value = remote.json(request).await?;
    let mut out = format!("retried {}\n", done["retried"]);
    for refusal in done["refused"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{}/{}\t{}\t{}\n",
            refusal["tenant"].as_str().unwrap_or(""),
            refusal["id"].as_str().unwrap_or(""),
            refusal["status"],
            field(refusal["detail"].as_str().unwrap_or_default())
        ));
    }
    if done["more"] == true {
        out.push_str("more failed jobs remain: run it again\n");
    }
    print_stdout(&out)
}

/// `kiln deliveries ID`: the job's webhook and its attempts, as JSON.
pub async fn deliveries(remote: &Remote, id: &str) -> Result<(), Failure> {
    let doc: Value = remote
        .json(remote.request(Method::GET, &format!("/v1/jobs/{}/deliveries", path_segment(id))))
        .await?;
    print_stdout(&format!("{}\n", serde_json::to_string_pretty(&doc).unwrap_or_default()))
}

/// `kiln webhook-secret [--rotate]`: prints the tenant's webhook secret alone on a line.
pub async fn webhook_secret(remote: &Remote, rotate: bool) -> Result<(), Failure> {
    let method = if rotate { Method::POST } else { Method::GET };
    let doc: Value = remote.json(remote.request(method, "/v1/webhook-secret")).await?;
    print_stdout(&format!("{}\n", doc["secret"].as_str().unwrap_or_default()))
}

/// `kiln admin pause|resume kind|tenant NAME`: prints `<name>\tpaused` or `<name>\trunning`.
pub async fn set_paused(
    remote: &Remote,
    what: crate::config::Pausable,
    name: &str,
    pause: bool,
) -> Result<(), Failure> {
    let collection = match what {
        crate::config::Pausable::Kind => "kinds",
        crate::config::Pausable::Tenant => "tenants",
    };
    let action = if pause { "pause" } else { "resume" };
    let state: Value = remote
        .json(remote.request(
            Method::POST,
            &format!("/v1/{collection}/{}/{action}", path_segment(name)),
        ))
        .await?;
    let shown = if state["paused"] == true { "paused" } else { "running" };
    print_stdout(&format!("{name}\t{shown}\n"))
}

/// `kiln kinds`: one kind a line, its name and description.
pub async fn kinds(remote: &Remote) -> Result<(), Failure> {
    let doc: Value = remote.json(remote.request(Method::GET, "/v1/kinds")).await?;
    let kinds = doc["kinds"].as_array().cloned().unwrap_or_default();
    let width = kinds
        .iter()
        .filter_map(|k| k["name"].as_str())
        .map(str::len)
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for kind in &kinds {
        let name = kind["name"].as_str().unwrap_or("?");
        let description = kind["description"].as_str().unwrap_or("");
        let input = match kind["input"].as_str() {
            Some("required") => " [input required]",
            Some("optional") => " [input optional]",
            _ => "",
        };
        out.push_str(&format!("{name:<width$}  {}{input}\n", field(description)));
    }
    print_stdout(&out)
}

/// Writes to stdout; a closed pipe (`kiln jobs | head`) is not an error worth a panic.
pub(super) fn print_stdout(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::new(EXIT_JOB_FAILED, format!("cannot write to stdout: {e}"))),
    }
}

/// `kiln blob put FILE`: uploads it and prints its id alone on stdout, for `--input-blob`.
pub async fn blob_put(remote: &Remote, file: &std::path::Path, media_type: Option<&str>) -> Result<(), Failure> {
    let bytes = tokio::fs::read(file)
        .await
        .map_err(|e| Failure::refused(format!("cannot read {}: {e}", file.display())))?;
    let media_type = media_type.unwrap_or_else(|| media_type_of(file));
    let blob: Value = remote
        .json(
            remote
                .request(Method::POST, "/v1/blobs")
                .timeout(std::time::Duration::from_secs(300))
                .header("content-type", media_type)
                .body(bytes),
        )
        .await?;
    print_stdout(&format!("{}\n", blob["id"].as_str().unwrap_or_default()))
}

/// `kiln blob rm ID`.
pub async fn blob_rm(remote: &Remote, id: &str) -> Result<(), Failure> {
    remote
        .send(remote.request(Method::DELETE, &format!("/v1/blobs/{}", path_segment(id))))
        .await?;
    Ok(())
}

/// A media type from a file's extension, for the files kinds take; anything else is plain bytes.
fn media_type_of(file: &std::path::Path) -> &'static str {
    let extension = file.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("csv") => "text/csv",
        Some("json") => "application/json",
        Some("txt") => "text/plain",
        _ => "application/octet-stream",
    }
}
