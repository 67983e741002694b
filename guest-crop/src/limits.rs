//! The operator's size budget (`max-megapixels`), which bounds both what we decode and what we produce.

use image::Limits;

use crate::{Env, JobError};

/// The kind's setting; its default is also declared in `kind.json`.
pub const SETTING: &str = "max-megapixels";
pub const DEFAULT_MEGAPIXELS: f64 = 40.0;

/// Decoded bytes allowed per pixel of the budget: 8-bit RGBA. Wider layouts (16-bit, float) are
/// accepted up to a correspondingly smaller size, and refused with a clear message beyond it rather
/// than running into the host's memory cap and trapping.
const BYTES_PER_PIXEL: u64 = 4;
/// Decoders' own buffers (tables, rows, metadata) on top of the pixels, so tiny budgets still decode.
const DECODER_HEADROOM: u64 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub max_pixels: u64,
}

impl Budget {
    /// Reads the setting through the host; a value the operator got wrong is our (internal) failure,
    /// not the user's.
    pub fn from_env(env: &dyn Env) -> Result<Self, JobError> {
        let megapixels = match env.setting(SETTING) {
            None => DEFAULT_MEGAPIXELS,
            Some(text) => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|mp| mp.is_finite() && *mp > 0.0 && *mp <= 1e9)
                .ok_or_else(|| {
                    JobError::internal(format!(
                        "setting {SETTING} is {text:?}; expected a positive number such as \"40\""
                    ))
                })?,
        };
        // At most 1e15: the cast cannot saturate.
        let max_pixels = (megapixels * 1e6) as u64;
        if max_pixels == 0 {
            return Err(JobError::internal(format!(
                "setting {SETTING} is {megapixels}, which allows no pixels at all"
            )));
        }
        Ok(Budget { max_pixels })
    }

    pub fn megapixels(&self) -> f64 {
        self.max_pixels as f64 / 1e6
    }

    /// Memory the decoder may use: the largest allowed image as 8-bit RGBA, plus headroom.
    pub fn max_alloc(&self) -> u64 {
        self.max_pixels
            .saturating_mul(BYTES_PER_PIXEL)
            .saturating_add(DECODER_HEADROOM)
    }

    /// Limits for `image`: decoders check them against the header before allocating pixels.
    /// Per side we allow the whole budget (a 1-pixel-high strip); [`Budget::check`] bounds the area.
    pub fn limits(&self) -> Limits {
        let side = u32::try_from(self.max_pixels).unwrap_or(u32::MAX);
        let mut limits = Limits::default();
        limits.max_image_width = Some(side);
        limits.max_image_height = Some(side);
        limits.max_alloc = Some(self.max_alloc());
        limits
    }

    /// Whether `width`×`height` fits the budget.
    pub fn allows(&self, width: u32, height: u32) -> bool {
        u64::from(width) * u64::from(height) <= self.max_pixels
    }
}

/// Megapixels of a size, for messages.
pub fn megapixels(width: u32, height: u32) -> f64 {
    (u64::from(width) * u64::from(height)) as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    struct Setting(Option<&'static str>);
    impl Env for Setting {
        fn progress(&mut self, _: f32) {}
        fn setting(&self, name: &str) -> Option<String> {
            assert_eq!(name, SETTING);
            self.0.map(str::to_owned)
        }
    }

    #[test]
    fn default_is_40_megapixels() {
        let b = Budget::from_env(&Setting(None)).unwrap();
        assert_eq!(b.max_pixels, 40_000_000);
        assert!(b.allows(8000, 5000));
        assert!(!b.allows(8000, 5001));
        assert!(!b.allows(100_000, 100_000));
        assert_eq!(b.max_alloc(), 160_000_000 + (16 << 20));
    }

    #[test]
    fn setting_may_be_fractional() {
        let b = Budget::from_env(&Setting(Some(" 0.5 "))).unwrap();
        assert_eq!(b.max_pixels, 500_000);
    }

    #[test]
    fn bad_setting_is_internal() {
        for text in ["", "forty", "-1", "0", "NaN", "inf", "1e-9", "1e10"] {
            let e = Budget::from_env(&Setting(Some(text))).unwrap_err();
            assert_eq!(e.code, ErrorCode::Internal, "{text:?}");
            assert!(e.message.contains(SETTING), "{}", e.message);
        }
    }
}
