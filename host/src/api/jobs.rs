//! The job routes of HTTP API v1.

use super::openapi::{Problem, SubmitForm, SubmitJson, errors, tags};
use super::submit::InputSpec;
use super::submit::read_submission;
use super::{ApiError, AppState};
use crate::auth::Tenant;
use crate::job::{JobId, JobRecord, JobView, Status, now_millis};
use crate::kinds::InputPolicy;
use crate::result_cache::payload_hash;
use crate::store::{InputRef, JobInput, ListQuery, NewJob, Quota, Submitted};
use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The answer to a used-up quota; `what` names what did not fit (`this job's params and input`).
pub(super) fn quota_error(quota: Quota, tenant: &str, what: &str) -> ApiError {
    match quota {
        Quota::Queued(limit) => ApiError::TooManyRequests {
            detail: format!(
                "quota `max-queued` reached: tenant `{tenant}` already has {limit} jobs waiting; \
                 submit more when some have started"
            ),
            retry_after: 5,
        },
        Quota::Bytes(limit) => ApiError::TooManyRequests {
            detail: format!(
                "quota `max-bytes` reached: tenant `{tenant}` may hold {limit} bytes in Kiln (inputs and \
                 params of waiting jobs, results and logs of finished ones, blobs); submit more when some \
                 have finished or expired"
            ),
            retry_after: 30,
        },
        Quota::TooBig(limit) => ApiError::PayloadTooLarge(format!(
            "{what} are more than tenant `{tenant}` may hold (quota `max-bytes`, {limit} bytes)"
        )),
        Quota::Webhooks(limit) => ApiError::TooManyRequests {
            detail: format!(
                "quota `webhook-max-pending` reached: tenant `{tenant}` has {limit} jobs whose webhooks are not \
                 delivered yet; submit more with a callback_url when some are"
            ),
            retry_after: 30,
        },
        Quota::Rate(limit) => ApiError::TooManyRequests {
            detail: format!("quota `submit-rate` reached: tenant `{tenant}` may submit {limit} jobs per second"),
            retry_after: 1,
        },
    }
}

/// The submission's `callback_url` checked against the operator's allowlist (422 when Kiln will not call
/// it), with the tenant's bound on pending deliveries, as [`NewJob::callback`] takes them.
pub(super) async fn callback<'a>(
    state: &AppState,
    submission: &'a super::submit::Submission,
) -> Result<Option<(&'a str, u64)>, ApiError> {
    let Some(url) = submission.callback_url.as_deref() else {
        return Ok(None);
    };
    state
        .config
        .webhooks
        .allow
        .check(url)
        .await
        .map_err(ApiError::InvalidCallback)?;
    Ok(Some((url, state.config.webhooks.max_pending)))
}

/// A referenced input that is not there (or not the tenant's): refused at submit, never a failed job.
pub(super) fn input_gone(reference: Option<&InputSpec>) -> ApiError {
    match reference {
        Some(InputSpec::Blob(hex)) => ApiError::InvalidReference(format!(
            "no blob `sha256:{hex}`: it was never uploaded by this tenant, or it expired or was deleted \
             (POST /v1/blobs uploads one)"
        )),
        Some(InputSpec::Job(id)) => ApiError::InvalidReference(format!(
            "job {id} has no result to use as input: it is unknown to this tenant, or its result expired"
        )),
        None => ApiError::Internal(anyhow::anyhow!("submit.lua found no input to copy, but none was named")),
    }
}

/// The job's input as the store takes it; a job reference is checked here (it must have succeeded),
/// a blob in the submit script.
pub(super) async fn job_input<'a>(
    state: &AppState,
    tenant: &Tenant,
    submission: &'a super::submit::Submission,
    max_bytes: u64,
) -> Result<JobInput<'a>, ApiError> {
    Ok(match (&submission.input, &submission.input_ref) {
        (Some(bytes), _) => JobInput::Bytes(bytes),
        (None, Some(InputSpec::Blob(hex))) => JobInput::Copy {
            from: InputRef::Blob(hex),
            max_bytes,
        },
        (None, Some(reference @ InputSpec::Job(id))) => {
            let record = state
                .store
                .get(tenant.as_str(), *id)
                .await?
                .ok_or_else(|| input_gone(Some(reference)))?;
            if record.status != Status::Succeeded {
                return Err(ApiError::InvalidReference(format!(
                    "job {id} is {}, not succeeded: only a finished job's result can be an input",
                    record.status.as_str()
                )));
            }
            JobInput::Copy {
                from: InputRef::JobResult(*id),
                max_bytes,
            }
        }
        (None, None) => JobInput::None,
    })
}

/// `POST /v1/jobs/{kind}`'s query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitQuery {
    wait: Option<String>,
    /// Run on this version of the kind (one of `GET /v1/kinds/{name}/versions`), not the current one.
    version: Option<String>,
    /// `?tenant=NAME`, read by the `Tenant` extractor.
    #[serde(rename = "tenant")]
    _tenant: Option<serde::de::IgnoredAny>,
}

/// Submit a job
///
/// The path segment is the job kind's name (`POST /v1/jobs/{kind}`; axum routes it as `{id}`, shared
/// with the job routes). With `?wait=N` or `Prefer: wait=N` (N ≤ 60), it waits for the job like a
/// function call: the PNG (`200`) if it succeeds within N seconds, a `409` problem if it fails, else
/// the usual `202`.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}",
    operation_id = "submitJob",
    tag = tags::JOBS,
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "For a submit, the job kind's name, e.g. `crop` (GET /v1/kinds lists them)"),
        ("wait" = Option<u32>, Query, minimum = 0, maximum = 60,
            description = "Wait up to this many seconds for the job to finish"),
        ("version" = Option<String>, Query,
            description = "Run on this version of the kind (one of `GET /v1/kinds/{name}/versions`), not the current one"),
        ("Prefer" = Option<String>, Header, description = "`wait=N`, the header form of `?wait=N` (RFC 7240)"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
            description = "1-255 visible ASCII characters; the same key with the same payload within the job TTL queues nothing"),
    ),
    request_body(
        description = "The params, and the input file if the kind takes one",
        content((SubmitJson = "application/json"), (SubmitForm = "multipart/form-data")),
    ),
    responses(
        (status = 200, description = "With `wait`, the job's result (in the kind's output media type); with an \
            `Idempotency-Key` sent before, the first job's current document",
            content(("image/png"), (JobView = "application/json")),
            headers(
                ("Location" = String, description = "The job, `/v1/jobs/{id}`"),
                ("Idempotent-Replayed" = String, description = "`true` when the key named an earlier job"),
            )),
        (status = 202, description = "The job is queued", body = JobView,
            headers(("Location" = String, description = "The job, `/v1/jobs/{id}`"))),
        (status = 400, description = "Bad JSON, multipart, base64, query or header, or a missing or unexpected input", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No kind has this name", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "With `wait`: the job failed or was cancelled (with `job_status` and `error`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over the limit, the params over the kind's cap (`max-params`), or the job bigger than the tenant's byte quota (`max-bytes`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither JSON nor multipart", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The params do not fit the kind's schema, `version` is not one of the kind's, the Idempotency-Key was used for another payload, or the callback URL is refused (webhooks off, or a host the operator does not allow)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "A tenant quota is used up (the detail names it)", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        errors::TenantRoute,
    ),
)]
pub async fn submit(
    State(state): State<AppState>,
    Path(kind_name): Path<String>,
    tenant: Tenant,
    query: Result<Query<SubmitQuery>, axum::extract::rejection::QueryRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(format!("bad query: {}", e.body_text())))?;
    let wait = match query.wait {
        Some(wait) => super::events::parse_wait(Some(&wait))?,
        None => prefer_wait(request.headers())?,
    };
    let _slot = wait.map(|_| state.streams.take(&tenant)).transpose()?;
    let kind = state
        .catalog
        .get(&kind_name)
        .ok_or_else(|| ApiError::NotFound(format!("no job kind named `{kind_name}`; GET /v1/kinds lists them")))?;
    let kind = match query.version.as_deref() {
        Some(version) if version != kind.version => state
            .catalog
            .pinned(&kind_name, version)
            .await?
            .ok_or_else(|| super::kinds::unknown_version(&kind_name, version))?,
        _ => kind,
    };
    let idempotency_key = idempotency_key(request.headers())?;
    let headers = request.headers().clone();
    let mut submission = read_submission(request, state.config.max_body_bytes).await?;
    if let (Some(input), Some(max_mb)) = (
        &submission.input,
        kind.manifest.limits.as_ref().and_then(|l| l.max_input_mb),
    ) && input.len() as u64 > max_mb << 20
    {
        return Err(ApiError::PayloadTooLarge(format!(
            "kind `{kind_name}` takes inputs of at most {max_mb} MiB; this one has {} bytes",
            input.len()
        )));
    }
    let has_input = submission.input.is_some() || submission.input_ref.is_some();
    match (kind.manifest.input, has_input) {
        (InputPolicy::Required, false) => {
            return Err(ApiError::BadRequest(format!(
                "kind `{kind_name}` needs an input: send it as the `input` multipart part or as `input_base64`, \
                 or name a blob or a finished job (`\"input\": {{\"blob\": \"sha256:...\"}}` or `{{\"job\": \"...\"}}`)"
            )));
        }
        (InputPolicy::None, true) => {
            return Err(ApiError::BadRequest(format!("kind `{kind_name}` takes no input")));
        }
        _ => {}
    }
    super::submit::resolve_auto_format(&mut submission.params, &kind.manifest, &headers);
    let params = Value::Object(std::mem::take(&mut submission.params));
    kind.validate_params(&params)
        .map_err(|problems| ApiError::InvalidParams(format!("params do not fit kind `{kind_name}`: {problems}")))?;

    let id = JobId::new();
    let payload_hash = idempotency_key.as_ref().map(|_| {
        // A pinned version is part of the payload: the same key may not run the kind at another one.
        let target = query
            .version
            .as_ref()
            .map_or(kind_name.clone(), |v| format!("{kind_name}@{v}"));
        let reference = submission.input_ref.as_ref().map(InputSpec::to_string);
        let input = submission.input.as_deref().or(reference.as_deref().map(str::as_bytes));
        payload_hash(&target, &params, input)
    });
    let cache = result_cache_key(&kind, &submission, &params);
    let params = params.to_string();
    let max_params = state.config.max_params(kind.manifest.limits.as_ref());
    if params.len() as u64 > max_params {
        return Err(ApiError::PayloadTooLarge(format!(
            "kind `{kind_name}` takes params of at most {} KiB (limit `max-params`, as compact JSON); \
             these have {} bytes",
            max_params >> 10,
            params.len()
        )));
    }
    // A referenced input may be as big as the kind takes, or as an upload may be.
    let max_input = state.config.max_input(kind.manifest.limits.as_ref());
    let input = job_input(&state, &tenant, &submission, max_input).await?;
    let callback = callback(&state, &submission).await?;
    let now = now_millis();
    let run_at = submission
        .schedule
        .map(|s| s.due_millis(now))
        .transpose()?
        .filter(|at| *at > now);
    // Taken before the job exists, so an invoke cannot miss its end however fast the worker is.
    let watch = wait.map(|wait| (wait, state.changes.watch()));
    let submitted = state
        .store
        .submit(NewJob {
            id,
            tenant: tenant.as_str(),
            kind: kind.name(),
            version: &kind.version,
            params: &params,
            input,
            max_attempts: state.config.max_attempts,
            idempotency: idempotency_key.as_deref().zip(payload_hash.as_deref()),
            cache: cache.as_deref(),
            steps: None,
            quotas: state.keys.submit_quotas(tenant.as_str(), &state.config.quotas),
            priority: submission.priority,
            run_at,
            retry_of: None,
            callback,
        })
        .await?;
    match submitted {
        Submitted::New => {
            let metrics = crate::metrics::global();
            metrics
                .jobs_submitted
                .get_or_create(&metrics.kind_tenant(kind.name(), tenant.name()))
                .inc();
        }
        Submitted::Cached(earlier) => {
            let metrics = crate::metrics::global();
            metrics
                .jobs_cached
                .get_or_create(&metrics.kind_tenant(kind.name(), tenant.name()))
                .inc();
            tracing::debug!(job = %id, from = %earlier, "answered from the result cache");
            let location = HeaderValue::try_from(format!("/v1/jobs/{id}")).map_err(|e| ApiError::Internal(e.into()))?;
            if wait.is_some() {
                let (record, data) = state
                    .store
                    .get_with_result(tenant.as_str(), id)
                    .await?
                    .ok_or_else(|| unknown(id))?;
                let mut response = result_response(&record, data).into_response();
                response.headers_mut().insert(header::LOCATION, location);
                return Ok(response);
            }
            let record = state.store.get(tenant.as_str(), id).await?.ok_or_else(|| unknown(id))?;
            // Succeeded already: `200` (nothing was queued), like an invoke that finished in time.
            return Ok((StatusCode::OK, [(header::LOCATION, location)], Json(record.view())).into_response());
        }
        Submitted::Existing(earlier) => {
            // A replay: the job the key was first used for, as it is now; `200`, not `202`, since
            // nothing new was accepted.
            let record = state
                .store
                .get(tenant.as_str(), earlier)
                .await?
                .ok_or_else(|| unknown(earlier))?;
            let location =
                HeaderValue::try_from(format!("/v1/jobs/{earlier}")).map_err(|e| ApiError::Internal(e.into()))?;
            return Ok((
                StatusCode::OK,
                [
                    (header::LOCATION, location),
                    (IDEMPOTENT_REPLAYED, HeaderValue::from_static("true")),
                ],
                Json(record.view()),
            )
                .into_response());
        }
        Submitted::OverQuota(quota) => return Err(quota_error(quota, tenant.name(), "this job's params and input")),
        Submitted::InputGone => return Err(input_gone(submission.input_ref.as_ref())),
        Submitted::InputTooBig(limit) => {
            return Err(ApiError::PayloadTooLarge(format!(
                "kind `{kind_name}` takes inputs of at most {limit} bytes; the referenced input is bigger"
            )));
        }
        Submitted::KeyReused(earlier) => {
            return Err(ApiError::IdempotencyKeyReused(format!(
                "this Idempotency-Key was used for job {earlier} with a different kind, params or input; \
                 use a new key for a new job"
            )));
        }
        Submitted::RetriedAlready(_) => {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "a submit that retries nothing was refused as a retry"
            )));
        }
    }
    let record = JobRecord {
        id,
        tenant: tenant.id.clone(),
        kind: kind_name,
        version: kind.version.clone(),
        status: if run_at.is_some() {
            Status::Scheduled
        } else {
            Status::Queued
        },
        priority: submission.priority,
        run_at,
        schedule: None,
        progress: 0.0,
        attempts: 0,
        max_attempts: state.config.max_attempts,
        created_at: id.created_millis().unwrap_or_else(now_millis),
        started_at: None,
        finished_at: None,
        expires_at: None,
        error: None,
        media_type: None,
        cached: false,
        steps: None,
        has_input,
        retry_of: None,
        retried_as: None,
    };
    let location = HeaderValue::try_from(format!("/v1/jobs/{id}")).map_err(|e| ApiError::Internal(e.into()))?;
    if let Some((wait, mut watch)) = watch {
        let deadline = tokio::time::Instant::now() + wait;
        let finished = super::events::until_final(&state.store, &mut watch, tenant.as_str(), &record, deadline).await?;
        if finished.status.is_final() {
            let (finished, data) = state
                .store
                .get_with_result(tenant.as_str(), id)
                .await?
                .ok_or_else(|| unknown(id))?;
            let mut response = result_response(&finished, data).into_response();
            response.headers_mut().insert(header::LOCATION, location);
            return Ok(response);
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(record.view()),
    )
        .into_response())
}

/// `Prefer: wait=N` (RFC 7240), the header form of `?wait=N`.
pub(super) fn prefer_wait(headers: &HeaderMap) -> Result<Option<std::time::Duration>, ApiError> {
    let wait = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|pref| pref.trim().strip_prefix("wait="));
    super::events::parse_wait(wait)
}

/// Marks the answer to a submit whose `Idempotency-Key` named an earlier job.
const IDEMPOTENT_REPLAYED: header::HeaderName = header::HeaderName::from_static("idempotent-replayed");
/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The `Idempotency-Key` header, if sent: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .filter(|key| (1..=MAX_IDEMPOTENCY_KEY).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()))
        .map(|key| Some(key.to_owned()))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters (e.g. a UUID)"
            ))
        })
}

/// The result-cache key of a submit, or `None` when it may not be answered from the cache: the submit
/// said `"cache": false`, the kind is not deterministic, or the input is another job's result (whose
/// bytes the API does not hash). An input is named by the SHA-256 of its bytes, so an upload and a blob
/// of the same bytes share entries.
fn result_cache_key(
    kind: &crate::kinds::Kind,
    submission: &super::submit::Submission,
    params: &Value,
) -> Option<String> {
    if submission.cache == Some(false) || kind.manifest.deterministic == Some(false) {
        return None;
    }
    let input = match (&submission.input, &submission.input_ref) {
        (Some(bytes), _) => Some(crate::kinds::component_hash(bytes)),
        (None, Some(InputSpec::Blob(hex))) => Some(hex.clone()),
        (None, Some(InputSpec::Job(_))) => return None,
        (None, None) => None,
    };
    Some(crate::result_cache::key(&kind.version, params, input.as_deref()))
}

pub(super) fn parse_id(id: &str) -> Result<JobId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::NotFound(format!("no job with id `{id}`")))
}

pub(super) fn unknown(id: JobId) -> ApiError {
    ApiError::NotFound(format!("no job with id `{id}` (it never existed, or it expired)"))
}

/// Cancel a job
///
/// Queued or running → cancelled; finished → 409.
#[utoipa::path(
    delete,
    path = "/v1/jobs/{id}",
    operation_id = "cancelJob",
    tag = tags::JOBS,
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "The job's id"),
        ("tenant" = Option<String>, Query, description = "With the admin key: the tenant whose jobs these are (a tenant's key may name only itself)"),
    ),
    responses(
        (status = 200, description = "The job, now cancelled", body = JobView),
        (status = 409, description = "The job already finished (with `job_status` and `error`)", body = Problem, content_type = "application/problem+json"),
        errors::TenantRoute,
        errors::NoSuchJob,
    ),
)]
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    tenant: Tenant,
) -> Result<Json<JobView>, ApiError> {
    let id = parse_id(&id)?;
    let before = state
        .store
        .cancel(tenant.as_str(), id)
        .await?
        .ok_or_else(|| unknown(id))?;
    let record = state.store.get(tenant.as_str(), id).await?.ok_or_else(|| unknown(id))?;
    if before.is_final() {
        return Err(ApiError::Conflict {
            detail: already_finished(id, before),
            extra: job_state(&record),
        });
    }
    Ok(Json(record.view()))
}

/// Why a job that already finished cannot be cancelled.
pub(super) fn already_finished(id: JobId, status: Status) -> String {
    format!(
        "job {id} already finished ({}); there is nothing to cancel",
        status.as_str()
    )
}

/// A job's log
///
/// What the guest logged in its last attempt (host `log` calls, then captured stdout/stderr), as plain
/// text, at most 64 KiB; empty until an attempt ends.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/log",
    operation_id = "getJobLog",
    tag = tags::JOBS,
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The log", body = String, content_type = "text/plain"),
        errors::TenantRoute,
        errors::NoSuchJob,
    ),
)]
pub async fn log(State(state): State<AppState>, Path(id): Path<String>, tenant: Tenant) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    state.store.get(tenant.as_str(), id).await?.ok_or_else(|| unknown(id))?;
    let log = state.store.log(tenant.as_str(), id).await?.unwrap_or_default();
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], log).into_response())
}

/// A job's params
///
/// What the job was asked to do, as submitted. Kept until the job succeeds; a failed or cancelled job
/// keeps them for its TTL.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/params",
    operation_id = "getJobParams",
    tag = tags::JOBS,
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "The job's id"),
        ("tenant" = Option<String>, Query, description = "With the admin key: the tenant whose job this is (a tenant's key may name only itself)"),
    ),
    responses(
        (status = 200, description = "The params", body = Object),
        (status = 404, description = "No such job, or it succeeded (its params are not kept)", body = Problem, content_type = "application/problem+json"),
        errors::TenantRoute,
    ),
)]
pub async fn params(
    State(state): State<AppState>,
    Path(id): Path<String>,
    tenant: Tenant,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let params = state.store.params(tenant.as_str(), id).await?;
    let record = state.store.get(tenant.as_str(), id).await?.ok_or_else(|| unknown(id))?;
    let params = params.ok_or_else(|| {
        ApiError::NotFound(format!(
            "job {id} is {} and its params are not kept (a succeeded job's are deleted)",
            record.status.as_str()
        ))
    })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], params).into_response())
}

/// Download a job's result
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/result",
    operation_id = "getJobResult",
    tag = tags::JOBS,
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The result, in the kind's output media type", content_type = "image/png",
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"<id>.<ext>\"`: png, jpg, webp or gif by the media type"))),
        (status = 404, description = "No such job (or another tenant's, or expired), or its result expired", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has not finished, failed or was cancelled (with `job_status` and `error`)", body = Problem, content_type = "application/problem+json"),
        errors::TenantRoute,
    ),
)]
pub async fn result(
    State(state): State<AppState>,
    Path(id): Path<String>,
    tenant: Tenant,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let (record, data) = state
        .store
        .get_with_result(tenant.as_str(), id)
        .await?
        .ok_or_else(|| unknown(id))?;
    result_response(&record, data)
}

/// The result as a download (`200`), or a `409` problem that says why there is none.
/// Download one named result of a pipeline
///
/// A pipeline with `outputs` has one result per output name.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/result/{name}",
    operation_id = "getJobNamedResult",
    tag = tags::JOBS,
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "The pipeline job's id"),
        ("name" = String, Path, description = "One of its outputs' names"),
    ),
    responses(
        (status = 200, description = "The output, in its last step's media type", content_type = "image/png"),
        (status = 404, description = "No such job or output, or the result expired", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has not finished, failed or was cancelled", body = Problem, content_type = "application/problem+json"),
        errors::TenantRoute,
    ),
)]
pub async fn named_result(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    tenant: Tenant,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let mut record = state.store.get(tenant.as_str(), id).await?.ok_or_else(|| unknown(id))?;
    // The output's media type is its last step's.
    let media_type = record
        .steps
        .iter()
        .flatten()
        .rfind(|step| step.output.as_deref() == Some(name.as_str()))
        .map(|step| step.media_type.clone())
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "job {id} has no output named `{}`",
                crate::text::capped(name.clone(), 80)
            ))
        })?;
    let data = if record.status == Status::Succeeded {
        state.store.named_result(tenant.as_str(), id, &name).await?
    } else {
        None
    };
    record.media_type = media_type;
    result_response(&record, data)
}

fn result_response(record: &JobRecord, data: Option<bytes::Bytes>) -> Result<Response, ApiError> {
    let id = record.id;
    let detail = match record.status {
        Status::Succeeded => match data {
            Some(data) => {
                let media_type = record.media_type.as_deref().unwrap_or("application/octet-stream");
                let extension = match media_type {
                    "image/png" => "png",
                    "image/jpeg" => "jpg",
                    "image/webp" => "webp",
                    "image/gif" => "gif",
                    _ => "bin",
                };
                let mut headers = HeaderMap::new();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_str(media_type).map_err(|e| ApiError::Internal(e.into()))?,
                );
                headers.insert(
                    header::CONTENT_DISPOSITION,
                    HeaderValue::try_from(format!("attachment; filename=\"{id}.{extension}\""))
                        .map_err(|e| ApiError::Internal(e.into()))?,
                );
                return Ok((headers, data).into_response());
            }
            None => return Err(ApiError::NotFound(format!("the result of job {id} has expired"))),
        },
        Status::Failed => format!(
            "job {id} failed: {}",
            record
                .error
                .as_ref()
                .map_or("unknown error".into(), ToString::to_string)
        ),
        Status::Cancelled => format!("job {id} was cancelled; it has no result"),
        Status::Scheduled | Status::Queued | Status::Running => {
            format!(
                "job {id} is {} and has no result yet; poll GET /v1/jobs/{id}",
                record.status.as_str()
            )
        }
    };
    Err(ApiError::Conflict {
        detail,
        extra: job_state(record),
    })
}

/// The job's status and error, added to 409 problems so clients need no second request.
fn job_state(record: &JobRecord) -> Map<String, Value> {
    let mut extra = Map::new();
    extra.insert("job_status".into(), Value::from(record.status.as_str()));
    if let Some(error) = &record.error {
        extra.insert("error".into(), serde_json::to_value(error).unwrap_or(Value::Null));
    }
    extra
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    status: Option<String>,
    kind: Option<String>,
    error: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    /// `?tenant=NAME`: read by the `Tenant` extractor on a tenant's listing, a filter on the admin's.
    pub(super) tenant: Option<String>,
}

impl ListParams {
    /// The store's query, every value checked (400 naming the bad one).
    pub(super) fn query(self) -> Result<ListQuery, ApiError> {
        let status = self
            .status
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<Status>())
            .transpose()
            .map_err(ApiError::BadRequest)?;
        let limit = match self.limit.as_deref() {
            None | Some("") => DEFAULT_PAGE,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "limit must be a whole number from 1 to {MAX_PAGE}, not `{raw}`"
                    ))
                })?,
        };
        let cursor = self
            .cursor
            .filter(|c| !c.is_empty())
            .map(|c| {
                c.parse::<JobId>()
                    .map_err(|_| ApiError::BadRequest(format!("cursor `{c}` is not one Kiln gave out")))
            })
            .transpose()?;
        let error_code = self
            .error
            .filter(|c| !c.is_empty())
            .map(|c| {
                c.parse::<crate::job::ErrorCode>()
                    .map(|code| code.as_str().to_owned())
                    .map_err(|_| {
                        ApiError::BadRequest(format!(
                            "error `{}` is not one of Kiln's job error codes (such as `timeout`, `trap`, `invalid-input`)",
                            crate::text::capped(c, 40)
                        ))
                    })
            })
            .transpose()?;
        Ok(ListQuery {
            status,
            kind: self.kind.filter(|k| !k.is_empty()),
            error_code,
            since: self.since.as_deref().map(|t| time_bound("since", t)).transpose()?,
            until: self.until.as_deref().map(|t| time_bound("until", t)).transpose()?,
            limit,
            cursor,
        })
    }
}

/// A listing's `since`/`until`: an RFC 3339 time, as Unix ms.
fn time_bound(name: &str, raw: &str) -> Result<i64, ApiError> {
    time::OffsetDateTime::parse(raw.trim(), &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "{name} must be an RFC 3339 time such as 2026-12-01T09:30:00Z, not `{}`",
                crate::text::capped(raw.to_owned(), 40)
            ))
        })
}

/// A page of jobs, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobList {
    jobs: Vec<JobView>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// Most jobs one page may hold.
pub const MAX_PAGE: usize = 100;
const DEFAULT_PAGE: usize = 20;

/// List jobs
///
/// The tenant's jobs, newest first.
#[utoipa::path(
    get,
    path = "/v1/jobs",
    operation_id = "listJobs",
    tag = tags::JOBS,
    security(("api_key" = [])),
    params(
        ("status" = Option<Status>, Query, description = "Only jobs in this state (`failed` is the dead-letter view)"),
        ("kind" = Option<String>, Query, description = "Only jobs of this kind"),
        ("error" = Option<String>, Query, description = "Only jobs with this error code (e.g. `timeout`)"),
        ("since" = Option<String>, Query, description = "Only jobs created at or after this time (RFC 3339)"),
        ("until" = Option<String>, Query, description = "Only jobs created before this time (RFC 3339)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Jobs per page (20 by default)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("tenant" = Option<String>, Query, description = "With the admin key: the tenant whose jobs these are (a tenant's key may name only itself)"),
    ),
    responses(
        (status = 200, description = "A page of jobs", body = JobList),
        (status = 400, description = "A bad status, error code, time, limit or cursor", body = Problem, content_type = "application/problem+json"),
        errors::TenantRoute,
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
    query: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<JobList>, ApiError> {
    let Query(params) = query.map_err(|e| ApiError::BadRequest(format!("bad query: {}", e.body_text())))?;
    let query = params.query()?;
    let (jobs, next) = state.store.list(tenant.as_str(), &query).await?;
    Ok(Json(JobList {
        jobs: jobs.iter().map(JobRecord::view).collect(),
        next_cursor: next.map(|id| id.to_string()),
    }))
}
