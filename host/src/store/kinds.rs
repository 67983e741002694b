//! Registered kinds and their versions. A version (component + manifest, [`crate::kinds::kind_version`])
//! is stored as a record naming its manifest and its component's hash; the component is stored once by
//! that hash, however many versions use it. Each kind keeps a history of its last [`MAX_KIND_VERSIONS`]
//! versions: a submit may pin one, and an admin may make one current again without uploading it. Versions
//! no history and no unfinished job needs are collected.

use super::{Result, Store, StoreError, keys};
use crate::job::now_millis;
use crate::kinds::{KindPackage, Manifest, kind_version};
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;
use std::time::Duration;

static PUT_KIND: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("lua/put_kind.lua")));
static DELETE_KIND: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("lua/delete_kind.lua")));
static USE_KIND_VERSION: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("lua/use_kind_version.lua")));
static COLLECT_VERSIONS: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("lua/collect_versions.lua")));

/// A kind as registered in Redis: its manifest and the version jobs will run on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisteredKind {
    pub manifest: Manifest,
    pub version: String,
}

/// One version of a kind, as a job submitted for it runs: its manifest and its component's hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KindVersion {
    pub manifest: Manifest,
    /// Hex SHA-256 of the component ([`crate::kinds::component_hash`]), under which it is stored.
    pub component: String,
}

/// What start-up registration did with a built-in (or `--kinds-dir`) kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupRegistration {
    /// Registered (or already there): the kind was Kiln's own.
    Registered,
    /// Left as it is: an admin uploaded a kind of this name or deleted it since Kiln registered it.
    Kept,
}

/// Versions a kind's history keeps; older uploads are retired (and collected once no job needs them).
/// Twenty uploads of a 60 MiB component is the most one kind can hold in Redis.
pub const MAX_KIND_VERSIONS: usize = 20;

/// One version in a kind's history, as `GET /v1/kinds/{name}/versions` lists it.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub version: String,
    pub uploaded_at_ms: i64,
    pub manifest: Manifest,
    /// None when the component is gone (it cannot be while the version is in a history).
    pub component_bytes: Option<u64>,
}

/// What making a version current again did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseVersion {
    Current,
    NoKind,
    /// Not one of the kind's versions (never uploaded, or pushed out of its history).
    NoVersion,
}

/// Most retired versions one collection looks at; the next sweep takes the rest.
const COLLECT_BATCH: usize = 100;

impl Store {
    /// Registers (or replaces) a kind, as an admin's upload does. `component_hash` is the package's
    /// [`KindPackage::component_hash`], which the caller has already computed (it reads the whole
    /// component, which may be many megabytes).
    pub async fn put_kind(&self, package: &KindPackage, component_hash: &str) -> Result<RegisteredKind> {
        self.register_kind(package, component_hash, false)
            .await
            .map(|(kind, _)| kind)
    }

    /// Registers a kind Kiln brings (built-in or `--kinds-dir`) at start-up, unless an admin changed or
    /// deleted the kind of that name since Kiln last registered it. `component_hash` as for
    /// [`Store::put_kind`].
    pub async fn register_startup_kind(
        &self,
        package: &KindPackage,
        component_hash: &str,
    ) -> Result<StartupRegistration> {
        self.register_kind(package, component_hash, true)
            .await
            .map(|(_, outcome)| outcome)
    }

    async fn register_kind(
        &self,
        package: &KindPackage,
        component_hash: &str,
        at_startup: bool,
    ) -> Result<(RegisteredKind, StartupRegistration)> {
        let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
        let registered = RegisteredKind {
            manifest: package.manifest.clone(),
            version: kind_version(component_hash, &package.manifest),
        };
        let component = component_hash.to_owned();
        let record = KindVersion {
            manifest: package.manifest.clone(),
            component: component.clone(),
        };
        let mut conn = self.conn.clone();
        let outcome: String = PUT_KIND
            .key(keys::KINDS)
            .key(keys::VERSIONS)
            .key(keys::BUILTINS)
            .key(keys::COMPONENT_REFS)
            .arg(&registered.manifest.name)
            .arg(serde_json::to_string(&registered).map_err(corrupt)?)
            .arg(&registered.version)
            .arg(&component)
            .arg(package.component.as_ref())
            .arg(serde_json::to_string(&record).map_err(corrupt)?)
            .arg(if at_startup { "1" } else { "0" })
            .arg(now_millis())
            .arg(keys::PREFIX)
            .arg(MAX_KIND_VERSIONS)
            .invoke_async(&mut conn)
            .await?;
        let outcome = match outcome.as_str() {
            "kept" => StartupRegistration::Kept,
            _ => StartupRegistration::Registered,
        };
        Ok((registered, outcome))
    }

    pub async fn kinds(&self) -> Result<Vec<RegisteredKind>> {
        let mut kinds: Vec<RegisteredKind> = self.json_values(keys::KINDS).await?;
        kinds.sort_by(|a, b| a.manifest.name.cmp(&b.manifest.name));
        Ok(kinds)
    }

    /// Unregisters a kind; jobs already submitted keep its version until they end.
    pub async fn delete_kind(&self, name: &str) -> Result<bool> {
        let mut conn = self.conn.clone();
        let removed: i64 = DELETE_KIND
            .key(keys::KINDS)
            .key(keys::VERSIONS)
            .key(keys::kind_versions(name))
            .key(keys::PAUSED_KINDS)
            .arg(name)
            .arg(now_millis())
            .invoke_async(&mut conn)
            .await?;
        Ok(removed == 1)
    }

    /// A kind exactly as registered at `version`: what a job submitted for that version runs on, even
    /// after the kind was updated. Versions stored before records existed (a component hash, with the
    /// manifest under `manifest:<kind>:<version>`) are read too.
    pub async fn kind_version(&self, kind: &str, version: &str) -> Result<Option<KindVersion>> {
        let mut conn = self.conn.clone();
        let (record, legacy): (Option<String>, Option<String>) = redis::pipe()
            .get(keys::version(version))
            .get(keys::legacy_manifest(kind, version))
            .query_async(&mut conn)
            .await?;
        let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("version {version} of kind `{kind}`: {e}"));
        let found = match (record, legacy) {
            (Some(record), _) => serde_json::from_str::<KindVersion>(&record).map_err(corrupt)?,
            (None, Some(manifest)) => KindVersion {
                manifest: serde_json::from_str(&manifest).map_err(corrupt)?,
                component: version.to_owned(),
            },
            (None, None) => return Ok(None),
        };
        Ok((found.manifest.name == kind).then_some(found))
    }

    /// The kind's history, newest upload first (empty for an unknown kind).
    pub async fn kind_history(&self, kind: &str) -> Result<Vec<HistoryEntry>> {
        let mut conn = self.conn.clone();
        let listed: Vec<(String, f64)> =
            redis::AsyncCommands::zrevrange_withscores(&mut conn, keys::kind_versions(kind), 0, -1).await?;
        let mut records = redis::pipe();
        for (version, _) in &listed {
            records.get(keys::version(version));
        }
        let records: Vec<Option<String>> = records.query_async(&mut conn).await?;
        let mut entries = Vec::with_capacity(listed.len());
        let mut sizes = redis::pipe();
        for ((version, uploaded), record) in listed.into_iter().zip(records) {
            // A history names only versions with records; one without is skipped, not fatal.
            let Some(record) = record else { continue };
            let record: KindVersion = serde_json::from_str(&record)
                .map_err(|e| StoreError::Corrupt(format!("version {version} of kind `{kind}`: {e}")))?;
            sizes.strlen(keys::component(&record.component));
            entries.push(HistoryEntry {
                version,
                uploaded_at_ms: uploaded as i64,
                manifest: record.manifest,
                component_bytes: None,
            });
        }
        let sizes: Vec<u64> = sizes.query_async(&mut conn).await?;
        for (entry, size) in entries.iter_mut().zip(sizes) {
            entry.component_bytes = (size > 0).then_some(size);
        }
        Ok(entries)
    }

    /// A version of `kind` a submit may pin: one in the kind's history.
    pub async fn pinnable_version(&self, kind: &str, version: &str) -> Result<Option<KindVersion>> {
        let mut conn = self.conn.clone();
        let (in_history, record): (Option<f64>, Option<String>) = redis::pipe()
            .zscore(keys::kind_versions(kind), version)
            .get(keys::version(version))
            .query_async(&mut conn)
            .await?;
        let (Some(_), Some(record)) = (in_history, record) else {
            return Ok(None);
        };
        let record: KindVersion = serde_json::from_str(&record)
            .map_err(|e| StoreError::Corrupt(format!("version {version} of kind `{kind}`: {e}")))?;
        Ok((record.manifest.name == kind).then_some(record))
    }

    /// Makes a version from the kind's history current again; its component is already stored.
    pub async fn use_kind_version(&self, kind: &str, version: &str) -> Result<UseVersion> {
        let Some(record) = self.pinnable_version(kind, version).await? else {
            let exists: bool = redis::AsyncCommands::hexists(&mut self.conn.clone(), keys::KINDS, kind).await?;
            return Ok(if exists {
                UseVersion::NoVersion
            } else {
                UseVersion::NoKind
            });
        };
        let registered = RegisteredKind {
            manifest: record.manifest,
            version: version.to_owned(),
        };
        let json = serde_json::to_string(&registered).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut conn = self.conn.clone();
        let outcome: String = USE_KIND_VERSION
            .key(keys::KINDS)
            .key(keys::kind_versions(kind))
            .arg(kind)
            .arg(json)
            .arg(version)
            .invoke_async(&mut conn)
            .await?;
        Ok(match outcome.as_str() {
            "current" => UseVersion::Current,
            "no-kind" => UseVersion::NoKind,
            _ => UseVersion::NoVersion,
        })
    }

    /// A component's bytes, by its hash.
    pub async fn component(&self, hash: &str) -> Result<Option<Vec<u8>>> {
        let mut conn = self.conn.clone();
        Ok(redis::AsyncCommands::get(&mut conn, keys::component(hash)).await?)
    }

    /// Deletes versions retired more than `grace` ago that no unfinished job refers to, and components
    /// no version uses any more. Returns how many versions went.
    pub async fn collect_versions(&self, grace: Duration) -> Result<usize> {
        let mut conn = self.conn.clone();
        let cutoff = now_millis() - i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        Ok(COLLECT_VERSIONS
            .key(keys::VERSIONS)
            .key(keys::UNFINISHED_BY_VERSION)
            .key(keys::COMPONENT_REFS)
            .arg(cutoff)
            .arg(keys::PREFIX)
            .arg(COLLECT_BATCH)
            .invoke_async(&mut conn)
            .await?)
    }
}
