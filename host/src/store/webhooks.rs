//! Completion webhooks in Redis: the tenants' signing secrets, the queue of due deliveries (a zset the
//! final-state scripts add to), claims of one attempt (a lease) and the record of attempts on each job.

use super::{Result, Store, StoreError, keys};
use crate::job::JobId;
use redis::{AsyncCommands, Script};
use std::sync::LazyLock;
use std::time::Duration;

static CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/claim_webhook.lua")));
static DONE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/webhook_done.lua")));

/// Attempts kept on a job (`GET /v1/jobs/{id}/deliveries`); a delivery makes at most
/// [`crate::webhooks::MAX_ATTEMPTS`], so all of them are kept.
pub const ATTEMPTS_KEPT: usize = 16;

/// One attempt of a delivery that this process holds the lease of.
#[derive(Debug, Clone)]
pub struct WebhookClaim {
    pub tenant: String,
    pub id: JobId,
    pub url: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub lease: String,
}

/// What a claim found.
#[derive(Debug)]
pub enum Claimed {
    Nothing,
    /// The job expired or its tenant was removed: its delivery was dropped.
    Gone,
    Attempt(WebhookClaim),
}

/// A job's webhook as `GET /v1/jobs/{id}/deliveries` shows it.
#[derive(Debug, Clone)]
pub struct Deliveries {
    pub callback_url: Option<String>,
    /// `waiting` (the job is not final yet), `pending`, `retrying`, `delivered` or `failed`.
    pub state: Option<String>,
    /// JSON of [`crate::webhooks::Attempt`]s, oldest first.
    pub attempts: Vec<String>,
}

impl Store {
    /// The tenant's webhook secret (`whsec_<base64>`), made now if it has none yet.
    pub async fn webhook_secret(&self, tenant: &str) -> Result<String> {
        let mut conn = self.conn.clone();
        let key = keys::webhook_secret(tenant);
        // SET NX then GET: two processes making the first one agree on whichever won.
        let _: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(crate::webhooks::new_secret())
            .arg("NX")
            .query_async(&mut conn)
            .await?;
        let secret: Option<String> = conn.get(&key).await?;
        secret.ok_or_else(|| StoreError::Corrupt(format!("{key} vanished right after it was set")))
    }

    /// Replaces the tenant's webhook secret; deliveries from now on are signed with the new one.
    pub async fn rotate_webhook_secret(&self, tenant: &str) -> Result<String> {
        let mut conn = self.conn.clone();
        let secret = crate::webhooks::new_secret();
        let _: () = conn.set(keys::webhook_secret(tenant), &secret).await?;
        Ok(secret)
    }

    /// Claims the next due delivery for one attempt, held for `lease`; `claimant` names this process.
    pub async fn claim_webhook(&self, claimant: &str, lease: Duration) -> Result<Claimed> {
        let mut conn = self.conn.clone();
        let row: Option<(String, String, String, u32, String)> = CLAIM
            .key(keys::WEBHOOKS)
            .key(keys::WEBHOOKS_PENDING)
            .arg(crate::job::now_millis())
            .arg(lease.as_millis() as u64)
            .arg(keys::PREFIX)
            .arg(claimant)
            .invoke_async(&mut conn)
            .await?;
        let Some((tenant, id, url, attempt, lease)) = row else {
            return Ok(Claimed::Nothing);
        };
        if url.is_empty() {
            return Ok(Claimed::Gone);
        }
        let id = id
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("webhook for job `{id}`: {e}")))?;
        Ok(Claimed::Attempt(WebhookClaim {
            tenant,
            id,
            url,
            attempt,
            lease,
        }))
    }

    /// Records an attempt (`attempt`: its JSON) and schedules the next one at `next` (Unix ms), or with
    /// None ends the delivery in `state`. `false`: the claim's lease ran out, nothing was recorded.
    pub async fn webhook_done(
        &self,
        claim: &WebhookClaim,
        attempt: &str,
        next: Option<i64>,
        state: &str,
    ) -> Result<bool> {
        let mut conn = self.conn.clone();
        let recorded: i64 = DONE
            .key(keys::WEBHOOKS)
            .key(keys::job(&claim.tenant, claim.id))
            .key(keys::deliveries(&claim.tenant, claim.id))
            .key(keys::WEBHOOKS_PENDING)
            .arg(keys::member(&claim.tenant, claim.id))
            .arg(&claim.lease)
            .arg(attempt)
            .arg(next.unwrap_or(0))
            .arg(state)
            .arg(ATTEMPTS_KEPT)
            .invoke_async(&mut conn)
            .await?;
        Ok(recorded == 1)
    }

    /// The job's webhook and its attempts; None for an unknown job.
    pub async fn deliveries(&self, tenant: &str, id: JobId) -> Result<Option<Deliveries>> {
        let mut conn = self.conn.clone();
        type Fields = (Option<String>, Option<String>, Option<String>);
        let ((status, callback_url, state), attempts): (Fields, Vec<String>) = redis::pipe()
            .cmd("HMGET")
            .arg(keys::job(tenant, id))
            .arg(&["status", "callback_url", "webhook_state"][..])
            .lrange(keys::deliveries(tenant, id), 0, -1)
            .query_async(&mut conn)
            .await?;
        let Some(_) = status else {
            return Ok(None);
        };
        let state = match (&callback_url, state) {
            (Some(_), None) => Some("waiting".to_owned()),
            (_, state) => state,
        };
        Ok(Some(Deliveries {
            callback_url,
            state,
            attempts,
        }))
    }
}
