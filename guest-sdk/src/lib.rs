//! Write a Kiln job kind in Rust: implement [`Kind`] for a type, export it with [`export!`], done.
//!
//! ```ignore
//! use kiln_guest::{JobError, JsonSchema, Kind, Output};
//! use serde::Deserialize;
//!
//! /// hello params
//! #[derive(Deserialize, JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! pub struct Params {
//!     /// Who to greet.
//!     pub name: String,
//! }
//!
//! pub struct Hello;
//!
//! impl Kind for Hello {
//!     type Params = Params;
//!     fn run(params: Params, input: &[u8]) -> Result<Output, JobError> {
//!         kiln_guest::log(&format!("hello, {}", params.name));
//!         kiln_guest::progress(1.0);
//!         Ok(Output::png(make_png(&params, input)?))
//!     }
//! }
//!
//! kiln_guest::export!(Hello);
//! ```
//!
//! The crate is the one place that holds the WIT contract (`wit/job.wit`, a copy of Kiln's that a test
//! keeps identical) and the wit-bindgen glue: a kind never sees either. Modules:
//!
//! - `error`: [`JobError`] and its [`ErrorCode`], the WIT `job-error` as plain Rust;
//! - `params`: turns the params JSON into the kind's typed [`Kind::Params`], accepting exactly what the
//!   generated schema accepts, and bad params into `invalid-params` errors naming the field;
//! - `host`: [`progress`], [`log`] and [`setting`]: the host's imports in wasm, a [`test::TestHost`]
//!   natively, so the same kind code runs in `cargo test`;
//! - `schema`: [`schema_for`], the params JSON Schema of `kind.json` generated from the params type, and
//!   [`check_manifest`], the unit test that keeps `kind.json` in step with it;
//! - `image` (feature `image`): the `max-megapixels` budget every image-decoding kind needs, and `decode`
//!   within it;
//! - `component` (wasm only): the WIT `handler` world, implemented once for every [`Kind`].

// The generated bindings name this crate by path (`kiln_guest::...`), from inside it as from a kind.
extern crate self as kiln_guest;

mod error;
mod host;
#[cfg(feature = "image")]
pub mod image;
mod params;
pub mod schema;
pub mod test;

// wit-bindgen's glue needs `unsafe` ABI code and `#[unsafe(export_name)]` entry points: this is the one
// place it is allowed (the workspace denies `unsafe_code`; an inner `allow` relaxes `deny`).
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod component;

pub use error::{ErrorCode, JobError};
pub use host::{Level, log, log_at, progress, setting};
pub use params::{object, objects, parse};
pub use schema::{check_manifest, schema_for};
/// Derive it beside `Deserialize` on the params type; `#[schemars(...)]` attributes add the constraints
/// serde cannot express (ranges, lengths, patterns).
pub use schemars::{self, JsonSchema};

use serde::de::DeserializeOwned;

/// A job kind: typed params in, one output out.
pub trait Kind: 'static {
    /// The job's params, as the user sends them (a JSON object). Derive `JsonSchema` too and check
    /// `kind.json` with [`check_manifest`]: the host then refuses bad params at submit by the same rules.
    type Params: DeserializeOwned;

    /// Runs one job. `input` is the uploaded bytes (empty when none were given). Call [`progress`],
    /// [`log`] and [`setting`] as needed.
    fn run(params: Self::Params, input: &[u8]) -> Result<Output, JobError>;
}

/// A successful job's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// e.g. `image/png`; Kiln checks it against `output_media_type` in `kind.json`.
    pub media_type: String,
    pub data: Vec<u8>,
}

impl Output {
    pub fn new(media_type: impl Into<String>, data: Vec<u8>) -> Self {
        Self {
            media_type: media_type.into(),
            data,
        }
    }

    /// PNG bytes, the output of most kinds.
    pub fn png(data: Vec<u8>) -> Self {
        Self::new("image/png", data)
    }
}

/// Runs a job of kind `K` as Kiln does: params text in, and bad params become `invalid-params`. The
/// component calls it for every job; natively, tests and benchmarks call it (host calls then go to the
/// current [`test::TestHost`], or nowhere).
pub fn run<K: Kind>(params: &str, input: &[u8]) -> Result<Output, JobError> {
    K::run(parse::<K::Params>(params)?, input)
}

/// Exports a [`Kind`] as the component's `run`: `kiln_guest::export!(MyKind);` once, in the kind's
/// `lib.rs`. Expands to nothing outside wasm, so the same crate builds natively for its tests.
#[macro_export]
macro_rules! export {
    ($kind:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            type KilnGuestExport = $crate::__private::Component<$kind>;
    $crate::__private::export_handler!(KilnGuestExport with_types_in $crate::__private::bindings);
        };
    };
}

/// What [`export!`] expands to; not part of the API.
#[doc(hidden)]
pub mod __private {
    #[cfg(target_arch = "wasm32")]
    pub use crate::component::{Component, bindings, bindings::export_handler};
    #[cfg(target_arch = "wasm32")]
    pub use wit_bindgen;
}
