//! Watching a job without hammering the API: `GET /v1/jobs/{id}?wait=N` (long-poll) and
//! `GET /v1/jobs/{id}/events` (Server-Sent Events of each status or progress change until the job ends).
//!
//! Both reread the job document when the scripts announce a change to it ([`crate::store::Changes`]):
//! a finished job answers its waiter at once, with no polling in between.

use super::openapi::{Problem, errors, tags};
use super::{ApiError, AppState};
use crate::auth::Tenant;
use crate::job::{JobId, JobRecord};
use crate::store::{Store, Watch, keys};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Longest `?wait=`, in seconds.
pub const MAX_WAIT_SECS: u64 = 60;
/// Longest an event stream stays open; clients reconnect if the job is still going.
const MAX_STREAM: Duration = Duration::from_secs(15 * 60);

/// The event streams and long-polls each tenant holds open in this process, capped so that one tenant
/// cannot take every connection and task the process has (`KILN_MAX_STREAMS_PER_TENANT`).
#[derive(Clone)]
pub struct StreamSlots {
    limit: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open stream or long-poll; gives its slot back when dropped (the stream ends or the client leaves).
pub struct StreamSlot {
    slots: StreamSlots,
    tenant: String,
}

impl StreamSlots {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            open: Arc::default(),
        }
    }

    /// A slot for `tenant` (counted by its id), or 429 if it holds `limit` already.
    pub fn take(&self, tenant: &Tenant) -> Result<StreamSlot, ApiError> {
        let mut open = self.open.lock().expect("stream slots poisoned");
        let count = open.entry(tenant.id.clone()).or_default();
        if *count >= self.limit {
            return Err(ApiError::TooManyRequests {
                detail: format!(
                    "tenant `{}` already holds {} event streams and long-polls open on this Kiln process \
                     (KILN_MAX_STREAMS_PER_TENANT); close one first",
                    tenant.name(),
                    self.limit
                ),
                retry_after: 1,
            });
        }
        *count += 1;
        Ok(StreamSlot {
            slots: self.clone(),
            tenant: tenant.id.clone(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().expect("stream slots poisoned");
        if let Some(count) = open.get_mut(&self.tenant) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.tenant);
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    pub(super) wait: Option<String>,
    /// `?tenant=NAME`, read by the `Tenant` extractor.
    #[serde(rename = "tenant")]
    _tenant: Option<serde::de::IgnoredAny>,
}

/// What a watcher compares: a change in either is news.
fn observed(record: &JobRecord) -> (crate::job::Status, u32) {
    (record.status, (record.progress * 1000.0).round() as u32)
}

async fn load(store: &Store, tenant: &str, id: JobId) -> Result<JobRecord, ApiError> {
    store.get(tenant, id).await?.ok_or_else(|| super::jobs::unknown(id))
}

/// Rereads the job until it differs from `seen` (or is final), or `deadline` passes. `watch` must have
/// been taken before `seen` was read.
async fn next_change(
    store: &Store,
    watch: &mut Watch,
    tenant: &str,
    seen: &JobRecord,
    deadline: Instant,
) -> Result<JobRecord, ApiError> {
    let member = keys::member(tenant, seen.id);
    let mut current = seen.clone();
    while !current.status.is_final() && observed(&current) == observed(seen) && Instant::now() < deadline {
        watch.changed(&member, deadline).await;
        current = load(store, tenant, seen.id).await?;
    }
    Ok(current)
}

/// Follows the job until it reaches a final state or `deadline` passes; returns it as last seen. `watch`
/// must have been taken before `start` was read.
pub async fn until_final(
    store: &Store,
    watch: &mut Watch,
    tenant: &str,
    start: &JobRecord,
    deadline: Instant,
) -> Result<JobRecord, ApiError> {
    let mut record = start.clone();
    while !record.status.is_final() && Instant::now() < deadline {
        record = next_change(store, watch, tenant, &record, deadline).await?;
    }
    Ok(record)
}

pub fn parse_wait(raw: Option<&str>) -> Result<Option<Duration>, ApiError> {
    match raw {
        None | Some("") => Ok(None),
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|secs| *secs <= MAX_WAIT_SECS)
            .map(|secs| Some(Duration::from_secs(secs)))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "wait must be a whole number of seconds from 0 to {MAX_WAIT_SECS}, not `{raw}`"
                ))
            }),
    }
}

/// A job's document
///
/// With `?wait=N` (long-poll): answers at once if the job is final, else when its status or progress
/// changes, or after N seconds with the document as it is.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    operation_id = "getJob",
    tag = tags::JOBS,
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "The job's id"),
        ("wait" = Option<u32>, Query, minimum = 0, maximum = 60,
            description = "Wait up to this many seconds for a change of status or progress"),
        ("tenant" = Option<String>, Query, description = "With the admin key: the tenant whose jobs these are (a tenant's key may name only itself)"),
    ),
    responses(
        (status = 200, description = "The job", body = crate::job::JobView),
        (status = 400, description = "A bad `wait`", body = Problem, content_type = "application/problem+json"),
        errors::TenantRoute,
        errors::NoSuchJob,
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    tenant: Tenant,
    query: Result<Query<WaitQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<crate::job::JobView>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(format!("bad query: {}", e.body_text())))?;
    let wait = parse_wait(query.wait.as_deref())?;
    let id = super::jobs::parse_id(&id)?;
    let _slot = wait.map(|_| state.streams.take(&tenant)).transpose()?;
    // Only a waiting request watches (a plain read is the hot path of polling clients); taken before the
    // read, so no change in between is missed.
    let watch = wait.map(|wait| (Instant::now() + wait, state.changes.watch()));
    let record = load(&state.store, tenant.as_str(), id).await?;
    let record = match watch {
        Some((deadline, mut watch)) => {
            next_change(&state.store, &mut watch, tenant.as_str(), &record, deadline).await?
        }
        None => record,
    };
    Ok(Json(record.view()))
}

/// A job's events
///
/// Server-Sent Events: an `event: job` whose data is the job document, now and after every change; the
/// stream ends after the final state.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/events",
    operation_id = "getJobEvents",
    tag = tags::JOBS,
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The event stream; each `data:` is a JobView", body = String,
            content_type = "text/event-stream"),
        errors::TenantRoute,
        errors::NoSuchJob,
    ),
)]
pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    tenant: Tenant,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = super::jobs::parse_id(&id)?;
    let slot = state.streams.take(&tenant)?;
    let watch = state.changes.watch();
    let first = load(&state.store, tenant.as_str(), id).await?;
    let store = state.store.clone();
    let closes_at = Instant::now() + MAX_STREAM;
    // State: the record to send next (none: the stream is done), and the watch. The slot lives as long
    // as the stream.
    let stream = futures_util::stream::unfold((Some(first), watch), move |(next, mut watch)| {
        let store = store.clone();
        let tenant = tenant.clone();
        let _slot = &slot;
        async move {
            let record = next?;
            let event = Event::default()
                .event("job")
                .json_data(record.view())
                .unwrap_or_else(|_| Event::default().event("error").data("could not encode the job"));
            let following = if record.status.is_final() || Instant::now() >= closes_at {
                None
            } else {
                match next_change(&store, &mut watch, tenant.as_str(), &record, closes_at).await {
                    Ok(changed) => Some(changed),
                    Err(e) => {
                        tracing::warn!(error = %e, job = %id, "event stream ended early");
                        None
                    }
                }
            };
            Some((Ok(event), (following, watch)))
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
