//! Blobs: bytes a tenant uploads once and names in many submits (`"input": {"blob": "sha256:..."}`).
//! Content-addressed per tenant, so the same bytes are stored once; each upload of them pushes the
//! expiry out. They count against the tenant's byte quota like jobs do (a hold in `held:<tenant>`).
//! A submit copies a blob into the job's input inside Redis (`submit.lua`), so a job never depends on
//! the blob outliving it.

use super::{Quota, Result, Store, StoreError, keys};
use crate::job::now_millis;
use bytes::Bytes;
use std::sync::LazyLock;

static PUT_BLOB: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("lua/put_blob.lua")));
static DELETE_BLOB: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("lua/delete_blob.lua")));

/// What a blob is, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// Hex SHA-256 of the bytes.
    pub hex: String,
    pub size: u64,
    pub media_type: String,
    pub expires_at_ms: i64,
}

/// A blob with its bytes.
#[derive(Debug, Clone)]
pub struct Blob {
    pub info: BlobInfo,
    pub bytes: Bytes,
}

/// What storing a blob did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutBlob {
    New(BlobInfo),
    /// The tenant had these bytes already: their expiry moved out.
    Existing(BlobInfo),
    OverQuota(Quota),
}

/// The hold a blob has on its tenant's byte quota: the sweep parses the size after the `/`.
fn hold(hex: &str, size: usize) -> String {
    format!("blob:{hex}/{size}")
}

impl Store {
    pub async fn put_blob(
        &self,
        tenant: &str,
        hex: &str,
        bytes: &[u8],
        media_type: &str,
        max_bytes: u64,
    ) -> Result<PutBlob> {
        let ttl = self.config.blob_ttl.as_millis() as i64;
        let info = BlobInfo {
            hex: hex.to_owned(),
            size: bytes.len() as u64,
            media_type: media_type.to_owned(),
            expires_at_ms: now_millis() + ttl,
        };
        let mut conn = self.conn.clone();
        let answer: String = PUT_BLOB
            .key(keys::blob(tenant, hex))
            .key(keys::blob_type(tenant, hex))
            .key(keys::held(tenant))
            .key(keys::BYTES_HELD)
            .arg(tenant)
            .arg(bytes)
            .arg(media_type)
            .arg(ttl)
            .arg(info.expires_at_ms)
            .arg(hold(hex, bytes.len()))
            .arg(max_bytes)
            .invoke_async(&mut conn)
            .await?;
        match answer.as_str() {
            "new" => Ok(PutBlob::New(info)),
            "existing" => Ok(PutBlob::Existing(info)),
            other => {
                let quota = match other.strip_prefix("quota:").and_then(|q| q.split_once(':')) {
                    Some(("bytes", limit)) => limit.parse().ok().map(Quota::Bytes),
                    Some(("too-big", limit)) => limit.parse().ok().map(Quota::TooBig),
                    _ => None,
                };
                quota
                    .map(PutBlob::OverQuota)
                    .ok_or_else(|| StoreError::Corrupt(format!("put_blob.lua answered `{answer}`")))
            }
        }
    }

    /// The blob and its description, in one round trip.
    pub async fn blob(&self, tenant: &str, hex: &str) -> Result<Option<Blob>> {
        let mut conn = self.conn.clone();
        let key = keys::blob(tenant, hex);
        let (media_type, size, ttl, bytes): (Option<String>, u64, i64, Option<Vec<u8>>) = redis::pipe()
            .get(keys::blob_type(tenant, hex))
            .strlen(&key)
            .pttl(&key)
            .get(&key)
            .query_async(&mut conn)
            .await?;
        let (Some(media_type), true) = (media_type, ttl > 0) else {
            return Ok(None);
        };
        Ok(Some(Blob {
            info: BlobInfo {
                hex: hex.to_owned(),
                size,
                media_type,
                expires_at_ms: now_millis() + ttl,
            },
            bytes: bytes.map(Bytes::from).unwrap_or_default(),
        }))
    }

    /// Deletes the blob and releases its bytes; false if there was none. Jobs that copied it keep their
    /// copies.
    pub async fn delete_blob(&self, tenant: &str, hex: &str) -> Result<bool> {
        let mut conn = self.conn.clone();
        let deleted: i64 = DELETE_BLOB
            .key(keys::blob(tenant, hex))
            .key(keys::blob_type(tenant, hex))
            .key(keys::held(tenant))
            .key(keys::BYTES_HELD)
            .arg(tenant)
            .arg(format!("blob:{hex}/"))
            .invoke_async(&mut conn)
            .await?;
        Ok(deleted == 1)
    }
}
