//! Geometry: which part of the decoded image to keep and what size to scale it to.
//!
//! Pure arithmetic on sizes, so every rule about crop bounds, aspect ratios and output limits lives
//! here and is tested without pixels. `cover` is planned as a centred crop to the box's aspect
//! followed by an exact resize, which equals scaling then cropping but never builds an image larger
//! than the output.

use crate::params::{Fit, MAX_SIDE, Params};
use kiln_guest::JobError;
use kiln_guest::image::{Budget, megapixels};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    /// Whether this is all of a `width`×`height` image.
    pub fn is_whole(&self, width: u32, height: u32) -> bool {
        (self.x, self.y, self.width, self.height) == (0, 0, width, height)
    }
}

/// Keep `region` of the decoded image, then scale it to `width`×`height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub region: Rect,
    pub width: u32,
    pub height: u32,
}

impl Plan {
    pub fn resizes(&self) -> bool {
        (self.width, self.height) != (self.region.width, self.region.height)
    }
}

pub fn plan(params: &Params, width: u32, height: u32, budget: Budget) -> Result<Plan, JobError> {
    let mut region = match params.crop {
        None => Rect {
            x: 0,
            y: 0,
            width,
            height,
        },
        Some(c) => {
            let rect = Rect {
                x: c.x,
                y: c.y,
                width: c.width,
                height: c.height,
            };
            check_inside(rect, width, height)?;
            rect
        }
    };
    let Some(resize) = params.resize else {
        return Ok(Plan {
            region,
            width: region.width,
            height: region.height,
        });
    };
    let (w, h) = (region.width, region.height);
    let (out_w, out_h) = match (resize.width, resize.height) {
        (Some(tw), None) => (tw, scale(h, tw, w)),
        (None, Some(th)) => (scale(w, th, h), th),
        (Some(tw), Some(th)) => match resize.fit {
            Fit::Fill => (tw, th),
            Fit::Contain => {
                // Width is the tighter constraint when tw/w <= th/h.
                if u64::from(tw) * u64::from(h) <= u64::from(th) * u64::from(w) {
                    (tw, scale(h, tw, w))
                } else {
                    (scale(w, th, h), th)
                }
            }
            Fit::Cover => {
                region = centred_to_aspect(region, tw, th);
                (tw, th)
            }
        },
        (None, None) => {
            return Err(JobError::invalid_params("resize needs a width, a height or both"));
        }
    };
    check_output(out_w, out_h, budget)?;
    Ok(Plan {
        region,
        width: out_w,
        height: out_h,
    })
}

fn check_inside(r: Rect, width: u32, height: u32) -> Result<(), JobError> {
    if r.width == 0 || r.height == 0 {
        return Err(JobError::invalid_params(format!(
            "crop width and height must be at least 1, got {}x{}",
            r.width, r.height
        )));
    }
    let right = r.x.checked_add(r.width);
    let bottom = r.y.checked_add(r.height);
    let fits = right.is_some_and(|v| v <= width) && bottom.is_some_and(|v| v <= height);
    if !fits {
        return Err(JobError::invalid_params(format!(
            "crop rectangle x={} y={} width={} height={} does not fit inside the {width}x{height} image \
             (needs x + width <= {width} and y + height <= {height}; got {} and {})",
            r.x,
            r.y,
            r.width,
            r.height,
            u64::from(r.x) + u64::from(r.width),
            u64::from(r.y) + u64::from(r.height),
        )));
    }
    Ok(())
}

fn check_output(width: u32, height: u32, budget: Budget) -> Result<(), JobError> {
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(JobError::invalid_params(format!(
            "resize would produce {width}x{height}, over the limit of {MAX_SIDE} pixels per side"
        )));
    }
    if !budget.allows(width, height) {
        return Err(JobError::invalid_params(format!(
            "resize would produce {width}x{height} ({:.1} megapixels), over the limit of {} megapixels",
            megapixels(width, height),
            budget.megapixels()
        )));
    }
    Ok(())
}

/// `value * num / den`, rounded to nearest and at least 1; saturates instead of overflowing so that
/// absurd results reach [`check_output`] and are refused there.
fn scale(value: u32, num: u32, den: u32) -> u32 {
    let den = u64::from(den.max(1));
    let scaled = (u64::from(value) * u64::from(num) + den / 2) / den;
    u32::try_from(scaled.max(1)).unwrap_or(u32::MAX)
}

/// The largest centred part of `r` with the aspect ratio `aw`:`ah`.
fn centred_to_aspect(r: Rect, aw: u32, ah: u32) -> Rect {
    if u64::from(r.width) * u64::from(ah) > u64::from(aw) * u64::from(r.height) {
        // Wider than the box: trim left and right.
        let width = scale(r.height, aw, ah).min(r.width);
        Rect {
            x: r.x + (r.width - width) / 2,
            width,
            ..r
        }
    } else {
        let height = scale(r.width, ah, aw).min(r.height);
        Rect {
            y: r.y + (r.height - height) / 2,
            height,
            ..r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::tests::parse;
    use kiln_guest::ErrorCode;

    const BUDGET: Budget = Budget { max_pixels: 40_000_000 };

    fn plan_for(params: &str, w: u32, h: u32) -> Result<Plan, JobError> {
        plan(&parse(params).unwrap(), w, h, BUDGET)
    }

    fn size(params: &str, w: u32, h: u32) -> (u32, u32) {
        let p = plan_for(params, w, h).unwrap();
        (p.width, p.height)
    }

    #[test]
    fn no_params_keeps_everything() {
        let p = plan_for("{}", 30, 20).unwrap();
        assert_eq!(
            p.region,
            Rect {
                x: 0,
                y: 0,
                width: 30,
                height: 20
            }
        );
        assert_eq!((p.width, p.height), (30, 20));
        assert!(!p.resizes());
    }

    #[test]
    fn crop_at_the_edge_is_allowed() {
        let p = plan_for(r#"{"crop":{"x":10,"y":5,"width":20,"height":15}}"#, 30, 20).unwrap();
        assert_eq!(
            p.region,
            Rect {
                x: 10,
                y: 5,
                width: 20,
                height: 15
            }
        );
        assert_eq!((p.width, p.height), (20, 15));
    }

    #[test]
    fn crop_outside_is_invalid_params_with_values() {
        for (params, needle) in [
            (r#"{"crop":{"x":11,"y":0,"width":20,"height":1}}"#, "got 31 and 1"),
            (r#"{"crop":{"x":0,"y":6,"width":1,"height":15}}"#, "got 1 and 21"),
            (r#"{"crop":{"x":30,"y":0,"width":1,"height":1}}"#, "x=30"),
            (
                r#"{"crop":{"x":4294967295,"y":0,"width":4294967295,"height":1}}"#,
                "got 8589934590 and 1",
            ),
        ] {
            let e = plan_for(params, 30, 20).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidParams, "{params}");
            assert!(e.message.contains("30x20 image"), "{}", e.message);
            assert!(e.message.contains(needle), "{}", e.message);
        }
    }

    #[test]
    fn one_side_keeps_aspect() {
        assert_eq!(size(r#"{"resize":{"width":100}}"#, 400, 300), (100, 75));
        assert_eq!(size(r#"{"resize":{"height":100}}"#, 400, 300), (133, 100));
        // Rounds to nearest, never to zero.
        assert_eq!(size(r#"{"resize":{"width":1}}"#, 1000, 10), (1, 1));
        assert_eq!(size(r#"{"resize":{"width":2}}"#, 3, 1), (2, 1));
        // fit is irrelevant with one side.
        assert_eq!(size(r#"{"resize":{"width":100,"fit":"cover"}}"#, 400, 300), (100, 75));
    }

    #[test]
    fn fill_stretches() {
        assert_eq!(size(r#"{"resize":{"width":50,"height":60}}"#, 400, 300), (50, 60));
    }

    #[test]
    fn contain_fits_inside_and_upscales() {
        let c = |w, h, sw, sh| {
            size(
                &format!(r#"{{"resize":{{"width":{w},"height":{h},"fit":"contain"}}}}"#),
                sw,
                sh,
            )
        };
        assert_eq!(c(100, 100, 400, 300), (100, 75));
        assert_eq!(c(100, 100, 300, 400), (75, 100));
        assert_eq!(c(1000, 1000, 40, 30), (1000, 750));
        assert_eq!(c(80, 60, 400, 300), (80, 60));
    }

    #[test]
    fn cover_crops_centre_to_aspect_then_scales_exactly() {
        let p = plan_for(r#"{"resize":{"width":100,"height":100,"fit":"cover"}}"#, 400, 300).unwrap();
        assert_eq!(
            p.region,
            Rect {
                x: 50,
                y: 0,
                width: 300,
                height: 300
            }
        );
        assert_eq!((p.width, p.height), (100, 100));

        let p = plan_for(r#"{"resize":{"width":200,"height":50,"fit":"cover"}}"#, 400, 300).unwrap();
        assert_eq!(
            p.region,
            Rect {
                x: 0,
                y: 100,
                width: 400,
                height: 100
            }
        );

        // Applies to the cropped region, offsets add up.
        let p = plan_for(
            r#"{"crop":{"x":10,"y":20,"width":40,"height":20},"resize":{"width":10,"height":10,"fit":"cover"}}"#,
            100,
            100,
        )
        .unwrap();
        assert_eq!(
            p.region,
            Rect {
                x: 20,
                y: 20,
                width: 20,
                height: 20
            }
        );
    }

    #[test]
    fn oversized_output_is_invalid_params() {
        for (params, w, h, needle) in [
            (r#"{"resize":{"width":16384}}"#, 1, 2, "16384x32768"),
            (
                r#"{"resize":{"width":10000,"height":10000}}"#,
                10,
                10,
                "100.0 megapixels",
            ),
            (
                r#"{"resize":{"width":10000,"height":10000,"fit":"contain"}}"#,
                1,
                1,
                "over the limit of 40 megapixels",
            ),
        ] {
            let e = plan_for(params, w, h).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidParams, "{params}");
            assert!(e.message.contains(needle), "{}", e.message);
        }
    }
}
