//! Prometheus metrics of this process, served at `GET /metrics`: on the API's address to the admin key
//! (the labels name tenants and kinds), open on a worker's `--ops-listen` (an address for the cluster's
//! scraper).
//!
//! One process-wide registry: metrics are recorded from the API, the worker and the runtime, and a global
//! spares threading a handle through every layer. Tenant labels are bounded: the first
//! [`MAX_TENANT_LABELS`] tenants a process sees get their own label, later ones are counted as `other`,
//! so a deployment with many tenants cannot blow up the series count.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// Distinct tenant label values per process; the rest are `other`.
pub const MAX_TENANT_LABELS: usize = 50;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindTenant {
    pub kind: String,
    pub tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobOutcome {
    pub kind: String,
    pub tenant: String,
    /// `succeeded`, `failed`, `retried`, or `dropped` (the lease was lost, e.g. cancelled).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// One of the methods the API knows, or `other`: a made-up method adds no series.
    pub method: String,
    /// The route pattern (`/v1/jobs/{id}`), never the raw path, to keep cardinality bounded.
    pub route: String,
    pub status: u16,
}

pub struct Metrics {
    registry: Registry,
    pub jobs_submitted: Family<KindTenant, Counter>,
    pub jobs_cached: Family<KindTenant, Counter>,
    pub jobs_finished: Family<JobOutcome, Counter>,
    pub queue_wait_seconds: Family<KindLabel, Histogram>,
    pub run_seconds: Family<KindLabel, Histogram>,
    pub instantiate_seconds: Histogram,
    pub guest_memory_peak_bytes: Family<KindLabel, Histogram>,
    pub redis_errors: Counter,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_seconds: Family<KindLabel, Histogram>,
    pub queue_depth: Gauge,
    pub retrying: Gauge,
    pub running: Gauge,
    pub bytes_held: Gauge,
    tenants_seen: Mutex<HashSet<String>>,
}

fn seconds_histogram() -> Histogram {
    // 100 µs .. ~200 s
    Histogram::new(exponential_buckets(0.0001, 2.5, 16))
}

fn bytes_histogram() -> Histogram {
    // 1 MiB .. 4 GiB
    Histogram::new(exponential_buckets(1048576.0, 2.0, 13))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("kiln");
        let metrics = Self {
            jobs_submitted: Family::default(),
            jobs_cached: Family::default(),
            jobs_finished: Family::default(),
            queue_wait_seconds: Family::new_with_constructor(seconds_histogram),
            run_seconds: Family::new_with_constructor(seconds_histogram),
            instantiate_seconds: seconds_histogram(),
            guest_memory_peak_bytes: Family::new_with_constructor(bytes_histogram),
            redis_errors: Counter::default(),
            http_requests: Family::default(),
            http_seconds: Family::new_with_constructor(seconds_histogram),
            queue_depth: Gauge::default(),
            bytes_held: Gauge::default(),
            retrying: Gauge::default(),
            running: Gauge::default(),
            tenants_seen: Mutex::new(HashSet::new()),
            registry: Registry::default(),
        };
        registry.register(
            "jobs_submitted",
            "Jobs accepted by this API process",
            metrics.jobs_submitted.clone(),
        );
        registry.register(
            "jobs_cached",
            "Jobs this API process answered from the result cache (succeeded at once, never run)",
            metrics.jobs_cached.clone(),
        );
        registry.register(
            "jobs_finished",
            "Job attempts recorded by this worker process, by outcome",
            metrics.jobs_finished.clone(),
        );
        registry.register(
            "queue_wait_seconds",
            "Time from submit to the start of an attempt",
            metrics.queue_wait_seconds.clone(),
        );
        registry.register(
            "run_seconds",
            "Time one attempt ran in the sandbox",
            metrics.run_seconds.clone(),
        );
        registry.register(
            "instantiate_seconds",
            "Time to create a store and instantiate a pre-linked component",
            metrics.instantiate_seconds.clone(),
        );
        registry.register(
            "guest_memory_peak_bytes",
            "Largest linear memory a run asked for",
            metrics.guest_memory_peak_bytes.clone(),
        );
        registry.register(
            "redis_errors",
            "Failed Redis calls, by API requests and workers alike",
            metrics.redis_errors.clone(),
        );
        registry.register("http_requests", "HTTP requests answered", metrics.http_requests.clone());
        registry.register(
            "http_request_seconds",
            "HTTP request latency by route",
            metrics.http_seconds.clone(),
        );
        registry.register(
            "queue_depth",
            "Jobs waiting in all tenants' queues (at scrape)",
            metrics.queue_depth.clone(),
        );
        registry.register(
            "bytes_held",
            "Bytes all tenants hold in Redis (inputs, params, results, logs; per tenant in /v1/stats) (at scrape)",
            metrics.bytes_held.clone(),
        );
        registry.register(
            "retrying",
            "Jobs waiting for a retry (at scrape)",
            metrics.retrying.clone(),
        );
        registry.register(
            "running",
            "Jobs holding a lease, on any worker (at scrape)",
            metrics.running.clone(),
        );
        Self { registry, ..metrics }
    }

    /// The tenant as a label value: itself for the first tenants seen, `other` after that.
    pub fn tenant_label(&self, tenant: &str) -> String {
        let mut seen = self.tenants_seen.lock().expect("tenant label set poisoned");
        if seen.contains(tenant) || (seen.len() < MAX_TENANT_LABELS && seen.insert(tenant.to_owned())) {
            tenant.to_owned()
        } else {
            "other".to_owned()
        }
    }

    pub fn kind_tenant(&self, kind: &str, tenant: &str) -> KindTenant {
        KindTenant {
            kind: kind.to_owned(),
            tenant: self.tenant_label(tenant),
        }
    }

    pub fn outcome(&self, kind: &str, tenant: &str, outcome: &str) -> JobOutcome {
        JobOutcome {
            kind: kind.to_owned(),
            tenant: self.tenant_label(tenant),
            outcome: outcome.to_owned(),
        }
    }

    pub fn kind(kind: &str) -> KindLabel {
        KindLabel { kind: kind.to_owned() }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

pub fn global() -> &'static Metrics {
    &METRICS
}

pub fn observe(histogram: &Histogram, elapsed: Duration) {
    histogram.observe(elapsed.as_secs_f64());
}

/// The `method` label: the standard methods as themselves, anything else as `other`.
fn method_label(method: &axum::http::Method) -> String {
    use axum::http::Method;
    let known = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
    ];
    if known.contains(method) {
        method.as_str().to_owned()
    } else {
        "other".to_owned()
    }
}

/// Tower middleware recording every request's count and latency by route pattern.
pub async fn track_http(request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let metrics = global();
    metrics
        .http_requests
        .get_or_create(&HttpLabels {
            method,
            route: route.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    observe(
        &metrics.http_seconds.get_or_create(&KindLabel { kind: route }),
        started.elapsed(),
    );
    response
}

/// Prometheus metrics (admin)
///
/// `GET /metrics` on the API's address: the admin key's (in dev mode, anyone's). A worker's
/// `--ops-listen` serves the same without a key.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tags = [crate::api::openapi::tags::OPS, crate::api::openapi::tags::ADMIN],
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The process's metrics (OpenMetrics text)", body = String,
            content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        crate::api::openapi::errors::AdminRoute,
    ),
)]
pub async fn admin_handler(
    axum::extract::State(state): axum::extract::State<crate::api::AppState>,
    _admin: crate::auth::Admin,
) -> Response {
    handler(axum::extract::State(state.store.clone())).await
}

/// `GET /metrics` on a worker's `--ops-listen`: refreshes the queue gauges from Redis (best effort), then
/// encodes.
pub async fn handler(axum::extract::State(store): axum::extract::State<crate::store::Store>) -> Response {
    let metrics = global();
    match store.queue_stats().await {
        Ok(stats) => {
            metrics.queue_depth.set(stats.queued as i64);
            metrics.retrying.set(stats.retrying as i64);
            metrics
                .bytes_held
                .set(stats.bytes_by_tenant.values().sum::<u64>() as i64);
            metrics.running.set(stats.running as i64);
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: could not read queue stats");
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_labels_are_bounded() {
        let metrics = Metrics::new();
        for i in 0..MAX_TENANT_LABELS {
            assert_eq!(metrics.tenant_label(&format!("t{i}")), format!("t{i}"));
        }
        assert_eq!(metrics.tenant_label("one-too-many"), "other");
        assert_eq!(metrics.tenant_label("t0"), "t0", "known tenants keep their label");
    }

    #[test]
    fn method_labels_are_bounded() {
        assert_eq!(method_label(&axum::http::Method::POST), "POST");
        let made_up = axum::http::Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&made_up), "other");
    }

    #[test]
    fn encodes_registered_metrics() {
        let metrics = Metrics::new();
        metrics
            .jobs_submitted
            .get_or_create(&metrics.kind_tenant("crop", "acme"))
            .inc();
        let text = metrics.encode();
        assert!(
            text.contains("kiln_jobs_submitted_total{kind=\"crop\",tenant=\"acme\"} 1"),
            "{text}"
        );
        assert!(text.contains("# TYPE kiln_instantiate_seconds histogram"), "{text}");
    }
}
