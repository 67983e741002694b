//! End-to-end tests: the real `kiln` binary against private `redis-server` processes.
//!
//! One test binary with a module per area, not one binary per file: each binary links all of wasmtime, so
//! fifteen of them cost gigabytes of disk and minutes of linking for nothing. Run one area with
//! `cargo test --test e2e sandbox::`.

mod common;

mod api;
mod blobs;
mod cli;
mod cluster;
mod console;
mod cutout;
mod events;
mod first_run;
mod flow;
mod formats;
mod http_hardening;
mod kind_cli;
mod limits;
mod observability;
mod openapi;
mod pipelines;
mod plugins;
mod readme;
mod redis_security;
mod reliability;
mod result_cache;
mod sandbox;
mod schedules;
mod tenants;
mod topology;
mod web;
mod webhooks;
