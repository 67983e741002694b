//! Who is calling: API keys map to tenants (`Authorization: Bearer <key>`), and every Redis key of a job
//! carries the tenant's id. The admin key (`KILN_ADMIN_KEY`) manages kinds and tenants.
//!
//! The mode is a setting, never a state: `--dev` (single tenant `default`, no keys, loopback only) or the
//! admin key (keyed mode), chosen at start and never changed by what Redis holds. An emptied key table
//! therefore leaves a keyed API closed, and adding tenants leaves a dev API open to nobody but localhost.
//!
//! Key hashes are cached in memory and reread every couple of seconds; a key the cache does not know is
//! looked up in Redis before it is refused (so a new key works on its first request), and refusals are
//! remembered briefly (so a flood of bad keys costs no round trips). A removed key stops within the
//! reread interval.

use crate::api::{ApiError, AppState};
use crate::store::{Store, StoreError, SubmitQuotas, TenantQuotas};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The tenant of dev mode (its id is its name).
pub const DEFAULT_TENANT: &str = "default";
/// How often the key cache rereads Redis; also the longest a removed key keeps working.
const REFRESH: Duration = Duration::from_secs(2);
/// How long an unknown key is refused without asking Redis again.
const MISS_TTL: Duration = Duration::from_secs(1);
/// Unknown keys remembered at most (a few hundred KiB); beyond, the oldest memories are dropped.
const MAX_MISSES: usize = 4096;

/// The calling tenant: its immutable id (in every Redis key of its jobs) and its name (for people).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
}

impl Tenant {
    pub fn from_id(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }

    /// The id, which Redis keys are built from.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The name people gave the tenant: the id without its `.suffix`.
    pub fn name(&self) -> &str {
        name_of_id(&self.id)
    }
}

/// A tenant id is `<name>.<random hex>` (tenants from before ids: just the name), so the name can be read
/// back without a lookup, and a new tenant of an old name gets a new id and none of the old data.
pub fn name_of_id(id: &str) -> &str {
    id.split_once('.').map_or(id, |(name, _)| name)
}

/// A fresh id for a tenant called `name`.
pub fn new_tenant_id(name: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{name}.{}", &random[..12])
}

/// A caller holding the admin key (or anyone, in dev mode).
#[derive(Debug, Clone, Copy)]
pub struct Admin;

pub fn is_valid_tenant_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new random API key: 256 bits from the OS generator, with a prefix that makes leaks easy to grep.
pub fn new_key() -> String {
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    format!("kiln_{}{}", a.simple(), b.simple())
}

#[derive(Debug, thiserror::Error)]
pub enum AddTenantError {
    #[error("tenant name `{0}` must be 1-64 characters of a-z, 0-9, `-` and `_`")]
    InvalidName(String),
    #[error("tenant `{0}` exists already (remove it first, or rotate its key)")]
    Exists(String),
    #[error("{0}")]
    BadQuotas(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Adds a tenant with a fresh id and key and returns the key: the only time it exists outside the caller.
pub async fn add_tenant(store: &Store, name: &str, quotas: TenantQuotas) -> Result<String, AddTenantError> {
    if !is_valid_tenant_name(name) {
        return Err(AddTenantError::InvalidName(name.to_owned()));
    }
    if let Some(problem) = quotas.problem() {
        return Err(AddTenantError::BadQuotas(problem));
    }
    let key = new_key();
    let entry = crate::store::TenantEntry {
        name: name.to_owned(),
        id: new_tenant_id(name),
        key_hash: hash_key(&key),
        created_at: crate::job::now_millis(),
        quotas,
    };
    if !store.add_tenant(&entry).await? {
        return Err(AddTenantError::Exists(name.to_owned()));
    }
    Ok(key)
}

/// Gives a tenant a new key; the old one keeps working for `grace` (zero: stops at once). `None` if there
/// is no such tenant.
pub async fn rotate_key(store: &Store, name: &str, grace: Duration) -> Result<Option<String>, StoreError> {
    let key = new_key();
    let deadline = crate::job::now_millis() + i64::try_from(grace.as_millis()).unwrap_or(i64::MAX / 2);
    Ok(store
        .rotate_tenant_key(name, &hash_key(&key), deadline)
        .await?
        .then_some(key))
}

/// How the API decides who is calling; fixed at start from the configuration, never from Redis.
#[derive(Debug, Clone)]
pub enum AuthMode {
    /// `--dev`: no keys; every request is tenant `default` with admin rights.
    Dev,
    /// Keys required: the admin key (by its hash) and tenants' keys.
    Keyed { admin_hash: String },
}

enum Caller {
    Admin,
    Tenant(String),
}

/// Unknown key hashes refused lately, so repeating one costs no Redis round trip.
#[derive(Default)]
struct Misses(HashMap<String, Instant>);

impl Misses {
    fn recent(&self, hash: &str, now: Instant) -> bool {
        self.0.get(hash).is_some_and(|at| now.duration_since(*at) < MISS_TTL)
    }

    fn remember(&mut self, hash: String, now: Instant) {
        if self.0.len() >= MAX_MISSES {
            self.0.retain(|_, at| now.duration_since(*at) < MISS_TTL);
            if self.0.len() >= MAX_MISSES {
                // Every entry is fresh: a flood of distinct keys. Forgetting costs only round trips.
                self.0.clear();
            }
        }
        self.0.insert(hash, now);
    }
}

#[derive(Clone)]
pub struct KeyRing {
    store: Store,
    mode: Arc<AuthMode>,
    /// Key hash → tenant id.
    tenants: Arc<RwLock<HashMap<String, String>>>,
    /// Tenant id → its own quotas.
    quotas: Arc<RwLock<HashMap<String, TenantQuotas>>>,
    misses: Arc<Mutex<Misses>>,
}

impl KeyRing {
    pub async fn load(store: Store, mode: AuthMode) -> Result<Self, StoreError> {
        let ring = Self {
            store,
            mode: Arc::new(mode),
            tenants: Arc::default(),
            quotas: Arc::default(),
            misses: Arc::default(),
        };
        ring.refresh().await?;
        Ok(ring)
    }

    pub fn dev_mode(&self) -> bool {
        matches!(*self.mode, AuthMode::Dev)
    }

    pub async fn refresh(&self) -> Result<(), StoreError> {
        let keys = self.store.api_keys().await?;
        let quotas = self
            .store
            .tenants()
            .await?
            .into_iter()
            .map(|t| (t.id, t.quotas))
            .collect();
        *self.tenants.write().expect("key ring poisoned") = keys;
        *self.quotas.write().expect("key ring poisoned") = quotas;
        Ok(())
    }

    /// The tenant's submit quotas: its own where set, else the deployment's defaults.
    pub fn submit_quotas(&self, tenant: &str, defaults: &SubmitQuotas) -> SubmitQuotas {
        let own = self
            .quotas
            .read()
            .expect("key ring poisoned")
            .get(tenant)
            .cloned()
            .unwrap_or_default();
        SubmitQuotas {
            max_queued: own.max_queued.unwrap_or(defaults.max_queued),
            max_per_second: own.max_per_second.unwrap_or(defaults.max_per_second),
            max_bytes: own.max_bytes.unwrap_or(defaults.max_bytes),
        }
    }

    pub async fn keep_fresh(self, shutdown: CancellationToken) {
        crate::refresh::every(REFRESH, shutdown, "the API keys", || self.refresh()).await;
    }

    /// `None` in dev mode (no keys, admin rights for all); else the caller, or 401.
    async fn identify(&self, parts: &Parts) -> Result<Option<Caller>, ApiError> {
        let admin_hash = match &*self.mode {
            AuthMode::Dev => return Ok(None),
            AuthMode::Keyed { admin_hash } => admin_hash,
        };
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("send your API key as `Authorization: Bearer <key>`".into()))?;
        let key = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| ApiError::Unauthorized("the Authorization header must be `Bearer <key>`".into()))?;
        let hash = hash_key(key);
        if *admin_hash == hash {
            return Ok(Some(Caller::Admin));
        }
        if let Some(id) = self.tenants.read().expect("key ring poisoned").get(&hash) {
            return Ok(Some(Caller::Tenant(id.clone())));
        }
        let unknown = || ApiError::Unauthorized("unknown API key".into());
        if self
            .misses
            .lock()
            .expect("key ring poisoned")
            .recent(&hash, Instant::now())
        {
            return Err(unknown());
        }
        // Not cached: perhaps added since the last reread. Redis decides, so a new key works at once.
        match self.store.tenant_of_key(&hash).await? {
            Some(id) => {
                // Its quotas too, so that its first submits already count against them.
                if let Some(entry) = self.store.tenant(name_of_id(&id)).await? {
                    self.quotas
                        .write()
                        .expect("key ring poisoned")
                        .insert(entry.id, entry.quotas);
                }
                self.tenants
                    .write()
                    .expect("key ring poisoned")
                    .insert(hash, id.clone());
                Ok(Some(Caller::Tenant(id)))
            }
            None => {
                self.misses
                    .lock()
                    .expect("key ring poisoned")
                    .remember(hash, Instant::now());
                Err(unknown())
            }
        }
    }

    /// The id of the tenant called `name` now, for the admin's `?tenant=NAME`.
    pub(crate) async fn tenant_named(&self, name: &str) -> Result<String, ApiError> {
        if self.dev_mode() && name == DEFAULT_TENANT {
            return Ok(DEFAULT_TENANT.to_owned());
        }
        self.store
            .tenant(name)
            .await?
            .map(|entry| entry.id)
            .ok_or_else(|| ApiError::NotFound(format!("no tenant named `{name}`")))
    }
}

/// `?tenant=NAME` of the request, if any (other query parameters are the route's business).
fn tenant_param(parts: &Parts) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct TenantParam {
        tenant: Option<String>,
    }
    axum::extract::Query::<TenantParam>::try_from_uri(&parts.uri)
        .ok()
        .and_then(|q| q.0.tenant)
}

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    /// The tenant whose jobs the request touches: the caller's own, or for the admin key (and dev mode)
    /// the one named by `?tenant=NAME`.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let named = tenant_param(parts).filter(|n| !n.is_empty());
        match (state.keys.identify(parts).await?, named) {
            (None, None) => Ok(Tenant::from_id(DEFAULT_TENANT)),
            (None | Some(Caller::Admin), Some(name)) => Ok(Tenant::from_id(state.keys.tenant_named(&name).await?)),
            (Some(Caller::Tenant(id)), None) => Ok(Tenant::from_id(id)),
            (Some(Caller::Tenant(id)), Some(name)) if name_of_id(&id) == name => Ok(Tenant::from_id(id)),
            (Some(Caller::Tenant(_)), Some(_)) => Err(ApiError::Forbidden(
                "`?tenant=` of another tenant needs the admin key; a tenant's key reaches only its own jobs".into(),
            )),
            (Some(Caller::Admin), None) => Err(ApiError::Forbidden(
                "jobs belong to tenants: use a tenant's key, or name the tenant with `?tenant=NAME`".into(),
            )),
        }
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match state.keys.identify(parts).await? {
            None | Some(Caller::Admin) => Ok(Admin),
            Some(Caller::Tenant(_)) => Err(ApiError::Forbidden("this route needs the admin key".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashes_stable() {
        let (a, b) = (new_key(), new_key());
        assert_ne!(a, b);
        assert!(a.starts_with("kiln_") && a.len() == 69, "{a}");
        assert_eq!(hash_key(&a), hash_key(&a));
        assert_eq!(hash_key(&a).len(), 64);
    }

    #[test]
    fn tenant_names() {
        assert!(is_valid_tenant_name("acme-1_x"));
        assert!(!is_valid_tenant_name(""));
        assert!(!is_valid_tenant_name("Acme"));
        assert!(!is_valid_tenant_name("a:b"));
        assert!(!is_valid_tenant_name("a/b"));
        assert!(!is_valid_tenant_name("a.b"));
        assert!(!is_valid_tenant_name(&"a".repeat(65)));
    }

    #[test]
    fn ids_carry_the_name_and_differ_per_creation() {
        let (a, b) = (new_tenant_id("acme"), new_tenant_id("acme"));
        assert_ne!(a, b);
        assert_eq!(name_of_id(&a), "acme");
        assert_eq!(name_of_id("legacy"), "legacy");
        assert!(!a.contains(':') && !a.contains('/'));
    }

    #[test]
    fn misses_are_bounded_and_short() {
        let mut misses = Misses::default();
        let now = Instant::now();
        for i in 0..MAX_MISSES * 2 {
            misses.remember(i.to_string(), now);
        }
        assert!(misses.0.len() <= MAX_MISSES);
        misses.remember("x".into(), now);
        assert!(misses.recent("x", now));
        assert!(!misses.recent("x", now + MISS_TTL));
    }
}
