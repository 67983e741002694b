//! Bounds the compiles that kind uploads cause. Compiling a component is CPU-heavy (a Python kind's
//! 40 MB component takes tens of seconds) and cannot be interrupted, so uploads compile one at a time, on
//! a blocking thread (other requests keep being answered), and an upload whose compile runs past the
//! limit is answered with a 422 at the limit. Its compile finishes in the background, still holding the
//! one slot, and that component is refused at once from then on, so retrying it cannot pile up work.

use super::ApiError;
use crate::runtime::Runtime;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Components remembered as too slow to compile; the set is emptied when full (a bound, not a ban list).
const REMEMBERED_TOO_SLOW: usize = 256;

#[derive(Clone)]
pub struct CompileGate {
    slot: Arc<Semaphore>,
    limit: Duration,
    too_slow: Arc<Mutex<HashSet<String>>>,
}

impl CompileGate {
    pub fn new(limit: Duration) -> Self {
        Self {
            slot: Arc::new(Semaphore::new(1)),
            limit,
            too_slow: Arc::default(),
        }
    }

    /// Compiles and links `component` (by its `hash`) for `runtime`, within the limit: waiting for the
    /// slot counts against it too.
    pub async fn check(&self, runtime: &Arc<Runtime>, hash: &str, component: Arc<[u8]>) -> Result<(), ApiError> {
        let secs = self.limit.as_secs_f64();
        if self.too_slow.lock().expect("compile gate lock poisoned").contains(hash) {
            return Err(too_slow(secs));
        }
        let deadline = tokio::time::Instant::now() + self.limit;
        let permit = tokio::time::timeout_at(deadline, self.slot.clone().acquire_owned())
            .await
            .map_err(|_| {
                ApiError::Overloaded(format!(
                    "another kind upload has been compiling for over {secs} s; try again later"
                ))
            })?
            .map_err(|e| ApiError::Internal(e.into()))?;
        let (runtime, hash_owned) = (runtime.clone(), hash.to_owned());
        let compile = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            runtime.prepare(&hash_owned, &component).map(|_| ())
        });
        match tokio::time::timeout_at(deadline, compile).await {
            Ok(joined) => joined
                .map_err(|e| ApiError::Internal(e.into()))?
                .map_err(|e| ApiError::InvalidKind(e.to_string())),
            Err(_) => {
                let mut remembered = self.too_slow.lock().expect("compile gate lock poisoned");
                if remembered.len() >= REMEMBERED_TOO_SLOW {
                    remembered.clear();
                }
                remembered.insert(hash.to_owned());
                tracing::warn!(component = %hash, limit_secs = secs, "a kind upload took too long to compile");
                Err(too_slow(secs))
            }
        }
    }
}

fn too_slow(secs: f64) -> ApiError {
    ApiError::InvalidKind(format!(
        "compiling the component took longer than the limit of {secs} s (KILN_MAX_COMPILE_SECS): make it \
         smaller, or ask the operator to raise the limit"
    ))
}
