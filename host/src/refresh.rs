//! Caches of Redis data that every process holds (kinds, API keys) stay fresh the same way: reread every
//! few seconds until shutdown, keeping the old copy when Redis is briefly away.

use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Calls `refresh` every `period` until `shutdown`; failures are logged, and the cache keeps its copy.
pub async fn every<F, Fut, E>(period: Duration, shutdown: CancellationToken, what: &str, mut refresh: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = shutdown.cancelled() => return,
        }
        if let Err(e) = refresh().await {
            tracing::warn!(error = %e, "could not refresh {what}");
        }
    }
}
