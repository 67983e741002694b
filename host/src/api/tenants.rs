//! Tenant administration over HTTP (admin key): the same operations as `kiln tenant`, for operators who
//! reach Kiln only through its API.

use super::openapi::{Problem, errors, tags};
use super::{ApiError, AppState};
use crate::auth::{AddTenantError, Admin, add_tenant};
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
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub quotas: TenantQuotas,
}

impl From<TenantEntry> for TenantView {
    fn from(entry: TenantEntry) -> Self {
        Self {
            name: entry.name,
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

fn unknown_tenant(name: &str) -> ApiError {
    ApiError::NotFound(format!("no tenant named `{name}`"))
}

fn json_body<T>(body: Result<Json<T>, axum::extract::rejection::JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(body)| body)
        .map_err(|e| ApiError::BadRequest(format!("bad JSON body: {}", e.body_text())))
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
    let key = add_tenant(&state.store, &name, quotas).await.map_err(|e| match e {
        AddTenantError::InvalidName(_) => ApiError::BadRequest(e.to_string()),
        AddTenantError::Exists(_) => ApiError::Conflict {
            detail: e.to_string(),
            extra: Default::default(),
        },
        AddTenantError::Store(e) => e.into(),
    })?;
    // This process's key ring learns of the key now; others within their refresh time.
    state.keys.refresh().await?;
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
        (status = 404, description = "No tenant has this name", body = Problem, content_type = "application/problem+json"),
        errors::AdminRoute,
    ),
)]
pub async fn set_quotas(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
    body: Result<Json<TenantQuotas>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<TenantQuotas>, ApiError> {
    let quotas = json_body(body)?;
    if !state.store.set_tenant_quotas(&name, quotas).await? {
        return Err(unknown_tenant(&name));
    }
    state.keys.refresh().await?;
    Ok(Json(quotas))
}

/// Remove a tenant and its key (admin); its jobs expire as usual
#[utoipa::path(
    delete,
    path = "/v1/tenants/{name}",
    operation_id = "removeTenant",
    tag = tags::ADMIN,
    security(("admin_key" = [])),
    params(("name" = String, Path, description = "The tenant's name")),
    responses(
        (status = 204, description = "The tenant and its key are gone"),
        (status = 404, description = "No tenant has this name", body = Problem, content_type = "application/problem+json"),
        errors::AdminRoute,
    ),
)]
pub async fn remove(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.store.remove_tenant(&name).await? {
        return Err(unknown_tenant(&name));
    }
    state.keys.refresh().await?;
    Ok(StatusCode::NO_CONTENT)
}
