//! The sandbox: runs one job in a fresh instance of its kind's component, under hard limits.
//!
//! One `Engine` per process, with the pooling allocator (copy-on-write memory images) so that a run
//! costs microseconds; each component is compiled once (and cached on disk across restarts, keyed by
//! content and engine) and pre-linked into a [`Prepared`]; every run gets a fresh `Store` with a memory
//! cap, a deadline and a WASI context that grants nothing: no files, sockets, environment, args or
//! inherited stdio.
//!
//! Guests run as futures (wasmtime's async support) on a dedicated multi-threaded tokio runtime, never
//! on the one serving HTTP. That is what makes the deadline and cancellation sound: a guest computing is
//! stopped by epoch interruption, and a guest blocked inside a WASI call (a clock poll, say), where
//! epochs cannot reach, is stopped by dropping its future.

mod bindings;
mod cache;
mod host_api;
mod limits;
mod output;
mod stdio;

use crate::job::{ErrorCode, JobError};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::error::Context as _;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub use limits::SandboxLimits;

use bindings::kiln::job::types as wit;
use bindings::{Handler, HandlerPre};
use stdio::CapturePipe;

/// How often the engine's epoch advances: how long a computing guest runs before it yields to the
/// executor and its deadline and cancellation are checked.
const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Bytes of guest stdout and of stderr kept for the job's log; the rest is discarded.
const STDIO_CAPTURE: usize = 16 * 1024;
/// Most bytes of a job's log (host `log` lines plus captured stdio) that are kept.
pub const MAX_LOG_BYTES: usize = 64 * 1024;

/// Shared between a running guest and the worker task watching it.
#[derive(Debug)]
pub struct RunSignals {
    /// Latest progress as f32 bits; `u32::MAX` until the guest reports any.
    progress: AtomicU32,
    /// Cancelled by the worker to stop the guest (cancel, lost lease, shutdown), wherever it is.
    interrupt: CancellationToken,
    /// The share of the job a run is (a pipeline's step): offset and scale as f32 bits, high and low.
    scope: std::sync::atomic::AtomicU64,
}

impl RunSignals {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            progress: AtomicU32::new(u32::MAX),
            interrupt: CancellationToken::new(),
            scope: std::sync::atomic::AtomicU64::new(u64::from(1.0f32.to_bits())),
        })
    }

    /// Takes the latest progress reported since the last call, if any.
    pub fn take_progress(&self) -> Option<f32> {
        match self.progress.swap(u32::MAX, Ordering::Relaxed) {
            u32::MAX => None,
            bits => Some(f32::from_bits(bits)),
        }
    }

    fn set_progress(&self, fraction: f32) {
        let clamped = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        let scope = self.scope.load(Ordering::Relaxed);
        let (offset, scale) = (f32::from_bits((scope >> 32) as u32), f32::from_bits(scope as u32));
        self.progress
            .store((offset + clamped * scale).to_bits(), Ordering::Relaxed);
    }

    /// Makes the guest's progress (0 to 1) count as `offset + fraction × scale` of the job's, as step
    /// `index` of `steps` is; and reports `offset` as the job's progress now.
    pub fn scope_to_step(&self, index: usize, steps: usize) {
        let (offset, scale) = (index as f32 / steps as f32, 1.0 / steps as f32);
        self.scope.store(
            (u64::from(offset.to_bits()) << 32) | u64::from(scale.to_bits()),
            Ordering::Relaxed,
        );
        self.progress.store(offset.to_bits(), Ordering::Relaxed);
    }

    /// Stops the guest within one epoch tick, even one blocked in a host call.
    pub fn interrupt(&self) {
        self.interrupt.cancel();
    }

    pub fn is_interrupted(&self) -> bool {
        self.interrupt.is_cancelled()
    }
}

/// What a run needs beyond the component. Owned, so that the run can move to the guest executor.
pub struct RunRequest {
    pub params: String,
    pub input: bytes::Bytes,
    /// The media types the kind declares (`Manifest::produces`); the result must be one of them.
    pub expected_media_types: Vec<String>,
    pub settings: BTreeMap<String, String>,
    pub limits: SandboxLimits,
    pub signals: Arc<RunSignals>,
}

/// A finished run: the job's output or error, and what the guest logged.
pub struct RunReport {
    pub result: Result<Output, JobError>,
    /// The guest's `log` lines and captured stdout/stderr, at most [`MAX_LOG_BYTES`].
    pub log: String,
    pub elapsed: Duration,
    /// Store creation to a ready instance; None if instantiation did not finish.
    pub instantiate: Option<Duration>,
    /// The largest linear memory the guest was granted, in bytes.
    pub memory_peak: usize,
}

#[derive(Debug)]
pub struct Output {
    pub media_type: String,
    pub data: Vec<u8>,
}

/// A component compiled and pre-linked, ready to instantiate in microseconds.
pub type Prepared = HandlerPre<RunState>;

/// Per-run state inside the `Store`.
pub struct RunState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: limits::MemoryLimiter,
    host: host_api::HostState,
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Why a component cannot be used. Both are the uploader's problem (422 at upload).
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// Not valid wasm, or over the per-component limits (core instances, memories, tables, memory size).
    #[error("the component cannot be compiled within Kiln's limits: {0:#}")]
    Compile(wasmtime::Error),
    /// Compiled, but it does not export `run` of Kiln's world or imports what Kiln does not provide.
    #[error("the component does not fit Kiln's `kiln:job/handler@0.1.0` world: {0:#}")]
    Link(wasmtime::Error),
}

/// Why a run was stopped from outside.
#[derive(Debug, thiserror::Error)]
enum Interrupted {
    #[error("the job ran past its deadline of {0:?}")]
    Deadline(Duration),
    #[error("the job was interrupted (cancelled, or its lease was lost)")]
    Signal,
}

/// How the engine is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are kept across restarts (None: compile on every start).
    pub cache_dir: Option<PathBuf>,
    /// Most runs alive at once; sizes the pooling allocator (a run past it fails to instantiate).
    pub max_concurrent_runs: u32,
    /// Threads of the guest executor (default: one per core).
    pub threads: usize,
    /// Instances from the pooling allocator (the default), or allocated on demand for each run; the
    /// instantiation benchmark compares the two.
    pub pooling: bool,
    /// With the pool: reset a finished run's memory by rewriting only the pages it wrote and keep them
    /// resident (the default, where the kernel offers `PAGEMAP_SCAN`), rather than handing them back
    /// with `madvise`, so that the next run takes no page faults. The benchmark compares the two.
    pub keep_resident: bool,
    /// Compile an epoch check into every function entry and loop (the default), so that a computing guest
    /// stops at its deadline and yields to other runs. Only the workloads benchmark turns them off, to
    /// measure what they cost: without them nothing stops a guest that computes forever.
    pub epoch_checks: bool,
    /// The largest linear memory a component may declare or grow to: the operator's ceiling on what a
    /// kind may ask for (`--max-kind-memory-mb`). The limiter enforces each run's own, lower, cap.
    pub max_memory_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            cache_dir: None,
            max_concurrent_runs: u32::try_from(cores * 4).unwrap_or(u32::MAX),
            threads: cores,
            pooling: true,
            keep_resident: true,
            epoch_checks: true,
            max_memory_bytes: 1 << 30,
        }
    }
}

/// What one component may hold, checked when it is compiled (so an upload over them is refused with 422)
/// and reserved per run in the pool. Measured (wasmparser over the components): the built-ins and the
/// test guests are 3 core instances, 1 memory and 2 tables (the program and the WASI adapter's shims); a
/// componentize-py 0.25.1 hello-world against `wit/job.wit` is 14 core instances (CPython, libc and the
/// other shared libraries, dynamically linked), 1 memory and 2 tables. These leave over twice that; the
/// pool reserves address space, not memory, for each slot.
pub const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 32;
pub const MAX_MEMORIES_PER_COMPONENT: u32 = 4;
pub const MAX_TABLES_PER_COMPONENT: u32 = 8;
/// Pre-linked components kept in memory. Each costs its compiled code: 2.7 MB for `plot`, 4.5 MB for
/// `crop`, 35 MB for a componentize-py hello-world. Past this the least recently used one is dropped
/// (loaded again from the disk cache, in milliseconds, if a job needs it). 16 is more kinds than a
/// deployment keeps busy at once, and caps what uploading many versions can make a worker hold: 16 × 35 MB
/// = 560 MB at worst, with CPython guests.
const PREPARED_CACHE: usize = 16;
/// Without `keep_resident`: finished runs whose memory is reset together, in one batch of `madvise` calls,
/// rather than each on its own: 31.5 → 24.6 µs per no-op run (BENCHMARKS.md). The pool has this many extra
/// slots, so the batch never delays an instantiation (wasmtime flushes it early if the pool runs out).
const DECOMMIT_BATCH: u32 = 16;
/// With `keep_resident`: the most bytes of a linear memory (and of a table) that stay resident after a
/// run, their written pages zeroed (or restored from the module's image) with `memset`. A page left to
/// `madvise` costs a page fault in the next run that writes it: ~1.4 µs here, against ~0.1 µs to rewrite
/// it (BENCHMARKS.md: 1327 faults per crop run before, none after). Pages past the limit still go back to
/// the kernel. What this keeps is bounded by the slots that stay warm: those of the runs in flight, plus
/// at most `max_concurrent_runs` idle ones (`max_unused_warm_slots`).
const MEMORY_KEEP_RESIDENT: usize = 16 << 20;
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

pub struct Runtime {
    engine: Engine,
    linker: Linker<RunState>,
    cache: Option<wasmtime::Cache>,
    /// Pre-linked components by component hash.
    prepared: cache::PreparedCache<Prepared>,
    /// The guest executor: a multi-threaded tokio runtime of its own, so guests never occupy the threads
    /// that serve HTTP. `Option` only so that `Drop` can shut it down without blocking.
    executor: Option<tokio::runtime::Runtime>,
    stop_ticker: CancellationToken,
}

impl Runtime {
    /// An engine with default sizing; `cache_dir` as in [`RuntimeConfig`].
    pub fn new(cache_dir: Option<PathBuf>) -> wasmtime::Result<Self> {
        Self::with_config(RuntimeConfig {
            cache_dir,
            ..RuntimeConfig::default()
        })
    }

    pub fn with_config(runtime_config: RuntimeConfig) -> wasmtime::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(runtime_config.epoch_checks);
        config.wasm_component_model(true);
        // Room for the runs in flight plus a batch of finished ones whose memory is not yet reset.
        let runs = runtime_config.max_concurrent_runs.max(1).saturating_add(DECOMMIT_BATCH);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(runs)
            .total_core_instances(runs * MAX_CORE_INSTANCES_PER_COMPONENT)
            .total_tables(runs * MAX_TABLES_PER_COMPONENT)
            .total_memories(runs * MAX_MEMORIES_PER_COMPONENT)
            .total_stacks(runs)
            .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
            .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
            .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
            .max_memories_per_module(MAX_MEMORIES_PER_COMPONENT)
            .max_memory_size(runtime_config.max_memory_bytes)
            .table_elements(limits::MAX_TABLE_ELEMENTS)
            .max_unused_warm_slots(runtime_config.max_concurrent_runs.max(1));
        if runtime_config.keep_resident && PoolingAllocationConfig::is_pagemap_scan_available() {
            pool.pagemap_scan(Enabled::Yes)
                .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
                .table_keep_resident(TABLE_KEEP_RESIDENT);
        } else {
            // Resetting by `memset` without knowing which pages were written would rewrite all of them.
            pool.decommit_batch_size(DECOMMIT_BATCH as usize);
        }
        config.allocation_strategy(if runtime_config.pooling {
            InstanceAllocationStrategy::Pooling(pool)
        } else {
            InstanceAllocationStrategy::OnDemand
        });
        let cache = match runtime_config.cache_dir {
            Some(dir) => {
                std::fs::create_dir_all(&dir).with_context(|| format!("creating cache dir {}", dir.display()))?;
                let mut cache_config = wasmtime::CacheConfig::new();
                cache_config.with_directory(dir);
                Some(wasmtime::Cache::new(cache_config)?)
            }
            None => None,
        };
        config.cache(cache.clone());
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Handler::add_to_linker::<_, HasSelf<_>>(&mut linker, |state: &mut RunState| &mut state.host)?;

        let stop_ticker = CancellationToken::new();
        let ticker_engine = engine.weak();
        let stop = stop_ticker.clone();
        std::thread::Builder::new().name("kiln-epoch".into()).spawn(move || {
            while !stop.is_cancelled() {
                std::thread::sleep(EPOCH_TICK);
                match ticker_engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })?;
        let executor = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(runtime_config.threads.max(1))
            .thread_name("kiln-guest")
            .enable_all()
            .build()
            .context("starting the guest executor")?;
        Ok(Self {
            engine,
            linker,
            cache,
            prepared: cache::PreparedCache::new(PREPARED_CACHE),
            executor: Some(executor),
            stop_ticker,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiled artifacts found in / missing from the disk cache since start: (hits, misses).
    pub fn cache_stats(&self) -> Option<(usize, usize)> {
        self.cache.as_ref().map(|c| (c.cache_hits(), c.cache_misses()))
    }

    /// The pre-linked component of this hash, if this process has it ready.
    pub fn prepared(&self, component_hash: &str) -> Option<Arc<Prepared>> {
        self.prepared.get(component_hash)
    }

    /// Compiles and pre-links a component, once per process however many callers ask at once (they wait
    /// for the one compile). CPU-heavy the first time (unless the disk cache has it), and it may wait for
    /// another caller's compile: call it on a blocking thread.
    pub fn prepare(&self, component_hash: &str, component: &[u8]) -> Result<Arc<Prepared>, PrepareError> {
        self.prepared.get_or_try_insert(component_hash, || {
            let component = Component::new(&self.engine, component).map_err(PrepareError::Compile)?;
            let pre = self.linker.instantiate_pre(&component).map_err(PrepareError::Link)?;
            HandlerPre::new(pre).map_err(PrepareError::Link)
        })
    }

    /// Runs a job on the guest executor; await the handle from any runtime.
    pub fn spawn(self: &Arc<Self>, pre: Arc<Prepared>, request: RunRequest) -> tokio::task::JoinHandle<RunReport> {
        let runtime = self.clone();
        self.executor
            .as_ref()
            .expect("the executor lives as long as the runtime")
            .spawn(async move { runtime.run(&pre, request).await })
    }

    /// Runs one job to completion, failure, deadline or interruption, on the calling task's executor
    /// (which must be a tokio runtime with timers). Never panics on guest misbehaviour.
    pub async fn run(&self, pre: &Prepared, request: RunRequest) -> RunReport {
        let started = Instant::now();
        let stdout = CapturePipe::new(STDIO_CAPTURE);
        let stderr = CapturePipe::new(STDIO_CAPTURE);
        // Nothing is granted: the builder starts empty, and we add only capture pipes for stdio.
        let wasi = WasiCtx::builder().stdout(stdout.clone()).stderr(stderr.clone()).build();
        let state = RunState {
            wasi,
            table: ResourceTable::new(),
            limiter: limits::MemoryLimiter::new(&request.limits),
            host: host_api::HostState::new(request.signals.clone(), request.settings.clone()),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);

        // A computing guest reaches an epoch check every tick: stop it there, or yield to the executor so
        // that other guests on this thread, and the watch below, get their turn.
        let deadline = started + request.limits.timeout;
        let timeout = request.limits.timeout;
        let signals = request.signals.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if signals.is_interrupted() {
                return Err(wasmtime::Error::new(Interrupted::Signal));
            }
            if Instant::now() >= deadline {
                return Err(wasmtime::Error::new(Interrupted::Deadline(timeout)));
            }
            Ok(UpdateDeadline::Yield(1))
        });

        // A guest blocked in a host call never reaches an epoch check: dropping its future stops it.
        let mut instantiated = None;
        let call = async {
            let handler = pre.instantiate_async(&mut store).await?;
            instantiated = Some(started.elapsed());
            handler.call_run(&mut store, &request.params, &request.input).await
        };
        let outcome = tokio::select! {
            biased;
            outcome = call => outcome,
            () = request.signals.interrupt.cancelled() => Err(wasmtime::Error::new(Interrupted::Signal)),
            () = tokio::time::sleep_until(deadline.into()) => Err(wasmtime::Error::new(Interrupted::Deadline(timeout))),
        };
        let result = match outcome {
            Ok(Ok(output)) => output::check(output, &request),
            Ok(Err(error)) => Err(guest_error(error)),
            Err(error) => Err(classify_host_error(
                &error,
                instantiated.is_some(),
                store.data(),
                &stderr,
            )),
        };
        let mut log = store.data_mut().host.take_log();
        for (stream, pipe) in [("stdout", &stdout), ("stderr", &stderr)] {
            let captured = pipe.contents();
            if !captured.is_empty() {
                log.push(format!("[{stream}] {}", String::from_utf8_lossy(&captured).trim_end()));
            }
        }
        RunReport {
            result,
            log: bounded_log(&log),
            elapsed: started.elapsed(),
            instantiate: instantiated,
            memory_peak: store.data().limiter.peak(),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.cancel();
        // Without waiting: the last handle may be dropped on one of the executor's own threads.
        if let Some(executor) = self.executor.take() {
            executor.shutdown_background();
        }
    }
}

/// Joins log lines, keeping at most [`MAX_LOG_BYTES`] and saying so when it cut.
fn bounded_log(lines: &[String]) -> String {
    let mut text = lines.join("\n");
    if text.len() > MAX_LOG_BYTES {
        const NOTE: &str = "\n[kiln] log truncated";
        let cut = (0..=MAX_LOG_BYTES - NOTE.len())
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text.truncate(cut);
        text.push_str(NOTE);
    }
    text
}

fn guest_error(error: wit::JobError) -> JobError {
    let code = match error.code {
        wit::ErrorCode::InvalidParams => ErrorCode::InvalidParams,
        wit::ErrorCode::InvalidInput => ErrorCode::InvalidInput,
        wit::ErrorCode::Internal => ErrorCode::Internal,
    };
    JobError::new(code, error.message)
}

/// Turns a wasmtime error (trap, exit, interruption, instantiation failure) into the job's error code.
/// `host-error` (retried) is kept for Kiln's own trouble: whatever the guest caused is `trap` (final),
/// since running it again would fail again.
fn classify_host_error(
    error: &wasmtime::Error,
    instantiated: bool,
    state: &RunState,
    stderr: &CapturePipe,
) -> JobError {
    if let Some(interrupted) = error.downcast_ref::<Interrupted>() {
        return match interrupted {
            Interrupted::Deadline(_) => JobError::new(ErrorCode::Timeout, interrupted.to_string()),
            Interrupted::Signal => JobError::new(ErrorCode::Internal, interrupted.to_string()),
        };
    }
    if let Some(limit) = state.limiter.exceeded() {
        return JobError::new(
            ErrorCode::MemoryLimit,
            format!("the job tried to use more than its memory limit of {} MiB", limit >> 20),
        );
    }
    if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        let captured = stderr.contents();
        let stderr = String::from_utf8_lossy(&captured);
        // Rust prints `thread '…' panicked at file:line:col:` and the message on the next line.
        let panic = match stderr.rfind("panicked at") {
            Some(at) => stderr[at..].lines().take(2).collect::<Vec<_>>().join(" "),
            None => stderr.lines().last().unwrap_or_default().to_owned(),
        };
        let message = match panic.trim() {
            "" => format!("the job crashed: {trap}"),
            panic => format!("the job crashed ({trap}): {panic}"),
        };
        return JobError::new(ErrorCode::Trap, message);
    }
    // `wasi:cli/exit` (`std::process::exit`), whatever the code: the guest ended without an answer.
    if let Some(wasmtime_wasi::I32Exit(code)) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return JobError::new(
            ErrorCode::Trap,
            format!("the job exited with code {code} instead of returning a result"),
        );
    }
    // A full pool (of instances, memories or fiber stacks) is Kiln's sizing, whenever it is hit.
    if error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some() {
        return JobError::new(ErrorCode::HostError, format!("the job could not run: {error:#}"));
    }
    // Once the instance exists, an error that is not a trap comes from the guest's use of the host or of
    // the canonical ABI (a bad resource handle, a string that is not UTF-8, a pointer out of bounds).
    if instantiated {
        return JobError::new(ErrorCode::Trap, format!("the job misused a host call: {error:#}"));
    }
    // Before that: the pool was exhausted, or the engine failed; Kiln's trouble, worth a retry elsewhere.
    JobError::new(ErrorCode::HostError, format!("the job could not run: {error:#}"))
}

#[cfg(test)]
mod tests;
