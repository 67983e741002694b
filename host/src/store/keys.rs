//! The Redis schema: every key Kiln uses is built here and nowhere else.
//!
//! All keys share the hash tag `{kiln}`, so they live in one Redis Cluster slot and every Lua script may
//! touch any of them atomically. That trades sharding of Kiln's own keys for atomicity; one slot of a
//! cluster still carries far more jobs per second than the wasm work behind them. Tenants and ids never
//! contain `:` or `/` (both are validated; an id is a name, `.` and hex), so keys cannot collide.
//!
//! | key                                  | type   | holds                                              | TTL                    |
//! |--------------------------------------|--------|----------------------------------------------------|------------------------|
//! | `{kiln}:job:<tenant>:<id>`           | hash   | the job document (fields in `store::RECORD_FIELDS`, plus `lease`, `cache_key`; a retry's `retry_of`, a retried job's `retried_as`) | `ttl` after final state|
//! | `{kiln}:input:<tenant>:<id>`         | string | the uploaded input bytes (what a retry copies)     | deleted at success; `ttl` after failure or cancel |
//! | `{kiln}:params:<tenant>:<id>`        | string | the job's params JSON, read only by the claim      | deleted at success; `ttl` after failure or cancel |
//! | `{kiln}:step:<tenant>:<id>:<n>`     | string | the output of a pipeline's step `n` (the next step's input; a retry starts after it; held like a result) | `ttl` |
//! | `{kiln}:result:<tenant>:<id>:<name>` | string | a pipeline's named output (`GET /v1/jobs/{id}/result/{name}`; held like a result) | `ttl` |
//! | `{kiln}:result:<tenant>:<id>`        | string | the output bytes                                   | `ttl`                  |
//! | `{kiln}:log:<tenant>:<id>`           | string | the guest's log of its last attempt (≤ 64 KiB)     | `ttl` from that attempt|
//! | `{kiln}:blob:<tenant>:<sha256>`      | string | a blob's bytes (`POST /v1/blobs`), by their hash   | `KILN_BLOB_TTL_SECS`, pushed out by each upload of the same bytes |
//! | `{kiln}:blob-type:<tenant>:<sha256>` | string | the blob's media type                              | as the blob            |
//! | `{kiln}:jobs:<tenant>`               | zset   | ids of the tenant's jobs (score 0, by lex = time)  | pruned by listing and by the workers' sweep |
//! | `{kiln}:bytes`                       | hash   | tenant → bytes it holds in Redis (params, inputs, results, logs; byte quota) | none |
//! | `{kiln}:held:<tenant>`               | zset   | `<id>/<bytes>` a finished job keeps, `blob:<sha256>/<bytes>` a blob, `<id>:step-<n>/<bytes>` and `<id>:<output>/<bytes>` a pipeline's step outputs and named results, score = its expiry; the sweep releases due ones | emptied by the sweep |
//! | `{kiln}:indexed`                     | set    | tenants that have a `jobs:<tenant>` index (sweep)  | emptied by the sweep   |
//! | `{kiln}:cache:<tenant>:<sha256>`     | string | id of the job that succeeded for this kind version + params + input (result cache; `finish.lua` sets it, `submit.lua` reads it) | `ttl` from that success |
//! | `{kiln}:idem:<tenant>:<key>`         | string | `<id> <sha256 of kind+params+input>` of a submit with `Idempotency-Key` | `ttl` from submit |
//! | `{kiln}:queue:<tenant>`              | list   | ids of `normal` jobs ready to run, LPUSH in, RPOP out (FIFO) | none         |
//! | `{kiln}:queue-high:<tenant>`         | list   | the same for `high` jobs, taken before the normal ones | none               |
//! | `{kiln}:queue-low:<tenant>`          | list   | the same for `low` jobs, taken after the normal ones | none                 |
//! | `{kiln}:scheduled-by-tenant`         | hash   | tenant → its `scheduled` jobs (they count as queued for `max-queued`) | none |
//! | `{kiln}:paused-kinds`                | set    | kinds whose jobs are not started (admin pause)     | none                   |
//! | `{kiln}:paused-tenants`              | hash   | tenant id → name, tenants whose jobs are not started (admin pause) | none   |
//! | `{kiln}:schedules`                   | zset   | `<tenant>/<schedule id>` of every recurring schedule, score = its next due time (ms) | none |
//! | `{kiln}:schedule:<tenant>:<id>`      | hash   | a recurring schedule: cron, kind, params, priority, input ref, next/last due, last job, last skip | deleted with the schedule |
//! | `{kiln}:schedule-input:<tenant>:<id>`| string | the schedule's own copy of its input (held against the byte quota while it lives) | deleted with the schedule |
//! | `{kiln}:schedules-of:<tenant>`       | set    | the tenant's schedule ids (listing, its limit, tenant removal) | none     |
//! | `{kiln}:ready`                       | list   | ring of tenants that may have queued work          | none                   |
//! | `{kiln}:ready-set`                   | set    | the same tenants, to keep the ring free of repeats | none                   |
//! | `{kiln}:leases`                      | zset   | `<tenant>/<id>` of running jobs, score = deadline  | none                   |
//! | `{kiln}:delayed`                     | zset   | `<tenant>/<id>` waiting to retry or `scheduled` (`run_at`), score = due time | none |
//! | `{kiln}:webhooks`                    | zset   | `<tenant>/<id>` of jobs whose completion webhook is due, score = next attempt (ms); a claimed attempt's score is its lease's end | none |
//! | `{kiln}:webhooks-pending`            | hash   | tenant → its jobs with a callback URL whose delivery has not ended (bounded at submit) | none |
//! | `{kiln}:deliveries:<tenant>:<id>`    | list   | JSON of each webhook attempt (time, HTTP status or error, duration), oldest first, the last 16 | as the job |
//! | `{kiln}:webhook-secret:<tenant>`     | string | the tenant's webhook signing secret (`whsec_<base64>`), made at first use | none |
//! | `{kiln}:wake`                        | list   | tokens that wake idle workers (BLPOP), capped      | none                   |
//! | `{kiln}:kinds`                       | hash   | kind name → registered kind (manifest + version)   | none                   |
//! | `{kiln}:version:<version>`           | string | JSON {manifest, component hash} of a kind version (hash of both) | collected when retired and unused |
//! | `{kiln}:component:<sha256>`          | string | a component's bytes, by its own hash (shared by versions) | deleted with its last version |
//! | `{kiln}:component-refs`              | hash   | component hash → versions that use it              | none                   |
//! | `{kiln}:versions`                    | zset   | every stored version, score = when it was retired (ms), `+inf` while in a kind's history | collected with the version |
//! | `{kiln}:kind-versions:<kind>`        | zset   | the kind's history: its last [`MAX_KIND_VERSIONS`](crate::store::MAX_KIND_VERSIONS) versions, score = upload time (ms) | deleted with the kind |
//! | `{kiln}:unfinished-by-version`       | hash   | version → unfinished jobs on it (kept by the scripts) | none                |
//! | `{kiln}:builtins`                    | hash   | kind name → version Kiln last registered at start-up (built-ins, `--kinds-dir`) | none |
//! | `{kiln}:manifest:<kind>:<sha256>`    | string | legacy: a manifest of a version stored before version records (read only) | none |
//! | `{kiln}:running:<tenant>`            | set    | ids of the tenant's running jobs (for its limit)   | none                   |
//! | `{kiln}:limits:running`              | hash   | tenant → jobs it may run at once (overrides)       | none                   |
//! | `{kiln}:limits:kind-running:<tenant>`| hash   | kind → jobs of it the tenant may run at once (`kind_running` quota) | deleted with the tenant |
//! | `{kiln}:running-by-kind:<tenant>`    | hash   | kind → the tenant's running jobs of it (kept in step with `running:<tenant>` by the scripts) | deleted with the tenant |
//! | `{kiln}:rate:<tenant>:<unix second>` | string | submits in that second (rate quota)                | 2 s                    |
//! | `{kiln}:queued-by-kind`              | hash   | kind → jobs waiting in queues (kept by the scripts) | none                   |
//! | `{kiln}:workers`                     | hash   | worker id → JSON heartbeat (host, pid, running)    | gone after 30 s silence|
//! | `{kiln}:finished:<unix minute>`      | string | jobs that reached a final state in that minute     | 1 h                    |
//! | `{kiln}:tenants`                     | hash   | tenant name → JSON {name, id, key_hash, created_at, quotas} | none          |
//! | `{kiln}:api-keys`                    | hash   | SHA-256 of an API key → tenant id                  | none                   |
//! | `{kiln}:retiring-keys`               | zset   | SHA-256 of a rotated-out key, score = end of its grace (ms) | dropped after it by `live_keys.lua` |
//!
//! `<tenant>` in the keys above is the tenant's immutable id (`<name>.<12 hex>`, or for tenants from
//! before ids, the name; dev mode's tenant is `default`), never a name that could be given out again.
//!
//! A job with a webhook keeps its state in its own hash: `callback_url` (set at submit), `webhook_state`
//! (`pending`, `retrying`, `delivered`, `failed`), `webhook_attempts` and the current attempt's
//! `webhook_lease` (`claim_webhook.lua`, `webhook_done.lua`).
//!
//! One pub/sub channel, not a key: `{kiln}:changed` carries `<tenant>/<id>` each time a script ends a job,
//! requeues it or stores its progress, so the API's watchers (`?wait=`, SSE) wake at once instead of
//! polling. The start of a run is not announced (watchers see it at their next reread, about a second).

use crate::job::JobId;

/// The hash tag and prefix of every key; the Lua scripts build dynamic keys from it too.
pub const PREFIX: &str = "{kiln}";

pub const READY_RING: &str = "{kiln}:ready";
pub const READY_SET: &str = "{kiln}:ready-set";
pub const LEASES: &str = "{kiln}:leases";
pub const DELAYED: &str = "{kiln}:delayed";
pub const WAKE: &str = "{kiln}:wake";
pub const KINDS: &str = "{kiln}:kinds";
pub const VERSIONS: &str = "{kiln}:versions";
pub const COMPONENT_REFS: &str = "{kiln}:component-refs";
/// Kept by `submit.lua` (+1), `finish.lua`, `cancel.lua` and `dequeue.lua` (-1 at a final state), which build it from
/// [`PREFIX`]; read by `collect_versions.lua`.
pub const UNFINISHED_BY_VERSION: &str = "{kiln}:unfinished-by-version";
pub const BUILTINS: &str = "{kiln}:builtins";
pub const INDEXED: &str = "{kiln}:indexed";
pub const TENANTS: &str = "{kiln}:tenants";
pub const RUNNING_LIMITS: &str = "{kiln}:limits:running";
pub const WORKERS: &str = "{kiln}:workers";
pub const QUEUED_BY_KIND: &str = "{kiln}:queued-by-kind";
pub const API_KEYS: &str = "{kiln}:api-keys";
/// Bytes each tenant holds in Redis, kept by the job scripts (`submit.lua` builds it from [`PREFIX`]).
pub const BYTES_HELD: &str = "{kiln}:bytes";
/// Scheduled jobs per tenant, kept by `submit.lua`, `dequeue.lua` and `cancel.lua` (built from [`PREFIX`]).
pub const SCHEDULED_BY_TENANT: &str = "{kiln}:scheduled-by-tenant";
/// Paused kinds and tenants; `dequeue.lua` builds both from [`PREFIX`].
pub const PAUSED_KINDS: &str = "{kiln}:paused-kinds";
pub const PAUSED_TENANTS: &str = "{kiln}:paused-tenants";
/// Every schedule by its next due time; the API's timer reads the due ones once a second.
pub const SCHEDULES: &str = "{kiln}:schedules";
pub const RETIRING_KEYS: &str = "{kiln}:retiring-keys";
/// Due webhook deliveries; the final-state scripts build it from [`PREFIX`].
pub const WEBHOOKS: &str = "{kiln}:webhooks";
/// Pending deliveries per tenant (`submit.lua` builds it from [`PREFIX`]).
pub const WEBHOOKS_PENDING: &str = "{kiln}:webhooks-pending";
/// The pub/sub channel of job changes (`dequeue.lua` builds it from [`PREFIX`]).
pub const CHANGED: &str = "{kiln}:changed";

pub fn job(tenant: &str, id: JobId) -> String {
    format!("{PREFIX}:job:{tenant}:{id}")
}

pub fn input(tenant: &str, id: JobId) -> String {
    format!("{PREFIX}:input:{tenant}:{id}")
}

/// Beside the job, not in it: params may be megabytes, and only the worker's claim reads them.
pub fn params(tenant: &str, id: JobId) -> String {
    format!("{PREFIX}:params:{tenant}:{id}")
}

/// A pipeline step's output (`save_step.lua`).
pub fn step(tenant: &str, id: JobId, index: usize) -> String {
    format!("{PREFIX}:step:{tenant}:{id}:{index}")
}

/// A pipeline's named output (`save_step.lua`).
pub fn named_result(tenant: &str, id: JobId, name: &str) -> String {
    format!("{PREFIX}:result:{tenant}:{id}:{name}")
}

pub fn result(tenant: &str, id: JobId) -> String {
    format!("{PREFIX}:result:{tenant}:{id}")
}

/// The attempts of the job's webhook delivery (`webhook_done.lua`).
pub fn deliveries(tenant: &str, id: JobId) -> String {
    format!("{PREFIX}:deliveries:{tenant}:{id}")
}

/// The tenant's webhook signing secret (`remove_tenant.lua` builds it from [`PREFIX`]).
pub fn webhook_secret(tenant: &str) -> String {
    format!("{PREFIX}:webhook-secret:{tenant}")
}

pub fn log(tenant: &str, id: JobId) -> String {
    format!("{PREFIX}:log:{tenant}:{id}")
}

/// The result cache: `hash` is the SHA-256 of a kind version, canonical params and input (`submit.lua`
/// records it on the job, and `finish.lua` fills it).
pub fn cache(tenant: &str, hash: &str) -> String {
    format!("{PREFIX}:cache:{tenant}:{hash}")
}

/// A tenant's blob, by the hex SHA-256 of its bytes (`submit.lua` copies inputs from it).
pub fn blob(tenant: &str, hex: &str) -> String {
    format!("{PREFIX}:blob:{tenant}:{hex}")
}

pub fn blob_type(tenant: &str, hex: &str) -> String {
    format!("{PREFIX}:blob-type:{tenant}:{hex}")
}

/// What a tenant's finished jobs keep until they expire, so that the sweep can release their bytes.
pub fn held(tenant: &str) -> String {
    format!("{PREFIX}:held:{tenant}")
}

pub fn index(tenant: &str) -> String {
    format!("{PREFIX}:jobs:{tenant}")
}

/// An `Idempotency-Key` as the tenant sent it (any visible ASCII; it is the key's last part, so `:` is harmless).
pub fn idempotency(tenant: &str, key: &str) -> String {
    format!("{PREFIX}:idem:{tenant}:{key}")
}

/// Ids of a tenant's running jobs; its size is checked against the tenant's running limit.
pub fn running(tenant: &str) -> String {
    format!("{PREFIX}:running:{tenant}")
}

/// A tenant's per-kind running limits (`add_tenant.lua`; `set_quotas.lua` and `dequeue.lua` build it from
/// [`PREFIX`]).
pub fn kind_running_limits(tenant: &str) -> String {
    format!("{PREFIX}:limits:kind-running:{tenant}")
}

/// A tenant's running jobs per kind, kept by `dequeue.lua`, `finish.lua` and `cancel.lua` (built from
/// [`PREFIX`] there).
pub fn running_by_kind(tenant: &str) -> String {
    format!("{PREFIX}:running-by-kind:{tenant}")
}

/// A recurring schedule's definition and state (`fire_schedule.lua` gets it as an argument).
pub fn schedule(tenant: &str, id: JobId) -> String {
    format!("{PREFIX}:schedule:{tenant}:{id}")
}

/// A schedule's own copy of its input: each due job copies it, so no blob TTL can break the schedule.
pub fn schedule_input(tenant: &str, id: JobId) -> String {
    format!("{PREFIX}:schedule-input:{tenant}:{id}")
}

/// The ids of a tenant's schedules (`remove_tenant.lua` builds it from [`PREFIX`]).
pub fn schedules_of(tenant: &str) -> String {
    format!("{PREFIX}:schedules-of:{tenant}")
}

/// A per-minute counter of finished jobs, for throughput in stats.
pub fn finished_in_minute(unix_minute: i64) -> String {
    format!("{PREFIX}:finished:{unix_minute}")
}

/// The tenant's queue of `normal` jobs (and of every job from before priorities).
pub fn queue(tenant: &str) -> String {
    format!("{PREFIX}:queue:{tenant}")
}

/// The tenant's queue of jobs of `priority` (the Lua scripts build the same names from [`PREFIX`]).
pub fn queue_at(tenant: &str, priority: crate::job::Priority) -> String {
    match priority {
        crate::job::Priority::Normal => queue(tenant),
        other => format!("{PREFIX}:queue-{}:{tenant}", other.as_str()),
    }
}

/// A component's bytes by its hash (`put_kind.lua` and `collect_versions.lua` build it from [`PREFIX`]).
pub fn component(hash: &str) -> String {
    format!("{PREFIX}:component:{hash}")
}

/// A kind version's record (`put_kind.lua` and `collect_versions.lua` build it from [`PREFIX`]).
pub fn version(version: &str) -> String {
    format!("{PREFIX}:version:{version}")
}

/// The member naming a job in the cross-tenant sets (`leases`, `delayed`).
pub fn member(tenant: &str, id: JobId) -> String {
    format!("{tenant}/{id}")
}

/// A kind's history, the versions a submit may pin and an admin may make current again (`put_kind.lua`
/// builds it from [`PREFIX`]).
pub fn kind_versions(kind: &str) -> String {
    format!("{PREFIX}:kind-versions:{kind}")
}

/// Where versions stored before version records kept their manifest (version = component hash then).
pub fn legacy_manifest(kind: &str, version: &str) -> String {
    format!("{PREFIX}:manifest:{kind}:{version}")
}
