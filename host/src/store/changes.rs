//! Job-change notifications for the requests that watch a job (`?wait=`, Server-Sent Events, invoke).
//!
//! The scripts PUBLISH `<tenant>/<id>` on [`keys::CHANGED`] each time they end a job, requeue it or store
//! its progress (not when a run starts: see [`keys`]). One subscriber per API process fans the messages
//! out through a broadcast channel, and each watcher rereads its job only when its own member goes by: a
//! job's end reaches its waiter in a round trip, not at the next tick of a poll.
//!
//! Pub/sub is fire-and-forget (nothing is delivered while the subscriber reconnects), so watchers also
//! reread on a timer: every [`REREAD`] while subscribed, every [`POLL`] while not. A lost message costs
//! latency, never a missed final state.

use super::{Store, keys};
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How often a watcher rereads its job anyway while notifications flow.
const REREAD: Duration = Duration::from_secs(1);
/// How often it rereads while they do not (the subscriber is reconnecting).
const POLL: Duration = Duration::from_millis(100);
/// Messages a slow watcher may fall behind by before it is told to reread (`Lagged`).
const BACKLOG: usize = 4096;
/// Sent to every watcher when the subscriber (re)connects: messages may have been missed, reread.
const EVERYONE: &str = "*";

struct Shared {
    sender: broadcast::Sender<Arc<str>>,
    subscribed: AtomicBool,
}

/// The process's subscription to job changes; cheap to clone.
#[derive(Clone)]
pub struct Changes {
    shared: Arc<Shared>,
}

impl Changes {
    /// Starts the subscriber, which reconnects by itself with backoff until `shutdown`.
    pub fn start(store: &Store, shutdown: CancellationToken) -> Self {
        let changes = Self {
            shared: Arc::new(Shared {
                sender: broadcast::channel(BACKLOG).0,
                subscribed: AtomicBool::new(false),
            }),
        };
        tokio::spawn(subscribe(store.clone(), changes.shared.clone(), shutdown));
        changes
    }

    /// A watcher. Take it before reading the job, so that no change between the read and the wait is
    /// missed.
    pub fn watch(&self) -> Watch {
        Watch {
            receiver: self.shared.sender.subscribe(),
            shared: self.shared.clone(),
        }
    }
}

/// One request's view of the changes.
pub struct Watch {
    receiver: broadcast::Receiver<Arc<str>>,
    shared: Arc<Shared>,
}

impl Watch {
    /// Returns when job `member` (`<tenant>/<id>`) may have changed: its message went by, messages were
    /// missed, or it is time to reread anyway. Never later than `deadline`.
    pub async fn changed(&mut self, member: &str, deadline: Instant) {
        let reread = if self.shared.subscribed.load(Ordering::Relaxed) {
            REREAD
        } else {
            POLL
        };
        let timer = tokio::time::sleep_until(deadline.min(Instant::now() + reread));
        tokio::pin!(timer);
        loop {
            tokio::select! {
                () = &mut timer => return,
                received = self.receiver.recv() => match received {
                    Ok(changed) if &*changed == member || &*changed == EVERYONE => return,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => return timer.await,
                },
            }
        }
    }
}

/// The subscriber: (re)connects with backoff and forwards every message on [`keys::CHANGED`] to the
/// watchers, until `shutdown`.
async fn subscribe(store: Store, shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    for attempt in 0.. {
        let subscribed = match store.target.pubsub(attempt).await {
            Ok(mut pubsub) => pubsub.subscribe(keys::CHANGED).await.map(|()| pubsub),
            Err(e) => Err(e),
        };
        match subscribed {
            Ok(pubsub) => {
                backoff = Duration::from_millis(100);
                shared.subscribed.store(true, Ordering::Relaxed);
                // Whatever was published while unsubscribed is lost: every watcher rereads now.
                let _ = shared.sender.send(Arc::from(EVERYONE));
                if attempt > 0 {
                    info!("subscribed to job changes again");
                }
                let ended = forward(pubsub, &shared, &shutdown).await;
                shared.subscribed.store(false, Ordering::Relaxed);
                if ended == Ended::Shutdown {
                    return;
                }
                warn!("lost the subscription to job changes; watchers poll until it is back");
            }
            Err(e) => warn!(error = %e, "could not subscribe to job changes; retrying"),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[derive(PartialEq)]
enum Ended {
    Shutdown,
    ConnectionLost,
}

/// Hands each message's member to the watchers until the connection drops or `shutdown`.
async fn forward(pubsub: redis::aio::PubSub, shared: &Shared, shutdown: &CancellationToken) -> Ended {
    let mut messages = pubsub.into_on_message();
    loop {
        tokio::select! {
            message = messages.next() => match message {
                Some(message) => {
                    if let Ok(member) = message.get_payload::<String>() {
                        let _ = shared.sender.send(Arc::from(member));
                    }
                }
                None => return Ended::ConnectionLost,
            },
            () = shutdown.cancelled() => return Ended::Shutdown,
        }
    }
}
