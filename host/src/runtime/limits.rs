//! Per-run resource limits, and the limiter that enforces the memory part while remembering that it did.

use crate::kinds::KindLimits;
use std::time::Duration;

/// What one run may use. Defaults are the operator's; kinds may ask for other values, within ceilings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxLimits {
    /// Cap on the guest's linear memory, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock time the run may take, enforced by epoch interruption and an async timeout.
    pub timeout: Duration,
    /// Cap on the bytes a run may return.
    pub max_output_bytes: usize,
    /// Cap on the pixels (width × height) an image result may claim in its header: a result is decoded
    /// by whoever downloads it (the web page, a client), so a tiny file claiming 10 gigapixels is refused.
    /// The operator's alone; kinds cannot ask for more.
    pub max_output_pixels: u64,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            timeout: Duration::from_secs(30),
            max_output_bytes: 64 << 20,
            max_output_pixels: 100_000_000,
        }
    }
}

impl SandboxLimits {
    /// These defaults with what a kind's manifest asks for, each capped at the operator's `ceiling`.
    pub fn for_kind(self, kind: Option<&KindLimits>, ceiling: &SandboxLimits) -> SandboxLimits {
        let Some(kind) = kind else { return self };
        let mib = |mb: u64| usize::try_from(mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        SandboxLimits {
            memory_bytes: kind.memory_mb.map_or(self.memory_bytes, mib).min(ceiling.memory_bytes),
            timeout: kind
                .timeout_secs
                .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
                .map_or(self.timeout, |t| t.min(ceiling.timeout)),
            max_output_bytes: kind
                .max_output_mb
                .map_or(self.max_output_bytes, mib)
                .min(ceiling.max_output_bytes),
            max_output_pixels: self.max_output_pixels,
        }
    }
}

/// Table elements a run may allocate; tables hold function references, so this is generous. The pooling
/// allocator's table slots are sized to match, so the limiter (which records the denial) refuses first.
pub const MAX_TABLE_ELEMENTS: usize = 1 << 16;

/// Denies growth past the limit (the guest sees a failed allocation and usually aborts) and records the
/// denial, so that the resulting trap is reported as `memory-limit` rather than a generic crash. The
/// limit holds for all of a run's linear memories together: a component of several core modules, each
/// with its own memory, gets the kind's cap once, not once per memory.
pub struct MemoryLimiter {
    limit: usize,
    exceeded: bool,
    /// Bytes of all the run's linear memories together.
    total: usize,
    /// The largest `total` granted, for the guest-memory metric.
    peak: usize,
}

impl MemoryLimiter {
    pub fn new(limits: &SandboxLimits) -> Self {
        Self {
            limit: limits.memory_bytes,
            exceeded: false,
            total: 0,
            peak: 0,
        }
    }

    pub fn peak(&self) -> usize {
        self.peak
    }

    /// The limit, if the guest ever tried to pass it.
    pub fn exceeded(&self) -> Option<usize> {
        self.exceeded.then_some(self.limit)
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    /// Called for a memory's creation (from `current` 0) and for every growth of it.
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.total.saturating_sub(current).saturating_add(desired);
        let allowed = total <= self.limit;
        self.exceeded |= !allowed;
        if allowed {
            self.total = total;
            self.peak = self.peak.max(total);
        }
        Ok(allowed)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = desired <= MAX_TABLE_ELEMENTS;
        self.exceeded |= !allowed;
        Ok(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_choose_within_the_ceiling() {
        let defaults = SandboxLimits::default();
        let ceiling = SandboxLimits {
            memory_bytes: 1 << 30,
            timeout: Duration::from_secs(300),
            max_output_bytes: 256 << 20,
            ..SandboxLimits::default()
        };
        assert_eq!(defaults.for_kind(None, &ceiling), defaults);
        let asks = KindLimits {
            memory_mb: Some(4096),
            timeout_secs: Some(2.5),
            max_output_mb: None,
            max_input_mb: None,
            max_params_kb: None,
        };
        let limits = defaults.for_kind(Some(&asks), &ceiling);
        assert_eq!(limits.memory_bytes, 1 << 30, "capped at the ceiling");
        assert_eq!(
            limits.timeout,
            Duration::from_millis(2500),
            "lower than the default is allowed"
        );
        assert_eq!(limits.max_output_bytes, defaults.max_output_bytes);
    }
}
