//! Drawing the chart with plotters into an RGB buffer, all text going through [`TextBackend`].
//!
//! The layout is computed before anything is drawn: font sizes follow the image size, tick labels are
//! chosen and measured first so the label areas are exactly as wide as their text, and on small images
//! the title, axis labels and tick labels are dropped in turn until the plot itself has room.

use ab_glyph::FontRef;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::axis::{self, Axis};
use crate::data::Dataset;
use crate::histogram::{self, Histogram};
use crate::legend::{self, Entry, Occupancy, PixelRect, Swatch};
use crate::params::{ChartType, Params};
use crate::text_backend::{Metrics, TextBackend, load_font};
use kiln_guest::JobError;

const TEXT: RGBColor = RGBColor(20, 20, 20);
const AXIS: RGBColor = RGBColor(70, 70, 70);

/// matplotlib's "tab10": distinct, colour-blind-tolerable, familiar.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Series colour: the palette, then hues spread by the golden angle so every series differs.
pub fn color(i: usize) -> RGBColor {
    if let Some(&c) = PALETTE.get(i) {
        return c;
    }
    let hue = (i as f64 * 0.618_033_988_75).fract();
    let lightness = if i.is_multiple_of(2) { 0.40 } else { 0.55 };
    let c = HSLColor(hue, 0.65, lightness).to_backend_color();
    RGBColor(c.rgb.0, c.rgb.1, c.rgb.2)
}

fn draw_err(e: impl std::fmt::Display) -> JobError {
    JobError::internal(format!("drawing the chart failed: {e}"))
}

/// Sizes that scale with the image.
struct Sizes {
    label: f64,
    desc: f64,
    title: f64,
    legend: f64,
    margin: i32,
    tick: i32,
    gap: i32,
    stroke: u32,
    marker: u32,
}

impl Sizes {
    fn for_image(width: u32, height: u32) -> Self {
        let base = (f64::from(width.min(height)) / 42.0).clamp(10.0, 48.0);
        Self {
            label: base,
            desc: base * 1.1,
            title: base * 1.5,
            legend: base,
            margin: (base * 0.9).round() as i32,
            tick: (base / 3.0).round().max(3.0) as i32,
            gap: (base / 2.0).round() as i32,
            stroke: (base / 6.0).round().max(2.0) as u32,
            marker: (base / 4.0).round().max(2.0) as u32,
        }
    }
}

/// What the data needs from the axes, before any layout.
struct Extent {
    x: (f64, f64),
    y: (f64, f64),
    /// Bar charts with labels: one slot per category.
    categories: Option<Vec<String>>,
    /// Bar charts: the width of one bar group in x units.
    group_width: f64,
    histogram: Option<Histogram>,
}

fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// Extends `(lo, hi)` to include zero and pads away from it: bars grow from zero.
fn from_zero((lo, hi): (f64, f64)) -> (f64, f64) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let (lo, hi) = axis::ensure_span(lo, hi);
    let pad = (hi - lo) * 0.05;
    (
        if lo < 0.0 { lo - pad } else { lo },
        if hi > 0.0 { hi + pad } else { hi },
    )
}

fn extent(params: &Params, data: &Dataset) -> Extent {
    let xs = || data.series.iter().flat_map(|s| s.present().map(|p| p.0));
    let ys = || data.series.iter().flat_map(|s| s.present().map(|p| p.1));
    let x = min_max(xs()).unwrap_or((0.0, 1.0));
    let y = min_max(ys()).unwrap_or((0.0, 1.0));
    let mut e = Extent {
        x,
        y,
        categories: None,
        group_width: 1.0,
        histogram: None,
    };
    match params.kind {
        ChartType::Line => {
            e.x = axis::ensure_span(x.0, x.1);
            e.y = axis::padded(y.0, y.1, 0.05);
        }
        ChartType::Scatter => {
            e.x = axis::padded(x.0, x.1, 0.05);
            e.y = axis::padded(y.0, y.1, 0.05);
        }
        ChartType::Bar => {
            e.y = from_zero(y);
            if let Some(labels) = &params.labels {
                e.categories = Some(labels.clone());
                e.x = (-0.5, labels.len() as f64 - 0.5);
                e.group_width = 0.8;
            } else {
                let mut sorted: Vec<f64> = xs().collect();
                sorted.sort_by(f64::total_cmp);
                sorted.dedup();
                let gap = sorted.windows(2).map(|w| w[1] - w[0]).fold(f64::INFINITY, f64::min);
                let gap = if gap.is_finite() && gap > 0.0 { gap } else { 1.0 };
                let (lo, hi) = axis::ensure_span(x.0 - gap / 2.0, x.1 + gap / 2.0);
                e.x = (lo, hi);
                e.group_width = gap * 0.8;
            }
        }
        ChartType::Histogram => {
            let samples: Vec<Vec<f64>> = data.series.iter().map(|s| s.present().map(|p| p.1).collect()).collect();
            let h = histogram::compute(&samples, params.bins);
            e.x = (h.lo, h.hi);
            e.y = (0.0, f64::from(h.max_count().max(1)) * 1.05);
            e.histogram = Some(h);
        }
    }
    e
}

/// Where everything goes.
struct Layout {
    title: Option<String>,
    x_desc: Option<String>,
    y_desc: Option<String>,
    show_ticks: bool,
    /// Space above the chart area taken by the title.
    title_band: i32,
    margin_left: i32,
    margin_right: i32,
    x_area: u32,
    y_area: u32,
    x_axis: Axis,
    y_axis: Axis,
}

const MIN_PLOT: i32 = 24;

fn layout(params: &Params, extent: &Extent, sizes: &Sizes, font: &FontRef<'static>) -> Layout {
    // Detail levels: everything; no title; no axis labels; no tick labels either. The last one is
    // drawn even if cramped (tiny images with huge tick labels).
    (0..3)
        .map(|level| layout_at(level, params, extent, sizes, font))
        .find(|(_, fits)| *fits)
        .unwrap_or_else(|| layout_at(3, params, extent, sizes, font))
        .0
}

fn layout_at(level: u8, params: &Params, extent: &Extent, sizes: &Sizes, font: &FontRef<'static>) -> (Layout, bool) {
    let (w, h) = (params.width as i32, params.height as i32);
    let label = Metrics::new(font, sizes.label);
    let desc = Metrics::new(font, sizes.desc);
    let title_m = Metrics::new(font, sizes.title);
    let label_h = label.line_height() as i32;
    let desc_h = desc.line_height() as i32;
    let m = sizes.margin;

    let title = (level < 1 && !params.title.is_empty()).then(|| title_m.fit(&params.title, (w - 2 * m).max(0) as u32));
    let descs = level < 2;
    let show_ticks = level < 3;
    let title_band = if title.is_some() {
        m + title_m.line_height() as i32
    } else {
        0
    };
    let has_x_desc = descs && !params.x_label.is_empty();
    let has_y_desc = descs && !params.y_label.is_empty();
    let x_area =
        if show_ticks { 2 * sizes.tick + label_h } else { 0 } + if has_x_desc { sizes.gap + desc_h } else { 0 };
    let plot_h = h - title_band - 2 * m - x_area;

    let max_y_ticks = (plot_h / (label_h * 5 / 2).max(1)).clamp(2, 10) as usize;
    let y_axis = Axis::numeric(extent.y.0, extent.y.1, max_y_ticks);
    let y_label_w = y_axis.labels().map(|l| label.size(l).0 as i32).max().unwrap_or(0);
    let y_area =
        if show_ticks { 2 * sizes.tick + y_label_w } else { 0 } + if has_y_desc { desc_h + sizes.gap } else { 0 };

    let plot_w_guess = w - 2 * m - y_area;
    let x_axis = x_axis_for(extent, plot_w_guess, &label, sizes.gap);
    // Tick labels are centred on their ticks, so the outermost may hang over the plot's edges.
    let (mut over_left, mut over_right) = (0, 0);
    if show_ticks {
        for (at, text) in x_axis.tick_positions() {
            let half = label.size(text).0 as i32 / 2 + 2;
            let px = (at * f64::from(plot_w_guess)) as i32;
            over_left = over_left.max(half - px - y_area);
            over_right = over_right.max(half - (plot_w_guess - px));
        }
    }
    let margin_left = m.max(over_left);
    let margin_right = m.max(over_right);
    let plot_w = w - margin_left - margin_right - y_area;

    let fits = plot_w >= MIN_PLOT && plot_h >= MIN_PLOT;
    let layout = Layout {
        title,
        x_desc: has_x_desc.then(|| desc.fit(&params.x_label, plot_w.max(0) as u32)),
        y_desc: has_y_desc.then(|| desc.fit(&params.y_label, plot_h.max(0) as u32)),
        show_ticks,
        title_band,
        margin_left,
        margin_right,
        x_area: x_area.max(0) as u32,
        y_area: y_area.max(0) as u32,
        x_axis,
        y_axis,
    };
    (layout, fits)
}

/// Picks the densest x ticks whose labels do not collide.
fn x_axis_for(extent: &Extent, plot_w: i32, label: &Metrics<'_>, gap: i32) -> Axis {
    let plot_w = plot_w.max(1);
    if let Some(categories) = &extent.categories {
        let max_w = (plot_w / 4).max(1) as u32;
        let names: Vec<String> = categories.iter().map(|c| label.fit(c, max_w)).collect();
        let widest = names.iter().map(|n| label.size(n).0 as i32).max().unwrap_or(0);
        let slot = f64::from(plot_w) / names.len().max(1) as f64;
        let stride = (f64::from(widest + 2 * gap) / slot).ceil().max(1.0) as usize;
        return Axis::categories(&names, stride);
    }
    let mut axis = Axis::numeric(extent.x.0, extent.x.1, 2);
    for n in (2..=12).rev() {
        let candidate = Axis::numeric(extent.x.0, extent.x.1, n);
        let count = candidate.labels().count().max(1) as i32;
        let widest = candidate.labels().map(|l| label.size(l).0 as i32).max().unwrap_or(0);
        if count * (widest + 2 * gap) <= plot_w {
            axis = candidate;
            break;
        }
    }
    axis
}

type Chart<'a, 'b> = ChartContext<'a, TextBackend<'b>, Cartesian2d<Axis, Axis>>;

/// Renders the chart; returns `width * height` RGB pixels.
pub fn render(params: &Params, data: &Dataset) -> Result<Vec<u8>, JobError> {
    let font = load_font().map_err(|e| JobError::internal(format!("embedded font: {e}")))?;
    let sizes = Sizes::for_image(params.width, params.height);
    let extent = extent(params, data);
    let layout = layout(params, &extent, &sizes, &font);

    let (w, h) = (params.width, params.height);
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    {
        let backend = TextBackend::new(&mut buf, (w, h), font.clone()).map_err(draw_err)?;
        let root = backend.into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;

        if let Some(title) = &layout.title {
            let style = TextStyle::from(("sans-serif", sizes.title).into_font())
                .color(&TEXT)
                .pos(Pos::new(HPos::Center, VPos::Top));
            root.draw_text(title, &style, (w as i32 / 2, sizes.margin))
                .map_err(draw_err)?;
        }

        let m = sizes.margin;
        let area = root.margin(layout.title_band + m, m, layout.margin_left, layout.margin_right);
        let mut chart = ChartBuilder::on(&area)
            .x_label_area_size(layout.x_area)
            .y_label_area_size(layout.y_area)
            .build_cartesian_2d(layout.x_axis.clone(), layout.y_axis.clone())
            .map_err(draw_err)?;
        draw_mesh(&mut chart, params, &layout, &sizes)?;

        let plot_px = plot_rect(&chart);
        let mut occupancy = Occupancy::new(plot_px);
        let swatch = draw_series(&mut chart, params, data, &extent, &sizes, &mut occupancy)?;

        let show_legend = data.series.len() > 1 || data.named;
        if show_legend {
            let entries: Vec<Entry> = data
                .series
                .iter()
                .enumerate()
                .map(|(i, s)| Entry {
                    name: s.name.clone(),
                    color: color(i),
                })
                .collect();
            legend::draw(&root, &font, sizes.legend, plot_px, &occupancy, &entries, swatch).map_err(draw_err)?;
        }
        root.present().map_err(draw_err)?;
    }
    Ok(buf)
}

/// The plotting area in backend pixels.
fn plot_rect(chart: &Chart<'_, '_>) -> PixelRect {
    let area = chart.plotting_area();
    let (x0, y0) = area.get_base_pixel();
    let (w, h) = area.dim_in_pixel();
    PixelRect {
        x0,
        y0,
        x1: x0 + w as i32,
        y1: y0 + h as i32,
    }
}

fn draw_mesh(chart: &mut Chart<'_, '_>, params: &Params, layout: &Layout, sizes: &Sizes) -> Result<(), JobError> {
    let label_style = TextStyle::from(("sans-serif", sizes.label).into_font()).color(&TEXT);
    let desc_style = TextStyle::from(("sans-serif", sizes.desc).into_font()).color(&TEXT);
    let grid = RGBColor(0, 0, 0).mix(0.12);
    let n_x = layout.x_axis.labels().count().max(1);
    let n_y = layout.y_axis.labels().count().max(1);
    let mut mesh = chart.configure_mesh();
    mesh.x_labels(n_x)
        .y_labels(n_y)
        .max_light_lines(0)
        .bold_line_style(grid)
        .axis_style(AXIS)
        .x_label_style(label_style.clone())
        .y_label_style(label_style)
        .axis_desc_style(desc_style)
        .set_all_tick_mark_size(sizes.tick);
    if matches!(params.kind, ChartType::Bar | ChartType::Histogram) {
        mesh.disable_x_mesh();
    }
    if let Some(d) = &layout.x_desc {
        mesh.x_desc(d.as_str());
    }
    if let Some(d) = &layout.y_desc {
        mesh.y_desc(d.as_str());
    }
    if !layout.show_ticks {
        // No label areas were reserved; keep the grid, which needs no text.
        mesh.disable_axes();
    }
    mesh.draw().map_err(draw_err)
}

fn draw_series(
    chart: &mut Chart<'_, '_>,
    params: &Params,
    data: &Dataset,
    extent: &Extent,
    sizes: &Sizes,
    occupancy: &mut Occupancy,
) -> Result<Swatch, JobError> {
    let area = chart.plotting_area().clone();
    let px = |p: (f64, f64)| area.map_coordinate(&p);
    match params.kind {
        ChartType::Line => {
            for (i, s) in data.series.iter().enumerate() {
                let style = color(i).stroke_width(sizes.stroke);
                // Runs of present points; an empty CSV cell breaks the line.
                for run in s.points.split(|p| p.1.is_none()) {
                    let pts: Vec<(f64, f64)> = run.iter().filter_map(|&(x, y)| y.map(|y| (x, y))).collect();
                    match pts.as_slice() {
                        [] => {}
                        [single] => {
                            area.draw(&Circle::new(*single, sizes.marker, color(i).filled()))
                                .map_err(draw_err)?;
                            occupancy.mark_point(px(*single));
                        }
                        _ => {
                            for pair in pts.windows(2) {
                                occupancy.mark_segment(px(pair[0]), px(pair[1]));
                            }
                            area.draw(&PathElement::new(pts, style)).map_err(draw_err)?;
                        }
                    }
                }
            }
            Ok(Swatch::Line { stroke: sizes.stroke })
        }
        ChartType::Scatter => {
            for (i, s) in data.series.iter().enumerate() {
                let style = color(i).mix(0.85).filled();
                for p in s.present() {
                    area.draw(&Circle::new(p, sizes.marker, style)).map_err(draw_err)?;
                    occupancy.mark_point(px(p));
                }
            }
            Ok(Swatch::Marker { radius: sizes.marker })
        }
        ChartType::Bar => {
            let k = data.series.len().max(1) as f64;
            let bar_w = extent.group_width / k;
            for (i, s) in data.series.iter().enumerate() {
                let style = color(i).filled();
                let offset = -extent.group_width / 2.0 + bar_w * i as f64;
                for (x, y) in s.present() {
                    let (x0, x1) = (x + offset, x + offset + bar_w);
                    let (top, bottom) = (y.max(0.0), y.min(0.0));
                    area.draw(&Rectangle::new([(x0, top), (x1, bottom)], style))
                        .map_err(draw_err)?;
                    mark_rect(occupancy, px((x0, top)), px((x1, bottom)));
                }
            }
            Ok(Swatch::Block)
        }
        ChartType::Histogram => {
            let Some(h) = &extent.histogram else {
                return Err(JobError::internal("histogram was not binned"));
            };
            let alpha = if data.series.len() > 1 { 0.5 } else { 0.85 };
            for (i, counts) in h.counts.iter().enumerate() {
                for (b, &c) in counts.iter().enumerate() {
                    if c == 0 {
                        continue;
                    }
                    let (l, r) = h.edges(b);
                    let corners = [(l, f64::from(c)), (r, 0.0)];
                    area.draw(&Rectangle::new(corners, color(i).mix(alpha).filled()))
                        .map_err(draw_err)?;
                    area.draw(&Rectangle::new(corners, color(i).stroke_width(1)))
                        .map_err(draw_err)?;
                    mark_rect(occupancy, px(corners[0]), px(corners[1]));
                }
            }
            Ok(Swatch::Block)
        }
    }
}

fn mark_rect(occupancy: &mut Occupancy, a: (i32, i32), b: (i32, i32)) {
    occupancy.mark_rect(PixelRect {
        x0: a.0.min(b.0),
        y0: a.1.min(b.1),
        x1: a.0.max(b.0) + 1,
        y1: a.1.max(b.1) + 1,
    });
}
