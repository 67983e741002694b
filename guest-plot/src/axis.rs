//! Axis ranges and ticks, decided before drawing so that the layout can measure the tick labels.
//!
//! [`Axis`] is a plotters coordinate whose key points are exactly the ticks chosen here. That keeps
//! plotters' own key-point search out of the way: it can loop forever when the span is tiny relative to
//! the values, and the labels it would produce are not the ones the layout measured.

use std::ops::Range;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};

/// Widens a range that is empty or too narrow for f64 to subdivide into ticks.
pub fn ensure_span(lo: f64, hi: f64) -> (f64, f64) {
    let magnitude = lo.abs().max(hi.abs());
    let min_span = (magnitude * 1e-9).max(1e-200);
    if hi - lo >= min_span {
        return (lo, hi);
    }
    let mid = lo / 2.0 + hi / 2.0;
    let half = if magnitude == 0.0 {
        1.0
    } else {
        (magnitude * 0.05).max(min_span)
    };
    (mid - half, mid + half)
}

/// Adds `fraction` of the span on both sides so that markers at the extremes are not cut.
pub fn padded(lo: f64, hi: f64, fraction: f64) -> (f64, f64) {
    let (lo, hi) = ensure_span(lo, hi);
    let pad = (hi - lo) * fraction;
    (lo - pad, hi + pad)
}

/// The smallest 1, 2 or 5 times a power of ten that cuts `span` into at most `max_ticks` steps.
fn nice_step(span: f64, max_ticks: usize) -> f64 {
    let raw = span / max_ticks.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// Round tick values inside `[lo, hi]`, at most about `max_ticks` of them, and their step.
pub fn nice_ticks(lo: f64, hi: f64, max_ticks: usize) -> (Vec<f64>, f64) {
    let step = nice_step(hi - lo, max_ticks);
    let mut ticks = Vec::new();
    // A little slack so that -0.3 / 0.1 = -2.9999999999999996 still counts as a tick.
    let mut k = (lo / step - 1e-9).ceil();
    let last = (hi / step + 1e-9).floor();
    // The length bound also ends the loop should `k + 1.0 == k` ever hold.
    while k <= last && ticks.len() <= max_ticks + 1 {
        let t = k * step;
        ticks.push(if t.abs() < step * 1e-6 { 0.0 } else { t });
        k += 1.0;
    }
    (ticks, step)
}

/// Formats tick values with as many decimals as the step needs, switching to exponent notation for
/// very large or very small magnitudes.
pub fn format_ticks(values: &[f64], step: f64) -> Vec<String> {
    let magnitude = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let step_exp = step.log10().floor();
    if magnitude >= 1e6 || (magnitude > 0.0 && magnitude < 1e-3) {
        let digits = (magnitude.log10().floor() - step_exp).clamp(0.0, 12.0) as usize;
        values
            .iter()
            .map(|&v| {
                if v == 0.0 {
                    "0".to_string()
                } else {
                    format!("{v:.digits$e}")
                }
            })
            .collect()
    } else {
        let decimals = (-step_exp).clamp(0.0, 15.0) as usize;
        values.iter().map(|&v| format!("{v:.decimals$}")).collect()
    }
}

/// A linear axis over `[lo, hi]` with precomputed, labelled ticks.
#[derive(Debug, Clone)]
pub struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<(f64, String)>,
}

impl Axis {
    /// A numeric axis with at most about `max_ticks` round ticks.
    pub fn numeric(lo: f64, hi: f64, max_ticks: usize) -> Self {
        let (lo, hi) = ensure_span(lo, hi);
        let (values, step) = nice_ticks(lo, hi, max_ticks);
        let labels = format_ticks(&values, step);
        Self {
            lo,
            hi,
            ticks: values.into_iter().zip(labels).collect(),
        }
    }

    /// A category axis: category `i` sits at `i`, labelled with `labels[i]` for every `stride`-th one.
    pub fn categories(labels: &[String], stride: usize) -> Self {
        let stride = stride.max(1);
        Self {
            lo: -0.5,
            hi: labels.len() as f64 - 0.5,
            ticks: labels
                .iter()
                .enumerate()
                .step_by(stride)
                .map(|(i, l)| (i as f64, l.clone()))
                .collect(),
        }
    }

    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.ticks.iter().map(|(_, l)| l.as_str())
    }

    /// The ticks as (where along the axis from 0 to 1, label).
    pub fn tick_positions(&self) -> impl Iterator<Item = (f64, &str)> {
        self.ticks
            .iter()
            .map(|(v, l)| ((v - self.lo) / (self.hi - self.lo), l.as_str()))
    }
}

impl Ranged for Axis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        // The same rounding as plotters' f64 coordinate, so lines and bars meet the grid.
        let t = (value - self.lo) / (self.hi - self.lo);
        let len = f64::from(limit.1 - limit.0);
        let offset = if len >= 0.0 {
            (len * t + 1e-3).floor()
        } else {
            (len * t - 1e-3).ceil()
        };
        // Saturates for far-away values; those are clipped by the drawing area anyway.
        limit.0.saturating_add(offset as i32)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Light grid lines ask with a limit of 0 (we configure none); bold ones get the ticks.
        if hint.max_num_points() == 0 {
            return Vec::new();
        }
        self.ticks.iter().map(|(v, _)| *v).collect()
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for Axis {
    fn format(value: &f64) -> String {
        value.to_string()
    }

    fn format_ext(&self, value: &f64) -> String {
        self.ticks
            .iter()
            .find(|(v, _)| v == value)
            .map_or_else(|| value.to_string(), |(_, l)| l.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(lo: f64, hi: f64, n: usize) -> Vec<String> {
        Axis::numeric(lo, hi, n).labels().map(str::to_string).collect()
    }

    #[test]
    fn years_are_whole_numbers() {
        assert_eq!(labels(2001.0, 2021.0, 5), ["2005", "2010", "2015", "2020"]);
    }

    #[test]
    fn fractions_get_just_enough_decimals() {
        assert_eq!(labels(0.0, 1.0, 5), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!(
            labels(-0.3, 0.3, 6),
            ["-0.3", "-0.2", "-0.1", "0.0", "0.1", "0.2", "0.3"]
        );
    }

    #[test]
    fn huge_and_tiny_values_use_exponents() {
        assert_eq!(labels(0.0, 3e9, 3), ["0", "1e9", "2e9", "3e9"]);
        assert_eq!(labels(0.0, 2e-4, 2), ["0", "1e-4", "2e-4"]);
    }

    #[test]
    fn degenerate_and_extreme_ranges_still_get_ticks() {
        for (lo, hi) in [
            (5.0, 5.0),
            (0.0, 0.0),
            (1e300, 1e300),
            (-1e300, 1e300),
            (1e10, 1e10 + 1e-6),
        ] {
            let axis = Axis::numeric(lo, hi, 10);
            let r = axis.range();
            assert!(r.end > r.start, "{lo}..{hi}");
            let n = axis.labels().count();
            assert!((1..=12).contains(&n), "{lo}..{hi}: {n} ticks");
        }
    }

    #[test]
    fn categories_are_thinned_by_stride() {
        let names: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        let axis = Axis::categories(&names, 2);
        assert_eq!(axis.labels().collect::<Vec<_>>(), ["a", "c", "e"]);
        assert_eq!(axis.range(), -0.5..4.5);
    }

    #[test]
    fn maps_like_plotters() {
        let axis = Axis::numeric(0.0, 10.0, 5);
        assert_eq!(axis.map(&0.0, (0, 100)), 0);
        assert_eq!(axis.map(&10.0, (0, 100)), 100);
        assert_eq!(axis.map(&5.0, (100, 0)), 50);
    }
}
