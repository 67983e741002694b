//! A synthetic scene with a known answer, for the quality tests and the benchmark: an ellipse of one
//! noisy colour on a noisy two-colour checkerboard.

use image::{Rgb, RgbImage};

use crate::params::Rect;

/// The image, the true foreground (row-major) and a rectangle around the object with a margin.
pub struct Scene {
    pub image: RgbImage,
    pub truth: Vec<bool>,
    pub rect: Rect,
}

/// Deterministic noise in -1..1 from a pixel and a channel.
fn noise(x: u32, y: u32, channel: u32) -> f32 {
    let mut h = x.wrapping_mul(0x9E37_79B1) ^ y.wrapping_mul(0x85EB_CA77) ^ channel.wrapping_mul(0xC2B2_AE3D);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    (h & 0xFFFF) as f32 / 32767.5 - 1.0
}

/// A `width`×`height` scene whose ellipse spans 60% of each side, centred.
pub fn synthetic(width: u32, height: u32) -> Scene {
    let (cx, cy) = (width as f32 / 2.0, height as f32 / 2.0);
    let (rx, ry) = (width as f32 * 0.3, height as f32 * 0.3);
    let square = (width.min(height) / 24).max(2);
    let mut truth = Vec::with_capacity((width * height) as usize);
    let image = RgbImage::from_fn(width, height, |x, y| {
        let (dx, dy) = ((x as f32 - cx) / rx, (y as f32 - cy) / ry);
        let inside = dx * dx + dy * dy <= 1.0;
        truth.push(inside);
        let (base, amplitude) = if inside {
            // A warm colour with a gentle shading across the object.
            ([200.0 + 20.0 * dx, 90.0 + 15.0 * dy, 40.0], 18.0)
        } else if ((x / square) + (y / square)).is_multiple_of(2) {
            ([40.0, 90.0, 170.0], 30.0)
        } else {
            ([70.0, 150.0, 80.0], 30.0)
        };
        let c: [u8; 3] = std::array::from_fn(|k| (base[k] + amplitude * noise(x, y, k as u32)).clamp(0.0, 255.0) as u8);
        Rgb(c)
    });
    // `from_fn` visits the pixels row by row.
    let margin_x = (width as f32 * 0.05) as u32;
    let margin_y = (height as f32 * 0.05) as u32;
    let rect = Rect {
        x: (cx - rx) as u32 - margin_x,
        y: (cy - ry) as u32 - margin_y,
        width: (2.0 * rx) as u32 + 2 * margin_x,
        height: (2.0 * ry) as u32 + 2 * margin_y,
    };
    Scene { image, truth, rect }
}

/// Intersection over union of two masks.
pub fn iou(a: &[bool], b: &[bool]) -> f64 {
    let both = a.iter().zip(b).filter(|(x, y)| **x && **y).count();
    let either = a.iter().zip(b).filter(|(x, y)| **x || **y).count();
    if either == 0 { 1.0 } else { both as f64 / either as f64 }
}
