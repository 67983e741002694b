//! `POST /v1/pipelines`: several kinds in order on one input, as one job. Everything is checked here,
//! before anything runs: each step's kind exists, its params fit its schema and cap, and it can take
//! the step before's output (its input policy and `input_media_types`). The job then goes through the
//! same routes as any other (status, events, result, cancel, listing); its document shows `steps`.

use super::openapi::{Problem, errors, tags};
use super::submit::{InputSpec, Submission, params_object, read_limited};
use super::{ApiError, AppState};
use crate::auth::Tenant;
use crate::job::JobView;
use crate::kinds::{InputPolicy, Kind};
use crate::pipeline::{MAX_OUTPUTS, MAX_STEPS, PIPELINE_KIND, Plan, PlannedStep, is_valid_output_name};
use crate::store::{NewJob, Submitted};
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// A pipeline to run.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineRequest {
    /// Up to 8 steps, run in order (at least one, unless there are `outputs`).
    #[serde(default)]
    pub steps: Vec<StepRequest>,
    /// Fan-out: up to 8 named outputs, each up to 8 steps run on the shared steps' output; each is a
    /// result of its own (`GET /v1/jobs/{id}/result/{name}`; the first name's is also the job's result).
    #[serde(default)]
    pub outputs: std::collections::BTreeMap<String, Vec<StepRequest>>,
    /// The first step's input, in base64.
    #[serde(default)]
    pub input_base64: Option<String>,
    /// The first step's input by reference: `{"blob": "sha256:..."}` or `{"job": "<id>"}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub input: Option<Value>,
    /// `false`: run every step, even those the result cache could answer.
    #[serde(default)]
    pub cache: Option<bool>,
    /// POST the job's document here when it is final (succeeded, failed or cancelled), signed with the
    /// tenant's webhook secret; http or https, at most 2048 bytes, to a host the operator allows
    /// (`KILN_WEBHOOK_ALLOW`).
    #[serde(default)]
    pub callback_url: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepRequest {
    pub kind: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub params: Option<Value>,
}

/// Run a pipeline
///
/// The steps run in order, each in its own sandbox with its kind's limits, each one's output the next
/// one's input; the last step's output is the result. One job: `GET /v1/jobs/{id}` shows each step's
/// status and timing, progress runs across the steps, a failure names the step, and a retry starts
/// again at the failed step.
#[utoipa::path(
    post,
    path = "/v1/pipelines",
    operation_id = "submitPipeline",
    tag = tags::JOBS,
    security(("api_key" = [])),
    request_body(content = PipelineRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "The pipeline job is queued", body = JobView,
            headers(("Location" = String, description = "The job, `/v1/jobs/{id}`"))),
        (status = 400, description = "Malformed JSON or base64, or both an input and a reference", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body, a step's params or the input is over its limit", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A step names no kind, its params do not fit, it cannot take the step before's output, an input reference is not there, or the callback URL is refused (webhooks off, or a host the operator does not allow)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "A tenant quota is used up", body = Problem, content_type = "application/problem+json"),
        errors::TenantRoute,
    ),
)]
pub async fn submit(State(state): State<AppState>, tenant: Tenant, request: Request) -> Result<Response, ApiError> {
    let body = read_limited(request.into_body(), state.config.max_body_bytes).await?;
    let request: PipelineRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid pipeline JSON: {e}")))?;
    if request.steps.is_empty() && request.outputs.is_empty() {
        return Err(ApiError::InvalidParams(
            "a pipeline needs `steps`, `outputs` or both".into(),
        ));
    }
    if request.outputs.len() > MAX_OUTPUTS {
        return Err(ApiError::InvalidParams(format!(
            "a pipeline has at most {MAX_OUTPUTS} outputs; this one has {}",
            request.outputs.len()
        )));
    }
    let (steps, kinds) = plan_chain(&state, request.steps, None, "step")?;
    let mut outputs = std::collections::BTreeMap::new();
    let mut first_kind = kinds.first().cloned();
    for (name, chain) in request.outputs {
        if !is_valid_output_name(&name) {
            return Err(ApiError::InvalidParams(format!(
                "output name `{}` must be 1-64 of A-Z, a-z, 0-9, `-` and `_`",
                crate::text::capped(name, 80)
            )));
        }
        if chain.is_empty() {
            return Err(ApiError::InvalidParams(format!("output `{name}` has no steps")));
        }
        let (planned, branch) = plan_chain(&state, chain, kinds.last(), &format!("output `{name}` step"))?;
        first_kind = first_kind.or_else(|| branch.first().cloned());
        outputs.insert(name, planned);
    }
    let first = first_kind.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a checked pipeline has no step")))?;
    let input = request
        .input_base64
        .map(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| ApiError::BadRequest(format!("input_base64 is not valid base64: {e}")))
        })
        .transpose()?
        .filter(|bytes| !bytes.is_empty())
        .map(bytes::Bytes::from);
    let input_ref = request.input.map(InputSpec::from_json).transpose()?;
    if input.is_some() && input_ref.is_some() {
        return Err(ApiError::BadRequest(
            "send the input either as `input_base64` or by reference (`input`), not both".into(),
        ));
    }
    match (first.manifest.input, input.is_some() || input_ref.is_some()) {
        (InputPolicy::Required, false) => {
            return Err(ApiError::BadRequest(format!(
                "the first step (`{}`) needs an input: send `input_base64` or an `input` reference",
                first.name()
            )));
        }
        (InputPolicy::None, true) => {
            return Err(ApiError::BadRequest(format!(
                "step 1 (`{}`) takes no input",
                first.name()
            )));
        }
        _ => {}
    }
    let submission = Submission {
        input,
        input_ref,
        callback_url: request.callback_url,
        ..Submission::default()
    };
    let callback = super::jobs::callback(&state, &submission).await?;
    let max_input = state.config.max_input(first.manifest.limits.as_ref());
    let job_input = super::jobs::job_input(&state, &tenant, &submission, max_input).await?;
    let plan = Plan {
        steps,
        outputs,
        cache: request.cache != Some(false),
    };
    let plan_json = serde_json::to_string(&plan).map_err(|e| ApiError::Internal(e.into()))?;
    let pending = serde_json::to_string(&plan.pending()).map_err(|e| ApiError::Internal(e.into()))?;
    let id = crate::job::JobId::new();
    let submitted = state
        .store
        .submit(NewJob {
            id,
            tenant: tenant.as_str(),
            kind: PIPELINE_KIND,
            version: &plan.versions(),
            params: &plan_json,
            input: job_input,
            max_attempts: state.config.max_attempts,
            idempotency: None,
            quotas: state.keys.submit_quotas(tenant.as_str(), &state.config.quotas),
            cache: None,
            steps: Some(&pending),
            priority: crate::job::Priority::default(),
            run_at: None,
            retry_of: None,
            callback,
        })
        .await?;
    match submitted {
        Submitted::New => {}
        Submitted::OverQuota(quota) => {
            return Err(super::jobs::quota_error(
                quota,
                tenant.name(),
                "this pipeline's params and input",
            ));
        }
        Submitted::InputGone => return Err(super::jobs::input_gone(submission.input_ref.as_ref())),
        Submitted::InputTooBig(limit) => {
            return Err(ApiError::PayloadTooLarge(format!(
                "step 1 takes inputs of at most {limit} bytes; the referenced input is bigger"
            )));
        }
        other => {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "a pipeline submit answered {other:?}"
            )));
        }
    }
    let metrics = crate::metrics::global();
    metrics
        .jobs_submitted
        .get_or_create(&metrics.kind_tenant(PIPELINE_KIND, tenant.name()))
        .inc();
    let record = state
        .store
        .get(tenant.as_str(), id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("pipeline job {id} vanished after its submit")))?;
    let location = HeaderValue::try_from(format!("/v1/jobs/{id}")).map_err(|e| ApiError::Internal(e.into()))?;
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(record.view()),
    )
        .into_response())
}

/// Checks one chain of steps (the shared ones, or an output's) and pins each to its kind's current
/// version; `before` is the kind whose output the chain's first step takes (none: the job's input).
/// `label` names the steps in errors (`step`, ``output `small` step``).
fn plan_chain(
    state: &AppState,
    chain: Vec<StepRequest>,
    before: Option<&Arc<Kind>>,
    label: &str,
) -> Result<(Vec<PlannedStep>, Vec<Arc<Kind>>), ApiError> {
    if chain.len() > MAX_STEPS {
        return Err(ApiError::InvalidParams(format!(
            "a chain of steps has 1 to {MAX_STEPS} steps; this one has {}",
            chain.len()
        )));
    }
    let mut kinds: Vec<Arc<Kind>> = Vec::with_capacity(chain.len());
    let mut steps = Vec::with_capacity(chain.len());
    for (index, step) in chain.into_iter().enumerate() {
        let at = format!("{label} {}", index + 1);
        let kind = state
            .catalog
            .get(&step.kind)
            .ok_or_else(|| ApiError::InvalidParams(format!("{at}: no job kind named `{}`", step.kind)))?;
        let params = Value::Object(params_object(step.params)?);
        kind.validate_params(&params).map_err(|problems| {
            ApiError::InvalidParams(format!("{at} (`{}`): params do not fit: {problems}", step.kind))
        })?;
        let max_params = state.config.max_params(kind.manifest.limits.as_ref());
        if params.to_string().len() as u64 > max_params {
            return Err(ApiError::PayloadTooLarge(format!(
                "{at} (`{}`) takes params of at most {} KiB",
                step.kind,
                max_params >> 10
            )));
        }
        if let Some(before) = kinds.last().or(before) {
            check_chain(&at, before, &kind)?;
        }
        steps.push(PlannedStep {
            kind: step.kind,
            version: kind.version.clone(),
            params,
        });
        kinds.push(kind);
    }
    Ok((steps, kinds))
}

/// Whether step `n` can take step `n - 1`'s output: it must take an input, and one of that media type
/// when its manifest lists the types it takes.
fn check_chain(at: &str, before: &Kind, kind: &Kind) -> Result<(), ApiError> {
    if kind.manifest.input == InputPolicy::None {
        return Err(ApiError::InvalidParams(format!(
            "{at} (`{}`) takes no input, so it cannot follow `{}`",
            kind.name(),
            before.name()
        )));
    }
    // A kind may make several types (its params choose one); the step is refused when none is accepted.
    let produced = before.manifest.produces().join(", ");
    if let Some(accepted) = &kind.manifest.input_media_types
        && !before
            .manifest
            .produces()
            .iter()
            .any(|p| accepted.iter().any(|t| t == p))
    {
        return Err(ApiError::InvalidParams(format!(
            "{at} (`{}`) takes {}, but the step before it (`{}`) makes {produced}",
            kind.name(),
            accepted.join(", "),
            before.name()
        )));
    }
    Ok(())
}
