//! A trivial handler: ignores its params and input and returns a fixed 1×1 PNG.
//!
//! It exists for the instantiation benchmark (`host/benches/sandbox.rs`): what a run costs when the job
//! itself costs nothing, for a component that imports only what Rust's `std` needs. `guest-hostile`'s
//! `noop` mode measures the same for a component that imports every WASI interface it can misuse.

use kiln_guest::{JobError, Kind, Output};

/// A valid 1×1 PNG (one green pixel); `guest-hostile` returns the same file.
pub const ONE_PIXEL_PNG: &[u8] = include_bytes!("../one-pixel.png");

/// The `noop` kind: any params object, any input.
pub struct Noop;

impl Kind for Noop {
    type Params = serde::de::IgnoredAny;

    fn run(_params: serde::de::IgnoredAny, _input: &[u8]) -> Result<Output, JobError> {
        Ok(Output::png(ONE_PIXEL_PNG.to_vec()))
    }
}

kiln_guest::export!(Noop);
