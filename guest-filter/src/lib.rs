//! Kiln job kind `filter`: applies a list of image operations (grayscale, blur, rotate, flip, invert,
//! brighten) in order to an uploaded image and returns it as PNG.
//!
//! This crate is the worked example of `docs/write-a-job-kind.md`: Kiln's host has no code for it; it
//! is uploaded through `PUT /v1/kinds/filter` like any plugin. The layout is the one every kind follows:
//!
//! - [`Filter`] implements `kiln_guest::Kind`: typed [`params::Params`] and the input bytes in, PNG
//!   out; `kiln_guest::export!` makes it the component's `run`. The same code runs natively in the
//!   unit tests, against `kiln_guest::test::TestHost`;
//! - `kind.json` is the manifest: name, description, input policy, settings and the params schema,
//!   which a test keeps equal to what [`params::Params`] generates.

mod image_io;
mod ops;
pub mod params;

#[cfg(test)]
mod tests;

use kiln_guest::image::Budget;
use kiln_guest::{JobError, Kind, Output, log, progress};

/// The `filter` kind.
pub struct Filter;

impl Kind for Filter {
    type Params = params::Params;

    fn run(params: params::Params, input: &[u8]) -> Result<Output, JobError> {
        // 1. Params first: a value out of range should fail before we spend time decoding.
        kiln_guest::image::check_quality(params.quality)?;
        let (format, quality) = (params.format, params.quality);
        let ops = params.check()?;
        let budget = Budget::from_setting()?;

        // 2. Decode within the operator's size budget.
        let mut image = image_io::decode(input, budget)?;
        log(&format!(
            "decoded {}x{} {:?}",
            image.width(),
            image.height(),
            image.color()
        ));
        progress(0.1);

        // 3. The operations, in order; progress moves from 0.1 to 0.9 as they complete.
        for (i, op) in ops.iter().enumerate() {
            image = ops::apply(image, *op);
            log(&format!(
                "ops[{i}]: {} done, now {}x{}",
                op.name(),
                image.width(),
                image.height()
            ));
            progress(0.1 + 0.8 * (i + 1) as f32 / ops.len() as f32);
        }

        // 4. Encode.
        let output = image_io::encode(&image, format, quality, input)?;
        log(&format!(
            "encoded {}x{} {}, {} bytes",
            image.width(),
            image.height(),
            output.media_type,
            output.data.len()
        ));
        progress(1.0);
        Ok(output)
    }
}

// Emits the component's `run` export (in the wasm build only), wired to `Filter`.
kiln_guest::export!(Filter);
