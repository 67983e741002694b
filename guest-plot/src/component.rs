//! The `kiln:job` component adapter: host imports become an [`Env`], `run` calls [`crate::run`].

use crate::{Env, ErrorCode, MEDIA_TYPE};

wit_bindgen::generate!({ world: "handler", path: "../wit" });

use kiln::job::host;
// The world's `use types.{output, job-error}` already brings `Output` and `JobError` into scope.
use kiln::job::types::ErrorCode as WitErrorCode;

/// An [`Env`] backed by the host's imports.
struct HostEnv;

impl Env for HostEnv {
    fn progress(&mut self, fraction: f32) {
        host::progress(fraction);
    }

    fn setting(&self, name: &str) -> Option<String> {
        host::setting(name)
    }
}

struct Plot;

impl Guest for Plot {
    fn run(params: String, input: Vec<u8>) -> Result<Output, JobError> {
        crate::run(&params, &input, &mut HostEnv)
            .map(|data| Output {
                media_type: MEDIA_TYPE.to_string(),
                data,
            })
            .map_err(|e| JobError {
                code: match e.code {
                    ErrorCode::InvalidParams => WitErrorCode::InvalidParams,
                    ErrorCode::InvalidInput => WitErrorCode::InvalidInput,
                    ErrorCode::Internal => WitErrorCode::Internal,
                },
                message: e.message,
            })
    }
}

export!(Plot);
