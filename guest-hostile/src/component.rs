//! The wasm glue: the WIT `handler` world backed by [`crate::run`].

wit_bindgen::generate!({ world: "handler", path: "../wit" });

use kiln::job::host;
use kiln::job::types::ErrorCode;

struct Hostile;

struct Imports;

impl crate::Host for Imports {
    fn progress(&mut self, fraction: f32) {
        host::progress(fraction);
    }
    fn log(&mut self, message: &str) {
        host::log(host::Level::Info, message);
    }
}

impl Guest for Hostile {
    fn run(params: String, input: Vec<u8>) -> Result<Output, JobError> {
        match crate::run(&params, &input, &mut Imports) {
            crate::Outcome::Ok { media_type, data } => Ok(Output {
                media_type: media_type.to_owned(),
                data,
            }),
            crate::Outcome::Err(message) => Err(JobError {
                code: ErrorCode::Internal,
                message,
            }),
        }
    }
}

export!(Hostile);
