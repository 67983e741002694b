//! The HTTP API (v1): routes, shared state and the layers every request passes through.
//!
//! The API never touches wasmtime: it validates, stores and reads. Workers do the running.

mod jobs;
mod problem;
mod submit;

pub use problem::ApiError;

use crate::catalog::Catalog;
use crate::store::Store;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body accepted, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Attempts a job gets before it is failed for good (retryable failures only).
    pub max_attempts: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 20 << 20,
            max_attempts: 3,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub catalog: Catalog,
    pub config: ApiConfig,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole API as a `Router`, apart from `main` so tests can drive it directly.
pub fn app(state: AppState) -> Router {
    let body_limit = state.config.max_body_bytes;
    Router::new()
        .route("/v1/jobs", get(jobs::list))
        // One path segment is a kind when posting (`POST /v1/jobs/{kind}`) and a job id otherwise.
        .route("/v1/jobs/{id}", get(jobs::get).delete(jobs::cancel).post(jobs::submit))
        .route("/v1/jobs/{id}/result", get(jobs::result))
        .route("/v1/kinds", get(kinds))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
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

/// `GET /v1/kinds`
async fn kinds(State(state): State<AppState>) -> Json<Value> {
    let kinds: Vec<Value> = state
        .catalog
        .all()
        .iter()
        .map(|kind| {
            let m = &kind.manifest;
            json!({
                "name": m.name,
                "description": m.description,
                "version": kind.version,
                "input": m.input,
                "output_media_type": m.output_media_type,
                "params_schema": m.params_schema,
            })
        })
        .collect();
    Json(json!({ "kinds": kinds }))
}

/// `GET /healthz`: the process is up.
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: Redis answers.
async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.ping().await?;
    Ok(Json(json!({"status": "ready"})))
}

#[allow(dead_code)]
const _: StatusCode = StatusCode::OK;
