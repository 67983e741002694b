//! `kiln submit|status|get|jobs|cancel|kinds|bench`: a command-line client of a (possibly remote) Kiln's HTTP
//! API. It talks HTTP only, never Redis, so it works against any Kiln it can reach.
//!
//! - [`Remote`] (here): the HTTP client: base URL, API key, problem+json errors turned into [`Failure`]s.
//! - `submit`: a batch of files as one job each, bounded concurrency, progress bars, results to a folder.
//! - `commands`: the one-request commands.
//! - `bench`: a load generator, concurrent clients each running whole job lifecycles.
//! - `kind`: `kiln kind new|build|push|dev|versions|use|rm`, writing and shipping your own kinds.
//!
//! Exit codes are part of the interface (scripts rely on them), see [`EXIT_CODES`]: every error this
//! module returns is a [`Failure`] carrying its code, and `main` exits with it ([`exit_code`]).

pub mod bench;
mod commands;
pub mod kind;
mod pipeline;
mod schedule;
mod submit;

use crate::config::{AdminCommand, BlobCommand, ClientCommand, RemoteArgs};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use std::time::Duration;

/// The exit codes, as `--help` and the README state them.
pub const EXIT_CODES: &str =
    "Exit codes of the client commands (submit, status, get, jobs, cancel, kinds, bench, kind):
  0  success (submit: every job succeeded, or was queued without --wait)
  1  some job failed or was cancelled (submit --wait, get --wait, bench)
  2  usage error or request refused (4xx: bad params, unknown kind or job, job not finished or already
     finished, payload too large, bad API key; `kind`: a failed build, a component that does not fit
     Kiln's world); the server's reason is printed
  3  cannot reach the server, or it failed (5xx, e.g. 503 when its Redis is down)
When several apply to a batch, the highest wins.";

/// A job failed or was cancelled.
pub const EXIT_JOB_FAILED: u8 = 1;
/// Usage error or a 4xx answer.
pub const EXIT_REFUSED: u8 = 2;
/// No answer, or a 5xx one.
pub const EXIT_UNREACHABLE: u8 = 3;

/// An error of a client command, with the exit code it stands for.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(EXIT_REFUSED, message)
    }

    /// Worth another try: no answer, or a server-side failure (the submit carries an Idempotency-Key, so a
    /// retry never queues a second job).
    fn is_transient(&self) -> bool {
        self.code == EXIT_UNREACHABLE
    }
}

/// The process exit code for an error out of [`crate::server::run`]: a client [`Failure`]'s own code,
/// else 1.
pub fn exit_code(error: &anyhow::Error) -> std::process::ExitCode {
    match error.downcast_ref::<Failure>() {
        Some(failure) => std::process::ExitCode::from(failure.code),
        None => std::process::ExitCode::FAILURE,
    }
}

/// Runs one client command.
pub async fn run(command: ClientCommand) -> anyhow::Result<()> {
    let result = match command {
        ClientCommand::Submit(args) => submit::run(args).await,
        ClientCommand::Status { remote, id } => commands::status(&Remote::new(&remote)?, &id).await,
        ClientCommand::Get(args) => commands::get(args).await,
        ClientCommand::Jobs(args) => commands::jobs(args).await,
        ClientCommand::Cancel { remote, id } => commands::cancel(&Remote::new(&remote)?, &id).await,
        ClientCommand::Deliveries { remote, id } => commands::deliveries(&Remote::new(&remote)?, &id).await,
        ClientCommand::WebhookSecret { remote, rotate } => {
            commands::webhook_secret(&Remote::new(&remote)?, rotate).await
        }
        ClientCommand::Kinds { remote } => commands::kinds(&Remote::new(&remote)?).await,
        ClientCommand::Bench(args) => bench::run(args).await,
        ClientCommand::Pipeline(args) => pipeline::run(args).await,
        ClientCommand::Blob(BlobCommand::Put {
            file,
            media_type,
            remote,
        }) => commands::blob_put(&Remote::new(&remote)?, &file, media_type.as_deref()).await,
        ClientCommand::Blob(BlobCommand::Rm { id, remote }) => commands::blob_rm(&Remote::new(&remote)?, &id).await,
        ClientCommand::Kind(command) => kind::run(command).await,
        ClientCommand::Admin(AdminCommand::Pause { what, name, remote }) => {
            commands::set_paused(&Remote::new(&remote)?, what, &name, true).await
        }
        ClientCommand::Admin(AdminCommand::Resume { what, name, remote }) => {
            commands::set_paused(&Remote::new(&remote)?, what, &name, false).await
        }
        ClientCommand::Retry { id, remote } => commands::retry(&Remote::new(&remote)?, &id).await,
        ClientCommand::Admin(AdminCommand::Cancel { jobs, remote }) => {
            commands::act_on_selection(&Remote::new(&remote)?, "cancel", &jobs).await
        }
        ClientCommand::Admin(AdminCommand::Retry { jobs, remote }) => {
            commands::act_on_selection(&Remote::new(&remote)?, "retry", &jobs).await
        }
        ClientCommand::Admin(AdminCommand::RetryFailed { kind, tenant, remote }) => {
            commands::retry_failed(&Remote::new(&remote)?, &kind, tenant.as_deref()).await
        }
        ClientCommand::Schedule(command) => schedule::run(command).await,
    };
    result.map_err(anyhow::Error::new)
}

/// The job document, as far as the client reads it (the server may add fields).
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    pub id: String,
    /// In the admin's listing of every tenant's jobs.
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub kind: String,
    pub status: String,
    #[serde(default)]
    pub progress: f64,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub error: Option<JobError>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JobError {
    pub code: String,
    pub message: String,
}

impl Job {
    pub fn is_final(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "failed" | "cancelled")
    }

    /// `code: message`, or the status when the job has no error.
    pub fn reason(&self) -> String {
        match &self.error {
            Some(e) => format!("{}: {}", e.code, e.message),
            None => self.status.clone(),
        }
    }
}

/// How long one request may take, unless it says otherwise (uploads and long polls do).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest `?wait=` the server accepts.
pub const MAX_WAIT_SECS: u64 = 60;

/// A Kiln API at a base URL, with an optional API key.
#[derive(Debug, Clone)]
pub struct Remote {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Remote {
    pub fn new(args: &RemoteArgs) -> Result<Self, Failure> {
        let base = args.url.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base)
            .map_err(|e| Failure::refused(format!("--url/KILN_URL `{}` is not a URL: {e}", args.url)))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Failure::refused(format!(
                "--url/KILN_URL `{}` must start with http:// or https://",
                args.url
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("kiln-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::new(EXIT_UNREACHABLE, format!("cannot set up the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            key: args.key.clone().filter(|k| !k.is_empty()),
        })
    }

    /// A request to `path` (starting with `/`), with the API key and the default timeout.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self
            .http
            .request(method, format!("{}{path}", self.base))
            .timeout(REQUEST_TIMEOUT);
        match &self.key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    /// Sends the request; any answer but 2xx becomes a [`Failure`] with the problem's detail.
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, Failure> {
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(problem(response).await)
    }

    /// Sends the request and decodes its JSON answer.
    pub async fn json<T: serde::de::DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, Failure> {
        let response = self.send(request).await?;
        response.json().await.map_err(|e| {
            Failure::new(
                EXIT_UNREACHABLE,
                format!("{} answered something that is not the JSON expected: {e}", self.base),
            )
        })
    }

    /// The job document; with `wait`, answered when the job changes or ends, or after that many seconds.
    pub async fn job(&self, id: &str, wait: Option<u64>) -> Result<Job, Failure> {
        let path = format!("/v1/jobs/{}", path_segment(id));
        let request = match wait {
            Some(secs) => {
                let secs = secs.min(MAX_WAIT_SECS);
                self.request(Method::GET, &format!("{path}?wait={secs}"))
                    .timeout(REQUEST_TIMEOUT + Duration::from_secs(secs))
            }
            None => self.request(Method::GET, &path),
        };
        self.json(request).await
    }

    /// Long-polls the job until it ends; a few transient errors in a row are retried.
    pub async fn wait_final(&self, id: &str, mut on_change: impl FnMut(&Job)) -> Result<Job, Failure> {
        let mut failures = 0;
        loop {
            match self.job(id, Some(30)).await {
                Ok(job) if job.is_final() => return Ok(job),
                Ok(job) => {
                    failures = 0;
                    on_change(&job);
                }
                Err(e) if e.is_transient() && failures < 5 => {
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(250 << failures)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn unreachable(&self, error: &reqwest::Error) -> Failure {
        let what = if error.is_timeout() {
            "did not answer in time"
        } else if error.is_connect() {
            "cannot be reached"
        } else {
            "failed to answer"
        };
        Failure::new(
            EXIT_UNREACHABLE,
            format!(
                "Kiln at {} {what} ({}); check --url/KILN_URL",
                self.base,
                error_chain(error)
            ),
        )
    }
}

/// A non-2xx answer as a [`Failure`]: 4xx → 2, anything else → 3; the message is the problem's detail.
async fn problem(response: Response) -> Failure {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
        .unwrap_or_else(|| {
            let body = body.trim();
            if body.is_empty() {
                "no details given".to_owned()
            } else {
                body.chars().take(300).collect()
            }
        });
    let code = if status.is_client_error() {
        EXIT_REFUSED
    } else {
        EXIT_UNREACHABLE
    };
    let reason = status.canonical_reason().unwrap_or("error");
    let mut message = format!("{} {reason}: {detail}", status.as_u16());
    if status == StatusCode::UNAUTHORIZED {
        message.push_str(" (pass the API key with --key or KILN_API_KEY)");
    }
    Failure::new(code, message)
}

/// The error and its sources, `: `-separated (reqwest's own message alone says little).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// Escapes what would change the meaning of a URL path segment (ids are UUIDs; kind names are
/// `[a-z0-9-]`; anything else is the server's to refuse with a 404).
pub fn path_segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// One line of the tab-separated output: tabs and newlines in a field would break it.
pub fn field(text: &str) -> String {
    text.replace(['\t', '\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(path_segment("0190-ab_c.d~"), "0190-ab_c.d~");
        assert_eq!(path_segment("a/b?c"), "a%2Fb%3Fc");
    }

    #[test]
    fn fields_stay_on_one_line() {
        assert_eq!(field("a\tb\nc"), "a b c");
    }
}
