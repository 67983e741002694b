//! Kiln job kind `plot`: renders a line, scatter, bar or histogram chart to PNG.
//!
//! The logic lives here behind `kiln_guest`'s [`Kind`] trait, free of the component model, so the host
//! can benchmark it natively against the wasm build and unit tests run natively.

mod axis;
mod csv_input;
mod data;
mod histogram;
mod legend;
mod params;
mod png;
mod render;
mod text_backend;

#[cfg(test)]
mod tests;

pub use params::limits;

use kiln_guest::{JobError, Kind, Output, progress};

/// The `plot` kind: its params are the chart; `input` an optional CSV file (empty when none).
pub struct Plot;

impl Kind for Plot {
    type Params = params::Raw;

    fn run(raw: params::Raw, input: &[u8]) -> Result<Output, JobError> {
        let params = params::validate(raw)?;
        progress(0.1);
        let dataset = data::assemble(&params, input)?;
        progress(0.3);
        let rgb = render::render(&params, &dataset)?;
        progress(0.8);
        let png = png::encode(&rgb, params.width, params.height)?;
        progress(1.0);
        Ok(Output::png(png))
    }
}

kiln_guest::export!(Plot);
