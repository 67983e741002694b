//! The operations themselves: each one is a call into the `image` crate.
//!
//! Every operation takes the image by value and returns the new one, so the old pixel buffer is freed
//! as soon as the next exists: at most two copies are alive at once (three during a blur).

use image::DynamicImage;

use crate::params::{Axis, Op, Rotation};

pub fn apply(mut image: DynamicImage, op: Op) -> DynamicImage {
    match op {
        // 8-bit RGB becomes 8-bit grey (`Luma8`), RGBA grey with alpha (`LumaA8`).
        Op::Grayscale => image.grayscale(),
        // `fast_blur` approximates a Gaussian with three box blurs: its cost does not grow with sigma,
        // so sigma 50 on a large photo stays well inside the job's deadline (the exact `blur` would not).
        Op::Blur { sigma } => image.fast_blur(sigma),
        // `image` rotates clockwise.
        Op::Rotate(Rotation::Deg90) => image.rotate90(),
        Op::Rotate(Rotation::Deg180) => image.rotate180(),
        Op::Rotate(Rotation::Deg270) => image.rotate270(),
        Op::Flip(Axis::Horizontal) => image.fliph(),
        Op::Flip(Axis::Vertical) => image.flipv(),
        // In place; alpha is left alone.
        Op::Invert => {
            image.invert();
            image
        }
        // Clamped at 0 and 255; alpha is left alone.
        Op::Brighten { value } => image.brighten(value),
    }
}
