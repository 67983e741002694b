//! The `{{name}}` job kind: draws a disc of one colour on a grey gradient, as a PNG.
//!
//! Change `run` to make it yours; `Params` is what a job sends (`kind.json`'s `params_schema` is
//! generated from it: `KILN_UPDATE_MANIFEST=1 cargo test` rewrites it after you change the type).

use kiln_guest::{JobError, JsonSchema, Kind, Output, log, progress};
use serde::Deserialize;

/// The params of a `{{name}}` job.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Width of the picture, in pixels.
    #[serde(default = "default_width")]
    #[schemars(range(min = 1, max = 2048))]
    pub width: u32,
    /// Height of the picture, in pixels.
    #[serde(default = "default_height")]
    #[schemars(range(min = 1, max = 2048))]
    pub height: u32,
    /// The disc's colour as `[red, green, blue]`.
    #[serde(default = "default_color")]
    pub color: [Channel; 3],
}

/// One colour channel, 0-255.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Channel(pub u8);

fn default_width() -> u32 {
    64
}

fn default_height() -> u32 {
    64
}

fn default_color() -> [Channel; 3] {
    [Channel(40), Channel(120), Channel(220)]
}

/// The largest side a job may ask for (the schema says the same, so Kiln refuses more at submit).
const MAX_SIDE: u32 = 2048;

/// The `{{name}}` kind.
pub struct Disc;

impl Kind for Disc {
    type Params = Params;

    fn run(params: Params, _input: &[u8]) -> Result<Output, JobError> {
        for (name, value) in [("width", params.width), ("height", params.height)] {
            if !(1..=MAX_SIDE).contains(&value) {
                return Err(JobError::invalid_params(format!("{name} must be 1-{MAX_SIDE}, not {value}")));
            }
        }
        let pixels = draw(&params);
        progress(0.5);
        log(&format!("drew {}x{}", params.width, params.height));
        let png = encode_png(&pixels, params.width, params.height)?;
        progress(1.0);
        Ok(Output::png(png))
    }
}

kiln_guest::export!(Disc);

/// RGB pixels, row by row: a grey gradient from left to right, the disc in the middle.
fn draw(params: &Params) -> Vec<u8> {
    let (w, h) = (params.width as f32, params.height as f32);
    let radius = w.min(h) / 3.0;
    let color = params.color.map(|c| c.0);
    let mut pixels = Vec::with_capacity((params.width * params.height * 3) as usize);
    for y in 0..params.height {
        for x in 0..params.width {
            let (dx, dy) = (x as f32 + 0.5 - w / 2.0, y as f32 + 0.5 - h / 2.0);
            if dx * dx + dy * dy <= radius * radius {
                pixels.extend_from_slice(&color);
            } else {
                let grey = (64.0 + 128.0 * x as f32 / w) as u8;
                pixels.extend_from_slice(&[grey, grey, grey]);
            }
        }
    }
    pixels
}

fn encode_png(pixels: &[u8], width: u32, height: u32) -> Result<Vec<u8>, JobError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let internal = |e: png::EncodingError| JobError::internal(format!("encoding the PNG: {e}"));
    let mut writer = encoder.write_header().map_err(internal)?;
    writer.write_image_data(pixels).map_err(internal)?;
    writer.finish().map_err(internal)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_guest::ErrorCode;
    use kiln_guest::test::TestHost;

    #[test]
    fn draws_the_disc_in_the_middle() {
        let mut host = TestHost::new();
        let output = host
            .run::<Disc>(r#"{"width": 30, "height": 20, "color": [255, 0, 0]}"#, &[])
            .expect("the job succeeds");
        assert_eq!(output.media_type, "image/png");
        let decoder = png::Decoder::new(std::io::Cursor::new(output.data));
        let mut reader = decoder.read_info().expect("a PNG");
        let mut pixels = vec![0; reader.output_buffer_size().expect("a size")];
        let frame = reader.next_frame(&mut pixels).expect("a frame");
        assert_eq!((frame.width, frame.height), (30, 20));
        let at = |x: usize, y: usize| &pixels[(y * 30 + x) * 3..][..3];
        assert_eq!(at(15, 10), [255, 0, 0], "the disc's centre");
        assert_eq!(at(0, 0)[0], at(0, 0)[2], "grey in the corner");
        assert_eq!(host.progress().last(), Some(&1.0));
    }

    #[test]
    fn bad_params_are_the_users_to_fix() {
        let error = kiln_guest::run::<Disc>(r#"{"width": 0}"#, &[]).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidParams);
        let error = kiln_guest::run::<Disc>(r#"{"colour": [1, 2, 3]}"#, &[]).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidParams, "unknown fields are refused");
    }

    /// `kind.json`'s `params_schema` is what `Params` generates (`KILN_UPDATE_MANIFEST=1` rewrites it).
    #[test]
    fn manifest_matches_the_params() {
        kiln_guest::check_manifest::<Params>(concat!(env!("CARGO_MANIFEST_DIR"), "/kind.json"));
    }
}
