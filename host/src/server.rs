//! Wires the parts together for `kiln serve`, `kiln api` and `kiln worker`: Redis (or an embedded one),
//! the built-in kinds, the HTTP API, the workers, and shutdown on SIGTERM/SIGINT.

use crate::api::{AppState, app};
use crate::auth::KeyRing;
use crate::catalog::Catalog;
use crate::config::{Cli, Command, CommonArgs, DEFAULT_REDIS_URL, ServeArgs};
use crate::embedded_redis::EmbeddedRedis;
use crate::kinds::{builtin_packages, packages_in_dir};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::store::{StartupRegistration, Store, StoreConfig};
use crate::worker::Worker;
use anyhow::{Context, bail};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Serve,
    Api,
    Worker,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let (role, args) = match cli.command {
        None => (Role::Serve, ServeArgs::default()),
        Some(Command::Serve(args)) => (Role::Serve, args),
        Some(Command::Api(args)) => (Role::Api, args),
        Some(Command::Worker(args)) => (Role::Worker, args),
        Some(Command::Tenant(command)) => {
            let (store, _) = connect(&cli.common, Role::Api, StoreConfig::default()).await?;
            return crate::tenant_cli::run(&store, command).await;
        }
        Some(Command::Client(command)) => return crate::client::run(command).await,
    };
    // Check all configuration before starting anything. Workers serve no API, so they need no mode.
    let worker_config = args.worker_config().map_err(anyhow::Error::msg)?;
    let webhooks = std::sync::Arc::new(args.webhook_config().map_err(anyhow::Error::msg)?);
    let auth_mode = if role == Role::Worker {
        None
    } else {
        Some(args.auth_mode().map_err(anyhow::Error::msg)?)
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(shutdown.clone()));

    let (store, embedded) = connect(&cli.common, role, args.store_config()).await?;
    let catalog = Catalog::load(store.clone())
        .await
        .context("reading the registered job kinds")?;
    let mut packages = builtin_packages();
    if let Some(dir) = &args.kinds_dir {
        packages.extend(packages_in_dir(dir).map_err(anyhow::Error::msg)?);
    }
    for package in packages {
        let name = &package.manifest.name;
        let outcome = catalog
            .register_at_startup(&package)
            .await
            .with_context(|| format!("registering the built-in kind `{name}`"))?;
        if outcome == StartupRegistration::Kept {
            info!(kind = %name, "kept the kind an admin uploaded or deleted in place of Kiln's own");
        }
    }
    catalog.refresh().await.context("reading the registered job kinds")?;
    tokio::spawn(catalog.clone().keep_fresh(shutdown.clone()));

    let mut tasks = tokio::task::JoinSet::new();
    // The engine first: a broken engine or cache must stop Kiln before it accepts a single job. The API
    // uses it only to check uploaded components; in `serve` both share its compiled components.
    let runtime = Arc::new(Runtime::with_config(RuntimeConfig {
        cache_dir: Some(cli.common.data_dir.join("cache")),
        max_concurrent_runs: u32::try_from(worker_config.concurrency).unwrap_or(u32::MAX),
        max_memory_bytes: worker_config.ceilings.memory_bytes,
        ..RuntimeConfig::default()
    })?);
    if role != Role::Api {
        warm_up(&store, &catalog, &runtime).await;
        let worker = Worker::new(store.clone(), runtime.clone(), worker_config);
        // Scripts and tests wait for this line (a lone worker prints no address).
        crate::announce::announce("worker-running", "worker running", serde_json::json!({}));
        let stop = shutdown.clone();
        tasks.spawn(async move {
            worker.run(stop).await;
            Ok(())
        });
        // Beside the workers, never in one of their slots: a slow receiver cannot hold up a job.
        let deliverer = crate::webhooks::Deliverer::new(store.clone(), webhooks.clone());
        let stop = shutdown.clone();
        tasks.spawn(async move {
            deliverer.run(stop).await;
            Ok(())
        });
    }
    if let (Role::Worker, Some(addr)) = (role, args.ops_listen) {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (--ops-listen)"))?;
        info!(%addr, "health endpoints listening");
        let router = crate::api::ops_app(store.clone());
        let serving = serve_http(listener, router, shutdown.clone(), ServeTimes::of(&args));
        tasks.spawn(async move { serving.await.context("the health endpoint server failed") });
    }
    if let Some(auth_mode) = auth_mode {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {} (set KILN_LISTEN or --listen)", args.listen))?;
        let addr = listener.local_addr()?;
        let keys = KeyRing::load(store.clone(), auth_mode)
            .await
            .context("reading the API keys")?;
        if keys.dev_mode() {
            announce_dev_mode(addr);
        }
        announce_listening(addr);
        tokio::spawn(keys.clone().keep_fresh(shutdown.clone()));
        let config = args.api_config();
        let state = AppState::new(crate::api::AppParts {
            store: store.clone(),
            changes: crate::store::Changes::start(&store, shutdown.clone()),
            catalog: catalog.clone(),
            keys,
            runtime: runtime.clone(),
            compiles: crate::api::CompileGate::new(config.max_compile),
            streams: crate::api::StreamSlots::new(config.http.max_streams_per_tenant),
            config,
        });
        // Every API process fires due schedules; the claim in Redis makes one job per due time.
        tokio::spawn(crate::api::schedules::fire_due(state.clone(), shutdown.clone()));
        let router = app(state);
        let serving = serve_http(listener, router, shutdown.clone(), ServeTimes::of(&args));
        tasks.spawn(async move { serving.await.context("the HTTP server failed") });
    }
    let mut outcome = Ok(());
    while let Some(joined) = tasks.join_next().await {
        let result = joined.context("a Kiln task panicked").and_then(|r| r);
        if let Err(e) = result {
            shutdown.cancel();
            outcome = outcome.and(Err(e));
        }
    }
    if let Some(embedded) = embedded {
        embedded.shutdown().await;
    }
    info!("kiln stopped");
    outcome
}

/// Says loudly that nothing is protected by keys, and louder if the address is reachable from elsewhere.
fn announce_dev_mode(addr: std::net::SocketAddr) {
    warn!("DEV MODE (--dev): no API keys; every request is tenant `default` with admin rights");
    crate::announce::announce(
        "dev-mode",
        "WARNING: DEV MODE (--dev / KILN_DEV=1): the API needs no key and every job belongs to tenant \
         `default`; only requests for localhost and same-origin writes are answered. For anything shared, \
         set KILN_ADMIN_KEY instead and add tenants (`kiln tenant add NAME`).",
        serde_json::json!({}),
    );
    if !addr.ip().is_loopback() {
        warn!(%addr, "DEV MODE on a non-loopback address");
        crate::announce::announce(
            "dev-mode-exposed",
            &format!(
                "WARNING: DEV MODE on {addr}, which other machines may reach. Requests must still name a \
                 loopback host, but anyone on the network can send that header: listen on 127.0.0.1 \
                 (the default) or set KILN_ADMIN_KEY."
            ),
            serde_json::json!({"addr": addr.to_string()}),
        );
    }
}

/// Connects to the configured Redis, or for a first `kiln serve` with nothing configured, to a private
/// `redis-server` it starts. Errors say what was tried and how to fix it.
async fn connect(
    common: &CommonArgs,
    role: Role,
    config: StoreConfig,
) -> anyhow::Result<(Store, Option<EmbeddedRedis>)> {
    if let Some(url) = &common.redis_url {
        let store = Store::connect(url, config)
            .await
            .map_err(|e| configured_redis_failed(url, e))?;
        // A Redis that wants a password accepts the connection and refuses the first command: ask one now.
        store.ping().await.map_err(|e| configured_redis_failed(url, e))?;
        return Ok((store, None));
    }
    let default_error = match Store::connect(DEFAULT_REDIS_URL, config.clone()).await {
        Ok(store) => return Ok((store, None)),
        Err(e) => e,
    };
    let embedded_url = EmbeddedRedis::url_for(&common.data_dir);
    if let Ok(store) = Store::connect(&embedded_url, config.clone()).await {
        info!(url = %embedded_url, "using the embedded Redis of a running `kiln serve`");
        return Ok((store, None));
    }
    if role != Role::Serve {
        bail!(
            "cannot reach Redis at {DEFAULT_REDIS_URL} ({default_error}). Start redis-server or set KILN_REDIS_URL \
             to the Redis that `kiln serve`/`kiln api` use"
        );
    }
    match EmbeddedRedis::start(&common.data_dir).await {
        Ok(embedded) => {
            let data = common.data_dir.join("redis");
            crate::announce::announce(
                "embedded-redis",
                &format!(
                    "no Redis at {DEFAULT_REDIS_URL} and KILN_REDIS_URL is unset: started a private redis-server \
                     (data in {}, AOF on)",
                    data.display()
                ),
                serde_json::json!({"data_dir": data}),
            );
            let store = Store::connect(&embedded.url, config)
                .await
                .context("connecting to the embedded redis-server")?;
            Ok((store, Some(embedded)))
        }
        Err(e) => bail!(
            "no Redis to keep jobs in. Tried {DEFAULT_REDIS_URL} ({default_error}) and starting a private \
             redis-server ({e}). Install Redis (`sudo apt-get install redis-server`) or set KILN_REDIS_URL"
        ),
    }
}

/// Why connecting to the configured Redis failed, said so the operator can act, and never with its password.
fn configured_redis_failed(url: &str, e: crate::store::StoreError) -> anyhow::Error {
    use crate::store::StoreError;
    let shown = crate::store::redacted_url(url);
    let refused =
        matches!(&e, StoreError::Unavailable(r) | StoreError::Redis(r) if crate::store::refused_credentials(r));
    let hint = if refused {
        format!(
            "Redis at {shown} refused the credentials (from KILN_REDIS_URL/--redis-url): check the ACL user and \
             password in the URL, redis://USER:PASSWORD@HOST:PORT"
        )
    } else {
        format!("cannot reach Redis at {shown} (from KILN_REDIS_URL/--redis-url); is redis-server running there?")
    };
    anyhow::Error::new(e).context(hint)
}

/// Tells scripts and people where the API is (they wait for this line).
fn announce_listening(addr: std::net::SocketAddr) {
    let url = format!("http://{addr}");
    crate::announce::announce(
        "api-listening",
        &format!("API listening on {url}"),
        serde_json::json!({"url": url}),
    );
}

/// The times [`serve_http`] keeps: for a request's headers, and for draining at shutdown.
#[derive(Clone, Copy)]
struct ServeTimes {
    header_timeout: std::time::Duration,
    drain: std::time::Duration,
}

impl ServeTimes {
    fn of(args: &ServeArgs) -> Self {
        Self {
            header_timeout: args.http_limits().header_timeout,
            drain: std::time::Duration::from_secs(args.grace_secs),
        }
    }
}

/// Serves `router` on `listener` until `shutdown`, then lets the requests in flight finish (idle
/// connections close at once; event streams get `--grace-secs`, then are cut). hyper's own connection
/// loop rather than `axum::serve`, for its header-read timeout: a client that does not finish a
/// request's headers within `--header-timeout-secs` (an idle connection: the next request's) is
/// disconnected, so half-sent requests (slowloris) cannot pile up.
async fn serve_http(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: CancellationToken,
    ServeTimes { header_timeout, drain }: ServeTimes,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin, as axum::serve does.
                    warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        warn!(
            ?drain,
            "connections still open after the grace period (event streams?); closing them"
        );
    }
    Ok(())
}

/// Compiles every registered kind before the first job needs it, so no job pays for compilation.
async fn warm_up(store: &Store, catalog: &Catalog, runtime: &Arc<Runtime>) {
    for kind in catalog.all() {
        let loaded = match store.kind_version(kind.name(), &kind.version).await {
            Ok(Some(version)) => store
                .component(&version.component)
                .await
                .map(|bytes| bytes.map(|bytes| (version.component, bytes))),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        let (hash, component) = match loaded {
            Ok(Some(found)) => found,
            Ok(None) => continue,
            Err(e) => {
                warn!(kind = kind.name(), error = %e, "could not load a kind to compile it");
                continue;
            }
        };
        let runtime = runtime.clone();
        let started = std::time::Instant::now();
        match tokio::task::spawn_blocking(move || runtime.prepare(&hash, &component)).await {
            Ok(Ok(_)) => info!(kind = kind.name(), elapsed = ?started.elapsed(), "component ready"),
            Ok(Err(e)) => warn!(kind = kind.name(), error = %e, "component failed to compile"),
            Err(e) => warn!(kind = kind.name(), error = %e, "compiling a component panicked"),
        }
    }
}

async fn watch_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        warn!("cannot listen for SIGTERM/SIGINT; stop Kiln with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: shutting down"),
        _ = int.recv() => info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
}
