//! The worker loop: claim a job from Redis, run it in the sandbox, record the outcome.
//!
//! One dispatcher per process takes a concurrency permit, then claims a job (or waits for a wake-up),
//! and hands it to a task. The wasm itself runs on the runtime's own executor, so HTTP serving in the
//! same process never waits behind a guest. While a job runs, its task renews the lease and flushes
//! progress; a failed renewal (cancelled, or the lease was given away) interrupts the guest.

use crate::job::{ErrorCode, JobError};
use crate::metrics::{Metrics, observe};
use crate::pipeline::{PIPELINE_KIND, Plan, PlannedStep, StepState, StepStatus, step_error};
use crate::runtime::{Prepared, RunRequest, RunSignals, Runtime, SandboxLimits};
use crate::store::{Claim, Kept, KindVersion, Outcome, Store, StoreError, WorkerBeat};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, error, info, info_span, warn};

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs run at once by this process.
    pub concurrency: usize,
    /// Limits of a run whose kind asks for nothing else.
    pub limits: SandboxLimits,
    /// The most any kind may ask for in its manifest's `limits`.
    pub ceilings: SandboxLimits,
    /// Operator settings per kind (`crop` → `max-megapixels` → `40`), over the manifests' defaults.
    pub settings: HashMap<String, BTreeMap<String, String>>,
    /// First retry delay; doubles per attempt, with jitter.
    pub retry_base: Duration,
    /// How often a running job's lease is renewed and its progress flushed (also bounds cancel latency).
    pub renew_every: Duration,
    /// How long running jobs may take to finish after shutdown starts; then they are handed back.
    pub grace: Duration,
    /// How often this worker sweeps expired jobs out of the listing indexes.
    pub sweep_every: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            limits: SandboxLimits::default(),
            ceilings: SandboxLimits {
                memory_bytes: 1 << 30,
                timeout: Duration::from_secs(300),
                max_output_bytes: 256 << 20,
                ..SandboxLimits::default()
            },
            settings: HashMap::new(),
            retry_base: Duration::from_secs(1),
            renew_every: Duration::from_millis(500),
            grace: Duration::from_secs(30),
            sweep_every: Duration::from_secs(60),
        }
    }
}

/// Longest pause between attempts to reach Redis again.
const MAX_REDIS_BACKOFF: Duration = Duration::from_secs(5);
/// An idle worker rechecks this often even without a wake-up: retries and expired leases come due.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Bounds on one sweep: tenants visited (20 per step) and index entries checked per tenant.
const SWEEP_STEPS: usize = 50;
const SWEEP_PER_TENANT: usize = 500;
/// Kind versions whose manifest a worker keeps in memory (a manifest is a few KiB).
const MAX_CACHED_VERSIONS: usize = 1024;
/// How long a retired kind version is kept even with no job on it: an API process may still show it for
/// one catalog refresh (2 s) and submit a job on it, which then holds it. Well above that.
const VERSION_GRACE: Duration = Duration::from_secs(10);

pub struct Worker {
    store: Store,
    runtime: Arc<Runtime>,
    config: WorkerConfig,
    /// Names this process in leases and logs.
    id: String,
    /// Kind versions (manifest and component hash) by kind and version, as registered when the job was
    /// submitted; cleared when it reaches [`MAX_CACHED_VERSIONS`] (rereading one costs a round trip).
    versions: Mutex<HashMap<(String, String), Arc<KindVersion>>>,
    /// `<tenant>/<id>` of the jobs running now, for the heartbeat.
    running: Mutex<std::collections::BTreeSet<String>>,
    host: String,
    started_at: i64,
}

/// How often a worker tells Redis it is alive (well within `WORKER_GONE_AFTER_MS`).
const HEARTBEAT: Duration = Duration::from_secs(2);

impl Worker {
    pub fn new(store: Store, runtime: Arc<Runtime>, config: WorkerConfig) -> Arc<Self> {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
        Arc::new(Self {
            store,
            runtime,
            config,
            id: format!("{host}-{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            versions: Mutex::new(HashMap::new()),
            running: Mutex::default(),
            host,
            started_at: crate::job::now_millis(),
        })
    }

    /// Runs until `shutdown`; then stops claiming, lets running jobs finish within the grace period and
    /// interrupts the rest, which go back to the queue.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let tracker = TaskTracker::new();
        let hard_stop = CancellationToken::new();
        let mut waiter = None;
        let mut backoff = Duration::from_millis(100);
        info!(worker = %self.id, concurrency = self.config.concurrency, "worker started");
        tokio::spawn(self.clone().sweep(shutdown.clone()));
        tokio::spawn(self.clone().heartbeat(shutdown.clone()));
        loop {
            let permit = tokio::select! {
                permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                () = shutdown.cancelled() => break,
            };
            // Never abandon a claim in flight: the script may have run, and a claim nobody works on would
            // cost the job an attempt when its lease runs out. It is bounded by the response timeout.
            let claimed = self.store.dequeue(&self.id).await;
            if shutdown.is_cancelled() {
                if let Ok(Some(claim)) = claimed {
                    self.record(&claim, Outcome::Release, "").await;
                }
                break;
            }
            match claimed {
                Ok(Some(claim)) => {
                    backoff = Duration::from_millis(100);
                    let worker = self.clone();
                    let hard_stop = hard_stop.clone();
                    let span = info_span!("job", id = %claim.id, kind = %claim.kind, tenant = %claim.tenant, attempt = claim.attempts);
                    let member = format!("{}/{}", claim.tenant, claim.id);
                    self.running
                        .lock()
                        .expect("running set poisoned")
                        .insert(member.clone());
                    tracker.spawn(
                        async move {
                            worker.clone().process(claim, hard_stop).await;
                            worker.running.lock().expect("running set poisoned").remove(&member);
                            drop(permit);
                        }
                        .instrument(span),
                    );
                }
                Ok(None) => {
                    drop(permit);
                    let waited = match waiter.as_mut() {
                        Some(conn) => tokio::select! {
                            waited = self.store.wait_for_work(conn, IDLE_POLL) => waited,
                            () = shutdown.cancelled() => break,
                        },
                        None => self.store.waiter().await.map(|conn| waiter = Some(conn)),
                    };
                    if let Err(e) = waited {
                        waiter = None;
                        warn!(error = %e, "waiting for work failed; retrying");
                        tokio::select! {
                            () = tokio::time::sleep(backoff) => {},
                            () = shutdown.cancelled() => break,
                        }
                        backoff = (backoff * 2).min(MAX_REDIS_BACKOFF);
                    }
                }
                Err(e) => {
                    drop(permit);
                    warn!(error = %e, retry_in = ?backoff, "could not claim a job from Redis; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {},
                        () = shutdown.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(MAX_REDIS_BACKOFF);
                }
            }
        }
        tracker.close();
        if !tracker.is_empty() {
            info!(running = tracker.len(), grace = ?self.config.grace, "shutting down: waiting for running jobs");
        }
        if tokio::time::timeout(self.config.grace, tracker.wait()).await.is_err() {
            warn!("grace period over: interrupting running jobs and handing them back to the queue");
            hard_stop.cancel();
            tracker.wait().await;
        }
        if let Err(e) = self.store.forget_worker(&self.id).await {
            warn!(error = %e, "could not remove this worker's heartbeat");
        }
        info!(worker = %self.id, "worker stopped");
    }

    /// Runs one claimed job and records its outcome. Never returns early without recording one, unless
    /// the lease is gone (then the job belongs to someone else, or was cancelled).
    async fn process(self: Arc<Self>, claim: Claim, hard_stop: CancellationToken) {
        let metrics = crate::metrics::global();
        let kind = Metrics::kind(&claim.kind);
        if let Some(created) = claim.id.created_millis() {
            let waited = Duration::from_millis((crate::job::now_millis() - created).max(0) as u64);
            observe(&metrics.queue_wait_seconds.get_or_create(&kind), waited);
        }
        let count = |outcome: &str| {
            metrics
                .jobs_finished
                .get_or_create(&metrics.outcome(&claim.kind, crate::auth::name_of_id(&claim.tenant), outcome))
                .inc()
        };
        let signals = RunSignals::new();
        let started = std::time::Instant::now();
        let mut log = String::new();
        let result = self.execute(&claim, &signals, &hard_stop, &mut log).await;
        observe(&metrics.run_seconds.get_or_create(&kind), started.elapsed());
        let outcome = match result {
            Ok(output) => Outcome::Succeeded {
                media_type: output.media_type,
                data: output.data,
            },
            Err(_) if hard_stop.is_cancelled() && signals.is_interrupted() => {
                info!("handing the job back to the queue (shutdown)");
                Outcome::Release
            }
            Err(_) if signals.is_interrupted() => {
                info!("job interrupted: cancelled, or its lease was lost");
                count("dropped");
                return;
            }
            Err(error) if error.code.is_retryable() => Outcome::Retry {
                after: self.retry_delay(claim.attempts),
                error,
            },
            Err(error) => Outcome::Failed(error),
        };
        count(match &outcome {
            Outcome::Succeeded { .. } => "succeeded",
            Outcome::Failed(_) => "failed",
            Outcome::Retry { .. } => "retried",
            Outcome::Release => "released",
        });
        self.record(&claim, outcome, &log).await;
    }

    /// Loads, runs and watches the job; `Err` is a failure of the job (the guest's or Kiln's).
    async fn execute(
        &self,
        claim: &Claim,
        signals: &Arc<RunSignals>,
        hard_stop: &CancellationToken,
        log: &mut String,
    ) -> Result<crate::runtime::Output, JobError> {
        if claim.kind == PIPELINE_KIND {
            return self.execute_pipeline(claim, signals, hard_stop, log).await;
        }
        let step = Step {
            kind: &claim.kind,
            version: &claim.version,
            params: claim.params.clone(),
            input: claim.input.clone(),
        };
        self.run_step(claim, step, signals, hard_stop, log).await
    }

    /// Runs a pipeline's steps in order, each one's output the next one's input, then each named
    /// output's steps on the shared steps' output, recording each step (and what it made) as it ends. A
    /// step whose output was kept by an earlier attempt is not run again.
    async fn execute_pipeline(
        &self,
        claim: &Claim,
        signals: &Arc<RunSignals>,
        hard_stop: &CancellationToken,
        log: &mut String,
    ) -> Result<crate::runtime::Output, JobError> {
        let host_error = |e: StoreError| JobError::new(ErrorCode::HostError, format!("reading the pipeline: {e}"));
        let plan: Plan = serde_json::from_str(&claim.params)
            .map_err(|e| JobError::new(ErrorCode::Internal, format!("the pipeline's plan is unreadable: {e}")))?;
        let steps: Vec<(Option<&str>, &PlannedStep)> = plan.all_steps().collect();
        let count = steps.len();
        let fan_out = !plan.outputs.is_empty();
        let recorded = self.store.pipeline_steps(claim).await.map_err(host_error)?;
        let mut states: Vec<StepState> = recorded
            .and_then(|json| serde_json::from_str(&json).ok())
            .filter(|states: &Vec<StepState>| states.len() == count)
            .unwrap_or_else(|| plan.pending());
        let (mut input, mut shared_output) = (claim.input.clone(), claim.input.clone());
        let mut result: Option<crate::runtime::Output> = None;
        for (index, &(output, step)) in steps.iter().enumerate() {
            if output.is_some() && (index == 0 || steps[index - 1].0 != output) {
                input = shared_output.clone();
            }
            let last_of_chain = index + 1 == count || steps[index + 1].0 != output;
            // Where what this step makes goes: beside the job for the next step (and a retry), to a named
            // result, or (the last step of a plain pipeline) to the job's result.
            let keep = match output {
                Some(name) if last_of_chain => Some(Kept::Named(name)),
                None if last_of_chain && !fan_out => None,
                _ => Some(Kept::Step(index)),
            };
            if states[index].status == StepStatus::Succeeded
                && let Some(keep) = keep
                && let Some(bytes) = self.store.kept_output(claim, keep).await.map_err(host_error)?
            {
                self.step_done(
                    &keep,
                    &states[index],
                    bytes,
                    &mut input,
                    &mut shared_output,
                    &mut result,
                );
                continue;
            }
            signals.scope_to_step(index, count);
            states[index].status = StepStatus::Running;
            states[index].started_at = Some(crate::job::now_millis());
            states[index].error = None;
            let cache_key = match plan.cache {
                true => self.step_cache_key(step, &input).await?,
                false => None,
            };
            let hit = match &cache_key {
                Some(key) => self.store.cached_result(&claim.tenant, key).await.map_err(host_error)?,
                None => None,
            };
            let ran = match hit {
                Some((data, media_type)) => {
                    states[index].cached = true;
                    Ok(crate::runtime::Output {
                        media_type,
                        data: data.to_vec(),
                    })
                }
                None => {
                    // The job's result is this step's: it fills the cache for the step when it succeeds.
                    if let (None, Some(key)) = (keep, &cache_key) {
                        self.store.cache_as(claim, key).await.map_err(host_error)?;
                    }
                    self.save_steps(claim, &states, None, signals).await?;
                    let mut step_log = String::new();
                    let run = Step {
                        kind: &step.kind,
                        version: &step.version,
                        params: step.params.to_string(),
                        input: input.clone(),
                    };
                    let ran = self.run_step(claim, run, signals, hard_stop, &mut step_log).await;
                    log.push_str(&format!(
                        "== step {} of {count} ({}) ==\n{step_log}",
                        index + 1,
                        step.kind
                    ));
                    ran
                }
            };
            states[index].finished_at = Some(crate::job::now_millis());
            match ran {
                Ok(done) => {
                    states[index].status = StepStatus::Succeeded;
                    states[index].media_type = Some(done.media_type.clone());
                    let bytes = bytes::Bytes::from(done.data);
                    self.save_steps(claim, &states, keep.map(|k| (k, bytes.as_ref())), signals)
                        .await?;
                    match keep {
                        Some(keep) => self.step_done(
                            &keep,
                            &states[index],
                            bytes,
                            &mut input,
                            &mut shared_output,
                            &mut result,
                        ),
                        None => {
                            result = Some(crate::runtime::Output {
                                media_type: done.media_type,
                                data: bytes.to_vec(),
                            })
                        }
                    }
                }
                Err(error) => {
                    states[index].status = StepStatus::Failed;
                    states[index].error = Some(error.clone());
                    // The job's own failure is what counts; this only shows where it happened.
                    let _ = self.save_steps(claim, &states, None, signals).await;
                    return Err(step_error(index, count, &step.kind, &error));
                }
            }
        }
        result.ok_or_else(|| JobError::new(ErrorCode::Internal, "the pipeline made no result"))
    }

    /// Passes a finished step's output on: to the next step, to the outputs' steps (the shared chain's
    /// last), and the first named output to the job's own result.
    fn step_done(
        &self,
        keep: &Kept<'_>,
        state: &StepState,
        bytes: bytes::Bytes,
        input: &mut bytes::Bytes,
        shared_output: &mut bytes::Bytes,
        result: &mut Option<crate::runtime::Output>,
    ) {
        match keep {
            Kept::Step(_) if state.output.is_none() => {
                *shared_output = bytes.clone();
                *input = bytes;
            }
            Kept::Step(_) => *input = bytes,
            Kept::Named(_) => {
                if result.is_none() {
                    *result = Some(crate::runtime::Output {
                        media_type: state.media_type.clone().unwrap_or_default(),
                        data: bytes.to_vec(),
                    });
                }
            }
        }
    }

    /// Records the pipeline's steps, and what a step made where it is kept; a lost lease interrupts the
    /// job (it is someone else's now).
    async fn save_steps(
        &self,
        claim: &Claim,
        states: &[StepState],
        output: Option<(Kept<'_>, &[u8])>,
        signals: &Arc<RunSignals>,
    ) -> Result<(), JobError> {
        let json = serde_json::to_string(states).map_err(|e| JobError::new(ErrorCode::Internal, e.to_string()))?;
        match self.store.save_step(claim, &json, output).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                signals.interrupt();
                Err(JobError::new(
                    ErrorCode::Internal,
                    "the job was cancelled or reassigned",
                ))
            }
            Err(e) => Err(JobError::new(ErrorCode::HostError, format!("recording a step: {e}"))),
        }
    }

    /// Loads one kind version and runs it on `step`'s params and input, renewing the claim's lease.
    async fn run_step(
        &self,
        claim: &Claim,
        step: Step<'_>,
        signals: &Arc<RunSignals>,
        hard_stop: &CancellationToken,
        log: &mut String,
    ) -> Result<crate::runtime::Output, JobError> {
        // Loading may compile: the lease is renewed meanwhile, and the run's deadline starts after it.
        let (version, pre) = self
            .renewing(claim, signals, hard_stop, self.load(step.kind, step.version))
            .await?;
        if signals.is_interrupted() {
            return Err(JobError::new(ErrorCode::Internal, "interrupted while loading the kind"));
        }
        let manifest = &version.manifest;
        let mut settings = manifest.settings.clone();
        if let Some(overrides) = self.config.settings.get(&manifest.name) {
            settings.extend(overrides.clone());
        }
        let limits = self
            .config
            .limits
            .for_kind(manifest.limits.as_ref(), &self.config.ceilings);
        // On the runtime's own executor: guest code never runs on the threads serving HTTP.
        let run = self.runtime.spawn(
            pre,
            RunRequest {
                params: step.params,
                input: step.input,
                expected_media_types: manifest.produces().into_iter().map(String::from).collect(),
                settings,
                limits,
                signals: signals.clone(),
            },
        );
        let report = self.renewing(claim, signals, hard_stop, run).await;
        let report =
            report.map_err(|e| JobError::new(ErrorCode::HostError, format!("the job's thread failed: {e}")))?;
        let metrics = crate::metrics::global();
        if let Some(instantiate) = report.instantiate {
            observe(&metrics.instantiate_seconds, instantiate);
        }
        metrics
            .guest_memory_peak_bytes
            .get_or_create(&Metrics::kind(step.kind))
            .observe(report.memory_peak as f64);
        for line in report.log.lines() {
            debug!(target: "kiln::guest", "{line}");
        }
        match &report.result {
            Ok(output) => info!(elapsed = ?report.elapsed, bytes = output.data.len(), "job succeeded"),
            Err(error) => {
                info!(elapsed = ?report.elapsed, code = error.code.as_str(), message = %error.message, "job failed")
            }
        }
        *log = report.log;
        report.result
    }

    /// Awaits `work` while renewing the job's lease and flushing its progress every `renew_every`; a
    /// failed renewal (cancelled, or the lease was given away) or the hard stop interrupts the guest.
    async fn renewing<T>(
        &self,
        claim: &Claim,
        signals: &Arc<RunSignals>,
        hard_stop: &CancellationToken,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        tokio::pin!(work);
        let mut ticker = tokio::time::interval(self.config.renew_every);
        ticker.tick().await;
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = ticker.tick() => {
                    match self.store.renew(claim, signals.take_progress()).await {
                        Ok(true) => {}
                        Ok(false) => signals.interrupt(),
                        // Redis trouble: keep running; the lease has slack, and finish retries.
                        Err(e) => warn!(error = %e, "could not renew the lease"),
                    }
                }
                () = hard_stop.cancelled(), if !signals.is_interrupted() => signals.interrupt(),
            }
        }
    }

    /// The job's kind version and pre-linked component: from this process's caches, or else from Redis
    /// and compiled once (concurrent jobs of a new version wait for the one compile).
    async fn load(&self, kind: &str, version: &str) -> Result<(Arc<KindVersion>, Arc<Prepared>), JobError> {
        let found = self.version_record(kind, version).await?;
        if let Some(pre) = self.runtime.prepared(&found.component) {
            return Ok((found, pre));
        }
        let component = match self.store.component(&found.component).await {
            Ok(Some(component)) => component,
            Ok(None) => return Err(unregistered(version, kind)),
            Err(e) => return Err(JobError::new(ErrorCode::HostError, format!("loading the kind: {e}"))),
        };
        let version = found;
        let runtime = self.runtime.clone();
        let hash = version.component.clone();
        let pre = tokio::task::spawn_blocking(move || runtime.prepare(&hash, &component))
            .await
            .map_err(|e| JobError::new(ErrorCode::HostError, format!("compiling the component failed: {e}")))?
            // Deterministic, so not retried: the component no longer fits this Kiln's limits or world.
            .map_err(|e| {
                JobError::new(
                    ErrorCode::Internal,
                    format!("the kind's component could not be loaded: {e}"),
                )
            })?;
        Ok((version, pre))
    }

    /// A kind version's record (manifest and component hash), from this process's cache or Redis.
    async fn version_record(&self, kind: &str, version: &str) -> Result<Arc<KindVersion>, JobError> {
        let key = (kind.to_owned(), version.to_owned());
        if let Some(found) = self.versions.lock().expect("version cache poisoned").get(&key).cloned() {
            return Ok(found);
        }
        let found = Arc::new(self.load_version(kind, version).await?);
        let mut versions = self.versions.lock().expect("version cache poisoned");
        if versions.len() >= MAX_CACHED_VERSIONS {
            versions.clear();
        }
        versions.insert(key, found.clone());
        Ok(found)
    }

    /// The result-cache key of a pipeline step, unless its kind is not deterministic.
    async fn step_cache_key(&self, step: &PlannedStep, input: &bytes::Bytes) -> Result<Option<String>, JobError> {
        let record = self.version_record(&step.kind, &step.version).await?;
        if record.manifest.deterministic == Some(false) {
            return Ok(None);
        }
        let input = (!input.is_empty()).then(|| crate::kinds::component_hash(input));
        Ok(Some(crate::result_cache::key(
            &step.version,
            &step.params,
            input.as_deref(),
        )))
    }

    async fn load_version(&self, kind: &str, version: &str) -> Result<KindVersion, JobError> {
        match self.store.kind_version(kind, version).await {
            Ok(Some(found)) => Ok(found),
            Ok(None) => Err(unregistered(version, kind)),
            Err(e) => Err(JobError::new(ErrorCode::HostError, format!("loading the kind: {e}"))),
        }
    }

    /// Tells Redis every [`HEARTBEAT`] that this worker is alive and what it runs, until `shutdown`.
    async fn heartbeat(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let beat = WorkerBeat {
                id: self.id.clone(),
                host: self.host.clone(),
                pid: std::process::id(),
                concurrency: self.config.concurrency,
                started_at: self.started_at,
                last_seen: crate::job::now_millis(),
                running: self
                    .running
                    .lock()
                    .expect("running set poisoned")
                    .iter()
                    .cloned()
                    .collect(),
            };
            if let Err(e) = self.store.heartbeat(&beat).await {
                debug!(error = %e, "heartbeat failed");
            }
            tokio::select! {
                () = tokio::time::sleep(HEARTBEAT) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Every `sweep_every` (first after a random part of it, so workers spread out), removes the listing
    /// entries of expired jobs, in bounded steps. Losing a sweep to a Redis hiccup costs nothing.
    async fn sweep(self: Arc<Self>, shutdown: CancellationToken) {
        let every = self.config.sweep_every;
        let first = every.mul_f64((uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0);
        let mut next = tokio::time::Instant::now() + first;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = shutdown.cancelled() => return,
            }
            next += every;
            let mut cursor = "0".to_owned();
            let mut removed = 0;
            for _ in 0..SWEEP_STEPS {
                match self.store.sweep(&cursor, SWEEP_PER_TENANT).await {
                    Ok((next_cursor, n)) => {
                        removed += n;
                        cursor = next_cursor;
                    }
                    Err(e) => {
                        warn!(error = %e, "sweeping expired jobs failed; trying again later");
                        break;
                    }
                }
                if cursor == "0" {
                    break;
                }
            }
            debug!(removed, "swept expired jobs from the listing indexes");
            match self.store.collect_versions(VERSION_GRACE).await {
                Ok(0) => {}
                Ok(collected) => info!(
                    collected,
                    "deleted kind versions that no kind and no unfinished job use"
                ),
                Err(e) => warn!(error = %e, "collecting unused kind versions failed; trying again later"),
            }
        }
    }

    /// Exponential backoff with jitter: base × 2^(attempt-1), ±25%.
    fn retry_delay(&self, attempt: u32) -> Duration {
        let exp = self
            .config
            .retry_base
            .saturating_mul(1 << attempt.saturating_sub(1).min(16));
        let jitter = 0.75 + 0.5 * (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0;
        exp.mul_f64(jitter).min(Duration::from_secs(300))
    }

    /// Stores the outcome, retrying while Redis is unreachable. If it stays unreachable past the lease,
    /// the job will be run again elsewhere: at-least-once, never lost.
    async fn record(&self, claim: &Claim, outcome: Outcome, log: &str) {
        let give_up = tokio::time::Instant::now() + self.store.config().lease;
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.store.finish(claim, &outcome, log).await {
                Ok(true) => return,
                Ok(false) => {
                    info!("outcome dropped: the job was cancelled or reassigned meanwhile");
                    return;
                }
                Err(e @ StoreError::Unavailable(_)) if tokio::time::Instant::now() < give_up => {
                    warn!(error = %e, "could not record the outcome; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    error!(error = %e, "could not record the outcome; the job will be retried when its lease expires");
                    return;
                }
            }
        }
    }
}

fn unregistered(version: &str, kind: &str) -> JobError {
    JobError::new(
        ErrorCode::Internal,
        format!("version {version} of kind `{kind}` is no longer registered"),
    )
}

/// One run: a job of one kind, or a pipeline's step.
struct Step<'a> {
    kind: &'a str,
    version: &'a str,
    params: String,
    input: bytes::Bytes,
}
