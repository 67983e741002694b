//! The WIT `job-error`, as plain Rust so that kinds and their tests never touch the bindings.

use std::fmt;

/// Who has to change something for the job to succeed; mirrors the WIT `error-code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The user's params are malformed or out of range. Never retried.
    InvalidParams,
    /// The user's input bytes are missing, corrupt, too large or unsupported. Never retried.
    InvalidInput,
    /// Anything else: a bug, a resource problem, or a setting the operator got wrong.
    Internal,
}

/// A failed job: `message` is shown to the person who submitted it, so it says what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    pub code: ErrorCode,
    pub message: String,
}

impl JobError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParams, message)
    }
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for JobError {}
