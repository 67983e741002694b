//! Kiln job kind `crop`: crops and/or resizes an uploaded image and returns it as PNG.
//!
//! The pipeline is plain Rust so the host can benchmark it natively against the wasm build and tests
//! run natively; `component` is the thin wasm face over [`run`]. Stages: parse params, decode within
//! the operator's size budget, plan the geometry, crop/convert/resize, encode PNG.

mod decode;
mod encode;
mod limits;
pub mod params;
mod plan;
mod png_input;
mod resample;

// wit-bindgen's `export!` must emit `#[unsafe(export_name)]` entry points and unsafe ABI glue; this is
// the one place the crate allows unsafe code (needs the workspace's `unsafe_code` at `deny`, not
// `forbid`, which no attribute can relax).
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod component;

#[cfg(test)]
mod tests;

use std::fmt;

/// Media type of every successful output.
pub const MEDIA_TYPE: &str = "image/png";

/// What a running job may ask of whoever runs it: the wasm host, or a native caller.
pub trait Env {
    /// How far the job has come, 0.0 to 1.0.
    fn progress(&mut self, fraction: f32);
    /// An operator-set setting of this kind, `None` when unset (the kind's default applies).
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

/// Mirrors the WIT `error-code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidParams,
    InvalidInput,
    Internal,
}

/// Mirrors the WIT `job-error`: `message` is for the person who submitted the job.
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

/// Runs one crop job: `params` is the JSON params text, `input` the uploaded image; returns PNG bytes.
pub fn run(params: &str, input: &[u8], env: &mut dyn Env) -> Result<Vec<u8>, JobError> {
    let params = params::parse(params)?;
    let budget = limits::Budget::from_env(env)?;
    env.progress(0.1);

    let image = decode::decode(input, budget)?;
    env.log(&format!(
        "decoded {}x{} {:?}",
        image.width(),
        image.height(),
        image.color()
    ));
    env.progress(0.4);

    let plan = plan::plan(&params, image.width(), image.height(), budget)?;
    let pixels = resample::apply(image, &plan, params.filter)?;
    env.progress(0.7);

    let png = encode::png(&pixels)?;
    env.log(&format!(
        "encoded {}x{} PNG, {} bytes",
        plan.width,
        plan.height,
        png.len()
    ));
    env.progress(1.0);
    Ok(png)
}
