//! The job kinds registered in Redis, as the API sees them: parsed, with compiled params schemas.
//!
//! Kinds live in Redis so that every API and worker process sees the same set; the catalog refreshes
//! its copy every few seconds, so a kind registered through one process reaches all of them without a
//! restart.

use crate::kinds::{Kind, KindPackage, ManifestError, kind_version};
use crate::store::{StartupRegistration, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the catalog rereads the registered kinds.
pub const REFRESH: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Pinned versions kept parsed (their schemas compiled), so a client that pins one pays for it once.
const PINNED_CACHED: usize = 64;

#[derive(Clone)]
pub struct Catalog {
    store: Store,
    kinds: Arc<RwLock<HashMap<String, Arc<Kind>>>>,
    /// Versions submits pinned lately (`?version=`), by version.
    pinned: Arc<RwLock<HashMap<String, Arc<Kind>>>>,
}

impl Catalog {
    pub async fn load(store: Store) -> Result<Self, StoreError> {
        let catalog = Self {
            store,
            kinds: Arc::default(),
            pinned: Arc::default(),
        };
        catalog.refresh().await?;
        Ok(catalog)
    }

    pub fn get(&self, name: &str) -> Option<Arc<Kind>> {
        self.kinds.read().expect("catalog lock poisoned").get(name).cloned()
    }

    /// `name` at `version`, for a submit that pins it: the current kind when that is the version asked
    /// for, else a version from the kind's history (`None`: not one of its versions).
    pub async fn pinned(&self, name: &str, version: &str) -> Result<Option<Arc<Kind>>, StoreError> {
        if let Some(kind) = self.get(name).filter(|k| k.version == version) {
            return Ok(Some(kind));
        }
        // Checked against Redis every time: a version pushed out of the history may no longer be pinned.
        let Some(record) = self.store.pinnable_version(name, version).await? else {
            return Ok(None);
        };
        if let Some(kind) = self.pinned.read().expect("catalog lock poisoned").get(version) {
            return Ok(Some(kind.clone()));
        }
        let kind =
            Arc::new(Kind::new(record.manifest, version.to_owned()).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        let mut pinned = self.pinned.write().expect("catalog lock poisoned");
        if pinned.len() >= PINNED_CACHED {
            pinned.clear();
        }
        pinned.insert(version.to_owned(), kind.clone());
        Ok(Some(kind))
    }

    /// All kinds, sorted by name.
    pub fn all(&self) -> Vec<Arc<Kind>> {
        let mut kinds: Vec<_> = self
            .kinds
            .read()
            .expect("catalog lock poisoned")
            .values()
            .cloned()
            .collect();
        kinds.sort_by(|a, b| a.name().cmp(b.name()));
        kinds
    }

    /// Registers a kind in Redis and in this catalog at once. `component_hash` is the package's
    /// [`KindPackage::component_hash`], which the caller has computed already (to compile the component).
    pub async fn register(&self, package: &KindPackage, component_hash: &str) -> Result<Arc<Kind>, RegisterError> {
        package.manifest.check()?;
        let version = kind_version(component_hash, &package.manifest);
        let kind = Arc::new(Kind::new(package.manifest.clone(), version)?);
        self.store.put_kind(package, component_hash).await?;
        self.kinds
            .write()
            .expect("catalog lock poisoned")
            .insert(kind.name().to_owned(), kind.clone());
        Ok(kind)
    }

    /// Registers a kind Kiln brings (built-in, `--kinds-dir`) unless an admin has since replaced or
    /// deleted the kind of that name. The catalog learns of it at its next [`Catalog::refresh`]: start-up
    /// registers all of them, then rereads once.
    pub async fn register_at_startup(&self, package: &KindPackage) -> Result<StartupRegistration, RegisterError> {
        package.manifest.check()?;
        // Hashed once: the version and the store both need it.
        let component_hash = package.component_hash();
        Kind::new(
            package.manifest.clone(),
            kind_version(&component_hash, &package.manifest),
        )?;
        Ok(self.store.register_startup_kind(package, &component_hash).await?)
    }

    pub async fn refresh(&self) -> Result<(), StoreError> {
        let registered = self.store.kinds().await?;
        let current = self.kinds.read().expect("catalog lock poisoned").clone();
        let mut next = HashMap::new();
        for entry in registered {
            let name = entry.manifest.name.clone();
            let kind = match current.get(&name) {
                Some(kind) if kind.version == entry.version && kind.manifest == entry.manifest => kind.clone(),
                _ => match Kind::new(entry.manifest, entry.version) {
                    Ok(kind) => Arc::new(kind),
                    Err(e) => {
                        tracing::error!(kind = %name, error = %e, "ignoring a registered kind with a bad manifest");
                        continue;
                    }
                },
            };
            next.insert(name, kind);
        }
        *self.kinds.write().expect("catalog lock poisoned") = next;
        Ok(())
    }

    /// Keeps the catalog in step with Redis until `shutdown`.
    pub async fn keep_fresh(self, shutdown: CancellationToken) {
        crate::refresh::every(REFRESH, shutdown, "the job kinds", || self.refresh()).await;
    }
}
