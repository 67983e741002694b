//! Flow control an admin sets: paused kinds and tenants, whose queued jobs `dequeue.lua` does not start.

use super::{Result, Store, keys};
use redis::AsyncCommands;
use std::collections::BTreeSet;

/// What is paused now (`GET /v1/stats`).
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct Paused {
    /// Kinds whose jobs wait (queued) until a resume.
    pub kinds: BTreeSet<String>,
    /// Tenants (by name) whose jobs wait until a resume.
    pub tenants: BTreeSet<String>,
}

impl Store {
    /// Pauses (`true`) or resumes a kind by name; a resume wakes the idle workers.
    pub async fn set_kind_paused(&self, kind: &str, paused: bool) -> Result<()> {
        let mut conn = self.conn.clone();
        if paused {
            let _: i64 = conn.sadd(keys::PAUSED_KINDS, kind).await?;
        } else {
            let _: i64 = conn.srem(keys::PAUSED_KINDS, kind).await?;
            self.wake_workers().await?;
        }
        Ok(())
    }

    /// Pauses or resumes a tenant, by its id (in its keys) and name (shown in stats).
    pub async fn set_tenant_paused(&self, id: &str, name: &str, paused: bool) -> Result<()> {
        let mut conn = self.conn.clone();
        if paused {
            let _: i64 = conn.hset(keys::PAUSED_TENANTS, id, name).await?;
        } else {
            let _: i64 = conn.hdel(keys::PAUSED_TENANTS, id).await?;
            self.wake_workers().await?;
        }
        Ok(())
    }

    pub async fn kind_paused(&self, kind: &str) -> Result<bool> {
        let mut conn = self.conn.clone();
        Ok(conn.sismember(keys::PAUSED_KINDS, kind).await?)
    }

    pub async fn paused(&self) -> Result<Paused> {
        let mut conn = self.conn.clone();
        let (kinds, tenants): (BTreeSet<String>, Vec<String>) = redis::pipe()
            .smembers(keys::PAUSED_KINDS)
            .hvals(keys::PAUSED_TENANTS)
            .query_async(&mut conn)
            .await?;
        Ok(Paused {
            kinds,
            tenants: tenants.into_iter().collect(),
        })
    }

    /// As a submit does (`submit.lua`): tokens for idle workers, capped, so resumed jobs start at once.
    async fn wake_workers(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: () = redis::pipe()
            .lpush(keys::WAKE, &[1; 8])
            .ltrim(keys::WAKE, 0, 63)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }
}
