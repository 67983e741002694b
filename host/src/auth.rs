//! Who is calling: API keys map to tenants (`Authorization: Bearer <key>`), and every Redis key of a job
//! carries the tenant. The admin key (`KILN_ADMIN_KEY`) manages kinds and tenants.
//!
//! With no admin key and no tenant keys at all, Kiln runs in single-tenant dev mode: every request acts
//! as the `default` tenant and may use admin routes. Key hashes are cached in memory and refreshed every
//! few seconds, so checking a key costs no Redis round trip; a removed key stops working within that time.

use crate::api::{ApiError, AppState};
use crate::store::{Store, StoreError, SubmitQuotas, TenantQuotas};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The tenant of dev mode.
pub const DEFAULT_TENANT: &str = "default";
/// How often the key cache rereads Redis.
const REFRESH: Duration = Duration::from_secs(2);

/// The calling tenant's name: `[a-z0-9_-]{1,64}`, so it is safe inside Redis keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant(pub String);

impl Tenant {
    pub fn as_str(&self) -> &str {
        &self.0
    }
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
    #[error("tenant `{0}` exists already (remove it first to issue a new key)")]
    Exists(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Adds a tenant with a fresh key and returns the key: the only time it exists outside the caller.
pub async fn add_tenant(store: &Store, name: &str, quotas: TenantQuotas) -> Result<String, AddTenantError> {
    if !is_valid_tenant_name(name) {
        return Err(AddTenantError::InvalidName(name.to_owned()));
    }
    let key = new_key();
    let entry = crate::store::TenantEntry {
        name: name.to_owned(),
        key_hash: hash_key(&key),
        created_at: crate::job::now_millis(),
        quotas,
    };
    if !store.add_tenant(&entry).await? {
        return Err(AddTenantError::Exists(name.to_owned()));
    }
    Ok(key)
}

enum Caller {
    Admin,
    Tenant(String),
}

#[derive(Clone)]
pub struct KeyRing {
    store: Store,
    admin_hash: Option<String>,
    /// Key hash → tenant name.
    tenants: Arc<RwLock<HashMap<String, String>>>,
    /// Tenant name → its own quotas.
    quotas: Arc<RwLock<HashMap<String, TenantQuotas>>>,
}

impl KeyRing {
    pub async fn load(store: Store, admin_key: Option<&str>) -> Result<Self, StoreError> {
        let ring = Self {
            store,
            admin_hash: admin_key.filter(|k| !k.is_empty()).map(hash_key),
            tenants: Arc::default(),
            quotas: Arc::default(),
        };
        ring.refresh().await?;
        Ok(ring)
    }

    /// No keys of any kind: every request is the `default` tenant, with admin rights.
    pub fn dev_mode(&self) -> bool {
        self.admin_hash.is_none() && self.tenants.read().expect("key ring poisoned").is_empty()
    }

    pub async fn refresh(&self) -> Result<(), StoreError> {
        let keys = self.store.api_keys().await?;
        let quotas = self
            .store
            .tenants()
            .await?
            .into_iter()
            .map(|t| (t.name, t.quotas))
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
            .copied()
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

    fn identify(&self, parts: &Parts) -> Result<Option<Caller>, ApiError> {
        if self.dev_mode() {
            return Ok(None);
        }
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("send your API key as `Authorization: Bearer <key>`".into()))?;
        let key = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| ApiError::Unauthorized("the Authorization header must be `Bearer <key>`".into()))?;
        let hash = hash_key(key);
        if self.admin_hash.as_deref() == Some(hash.as_str()) {
            return Ok(Some(Caller::Admin));
        }
        match self.tenants.read().expect("key ring poisoned").get(&hash) {
            Some(tenant) => Ok(Some(Caller::Tenant(tenant.clone()))),
            None => Err(ApiError::Unauthorized("unknown API key".into())),
        }
    }
}

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match state.keys.identify(parts)? {
            None => Ok(Tenant(DEFAULT_TENANT.to_owned())),
            Some(Caller::Tenant(name)) => Ok(Tenant(name)),
            Some(Caller::Admin) => Err(ApiError::Forbidden(
                "the admin key manages kinds and tenants; jobs belong to tenants, so use a tenant's key".into(),
            )),
        }
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match state.keys.identify(parts)? {
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
        assert!(!is_valid_tenant_name(&"a".repeat(65)));
    }
}
