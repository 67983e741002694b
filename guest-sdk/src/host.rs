//! What a running job may ask of its host, as plain functions. In wasm they are the WIT `host`
//! imports; natively they go to the thread's current [`TestHost`](crate::test::TestHost), or nowhere.

/// Severity of a log line; mirrors the WIT `level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Reports how far the job has come, from 0.0 to 1.0 (the host clamps values outside).
pub fn progress(fraction: f32) {
    imp::progress(fraction);
}

/// Appends an info line to the job's log.
pub fn log(message: &str) {
    log_at(Level::Info, message);
}

/// Appends a line of the given level to the job's log.
pub fn log_at(level: Level, message: &str) {
    imp::log(level, message);
}

/// An operator-set setting of this kind (`KILN_SETTINGS=crop.max-megapixels=10`), or `None` when the
/// operator left it unset and the kind uses its own default (declared in `kind.json`'s `settings`).
pub fn setting(name: &str) -> Option<String> {
    imp::setting(name)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::Level;
    use crate::component::bindings::kiln::job::host::{self, Level as WitLevel};

    pub fn progress(fraction: f32) {
        host::progress(fraction);
    }

    pub fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => WitLevel::Trace,
            Level::Debug => WitLevel::Debug,
            Level::Info => WitLevel::Info,
            Level::Warn => WitLevel::Warn,
            Level::Error => WitLevel::Error,
        };
        host::log(level, message);
    }

    pub fn setting(name: &str) -> Option<String> {
        host::setting(name)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    pub use crate::test::current::{log, progress, setting};
}
