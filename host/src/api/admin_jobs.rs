//! The operator's view over every tenant's jobs (admin): one listing across tenants, cancel or retry a
//! selection at once, and retry a kind's failed (dead-letter) jobs. The web page's console calls these;
//! so can curl and `kiln admin`.

use super::jobs::ListParams;
use super::openapi::{Problem, errors, tags};
use super::{ApiError, AppState, json_body};
use crate::auth::{Admin, name_of_id};
use crate::job::{JobId, JobRecord, JobView, Status};
use crate::store::ListQuery;
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

/// Tenants one cross-tenant listing visits at most (those with jobs within the TTL, in name order).
pub const MAX_TENANTS_LISTED: usize = 1000;
/// Jobs one bulk request may name.
pub const MAX_SELECTION: usize = 100;
/// Failed jobs one `retry-failed` call retries at most; call again for more.
pub const MAX_RETRIED_PER_CALL: usize = 1000;

/// A job with the name of its tenant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantJob {
    pub tenant: String,
    #[serde(flatten)]
    pub job: JobView,
}

/// A page of every tenant's jobs, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AllJobs {
    jobs: Vec<TenantJob>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// Every tenant's jobs matching `query`, newest first, and the cursor of the next page. Each tenant's
/// own listing answers up to a page, resuming at the cursor (ids sort by creation time across tenants),
/// and the newest of all of them make the page.
async fn list_across(
    state: &AppState,
    tenants: &[String],
    query: &ListQuery,
) -> Result<(Vec<(String, JobRecord)>, Option<JobId>), ApiError> {
    let mut jobs = Vec::new();
    let mut more = false;
    for tenant in tenants.iter().take(MAX_TENANTS_LISTED) {
        let (records, next) = state.store.list(tenant, query).await?;
        more |= next.is_some();
        jobs.extend(records.into_iter().map(|record| (tenant.clone(), record)));
    }
    jobs.sort_by_key(|(_, record)| std::cmp::Reverse(record.id.0));
    more |= jobs.len() > query.limit;
    jobs.truncate(query.limit);
    let next = more.then(|| jobs.last().map(|(_, record)| record.id)).flatten();
    Ok((jobs, next))
}

/// The tenants a request names (`?tenant=NAME`), or all with jobs.
async fn tenants_named(state: &AppState, name: Option<&str>) -> Result<Vec<String>, ApiError> {
    match name.filter(|n| !n.is_empty()) {
        Some(name) => Ok(vec![state.keys.tenant_named(name).await?]),
        None => Ok(state.store.indexed_tenants().await?),
    }
}

/// List every tenant's jobs (admin)
///
/// Newest first, across tenants (at most 1000 tenants are visited), with the filters of `GET /v1/jobs`.
#[utoipa::path(
    get,
    path = "/v1/admin/jobs",
    operation_id = "listAllJobs",
    tag = tags::ADMIN,
    security(("admin_key" = [])),
    params(
        ("tenant" = Option<String>, Query, description = "Only this tenant's jobs"),
        ("status" = Option<Status>, Query, description = "Only jobs in this state"),
        ("kind" = Option<String>, Query, description = "Only jobs of this kind"),
        ("error" = Option<String>, Query, description = "Only jobs with this error code"),
        ("since" = Option<String>, Query, description = "Only jobs created at or after this time (RFC 3339)"),
        ("until" = Option<String>, Query, description = "Only jobs created before this time (RFC 3339)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Jobs per page (20 by default)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of jobs", body = AllJobs),
        (status = 400, description = "A bad filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No tenant has this name", body = Problem, content_type = "application/problem+json"),
        errors::AdminRoute,
    ),
)]
pub async fn list_all(
    State(state): State<AppState>,
    _admin: Admin,
    query: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AllJobs>, ApiError> {
    let Query(params) = query.map_err(|e| ApiError::BadRequest(format!("bad query: {}", e.body_text())))?;
    let tenants = tenants_named(&state, params.tenant.as_deref()).await?;
    let query = params.query()?;
    let (jobs, next) = list_across(&state, &tenants, &query).await?;
    Ok(Json(AllJobs {
        jobs: jobs
            .into_iter()
            .map(|(tenant, record)| TenantJob {
                tenant: name_of_id(&tenant).to_owned(),
                job: record.view(),
            })
            .collect(),
        next_cursor: next.map(|id| id.to_string()),
    }))
}

/// One job of a selection.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Selected {
    /// The tenant's name.
    pub tenant: String,
    pub id: String,
}

/// Jobs to act on at once (at most 100).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    pub jobs: Vec<Selected>,
}

/// What became of one job of a selection.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Done {
    pub tenant: String,
    pub id: String,
    /// Whether the action was taken.
    pub ok: bool,
    /// The HTTP status the single-job route would have answered (200, 202, 404, 409, 429, ...).
    pub status: u16,
    /// The new job, for a retry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<JobId>,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Each job's outcome, in the order asked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SelectionDone {
    pub results: Vec<Done>,
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Cancel,
    Retry,
}

/// Takes `action` on one selected job: `Ok(new job)` for a retry, `Ok(None)` for a cancel.
async fn act(state: &AppState, action: Action, tenant: &str, id: JobId) -> Result<Option<JobId>, ApiError> {
    match action {
        Action::Retry => super::retry::retry(state, tenant, name_of_id(tenant), id)
            .await
            .map(Some),
        Action::Cancel => match state.store.cancel(tenant, id).await? {
            None => Err(super::jobs::unknown(id)),
            Some(before) if before.is_final() => Err(ApiError::Conflict {
                detail: super::jobs::already_finished(id, before),
                extra: Default::default(),
            }),
            Some(_) => Ok(None),
        },
    }
}

async fn act_on_selection(
    state: &AppState,
    action: Action,
    selection: Selection,
) -> Result<Json<SelectionDone>, ApiError> {
    if selection.jobs.len() > MAX_SELECTION {
        return Err(ApiError::BadRequest(format!(
            "a selection holds at most {MAX_SELECTION} jobs; this one has {}",
            selection.jobs.len()
        )));
    }
    let mut results = Vec::with_capacity(selection.jobs.len());
    for Selected { tenant, id } in selection.jobs {
        let outcome = match (state.keys.tenant_named(&tenant).await, id.parse::<JobId>()) {
            (Err(e), _) => Err(e),
            (_, Err(_)) => Err(ApiError::NotFound(format!(
                "no job with id `{}`",
                crate::text::capped(id.clone(), 40)
            ))),
            (Ok(tenant_id), Ok(job)) => act(state, action, &tenant_id, job).await,
        };
        let done = match outcome {
            Ok(job) => Done {
                tenant,
                id,
                ok: true,
                status: if job.is_some() { 202 } else { 200 },
                job,
                detail: None,
            },
            // Redis trouble fails the whole request (503), not one entry.
            Err(e @ ApiError::Unavailable(_)) => return Err(e),
            Err(e) => Done {
                tenant,
                id,
                ok: false,
                status: e.parts().0.as_u16(),
                job: None,
                detail: Some(e.to_string()),
            },
        };
        results.push(done);
    }
    Ok(Json(SelectionDone { results }))
}

/// Cancel a selection of jobs (admin)
///
/// Each one as `DELETE /v1/jobs/{id}` would; the answer says what became of each.
#[utoipa::path(
    post,
    path = "/v1/admin/jobs/cancel",
    operation_id = "cancelJobs",
    tag = tags::ADMIN,
    security(("admin_key" = [])),
    request_body(content = Selection, content_type = "application/json"),
    responses(
        (status = 200, description = "What became of each job", body = SelectionDone),
        (status = 400, description = "A bad body, or more than 100 jobs", body = Problem, content_type = "application/problem+json"),
        errors::AdminRoute,
    ),
)]
pub async fn cancel_selection(
    State(state): State<AppState>,
    _admin: Admin,
    body: Result<Json<Selection>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<SelectionDone>, ApiError> {
    act_on_selection(&state, Action::Cancel, json_body(body)?).await
}

/// Retry a selection of jobs (admin)
///
/// Each one as `POST /v1/jobs/{id}/retry` would; the answer names each new job.
#[utoipa::path(
    post,
    path = "/v1/admin/jobs/retry",
    operation_id = "retryJobs",
    tag = tags::ADMIN,
    security(("admin_key" = [])),
    request_body(content = Selection, content_type = "application/json"),
    responses(
        (status = 200, description = "What became of each job", body = SelectionDone),
        (status = 400, description = "A bad body, or more than 100 jobs", body = Problem, content_type = "application/problem+json"),
        errors::AdminRoute,
    ),
)]
pub async fn retry_selection(
    State(state): State<AppState>,
    _admin: Admin,
    body: Result<Json<Selection>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<SelectionDone>, ApiError> {
    act_on_selection(&state, Action::Retry, json_body(body)?).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryFailedQuery {
    tenant: Option<String>,
}

/// What `retry-failed` did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RetriedFailed {
    /// Failed jobs retried (a new job each).
    pub retried: usize,
    /// Failed jobs that could not be (the first 20, with why).
    pub refused: Vec<Done>,
    /// More failed jobs may remain (the call stopped at 1000): call again.
    pub more: bool,
}

/// Retry a kind's failed jobs (admin)
///
/// The dead-letter set: every failed job of the kind within the TTL that was not retried yet (of one
/// tenant with `?tenant=`), up to 1000 a call, each as `POST /v1/jobs/{id}/retry` would.
#[utoipa::path(
    post,
    path = "/v1/kinds/{name}/retry-failed",
    operation_id = "retryFailedJobs",
    tags = [tags::KINDS, tags::ADMIN],
    security(("admin_key" = [])),
    params(
        ("name" = String, Path, description = "The kind's name"),
        ("tenant" = Option<String>, Query, description = "Only this tenant's failed jobs"),
    ),
    responses(
        (status = 200, description = "How many were retried", body = RetriedFailed),
        (status = 404, description = "No tenant has this name", body = Problem, content_type = "application/problem+json"),
        errors::AdminRoute,
    ),
)]
pub async fn retry_failed(
    State(state): State<AppState>,
    _admin: Admin,
    Path(kind): Path<String>,
    query: Result<Query<RetryFailedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RetriedFailed>, ApiError> {
    const REFUSALS_SHOWN: usize = 20;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(format!("bad query: {}", e.body_text())))?;
    let tenants = tenants_named(&state, query.tenant.as_deref()).await?;
    let mut answer = RetriedFailed {
        retried: 0,
        refused: Vec::new(),
        more: false,
    };
    let mut seen = 0;
    'tenants: for tenant in tenants.iter().take(MAX_TENANTS_LISTED) {
        let mut page = ListQuery {
            status: Some(Status::Failed),
            kind: Some(kind.clone()),
            error_code: None,
            since: None,
            until: None,
            limit: super::jobs::MAX_PAGE,
            cursor: None,
        };
        loop {
            let (records, next) = state.store.list(tenant, &page).await?;
            for record in records.iter().filter(|r| r.retried_as.is_none()) {
                if seen == MAX_RETRIED_PER_CALL {
                    answer.more = true;
                    break 'tenants;
                }
                seen += 1;
                match super::retry::retry(&state, tenant, name_of_id(tenant), record.id).await {
                    Ok(_) => answer.retried += 1,
                    Err(e @ ApiError::Unavailable(_)) => return Err(e),
                    Err(e) if answer.refused.len() < REFUSALS_SHOWN => answer.refused.push(Done {
                        tenant: name_of_id(tenant).to_owned(),
                        id: record.id.to_string(),
                        ok: false,
                        status: e.parts().0.as_u16(),
                        job: None,
                        detail: Some(e.to_string()),
                    }),
                    Err(_) => {}
                }
            }
            match next {
                Some(cursor) => page.cursor = Some(cursor),
                None => break,
            }
        }
    }
    Ok(Json(answer))
}
