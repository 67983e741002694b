//! All of Kiln's Redis access: jobs, the queue, leases, results and registered kinds.
//!
//! Nothing else in Kiln talks to Redis. Every change that touches more than one key is a Lua script
//! (`lua/*.lua`), so a crash between two steps can neither lose nor duplicate a job. The schema is in
//! [`keys`].

mod blobs;
mod changes;
mod conn;
mod flow;
pub mod keys;
mod kinds;
mod schedules;
mod stats;
mod tenants;
mod webhooks;
mod workers;

pub use blobs::{Blob, BlobInfo, PutBlob};
pub use changes::{Changes, Watch};
pub use flow::Paused;
pub use kinds::{HistoryEntry, KindVersion, MAX_KIND_VERSIONS, RegisteredKind, StartupRegistration, UseVersion};
pub use schedules::{AddScheduleRefused, Fired, NewSchedule, ScheduleRecord, schedule_job_input};
pub use stats::QueueStats;
pub use tenants::{TenantEntry, TenantQuotas};
pub use webhooks::{ATTEMPTS_KEPT, Claimed, Deliveries, WebhookClaim};
pub use workers::{WORKER_GONE_AFTER_MS, WorkerBeat};

use crate::job::{ErrorCode, JobError, JobId, JobRecord, Priority, Status, now_millis};
use bytes::Bytes;
use conn::Target;
pub use conn::{CLUSTER_SCHEME, Conn, redacted_url, refused_credentials};
use redis::{AsyncCommands, Script};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

static SUBMIT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/submit.lua")));
static DEQUEUE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/dequeue.lua")));
static RENEW: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/renew.lua")));
static FINISH: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/finish.lua")));
static CANCEL: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/cancel.lua")));
static SAVE_STEP: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/save_step.lua")));
static SWEEP: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/sweep.lua")));

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis could not be reached or did not answer in time; the API maps this to 503.
    #[error("Redis is unavailable: {0}")]
    Unavailable(redis::RedisError),
    #[error("Redis command failed: {0}")]
    Redis(redis::RedisError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<redis::RedisError> for StoreError {
    /// Every failed Redis call passes through here, so this is where `kiln_redis_errors` counts them.
    fn from(e: redis::RedisError) -> Self {
        crate::metrics::global().redis_errors.inc();
        // Also transient: Redis replaying its AOF after a restart (LOADING), full under `noeviction` (OOM),
        // a replica or failover in progress, a busy script. Clients get 503 + Retry-After; workers back off.
        let transient_code = matches!(
            e.code(),
            Some("LOADING" | "OOM" | "MASTERDOWN" | "READONLY" | "BUSY" | "TRYAGAIN" | "CLUSTERDOWN")
        ) || e.to_string().contains("OOM command not allowed");
        if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() || transient_code
        {
            StoreError::Unavailable(e)
        } else {
            StoreError::Redis(e)
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Tunables of the stored data.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// How long finished jobs, their results and their documents are kept.
    pub ttl: Duration,
    /// How long a blob is kept after its last upload.
    pub blob_ttl: Duration,
    /// How long a worker may go without renewing before its job is given to another worker.
    pub lease: Duration,
    /// Jobs one tenant may run at once, unless its own limit says otherwise (0: no limit).
    pub max_running_per_tenant: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(24 * 3600),
            blob_ttl: Duration::from_secs(24 * 3600),
            lease: Duration::from_secs(15),
            max_running_per_tenant: 0,
        }
    }
}

/// A job to accept.
pub struct NewJob<'a> {
    pub id: JobId,
    pub tenant: &'a str,
    pub kind: &'a str,
    pub version: &'a str,
    pub params: &'a str,
    pub input: JobInput<'a>,
    pub max_attempts: u32,
    /// The client's `Idempotency-Key` and the hash of what it names (kind, params, input).
    pub idempotency: Option<(&'a str, &'a str)>,
    /// The job's result-cache key ([`keys::cache`]'s hash part), when it may be answered from the cache.
    pub cache: Option<&'a str>,
    /// A pipeline's steps' states before any runs (JSON of [`crate::pipeline::StepState`]s).
    pub steps: Option<&'a str>,
    pub quotas: SubmitQuotas,
    pub priority: Priority,
    /// When to queue it (Unix ms); None, or a time already past: now. Until then it is `scheduled`.
    pub run_at: Option<i64>,
    /// The failed or cancelled job this one retries (marked `retried_as` in the same step).
    pub retry_of: Option<JobId>,
    /// Where to POST the job's document when it is final (checked against the allowlist already), and
    /// the tenant's most pending deliveries (0: no limit).
    pub callback: Option<(&'a str, u64)>,
}

/// Where a pipeline keeps what a step made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept<'a> {
    /// Beside the job, for the next step and a retry: step `n`'s output.
    Step(usize),
    /// A named output's result (`GET /v1/jobs/{id}/result/{name}`).
    Named(&'a str),
}

impl Kept<'_> {
    fn key(&self, claim: &Claim) -> String {
        match self {
            Kept::Step(index) => keys::step(&claim.tenant, claim.id, *index),
            Kept::Named(name) => keys::named_result(&claim.tenant, claim.id, name),
        }
    }
}

/// Where a new job's input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobInput<'a> {
    None,
    /// Sent with the submit.
    Bytes(&'a [u8]),
    /// Copied inside Redis from one of the tenant's blobs or finished jobs, at most `max_bytes` (0: no
    /// limit) long. The reference is checked in the same step as the copy: it cannot vanish in between.
    Copy {
        from: InputRef<'a>,
        max_bytes: u64,
    },
}

/// An input by reference: one of the tenant's blobs (by its hex SHA-256), a succeeded job's result, or a
/// finished job's own input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputRef<'a> {
    Blob(&'a str),
    JobResult(JobId),
    /// The input a failed or cancelled job of the tenant kept (what its retry runs on).
    JobInput(JobId),
    /// A recurring schedule's own copy of its input (`keys::schedule_input`).
    Schedule(JobId),
}

/// The tenant's limits that a submit checks (0: no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubmitQuotas {
    pub max_queued: u64,
    pub max_per_second: u32,
    /// Bytes the tenant may hold in Redis: inputs and params of its unfinished jobs, results, logs and
    /// params its finished jobs keep.
    pub max_bytes: u64,
}

/// Which quota a refused submit ran into, and its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    Queued(u64),
    Rate(u64),
    /// The tenant holds too many bytes to take this job now.
    Bytes(u64),
    /// This job alone is bigger than the tenant's byte quota.
    TooBig(u64),
    /// The tenant has this many webhook deliveries pending (jobs with a callback URL not delivered yet).
    Webhooks(u64),
}

/// What [`Store::submit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// A new job was queued.
    New,
    /// A job of the same kind version, params and input succeeded within the TTL: the new job is
    /// succeeded already, with a copy of that one's result (named here); nothing runs.
    Cached(JobId),
    /// The `Idempotency-Key` was used before for the same payload: this is that job; nothing was queued.
    Existing(JobId),
    /// The `Idempotency-Key` was used before for another payload (that job); nothing was queued.
    KeyReused(JobId),
    /// A quota of the tenant is used up; nothing was queued.
    OverQuota(Quota),
    /// The input to copy ([`JobInput::Copy`]) does not exist (any more); nothing was queued.
    InputGone,
    /// The input to copy is bigger than the kind takes (its limit, in bytes); nothing was queued.
    InputTooBig(u64),
    /// The job to retry ([`NewJob::retry_of`]) was retried already, by the job named; nothing was queued.
    RetriedAlready(JobId),
}

/// A job a worker has claimed; holding it means holding its lease.
#[derive(Debug, Clone)]
pub struct Claim {
    pub tenant: String,
    pub id: JobId,
    pub kind: String,
    pub version: String,
    pub params: String,
    pub attempts: u32,
    pub lease: String,
    pub input: Bytes,
}

impl Claim {
    fn member(&self) -> String {
        keys::member(&self.tenant, self.id)
    }
}

/// How one attempt ended, as the worker reports it.
pub enum Outcome {
    Succeeded {
        media_type: String,
        data: Vec<u8>,
    },
    Failed(JobError),
    Retry {
        error: JobError,
        after: Duration,
    },
    /// Not an outcome: the worker is shutting down and hands the job back. It goes to the head of its
    /// queue at once, and the interrupted run does not count as an attempt.
    Release,
}

/// Filters of `GET /v1/jobs`.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub status: Option<Status>,
    pub kind: Option<String>,
    /// Only failed jobs with this error code.
    pub error_code: Option<String>,
    /// Only jobs created at or after this time (Unix ms).
    pub since: Option<i64>,
    /// Only jobs created before this time (Unix ms).
    pub until: Option<i64>,
    pub limit: usize,
    /// The id of the last job of the previous page.
    pub cursor: Option<JobId>,
}

impl ListQuery {
    fn filters(&self) -> bool {
        self.status.is_some() || self.kind.is_some() || self.error_code.is_some()
    }

    fn wants(&self, status: &str, kind: &str, error_code: Option<&str>) -> bool {
        self.status.is_none_or(|s| s.as_str() == status)
            && self.kind.as_ref().is_none_or(|k| k == kind)
            && self.error_code.as_ref().is_none_or(|c| Some(c.as_str()) == error_code)
    }
}

/// The smallest job id (as text) created at `millis`: UUIDv7 ids start with their creation time in
/// hex, so ids compare as text in creation order and a time is a bound of the listing's index.
fn id_floor(millis: i64) -> String {
    let hex = format!("{:012x}", millis.clamp(0, (1 << 48) - 1));
    format!("{}-{}", &hex[..8], &hex[8..])
}

#[derive(Clone)]
pub struct Store {
    conn: Conn,
    /// Shared: every request clones the store, and a client (URL, TLS settings) is costly to copy.
    target: Arc<Target>,
    config: Arc<StoreConfig>,
}

impl Store {
    /// Connects, failing within a few seconds when Redis is not there (callers explain what to do).
    pub async fn connect(url: &str, config: StoreConfig) -> Result<Self> {
        let target = Target::parse(url)?;
        let conn = tokio::time::timeout(Duration::from_secs(5), target.shared())
            .await
            .map_err(|_| {
                StoreError::Unavailable(redis::RedisError::from((redis::ErrorKind::Io, "timed out connecting")))
            })??;
        Ok(Self {
            conn,
            target: Arc::new(target),
            config: Arc::new(config),
        })
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    fn ttl_ms(&self) -> u64 {
        self.config.ttl.as_millis() as u64
    }

    // ---- API side -------------------------------------------------------------------------------------

    /// Accepts a job in one round trip, or with an `Idempotency-Key` seen before, names the earlier job.
    pub async fn submit(&self, job: NewJob<'_>) -> Result<Submitted> {
        let mut conn = self.conn.clone();
        let mut invocation = SUBMIT.prepare_invoke();
        self.submit_args(&mut invocation, &job);
        let answer: String = invocation.invoke_async(&mut conn).await?;
        parse_submitted(&answer)
    }

    /// The KEYS and ARGV of `submit.lua` (also the first ones of `fire_schedule.lua`, which wraps it).
    fn submit_args(&self, invocation: &mut redis::ScriptInvocation<'_>, job: &NewJob<'_>) {
        invocation
            .key(keys::job(job.tenant, job.id))
            .key(keys::input(job.tenant, job.id))
            .key(keys::index(job.tenant))
            .key(keys::queue(job.tenant))
            .key(keys::READY_RING)
            .key(keys::READY_SET)
            .key(keys::WAKE)
            .key(keys::INDEXED)
            .key(keys::params(job.tenant, job.id))
            .arg(job.id.to_string())
            .arg(job.tenant)
            .arg(job.kind)
            .arg(job.version)
            .arg(job.params)
            .arg(job.id.created_millis().unwrap_or_else(now_millis))
            .arg(job.max_attempts);
        let max_input = match job.input {
            JobInput::None => {
                invocation.arg("0").arg("");
                0
            }
            JobInput::Bytes(bytes) => {
                invocation.arg("1").arg(bytes);
                0
            }
            JobInput::Copy { from, max_bytes } => {
                invocation.arg("copy").arg(schedules::input_key(job.tenant, from));
                max_bytes
            }
        };
        invocation
            .arg(keys::PREFIX)
            .arg(job.quotas.max_queued)
            .arg(job.quotas.max_per_second)
            .arg(now_millis() / 1000);
        let (hash, window) = match job.idempotency {
            Some((key, hash)) => {
                invocation.key(keys::idempotency(job.tenant, key));
                (hash, self.ttl_ms())
            }
            None => ("", 0),
        };
        invocation
            .arg(hash)
            .arg(window)
            .arg(job.quotas.max_bytes)
            .arg(max_input)
            .arg(job.cache.map(|hash| keys::cache(job.tenant, hash)).unwrap_or_default())
            .arg(self.ttl_ms())
            .arg(job.priority.as_str())
            .arg(job.run_at.filter(|at| *at > now_millis()).unwrap_or(0))
            .arg(job.steps.unwrap_or_default())
            .arg(job.retry_of.map(|id| id.to_string()).unwrap_or_default())
            .arg(job.callback.map_or("", |(url, _)| url))
            .arg(job.callback.map_or(0, |(_, max)| max));
    }
}

/// What `submit.lua` answered.
fn parse_submitted(answer: &str) -> Result<Submitted> {
    let earlier = |id: &str| {
        id.parse()
            .map_err(|e| StoreError::Corrupt(format!("idempotency record names job `{id}`: {e}")))
    };
    match answer.split_once(':') {
        None if answer == "new" => Ok(Submitted::New),
        Some(("same", id)) => Ok(Submitted::Existing(earlier(id)?)),
        Some(("cached", id)) => Ok(Submitted::Cached(earlier(id)?)),
        Some(("reused", id)) => Ok(Submitted::KeyReused(earlier(id)?)),
        Some(("retried", id)) => Ok(Submitted::RetriedAlready(earlier(id)?)),
        Some(("ref", "missing")) => Ok(Submitted::InputGone),
        Some(("ref", too_big)) => too_big
            .strip_prefix("too-big:")
            .and_then(|limit| limit.parse().ok())
            .map(Submitted::InputTooBig)
            .ok_or_else(|| StoreError::Corrupt(format!("submit.lua answered `{answer}`"))),
        Some(("quota", quota)) => {
            let parsed = match quota.split_once(':') {
                Some(("queued", limit)) => limit.parse().ok().map(Quota::Queued),
                Some(("rate", limit)) => limit.parse().ok().map(Quota::Rate),
                Some(("bytes", limit)) => limit.parse().ok().map(Quota::Bytes),
                Some(("too-big", limit)) => limit.parse().ok().map(Quota::TooBig),
                Some(("webhooks", limit)) => limit.parse().ok().map(Quota::Webhooks),
                _ => None,
            };
            parsed
                .map(Submitted::OverQuota)
                .ok_or_else(|| StoreError::Corrupt(format!("submit.lua answered `{answer}`")))
        }
        _ => Err(StoreError::Corrupt(format!("submit.lua answered `{answer}`"))),
    }
}

impl Store {
    /// Records a pipeline's steps (and what a step made, where it is kept) while the claim holds the
    /// lease; false when it does not any more.
    pub async fn save_step(&self, claim: &Claim, steps: &str, output: Option<(Kept<'_>, &[u8])>) -> Result<bool> {
        let mut conn = self.conn.clone();
        let (place, bytes) = match output {
            Some((kept, bytes)) => (Some(kept), bytes),
            None => (None, &[][..]),
        };
        // Held against the byte quota until the sweep sees it expire, like the job's own result: a step's
        // output stays for the TTL, and a pipeline has up to 72 of them.
        let hold = match place {
            Some(Kept::Named(name)) => format!("{}:{name}", claim.id),
            Some(Kept::Step(index)) => format!("{}:step-{index}", claim.id),
            None => String::new(),
        };
        let ttl = self.ttl_ms();
        let saved: i64 = SAVE_STEP
            .key(keys::job(&claim.tenant, claim.id))
            .key(place.map_or_else(|| keys::step(&claim.tenant, claim.id, 0), |kept| kept.key(claim)))
            .key(keys::BYTES_HELD)
            .key(keys::held(&claim.tenant))
            .arg(&claim.lease)
            .arg(steps)
            .arg(bytes)
            .arg(ttl)
            .arg(keys::CHANGED)
            .arg(claim.member())
            .arg(hold)
            .arg(&claim.tenant)
            .arg(now_millis() + ttl as i64)
            .invoke_async(&mut conn)
            .await?;
        Ok(saved == 1)
    }

    /// What the result cache holds for `hash` ([`crate::result_cache::key`]): the bytes and media type of
    /// the job of the tenant that succeeded with that kind version, params and input.
    pub async fn cached_result(&self, tenant: &str, hash: &str) -> Result<Option<(Bytes, String)>> {
        let mut conn = self.conn.clone();
        let id: Option<String> = conn.get(keys::cache(tenant, hash)).await?;
        let Some(id) = id.and_then(|id| id.parse::<JobId>().ok()) else {
            return Ok(None);
        };
        let (data, media_type): (Option<Vec<u8>>, Option<String>) = redis::pipe()
            .get(keys::result(tenant, id))
            .hget(keys::job(tenant, id), "media_type")
            .query_async(&mut conn)
            .await?;
        Ok(data
            .zip(media_type)
            .map(|(data, media_type)| (Bytes::from(data), media_type)))
    }

    /// Makes the claimed job fill the result cache under `hash` when it succeeds (`finish.lua`): a
    /// pipeline's result is its last step's, so later submits of that step can be answered from it.
    pub async fn cache_as(&self, claim: &Claim, hash: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: () = conn
            .hset(
                keys::job(&claim.tenant, claim.id),
                "cache_key",
                keys::cache(&claim.tenant, hash),
            )
            .await?;
        Ok(())
    }

    /// A pipeline's steps as last recorded.
    pub async fn pipeline_steps(&self, claim: &Claim) -> Result<Option<String>> {
        let mut conn = self.conn.clone();
        Ok(conn.hget(keys::job(&claim.tenant, claim.id), "steps").await?)
    }

    /// What a pipeline's step made in an earlier attempt, if it is kept.
    pub async fn kept_output(&self, claim: &Claim, kept: Kept<'_>) -> Result<Option<Bytes>> {
        let mut conn = self.conn.clone();
        let bytes: Option<Vec<u8>> = conn.get(kept.key(claim)).await?;
        Ok(bytes.map(Bytes::from))
    }

    /// A pipeline's named result.
    pub async fn named_result(&self, tenant: &str, id: JobId, name: &str) -> Result<Option<Bytes>> {
        let mut conn = self.conn.clone();
        let bytes: Option<Vec<u8>> = conn.get(keys::named_result(tenant, id, name)).await?;
        Ok(bytes.map(Bytes::from))
    }

    pub async fn get(&self, tenant: &str, id: JobId) -> Result<Option<JobRecord>> {
        let mut conn = self.conn.clone();
        let values: Vec<Option<String>> = read_record(&keys::job(tenant, id)).query_async(&mut conn).await?;
        parse_record(id, values)
    }

    /// The job and, when it succeeded, its result bytes, in one round trip.
    pub async fn get_with_result(&self, tenant: &str, id: JobId) -> Result<Option<(JobRecord, Option<Bytes>)>> {
        let mut conn = self.conn.clone();
        let (fields, result): (Vec<Option<String>>, Option<Vec<u8>>) = redis::pipe()
            .add_command(read_record(&keys::job(tenant, id)))
            .get(keys::result(tenant, id))
            .query_async(&mut conn)
            .await?;
        Ok(parse_record(id, fields)?.map(|record| (record, result.map(Bytes::from))))
    }

    /// Newest first. Entries whose job has expired are pruned from the index as they are met.
    pub async fn list(&self, tenant: &str, query: &ListQuery) -> Result<(Vec<JobRecord>, Option<JobId>)> {
        const PAGE: usize = 100;
        const MAX_SCANNED: usize = 2000;
        let mut conn = self.conn.clone();
        let index = keys::index(tenant);
        let mut jobs = Vec::new();
        let mut cursor = query.cursor;
        let mut scanned = 0;
        // Ids below `until`'s floor were created before it; ids from `since`'s floor on, at or after it.
        let end = query
            .since
            .map_or("-".to_owned(), |since| format!("[{}", id_floor(since)));
        let before = query.until.map(id_floor);
        loop {
            let start = match (cursor, &before) {
                (Some(id), Some(floor)) if id.to_string() > *floor => format!("({floor}"),
                (Some(id), _) => format!("({id}"),
                (None, Some(floor)) => format!("({floor}"),
                (None, None) => "+".to_owned(),
            };
            let ids: Vec<String> = redis::cmd("ZRANGE")
                .arg(&index)
                .arg(&start)
                .arg(&end)
                .arg("BYLEX")
                .arg("REV")
                .arg("LIMIT")
                .arg(0)
                .arg(PAGE)
                .query_async(&mut conn)
                .await?;
            if ids.is_empty() {
                return Ok((jobs, None));
            }
            let ids: Vec<JobId> = ids.iter().filter_map(|id| id.parse().ok()).collect();
            let mut expired = Vec::new();
            // With a filter, read only the three fields it tests first, and whole records of the matches:
            // a sparse filter then costs three short fields per job scanned.
            let matches: Vec<JobId> = if query.filters() {
                let mut pipe = redis::pipe();
                for id in &ids {
                    pipe.cmd("HMGET")
                        .arg(keys::job(tenant, *id))
                        .arg("status")
                        .arg("kind")
                        .arg("error_code");
                }
                type Probe = (Option<String>, Option<String>, Option<String>);
                let probes: Vec<Probe> = pipe.query_async(&mut conn).await?;
                ids.iter()
                    .zip(probes)
                    .filter_map(|(id, probe)| match probe {
                        (None, ..) => {
                            expired.push(id.to_string());
                            None
                        }
                        (Some(status), kind, code) => query
                            .wants(&status, kind.as_deref().unwrap_or_default(), code.as_deref())
                            .then_some(*id),
                    })
                    .collect()
            } else {
                ids.clone()
            };
            let mut pipe = redis::pipe();
            for id in &matches {
                pipe.add_command(read_record(&keys::job(tenant, *id)));
            }
            let docs: Vec<Vec<Option<String>>> = if matches.is_empty() {
                Vec::new()
            } else {
                pipe.query_async(&mut conn).await?
            };
            for (id, fields) in matches.iter().zip(docs) {
                match parse_record(*id, fields)? {
                    None => expired.push(id.to_string()),
                    Some(record) => {
                        let code = record.error.as_ref().map(|e| e.code.as_str());
                        if query.wants(record.status.as_str(), &record.kind, code) {
                            jobs.push(record);
                            if jobs.len() == query.limit {
                                return Ok((jobs, Some(*id)));
                            }
                        }
                    }
                }
            }
            scanned += ids.len();
            cursor = ids.last().copied().or(cursor);
            if !expired.is_empty() {
                let _: i64 = conn.zrem(&index, expired).await?;
            }
            if ids.len() < PAGE {
                return Ok((jobs, None));
            }
            if scanned >= MAX_SCANNED {
                // A sparse filter: hand back what we have and where to go on from.
                return Ok((jobs, cursor));
            }
        }
    }

    /// Cancels a scheduled, queued or running job; returns its status before the call (None: unknown job).
    pub async fn cancel(&self, tenant: &str, id: JobId) -> Result<Option<Status>> {
        let mut conn = self.conn.clone();
        let before: Option<String> = CANCEL
            .key(keys::job(tenant, id))
            .key(keys::input(tenant, id))
            .key(keys::LEASES)
            .key(keys::DELAYED)
            .key(keys::running(tenant))
            .key(keys::QUEUED_BY_KIND)
            .key(keys::queue(tenant))
            .key(keys::params(tenant, id))
            .key(keys::BYTES_HELD)
            .key(keys::held(tenant))
            .key(keys::log(tenant, id))
            .arg(keys::member(tenant, id))
            .arg(now_millis())
            .arg(self.ttl_ms())
            .arg(id.to_string())
            .arg(keys::CHANGED)
            .invoke_async(&mut conn)
            .await?;
        before.map(|s| s.parse().map_err(StoreError::Corrupt)).transpose()
    }

    // ---- worker side ----------------------------------------------------------------------------------

    /// Claims the next job, if any, fairly across tenants; `worker` names the claimant in its lease.
    pub async fn dequeue(&self, worker: &str) -> Result<Option<Claim>> {
        type Row = (String, String, String, String, String, u32, String, Option<Vec<u8>>);
        let mut conn = self.conn.clone();
        let row: Option<Row> = DEQUEUE
            .key(keys::READY_RING)
            .key(keys::READY_SET)
            .key(keys::LEASES)
            .key(keys::DELAYED)
            .key(keys::RUNNING_LIMITS)
            .arg(now_millis())
            .arg(self.config.lease.as_millis() as u64)
            .arg(worker)
            .arg(keys::PREFIX)
            .arg(self.ttl_ms())
            .arg(self.config.max_running_per_tenant)
            .invoke_async(&mut conn)
            .await?;
        let Some((tenant, id, kind, version, params, attempts, lease, input)) = row else {
            return Ok(None);
        };
        Ok(Some(Claim {
            tenant,
            id: id
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("job id `{id}`: {e}")))?,
            kind,
            version,
            params,
            attempts,
            lease,
            input: input.map(Bytes::from).unwrap_or_default(),
        }))
    }

    /// A dedicated connection for [`Store::wait_for_work`]: a blocking pop would stall every other
    /// command multiplexed on a shared connection.
    pub async fn waiter(&self) -> Result<Conn> {
        Ok(self.target.dedicated(Duration::from_secs(10)).await?)
    }

    /// Blocks until a submit wakes this worker or `timeout` passes (then retries and leases are due).
    pub async fn wait_for_work(&self, waiter: &mut Conn, timeout: Duration) -> Result<()> {
        let _: Option<(String, String)> = waiter.blpop(keys::WAKE, timeout.as_secs_f64()).await?;
        Ok(())
    }

    /// Extends the lease and stores progress. `false`: the lease is lost (cancelled or reassigned).
    pub async fn renew(&self, claim: &Claim, progress: Option<f32>) -> Result<bool> {
        let mut conn = self.conn.clone();
        let deadline = now_millis() + self.config.lease.as_millis() as i64;
        let held: i64 = RENEW
            .key(keys::job(&claim.tenant, claim.id))
            .key(keys::LEASES)
            .arg(claim.member())
            .arg(&claim.lease)
            .arg(deadline)
            .arg(progress.map(|p| format!("{p:.3}")).unwrap_or_default())
            .arg(keys::CHANGED)
            .invoke_async(&mut conn)
            .await?;
        Ok(held == 1)
    }

    /// Records an attempt's outcome. `false`: the lease was lost, so the outcome was dropped on purpose.
    /// With the outcome it keeps the guest's log of this attempt (`log`, bounded by the runtime), under
    /// the same lease check: a run that lost its job cannot overwrite the log of the one that has it.
    pub async fn finish(&self, claim: &Claim, outcome: &Outcome, log: &str) -> Result<bool> {
        let mut conn = self.conn.clone();
        let mut invocation = FINISH.prepare_invoke();
        invocation
            .key(keys::job(&claim.tenant, claim.id))
            .key(keys::input(&claim.tenant, claim.id))
            .key(keys::result(&claim.tenant, claim.id))
            .key(keys::LEASES)
            .key(keys::DELAYED)
            .key(keys::queue(&claim.tenant))
            .key(keys::READY_RING)
            .key(keys::READY_SET)
            .key(keys::WAKE)
            .key(keys::running(&claim.tenant))
            .key(keys::finished_in_minute(now_millis() / 60_000))
            .key(keys::QUEUED_BY_KIND)
            .key(keys::log(&claim.tenant, claim.id))
            .key(keys::params(&claim.tenant, claim.id))
            .key(keys::BYTES_HELD)
            .key(keys::held(&claim.tenant))
            .arg(claim.member())
            .arg(&claim.lease);
        let now = now_millis();
        // (outcome, error code, error message, retry at, media type, result bytes)
        let (name, code, message, retry_at, media_type, data): (&str, &str, &str, i64, &str, &[u8]) = match outcome {
            Outcome::Succeeded { media_type, data } => ("succeeded", "", "", 0, media_type, data),
            Outcome::Failed(error) => ("failed", error.code.as_str(), &error.message, 0, "", &[]),
            Outcome::Retry { error, after } => (
                "retry",
                error.code.as_str(),
                &error.message,
                now + after.as_millis() as i64,
                "",
                &[],
            ),
            Outcome::Release => ("release", "", "", 0, "", &[]),
        };
        invocation
            .arg(name)
            .arg(now)
            .arg(self.ttl_ms())
            .arg(code)
            .arg(message)
            .arg(retry_at)
            .arg(media_type)
            .arg(data)
            .arg(log)
            .arg(keys::CHANGED);
        let recorded: i64 = invocation.invoke_async(&mut conn).await?;
        Ok(recorded == 1)
    }

    /// One step of the expiry sweep: removes listing entries of expired jobs for a few tenants, checking
    /// at most `per_tenant` of each one's oldest entries. Start with cursor `"0"`, go on with the cursor
    /// returned until it is `"0"` again. Returns that cursor and the entries removed.
    pub async fn sweep(&self, cursor: &str, per_tenant: usize) -> Result<(String, u64)> {
        let mut conn = self.conn.clone();
        Ok(SWEEP
            .key(keys::INDEXED)
            .key(keys::BYTES_HELD)
            .arg(cursor)
            .arg(keys::PREFIX)
            .arg(per_tenant)
            .arg(now_millis())
            .invoke_async(&mut conn)
            .await?)
    }

    /// The guest's log of the job's last attempt, if it logged anything.
    pub async fn log(&self, tenant: &str, id: JobId) -> Result<Option<String>> {
        let mut conn = self.conn.clone();
        Ok(conn.get(keys::log(tenant, id)).await?)
    }

    /// A job's params, while it keeps them (until it succeeds; a failed or cancelled job for its TTL).
    pub async fn params(&self, tenant: &str, id: JobId) -> Result<Option<String>> {
        let mut conn = self.conn.clone();
        Ok(conn.get(keys::params(tenant, id)).await?)
    }

    /// The ids of the tenants that have a listing index (every tenant with jobs within the TTL).
    pub async fn indexed_tenants(&self) -> Result<Vec<String>> {
        let mut conn = self.conn.clone();
        let mut tenants: Vec<String> = conn.smembers(keys::INDEXED).await?;
        tenants.sort();
        Ok(tenants)
    }

    /// The values of a hash whose values are JSON documents (registered kinds, tenants).
    async fn json_values<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Vec<T>> {
        let mut conn = self.conn.clone();
        let all: HashMap<String, String> = conn.hgetall(key).await?;
        all.values()
            .map(|json| serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("a value in {key}: {e}"))))
            .collect()
    }
}

/// The fields of a job document that the API shows or needs (never `params`, which can be megabytes):
/// every API read of a job fetches these with one HMGET, so a listing costs what its answer shows.
const RECORD_FIELDS: [&str; 23] = [
    "status",
    "tenant",
    "kind",
    "version",
    "progress",
    "attempts",
    "max_attempts",
    "created_at",
    "started_at",
    "finished_at",
    "expires_at",
    "media_type",
    "error_code",
    "error_message",
    "cached",
    "steps",
    "priority",
    "run_at",
    "has_input",
    "retry_of",
    "retried_as",
    "schedule",
    "scheduled_for",
];

/// HMGET of [`RECORD_FIELDS`]; [`parse_record`] reads its answer.
fn read_record(job_key: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("HMGET");
    cmd.arg(job_key).arg(&RECORD_FIELDS[..]);
    cmd
}

/// A job document from the values of [`read_record`]; `None` when the job does not exist (expired).
fn parse_record(id: JobId, values: Vec<Option<String>>) -> Result<Option<JobRecord>> {
    let mut f: HashMap<&str, String> = RECORD_FIELDS
        .into_iter()
        .zip(values)
        .filter_map(|(field, value)| value.map(|v| (field, v)))
        .collect();
    if f.is_empty() {
        return Ok(None);
    }
    let corrupt = |field: &str| StoreError::Corrupt(format!("job {id}: field `{field}` is missing or malformed"));
    let mut take = |field: &str| f.remove(field);
    let status: Status = take("status")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| corrupt("status"))?;
    let number = |value: Option<String>, field: &str| -> Result<Option<i64>> {
        value.map(|v| v.parse::<i64>().map_err(|_| corrupt(field))).transpose()
    };
    let error = match (take("error_code"), take("error_message")) {
        (Some(code), message) => Some(JobError::new(
            code.parse().unwrap_or(ErrorCode::Internal),
            message.unwrap_or_default(),
        )),
        _ => None,
    };
    Ok(Some(JobRecord {
        id,
        status,
        tenant: take("tenant").ok_or_else(|| corrupt("tenant"))?,
        kind: take("kind").ok_or_else(|| corrupt("kind"))?,
        version: take("version").unwrap_or_default(),
        priority: take("priority").and_then(|p| p.parse().ok()).unwrap_or_default(),
        run_at: number(take("run_at"), "run_at")?,
        schedule: match (take("schedule"), number(take("scheduled_for"), "scheduled_for")?) {
            (Some(schedule), Some(at)) => Some((schedule.parse().map_err(|_| corrupt("schedule"))?, at)),
            _ => None,
        },
        progress: take("progress").and_then(|p| p.parse().ok()).unwrap_or(0.0),
        attempts: number(take("attempts"), "attempts")?.unwrap_or(0) as u32,
        max_attempts: number(take("max_attempts"), "max_attempts")?.unwrap_or(1) as u32,
        created_at: number(take("created_at"), "created_at")?.ok_or_else(|| corrupt("created_at"))?,
        started_at: number(take("started_at"), "started_at")?,
        finished_at: number(take("finished_at"), "finished_at")?,
        expires_at: number(take("expires_at"), "expires_at")?,
        media_type: take("media_type"),
        cached: take("cached").is_some(),
        steps: take("steps")
            .map(|json| serde_json::from_str(&json).map_err(|_| corrupt("steps")))
            .transpose()?,
        error,
        has_input: take("has_input").is_some(),
        retry_of: take("retry_of").and_then(|id| id.parse().ok()),
        retried_as: take("retried_as").and_then(|id| id.parse().ok()),
    }))
}
