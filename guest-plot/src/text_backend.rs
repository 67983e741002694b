//! A plotters drawing backend that rasterises text itself.
//!
//! plotters 0.3.7 compiles its `ttf`/`ab_glyph` font stacks out on wasm32-wasi; what is left measures
//! text crudely and panics when asked to draw it. [`TextBackend`] wraps the in-memory
//! [`BitMapBackend`] and overrides the two text entry points of [`DrawingBackend`] (`draw_text` and
//! `estimate_text_size`), laying out and rasterising glyphs with ab_glyph from DejaVu Sans embedded in
//! the binary. Native and wasm builds therefore draw the same pixels, and native tests see what the
//! guest produces. Callers must not use plotters features that measure text through `FontDesc`
//! directly (`MultiLineText`, `configure_series_labels`): those bypass the backend.

use ab_glyph::{Font, FontRef, GlyphId, OutlinedGlyph, PxScale, ScaleFont, point};
use plotters::backend::{BitMapBackend, RGBPixel};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind, FontTransform,
};
use plotters_bitmap::BitMapBackendError;

/// DejaVu Sans (Bitstream Vera derived, permissive licence), shipped by the `dejavu` crate.
fn font_bytes() -> &'static [u8] {
    dejavu::sans::regular()
}

/// Parses the embedded font. It is a constant, so failure is a build defect, reported as an error.
pub fn load_font() -> Result<FontRef<'static>, ab_glyph::InvalidFont> {
    FontRef::try_from_slice(font_bytes())
}

/// Horizontal text metrics at one pixel size, shared by measuring and drawing so they agree.
pub struct Metrics<'f> {
    font: ab_glyph::PxScaleFont<&'f FontRef<'static>>,
}

/// One laid-out line: glyphs with their pen x, and the box every anchor refers to.
struct Line {
    glyphs: Vec<(GlyphId, f32)>,
    width: f32,
}

impl<'f> Metrics<'f> {
    pub fn new(font: &'f FontRef<'static>, size: f64) -> Self {
        // Sizes are bounded by the caller; a non-positive size would make an empty box anyway.
        let px = (size as f32).max(1.0);
        Self {
            font: font.as_scaled(PxScale::from(px)),
        }
    }

    /// Height of the layout box: ascent to descent, independent of the text, so that labels of one
    /// style line up whatever letters they contain.
    pub fn line_height(&self) -> u32 {
        (self.font.ascent() - self.font.descent()).ceil().max(1.0) as u32
    }

    /// Baseline offset from the top of the layout box, snapped to whole pixels for crisp stems.
    fn baseline(&self) -> f32 {
        self.font.ascent().round()
    }

    fn layout(&self, text: &str) -> Line {
        let mut glyphs = Vec::with_capacity(text.len());
        let mut pen = 0.0f32;
        let mut prev: Option<GlyphId> = None;
        for c in text.chars() {
            // Control characters have no glyph; a space keeps the width honest.
            let c = if c.is_control() { ' ' } else { c };
            let id = self.font.glyph_id(c);
            if let Some(p) = prev {
                pen += self.font.kern(p, id);
            }
            glyphs.push((id, pen));
            pen += self.font.h_advance(id);
            prev = Some(id);
        }
        Line { glyphs, width: pen }
    }

    /// Width and height in pixels of `text` drawn horizontally.
    pub fn size(&self, text: &str) -> (u32, u32) {
        let w = self.layout(text).width.ceil().max(0.0) as u32;
        (w, self.line_height())
    }

    /// `text`, cut short with an ellipsis if needed so that it fits in `max_width` pixels.
    pub fn fit(&self, text: &str, max_width: u32) -> String {
        if self.size(text).0 <= max_width {
            return text.to_string();
        }
        let chars: Vec<char> = text.chars().collect();
        let shortened = |n: usize| {
            let mut s: String = chars[..n].iter().collect::<String>().trim_end().to_string();
            s.push('…');
            s
        };
        // The longest prefix that fits, found by bisection since widths grow with the prefix.
        let (mut lo, mut hi) = (0, chars.len());
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if self.size(&shortened(mid)).0 <= max_width {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        if lo == 0 && self.size("…").0 > max_width {
            String::new()
        } else {
            shortened(lo)
        }
    }

    /// Calls `plot(x, y, coverage)` for every covered pixel of `text`, in coordinates relative to the
    /// top-left corner of its layout box (they may stray outside it by a bearing or a descender).
    /// Overlapping glyphs add up their coverage so kerned pairs do not darken where they touch.
    fn rasterise(&self, text: &str, mut plot: impl FnMut(i32, i32, f32)) {
        let line = self.layout(text);
        let baseline = self.baseline();
        let outlines: Vec<OutlinedGlyph> = line
            .glyphs
            .iter()
            .filter_map(|&(id, x)| {
                let glyph = id.with_scale_and_position(self.font.scale(), point(x, baseline));
                self.font.outline_glyph(glyph)
            })
            .collect();
        let Some(first) = outlines.first() else {
            return;
        };
        let mut min = first.px_bounds().min;
        let mut max = first.px_bounds().max;
        for o in &outlines[1..] {
            let b = o.px_bounds();
            min.x = min.x.min(b.min.x);
            min.y = min.y.min(b.min.y);
            max.x = max.x.max(b.max.x);
            max.y = max.y.max(b.max.y);
        }
        let (x0, y0) = (min.x.floor() as i32, min.y.floor() as i32);
        let w = (max.x.ceil() as i32 - x0).max(0) as usize;
        let h = (max.y.ceil() as i32 - y0).max(0) as usize;
        let mut coverage = vec![0.0f32; w * h];
        for o in &outlines {
            let b = o.px_bounds();
            let (ox, oy) = (b.min.x as i32 - x0, b.min.y as i32 - y0);
            o.draw(|gx, gy, c| {
                let (x, y) = (ox + gx as i32, oy + gy as i32);
                if x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h {
                    let cell = &mut coverage[y as usize * w + x as usize];
                    *cell = (*cell + c).min(1.0);
                }
            });
        }
        for (i, &c) in coverage.iter().enumerate() {
            if c > 0.0 {
                plot(x0 + (i % w) as i32, y0 + (i / w) as i32, c);
            }
        }
    }
}

/// Maps the pixel at `(x, y)` in the text's own frame to the backend frame, rotating about the anchor
/// by whole quarter turns (clockwise, as plotters defines them). Rotating the pixel's centre rather
/// than its corner keeps the rotated text on the same pixels the anchor promises.
fn rotate(transform: &FontTransform, x: i32, y: i32) -> (i32, i32) {
    match transform {
        FontTransform::None => (x, y),
        FontTransform::Rotate90 => (-y - 1, x),
        FontTransform::Rotate180 => (-x - 1, -y - 1),
        FontTransform::Rotate270 => (y, -x - 1),
    }
}

/// An RGB bitmap backend whose text goes through ab_glyph rather than plotters' font stack.
pub struct TextBackend<'a> {
    inner: BitMapBackend<'a, RGBPixel>,
    font: FontRef<'static>,
}

impl<'a> TextBackend<'a> {
    /// Draws into `buf`, which must hold `width * height * 3` bytes of RGB.
    pub fn new(
        buf: &'a mut [u8],
        (width, height): (u32, u32),
        font: FontRef<'static>,
    ) -> Result<Self, BitMapBackendError> {
        let inner = BitMapBackend::with_buffer_and_format(buf, (width, height))?;
        Ok(Self { inner, font })
    }
}

impl DrawingBackend for TextBackend<'_> {
    type ErrorType = BitMapBackendError;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha <= 0.0 || text.is_empty() {
            return Ok(());
        }
        let metrics = Metrics::new(&self.font, style.size());
        let (w, h) = metrics.size(text);
        let (w, h) = (w as i32, h as i32);
        // The anchor is relative to the unrotated text box; the rotation then turns the text about it.
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0,
            HPos::Center => -w / 2,
            HPos::Right => -w,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0,
            VPos::Center => -h / 2,
            VPos::Bottom => -h,
        };
        let transform = style.transform();
        let mut pixels = Vec::new();
        metrics.rasterise(text, |x, y, coverage| {
            let (rx, ry) = rotate(&transform, x + dx, y + dy);
            pixels.push(((pos.0 + rx, pos.1 + ry), coverage));
        });
        for (p, coverage) in pixels {
            let c = BackendColor {
                alpha: color.alpha * f64::from(coverage),
                rgb: color.rgb,
            };
            // The bitmap backend clips and alpha-blends onto the buffer.
            self.inner.draw_pixel(p, c)?;
        }
        Ok(())
    }

    fn estimate_text_size<TStyle: BackendTextStyle>(
        &self,
        text: &str,
        style: &TStyle,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        // Like plotters' default: the size of the unrotated box.
        Ok(Metrics::new(&self.font, style.size()).size(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::prelude::*;
    use plotters::style::FontTransform;
    use plotters::style::text_anchor::Pos;

    fn canvas(w: u32, h: u32, f: impl FnOnce(&mut TextBackend<'_>)) -> Vec<u8> {
        let mut buf = vec![255u8; (w * h * 3) as usize];
        {
            let font = load_font().expect("embedded font parses");
            let mut b = TextBackend::new(&mut buf, (w, h), font).expect("buffer fits");
            f(&mut b);
        }
        buf
    }

    /// Bounding box (x0, y0, x1, y1) of pixels darker than mid grey.
    fn ink(buf: &[u8], w: u32) -> Option<(u32, u32, u32, u32)> {
        let mut bb: Option<(u32, u32, u32, u32)> = None;
        for (i, px) in buf.chunks(3).enumerate() {
            if px[0] < 128 {
                let (x, y) = (i as u32 % w, i as u32 / w);
                bb = Some(match bb {
                    None => (x, y, x, y),
                    Some((a, b, c, d)) => (a.min(x), b.min(y), c.max(x), d.max(y)),
                });
            }
        }
        bb
    }

    fn style(size: f64) -> TextStyle<'static> {
        TextStyle::from(("sans-serif", size).into_font()).color(&BLACK)
    }

    #[test]
    fn measures_text_with_the_real_font() {
        let font = load_font().expect("font");
        let m = Metrics::new(&font, 20.0);
        let (w_i, h) = m.size("iiii");
        let (w_m, _) = m.size("MMMM");
        assert!(w_m > w_i * 2, "proportional font: {w_m} vs {w_i}");
        assert!((19..=22).contains(&h), "line height {h}");
        assert_eq!(m.size(""), (0, h));
    }

    #[test]
    fn draws_horizontal_text_right_of_and_below_a_top_left_anchor() {
        let buf = canvas(200, 60, |b| {
            b.draw_text("Hello", &style(20.0), (50, 20)).expect("draw");
        });
        let (x0, y0, x1, y1) = ink(&buf, 200).expect("text was drawn");
        assert!((50..=53).contains(&x0), "x0 {x0}");
        assert!((20..=26).contains(&y0), "y0 {y0}");
        assert!(x1 > x0 + 30 && x1 < 120, "x1 {x1}");
        assert!(y1 < 20 + 20, "y1 {y1}");
    }

    #[test]
    fn rotate270_reads_upwards_to_the_right_of_a_top_anchor() {
        let s = style(20.0)
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Center, VPos::Top));
        let buf = canvas(60, 200, |b| {
            b.draw_text("Hello", &s, (10, 100)).expect("draw");
        });
        let (x0, y0, x1, y1) = ink(&buf, 60).expect("text was drawn");
        // Tall and thin, centred on y = 100, starting right of x = 10.
        assert!(y1 - y0 > 2 * (x1 - x0), "box {x0},{y0} {x1},{y1}");
        assert!(x0 >= 10 && x1 < 32, "x {x0}..{x1}");
        let mid = (y0 + y1) / 2;
        assert!((95..=105).contains(&mid), "centre {mid}");
    }

    /// Ink extent across the rows `ys` (the text's height when rotated).
    fn ink_width(buf: &[u8], w: u32, ys: std::ops::Range<u32>) -> u32 {
        let xs: Vec<u32> = ys
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .filter(|&(x, y)| buf[((y * w + x) * 3) as usize] < 128)
            .map(|(x, _)| x)
            .collect();
        match (xs.iter().min(), xs.iter().max()) {
            (Some(a), Some(b)) => b - a + 1,
            _ => 0,
        }
    }

    #[test]
    fn rotated_text_reads_in_the_right_direction() {
        // "I" is cap-height tall, the dots after it sit on the baseline: wherever the "I" ends up
        // is where the text starts.
        for (transform, starts_at_bottom) in [(FontTransform::Rotate270, true), (FontTransform::Rotate90, false)] {
            let s = style(24.0)
                .transform(transform)
                .pos(Pos::new(HPos::Center, VPos::Center));
            let buf = canvas(60, 200, |b| b.draw_text("I.....", &s, (30, 100)).expect("draw"));
            let (_, y0, _, y1) = ink(&buf, 60).expect("ink");
            let fifth = (y1 - y0) / 5;
            let top = ink_width(&buf, 60, y0..y0 + fifth);
            let bottom = ink_width(&buf, 60, y1 - fifth..y1 + 1);
            if starts_at_bottom {
                assert!(bottom > 2 * top, "270: bottom {bottom} vs top {top}");
            } else {
                assert!(top > 2 * bottom, "90: top {top} vs bottom {bottom}");
            }
        }
    }

    #[test]
    fn text_alpha_blends_with_the_background() {
        let half_black = BLACK.mix(0.5);
        let s = TextStyle::from(("sans-serif", 30.0).into_font()).color(&half_black);
        let buf = canvas(100, 50, |b| b.draw_text("I", &s, (10, 5)).expect("draw"));
        let darkest = buf.iter().copied().min().expect("pixels");
        assert!((100..=140).contains(&darkest), "half-transparent black, got {darkest}");
    }

    #[test]
    fn text_off_canvas_is_clipped_without_error() {
        let buf = canvas(20, 20, |b| {
            b.draw_text("clipped text", &style(30.0), (-50, -10)).expect("draw");
            b.draw_text("x", &style(30.0), (500, 500)).expect("draw");
        });
        assert_eq!(buf.len(), 20 * 20 * 3);
    }
}
