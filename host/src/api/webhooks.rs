//! Completion webhooks: a job's delivery attempts, and the tenant's signing secret (read and rotated by
//! the tenant, or by the admin for any tenant). Sending is `webhooks::Deliverer`'s, not the API's.

use super::jobs::{parse_id, unknown};
use super::openapi::{errors, tags};
use super::{ApiError, AppState};
use crate::auth::{Admin, Tenant};
use crate::webhooks::Attempt;
use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

/// A job's completion webhook.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveriesView {
    /// The URL the job was submitted with; null: the job has no webhook.
    pub callback_url: Option<String>,
    /// `waiting` (the job is not final yet), `pending` (due), `retrying`, `delivered` or `failed` (all
    /// attempts failed); null without a webhook.
    pub state: Option<String>,
    /// Every attempt so far, oldest first.
    pub attempts: Vec<Attempt>,
}

/// A job's webhook deliveries
///
/// Each attempt to POST the job's document to its `callback_url`: when, the receiver's HTTP status or
/// the error, and how long it took. Failed attempts are retried, 8 in all over about an hour.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/deliveries",
    operation_id = "getJobDeliveries",
    tag = tags::JOBS,
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The webhook and its attempts", body = DeliveriesView),
        errors::TenantRoute,
        errors::NoSuchJob,
    ),
)]
pub async fn deliveries(
    State(state): State<AppState>,
    Path(id): Path<String>,
    tenant: Tenant,
) -> Result<Json<DeliveriesView>, ApiError> {
    let id = parse_id(&id)?;
    let found = state
        .store
        .deliveries(tenant.as_str(), id)
        .await?
        .ok_or_else(|| unknown(id))?;
    let attempts = found
        .attempts
        .iter()
        .map(|json| serde_json::from_str(json).map_err(|e| ApiError::Internal(e.into())))
        .collect::<Result<_, _>>()?;
    Ok(Json(DeliveriesView {
        callback_url: found.callback_url,
        state: found.state,
        attempts,
    }))
}

/// A tenant's webhook signing secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookSecret {
    /// `whsec_` and the base64 of 32 random bytes; the HMAC-SHA256 key is the bytes, not the text.
    pub secret: String,
}

/// The tenant's webhook secret
///
/// The key deliveries are signed with (`webhook-signature`), made at first use.
#[utoipa::path(
    get,
    path = "/v1/webhook-secret",
    operation_id = "getWebhookSecret",
    tag = tags::JOBS,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The secret", body = WebhookSecret),
        errors::TenantRoute,
    ),
)]
pub async fn get_secret(State(state): State<AppState>, tenant: Tenant) -> Result<Json<WebhookSecret>, ApiError> {
    let secret = state.store.webhook_secret(tenant.as_str()).await?;
    Ok(Json(WebhookSecret { secret }))
}

/// Rotate the tenant's webhook secret
///
/// A new secret at once: every attempt from now on, retries of earlier jobs too, is signed with it.
#[utoipa::path(
    post,
    path = "/v1/webhook-secret",
    operation_id = "rotateWebhookSecret",
    tag = tags::JOBS,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The new secret", body = WebhookSecret),
        errors::TenantRoute,
    ),
)]
pub async fn rotate_secret(State(state): State<AppState>, tenant: Tenant) -> Result<Json<WebhookSecret>, ApiError> {
    let secret = state.store.rotate_webhook_secret(tenant.as_str()).await?;
    Ok(Json(WebhookSecret { secret }))
}

/// The id (in Redis keys) of the tenant named `name`.
async fn tenant_id(state: &AppState, name: &str) -> Result<String, ApiError> {
    let entry = state
        .store
        .tenant(name)
        .await?
        .ok_or_else(|| super::tenants::unknown_tenant(name))?;
    // Tenants from before ids use their name.
    Ok(if entry.id.is_empty() { entry.name } else { entry.id })
}

/// A tenant's webhook secret (admin)
#[utoipa::path(
    get,
    path = "/v1/tenants/{name}/webhook-secret",
    operation_id = "getTenantWebhookSecret",
    tag = tags::ADMIN,
    security(("admin_key" = [])),
    params(("name" = String, Path, description = "The tenant's name")),
    responses(
        (status = 200, description = "The secret", body = WebhookSecret),
        errors::AdminRoute,
        errors::NoSuchTenant,
    ),
)]
pub async fn admin_get_secret(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
) -> Result<Json<WebhookSecret>, ApiError> {
    let id = tenant_id(&state, &name).await?;
    let secret = state.store.webhook_secret(&id).await?;
    Ok(Json(WebhookSecret { secret }))
}

/// Rotate a tenant's webhook secret (admin)
#[utoipa::path(
    post,
    path = "/v1/tenants/{name}/webhook-secret",
    operation_id = "rotateTenantWebhookSecret",
    tag = tags::ADMIN,
    security(("admin_key" = [])),
    params(("name" = String, Path, description = "The tenant's name")),
    responses(
        (status = 200, description = "The new secret", body = WebhookSecret),
        errors::AdminRoute,
        errors::NoSuchTenant,
    ),
)]
pub async fn admin_rotate_secret(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
) -> Result<Json<WebhookSecret>, ApiError> {
    let id = tenant_id(&state, &name).await?;
    let secret = state.store.rotate_webhook_secret(&id).await?;
    Ok(Json(WebhookSecret { secret }))
}
