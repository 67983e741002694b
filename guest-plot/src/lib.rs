//! Kiln job kind `plot`: renders a line, scatter, bar or histogram chart to PNG.
//!
//! The logic lives here, free of the component model, so the host can benchmark it natively against the
//! wasm build and unit tests run natively; `component` only adapts it to the `kiln:job` world.

mod axis;
mod csv_input;
mod data;
mod histogram;
mod legend;
mod params;
mod png;
mod render;
mod text_backend;

// wit-bindgen's `export!` emits `#[unsafe(export_name)]` entry points and unsafe ABI glue; this is the
// one place the crate allows unsafe code. That needs the workspace's `unsafe_code` lint at `deny`:
// no attribute can relax `forbid`.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod component;

pub use params::limits;

/// What a running job may ask of its host.
pub trait Env {
    /// Reports how far the job has come, from 0.0 to 1.0.
    fn progress(&mut self, fraction: f32);
    /// Reads an operator-set setting of this kind, if set.
    fn setting(&self, name: &str) -> Option<String>;
}

/// An [`Env`] for native callers (benchmarks, tests) that have no host to report to.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopEnv;

impl Env for NoopEnv {
    fn progress(&mut self, _fraction: f32) {}
    fn setting(&self, _name: &str) -> Option<String> {
        None
    }
}

/// Why a job failed; mirrors `kiln:job/types.error-code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidParams,
    InvalidInput,
    Internal,
}

/// A failed job: a code for the host and a message for the person who submitted it.
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

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for JobError {}

/// The media type of every successful result.
pub const MEDIA_TYPE: &str = "image/png";

/// Runs one plot job: `params` is the job's JSON params, `input` an optional CSV file (empty when none).
/// Returns the PNG bytes.
pub fn run(params: &str, input: &[u8], env: &mut dyn Env) -> Result<Vec<u8>, JobError> {
    let params = params::parse(params)?;
    env.progress(0.1);
    let dataset = data::assemble(&params, input)?;
    env.progress(0.3);
    let rgb = render::render(&params, &dataset)?;
    env.progress(0.8);
    let png = png::encode(&rgb, params.width, params.height)?;
    env.progress(1.0);
    Ok(png)
}

#[cfg(test)]
mod tests;
