//! Kiln job kind `filter`: applies a list of image operations (grayscale, blur, rotate, flip, invert,
//! brighten) in order to an uploaded image and returns it as PNG.
//!
//! This crate is the worked example of `docs/write-a-job-kind.md`: Kiln's host has no code for it; it
//! is uploaded through `PUT /v1/kinds/filter` like any plugin. The layout is the one every kind follows:
//!
//! - this file and its modules are plain Rust with no wasm in sight: [`run`] takes the params text, the
//!   input bytes and an [`Env`] (progress, settings, log), so unit tests run it natively;
//! - `component.rs`, compiled only for wasm, implements the WIT world `handler` by calling [`run`];
//! - `kind.json` is the manifest: name, description, input policy, settings and the params schema.

mod image_io;
mod ops;
pub mod params;

// wit-bindgen's `export!` emits `#[unsafe(export_name)]` entry points and unsafe ABI glue; this is the
// one place the crate allows unsafe code (the workspace sets `unsafe_code = "deny"`, which an inner
// `allow` may relax).
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod component;

#[cfg(test)]
mod tests;

use std::fmt;

/// Media type of every successful output; `kind.json` declares the same.
pub const MEDIA_TYPE: &str = "image/png";

/// What a running job may ask of whoever runs it: the wasm host (see `component.rs`), or a test.
pub trait Env {
    /// How far the job has come, 0.0 to 1.0.
    fn progress(&mut self, fraction: f32);
    /// An operator-set setting of this kind (`KILN_SETTINGS=filter.max-megapixels=10`), `None` when
    /// unset, in which case the kind uses its own default.
    fn setting(&self, name: &str) -> Option<String>;
    /// A line for the job's log (info level); optional for native callers.
    fn log(&mut self, message: &str) {
        let _ = message;
    }
}

/// An environment with no settings that ignores progress and logs, for native callers.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEnv;

impl Env for NoEnv {
    fn progress(&mut self, _fraction: f32) {}
    fn setting(&self, _name: &str) -> Option<String> {
        None
    }
}

/// Mirrors the WIT `error-code`: who has to change something for the job to succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The user's params are wrong (unknown op, sigma out of range...). Never retried.
    InvalidParams,
    /// The user's input is wrong (not an image, corrupt, too large). Never retried.
    InvalidInput,
    /// Our fault or the operator's (a bad setting, an encoder failure).
    Internal,
}

/// Mirrors the WIT `job-error`: `message` is shown to the person who submitted the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    pub code: ErrorCode,
    pub message: String,
}

impl JobError {
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::InvalidParams,
            message: message.into(),
        }
    }
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::InvalidInput,
            message: message.into(),
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::Internal,
            message: message.into(),
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for JobError {}

/// Runs one filter job: `params` is the JSON params text, `input` the uploaded image; returns PNG bytes.
pub fn run(params: &str, input: &[u8], env: &mut dyn Env) -> Result<Vec<u8>, JobError> {
    // 1. Params first: a typo should fail before we spend time decoding.
    let ops = params::parse(params)?;
    let budget = image_io::Budget::from_env(env)?;

    // 2. Decode within the operator's size budget.
    let mut image = image_io::decode(input, budget)?;
    env.log(&format!(
        "decoded {}x{} {:?}",
        image.width(),
        image.height(),
        image.color()
    ));
    env.progress(0.1);

    // 3. The operations, in order; progress moves from 0.1 to 0.9 as they complete.
    for (i, op) in ops.iter().enumerate() {
        image = ops::apply(image, *op);
        env.log(&format!(
            "ops[{i}]: {} done, now {}x{}",
            op.name(),
            image.width(),
            image.height()
        ));
        env.progress(0.1 + 0.8 * (i + 1) as f32 / ops.len() as f32);
    }

    // 4. Encode.
    let png = image_io::encode_png(&image)?;
    env.log(&format!(
        "encoded {}x{} PNG, {} bytes",
        image.width(),
        image.height(),
        png.len()
    ));
    env.progress(1.0);
    Ok(png)
}
