//! Kiln job kind `cutout`: foreground extraction by GrabCut, returning the object on a transparent
//! background (RGBA PNG) or its mask.
//!
//! Stages: parse params (the SDK, into [`params::Params`]), decode within the operator's size budget
//! (`decode`), the starting labels from the rectangle and strokes (`hints`), GrabCut's iterations
//! (`grabcut`, with the min-cut in `maxflow`), encode PNG. Plain Rust behind `kiln_guest`'s [`Kind`], so
//! the tests and benchmarks run it natively.

mod decode;
pub mod grabcut;
pub mod hints;
pub mod maxflow;
pub mod params;
pub mod scene;

#[cfg(test)]
mod tests;

use image::{ExtendedColorType, RgbImage};
use kiln_guest::image::Budget;
use kiln_guest::{JobError, Kind, Output, log, progress};

use grabcut::{Error, Label, Rgb};
use params::OutputMode;

/// The `cutout` kind.
pub struct Cutout;

impl Kind for Cutout {
    type Params = params::Params;

    fn run(params: params::Params, input: &[u8]) -> Result<Output, JobError> {
        params.check()?;
        let budget = Budget::from_setting()?;
        let image = decode::decode(input, budget)?;
        let (width, height) = image.dimensions();
        log(&format!("decoded {width}x{height}"));
        progress(0.05);

        let mut labels = hints::initial_labels(&params, width, height)?;
        let rgb = Rgb {
            width: width as usize,
            height: height as usize,
            data: image.as_raw(),
        };
        let total = params.iterations;
        grabcut::segment(&rgb, &mut labels, total, |done| {
            progress(0.05 + 0.9 * done as f32 / total as f32);
        })
        .map_err(|e| match e {
            Error::NoBackground => JobError::invalid_params(
                "nothing is background: the rect covers the whole image; leave a margin outside it or \
                 mark some background with a stroke",
            ),
            Error::NoForeground => JobError::invalid_params(
                "nothing is foreground: background strokes cover the whole rect; mark less background",
            ),
        })?;
        let kept = labels.iter().filter(|l| l.is_foreground()).count();
        log(&format!(
            "{total} iterations; {kept} of {} pixels foreground",
            labels.len()
        ));

        let output = encode(&image, &labels, &params, input)?;
        progress(1.0);
        Ok(output)
    }
}

/// The cutout (RGBA, background transparent and black; flattened on white as JPEG) or the mask (grey,
/// 255 foreground), in the params' format.
fn encode(image: &RgbImage, labels: &[Label], params: &params::Params, input: &[u8]) -> Result<Output, JobError> {
    let (raw, color) = match params.output {
        OutputMode::Mask => (
            labels
                .iter()
                .map(|l| if l.is_foreground() { 255 } else { 0 })
                .collect::<Vec<u8>>(),
            ExtendedColorType::L8,
        ),
        OutputMode::Cutout => {
            let mut raw = Vec::with_capacity(labels.len() * 4);
            for (pixel, label) in image.pixels().zip(labels) {
                if label.is_foreground() {
                    raw.extend_from_slice(&[pixel[0], pixel[1], pixel[2], 255]);
                } else {
                    raw.extend_from_slice(&[0, 0, 0, 0]);
                }
            }
            (raw, ExtendedColorType::Rgba8)
        }
    };
    kiln_guest::image::encode(params.format, params.quality, input, &raw, image.dimensions(), color)
}

kiln_guest::export!(Cutout);
