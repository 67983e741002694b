//! API keys and tenants. Keys are stored only as SHA-256 hashes; a leaked Redis dump reveals no key.

use super::{Result, Store, StoreError, keys};
use redis::AsyncCommands;
use std::collections::HashMap;
use std::sync::LazyLock;

static ADD_TENANT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("lua/add_tenant.lua")));
static SET_QUOTAS: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("lua/set_quotas.lua")));
static REMOVE_TENANT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("lua/remove_tenant.lua")));

/// A tenant as listed by `kiln tenant list`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TenantEntry {
    pub name: String,
    pub key_hash: String,
    pub created_at: i64,
    /// The tenant's own quotas; unset ones fall back to the deployment's defaults.
    #[serde(default)]
    pub quotas: TenantQuotas,
}

/// A tenant's own quotas; `null` (unset) means the deployment's default, 0 means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantQuotas {
    pub max_queued: Option<u64>,
    pub max_running: Option<u32>,
    pub max_per_second: Option<u32>,
    /// Bytes the tenant may hold in Redis (queued inputs and params, kept results and logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
}

impl Store {
    /// Adds a tenant with the hash of its key; false if the name is taken.
    pub async fn add_tenant(&self, entry: &TenantEntry) -> Result<bool> {
        let json = serde_json::to_string(entry).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut conn = self.conn.clone();
        let added: i64 = ADD_TENANT
            .key(keys::TENANTS)
            .key(keys::API_KEYS)
            .key(keys::RUNNING_LIMITS)
            .arg(&entry.name)
            .arg(&entry.key_hash)
            .arg(json)
            .arg(entry.quotas.max_running.map(|n| n.to_string()).unwrap_or_default())
            .invoke_async(&mut conn)
            .await?;
        Ok(added == 1)
    }

    /// Removes a tenant and its key; its jobs expire as usual. False if there was no such tenant.
    pub async fn remove_tenant(&self, name: &str) -> Result<bool> {
        let mut conn = self.conn.clone();
        let removed: i64 = REMOVE_TENANT
            .key(keys::TENANTS)
            .key(keys::API_KEYS)
            .key(keys::RUNNING_LIMITS)
            .arg(name)
            .invoke_async(&mut conn)
            .await?;
        Ok(removed == 1)
    }

    pub async fn tenants(&self) -> Result<Vec<TenantEntry>> {
        let mut tenants: Vec<TenantEntry> = self.json_values(keys::TENANTS).await?;
        tenants.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(tenants)
    }

    /// Sets a tenant's own quotas (replacing earlier ones); false if there is no such tenant.
    pub async fn set_tenant_quotas(&self, name: &str, quotas: TenantQuotas) -> Result<bool> {
        let json = serde_json::to_string(&quotas).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut conn = self.conn.clone();
        let set: i64 = SET_QUOTAS
            .key(keys::TENANTS)
            .key(keys::RUNNING_LIMITS)
            .arg(name)
            .arg(json)
            .arg(quotas.max_running.map(|n| n.to_string()).unwrap_or_default())
            .invoke_async(&mut conn)
            .await?;
        Ok(set == 1)
    }

    /// Every key hash → tenant name; small enough to hold in memory and check without a round trip.
    pub async fn api_keys(&self) -> Result<HashMap<String, String>> {
        let mut conn = self.conn.clone();
        Ok(conn.hgetall(keys::API_KEYS).await?)
    }
}
