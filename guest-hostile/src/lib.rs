//! A test-only job kind that misbehaves on request, so the test suite can prove that the sandbox holds
//! (limits, traps, capabilities) and measure the cost of a run that does nothing (`noop`).
//!
//! Params: `{"mode": "<mode>", ...}`; see [`Mode`]. Only the wasm build is meaningful. Its
//! `kind.json` schema stays loose on purpose (any `mode` string), so tests can reach the guest.

use kiln_guest::{JobError, Kind, Output};
use serde::Deserialize;

/// A valid 1×1 PNG (one green pixel): the output of every mode that succeeds.
pub const TINY_PNG: &[u8] = include_bytes!("../../guest-noop/one-pixel.png");

#[derive(Debug, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Mode {
    /// Return the tiny PNG at once.
    Noop,
    /// Compute (no host calls) for `ms` milliseconds, reporting progress, then succeed.
    Spin { ms: u64 },
    /// Block in a host call (`wasi:clocks` poll) for `ms` milliseconds, then succeed.
    Sleep { ms: u64 },
    /// Loop forever without host calls.
    Loop,
    /// Allocate memory until the host refuses.
    Alloc,
    /// Panic with a recognisable message.
    Panic,
    /// Recurse until the stack overflows.
    Recurse,
    /// Return `mb` MiB of bytes labelled image/png.
    HugeOutput { mb: usize },
    /// Return a PNG labelled as something else.
    WrongType,
    /// Return bytes labelled image/png that are not a PNG.
    NotPng,
    /// Try to read a file; fails the job with what happened.
    ReadFile { path: String },
    /// Try to open a TCP connection; fails the job with what happened.
    Connect { addr: String },
    /// Report what the environment, args and stdio look like, as an error message.
    Environment,
    /// Call `log` `lines` times, and write `lines` lines to stdout and stderr.
    LogFlood { lines: u32 },
    /// Call `progress` `calls` times.
    ProgressFlood { calls: u32 },
    /// Keep a value in a global and report what the previous run left there.
    Global,
    /// Echo the input as the output (labelled image/png).
    Echo,
    /// End the process with `std::process::exit(code)` (`wasi:cli/exit`) instead of returning.
    Exit { code: i32 },
    /// Return a small, well-formed PNG whose header claims `width` × `height` pixels.
    HugePng { width: u32, height: u32 },
    /// Return a JPEG (SOI, a baseline SOF0, EOI; no scan) whose frame header claims `width` × `height`.
    HugeJpeg { width: u16, height: u16 },
    /// Return the tiny PNG cut short before its end.
    TruncatedPng,
}

/// The `hostile` kind. Its params are a [`Mode`]; a params error (an unknown mode) is `invalid-params`,
/// every failure a mode produces is `internal`.
pub struct Hostile;

impl Kind for Hostile {
    type Params = Mode;

    fn run(mode: Mode, input: &[u8]) -> Result<Output, JobError> {
        match run(mode, input, &mut SdkHost) {
            Outcome::Ok { media_type, data } => Ok(Output::new(media_type, data)),
            Outcome::Err(message) => Err(JobError::internal(message)),
        }
    }
}

kiln_guest::export!(Hostile);

/// The modes' host calls, through the SDK.
struct SdkHost;

impl Host for SdkHost {
    fn progress(&mut self, fraction: f32) {
        kiln_guest::progress(fraction);
    }
    fn log(&mut self, message: &str) {
        kiln_guest::log(message);
    }
}

/// What a mode reports back; [`Hostile`] maps it onto the SDK's types.
pub enum Outcome {
    Ok { media_type: &'static str, data: Vec<u8> },
    Err(String),
}

/// The host imports, behind a trait so the logic above stays plain Rust.
pub trait Host {
    fn progress(&mut self, fraction: f32);
    fn log(&mut self, message: &str);
}

static mut PREVIOUS_RUN: u64 = 0;

pub fn run(mode: Mode, input: &[u8], host: &mut dyn Host) -> Outcome {
    let png = |data: Vec<u8>| Outcome::Ok {
        media_type: "image/png",
        data,
    };
    match mode {
        Mode::Noop => png(TINY_PNG.to_vec()),
        Mode::Spin { ms } => {
            // Busy, but reports progress about every 50 ms so watchers have something to see.
            let start = std::time::Instant::now();
            let mut reported = 0u128;
            loop {
                let elapsed = start.elapsed().as_millis();
                if elapsed >= u128::from(ms) {
                    break;
                }
                if elapsed >= reported + 50 {
                    reported = elapsed;
                    host.progress(elapsed as f32 / ms.max(1) as f32);
                }
            }
            png(TINY_PNG.to_vec())
        }
        Mode::Sleep { ms } => {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            png(TINY_PNG.to_vec())
        }
        Mode::Loop => {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        Mode::Alloc => {
            let mut blocks: Vec<Vec<u8>> = Vec::new();
            loop {
                blocks.push(vec![1u8; 8 << 20]);
                std::hint::black_box(&blocks);
            }
        }
        Mode::Panic => panic!("hostile guest panics on purpose"),
        Mode::Recurse => {
            #[allow(unconditional_recursion)] // the point: recurse until the stack runs out
            fn deeper(n: u64) -> u64 {
                let pad = std::hint::black_box([n; 64]);
                deeper(n + 1) + pad[0]
            }
            png(deeper(0).to_le_bytes().to_vec())
        }
        Mode::HugeOutput { mb } => {
            let mut data = TINY_PNG.to_vec();
            data.resize(mb << 20, 0);
            png(data)
        }
        Mode::WrongType => Outcome::Ok {
            media_type: "text/plain",
            data: TINY_PNG.to_vec(),
        },
        Mode::NotPng => png(b"GIF89a, or anything but a PNG".to_vec()),
        Mode::ReadFile { path } => match std::fs::read(&path) {
            Ok(bytes) => Outcome::Err(format!("read {} bytes from {path}: the sandbox leaks", bytes.len())),
            Err(e) => Outcome::Err(format!("cannot read {path}: {e}")),
        },
        Mode::Connect { addr } => match std::net::TcpStream::connect(&addr) {
            Ok(_) => Outcome::Err(format!("connected to {addr}: the sandbox leaks")),
            Err(e) => Outcome::Err(format!("cannot connect to {addr}: {e}")),
        },
        Mode::Environment => Outcome::Err(format!(
            "env vars: {}, args: {}, cwd: {:?}",
            std::env::vars().count(),
            std::env::args().count(),
            std::env::current_dir().ok()
        )),
        Mode::LogFlood { lines } => {
            for i in 0..lines {
                host.log(&format!("log line {i} {}", "x".repeat(100)));
                println!("stdout line {i}");
                eprintln!("stderr line {i}");
            }
            png(TINY_PNG.to_vec())
        }
        Mode::ProgressFlood { calls } => {
            for i in 0..calls {
                host.progress(i as f32 / calls.max(1) as f32);
            }
            png(TINY_PNG.to_vec())
        }
        Mode::Global => {
            // Each run gets a fresh instance, so this must always report 0.
            #[allow(unsafe_code)]
            let previous = unsafe {
                let previous = PREVIOUS_RUN;
                PREVIOUS_RUN = 42;
                previous
            };
            if previous == 0 {
                png(TINY_PNG.to_vec())
            } else {
                Outcome::Err(format!("a previous run left {previous} behind"))
            }
        }
        Mode::Echo => png(input.to_vec()),
        Mode::Exit { code } => std::process::exit(code),
        Mode::HugePng { width, height } => png(png_claiming(width, height)),
        Mode::HugeJpeg { width, height } => {
            let mut data = vec![0xff, 0xd8, 0xff, 0xc0, 0, 11, 8];
            data.extend(height.to_be_bytes());
            data.extend(width.to_be_bytes());
            data.extend([1, 1, 0x11, 0, 0xff, 0xd9]);
            Outcome::Ok {
                media_type: "image/jpeg",
                data,
            }
        }
        Mode::TruncatedPng => png(TINY_PNG[..TINY_PNG.len() - 16].to_vec()),
    }
}

/// The tiny PNG with its IHDR's width and height replaced (and the chunk's CRC made right again), so
/// only the dimensions are a lie: a decoder trusting the header would allocate for all those pixels.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut data = TINY_PNG.to_vec();
    // Signature (8), IHDR length (4), "IHDR" (4), then width and height; the CRC follows the 13 bytes.
    data[16..20].copy_from_slice(&width.to_be_bytes());
    data[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32fast::hash(&data[12..29]);
    data[29..33].copy_from_slice(&crc.to_be_bytes());
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claimed_header_keeps_a_valid_crc() {
        // The tiny PNG's own IHDR CRC, recomputed, must match what its encoder wrote.
        assert_eq!(crc32fast::hash(&TINY_PNG[12..29]).to_be_bytes(), TINY_PNG[29..33]);
        let claimed = png_claiming(100_000, 100_000);
        assert_eq!(claimed[16..24], [0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0]);
        assert_eq!(crc32fast::hash(&claimed[12..29]).to_be_bytes(), claimed[29..33]);
    }
}
