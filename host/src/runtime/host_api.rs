//! The host side of the WIT `host` interface: what a running guest may ask of Kiln.
//!
//! Every call is bounded: progress is one atomic store (the worker flushes it to Redis at its own pace),
//! log lines are capped in size and number, so a chatty guest cannot flood memory or Redis.

use super::RunSignals;
use super::bindings::kiln::job::host::{Host, Level};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Longest log line kept; longer ones are cut.
const MAX_LINE: usize = 1024;
/// Most log lines kept per run; the rest are counted and reported as dropped.
const MAX_LINES: usize = 200;

pub struct HostState {
    signals: Arc<RunSignals>,
    settings: BTreeMap<String, String>,
    log: Vec<String>,
    dropped: usize,
}

impl HostState {
    pub fn new(signals: Arc<RunSignals>, settings: BTreeMap<String, String>) -> Self {
        Self {
            signals,
            settings,
            log: Vec::new(),
            dropped: 0,
        }
    }

    /// The lines the guest logged, with a note of how many were dropped past the cap.
    pub fn take_log(&mut self) -> Vec<String> {
        let mut log = std::mem::take(&mut self.log);
        if self.dropped > 0 {
            log.push(format!("[kiln] {} more log lines dropped", self.dropped));
        }
        log
    }
}

impl Host for HostState {
    fn progress(&mut self, fraction: f32) {
        self.signals.set_progress(fraction);
    }

    fn log(&mut self, level: Level, message: String) {
        if self.log.len() >= MAX_LINES {
            self.dropped += 1;
            return;
        }
        let mut line = format!("[{}] {message}", level_name(level));
        if line.len() > MAX_LINE {
            let cut = (0..=MAX_LINE).rev().find(|&i| line.is_char_boundary(i)).unwrap_or(0);
            line.truncate(cut);
            line.push('…');
        }
        self.log.push(line);
    }

    fn setting(&mut self, name: String) -> Option<String> {
        self.settings.get(&name).cloned()
    }
}

impl super::bindings::kiln::job::types::Host for HostState {}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}
