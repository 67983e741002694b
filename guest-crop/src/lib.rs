//! Kiln job kind `crop`: crops and/or resizes an uploaded image and returns it as PNG.
//!
//! The pipeline is plain Rust behind `kiln_guest`'s [`Kind`] trait, so the host can benchmark it natively
//! against the wasm build and tests run natively. Stages: parse params (the SDK, into
//! [`params::Params`]), decode within the operator's size budget, plan the geometry,
//! crop/convert/resize, encode PNG.

mod decode;
mod encode;
pub mod params;
mod plan;
mod png_input;
mod resample;

#[cfg(test)]
mod tests;

use kiln_guest::image::Budget;
use kiln_guest::{JobError, Kind, Output, log, progress};

/// The `crop` kind.
pub struct Crop;

impl Kind for Crop {
    type Params = params::Params;

    fn run(params: params::Params, input: &[u8]) -> Result<Output, JobError> {
        params.check()?;
        let budget = Budget::from_setting()?;
        progress(0.1);

        let image = decode::decode(input, budget)?;
        log(&format!(
            "decoded {}x{} {:?}",
            image.width(),
            image.height(),
            image.color()
        ));
        progress(0.4);

        let plan = plan::plan(&params, image.width(), image.height(), budget)?;
        let pixels = resample::apply(image, &plan, params.filter)?;
        progress(0.7);

        let output = encode::encode(&pixels, params.format, params.quality, input)?;
        log(&format!(
            "encoded {}x{} {}, {} bytes",
            plan.width,
            plan.height,
            output.media_type,
            output.data.len()
        ));
        progress(1.0);
        Ok(output)
    }
}

kiln_guest::export!(Crop);
