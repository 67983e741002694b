//! `kiln bench KIND`: a load generator. `--clients` concurrent clients each loop over the whole job
//! lifecycle as a user's script would: submit, long-poll until the job ends, download the result, and
//! decode it as a PNG (checking its size with `--expect`). It reports throughput and the latency of that
//! whole round, submit to decoded result.
//!
//! It speaks only the public HTTP API, so the same client measures any service that offers it: a Kiln,
//! or the Flask + Celery peer in `deploy/bench/` that mimics the three routes it uses.

use super::submit::{read_input, read_params, submit_request};
use super::{EXIT_JOB_FAILED, Failure, Remote};
use crate::config::BenchArgs;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What one run measured; `--json` prints it as is.
#[derive(Debug, Serialize)]
pub struct Report {
    pub kind: String,
    pub jobs: usize,
    pub clients: usize,
    pub failed: usize,
    pub seconds: f64,
    pub jobs_per_sec: f64,
    pub latency_ms: Percentiles,
    /// The first failure, word for word, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let at = |q: f64| {
            let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len().max(1)) - 1;
            samples.get(index).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        Self {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// Everything one job needs, shared by the clients.
struct Workload {
    remote: Remote,
    kind: String,
    params: String,
    input: Option<(bytes::Bytes, String)>,
    expect: Option<(u32, u32)>,
    /// Whether the result cache may answer (`--cache`).
    cache: bool,
}

impl Workload {
    /// One job's whole lifecycle; the error says which step failed.
    async fn round(&self) -> Result<(), String> {
        let request = submit_request(
            &self.remote,
            &self.kind,
            &self.params,
            self.input.as_ref(),
            None,
            self.cache,
        );
        let job = self
            .remote
            .json::<super::Job>(request)
            .await
            .map_err(|e| format!("submit: {e}"))?;
        let ended = self
            .remote
            .wait_final(&job.id, |_| {})
            .await
            .map_err(|e| format!("wait: {e}"))?;
        if ended.status != "succeeded" {
            return Err(format!("job {} {}: {}", ended.id, ended.status, ended.reason()));
        }
        let bytes = super::commands::download(&self.remote, &job.id)
            .await
            .map_err(|e| format!("download: {e}"))?;
        let size = png_size(&bytes).map_err(|e| format!("job {}: the result is not a PNG: {e}", job.id))?;
        match self.expect {
            Some(expected) if expected != size => Err(format!(
                "job {}: the result is {}×{}, expected {}×{}",
                job.id, size.0, size.1, expected.0, expected.1
            )),
            _ => Ok(()),
        }
    }
}

/// Decodes the whole image (not just its header), so a truncated or corrupt PNG counts as a failure.
fn png_size(bytes: &[u8]) -> Result<(u32, u32), png::DecodingError> {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info()?;
    let mut pixels = vec![0; reader.output_buffer_size().unwrap_or(0)];
    let frame = reader.next_frame(&mut pixels)?;
    Ok((frame.width, frame.height))
}

/// Parses `--expect WxH`.
pub fn parse_size(raw: &str) -> Result<(u32, u32), String> {
    raw.split_once(['x', 'X', '×'])
        .and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)))
        .ok_or_else(|| format!("`{raw}` is not a size like 300x300"))
}

pub async fn run(args: BenchArgs) -> Result<(), Failure> {
    let params = serde_json::Value::Object(read_params(args.params.as_deref())?).to_string();
    let input = match &args.input {
        Some(path) => Some(read_input(path).await?),
        None => None,
    };
    let workload = Arc::new(Workload {
        remote: Remote::new(&args.remote)?,
        kind: args.kind.clone(),
        params,
        input,
        expect: args.expect,
        cache: args.cache,
    });
    // Warm-up, one at a time: connections, compiled components and caches are made before the clock starts,
    // and a workload that cannot succeed stops here with its reason.
    for _ in 0..args.warmup {
        workload
            .round()
            .await
            .map_err(|e| Failure::new(EXIT_JOB_FAILED, format!("warm-up job failed: {e}")))?;
    }
    let report = measure(workload, args.jobs as usize, args.clients as usize).await;
    if args.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        let l = &report.latency_ms;
        println!(
            "{} jobs of `{}` from {} clients in {:.2} s: {:.1} jobs/s, {} failed; submit→result ms p50 {:.1}, \
             p90 {:.1}, p99 {:.1}, max {:.1}",
            report.jobs,
            report.kind,
            report.clients,
            report.seconds,
            report.jobs_per_sec,
            report.failed,
            l.p50,
            l.p90,
            l.p99,
            l.max
        );
    }
    match report.first_error {
        Some(error) => Err(Failure::new(
            EXIT_JOB_FAILED,
            format!("{} of {} jobs failed; the first: {error}", report.failed, report.jobs),
        )),
        None => Ok(()),
    }
}

/// `clients` tasks share `jobs` rounds; the clock runs from the first submit to the last decoded result.
async fn measure(workload: Arc<Workload>, jobs: usize, clients: usize) -> Report {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (workload, next) = (workload.clone(), next.clone());
            tokio::spawn(async move {
                let mut results = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < jobs {
                    let began = Instant::now();
                    let outcome = workload.round().await;
                    results.push((began.elapsed(), outcome));
                }
                results
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(jobs);
    let mut failed = 0;
    let mut first_error = None;
    for task in tasks {
        for (latency, outcome) in task.await.unwrap_or_default() {
            match outcome {
                Ok(()) => latencies.push(latency),
                Err(e) => {
                    failed += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Report {
        kind: workload.kind.clone(),
        jobs,
        clients,
        failed,
        seconds,
        jobs_per_sec: (jobs - failed) as f64 / seconds,
        latency_ms: Percentiles::of(latencies),
        first_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("300x200"), Ok((300, 200)));
        assert_eq!(parse_size("300×200"), Ok((300, 200)));
        assert!(parse_size("300").is_err());
        assert!(parse_size("ax2").is_err());
    }

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let samples: Vec<_> = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of(samples);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(Percentiles::of(Vec::new()).p50, 0.0);
    }
}
