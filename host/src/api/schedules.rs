//! Recurring schedules: `POST /v1/schedules` makes one, `GET`/`DELETE` read and remove them, and every API
//! process runs [`fire_due`], a once-a-second timer that makes each due time's job.
//!
//! No leader: every API process reads the due schedules (one `ZRANGEBYSCORE` a second, nothing on the
//! submit or claim paths), computes each one's next due time, and calls `fire_schedule.lua`, whose
//! compare-and-set on the due zset lets exactly one of them make the job. Missed due times (every API
//! down) are not made up: the first tick after makes one job, for the oldest missed due time, and the next
//! due time is the first one after now. A due time the tenant's quotas refuse is skipped and recorded on
//! the schedule (`last_error`). Workers do not fire schedules; a deployment with no API process makes none.

use super::jobs::{input_gone, quota_error};
use super::openapi::{Problem, errors, tags};
use super::submit::InputSpec;
use super::{ApiError, AppState};
use crate::auth::Tenant;
use crate::cron::CronExpr;
use crate::job::{JobId, Priority, from_millis, now_millis};
use crate::kinds::InputPolicy;
use crate::store::{AddScheduleRefused, Fired, InputRef, NewJob, NewSchedule, Quota, ScheduleRecord, Submitted};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// `POST /v1/schedules`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScheduleBody {
    /// 5-field cron (`*/5 * * * *`), or 6 with seconds first; UTC. Due times at least
    /// `KILN_MIN_SCHEDULE_SECS` apart.
    pub cron: String,
    /// The job kind each due time runs (its current version then).
    pub kind: String,
    /// The params of every job; checked against the kind's schema now.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub params: Option<Value>,
    /// An input by reference, `{"blob": "sha256:<hex>"}` or `{"job": "<id>"}`: the schedule keeps its own
    /// copy (held against the tenant's byte quota while the schedule lives).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub input: Option<Value>,
    #[serde(default)]
    pub priority: Option<Priority>,
}

/// A recurring schedule.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleView {
    pub id: JobId,
    pub cron: String,
    pub kind: String,
    #[schema(value_type = Object)]
    pub params: Value,
    pub priority: Priority,
    /// The input it was made with, as named (`blob:sha256:<hex>` or `job:<id>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it makes its next job.
    #[serde(with = "time::serde::rfc3339")]
    pub next_at: OffsetDateTime,
    /// The due time of the last job it made, and that job.
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub last_at: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_job: Option<JobId>,
    /// Why its last skipped due time made no job (a quota, the kind gone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ScheduleSkip>,
    /// Jobs it has made, and due times it skipped.
    pub fired: u64,
    pub skipped: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleSkip {
    pub message: String,
    /// The due time that was skipped.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleView>,
}

impl From<ScheduleRecord> for ScheduleView {
    fn from(record: ScheduleRecord) -> Self {
        Self {
            id: record.id,
            params: serde_json::from_str(&record.params).unwrap_or(Value::Null),
            cron: record.cron,
            kind: record.kind,
            priority: record.priority,
            input: record.input,
            created_at: from_millis(record.created_at),
            next_at: from_millis(record.next_at),
            last_at: record.last_at.map(from_millis),
            last_job: record.last_job,
            last_error: record.last_error.map(|(message, at)| ScheduleSkip {
                message,
                at: from_millis(at),
            }),
            fired: record.fired,
            skipped: record.skipped,
        }
    }
}

fn unknown_schedule(id: &str) -> ApiError {
    ApiError::NotFound(format!("no schedule {}", crate::text::capped(id.to_owned(), 80)))
}

/// Create a recurring schedule
#[utoipa::path(
    post,
    path = "/v1/schedules",
    operation_id = "createSchedule",
    tag = tags::JOBS,
    security(("api_key" = [])),
    request_body(content = NewScheduleBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The schedule, with its next due time", body = ScheduleView),
        (status = 400, description = "A bad body or input reference", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The params are over the kind's cap (`max-params`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad cron expression (or one due more often than `KILN_MIN_SCHEDULE_SECS`), an unknown kind, params that do not fit its schema, an input it does not take or that is gone", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The tenant has `KILN_MAX_SCHEDULES_PER_TENANT` schedules already, or its byte quota cannot hold the input copy", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        errors::TenantRoute,
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    body: Result<Json<NewScheduleBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<ScheduleView>), ApiError> {
    let body = super::json_body(body)?;
    let cron = CronExpr::parse(body.cron.trim(), state.config.min_schedule_secs).map_err(ApiError::InvalidSchedule)?;
    let kind = state.catalog.get(&body.kind).ok_or_else(|| {
        ApiError::InvalidSchedule(format!(
            "no job kind named `{}`; GET /v1/kinds lists them",
            crate::text::capped(body.kind.clone(), 80)
        ))
    })?;
    let reference = body.input.map(InputSpec::from_json).transpose()?;
    match (kind.manifest.input, reference.is_some()) {
        (InputPolicy::Required, false) => {
            return Err(ApiError::InvalidSchedule(format!(
                "kind `{}` needs an input: name a blob (`\"input\": {{\"blob\": \"sha256:...\"}}`) or a finished job",
                body.kind
            )));
        }
        (InputPolicy::None, true) => {
            return Err(ApiError::InvalidSchedule(format!(
                "kind `{}` takes no input",
                body.kind
            )));
        }
        _ => {}
    }
    let params = body.params.unwrap_or_else(|| Value::Object(Default::default()));
    kind.validate_params(&params)
        .map_err(|problems| ApiError::InvalidParams(format!("params do not fit kind `{}`: {problems}", body.kind)))?;
    let params = params.to_string();
    let max_params = state.config.max_params(kind.manifest.limits.as_ref());
    if params.len() as u64 > max_params {
        return Err(ApiError::PayloadTooLarge(format!(
            "kind `{}` takes params of at most {} KiB; these have {} bytes",
            body.kind,
            max_params >> 10,
            params.len()
        )));
    }
    let named = reference.as_ref().map(InputSpec::to_string);
    let input = match (&reference, &named) {
        (Some(InputSpec::Blob(hex)), Some(named)) => Some((InputRef::Blob(hex), named.as_str())),
        (Some(InputSpec::Job(id)), Some(named)) => Some((InputRef::JobResult(*id), named.as_str())),
        _ => None,
    };
    let max_input = state.config.max_input(kind.manifest.limits.as_ref());
    let id = JobId::new();
    let first_due = cron
        .next_after(now_millis())
        .ok_or_else(|| ApiError::InvalidSchedule(format!("`{}` has no due time ahead", body.cron)))?;
    let quotas = state.keys.submit_quotas(tenant.as_str(), &state.config.quotas);
    let added = state
        .store
        .add_schedule(&NewSchedule {
            id,
            tenant: tenant.as_str(),
            cron: body.cron.trim(),
            kind: kind.name(),
            params: &params,
            priority: body.priority.unwrap_or_default(),
            input: input.map(|(from, named)| (from, named, max_input)),
            first_due,
            max_schedules: state.config.max_schedules_per_tenant,
            max_bytes: quotas.max_bytes,
        })
        .await?;
    match added {
        Ok(()) => {}
        Err(AddScheduleRefused::Limit(limit)) => {
            return Err(ApiError::TooManyRequests {
                detail: format!(
                    "limit `max-schedules` reached: tenant `{}` has {limit} schedules \
                     (KILN_MAX_SCHEDULES_PER_TENANT); delete one first",
                    tenant.name()
                ),
                retry_after: 60,
            });
        }
        Err(AddScheduleRefused::InputGone) => return Err(input_gone(reference.as_ref())),
        Err(AddScheduleRefused::InputTooBig(limit)) => {
            return Err(ApiError::PayloadTooLarge(format!(
                "kind `{}` takes inputs of at most {limit} bytes; the input named is bigger",
                body.kind
            )));
        }
        Err(AddScheduleRefused::OverBytes(limit)) => {
            return Err(quota_error(
                Quota::Bytes(limit),
                tenant.name(),
                "the schedule's params and input",
            ));
        }
    }
    let record = state
        .store
        .schedule(tenant.as_str(), id)
        .await?
        .ok_or_else(|| unknown_schedule(&id.to_string()))?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// List the tenant's recurring schedules
#[utoipa::path(
    get,
    path = "/v1/schedules",
    operation_id = "listSchedules",
    tag = tags::JOBS,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The tenant's schedules, oldest first", body = ScheduleList),
        errors::TenantRoute,
    ),
)]
pub async fn list(State(state): State<AppState>, tenant: Tenant) -> Result<Json<ScheduleList>, ApiError> {
    let schedules = state.store.schedules(tenant.as_str()).await?;
    Ok(Json(ScheduleList {
        schedules: schedules.into_iter().map(ScheduleView::from).collect(),
    }))
}

/// A recurring schedule
#[utoipa::path(
    get,
    path = "/v1/schedules/{id}",
    operation_id = "getSchedule",
    tag = tags::JOBS,
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The schedule's id")),
    responses(
        (status = 200, description = "The schedule, its next due time and what it did last", body = ScheduleView),
        (status = 404, description = "No such schedule of this tenant", body = Problem, content_type = "application/problem+json"),
        errors::TenantRoute,
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Json<ScheduleView>, ApiError> {
    let parsed: JobId = id.parse().map_err(|_| unknown_schedule(&id))?;
    let record = state
        .store
        .schedule(tenant.as_str(), parsed)
        .await?
        .ok_or_else(|| unknown_schedule(&id))?;
    Ok(Json(record.into()))
}

/// Delete a recurring schedule: it makes no more jobs (the jobs it made stay)
#[utoipa::path(
    delete,
    path = "/v1/schedules/{id}",
    operation_id = "deleteSchedule",
    tag = tags::JOBS,
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The schedule's id")),
    responses(
        (status = 204, description = "Deleted; its input copy is released"),
        (status = 404, description = "No such schedule of this tenant", body = Problem, content_type = "application/problem+json"),
        errors::TenantRoute,
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let parsed: JobId = id.parse().map_err(|_| unknown_schedule(&id))?;
    if !state.store.delete_schedule(tenant.as_str(), parsed).await? {
        return Err(unknown_schedule(&id));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Schedules looked at per tick: more due at once wait for the next tick (a second).
const DUE_PER_TICK: usize = 64;

/// Every second: fires the schedules that are due (see the module doc), until shutdown.
pub async fn fire_due(state: AppState, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = now_millis();
        let due = match state.store.due_schedules(now, DUE_PER_TICK).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the due schedules");
                continue;
            }
        };
        for (tenant, id, at) in due {
            if let Err(e) = fire_one(&state, &tenant, id, at, now).await {
                tracing::warn!(schedule = %id, %tenant, error = %e, "cannot fire a due schedule");
            }
        }
    }
}

/// Fires one due time `due` of schedule `id` (the score seen at `now`).
async fn fire_one(
    state: &AppState,
    tenant: &str,
    id: JobId,
    due: i64,
    now: i64,
) -> Result<(), crate::store::StoreError> {
    let Some(record) = state.store.schedule(tenant, id).await? else {
        return Ok(()); // deleted since the read
    };
    // Checked at creation against the minimum interval then; a later, higher minimum does not stop it.
    let next = CronExpr::parse(&record.cron, 1)
        .ok()
        .and_then(|cron| cron.next_after(now.max(due)))
        .unwrap_or(i64::MAX / 2);
    let kind = state.catalog.get(&record.kind);
    let skip = match &kind {
        None => Some(format!(
            "kind `{}` is not registered (it was deleted); this due time made no job",
            record.kind
        )),
        Some(kind) => serde_json::from_str(&record.params)
            .map_err(|e| e.to_string())
            .and_then(|params| kind.validate_params(&params))
            .err()
            .map(|problems| format!("params no longer fit kind `{}`: {problems}", record.kind)),
    };
    let max_input = kind
        .as_ref()
        .map_or(0, |k| state.config.max_input(k.manifest.limits.as_ref()));
    let job_id = JobId::new();
    let job = NewJob {
        id: job_id,
        tenant,
        kind: &record.kind,
        version: kind.as_ref().map_or("", |k| k.version.as_str()),
        params: &record.params,
        input: crate::store::schedule_job_input(&record, max_input),
        max_attempts: state.config.max_attempts,
        idempotency: None,
        // Every due time runs: a schedule is for work that should happen again.
        cache: None,
        steps: None,
        quotas: state.keys.submit_quotas(tenant, &state.config.quotas),
        priority: record.priority,
        run_at: None,
        retry_of: None,
        callback: None,
    };
    match state.store.fire_schedule(id, due, next, job, skip.as_deref()).await? {
        Fired::Lost => {}
        Fired::Skipped => tracing::info!(schedule = %id, %tenant, reason = skip.as_deref(), "skipped a due time"),
        Fired::Submitted(Submitted::New) => {
            tracing::debug!(schedule = %id, %tenant, job = %job_id, "a schedule made its job");
        }
        Fired::Submitted(refused) => {
            tracing::info!(schedule = %id, %tenant, ?refused, "a due time was refused (recorded on the schedule)");
        }
    }
    Ok(())
}
