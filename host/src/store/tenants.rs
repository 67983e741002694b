//! API keys and tenants. Keys are stored only as SHA-256 hashes; a leaked Redis dump reveals no key.

use super::{Result, Store, StoreError, keys};
use redis::AsyncCommands;
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

static ADD_TENANT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("lua/add_tenant.lua")));
static SET_QUOTAS: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("lua/set_quotas.lua")));
static REMOVE_TENANT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("lua/remove_tenant.lua")));
static ROTATE_KEY: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("lua/rotate_key.lua")));
static LIVE_KEYS: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("lua/live_keys.lua")));

/// The per-job keys a removed tenant loses (`keys::job` and its siblings), by their kind in the key.
const PER_JOB_KEYS: &[&str] = &["job", "params", "input", "result", "log", "deliveries"];

/// A tenant as listed by `kiln tenant list`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TenantEntry {
    pub name: String,
    /// Immutable, in every Redis key of the tenant's jobs (`auth::new_tenant_id`); tenants from before
    /// ids have none stored and use their name.
    #[serde(default)]
    pub id: String,
    pub key_hash: String,
    pub created_at: i64,
    /// The tenant's own quotas; unset ones fall back to the deployment's defaults.
    #[serde(default)]
    pub quotas: TenantQuotas,
}

/// A tenant's own quotas; `null` (unset) means the deployment's default, 0 means no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantQuotas {
    pub max_queued: Option<u64>,
    pub max_running: Option<u32>,
    pub max_per_second: Option<u32>,
    /// Bytes the tenant may hold in Redis (queued inputs and params, kept results and logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Jobs of a kind the tenant may run at once, by kind name (`{"crop": 2}`), beside `max_running`;
    /// kinds not named have no limit of their own. `dequeue.lua` steps over a kind at its limit, so the
    /// tenant's other kinds still run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kind_running: BTreeMap<String, u32>,
}

/// Kinds one tenant may have a running limit for; each is a small hash field the claim reads.
pub const MAX_KIND_RUNNING_LIMITS: usize = 64;

impl TenantQuotas {
    /// Why these quotas cannot be set, if they cannot: a kind-running limit names no valid kind name, or
    /// there are too many.
    pub fn problem(&self) -> Option<String> {
        if self.kind_running.len() > MAX_KIND_RUNNING_LIMITS {
            return Some(format!(
                "`kind_running` names {} kinds; at most {MAX_KIND_RUNNING_LIMITS} may have a limit",
                self.kind_running.len()
            ));
        }
        self.kind_running
            .keys()
            .find(|kind| !crate::kinds::is_valid_kind_name(kind))
            .map(|kind| format!("`kind_running` names `{kind}`, which is not a valid kind name"))
    }

    /// The per-kind limits as the scripts take them: kind, limit, kind, limit...
    fn kind_running_args(&self) -> Vec<String> {
        self.kind_running
            .iter()
            .flat_map(|(kind, limit)| [kind.clone(), limit.to_string()])
            .collect()
    }
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
            .key(keys::kind_running_limits(&entry.id))
            .arg(&entry.name)
            .arg(&entry.key_hash)
            .arg(json)
            .arg(entry.quotas.max_running.map(|n| n.to_string()).unwrap_or_default())
            .arg(&entry.id)
            .arg(entry.quotas.kind_running_args())
            .invoke_async(&mut conn)
            .await?;
        Ok(added == 1)
    }

    /// Removes a tenant with its keys and all its jobs (queued ones never run, running ones lose their
    /// lease). The number of jobs removed; `None` if there was no such tenant.
    pub async fn remove_tenant(&self, name: &str) -> Result<Option<u64>> {
        let mut conn = self.conn.clone();
        let mut invocation = REMOVE_TENANT.prepare_invoke();
        invocation
            .key(keys::TENANTS)
            .key(keys::API_KEYS)
            .key(keys::RETIRING_KEYS)
            .key(keys::RUNNING_LIMITS)
            .key(keys::LEASES)
            .key(keys::DELAYED)
            .key(keys::QUEUED_BY_KIND)
            .key(keys::INDEXED)
            .arg(name)
            .arg(keys::PREFIX)
            .arg(keys::CHANGED);
        for kind in PER_JOB_KEYS {
            invocation.arg(*kind);
        }
        let removed: i64 = invocation.invoke_async(&mut conn).await?;
        Ok(u64::try_from(removed).ok())
    }

    /// Gives a tenant a new key hash; the old one works until `old_valid_until` (ms). False if there is
    /// no such tenant.
    pub async fn rotate_tenant_key(&self, name: &str, new_hash: &str, old_valid_until: i64) -> Result<bool> {
        let mut conn = self.conn.clone();
        let rotated: i64 = ROTATE_KEY
            .key(keys::TENANTS)
            .key(keys::API_KEYS)
            .key(keys::RETIRING_KEYS)
            .arg(name)
            .arg(new_hash)
            .arg(old_valid_until)
            .arg(crate::job::now_millis())
            .invoke_async(&mut conn)
            .await?;
        Ok(rotated == 1)
    }

    pub async fn tenants(&self) -> Result<Vec<TenantEntry>> {
        let mut tenants: Vec<TenantEntry> = self.json_values(keys::TENANTS).await?;
        tenants.iter_mut().for_each(TenantEntry::fill_id);
        tenants.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(tenants)
    }

    /// The tenant called `name`, if any.
    pub async fn tenant(&self, name: &str) -> Result<Option<TenantEntry>> {
        let mut conn = self.conn.clone();
        let json: Option<String> = conn.hget(keys::TENANTS, name).await?;
        json.map(|json| {
            let mut entry: TenantEntry =
                serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("tenant `{name}`: {e}")))?;
            entry.fill_id();
            Ok(entry)
        })
        .transpose()
    }

    /// Sets a tenant's own quotas (replacing earlier ones); false if there is no such tenant.
    pub async fn set_tenant_quotas(&self, name: &str, quotas: &TenantQuotas) -> Result<bool> {
        let json = serde_json::to_string(&quotas).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut conn = self.conn.clone();
        let set: i64 = SET_QUOTAS
            .key(keys::TENANTS)
            .key(keys::RUNNING_LIMITS)
            .arg(name)
            .arg(json)
            .arg(quotas.max_running.map(|n| n.to_string()).unwrap_or_default())
            .arg(keys::PREFIX)
            .arg(quotas.kind_running_args())
            .invoke_async(&mut conn)
            .await?;
        Ok(set == 1)
    }

    /// Every live key hash → tenant id (dropping keys whose rotation grace has passed); small enough to
    /// hold in memory and check without a round trip.
    pub async fn api_keys(&self) -> Result<HashMap<String, String>> {
        let mut conn = self.conn.clone();
        Ok(LIVE_KEYS
            .key(keys::API_KEYS)
            .key(keys::RETIRING_KEYS)
            .arg(crate::job::now_millis())
            .invoke_async(&mut conn)
            .await?)
    }

    /// The tenant id of one key hash, straight from Redis (a key added since the cache's last reread).
    pub async fn tenant_of_key(&self, hash: &str) -> Result<Option<String>> {
        let mut conn = self.conn.clone();
        let (id, retiring_at): (Option<String>, Option<i64>) = redis::pipe()
            .hget(keys::API_KEYS, hash)
            .zscore(keys::RETIRING_KEYS, hash)
            .query_async(&mut conn)
            .await?;
        Ok(id.filter(|_| retiring_at.is_none_or(|at| at > crate::job::now_millis())))
    }
}

impl TenantEntry {
    /// Tenants from before ids are known by their name.
    fn fill_id(&mut self) {
        if self.id.is_empty() {
            self.id = self.name.clone();
        }
    }
}
