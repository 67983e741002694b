//! Retrying a failed or cancelled job: a new job of the same kind version, params, input and priority.
//! Failed and cancelled jobs keep their params and input for the TTL for this. A job is retried at most
//! once (`submit.lua` checks and marks `retried_as` in the step that queues the new job), so two
//! operators pressing "retry" at once, or a retry of a selection that holds one job twice, run it once.

use super::openapi::{Problem, errors, tags};
use super::{ApiError, AppState};
use crate::auth::Tenant;
use crate::job::{JobId, JobRecord, JobView, Status};
use crate::pipeline::{PIPELINE_KIND, Plan};
use crate::store::{InputRef, JobInput, NewJob, Submitted};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// Why a job could not be retried, as a problem (the same for one job and for a selection).
fn refused(id: JobId, detail: String, extra: Map<String, Value>) -> ApiError {
    tracing::debug!(job = %id, %detail, "retry refused");
    ApiError::Conflict { detail, extra }
}

/// A job retried before: one answer whether the record said so or `submit.lua` found it (a race).
fn retried_already(id: JobId, earlier: JobId) -> ApiError {
    refused(
        id,
        format!("job {id} was retried already, as job {earlier}; retry that one if it failed too"),
        Map::from_iter([("retried_as".to_owned(), Value::from(earlier.to_string()))]),
    )
}

/// Queues a retry of `id` (the tenant's job); the new job's id.
pub(super) async fn retry(state: &AppState, tenant: &str, tenant_name: &str, id: JobId) -> Result<JobId, ApiError> {
    let record = state
        .store
        .get(tenant, id)
        .await?
        .ok_or_else(|| super::jobs::unknown(id))?;
    check_retryable(&record)?;
    let params = state.store.params(tenant, id).await?.ok_or_else(|| {
        refused(
            id,
            format!("job {id} no longer has its params; submit it again"),
            Map::new(),
        )
    })?;
    let steps = pending_steps(&record, &params)?;
    if record.kind != PIPELINE_KIND && state.catalog.pinned(&record.kind, &record.version).await?.is_none() {
        return Err(refused(
            id,
            format!(
                "the version of kind `{}` that job {id} ran on is gone (not in the kind's history any more); \
                 submit it again to run on the current one",
                record.kind
            ),
            Map::new(),
        ));
    }
    let new_id = JobId::new();
    let submitted = state
        .store
        .submit(NewJob {
            id: new_id,
            tenant,
            kind: &record.kind,
            version: &record.version,
            params: &params,
            input: match record.has_input {
                // Accepted once already: no size limit to check again.
                true => JobInput::Copy {
                    from: InputRef::JobInput(id),
                    max_bytes: 0,
                },
                false => JobInput::None,
            },
            max_attempts: state.config.max_attempts,
            idempotency: None,
            // A retry runs: that is what it was asked for.
            cache: None,
            steps: steps.as_deref(),
            quotas: state.keys.submit_quotas(tenant, &state.config.quotas),
            priority: record.priority,
            run_at: None,
            retry_of: Some(id),
            // A retry is the operator's or tenant's own act, answered by this route; it calls no webhook.
            callback: None,
        })
        .await?;
    match submitted {
        Submitted::New => {
            let metrics = crate::metrics::global();
            metrics
                .jobs_submitted
                .get_or_create(&metrics.kind_tenant(&record.kind, tenant_name))
                .inc();
            Ok(new_id)
        }
        Submitted::RetriedAlready(earlier) => Err(retried_already(id, earlier)),
        Submitted::InputGone => Err(refused(
            id,
            format!("the input of job {id} has expired; submit it again"),
            Map::new(),
        )),
        Submitted::OverQuota(quota) => Err(super::jobs::quota_error(
            quota,
            tenant_name,
            "this retry's params and input",
        )),
        other => Err(ApiError::Internal(anyhow::anyhow!(
            "a retry's submit answered {other:?}"
        ))),
    }
}

fn check_retryable(record: &JobRecord) -> Result<(), ApiError> {
    let id = record.id;
    if let Some(earlier) = record.retried_as {
        return Err(retried_already(id, earlier));
    }
    match record.status {
        Status::Failed | Status::Cancelled => Ok(()),
        status => Err(refused(
            id,
            format!(
                "job {id} is {}; only failed or cancelled jobs can be retried",
                status.as_str()
            ),
            Map::from_iter([("job_status".to_owned(), Value::from(status.as_str()))]),
        )),
    }
}

/// A pipeline's steps as they stand before any runs (a retry starts from the first step).
fn pending_steps(record: &JobRecord, params: &str) -> Result<Option<String>, ApiError> {
    if record.kind != PIPELINE_KIND {
        return Ok(None);
    }
    let plan: Plan = serde_json::from_str(params)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("pipeline job {} has a bad plan: {e}", record.id)))?;
    serde_json::to_string(&plan.pending())
        .map(Some)
        .map_err(|e| ApiError::Internal(e.into()))
}

/// Retry a failed or cancelled job
///
/// Queues a new job with the same kind version, params, input and priority (`retry_of` names this one;
/// this one's `retried_as` names it). A job is retried once: retry the new one if it fails too.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/retry",
    operation_id = "retryJob",
    tag = tags::JOBS,
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "The failed or cancelled job"),
        ("tenant" = Option<String>, Query, description = "With the admin key: the tenant whose job this is (a tenant's key may name only itself)"),
    ),
    responses(
        (status = 202, description = "The new job, queued", body = JobView,
            headers(("Location" = String, description = "The new job, `/v1/jobs/{id}`"))),
        (status = 409, description = "The job is not failed or cancelled, was retried already (`retried_as`), or its input, params or kind version are gone", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "A tenant quota is used up (the detail names it)", body = Problem, content_type = "application/problem+json"),
        errors::TenantRoute,
        errors::NoSuchJob,
    ),
)]
pub async fn retry_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
    tenant: Tenant,
) -> Result<Response, ApiError> {
    let id = super::jobs::parse_id(&id)?;
    let new_id = retry(&state, tenant.as_str(), tenant.name(), id).await?;
    let record = state
        .store
        .get(tenant.as_str(), new_id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("retry {new_id} vanished after its submit")))?;
    let location = HeaderValue::try_from(format!("/v1/jobs/{new_id}")).map_err(|e| ApiError::Internal(e.into()))?;
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(record.view()),
    )
        .into_response())
}
