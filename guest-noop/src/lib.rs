//! A trivial handler: ignores its params and input and returns a fixed 1×1 PNG.
//!
//! It exists for the instantiation benchmark (`host/benches/sandbox.rs`): what a run costs when the job
//! itself costs nothing, for a component that imports only what Rust's `std` needs. `guest-hostile`'s
//! `noop` mode measures the same for a component that imports every WASI interface it can misuse.

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)] // wit-bindgen's generated exports
mod component {
    wit_bindgen::generate!({ world: "handler", path: "../wit" });

    struct Noop;

    impl Guest for Noop {
        fn run(_params: String, _input: Vec<u8>) -> Result<Output, JobError> {
            Ok(Output {
                media_type: "image/png".to_owned(),
                data: super::ONE_PIXEL_PNG.to_vec(),
            })
        }
    }

    export!(Noop);
}

/// A valid 1×1 PNG (one green pixel); `guest-hostile` returns the same file.
pub const ONE_PIXEL_PNG: &[u8] = include_bytes!("../one-pixel.png");
