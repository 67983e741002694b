//! Kiln: run image-producing jobs as sandboxed WebAssembly components.
//!
//! A job flows: HTTP submit ([`api`]) → Redis ([`store`]) → a worker ([`worker`]) → a fresh instance of
//! the kind's component ([`runtime`]) → PNG bytes back in Redis → HTTP download.
//!
//! - [`announce`]: the lines a serving Kiln writes for scripts ("API listening on …"), text or JSON.
//! - [`api`]: the HTTP API v1 (axum); validates, stores, reads; never runs wasm.
//! - [`auth`]: which tenant a request acts for.
//! - [`catalog`]: the registered job kinds, as the API sees them.
//! - [`client`]: `kiln submit|status|get|jobs|cancel|kinds`, a command-line client of the HTTP API.
//! - [`cron`]: the cron expressions of recurring schedules: parsing, due times, the minimum interval.
//! - [`config`]: flags and `KILN_*` environment variables.
//! - [`dev_mode`]: what keyless dev mode lets through (loopback hosts, same-origin writes).
//! - [`embedded_redis`]: a private redis-server for a first run.
//! - [`job`]: the job document and its states and error codes.
//! - [`kinds`]: kind manifests, versions, and the built-in kinds embedded at build time.
//! - [`runtime`]: the wasmtime sandbox that runs one job.
//! - [`text`]: size caps for text that tenants or guests wrote (error messages, problem details).
//! - [`tenant_cli`]: `kiln tenant add|set|list|remove|rotate`.
//! - [`metrics`]: Prometheus metrics of the process (`GET /metrics`).
//! - [`refresh`]: keeps the in-memory copies of kinds and API keys fresh.
//! - [`server`]: wires the parts together for `kiln serve|api|worker`.
//! - [`store`]: every Redis key and every Redis call.
//! - [`web`]: the web page at `/`, embedded in the binary.
//! - [`webhooks`]: completion webhooks: the allowlist, signatures, the delivery task.
//! - [`worker`]: claims jobs, runs them, records outcomes.

pub mod announce;
pub mod api;
pub mod auth;
pub mod catalog;
pub mod client;
pub mod config;
pub mod cron;
pub mod dev_mode;
pub mod embedded_redis;
pub mod job;
pub mod kinds;
pub mod metrics;
pub mod pipeline;
pub mod refresh;
pub mod result_cache;
pub mod runtime;
pub mod server;
pub mod store;
pub mod tenant_cli;
pub mod text;
pub mod web;
pub mod webhooks;
pub mod worker;
