//! The sandbox: runs one job in a fresh instance of its kind's component, under hard limits.
//!
//! One `Engine` per process; each component is compiled once (and cached on disk across restarts) and
//! pre-linked into a [`HandlerPre`]; every run gets a fresh `Store` with a memory cap, an epoch deadline
//! and a WASI context that grants nothing: no files, sockets, environment, args or inherited stdio.
//! Runs are synchronous and CPU-bound: callers run them on blocking threads, never on the async runtime.

mod bindings;
mod host_api;
mod limits;

use crate::job::{ErrorCode, JobError};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine, Store, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub use limits::SandboxLimits;

use bindings::kiln::job::types as wit;
use bindings::{Handler, HandlerPre};

/// How often the engine's epoch advances; the granularity of deadlines and cancellation.
const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Bytes of guest stdout/stderr kept for the job's log; the rest is discarded.
const STDIO_CAPTURE: usize = 64 * 1024;

/// Shared between a running guest and the worker task watching it.
#[derive(Debug, Default)]
pub struct RunSignals {
    /// Latest progress as f32 bits; `u32::MAX` until the guest reports any.
    progress: AtomicU32,
    /// Set by the worker to stop the guest at its next epoch check (cancel, lost lease, shutdown).
    interrupt: AtomicBool,
}

impl RunSignals {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            progress: AtomicU32::new(u32::MAX),
            interrupt: AtomicBool::new(false),
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
        self.progress.store(clamped.to_bits(), Ordering::Relaxed);
    }

    pub fn interrupt(&self) {
        self.interrupt.store(true, Ordering::Relaxed);
    }

    pub fn is_interrupted(&self) -> bool {
        self.interrupt.load(Ordering::Relaxed)
    }
}

/// What a run needs beyond the component.
pub struct RunRequest<'a> {
    pub params: &'a str,
    pub input: &'a [u8],
    pub expected_media_type: &'a str,
    pub settings: &'a BTreeMap<String, String>,
    pub limits: SandboxLimits,
    pub signals: Arc<RunSignals>,
}

/// A finished run: the job's output or error, and what the guest logged.
pub struct RunReport {
    pub result: Result<Output, JobError>,
    pub log: Vec<String>,
    pub elapsed: Duration,
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

/// Why the epoch callback stopped the guest.
#[derive(Debug, thiserror::Error)]
enum Interrupted {
    #[error("the job ran past its deadline of {0:?}")]
    Deadline(Duration),
    #[error("the job was interrupted (cancelled, or its lease was lost)")]
    Signal,
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<RunState>,
    /// Pre-linked components by version (component hash).
    prepared: Mutex<HashMap<String, Arc<Prepared>>>,
    stop_ticker: Arc<AtomicBool>,
}

impl Runtime {
    /// `cache_dir`: where compiled components are kept across restarts (None: compile every start).
    pub fn new(cache_dir: Option<PathBuf>) -> wasmtime::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        if let Some(dir) = cache_dir {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating cache dir {}", dir.display()))?;
            let mut cache_config = wasmtime::CacheConfig::new();
            cache_config.with_directory(dir);
            config.cache(Some(wasmtime::Cache::new(cache_config)?));
        }
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Handler::add_to_linker::<_, HasSelf<_>>(&mut linker, |state: &mut RunState| &mut state.host)?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.weak();
        let stop = stop_ticker.clone();
        std::thread::Builder::new().name("kiln-epoch".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                match ticker_engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })?;
        Ok(Self {
            engine,
            linker,
            prepared: Mutex::new(HashMap::new()),
            stop_ticker,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn is_prepared(&self, version: &str) -> bool {
        self.prepared
            .lock()
            .expect("prepared map poisoned")
            .contains_key(version)
    }

    /// Compiles and pre-links a component, once per version. CPU-heavy the first time: call it on a
    /// blocking thread.
    pub fn prepare(&self, version: &str, component: &[u8]) -> wasmtime::Result<Arc<Prepared>> {
        if let Some(pre) = self.prepared.lock().expect("prepared map poisoned").get(version) {
            return Ok(pre.clone());
        }
        let component = Component::new(&self.engine, component).context("compiling the component")?;
        let pre = Arc::new(HandlerPre::new(self.linker.instantiate_pre(&component)?)?);
        self.prepared
            .lock()
            .expect("prepared map poisoned")
            .insert(version.to_owned(), pre.clone());
        Ok(pre)
    }

    /// Runs one job to completion, failure or interruption. Never panics on guest misbehaviour.
    pub fn run(&self, pre: &Prepared, request: RunRequest<'_>) -> RunReport {
        let started = Instant::now();
        let stdout = MemoryOutputPipe::new(STDIO_CAPTURE);
        let stderr = MemoryOutputPipe::new(STDIO_CAPTURE);
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

        let deadline = started + request.limits.timeout;
        let timeout = request.limits.timeout;
        let signals = request.signals.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if signals.interrupt.load(Ordering::Relaxed) {
                return Err(wasmtime::Error::new(Interrupted::Signal));
            }
            if Instant::now() >= deadline {
                return Err(wasmtime::Error::new(Interrupted::Deadline(timeout)));
            }
            Ok(UpdateDeadline::Continue(1))
        });

        let outcome = pre
            .instantiate(&mut store)
            .and_then(|handler| handler.call_run(&mut store, request.params, request.input));
        let result = match outcome {
            Ok(Ok(output)) => check_output(output, &request),
            Ok(Err(error)) => Err(guest_error(error)),
            Err(error) => Err(classify_host_error(&error, store.data(), &stderr)),
        };
        let mut log = std::mem::take(&mut store.data_mut().host.log);
        for (stream, pipe) in [("stdout", &stdout), ("stderr", &stderr)] {
            let captured = pipe.contents();
            if !captured.is_empty() {
                log.push(format!("[{stream}] {}", String::from_utf8_lossy(&captured).trim_end()));
            }
        }
        RunReport {
            result,
            log,
            elapsed: started.elapsed(),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

fn guest_error(error: wit::JobError) -> JobError {
    let code = match error.code {
        wit::ErrorCode::InvalidParams => ErrorCode::InvalidParams,
        wit::ErrorCode::InvalidInput => ErrorCode::InvalidInput,
        wit::ErrorCode::Internal => ErrorCode::Internal,
    };
    JobError::new(code, error.message)
}

/// Holds the guest to what its kind declares: size, media type, and (for PNG) the actual format.
fn check_output(output: wit::Output, request: &RunRequest<'_>) -> Result<Output, JobError> {
    if output.data.len() > request.limits.max_output_bytes {
        return Err(JobError::new(
            ErrorCode::OutputTooLarge,
            format!(
                "the job produced {} bytes, over the limit of {} bytes",
                output.data.len(),
                request.limits.max_output_bytes
            ),
        ));
    }
    if output.media_type != request.expected_media_type {
        return Err(JobError::new(
            ErrorCode::InvalidOutput,
            format!(
                "the job returned media type `{}` but its kind declares `{}`",
                output.media_type, request.expected_media_type
            ),
        ));
    }
    const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if output.media_type == "image/png" && !output.data.starts_with(PNG_SIGNATURE) {
        return Err(JobError::new(
            ErrorCode::InvalidOutput,
            "the job returned bytes labelled image/png that are not a PNG",
        ));
    }
    Ok(Output {
        media_type: output.media_type,
        data: output.data,
    })
}

/// Turns a wasmtime error (trap, interruption, instantiation failure) into the job's error code.
fn classify_host_error(error: &wasmtime::Error, state: &RunState, stderr: &MemoryOutputPipe) -> JobError {
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
        let panic = String::from_utf8_lossy(&captured);
        let panic = panic
            .lines()
            .rev()
            .find(|l| l.contains("panicked at"))
            .or_else(|| panic.lines().last());
        let message = match panic {
            Some(line) => format!("the job crashed ({trap}): {}", line.trim()),
            None => format!("the job crashed: {trap}"),
        };
        return JobError::new(ErrorCode::Trap, message);
    }
    JobError::new(ErrorCode::HostError, format!("the job could not run: {error:#}"))
}
