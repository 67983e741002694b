//! Tenant administration over HTTP (admin key): the same operations as `kiln tenant`, for operators who
//! reach Kiln only through its API.

use super::openapi::{Problem, errors, tags};
use super::{ApiError, AppState, json_body};
use crate::auth::{AddTenantError, Admin, add_tenant, rotate_key};
use crate::job::from_millis;
use crate::store::{TenantEntry, TenantQuotas};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A tenant as the API shows it (never its key).
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    pub name: String,
    /// Immutable; a new tenant of a removed one's name gets a new id and none of the old jobs.
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub quotas: TenantQuotas,
}

impl From<TenantEntry> for TenantView {
    fn from(entry: TenantEntry) -> Self {
        Self {
            name: entry.name,
            id: entry.id,
            created_at: from_millis(entry.created_at),
            quotas: entry.quotas,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantList {
    pub tenants: Vec<TenantView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// `[a-z0-9_-]{1,64}`
    pub name: String,
    #[serde(default)]
    pub quotas: TenantQuotas,
}

/// A new tenant with its API key: the only time the key is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedTenant {
    pub name: String,
    pub key: String,
    pub quotas: TenantQuotas,
}

pub(super) fn unknown_tenant(name: &str) -> ApiError {
    ApiError::NotFound(format!("no tenant named `{name}`"))
}

/// List tenants (admin)
#[utoipa::path(
    get,
    path = "/v1/tenants",
    operation_id = "listTenants",
    tag = tags::ADMIN,
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "Every tenant, by name", body = TenantList),
        errors::AdminRoute,
    ),
)]
pub async fn list(State(state): State<AppState>, _admin: Admin) -> Result<Json<TenantList>, ApiError> {
    let tenants = state.store.tenants().await?.into_iter().map(TenantView::from).collect();
    Ok(Json(TenantList { tenants }))
}

/// Add a tenant (admin); the answer holds its new API key, shown only this once
#[utoipa::path(
    post,
    path = "/v1/tenants",
    operation_id = "addTenant",
    tag = tags::ADMIN,
    security(("admin_key" = [])),
    request_body(content = NewTenant, content_type = "application/json"),
    responses(
        (status = 201, description = "The tenant and its key", body = IssuedTenant),
        (status = 400, description = "A bad name or body", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
        errors::AdminRoute,
    ),
)]
pub async fn add(
    State(state): State<AppState>,
    _admin: Admin,
    body: Result<Json<NewTenant>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<IssuedTenant>), ApiError> {
    let NewTenant { name, quotas } = json_body(body)?;
    let key = add_tenant(&state.store, &name, quotas.clone())
        .await
        .map_err(|e| match e {
            AddTenantError::InvalidName(_) | AddTenantError::BadQuotas(_) => ApiError::BadRequest(e.to_string()),
            AddTenantError::Exists(_) => ApiError::Conflict {
                detail: e.to_string(),
                extra: Default::default(),
            },
            AddTenantError::Store(e) => e.into(),
        })?;
    // Every API process accepts the key at once: an unknown key is looked up in Redis before a 401.
    Ok((StatusCode::CREATED, Json(IssuedTenant { name, key, quotas })))
}

/// Set a tenant's own quotas (admin)
#[utoipa::path(
    put,
    path = "/v1/tenants/{name}/quotas",
    operation_id = "setTenantQuotas",
    tag = tags::ADMIN,
    security(("admin_key" = [])),
    params(("name" = String, Path, description = "The tenant's name")),
    request_body(content = TenantQuotas, content_type = "application/json"),
    responses(
        (status = 200, description = "The quotas as set", body = TenantQuotas),
        (status = 400, description = "A bad body", body = Problem, content_type = "application/problem+json"),
        errors::AdminRoute,
        errors::NoSuchTenant,
    ),
)]
pub async fn set_quotas(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
    body: Result<Json<TenantQuotas>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<TenantQuotas>, ApiError> {
    let quotas = json_body(body)?;
    if let Some(problem) = quotas.problem() {
        return Err(ApiError::BadRequest(problem));
    }
    if !state.store.set_tenant_quotas(&name, &quotas).await? {
        return Err(unknown_tenant(&name));
    }
    state.keys.refresh().await?;
    Ok(Json(quotas))
}

/// Remove a tenant (admin): its keys and all its jobs
///
/// Queued jobs never run; running ones lose their lease, so their workers drop them. A new tenant of the
/// same name gets a new id and starts empty.
#[utoipa::path(
    delete,
    path = "/v1/tenants/{name}",
    operation_id = "removeTenant",
    tag = tags::ADMIN,
    security(("admin_key" = [])),
    params(("name" = String, Path, description = "The tenant's name")),
    responses(
        (status = 204, description = "The tenant, its keys and its jobs are gone"),
        errors::AdminRoute,
        errors::NoSuchTenant,
    ),
)]
pub async fn remove(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.store.remove_tenant(&name).await?.is_none() {
        return Err(unknown_tenant(&name));
    }
    state.keys.refresh().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// Seconds the old key keeps working (0, the default: it stops at once; at most 30 days).
    #[serde(default)]
    pub grace_secs: u64,
}

/// A tenant's new API key: the only time it is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedKey {
    pub name: String,
    pub key: String,
    /// Until when the old key works.
    #[serde(with = "time::serde::rfc3339")]
    pub old_key_valid_until: OffsetDateTime,
}

/// The longest grace an old key may get.
const MAX_GRACE_SECS: u64 = 30 * 86_400;

/// Rotate a tenant's key (admin): a new key, the old one valid for `grace_secs` more
#[utoipa::path(
    post,
    path = "/v1/tenants/{name}/rotate",
    operation_id = "rotateTenantKey",
    tag = tags::ADMIN,
    security(("admin_key" = [])),
    params(("name" = String, Path, description = "The tenant's name")),
    request_body(content = Option<Rotation>, content_type = "application/json", description = "Optional; `{}` or no body: no grace"),
    responses(
        (status = 200, description = "The new key", body = RotatedKey),
        (status = 400, description = "A bad body or grace", body = Problem, content_type = "application/problem+json"),
        errors::AdminRoute,
        errors::NoSuchTenant,
    ),
)]
pub async fn rotate(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<RotatedKey>, ApiError> {
    let Rotation { grace_secs } = if body.iter().all(u8::is_ascii_whitespace) {
        Rotation::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("bad JSON body: {e}")))?
    };
    if grace_secs > MAX_GRACE_SECS {
        return Err(ApiError::BadRequest(format!(
            "grace_secs may be at most {MAX_GRACE_SECS} (30 days), not {grace_secs}"
        )));
    }
    let grace = std::time::Duration::from_secs(grace_secs);
    let key = rotate_key(&state.store, &name, grace)
        .await?
        .ok_or_else(|| unknown_tenant(&name))?;
    state.keys.refresh().await?;
    Ok(Json(RotatedKey {
        name,
        key,
        old_key_valid_until: OffsetDateTime::now_utc() + grace,
    }))
}
