//! Pixel work: convert to 8-bit RGB(A), then cut out the planned region and scale it.
//!
//! Memory is the constraint (the host caps a run's linear memory, and wasm memory never shrinks), so
//! the decoded frame is reused wherever possible: a plain crop compacts rows in place, and a resize
//! reads the region straight out of the frame through a cropped view.

use fast_image_resize::images::{TypedCroppedImage, TypedCroppedImageMut, TypedImage};
use fast_image_resize::pixels::{U8x3, U8x4};
use fast_image_resize::{FilterType, MulDiv, PixelTrait, ResizeAlg, ResizeOptions, Resizer};
use image::DynamicImage;

use crate::params::Filter;
use crate::plan::{Plan, Rect};
use kiln_guest::JobError;

/// Packed 8-bit RGB, or RGBA when the source has an alpha channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub alpha: bool,
    pub data: Vec<u8>,
}

impl Pixels {
    pub fn channels(&self) -> usize {
        if self.alpha { 4 } else { 3 }
    }
}

/// Takes the image by value so its buffer can be reused or freed as early as possible.
pub fn apply(image: DynamicImage, plan: &Plan, filter: Filter) -> Result<Pixels, JobError> {
    let (pixels, region) = to_8bit(image, plan.region);
    if plan.resizes() {
        resize(pixels, region, plan.width, plan.height, filter)
    } else {
        Ok(crop_in_place(pixels, region))
    }
}

/// 8-bit RGB(A) sources are taken over without a copy; anything else is cropped first so that the
/// conversion only touches the region. Returns the region relative to the returned pixels.
fn to_8bit(image: DynamicImage, region: Rect) -> (Pixels, Rect) {
    let whole = region.is_whole(image.width(), image.height());
    let (image, region) = match image {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => (image, region),
        _ if !whole => {
            let cropped = image.crop_imm(region.x, region.y, region.width, region.height);
            let at_origin = Rect { x: 0, y: 0, ..region };
            (cropped, at_origin)
        }
        _ => (image, region),
    };
    let (width, height) = (image.width(), image.height());
    let alpha = image.color().has_alpha();
    let data = if alpha {
        image.into_rgba8().into_raw()
    } else {
        image.into_rgb8().into_raw()
    };
    let pixels = Pixels {
        width,
        height,
        alpha,
        data,
    };
    (pixels, region)
}

/// Moves the region's rows to the front of the buffer. Each row lands at or before where it was
/// read from, and rows are moved top to bottom, so no row is overwritten before it is read.
fn crop_in_place(mut p: Pixels, r: Rect) -> Pixels {
    if r.is_whole(p.width, p.height) {
        return p;
    }
    let ch = p.channels();
    let row = p.width as usize * ch;
    let out_row = r.width as usize * ch;
    for i in 0..r.height as usize {
        let src = (r.y as usize + i) * row + r.x as usize * ch;
        p.data.copy_within(src..src + out_row, i * out_row);
    }
    p.data.truncate(out_row * r.height as usize);
    p.data.shrink_to_fit();
    p.width = r.width;
    p.height = r.height;
    p
}

fn resize(p: Pixels, r: Rect, width: u32, height: u32, filter: Filter) -> Result<Pixels, JobError> {
    let algorithm = match filter {
        Filter::Nearest => ResizeAlg::Nearest,
        Filter::Triangle => ResizeAlg::Convolution(FilterType::Bilinear),
        Filter::Catmullrom => ResizeAlg::Convolution(FilterType::CatmullRom),
        Filter::Gaussian => ResizeAlg::Convolution(FilterType::Gaussian),
        Filter::Lanczos3 => ResizeAlg::Convolution(FilterType::Lanczos3),
    };
    let source = (p.data, p.width, p.height);
    let target = (width, height);
    // Filtering straight alpha lets the colour of invisible pixels (often black) bleed into visible
    // edges, so RGBA is premultiplied; nearest never mixes pixels and needs no premultiplying.
    let data = if p.alpha {
        resize_typed::<U8x4>(source, r, target, algorithm, filter != Filter::Nearest)
    } else {
        resize_typed::<U8x3>(source, r, target, algorithm, false)
    }
    .map_err(|e| JobError::internal(format!("resizing to {width}x{height} failed: {e}")))?;
    Ok(Pixels {
        width,
        height,
        alpha: p.alpha,
        data,
    })
}

/// Typed rather than `fast_image_resize`'s dynamic entry points, which would link code (and a 512 KB
/// table) for every pixel type into the wasm.
fn resize_typed<P: PixelTrait>(
    (mut data, src_width, src_height): (Vec<u8>, u32, u32),
    r: Rect,
    (width, height): (u32, u32),
    algorithm: ResizeAlg,
    premultiply: bool,
) -> Result<Vec<u8>, String> {
    let mut src = TypedImage::<P>::from_buffer(src_width, src_height, &mut data).map_err(|e| e.to_string())?;
    let mul_div = MulDiv::new();
    if premultiply {
        // In place and on the region only: the resizer's own premultiplying copies the whole frame.
        let mut region =
            TypedCroppedImageMut::from_ref(&mut src, r.x, r.y, r.width, r.height).map_err(|e| e.to_string())?;
        mul_div
            .multiply_alpha_inplace_typed(&mut region)
            .map_err(|e| e.to_string())?;
    }
    // A cropped view rather than the resizer's crop box: with a crop box the filter also samples
    // pixels just outside the region, which a crop followed by a resize must not see.
    let region = TypedCroppedImage::from_ref(&src, r.x, r.y, r.width, r.height).map_err(|e| e.to_string())?;
    let mut out = vec![0; width as usize * height as usize * P::size()];
    let mut dst = TypedImage::<P>::from_buffer(width, height, &mut out).map_err(|e| e.to_string())?;
    let options = ResizeOptions::new().resize_alg(algorithm).use_alpha(false);
    Resizer::new()
        .resize_typed(&region, &mut dst, &options)
        .map_err(|e| e.to_string())?;
    if premultiply {
        mul_div
            .divide_alpha_inplace_typed(&mut dst)
            .map_err(|e| e.to_string())?;
    }
    drop(dst);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(width: u32, height: u32, alpha: bool) -> Pixels {
        let ch = if alpha { 4 } else { 3 };
        let data = (0..width * height * ch).map(|i| (i % 251) as u8).collect();
        Pixels {
            width,
            height,
            alpha,
            data,
        }
    }

    #[test]
    fn crop_in_place_matches_a_copy() {
        for alpha in [false, true] {
            let src = numbered(7, 5, alpha);
            let ch = src.channels();
            let r = Rect {
                x: 2,
                y: 1,
                width: 4,
                height: 3,
            };
            let mut expected = Vec::new();
            for y in r.y..r.y + r.height {
                let start = (y * src.width + r.x) as usize * ch;
                expected.extend_from_slice(&src.data[start..start + r.width as usize * ch]);
            }
            let out = crop_in_place(src, r);
            assert_eq!((out.width, out.height), (4, 3));
            assert_eq!(out.data, expected);
        }
    }
}
