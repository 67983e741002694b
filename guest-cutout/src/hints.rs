//! The starting labels: the rectangle (or its default) and the strokes painted over it.

use kiln_guest::JobError;

use crate::grabcut::Label;
use crate::params::{Params, Rect, Stroke, StrokeLabel};

/// Stroke painting may touch at most this many times the image's pixels, summed over segments, so that
/// hints cost no more than an iteration of the cut.
const MAX_PAINT_FACTOR: u64 = 16;

/// The labels GrabCut starts from, or `invalid-params` when the rectangle or strokes do not fit the
/// image.
pub fn initial_labels(params: &Params, width: u32, height: u32) -> Result<Vec<Label>, JobError> {
    let rect = match params.rect {
        Some(rect) => rect,
        None => default_rect(width, height),
    };
    let fits = u64::from(rect.x) + u64::from(rect.width) <= u64::from(width)
        && u64::from(rect.y) + u64::from(rect.height) <= u64::from(height);
    if !fits {
        return Err(JobError::invalid_params(format!(
            "rect {}x{} at ({}, {}) does not lie inside the {width}x{height} image",
            rect.width, rect.height, rect.x, rect.y
        )));
    }
    let (w, h) = (width as usize, height as usize);
    let mut labels = vec![Label::Background; w * h];
    for y in rect.y as usize..(rect.y + rect.height) as usize {
        labels[y * w + rect.x as usize..y * w + (rect.x + rect.width) as usize].fill(Label::ProbablyForeground);
    }
    let strokes = params.strokes.as_deref().unwrap_or_default();
    let work: u64 = strokes.iter().map(paint_work).sum();
    let limit = MAX_PAINT_FACTOR * (w * h) as u64;
    if work > limit {
        return Err(JobError::invalid_params(format!(
            "the strokes paint about {work} pixels in all, over {MAX_PAINT_FACTOR} times the image's \
             {} pixels; use fewer, shorter or thinner strokes",
            w * h
        )));
    }
    for stroke in strokes {
        paint(&mut labels, w, h, stroke);
    }
    Ok(labels)
}

/// The image less 5% of its shorter side on each side (at least 1 pixel, and never less than 1 pixel
/// left inside).
pub fn default_rect(width: u32, height: u32) -> Rect {
    let margin = (width.min(height) / 20).max(1);
    let inset = |side: u32| margin.min(side.saturating_sub(1) / 2);
    let (mx, my) = (inset(width), inset(height));
    Rect {
        x: mx,
        y: my,
        width: width - 2 * mx,
        height: height - 2 * my,
    }
}

/// Pixels a stroke's segments cover, counted generously (each as its bounding band).
fn paint_work(stroke: &Stroke) -> u64 {
    let r = u64::from(stroke.radius);
    segments(stroke)
        .map(|(a, b)| {
            let length = (a[0] - b[0]).hypot(a[1] - b[1]) as u64;
            (2 * r + 1) * (length + 2 * r + 1)
        })
        .sum()
}

/// The stroke's segments, a single point being a segment of length 0.
fn segments(stroke: &Stroke) -> impl Iterator<Item = ([f64; 2], [f64; 2])> + '_ {
    let points: Vec<[f64; 2]> = stroke.points.iter().map(|p| p.0.map(f64::from)).collect();
    let pairs: Vec<_> = if points.len() == 1 {
        vec![(points[0], points[0])]
    } else {
        points.windows(2).map(|w| (w[0], w[1])).collect()
    };
    pairs.into_iter()
}

/// Labels every pixel whose centre is within `radius` of the stroke's line.
fn paint(labels: &mut [Label], width: usize, height: usize, stroke: &Stroke) {
    let label = match stroke.label {
        StrokeLabel::Foreground => Label::Foreground,
        StrokeLabel::Background => Label::Background,
    };
    let r = f64::from(stroke.radius);
    for (a, b) in segments(stroke) {
        let top = (a[1].min(b[1]) - r).ceil().max(0.0);
        let bottom = (a[1].max(b[1]) + r).floor().min(height as f64 - 1.0);
        let mut y = top;
        while y <= bottom {
            if let Some((left, right)) = row_span(a, b, r, y, width) {
                let row = y as usize * width;
                labels[row + left..=row + right].fill(label);
            }
            y += 1.0;
        }
    }
}

/// The pixels of row `y` within `r` of segment `a`–`b`: an interval, since the set is convex.
fn row_span(a: [f64; 2], b: [f64; 2], r: f64, y: f64, width: usize) -> Option<(usize, usize)> {
    let inside = |x: f64| distance2(a, b, [x, y]) <= r * r;
    // The x where the row comes nearest the segment: where the segment crosses the row, or below the
    // endpoint nearest in y.
    let nearest_x = if (a[1] - b[1]).abs() < f64::EPSILON {
        a[0].clamp(a[0].min(b[0]), a[0].max(b[0]))
    } else {
        let t = ((y - a[1]) / (b[1] - a[1])).clamp(0.0, 1.0);
        a[0] + t * (b[0] - a[0])
    };
    let last = width as f64 - 1.0;
    let centre = [nearest_x.floor(), nearest_x.ceil()]
        .into_iter()
        .map(|x| x.clamp(0.0, last))
        .find(|&x| inside(x))?;
    // Binary searches for the interval's ends, between `centre` (inside) and the row's ends.
    let edge = |mut inner: f64, mut outer: f64| {
        if inside(outer) {
            return outer;
        }
        while (outer - inner).abs() > 1.0 {
            let mid = ((inner + outer) / 2.0).floor();
            let mid = if mid == inner {
                inner + (outer - inner).signum()
            } else {
                mid
            };
            if inside(mid) { inner = mid } else { outer = mid }
        }
        inner
    };
    Some((edge(centre, 0.0) as usize, edge(centre, last) as usize))
}

/// Squared distance from `p` to the segment `a`–`b`.
fn distance2(a: [f64; 2], b: [f64; 2], p: [f64; 2]) -> f64 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let length2 = dx * dx + dy * dy;
    let t = if length2 == 0.0 {
        0.0
    } else {
        (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length2).clamp(0.0, 1.0)
    };
    let (ex, ey) = (a[0] + t * dx - p[0], a[1] + t * dy - p[1]);
    ex * ex + ey * ey
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Point;

    fn stroke(points: &[[u32; 2]], radius: u32) -> Stroke {
        Stroke {
            label: StrokeLabel::Foreground,
            points: points.iter().map(|&p| Point(p)).collect(),
            radius,
        }
    }

    /// Painting agrees with testing every pixel's distance.
    #[test]
    fn painting_matches_the_distance_test() {
        let (w, h) = (60, 50);
        let cases = [
            stroke(&[[30, 25]], 7),
            stroke(&[[5, 5], [50, 40]], 3),
            stroke(&[[10, 40], [55, 40], [55, 2]], 2),
            stroke(&[[0, 0], [70, 10]], 4),
            stroke(&[[200, 200]], 100),
            stroke(&[[20, 10], [21, 45]], 1),
        ];
        for s in cases {
            let mut labels = vec![Label::Background; w * h];
            paint(&mut labels, w, h, &s);
            let r2 = f64::from(s.radius).powi(2);
            for y in 0..h {
                for x in 0..w {
                    let p = [x as f64, y as f64];
                    let near = segments(&s).any(|(a, b)| distance2(a, b, p) <= r2);
                    assert_eq!(labels[y * w + x] == Label::Foreground, near, "{s:?} at ({x}, {y})");
                }
            }
        }
    }

    #[test]
    fn default_rect_leaves_a_margin() {
        assert_eq!(
            default_rect(1024, 768),
            Rect {
                x: 38,
                y: 38,
                width: 948,
                height: 692
            }
        );
        assert_eq!(default_rect(10, 3).x, 1);
        let tiny = default_rect(1, 1);
        assert_eq!((tiny.width, tiny.height), (1, 1));
    }
}
