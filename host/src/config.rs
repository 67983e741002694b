//! Command line and environment configuration. Every setting has a flag and a `KILN_*` variable; all of
//! it is parsed and checked before anything starts.

use crate::api::ApiConfig;
use crate::runtime::SandboxLimits;
use crate::store::StoreConfig;
use crate::worker::WorkerConfig;
use clap::{Args, Parser, Subcommand};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The default Redis address; with nothing answering there (and no URL set), `kiln serve` starts its own.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "Run image-producing jobs as sandboxed WebAssembly components",
    after_help = crate::client::EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API and a pool of workers in one process (the default).
    Serve(ServeArgs),
    /// Run only the HTTP API.
    Api(ServeArgs),
    /// Run only workers.
    Worker(ServeArgs),
    /// Manage tenants and their API keys (in the Redis of KILN_REDIS_URL).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// The client commands (`submit`, `status`, `get`, `jobs`, `cancel`, `kinds`): talk to a Kiln over HTTP.
    #[command(flatten)]
    Client(ClientCommand),
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Add a tenant; prints its new API key alone on the last line of stdout.
    Add {
        /// `[a-z0-9_-]{1,64}`
        name: String,
        #[command(flatten)]
        quotas: QuotaArgs,
    },
    /// Set a tenant's own quotas (unset ones use the deployment's defaults).
    Set {
        name: String,
        #[command(flatten)]
        quotas: QuotaArgs,
    },
    /// List tenants.
    List,
    /// Remove a tenant, its keys and all its jobs (queued ones never run); a new tenant of the same name
    /// starts empty.
    Remove { name: String },
    /// Give a tenant a new API key (printed alone on the last line of stdout); the old key keeps working
    /// for the grace period, then stops.
    Rotate {
        name: String,
        /// Seconds the old key stays valid (0: it stops at once).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=30 * 86_400))]
        grace_secs: u64,
    },
}

/// Where the client commands find Kiln.
#[derive(Debug, Args, Clone)]
pub struct RemoteArgs {
    /// Base URL of the Kiln API.
    #[arg(long, env = "KILN_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API key, sent as `Authorization: Bearer KEY` (a Kiln in dev mode needs none).
    #[arg(long, env = "KILN_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
}

/// The client commands; they reach Kiln over HTTP only (`crate::client`).
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Submit jobs: one per input file (a folder: each file in it), or one without input.
    #[command(after_help = crate::client::EXIT_CODES)]
    Submit(SubmitArgs),
    /// Print a job's document (JSON).
    #[command(after_help = crate::client::EXIT_CODES)]
    Status {
        /// The job's id.
        id: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Download a job's result.
    #[command(after_help = crate::client::EXIT_CODES)]
    Get(GetArgs),
    /// List jobs, newest first.
    #[command(after_help = crate::client::EXIT_CODES)]
    Jobs(JobsArgs),
    /// Cancel a scheduled, queued or running job.
    #[command(after_help = crate::client::EXIT_CODES)]
    Cancel {
        /// The job's id.
        id: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Retry a failed or cancelled job: a new job with its kind version, params and input; prints the
    /// new job's id and status. A job is retried once (retry the new one if it fails too).
    #[command(after_help = crate::client::EXIT_CODES)]
    Retry {
        /// The failed or cancelled job's id.
        id: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Print a job's webhook deliveries (JSON): its callback URL, state and every attempt.
    #[command(after_help = crate::client::EXIT_CODES)]
    Deliveries {
        /// The job's id.
        id: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Print your webhook signing secret (`whsec_...`), or with --rotate replace it and print the new one.
    #[command(after_help = crate::client::EXIT_CODES)]
    WebhookSecret {
        /// Make a new secret; deliveries from now on are signed with it.
        #[arg(long)]
        rotate: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// List the job kinds, with their descriptions.
    #[command(after_help = crate::client::EXIT_CODES)]
    Kinds {
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Load-test a Kiln: concurrent clients each submit a job, wait for it and download its result.
    #[command(after_help = crate::client::EXIT_CODES)]
    Bench(BenchArgs),
    /// Run a pipeline: several kinds in order on one input (`--params`-style SPEC: `{"steps": [...],
    /// "outputs": {...}}` inline or `@FILE`).
    #[command(after_help = crate::client::EXIT_CODES)]
    Pipeline(PipelineArgs),
    /// Upload bytes once (`kiln blob put FILE` prints the id) and use them as the input of many jobs
    /// (`kiln submit KIND --input-blob ID`).
    #[command(subcommand)]
    Blob(BlobCommand),
    /// Write, build and upload your own job kinds, in Rust or Python (`kiln kind new NAME --lang python`).
    #[command(subcommand)]
    Kind(KindCommand),
    /// Operator actions with the admin key (`--key`/`KILN_API_KEY`).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Recurring schedules: a job of a kind at each due time of a cron expression (`POST /v1/schedules`).
    #[command(subcommand)]
    Schedule(ScheduleCommand),
}

#[derive(Debug, Args, Clone)]
pub struct PipelineArgs {
    /// The pipeline: `{"steps": [{"kind": "crop", "params": {...}}, ...], "outputs": {...}}`, inline
    /// JSON or `@FILE`.
    #[arg(value_name = "JSON|@FILE")]
    pub spec: String,
    /// The first step's input file.
    #[arg(long, short, value_name = "FILE", conflicts_with_all = ["input_blob", "input_job"])]
    pub input: Option<PathBuf>,
    /// The first step's input is this blob.
    #[arg(long, value_name = "ID", conflicts_with = "input_job")]
    pub input_blob: Option<String>,
    /// The first step's input is this succeeded job's result.
    #[arg(long, value_name = "JOB ID")]
    pub input_job: Option<String>,
    /// Wait until the pipeline has ended.
    #[arg(long)]
    pub wait: bool,
    /// Save the result as `<id>.png` and each named output as `<id>-<name>.png` here; implies --wait.
    #[arg(long, short, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Add a schedule; prints its id, tab, its next due time (RFC 3339).
    #[command(after_help = crate::client::EXIT_CODES)]
    Add {
        /// When: 5-field cron (`*/5 * * * *`, UTC), or 6 fields with seconds first; at least the server's
        /// KILN_MIN_SCHEDULE_SECS apart.
        cron: String,
        /// The kind each due time runs.
        kind: String,
        /// The params of every job, as JSON.
        #[arg(long, default_value = "{}")]
        params: String,
        /// Every job's input is this blob (`sha256:...`; the schedule keeps its own copy).
        #[arg(long, value_name = "ID")]
        input_blob: Option<String>,
        /// high, normal or low.
        #[arg(long)]
        priority: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// List schedules: id, cron, kind, next due time, jobs made, due times skipped, the last skip's reason.
    #[command(after_help = crate::client::EXIT_CODES)]
    List {
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Delete a schedule: it makes no more jobs (those it made stay).
    #[command(after_help = crate::client::EXIT_CODES)]
    Rm {
        id: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Pause a kind or a tenant: its queued jobs are not started (running ones finish).
    #[command(after_help = crate::client::EXIT_CODES)]
    Pause {
        what: Pausable,
        /// The kind's or tenant's name.
        name: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Resume a paused kind or tenant: its queued jobs run again.
    #[command(after_help = crate::client::EXIT_CODES)]
    Resume {
        what: Pausable,
        name: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Cancel jobs of any tenants at once (at most 100); prints what became of each.
    #[command(after_help = crate::client::EXIT_CODES)]
    Cancel {
        /// The jobs, as TENANT/ID.
        #[arg(required = true, value_name = "TENANT/ID")]
        jobs: Vec<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Retry failed or cancelled jobs of any tenants at once (at most 100); prints each new job.
    #[command(after_help = crate::client::EXIT_CODES)]
    Retry {
        /// The jobs, as TENANT/ID.
        #[arg(required = true, value_name = "TENANT/ID")]
        jobs: Vec<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Retry every failed job of a kind (its dead-letter set) not retried yet, up to 1000 a call.
    #[command(after_help = crate::client::EXIT_CODES)]
    RetryFailed {
        kind: String,
        /// Only this tenant's failed jobs.
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

/// What `kiln admin pause|resume` acts on.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Pausable {
    Kind,
    Tenant,
}

#[derive(Debug, Subcommand)]
pub enum BlobCommand {
    /// Upload a file as a blob; prints its id (`sha256:...`) alone on stdout.
    #[command(after_help = crate::client::EXIT_CODES)]
    Put {
        file: PathBuf,
        /// The blob's media type (default: from the file's extension, else application/octet-stream).
        #[arg(long)]
        media_type: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Delete a blob (jobs that already took it as input keep their copies).
    #[command(after_help = crate::client::EXIT_CODES)]
    Rm {
        id: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

/// `kiln kind`: a kind's life from a template to its versions on a Kiln (`crate::client::kind`).
#[derive(Debug, Subcommand)]
pub enum KindCommand {
    /// Write a new kind, ready to build, from a template inside this binary: sources, `kind.json`, a unit
    /// test and `sample.json` (params for `kiln kind dev`).
    New {
        /// The kind's name: 1-64 of a-z, 0-9 and `-`, starting with a letter.
        name: String,
        /// The language to write it in.
        #[arg(long, value_enum)]
        lang: KindLang,
        /// Where to write it (missing or empty); default `./NAME`.
        dir: Option<PathBuf>,
    },
    /// Build the kind's component (cargo or componentize-py) and check it against Kiln's world, as an
    /// upload would be; prints its path and size.
    Build {
        /// The kind's folder (holding `kind.json`).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Build, then upload the kind (manifest and component); prints the new version alone on stdout.
    #[command(after_help = crate::client::EXIT_CODES)]
    Push {
        /// The kind's folder (holding `kind.json`).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Upload the component built last instead of building first.
        #[arg(long)]
        no_build: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Rebuild, re-upload and run a sample job on every change to the kind's sources; Ctrl-C stops.
    #[command(after_help = crate::client::EXIT_CODES)]
    Dev(KindDevArgs),
    /// List a kind's versions, newest first; `*` marks the current one.
    #[command(after_help = crate::client::EXIT_CODES)]
    Versions {
        name: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Make an uploaded version of a kind current again (no re-upload).
    #[command(after_help = crate::client::EXIT_CODES)]
    Use {
        name: String,
        /// The version, as `kiln kind versions` lists it.
        version: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Unregister a kind (jobs already queued still run on their version).
    #[command(after_help = crate::client::EXIT_CODES)]
    Rm {
        name: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

/// The languages `kiln kind new` writes kinds in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KindLang {
    Rust,
    Python,
}

#[derive(Debug, Args, Clone)]
pub struct KindDevArgs {
    /// The kind's folder (holding `kind.json`).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The sample job's params: inline JSON or `@FILE`; default the kind's `sample.json`, else `{}`.
    #[arg(long, value_name = "JSON|@FILE")]
    pub params: Option<String>,
    /// An input file for the sample job.
    #[arg(long, short, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Where to save the sample job's result; default `build/sample.<ext>` in the kind's folder.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// The job kind.
    pub kind: String,
    /// The jobs' params: inline JSON, or `@FILE`.
    #[arg(long, value_name = "JSON|@FILE")]
    pub params: Option<String>,
    /// An input file, sent with every job.
    #[arg(long, short, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Jobs to measure.
    #[arg(long, short = 'n', default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub jobs: u32,
    /// Concurrent clients, each with one job in flight.
    #[arg(long, short, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub clients: u32,
    /// Jobs run one at a time before measuring.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub warmup: u32,
    /// Fail a job whose result is not a PNG of this size, e.g. `300x300`.
    #[arg(long, value_name = "WxH", value_parser = crate::client::bench::parse_size)]
    pub expect: Option<(u32, u32)>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Let the result cache answer the jobs (by default every job runs: the bench measures runs).
    #[arg(long)]
    pub cache: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Args, Clone)]
pub struct SubmitArgs {
    /// The job kind (`kiln kinds` lists them).
    pub kind: String,
    /// The job's params: inline JSON, or `@FILE` to read them from a file.
    #[arg(long, value_name = "JSON|@FILE")]
    pub params: Option<String>,
    /// An input file, or a folder whose files (sorted; hidden files and subfolders skipped) each become
    /// a job; repeatable.
    #[arg(long, short, value_name = "FILE|DIR", conflicts_with_all = ["input_blob", "input_job"])]
    pub input: Vec<PathBuf>,
    /// The input is this blob (`kiln blob put` prints its id), uploaded once and kept in Kiln.
    #[arg(long, value_name = "ID", conflicts_with = "input_job")]
    pub input_blob: Option<String>,
    /// The input is the result of this succeeded job.
    #[arg(long, value_name = "JOB ID")]
    pub input_job: Option<String>,
    /// Run every job, even when the result cache has its answer.
    #[arg(long)]
    pub no_cache: bool,
    /// Within your jobs, high runs before normal (the default) before low.
    #[arg(long, value_parser = ["high", "normal", "low"])]
    pub priority: Option<String>,
    /// Queue the jobs this many seconds from now (at most 2592000, 30 days); `scheduled` until then.
    #[arg(long, value_name = "SECS", conflicts_with = "run_at")]
    pub delay_secs: Option<u64>,
    /// Queue the jobs at this RFC 3339 time, e.g. 2030-01-31T12:00:00Z (at most 30 days ahead).
    #[arg(long, value_name = "TIME")]
    pub run_at: Option<String>,
    /// POST each job's document to this URL when it ends, signed with your webhook secret (`kiln
    /// webhook-secret`); the host must be one the operator allows (KILN_WEBHOOK_ALLOW).
    #[arg(long, value_name = "URL")]
    pub callback_url: Option<String>,
    /// Save each result in this folder as `<input file stem>.png` (`<job id>.png` without input);
    /// implies --wait.
    #[arg(long, short, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Wait until every job has ended.
    #[arg(long)]
    pub wait: bool,
    /// Uploads in flight at once.
    #[arg(long, short = 'j', default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub concurrency: u32,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Args, Clone)]
pub struct GetArgs {
    /// The job's id.
    pub id: String,
    /// Where to save the result (`-`: stdout); default `<id>.png`.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Wait for the job to end first (else a job that has not finished is an error).
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Args, Clone)]
pub struct JobsArgs {
    /// Only jobs in this status: scheduled, queued, running, succeeded, failed or cancelled.
    #[arg(long)]
    pub status: Option<String>,
    /// Only jobs of this kind.
    #[arg(long)]
    pub kind: Option<String>,
    /// Only jobs with this error code (e.g. timeout, trap).
    #[arg(long)]
    pub error: Option<String>,
    /// Only jobs created at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only jobs created before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Every tenant's jobs, with a TENANT column (needs the admin key).
    #[arg(long)]
    pub all_tenants: bool,
    /// This tenant's jobs (needs the admin key).
    #[arg(long)]
    pub tenant: Option<String>,
    /// How many jobs to list at most.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// A tenant's own quotas, overriding the deployment's `--max-*-per-tenant` defaults.
#[derive(Debug, Args, Clone, Default)]
pub struct QuotaArgs {
    /// Jobs the tenant may have waiting at once (0: no limit).
    #[arg(long)]
    pub max_queued: Option<u64>,
    /// Jobs the tenant may run at once (0: no limit).
    #[arg(long)]
    pub max_running: Option<u32>,
    /// Jobs the tenant may submit per second (0: no limit).
    #[arg(long)]
    pub max_per_second: Option<u32>,
    /// Bytes the tenant may hold in Redis: queued inputs and params, kept results and logs (0: no limit).
    #[arg(long)]
    pub max_bytes: Option<u64>,
    /// Jobs of one kind the tenant may run at once, as KIND=N (e.g. `crop=2`); repeat for more kinds.
    #[arg(long, value_name = "KIND=N", value_parser = parse_kind_limit)]
    pub kind_running: Vec<(String, u32)>,
}

fn parse_kind_limit(arg: &str) -> Result<(String, u32), String> {
    let (kind, limit) = arg.split_once('=').ok_or("expected KIND=N, e.g. crop=2")?;
    let limit = limit
        .parse()
        .map_err(|e| format!("`{limit}` is not a number of jobs: {e}"))?;
    Ok((kind.to_owned(), limit))
}

impl From<QuotaArgs> for crate::store::TenantQuotas {
    fn from(args: QuotaArgs) -> Self {
        Self {
            max_queued: args.max_queued,
            max_running: args.max_running,
            max_per_second: args.max_per_second,
            max_bytes: args.max_bytes,
            kind_running: args.kind_running.into_iter().collect(),
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct CommonArgs {
    /// Redis to keep jobs in, e.g. `redis://127.0.0.1:6379` or `redis+unix:///run/redis.sock`.
    #[arg(long, env = "KILN_REDIS_URL", global = true)]
    pub redis_url: Option<String>,
    /// Where Kiln keeps local state: the embedded Redis's data and the compiled-component cache.
    /// Made absolute at start (wasmtime's cache and the embedded Redis's socket URL need that).
    #[arg(long, env = "KILN_DATA_DIR", default_value = ".kiln", global = true, value_parser = absolute_path)]
    pub data_dir: PathBuf,
    /// Log as JSON lines instead of human-readable text (`KILN_LOG_FORMAT=json`).
    #[arg(long, env = "KILN_LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address the HTTP API listens on (port 0 picks a free port; the address is printed).
    #[arg(long, env = "KILN_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where a worker process serves `/healthz` and `/readyz` for probes (off by default; the API
    /// serves them on its own address).
    #[arg(long, env = "KILN_OPS_LISTEN")]
    pub ops_listen: Option<SocketAddr>,
    /// Jobs run at once by this process (default: the number of cores).
    #[arg(long, env = "KILN_WORKERS")]
    pub workers: Option<usize>,
    /// Largest request body, in bytes.
    #[arg(long, env = "KILN_MAX_BODY_BYTES", default_value_t = 20 << 20)]
    pub max_body_bytes: usize,
    /// Largest component a kind upload (`PUT /v1/kinds/{name}`) may carry, in MiB.
    #[arg(long, env = "KILN_MAX_COMPONENT_MB", default_value_t = 64)]
    pub max_component_mb: usize,
    /// The longest a kind upload's compile may take, in seconds: one over it is refused (422). Uploads
    /// compile one at a time, beside the requests the API answers.
    #[arg(long, env = "KILN_MAX_COMPILE_SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub max_compile_secs: u64,
    /// Jobs a tenant may have waiting at once, unless set per tenant (`kiln tenant set`); 0: no limit.
    #[arg(long, env = "KILN_MAX_QUEUED_PER_TENANT", default_value_t = 10_000)]
    pub max_queued_per_tenant: u64,
    /// Jobs a tenant may submit per second, unless set per tenant; 0: no limit.
    #[arg(long, env = "KILN_MAX_SUBMITS_PER_SECOND", default_value_t = 0)]
    pub max_submits_per_second: u32,
    /// Bytes a tenant may hold in Redis (queued inputs and params, kept results and logs), unless set per
    /// tenant; 0: no limit.
    #[arg(long, env = "KILN_MAX_BYTES_PER_TENANT", default_value_t = 1 << 30)]
    pub max_bytes_per_tenant: u64,
    /// Jobs a tenant may run at once across all workers, unless set per tenant; 0: no limit.
    #[arg(long, env = "KILN_MAX_RUNNING_PER_TENANT", default_value_t = 0)]
    pub max_running_per_tenant: u32,
    /// Recurring schedules (`POST /v1/schedules`) a tenant may have; 0: no limit.
    #[arg(long, env = "KILN_MAX_SCHEDULES_PER_TENANT", default_value_t = 100)]
    pub max_schedules_per_tenant: u32,
    /// The shortest interval a schedule's cron may have between two due times, in seconds (a 6-field
    /// cron has seconds): schedules that fire more often are refused (422).
    #[arg(long, env = "KILN_MIN_SCHEDULE_SECS", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub min_schedule_secs: u32,
    /// Attempts a job gets when it fails in a way that may pass (timeout, lost worker, host error).
    #[arg(long, env = "KILN_MAX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    /// How long finished jobs and their results are kept, in seconds.
    #[arg(long, env = "KILN_JOB_TTL_SECS", default_value_t = 24 * 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub job_ttl_secs: u64,
    /// How long a blob (`POST /v1/blobs`) is kept after its last upload, in seconds.
    #[arg(long, env = "KILN_BLOB_TTL_SECS", default_value_t = 24 * 3600, value_parser = clap::value_parser!(u64).range(1..=365 * 86_400))]
    pub blob_ttl_secs: u64,
    /// A worker that has not renewed its lease for this many seconds is presumed dead; its job runs again.
    #[arg(long, env = "KILN_LEASE_SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(2..=3600))]
    pub lease_secs: u64,
    /// Memory cap per job run, in MiB.
    #[arg(long, env = "KILN_MEMORY_MB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub memory_mb: u64,
    /// Wall-clock limit per job run, in seconds.
    #[arg(long, env = "KILN_TIMEOUT_SECS", default_value_t = 30.0)]
    pub timeout_secs: f64,
    /// Cap on the bytes a job may return, in MiB.
    #[arg(long, env = "KILN_MAX_OUTPUT_MB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub max_output_mb: u64,
    /// The most pixels (width × height, in millions) an image result may claim in its header; a result
    /// over it, or a PNG cut short, fails as `invalid-output`. Kinds cannot ask for more.
    #[arg(long, env = "KILN_MAX_OUTPUT_MEGAPIXELS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_output_megapixels: u64,
    /// The most memory a kind's manifest (`limits.memory_mb`) may ask for per run, in MiB.
    #[arg(long, env = "KILN_MAX_KIND_MEMORY_MB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_kind_memory_mb: u64,
    /// The longest run a kind's manifest (`limits.timeout_secs`) may ask for, in seconds.
    #[arg(long, env = "KILN_MAX_KIND_TIMEOUT_SECS", default_value_t = 300.0)]
    pub max_kind_timeout_secs: f64,
    /// Largest params of a job (as compact JSON), in KiB, unless its kind's manifest asks for more.
    #[arg(long, env = "KILN_MAX_PARAMS_KB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_params_kb: u64,
    /// The largest params a kind's manifest (`limits.max_params_kb`) may ask for, in MiB.
    #[arg(long, env = "KILN_MAX_KIND_PARAMS_MB", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub max_kind_params_mb: u64,
    /// The largest output a kind's manifest (`limits.max_output_mb`) may ask for, in MiB.
    #[arg(long, env = "KILN_MAX_KIND_OUTPUT_MB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub max_kind_output_mb: u64,
    /// Seconds running jobs get to finish after SIGTERM/SIGINT before they are handed back to the queue.
    #[arg(long, env = "KILN_GRACE_SECS", default_value_t = 30)]
    pub grace_secs: u64,
    /// How often each worker removes expired jobs from the listing indexes, in seconds.
    #[arg(long, env = "KILN_SWEEP_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub sweep_secs: u64,
    /// The admin key: manages kinds and tenants, and every request needs a key. `serve` and `api` need
    /// it or --dev; it must not be empty.
    #[arg(long, env = "KILN_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Single-tenant dev mode (`KILN_DEV=1`): no keys, every request is tenant `default` with admin
    /// rights. For one machine only: requests must name a loopback host (against DNS rebinding), and
    /// cross-origin POST/PUT/PATCH/DELETE are refused (against CSRF). Excludes KILN_ADMIN_KEY.
    #[arg(long, env = "KILN_DEV", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    pub dev: bool,
    /// A folder of extra job kinds to register at start: each `NAME.wasm` with its manifest `NAME.json`.
    #[arg(long, env = "KILN_KINDS_DIR")]
    pub kinds_dir: Option<PathBuf>,
    /// Operator settings of job kinds, as `KIND.NAME=VALUE` (e.g. `crop.max-megapixels=40`); repeatable,
    /// or comma-separated in the variable.
    #[arg(long = "setting", env = "KILN_SETTINGS", value_delimiter = ',', value_parser = parse_setting)]
    pub settings: Vec<(String, String, String)>,
    /// Seconds a client gets to send a request's headers; slower ones are disconnected (slowloris).
    #[arg(long, env = "KILN_HEADER_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_secs: u64,
    /// Seconds a request may take, except event streams and `?wait=` long-polls (which have their own
    /// bounds) and kind uploads (admin; compiling takes its time); slower ones are answered 503.
    #[arg(long, env = "KILN_REQUEST_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout_secs: u64,
    /// Requests this process works on at once (event streams and GET long-polls aside); past it, 503 at
    /// once. Bounds the API's memory: about this many request bodies of up to --max-body-bytes each.
    #[arg(long, env = "KILN_MAX_CONCURRENT_REQUESTS", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_concurrent_requests: u32,
    /// Event streams and `?wait=` long-polls one tenant may hold open at once in this process; past it, 429.
    #[arg(long, env = "KILN_MAX_STREAMS_PER_TENANT", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_streams_per_tenant: u32,
    /// Hosts completion webhooks may go to: comma-separated host names (exact), IP addresses and CIDRs
    /// (e.g. `hooks.example.com,10.0.0.0/8`). Empty: webhooks are off, a submit with `callback_url` gets 422.
    #[arg(long, env = "KILN_WEBHOOK_ALLOW", default_value = "")]
    pub webhook_allow: String,
    /// Milliseconds before a failed webhook attempt is retried; later retries wait 6, 24, 60, 120, 180
    /// and 360 times as long (8 attempts, about an hour at the default).
    #[arg(long, env = "KILN_WEBHOOK_RETRY_BASE_MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub webhook_retry_base_ms: u64,
    /// Webhook deliveries one tenant may have pending (jobs with a callback URL not yet delivered or
    /// given up); past it, such submits get 429 (0: no limit).
    #[arg(long, env = "KILN_WEBHOOK_MAX_PENDING", default_value_t = 1000)]
    pub webhook_max_pending: u64,
}

impl Default for ServeArgs {
    fn default() -> Self {
        Self::parse_from_empty()
    }
}

impl ServeArgs {
    fn parse_from_empty() -> Self {
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: ServeArgs,
        }
        Wrapper::parse_from(["kiln"]).args
    }

    pub fn api_config(&self) -> ApiConfig {
        ApiConfig {
            max_body_bytes: self.max_body_bytes,
            max_attempts: self.max_attempts,
            max_component_bytes: self.max_component_mb << 20,
            max_compile: Duration::from_secs(self.max_compile_secs),
            quotas: crate::store::SubmitQuotas {
                max_queued: self.max_queued_per_tenant,
                max_per_second: self.max_submits_per_second,
                max_bytes: self.max_bytes_per_tenant,
            },
            http: self.http_limits(),
            max_params_bytes: self.max_params_kb << 10,
            max_kind_params_bytes: self.max_kind_params_mb << 20,
            max_schedules_per_tenant: self.max_schedules_per_tenant,
            min_schedule_secs: self.min_schedule_secs,
            // Checked before anything starts (`server::run`).
            webhooks: std::sync::Arc::new(self.webhook_config().unwrap_or_default()),
        }
    }

    pub fn http_limits(&self) -> crate::api::HttpLimits {
        crate::api::HttpLimits {
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            max_concurrent_requests: self.max_concurrent_requests as usize,
            max_streams_per_tenant: self.max_streams_per_tenant as usize,
        }
    }

    /// Dev mode or keyed mode, as asked for; neither, both or an empty admin key is an error that says
    /// how to set one.
    pub fn auth_mode(&self) -> Result<crate::auth::AuthMode, String> {
        use crate::auth::{AuthMode, hash_key};
        match (self.dev, self.admin_key.as_deref()) {
            (_, Some(key)) if key.trim().is_empty() => {
                Err("KILN_ADMIN_KEY (--admin-key) is set but empty. Set it to a \
                 secret (e.g. `KILN_ADMIN_KEY=$(openssl rand -hex 32)`), or unset it and pass --dev (KILN_DEV=1) \
                 for single-tenant dev mode on this machine"
                    .into())
            }
            (true, Some(_)) => Err(
                "--dev (KILN_DEV) and KILN_ADMIN_KEY (--admin-key) exclude each other: dev \
                 mode uses no keys. Drop one of them"
                    .into(),
            ),
            (true, None) => Ok(AuthMode::Dev),
            (false, Some(key)) => Ok(AuthMode::Keyed {
                admin_hash: hash_key(key),
            }),
            (false, None) => Err(
                "no KILN_ADMIN_KEY and no --dev: Kiln will not guess who may use it. Either set \
                 an admin key (`KILN_ADMIN_KEY=$(openssl rand -hex 32)` or --admin-key) and add tenants with \
                 `kiln tenant add NAME`, or pass --dev (KILN_DEV=1) for single-tenant dev mode on this machine, \
                 with no keys"
                    .into(),
            ),
        }
    }

    pub fn webhook_config(&self) -> Result<crate::webhooks::WebhookConfig, String> {
        Ok(crate::webhooks::WebhookConfig {
            allow: crate::webhooks::Allowlist::parse(&self.webhook_allow)?,
            retry_base: Duration::from_millis(self.webhook_retry_base_ms),
            max_pending: self.webhook_max_pending,
        })
    }

    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            ttl: Duration::from_secs(self.job_ttl_secs),
            blob_ttl: Duration::from_secs(self.blob_ttl_secs),
            lease: Duration::from_secs(self.lease_secs),
            max_running_per_tenant: self.max_running_per_tenant,
        }
    }

    pub fn worker_config(&self) -> Result<WorkerConfig, String> {
        for (flag, secs) in [
            ("--timeout-secs", self.timeout_secs),
            ("--max-kind-timeout-secs", self.max_kind_timeout_secs),
        ] {
            if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
                return Err(format!("{flag} must be between 0 and 86400, not {secs}"));
            }
        }
        let mut settings: HashMap<String, BTreeMap<String, String>> = HashMap::new();
        for (kind, name, value) in &self.settings {
            settings
                .entry(kind.clone())
                .or_default()
                .insert(name.clone(), value.clone());
        }
        let limits = SandboxLimits {
            memory_bytes: (self.memory_mb << 20) as usize,
            timeout: Duration::from_secs_f64(self.timeout_secs),
            max_output_bytes: (self.max_output_mb << 20) as usize,
            max_output_pixels: self.max_output_megapixels * 1_000_000,
        };
        let defaults = WorkerConfig::default();
        Ok(WorkerConfig {
            concurrency: self.workers.unwrap_or(defaults.concurrency).max(1),
            limits,
            // A ceiling below the default would take from kinds what every other kind gets.
            ceilings: SandboxLimits {
                memory_bytes: ((self.max_kind_memory_mb << 20) as usize).max(limits.memory_bytes),
                timeout: Duration::from_secs_f64(self.max_kind_timeout_secs).max(limits.timeout),
                max_output_bytes: ((self.max_kind_output_mb << 20) as usize).max(limits.max_output_bytes),
                max_output_pixels: limits.max_output_pixels,
            },
            settings,
            grace: Duration::from_secs(self.grace_secs),
            sweep_every: Duration::from_secs(self.sweep_secs),
            ..defaults
        })
    }
}

fn parse_setting(raw: &str) -> Result<(String, String, String), String> {
    let (key, value) = raw
        .split_once('=')
        .ok_or_else(|| format!("`{raw}` is not KIND.NAME=VALUE"))?;
    let (kind, name) = key
        .split_once('.')
        .ok_or_else(|| format!("`{key}` is not KIND.NAME (e.g. crop.max-megapixels)"))?;
    if kind.is_empty() || name.is_empty() {
        return Err(format!("`{raw}` is not KIND.NAME=VALUE"));
    }
    Ok((kind.to_owned(), name.to_owned(), value.to_owned()))
}

/// A path relative to the working directory, made absolute (it need not exist yet).
fn absolute_path(raw: &str) -> Result<PathBuf, String> {
    std::path::absolute(raw).map_err(|e| format!("`{raw}` is not a usable path: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse() {
        assert_eq!(
            parse_setting("crop.max-megapixels=40").unwrap(),
            ("crop".into(), "max-megapixels".into(), "40".into())
        );
        assert!(parse_setting("crop=40").is_err());
        assert!(parse_setting(".x=1").is_err());
    }

    #[test]
    fn defaults_match_the_docs() {
        let args = ServeArgs::default();
        assert_eq!(args.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(args.max_body_bytes, 20 << 20);
        let worker = args.worker_config().unwrap();
        assert_eq!(worker.limits.memory_bytes, 256 << 20);
        assert_eq!(worker.limits.timeout, Duration::from_secs(30));
    }

    #[test]
    fn auth_needs_a_mode_and_a_real_key() {
        let with = |dev: bool, key: Option<&str>| ServeArgs {
            dev,
            admin_key: key.map(str::to_owned),
            ..ServeArgs::default()
        };
        assert!(with(false, None).auth_mode().unwrap_err().contains("--dev"));
        assert!(with(false, Some("")).auth_mode().unwrap_err().contains("empty"));
        assert!(with(false, Some("  ")).auth_mode().is_err());
        assert!(with(true, Some("k")).auth_mode().is_err());
        assert!(matches!(with(true, None).auth_mode(), Ok(crate::auth::AuthMode::Dev)));
        assert!(matches!(
            with(false, Some("k")).auth_mode(),
            Ok(crate::auth::AuthMode::Keyed { .. })
        ));
    }
}
