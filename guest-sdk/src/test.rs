//! A host for native runs: unit tests and benchmarks call kinds without wasm, and see what Kiln would.
//!
//! ```ignore
//! let mut host = TestHost::new().setting("max-megapixels", "1");
//! let result = host.run::<Crop>(r#"{"resize": {"width": 10}}"#, &png);
//! assert_eq!(host.progress().last(), Some(&1.0));
//! ```

use std::cell::RefCell;
use std::collections::HashMap;

use crate::{JobError, Kind, Level, Output};

/// Settings to serve, and the progress and log lines a job reported.
#[derive(Debug, Default, Clone)]
pub struct TestHost {
    settings: HashMap<String, String>,
    progress: Vec<f32>,
    logs: Vec<(Level, String)>,
}

impl TestHost {
    /// A host with no settings (every kind's defaults apply).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets an operator setting, as `KILN_SETTINGS=<kind>.<name>=<value>` would.
    pub fn setting(mut self, name: &str, value: &str) -> Self {
        self.settings.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Runs one job of kind `K` against this host, as the component would.
    pub fn run<K: Kind>(&mut self, params: &str, input: &[u8]) -> Result<Output, JobError> {
        self.enter(|| crate::run::<K>(params, input))
    }

    /// Makes this the host of [`progress`](crate::progress), [`log`](crate::log) and
    /// [`setting`](crate::setting) on this thread while `f` runs: for testing a kind's parts directly.
    pub fn enter<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let previous = CURRENT.with(|c| c.replace(Some(std::mem::take(self))));
        // Put the state back even if `f` panics, so a failed test's host can still be inspected.
        struct Restore<'a>(&'a mut TestHost, Option<TestHost>);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                let previous = self.1.take();
                *self.0 = CURRENT.with(|c| c.replace(previous)).unwrap_or_default();
            }
        }
        let _restore = Restore(self, previous);
        f()
    }

    /// Every progress fraction reported, in order.
    pub fn progress(&self) -> &[f32] {
        &self.progress
    }

    /// Every log line, in order, without its level.
    pub fn logs(&self) -> Vec<&str> {
        self.logs.iter().map(|(_, line)| line.as_str()).collect()
    }

    /// Every log line with its level.
    pub fn log_lines(&self) -> &[(Level, String)] {
        &self.logs
    }
}

/// Runs a job of kind `K` with the kind's defaults (no settings) and returns its output bytes, after
/// checking that they are labelled `media_type`.
pub fn output<K: Kind>(media_type: &str, params: &str, input: &[u8]) -> Result<Vec<u8>, JobError> {
    let output = crate::run::<K>(params, input)?;
    assert_eq!(output.media_type, media_type, "the job's output is labelled wrongly");
    Ok(output.data)
}

/// Test images for kinds that take images (feature `image`).
#[cfg(feature = "image")]
pub mod images {
    use std::io::Cursor;

    use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

    /// Pixel (x, y) is (x, y, `blue`), so where a pixel came from can be read off its colour.
    pub fn coordinates(width: u32, height: u32, blue: u8) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| Rgb([x as u8, y as u8, blue]))
    }

    /// `image` encoded as `format`, the bytes a user would upload.
    pub fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).expect("encoding a test image");
        out.into_inner()
    }
}

thread_local! {
    static CURRENT: RefCell<Option<TestHost>> = const { RefCell::new(None) };
}

/// The native side of `crate::host`: without an entered [`TestHost`], progress and logs go nowhere and
/// no setting is set.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod current {
    use super::CURRENT;
    use crate::Level;

    pub fn progress(fraction: f32) {
        CURRENT.with(|c| {
            if let Some(host) = c.borrow_mut().as_mut() {
                host.progress.push(fraction);
            }
        });
    }

    pub fn log(level: Level, message: &str) {
        CURRENT.with(|c| {
            if let Some(host) = c.borrow_mut().as_mut() {
                host.logs.push((level, message.to_owned()));
            }
        });
    }

    pub fn setting(name: &str) -> Option<String> {
        CURRENT.with(|c| c.borrow().as_ref().and_then(|host| host.settings.get(name).cloned()))
    }
}
