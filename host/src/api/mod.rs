//! The HTTP API (v1): routes, shared state and the layers every request passes through.
//!
//! The API never touches wasmtime: it validates, stores and reads. Workers do the running.

mod events;
mod jobs;
mod kinds;
mod problem;
mod submit;

pub use problem::ApiError;

use crate::auth::KeyRing;
use crate::catalog::Catalog;
use crate::runtime::Runtime;
use crate::store::Store;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body accepted, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Attempts a job gets before it is failed for good (retryable failures only).
    pub max_attempts: u32,
    /// Largest component a kind upload may carry.
    pub max_component_bytes: usize,
    /// Quotas of tenants without their own.
    pub quotas: crate::store::SubmitQuotas,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 20 << 20,
            max_attempts: 3,
            max_component_bytes: 64 << 20,
            quotas: crate::store::SubmitQuotas {
                max_queued: 10_000,
                max_per_second: 0,
            },
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub catalog: Catalog,
    pub keys: KeyRing,
    /// Used by the API only to check uploaded components; jobs run in workers.
    pub runtime: Arc<Runtime>,
    pub config: ApiConfig,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole API as a `Router`, apart from `main` so tests can drive it directly.
pub fn app(state: AppState) -> Router {
    let body_limit = state.config.max_body_bytes;
    let ops = ops_app(state.store.clone());
    Router::new()
        .route("/v1/jobs", get(jobs::list))
        // One path segment is a kind when posting (`POST /v1/jobs/{kind}`) and a job id otherwise.
        .route(
            "/v1/jobs/{id}",
            get(events::get).delete(jobs::cancel).post(jobs::submit),
        )
        .route("/v1/jobs/{id}/result", get(jobs::result))
        .route("/v1/jobs/{id}/events", get(events::events))
        .route("/v1/jobs/{id}/log", get(jobs::log))
        .route("/v1/kinds", get(kinds::list))
        .route(
            "/v1/kinds/{name}",
            get(kinds::show).put(kinds::put).delete(kinds::delete),
        )
        .route("/v1/stats", get(stats))
        .merge(crate::web::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .merge(ops)
        .layer(axum::middleware::from_fn(crate::metrics::track_http))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("a request handler panicked")).into_response_parts()
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

impl ApiError {
    fn into_response_parts(self) -> axum::response::Response {
        axum::response::IntoResponse::into_response(self)
    }
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for `{}`", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("`{method}` is not allowed on `{}`", uri.path()))
}

/// `GET /v1/stats` (admin): queue depth per tenant, retries and running jobs; what autoscalers read.
async fn stats(
    State(state): State<AppState>,
    _admin: crate::auth::Admin,
) -> Result<Json<crate::store::QueueStats>, ApiError> {
    Ok(Json(state.store.queue_stats().await?))
}

/// The operations routes, served by the API and (with `--ops-listen`) by worker processes:
/// `GET /healthz` (the process is up) and `GET /readyz` (Redis answers).
pub fn ops_app(store: Store) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::handler))
        .with_state(store)
}

async fn readyz(State(store): State<Store>) -> Result<Json<Value>, ApiError> {
    store.ping().await?;
    Ok(Json(json!({"status": "ready"})))
}

#[allow(dead_code)]
const _: StatusCode = StatusCode::OK;
