//! Flow control (admin): pausing and resuming a kind or a tenant. A paused one's jobs stay queued (or
//! scheduled) and are not started; running ones finish. `dequeue.lua` does the skipping.

use super::openapi::{errors, tags};
use super::{ApiError, AppState};
use crate::auth::Admin;
use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

/// A kind's or tenant's pause, after the change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PauseState {
    pub name: String,
    /// Whether its jobs are held back (queued, not started).
    pub paused: bool,
}

async fn set_kind(state: &AppState, name: String, paused: bool) -> Result<Json<PauseState>, ApiError> {
    // A paused kind that is no longer registered may still be resumed (deleting one lifts its pause,
    // but another API process's catalog may lag).
    let known = state.catalog.get(&name).is_some() || (!paused && state.store.kind_paused(&name).await?);
    if !known {
        return Err(super::kinds::unknown_kind(&name));
    }
    state.store.set_kind_paused(&name, paused).await?;
    Ok(Json(PauseState { name, paused }))
}

async fn set_tenant(state: &AppState, name: String, paused: bool) -> Result<Json<PauseState>, ApiError> {
    let tenant = state
        .store
        .tenant(&name)
        .await?
        .ok_or_else(|| super::tenants::unknown_tenant(&name))?;
    state.store.set_tenant_paused(&tenant.id, &name, paused).await?;
    Ok(Json(PauseState { name, paused }))
}

/// Pause a kind (admin): its queued jobs wait, running ones finish
#[utoipa::path(
    post,
    path = "/v1/kinds/{name}/pause",
    operation_id = "pauseKind",
    tags = [tags::KINDS, tags::ADMIN],
    security(("admin_key" = [])),
    params(("name" = String, Path, description = "The kind's name")),
    responses(
        (status = 200, description = "The kind is paused (pausing twice is harmless)", body = PauseState),
        (status = 404, description = "No kind has this name", body = super::openapi::Problem, content_type = "application/problem+json"),
        errors::AdminRoute,
    ),
)]
pub async fn pause_kind(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
) -> Result<Json<PauseState>, ApiError> {
    set_kind(&state, name, true).await
}

/// Resume a kind (admin): its queued jobs run again
#[utoipa::path(
    post,
    path = "/v1/kinds/{name}/resume",
    operation_id = "resumeKind",
    tags = [tags::KINDS, tags::ADMIN],
    security(("admin_key" = [])),
    params(("name" = String, Path, description = "The kind's name")),
    responses(
        (status = 200, description = "The kind runs again", body = PauseState),
        (status = 404, description = "No kind has this name", body = super::openapi::Problem, content_type = "application/problem+json"),
        errors::AdminRoute,
    ),
)]
pub async fn resume_kind(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
) -> Result<Json<PauseState>, ApiError> {
    set_kind(&state, name, false).await
}

/// Pause a tenant (admin): its queued jobs wait while other tenants' run
#[utoipa::path(
    post,
    path = "/v1/tenants/{name}/pause",
    operation_id = "pauseTenant",
    tag = tags::ADMIN,
    security(("admin_key" = [])),
    params(("name" = String, Path, description = "The tenant's name")),
    responses(
        (status = 200, description = "The tenant is paused (it may still submit)", body = PauseState),
        errors::AdminRoute,
        errors::NoSuchTenant,
    ),
)]
pub async fn pause_tenant(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
) -> Result<Json<PauseState>, ApiError> {
    set_tenant(&state, name, true).await
}

/// Resume a tenant (admin): its queued jobs run again
#[utoipa::path(
    post,
    path = "/v1/tenants/{name}/resume",
    operation_id = "resumeTenant",
    tag = tags::ADMIN,
    security(("admin_key" = [])),
    params(("name" = String, Path, description = "The tenant's name")),
    responses(
        (status = 200, description = "The tenant's jobs run again", body = PauseState),
        errors::AdminRoute,
        errors::NoSuchTenant,
    ),
)]
pub async fn resume_tenant(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
) -> Result<Json<PauseState>, ApiError> {
    set_tenant(&state, name, false).await
}
