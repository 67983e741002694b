//! Worker heartbeats: each worker process says every few seconds that it is alive and what it runs, so
//! `GET /v1/stats` can show live workers the way Flower does for Celery.

use super::{Result, Store, StoreError, keys};
use redis::AsyncCommands;
use std::collections::HashMap;

/// A heartbeat older than this marks a worker as gone: it is left out of stats and deleted.
pub const WORKER_GONE_AFTER_MS: i64 = 30_000;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct WorkerBeat {
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub concurrency: usize,
    pub started_at: i64,
    pub last_seen: i64,
    /// `<tenant>/<job id>` of the jobs it is running now.
    pub running: Vec<String>,
}

impl Store {
    pub async fn heartbeat(&self, beat: &WorkerBeat) -> Result<()> {
        let json = serde_json::to_string(beat).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut conn = self.conn.clone();
        let _: i64 = conn.hset(keys::WORKERS, &beat.id, json).await?;
        Ok(())
    }

    /// Says goodbye at a clean shutdown, so stats drop the worker at once.
    pub async fn forget_worker(&self, id: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: i64 = conn.hdel(keys::WORKERS, id).await?;
        Ok(())
    }

    /// Live workers, by id; heartbeats of workers gone for good are deleted on the way.
    pub async fn workers(&self, now: i64) -> Result<Vec<WorkerBeat>> {
        let mut conn = self.conn.clone();
        let all: HashMap<String, String> = conn.hgetall(keys::WORKERS).await?;
        let (mut live, mut gone) = (Vec::new(), Vec::new());
        for (id, json) in all {
            match serde_json::from_str::<WorkerBeat>(&json) {
                Ok(beat) if now - beat.last_seen <= WORKER_GONE_AFTER_MS => live.push(beat),
                _ => gone.push(id),
            }
        }
        if !gone.is_empty() {
            let _: i64 = conn.hdel(keys::WORKERS, gone).await?;
        }
        live.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(live)
    }

    /// Jobs that reached a final state in each of the last `minutes` whole minutes, oldest first.
    pub async fn throughput(&self, now: i64, minutes: i64) -> Result<Vec<u64>> {
        let current = now / 60_000;
        let mut pipe = redis::pipe();
        for minute in (current - minutes + 1)..=current {
            pipe.get(keys::finished_in_minute(minute));
        }
        let mut conn = self.conn.clone();
        let counts: Vec<Option<u64>> = pipe.query_async(&mut conn).await?;
        Ok(counts.into_iter().map(Option::unwrap_or_default).collect())
    }
}
