//! Queue statistics for operators and autoscalers (`GET /v1/stats`).

use super::{Result, Store, keys};
use crate::job::Priority;
use std::collections::BTreeMap;

/// How much work is waiting and running, across all tenants.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct QueueStats {
    /// Jobs waiting in tenant queues (may briefly count cancelled jobs whose entry is not yet skipped).
    pub queued: u64,
    pub queued_by_tenant: BTreeMap<String, u64>,
    /// Jobs waiting in queues, by kind.
    pub queued_by_kind: BTreeMap<String, u64>,
    /// Jobs waiting for a retry's backoff to pass.
    pub retrying: u64,
    /// Jobs waiting for their `run_at` time (not in `queued`).
    pub scheduled: u64,
    /// Paused kinds and tenants: their jobs stay queued.
    pub paused: super::Paused,
    /// Jobs holding a lease, i.e. running on some worker.
    pub running: u64,
    /// Bytes each tenant holds in Redis (the byte quota counts these): inputs and params of unfinished
    /// jobs, results, logs and params that finished ones keep until they expire.
    pub bytes_by_tenant: BTreeMap<String, u64>,
}

impl Store {
    /// Four round trips: the tenants with queued work, every queue length and the set sizes, the kinds,
    /// bytes held and scheduled jobs, what is paused.
    pub async fn queue_stats(&self) -> Result<QueueStats> {
        let mut conn = self.conn.clone();
        let tenants: Vec<String> = redis::cmd("SMEMBERS")
            .arg(keys::READY_SET)
            .query_async(&mut conn)
            .await?;
        let mut pipe = redis::pipe();
        for tenant in &tenants {
            for priority in [Priority::High, Priority::Normal, Priority::Low] {
                pipe.llen(keys::queue_at(tenant, priority));
            }
        }
        pipe.zcard(keys::DELAYED).zcard(keys::LEASES);
        let mut counts: Vec<u64> = pipe.query_async(&mut conn).await?;
        let (by_kind, bytes, scheduled): (BTreeMap<String, i64>, BTreeMap<String, i64>, Vec<i64>) = redis::pipe()
            .hgetall(keys::QUEUED_BY_KIND)
            .hgetall(keys::BYTES_HELD)
            .hvals(keys::SCHEDULED_BY_TENANT)
            .query_async(&mut conn)
            .await?;
        let bytes_by_tenant = bytes
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| (t, n as u64))
            .collect();
        let queued_by_kind = by_kind
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (k, n as u64))
            .collect();
        let running = counts.pop().unwrap_or_default();
        // The delayed zset holds both retries and scheduled jobs.
        let scheduled = scheduled.into_iter().filter(|n| *n > 0).sum::<i64>() as u64;
        let retrying = counts.pop().unwrap_or_default().saturating_sub(scheduled);
        let queued_by_tenant: BTreeMap<String, u64> = tenants
            .into_iter()
            .zip(counts.chunks(3).map(|c| c.iter().sum()))
            .filter(|(_, n)| *n > 0)
            .collect();
        Ok(QueueStats {
            queued: queued_by_tenant.values().sum(),
            queued_by_tenant,
            queued_by_kind,
            retrying,
            scheduled,
            paused: self.paused().await?,
            running,
            bytes_by_tenant,
        })
    }
}
