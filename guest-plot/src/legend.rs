//! The legend: one swatch and name per series, in the corner of the plot that hides the least data.
//!
//! Drawn by hand rather than with plotters' `configure_series_labels`, which sizes its box through
//! `FontDesc` directly and so bypasses `TextBackend`'s measurements.

use ab_glyph::FontRef;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::text_backend::Metrics;

/// A rectangle in backend pixels, `x1`/`y1` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelRect {
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
}

impl PixelRect {
    pub fn width(&self) -> i32 {
        self.x1 - self.x0
    }

    pub fn height(&self) -> i32 {
        self.y1 - self.y0
    }
}

/// A coarse grid over the plot that counts how much data each cell shows.
pub struct Occupancy {
    area: PixelRect,
    cols: usize,
    rows: usize,
    cells: Vec<u32>,
}

const GRID: usize = 40;

impl Occupancy {
    pub fn new(area: PixelRect) -> Self {
        Self {
            area,
            cols: GRID,
            rows: GRID,
            cells: vec![0; GRID * GRID],
        }
    }

    fn cell_of(&self, x: f64, y: f64) -> (usize, usize) {
        let fx = (x - f64::from(self.area.x0)) / f64::from(self.area.width().max(1));
        let fy = (y - f64::from(self.area.y0)) / f64::from(self.area.height().max(1));
        let cx = (fx * self.cols as f64).floor().clamp(0.0, (self.cols - 1) as f64);
        let cy = (fy * self.rows as f64).floor().clamp(0.0, (self.rows - 1) as f64);
        (cx as usize, cy as usize)
    }

    pub fn mark_point(&mut self, (x, y): (i32, i32)) {
        let (cx, cy) = self.cell_of(f64::from(x), f64::from(y));
        self.cells[cy * self.cols + cx] += 1;
    }

    pub fn mark_segment(&mut self, a: (i32, i32), b: (i32, i32)) {
        let cell_px = (self.area.width().min(self.area.height()) as f64 / GRID as f64).max(1.0);
        let len = f64::from((b.0 - a.0).abs().max((b.1 - a.1).abs()));
        let steps = (len / cell_px).ceil().clamp(1.0, (2 * GRID) as f64) as usize;
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            let x = f64::from(a.0) + t * f64::from(b.0 - a.0);
            let y = f64::from(a.1) + t * f64::from(b.1 - a.1);
            let (cx, cy) = self.cell_of(x, y);
            self.cells[cy * self.cols + cx] += 1;
        }
    }

    fn cells_in(&self, r: PixelRect) -> impl Iterator<Item = usize> + '_ {
        let (cx0, cy0) = self.cell_of(f64::from(r.x0), f64::from(r.y0));
        let (cx1, cy1) = self.cell_of(f64::from(r.x1 - 1), f64::from(r.y1 - 1));
        (cy0..=cy1).flat_map(move |cy| (cx0..=cx1).map(move |cx| cy * self.cols + cx))
    }

    pub fn mark_rect(&mut self, r: PixelRect) {
        let cells: Vec<usize> = self.cells_in(r).collect();
        for c in cells {
            self.cells[c] += 1;
        }
    }

    fn count(&self, r: PixelRect) -> u64 {
        self.cells_in(r).map(|c| u64::from(self.cells[c])).sum()
    }
}

/// How a series looks, so its legend swatch can look the same.
#[derive(Debug, Clone, Copy)]
pub enum Swatch {
    Line { stroke: u32 },
    Marker { radius: u32 },
    Block,
}

pub struct Entry {
    pub name: String,
    pub color: RGBColor,
}

/// Draws the legend for `entries` inside `plot`, in multiple columns when they do not fit in one.
pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    font: &FontRef<'static>,
    size: f64,
    plot: PixelRect,
    occupancy: &Occupancy,
    entries: &[Entry],
    swatch: Swatch,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    if entries.is_empty() {
        return Ok(());
    }
    let metrics = Metrics::new(font, size);
    let text_h = metrics.line_height() as i32;
    let row_h = text_h + text_h / 3;
    let pad = (text_h / 2).max(3);
    let swatch_w = text_h * 2;
    let gap = (text_h / 2).max(3);
    let inset = pad;

    let avail_h = plot.height() - 2 * inset - 2 * pad;
    let per_col = (avail_h / row_h.max(1)).max(1) as usize;
    let cols = entries.len().div_ceil(per_col);
    let rows = entries.len().div_ceil(cols);
    // Names share the width left after swatches and padding; long ones are shortened.
    let avail_w = plot.width() - 2 * inset - 2 * pad;
    let per_col_w = (avail_w - (cols as i32 - 1) * 2 * gap) / cols as i32;
    let max_name_w = (per_col_w - swatch_w - gap).min(plot.width() * 2 / 5).max(text_h);
    let names: Vec<String> = entries
        .iter()
        .map(|e| metrics.fit(&e.name, max_name_w as u32))
        .collect();
    let name_w = names.iter().map(|n| metrics.size(n).0 as i32).max().unwrap_or(0);
    let col_w = swatch_w + gap + name_w;
    let box_w = 2 * pad + cols as i32 * col_w + (cols as i32 - 1) * 2 * gap;
    let box_h = 2 * pad + rows as i32 * row_h;
    if box_w > plot.width() - 2 * inset || box_h > plot.height() - 2 * inset {
        // On tiny images a legend would hide the whole plot; the colours must do.
        return Ok(());
    }

    // Corners, then edge middles, in order of preference; the first that hides the least data wins.
    let (left, right) = (plot.x0 + inset, plot.x1 - inset - box_w);
    let (top, bottom) = (plot.y0 + inset, plot.y1 - inset - box_h);
    let (centre_x, centre_y) = ((left + right) / 2, (top + bottom) / 2);
    let candidates = [
        (right, top),
        (left, top),
        (right, bottom),
        (left, bottom),
        (centre_x, top),
        (centre_x, bottom),
        (right, centre_y),
        (left, centre_y),
    ];
    let rect_at = |(x, y): (i32, i32)| PixelRect {
        x0: x,
        y0: y,
        x1: x + box_w,
        y1: y + box_h,
    };
    let best = candidates
        .iter()
        .map(|&c| rect_at(c))
        .min_by_key(|&r| occupancy.count(r))
        .unwrap_or_else(|| rect_at(candidates[0]));

    root.draw(&Rectangle::new(
        [(best.x0, best.y0), (best.x1, best.y1)],
        WHITE.mix(0.88).filled(),
    ))?;
    root.draw(&Rectangle::new(
        [(best.x0, best.y0), (best.x1, best.y1)],
        RGBColor(150, 150, 150).stroke_width(1),
    ))?;

    let text_style = TextStyle::from(("sans-serif", size).into_font())
        .color(&RGBColor(30, 30, 30))
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (entry, name)) in entries.iter().zip(&names).enumerate() {
        let (col, row) = (i / rows, i % rows);
        let x = best.x0 + pad + col as i32 * (col_w + 2 * gap);
        let cy = best.y0 + pad + row as i32 * row_h + row_h / 2;
        match swatch {
            Swatch::Line { stroke } => root.draw(&PathElement::new(
                vec![(x, cy), (x + swatch_w, cy)],
                entry.color.stroke_width(stroke),
            ))?,
            Swatch::Marker { radius } => {
                root.draw(&Circle::new((x + swatch_w / 2, cy), radius, entry.color.filled()))?
            }
            Swatch::Block => {
                let half = text_h * 2 / 5;
                root.draw(&Rectangle::new(
                    [
                        (x + swatch_w / 2 - half, cy - half),
                        (x + swatch_w / 2 + half, cy + half),
                    ],
                    entry.color.filled(),
                ))?
            }
        }
        root.draw_text(name, &text_style, (x + swatch_w + gap, cy))?;
    }
    Ok(())
}
