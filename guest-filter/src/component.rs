//! The wasm component face: implements the WIT world `handler` by calling [`crate::run`] with an
//! [`Env`](crate::Env) backed by the host's imports. Compiled only for `wasm32` (see `lib.rs`).

// Reads `../wit/job.wit` and generates: the `Guest` trait (our export `run`), the types `Output` and
// `JobError`, the imports in `kiln::job::host`, and the `export!` macro.
wit_bindgen::generate!({ world: "handler", path: "../wit" });

use kiln::job::host::{self, Level};
// The world's `use types.{output, job-error}` already brings `Output` and `JobError` into scope.
use kiln::job::types::ErrorCode;

struct Filter;

impl Guest for Filter {
    fn run(params: String, input: Vec<u8>) -> Result<Output, JobError> {
        match crate::run(&params, &input, &mut HostEnv) {
            Ok(data) => Ok(Output {
                media_type: crate::MEDIA_TYPE.to_owned(),
                data,
            }),
            Err(e) => Err(JobError {
                code: match e.code {
                    crate::ErrorCode::InvalidParams => ErrorCode::InvalidParams,
                    crate::ErrorCode::InvalidInput => ErrorCode::InvalidInput,
                    crate::ErrorCode::Internal => ErrorCode::Internal,
                },
                message: e.message,
            }),
        }
    }
}

/// The host's imports, seen through the crate's [`Env`](crate::Env) trait.
struct HostEnv;

impl crate::Env for HostEnv {
    fn progress(&mut self, fraction: f32) {
        host::progress(fraction);
    }
    fn setting(&self, name: &str) -> Option<String> {
        host::setting(name)
    }
    fn log(&mut self, message: &str) {
        host::log(Level::Info, message);
    }
}

// Emits the component's `run` export, wired to `Filter`.
export!(Filter);
