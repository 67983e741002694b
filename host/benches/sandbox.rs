//! Benchmarks of the sandbox (a custom harness: we want percentiles, not a mean).
//!
//! `cargo bench -p kiln --bench sandbox [-- instantiate|workloads|throughput]`; results go to
//! BENCHMARKS.md. Three questions:
//! 1. instantiate: what does a run of a handler that does nothing cost (fresh store, instantiation of a
//!    pre-linked component from the pooling allocator, the call, output checks)?
//! 2. workloads: how much slower are the built-in kinds in wasm than the same Rust compiled natively?
//! 3. throughput: how do jobs per second grow with jobs in flight on this machine's cores?

use kiln::runtime::{Prepared, RunReport, RunRequest, RunSignals, Runtime, RuntimeConfig, SandboxLimits};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = Arc::new(
        Runtime::with_config(RuntimeConfig {
            max_concurrent_runs: 64,
            ..RuntimeConfig::default()
        })
        .expect("engine"),
    );
    let executor = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("machine: {cores} cores");
    if wanted("instantiate") {
        let engine = |config: RuntimeConfig| Arc::new(Runtime::with_config(config).expect("engine"));
        instantiate(
            &[
                ("pool, written pages kept resident (default)", runtime.clone()),
                (
                    "pool, memory handed back with `madvise`",
                    engine(RuntimeConfig {
                        keep_resident: false,
                        ..RuntimeConfig::default()
                    }),
                ),
                (
                    "on-demand allocation (no pool)",
                    engine(RuntimeConfig {
                        pooling: false,
                        ..RuntimeConfig::default()
                    }),
                ),
            ],
            &executor,
        );
    }
    if wanted("workloads") {
        let unchecked = Runtime::with_config(RuntimeConfig {
            epoch_checks: false,
            ..RuntimeConfig::default()
        })
        .expect("engine");
        workloads(&runtime, &Arc::new(unchecked), &executor);
    }
    if wanted("throughput") {
        throughput(&runtime, &executor, cores);
    }
}

fn prepare(runtime: &Runtime, component: &[u8]) -> Arc<Prepared> {
    let version = kiln::kinds::component_hash(component);
    runtime.prepare(&version, component).expect("the component compiles")
}

fn request(params: &str, input: &[u8]) -> RunRequest {
    RunRequest {
        params: params.to_owned(),
        input: bytes::Bytes::copy_from_slice(input),
        expected_media_types: vec!["image/png".into()],
        settings: BTreeMap::new(),
        limits: SandboxLimits::default(),
        signals: RunSignals::new(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn micros(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn millis(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// The process's minor page faults so far (field 10 of `/proc/self/stat`): a run that writes to memory
/// the kernel has to map afresh pays for each page.
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after_name
        .split_whitespace()
        .nth(7)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}

/// `n` timed calls of a function after `warm` unmeasured ones.
struct Samples {
    /// Sorted.
    times: Vec<Duration>,
    /// Minor page faults per call, averaged.
    faults: f64,
}

/// Calls after the timed ones that count page faults (reading `/proc` between timed calls would disturb
/// them).
const FAULT_CALLS: usize = 10;

/// Times each of `fs` in turn, round by round: a burst of load on this shared machine then slows every
/// side alike instead of whichever was running. `warm` unmeasured rounds, `n` timed rounds, then
/// [`FAULT_CALLS`] calls of each for its page faults.
fn interleaved<const K: usize>(warm: usize, n: usize, mut fs: [&mut dyn FnMut(); K]) -> [Samples; K] {
    for _ in 0..warm {
        fs.iter_mut().for_each(|f| f());
    }
    let mut times: [Vec<Duration>; K] = std::array::from_fn(|_| Vec::with_capacity(n));
    for _ in 0..n {
        for (f, times) in fs.iter_mut().zip(&mut times) {
            let started = Instant::now();
            f();
            times.push(started.elapsed());
        }
    }
    let faults = fs.map(|f| {
        let before = minor_faults();
        (0..FAULT_CALLS).for_each(|_| f());
        (minor_faults() - before) as f64 / FAULT_CALLS as f64
    });
    times.iter_mut().for_each(|t| t.sort());
    std::array::from_fn(|k| Samples {
        times: std::mem::take(&mut times[k]),
        faults: faults[k],
    })
}

fn sample(warm: usize, n: usize, mut f: impl FnMut()) -> Samples {
    let [samples] = interleaved(warm, n, [&mut f]);
    samples
}

/// A test guest's component bytes, by crate name.
fn test_guest(name: &str) -> Vec<u8> {
    let (_, _, path) = kiln::kinds::TEST_GUESTS
        .iter()
        .find(|(guest, _, _)| *guest == name)
        .expect("build.rs builds every test guest");
    std::fs::read(path).expect("the test guest's component")
}

/// A wasm run to time: each call's instantiation time goes to `instantiation`.
fn recording<'a>(instantiation: &'a mut Vec<Duration>, mut run: impl FnMut() -> RunReport + 'a) -> impl FnMut() + 'a {
    move || {
        let report = run();
        instantiation.push(report.instantiate.expect("instantiated"));
        std::hint::black_box(report.result.expect("the run succeeds"));
    }
}

/// The instantiation times of the timed calls among all that `recording` saw, sorted.
fn timed_only(mut instantiation: Vec<Duration>, warm: usize, n: usize) -> Vec<Duration> {
    instantiation.truncate(warm + n);
    let mut timed = instantiation.split_off(warm);
    timed.sort();
    timed
}

/// Timed runs of a handler that does nothing, and each timed run's own instantiation time, sorted.
fn noop_runs(run: impl FnMut() -> RunReport) -> (Samples, Vec<Duration>) {
    let (warm, n) = (1000, 20_000);
    let mut instantiation = Vec::new();
    let samples = sample(warm, n, recording(&mut instantiation, run));
    (samples, timed_only(instantiation, warm, n))
}

fn instantiate(runtimes: &[(&str, Arc<Runtime>)], executor: &tokio::runtime::Runtime) {
    // The trivial handler, and a no-op in a component that imports every WASI interface it could misuse.
    let guests = [
        ("`guest-noop`", test_guest("guest-noop"), "{}"),
        (
            "`guest-hostile` noop",
            test_guest("guest-hostile"),
            r#"{"mode":"noop"}"#,
        ),
    ];
    println!("\n## instantiate: store + instantiate + call of a no-op handler (µs)\n");
    println!("| path | runs | p50 | p99 | p99.9 | of which instantiation, p50 | page faults/run |");
    println!("|---|---|---|---|---|---|---|");
    let row = |name: &str, (samples, instantiation): (Samples, Vec<Duration>)| {
        let times = &samples.times;
        println!(
            "| {name} | {} | {} | {} | {} | {} | {:.1} |",
            times.len(),
            micros(percentile(times, 0.5)),
            micros(percentile(times, 0.99)),
            micros(percentile(times, 0.999)),
            micros(percentile(&instantiation, 0.5)),
            samples.faults
        );
    };
    for (guest, component, params) in &guests {
        for (allocation, runtime) in runtimes {
            let pre = prepare(runtime, component);
            let inline = noop_runs(|| executor.block_on(runtime.run(&pre, request(params, &[]))));
            row(&format!("{guest}, `Runtime::run` inline, {allocation}"), inline);
        }
    }
    let (guest, component, params) = &guests[0];
    let (allocation, runtime) = &runtimes[0];
    let pre = prepare(runtime, component);
    let spawned = noop_runs(|| {
        executor
            .block_on(runtime.spawn(pre.clone(), request(params, &[])))
            .unwrap()
    });
    row(
        &format!("{guest}, `Runtime::spawn` (hop to the guest executor and back), {allocation}"),
        spawned,
    );
}

/// A 1024×768 photo-like PNG: smooth gradients with noise, so that it neither compresses to nothing
/// nor is pure noise.
fn test_photo() -> Vec<u8> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let image = image::RgbImage::from_fn(1024, 768, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let noise = (seed % 24) as u32;
        image::Rgb([
            ((x / 4 + noise) % 256) as u8,
            ((y / 3 + noise) % 256) as u8,
            (((x + y) / 7 + noise) % 256) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

const CROP: &str =
    r#"{"crop":{"x":112,"y":84,"width":800,"height":600},"resize":{"width":300,"height":300},"filter":"lanczos3"}"#;
const PLOT: &str = r#"{"title":"Benchmark","x_label":"x","y_label":"y","series":[{"name":"a","x":[1,2,3,4,5,6,7,8],"y":[1,4,9,16,25,36,49,64]},{"name":"b","x":[1,2,3,4,5,6,7,8],"y":[2,3,5,8,13,21,34,55]}]}"#;

fn builtin(name: &str) -> Vec<u8> {
    kiln::kinds::builtin_packages()
        .into_iter()
        .find(|p| p.manifest.name == name)
        .map(|p| p.component.to_vec())
        .expect("a built-in kind")
}

/// A built-in kind's logic called natively: params and input to PNG bytes.
type NativeRun = fn(&str, &[u8]) -> Vec<u8>;

/// `unchecked` is an engine without epoch checks: what the deadline's checks cost is their difference.
fn workloads(runtime: &Arc<Runtime>, unchecked: &Arc<Runtime>, executor: &tokio::runtime::Runtime) {
    let photo = test_photo();
    println!("\n## workloads: the same Rust in wasm and natively, same process (ms)\n");
    println!(
        "| workload | runs | native p50 | wasm p50 | of which instantiation | wasm / native \
         | wasm p50 without epoch checks | ÷ native | page faults/run native, wasm |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let cases: [(&str, &str, &[u8], NativeRun); 2] = [
        (
            "crop 1024×768 → 800×600 → 300×300 lanczos3",
            CROP,
            &photo,
            |p, i| kiln_guest::run::<guest_crop::Crop>(p, i).expect("native crop").data,
        ),
        ("plot, default 800×600 line chart", PLOT, &[], |p, i| {
            kiln_guest::run::<guest_plot::Plot>(p, i).expect("native plot").data
        }),
    ];
    for ((label, params, input, native), kind) in cases.into_iter().zip(["crop", "plot"]) {
        let pre = prepare(runtime, &builtin(kind));
        let native_out = native(params, input);
        let wasm_out = executor
            .block_on(runtime.run(&pre, request(params, input)))
            .result
            .expect("the wasm run succeeds")
            .data;
        assert_eq!(
            native_out, wasm_out,
            "{kind}: native and wasm must produce the same bytes"
        );
        let (warm, runs) = (3, 100);
        let bare_pre = prepare(unchecked, &builtin(kind));
        let mut instantiation = Vec::new();
        let [native, wasm, bare] = interleaved(
            warm,
            runs,
            [
                &mut || {
                    std::hint::black_box(native(params, input));
                },
                &mut recording(&mut instantiation, || {
                    executor.block_on(runtime.run(&pre, request(params, input)))
                }),
                &mut recording(&mut Vec::new(), || {
                    executor.block_on(unchecked.run(&bare_pre, request(params, input)))
                }),
            ],
        );
        let instantiation = timed_only(instantiation, warm, runs);
        let n = percentile(&native.times, 0.5);
        let [w, b] = [&wasm, &bare].map(|s| percentile(&s.times, 0.5));
        println!(
            "| {label} | {runs} | {} | {} | {} | {:.2}× | {} | {:.2}× | {:.0}, {:.0} |",
            millis(n),
            millis(w),
            millis(percentile(&instantiation, 0.5)),
            w.as_secs_f64() / n.as_secs_f64(),
            millis(b),
            b.as_secs_f64() / n.as_secs_f64(),
            native.faults,
            wasm.faults
        );
    }
}

fn throughput(runtime: &Arc<Runtime>, executor: &tokio::runtime::Runtime, cores: usize) {
    let photo = test_photo();
    let pre = prepare(runtime, &builtin("crop"));
    println!("\n## throughput: crop jobs per second by jobs in flight ({cores} cores)\n");
    println!("| jobs in flight | jobs | jobs/s | speed-up |");
    println!("|---|---|---|---|");
    let mut base = None;
    for in_flight in [1, 2, 4, 8].into_iter().filter(|&n| n <= cores * 4) {
        let jobs = 24 * in_flight.min(cores * 2).max(1);
        let started = Instant::now();
        executor.block_on(async {
            let semaphore = Arc::new(tokio::sync::Semaphore::new(in_flight));
            let mut handles = Vec::new();
            for _ in 0..jobs {
                let permit = semaphore.clone().acquire_owned().await.unwrap();
                let handle = runtime.spawn(pre.clone(), request(CROP, &photo));
                handles.push(tokio::spawn(async move {
                    let report = handle.await.unwrap();
                    drop(permit);
                    assert!(report.result.is_ok());
                }));
            }
            for handle in handles {
                handle.await.unwrap();
            }
        });
        let rate = jobs as f64 / started.elapsed().as_secs_f64();
        let base = *base.get_or_insert(rate);
        println!("| {in_flight} | {jobs} | {rate:.1} | {:.2}× |", rate / base);
    }
}
