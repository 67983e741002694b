//! The HTTP API (v1): routes, shared state and the layers every request passes through.
//!
//! The API never runs a guest: it validates, stores and reads (wasmtime only compiles and link-checks
//! uploaded components). Workers do the running.

mod admin_jobs;
mod blobs;
mod compile;
mod events;
mod flow;
mod jobs;
mod kinds;
mod limits;
pub mod openapi;
mod pipelines;
mod problem;
mod retry;
pub mod schedules;
mod submit;
mod tenants;
mod webhooks;

pub use compile::CompileGate;
pub use events::StreamSlots;
pub use limits::HttpLimits;
pub use problem::ApiError;

use crate::auth::KeyRing;
use crate::catalog::Catalog;
use crate::runtime::Runtime;
use crate::store::Store;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::{Json, Router};
use openapi::errors;
use serde_json::{Value, json};
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body accepted, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Attempts a job gets before it is failed for good (retryable failures only).
    pub max_attempts: u32,
    /// Largest component a kind upload may carry.
    pub max_component_bytes: usize,
    /// The longest a kind upload's compile may take (422 beyond).
    pub max_compile: std::time::Duration,
    /// Quotas of tenants without their own.
    pub quotas: crate::store::SubmitQuotas,
    /// Timeouts, the concurrency limit and the per-tenant stream cap.
    pub http: HttpLimits,
    /// Largest params of a kind whose manifest does not ask for more, in bytes (413 beyond).
    pub max_params_bytes: u64,
    /// The most a manifest's `limits.max_params_kb` may ask for, in bytes.
    pub max_kind_params_bytes: u64,
    /// Recurring schedules a tenant may have (0: no limit).
    pub max_schedules_per_tenant: u32,
    /// The shortest interval between two due times of a schedule, in seconds.
    pub min_schedule_secs: u32,
    /// Which callback URLs a submit may name, and the per-tenant bound on pending deliveries.
    pub webhooks: std::sync::Arc<crate::webhooks::WebhookConfig>,
}

impl ApiConfig {
    /// The largest input a kind takes, in bytes: what its manifest asks for, else what an upload may be.
    pub fn max_input(&self, limits: Option<&crate::kinds::KindLimits>) -> u64 {
        limits
            .and_then(|l| l.max_input_mb)
            .map_or(self.max_body_bytes as u64, |mb| mb << 20)
    }

    /// The params cap of a kind: what its manifest asks for, up to the ceiling, else the default.
    pub fn max_params(&self, limits: Option<&crate::kinds::KindLimits>) -> u64 {
        limits
            .and_then(|l| l.max_params_kb)
            .map_or(self.max_params_bytes, |kb| kb.saturating_mul(1024))
            .min(self.max_kind_params_bytes)
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 20 << 20,
            max_attempts: 3,
            max_component_bytes: 64 << 20,
            max_compile: std::time::Duration::from_secs(120),
            quotas: crate::store::SubmitQuotas {
                max_queued: 10_000,
                max_per_second: 0,
                max_bytes: 1 << 30,
            },
            http: HttpLimits::default(),
            max_params_bytes: 1 << 20,
            max_kind_params_bytes: 16 << 20,
            max_schedules_per_tenant: 100,
            min_schedule_secs: 60,
            webhooks: Default::default(),
        }
    }
}

/// What every handler shares, behind one `Arc`: axum clones the state for each extractor of each
/// request, and a clone of the parts themselves (store, catalog, key ring, config) cost measurably per
/// job (BENCHMARKS.md, session 6).
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

pub struct AppParts {
    pub store: Store,
    /// Wakes the requests that wait for a job to change.
    pub changes: crate::store::Changes,
    pub catalog: Catalog,
    pub keys: KeyRing,
    /// Used by the API only to check uploaded components; jobs run in workers.
    pub runtime: Arc<Runtime>,
    /// Bounds the compiles of kind uploads (one at a time, each within `KILN_MAX_COMPILE_SECS`).
    pub compiles: compile::CompileGate,
    pub config: ApiConfig,
    /// The event streams and long-polls each tenant holds open (`config.http.max_streams_per_tenant`).
    pub streams: StreamSlots,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole API as a `Router`, apart from `main` so tests can drive it directly.
pub fn app(state: AppState) -> Router {
    let body_limit = state.config.max_body_bytes;
    let in_flight = limits::InFlight::new(state.config.http);
    let ops = ops_routes().split_for_parts().0.with_state(state.store.clone());
    let dev_mode = state.keys.dev_mode();
    let (api, _) = api_routes().split_for_parts();
    let router = api
        .merge(crate::web::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .merge(ops)
        // Inside the metrics layer, so shed and timed-out requests are counted.
        .layer(axum::middleware::from_fn_with_state(in_flight, limits::enforce))
        .layer(axum::middleware::from_fn(crate::metrics::track_http))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("a request handler panicked")).into_response_parts()
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid));
    // Dev mode answers only this machine's same-origin requests (`dev_mode`): refused ones are traced too.
    let router = if dev_mode {
        router.layer(axum::middleware::from_fn(crate::dev_mode::guard))
    } else {
        router
    };
    router
        // Outermost, so every answer carries it, errors and shed requests too: no browser sniffs a result
        // or a problem document into something it would run.
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

/// The API's routes, each registered with its `#[utoipa::path]` operation: the router and the OpenAPI
/// document (`openapi::document`) are built from this one list, so they cannot disagree.
fn api_routes() -> OpenApiRouter<AppState> {
    use utoipa::OpenApi as _;
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(jobs::list))
        // One path segment is a kind when posting (`POST /v1/jobs/{kind}`) and a job id otherwise.
        .routes(routes!(events::get, jobs::cancel, jobs::submit))
        .routes(routes!(jobs::result))
        .routes(routes!(jobs::named_result))
        .routes(routes!(events::events))
        .routes(routes!(jobs::log))
        .routes(routes!(jobs::params))
        .routes(routes!(retry::retry_one))
        .routes(routes!(admin_jobs::list_all))
        .routes(routes!(admin_jobs::cancel_selection))
        .routes(routes!(admin_jobs::retry_selection))
        .routes(routes!(admin_jobs::retry_failed))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::get_secret, webhooks::rotate_secret))
        .routes(routes!(pipelines::submit))
        .routes(routes!(blobs::put))
        .routes(routes!(blobs::get, blobs::delete))
        .routes(routes!(kinds::list))
        .routes(routes!(kinds::show, kinds::delete))
        // A component is far bigger than any other body: the handler sets this route's limit itself.
        .merge(
            OpenApiRouter::new()
                .routes(routes!(kinds::put))
                .layer(DefaultBodyLimit::disable()),
        )
        .routes(routes!(kinds::versions))
        .routes(routes!(kinds::use_version))
        .routes(routes!(flow::pause_kind))
        .routes(routes!(flow::resume_kind))
        .routes(routes!(flow::pause_tenant))
        .routes(routes!(flow::resume_tenant))
        .routes(routes!(schedules::list, schedules::create))
        .routes(routes!(schedules::get, schedules::delete))
        .routes(routes!(stats))
        .routes(routes!(tenants::list, tenants::add))
        .routes(routes!(tenants::set_quotas))
        .routes(routes!(tenants::remove))
        .routes(routes!(tenants::rotate))
        .routes(routes!(webhooks::admin_get_secret, webhooks::admin_rotate_secret))
        .routes(routes!(openapi::serve))
        .routes(routes!(crate::metrics::admin_handler))
}

/// A JSON body, or a 400 that says what is wrong with it.
fn json_body<T>(body: Result<Json<T>, axum::extract::rejection::JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(body)| body)
        .map_err(|e| ApiError::BadRequest(format!("bad JSON body: {}", e.body_text())))
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

/// `GET /v1/stats`: the whole deployment at a glance.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Stats {
    /// Queue depth (`queued` is what autoscalers read), retries and running jobs.
    #[serde(flatten)]
    pub queue: crate::store::QueueStats,
    /// Worker processes that sent a heartbeat lately, with what they run.
    pub workers: Vec<crate::store::WorkerBeat>,
    /// Jobs finished in each of the last five minutes, oldest first (the last one is still counting).
    pub finished_per_minute: Vec<u64>,
}

/// Queue and worker statistics (admin)
///
/// `GET /v1/stats` (admin): queue depth per tenant, retries, scheduled and running jobs, what is paused,
/// live workers, throughput.
#[utoipa::path(
    get,
    path = "/v1/stats",
    operation_id = "getStats",
    tags = [openapi::tags::OPS, openapi::tags::ADMIN],
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The statistics", body = Stats),
        errors::AdminRoute,
    ),
)]
async fn stats(State(state): State<AppState>, _admin: crate::auth::Admin) -> Result<Json<Stats>, ApiError> {
    let now = crate::job::now_millis();
    Ok(Json(Stats {
        queue: state.store.queue_stats().await?,
        workers: state.store.workers(now).await?,
        finished_per_minute: state.store.throughput(now, 5).await?,
    }))
}

/// What a worker serves on `--ops-listen`: `GET /healthz` (the process is up), `GET /readyz` (Redis
/// answers) and `GET /metrics`, open: that address is for the cluster's probes and scraper. (The API
/// serves the first two on its own address too, and `/metrics` there only to the admin key.)
pub fn ops_app(store: Store) -> Router {
    ops_routes()
        .split_for_parts()
        .0
        .route("/metrics", axum::routing::get(crate::metrics::handler))
        .with_state(store)
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

/// The probes, with their OpenAPI operations.
fn ops_routes() -> OpenApiRouter<Store> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

/// The process is up
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = openapi::tags::OPS,
    responses((status = 200, description = "Always `{\"status\": \"ok\"}`", body = Object)),
)]
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Redis answers
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = openapi::tags::OPS,
    responses(
        (status = 200, description = "`{\"status\": \"ready\"}`", body = Object),
        errors::NeedsRedis,
    ),
)]
async fn readyz(State(store): State<Store>) -> Result<Json<Value>, ApiError> {
    store.ping().await?;
    Ok(Json(json!({"status": "ready"})))
}

#[allow(dead_code)]
const _: StatusCode = StatusCode::OK;
