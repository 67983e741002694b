//! Per-run resource limits, and the limiter that enforces the memory part while remembering that it did.

use std::time::Duration;

/// What one run may use. Defaults are the operator's; kinds may lower them (never raise past ceilings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxLimits {
    /// Cap on the guest's linear memory, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock time the run may take, enforced by epoch interruption.
    pub timeout: Duration,
    /// Cap on the bytes a run may return.
    pub max_output_bytes: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            timeout: Duration::from_secs(30),
            max_output_bytes: 64 << 20,
        }
    }
}

/// Table elements a run may allocate; tables hold function references, so this is generous.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Denies growth past the limit (the guest sees a failed allocation and usually aborts) and records the
/// denial, so that the resulting trap is reported as `memory-limit` rather than a generic crash.
pub struct MemoryLimiter {
    limit: usize,
    exceeded: bool,
}

impl MemoryLimiter {
    pub fn new(limits: &SandboxLimits) -> Self {
        Self {
            limit: limits.memory_bytes,
            exceeded: false,
        }
    }

    /// The limit, if the guest ever tried to pass it.
    pub fn exceeded(&self) -> Option<usize> {
        self.exceeded.then_some(self.limit)
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = desired <= self.limit;
        self.exceeded |= !allowed;
        Ok(allowed)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = desired <= MAX_TABLE_ELEMENTS;
        self.exceeded |= !allowed;
        Ok(allowed)
    }
}
