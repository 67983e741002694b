//! The job document: what Kiln knows about one job, as stored in Redis and shown by the API.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use time::OffsetDateTime;
use uuid::Uuid;

/// A job id. UUIDv7, so ids sort by creation time; the per-tenant listing relies on that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct JobId(pub Uuid);

impl JobId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// When the job was created, in Unix milliseconds: UUIDv7 carries it.
    pub fn created_millis(&self) -> Option<i64> {
        self.0.get_timestamp().map(|ts| {
            let (secs, nanos) = ts.to_unix();
            secs as i64 * 1000 + i64::from(nanos / 1_000_000)
        })
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.as_hyphenated().fmt(f)
    }
}

impl FromStr for JobId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// Where a job is in its life. `Succeeded`, `Failed` and `Cancelled` are final: a job reaches exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for its `run_at` time; then queued.
    Scheduled,
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Scheduled,
        Status::Queued,
        Status::Running,
        Status::Succeeded,
        Status::Failed,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Scheduled => "scheduled",
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Status::Succeeded | Status::Failed | Status::Cancelled)
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown status `{s}`; expected one of scheduled, queued, running, succeeded, failed, cancelled"
                )
            })
    }
}

/// Which of its tenant's jobs runs first: high before normal before low, FIFO within one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    High,
    #[default]
    Normal,
    Low,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "high" => Ok(Priority::High),
            "normal" => Ok(Priority::Normal),
            "low" => Ok(Priority::Low),
            _ => Err(format!(
                "unknown priority `{}`; expected one of high, normal, low",
                crate::text::capped(s.to_owned(), 40)
            )),
        }
    }
}

/// Why a job failed. The first three come from the guest (the WIT `error-code`); the rest from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    InvalidParams,
    InvalidInput,
    Internal,
    MemoryLimit,
    Timeout,
    OutputTooLarge,
    InvalidOutput,
    Trap,
    HostError,
    LostWorker,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidParams => "invalid-params",
            ErrorCode::InvalidInput => "invalid-input",
            ErrorCode::Internal => "internal",
            ErrorCode::MemoryLimit => "memory-limit",
            ErrorCode::Timeout => "timeout",
            ErrorCode::OutputTooLarge => "output-too-large",
            ErrorCode::InvalidOutput => "invalid-output",
            ErrorCode::Trap => "trap",
            ErrorCode::HostError => "host-error",
            ErrorCode::LostWorker => "lost-worker",
        }
    }

    /// Failures that may pass on another attempt. The user's own mistakes never do, and neither does a
    /// guest that breaks its contract the same way every time.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorCode::Timeout | ErrorCode::HostError | ErrorCode::LostWorker)
    }
}

impl FromStr for ErrorCode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| format!("unknown error code `{s}`"))
    }
}

/// Why a job failed: a machine-readable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobError {
    pub code: ErrorCode,
    pub message: String,
}

/// Longest error message kept, in bytes: a guest writes it, and it is stored, logged and shown.
pub const MAX_ERROR_MESSAGE: usize = 2048;

impl JobError {
    /// Every job error is made here, so the stored and the logged copy are both capped
    /// ([`MAX_ERROR_MESSAGE`], cut with "…").
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: crate::text::capped(message.into(), MAX_ERROR_MESSAGE),
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

/// The job document of the HTTP API (`GET /v1/jobs/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobView {
    pub id: JobId,
    pub kind: String,
    pub status: Status,
    /// Within its tenant, high runs before normal before low.
    pub priority: Priority,
    /// When a delayed or scheduled job is due (it is `scheduled` until then).
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub run_at: Option<OffsetDateTime>,
    /// The recurring schedule (`POST /v1/schedules`) that made this job, if one did.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub schedule: Option<JobId>,
    /// The schedule's due time this job is for: one job per due time.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub scheduled_for: Option<OffsetDateTime>,
    /// From 0 to 1, as the guest reports it.
    pub progress: f32,
    /// Runs started so far (a retried job has more than one).
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Why the job failed.
    pub error: Option<JobError>,
    /// Answered from the result cache (an earlier job of the same kind version, params and input):
    /// succeeded at once, with no attempt and no run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
    /// A pipeline's steps, in order: each one's kind, status, timing and error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepView>>,
    /// Where to download the result, once the job has succeeded.
    pub result_url: Option<String>,
    /// The failed or cancelled job this one re-runs (`POST /v1/jobs/{id}/retry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<JobId>,
    /// The job that re-runs this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried_as: Option<JobId>,
}

/// A pipeline step in the job document.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepView {
    pub kind: String,
    /// The named output this step belongs to; absent for a shared step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    pub status: crate::pipeline::StepStatus,
    /// Answered from the result cache: not run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub error: Option<JobError>,
}

impl From<&crate::pipeline::StepState> for StepView {
    fn from(step: &crate::pipeline::StepState) -> Self {
        Self {
            kind: step.kind.clone(),
            output: step.output.clone(),
            status: step.status,
            cached: step.cached,
            started_at: step.started_at.map(from_millis),
            finished_at: step.finished_at.map(from_millis),
            error: step.error.clone(),
        }
    }
}

/// Converts a Redis-stored millisecond timestamp to a date; Kiln stores all times as Unix milliseconds.
pub fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub fn now_millis() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// What the API reads back about a job from Redis: everything but the params, which only the worker
/// that claims the job reads (`{kiln}:params:<tenant>:<id>`).
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: JobId,
    pub tenant: String,
    pub kind: String,
    /// The kind version (hash of component and manifest) this job was submitted for, and runs on.
    pub version: String,
    pub status: Status,
    pub priority: Priority,
    /// A delayed or scheduled job's due time (ms).
    pub run_at: Option<i64>,
    /// The schedule that made it and the due time it is for (ms).
    pub schedule: Option<(JobId, i64)>,
    pub progress: f32,
    pub attempts: u32,
    pub max_attempts: u32,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub error: Option<JobError>,
    pub media_type: Option<String>,
    /// Answered from the result cache: born succeeded, never run.
    pub cached: bool,
    /// A pipeline's steps.
    pub steps: Option<Vec<crate::pipeline::StepState>>,
    /// It was submitted with an input (kept for a retry while a failed or cancelled job lasts).
    pub has_input: bool,
    /// The failed or cancelled job this one re-runs.
    pub retry_of: Option<JobId>,
    /// The job that re-runs this one (a job is retried at most once; retry that one next).
    pub retried_as: Option<JobId>,
}

impl JobRecord {
    pub fn view(&self) -> JobView {
        JobView {
            id: self.id,
            kind: self.kind.clone(),
            status: self.status,
            priority: self.priority,
            run_at: self.run_at.map(from_millis),
            schedule: self.schedule.map(|(id, _)| id),
            scheduled_for: self.schedule.map(|(_, at)| from_millis(at)),
            progress: self.progress,
            attempts: self.attempts,
            created_at: from_millis(self.created_at),
            started_at: self.started_at.map(from_millis),
            finished_at: self.finished_at.map(from_millis),
            expires_at: self.expires_at.map(from_millis),
            error: self.error.clone(),
            cached: self.cached,
            steps: self
                .steps
                .as_ref()
                .map(|steps| steps.iter().map(StepView::from).collect()),
            result_url: (self.status == Status::Succeeded).then(|| format!("/v1/jobs/{}/result", self.id)),
            retry_of: self.retry_of,
            retried_as: self.retried_as,
        }
    }
}
