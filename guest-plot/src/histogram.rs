//! Binning histogram samples. All series share one set of bins so that their bars line up.

use crate::axis;

#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Left edge of the first bin.
    pub lo: f64,
    /// Right edge of the last bin.
    pub hi: f64,
    /// Counts per series, then per bin.
    pub counts: Vec<Vec<u32>>,
}

impl Histogram {
    pub fn bins(&self) -> usize {
        self.counts.first().map_or(0, Vec::len)
    }

    /// The `[left, right)` edges of bin `i`.
    pub fn edges(&self, i: usize) -> (f64, f64) {
        let n = self.bins().max(1) as f64;
        let w = (self.hi - self.lo) / n;
        (self.lo + w * i as f64, self.lo + w * (i as f64 + 1.0))
    }

    pub fn max_count(&self) -> u32 {
        self.counts.iter().flatten().copied().max().unwrap_or(0)
    }
}

/// Sturges' rule on the largest series: few bins for little data, slowly more for more.
fn default_bins(samples: &[Vec<f64>]) -> usize {
    let n = samples.iter().map(Vec::len).max().unwrap_or(0).max(1);
    ((n as f64).log2().ceil() as usize + 1).clamp(1, 100)
}

/// Bins each series' samples into `bins` equal-width bins spanning all samples.
pub fn compute(samples: &[Vec<f64>], bins: Option<u32>) -> Histogram {
    let bins = bins.map_or_else(|| default_bins(samples), |b| b.max(1) as usize);
    let (lo, hi) = samples
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (0.0, 1.0) };
    let (lo, hi) = axis::ensure_span(lo, hi);
    let width = (hi - lo) / bins as f64;
    let counts = samples
        .iter()
        .map(|s| {
            let mut counts = vec![0u32; bins];
            for &v in s {
                // The maximum lands exactly on the right edge; it belongs to the last bin.
                let i = (((v - lo) / width).floor().max(0.0) as usize).min(bins - 1);
                counts[i] += 1;
            }
            counts
        })
        .collect();
    Histogram { lo, hi, counts }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_sample_once_including_the_maximum() {
        let h = compute(&[vec![0.0, 1.0, 2.0, 3.0, 4.0]], Some(4));
        assert_eq!(h.counts, vec![vec![1, 1, 1, 2]]);
        assert_eq!((h.lo, h.hi), (0.0, 4.0));
        assert_eq!(h.edges(1), (1.0, 2.0));
    }

    #[test]
    fn series_share_bins() {
        let h = compute(&[vec![0.0, 0.1], vec![9.9, 10.0]], Some(2));
        assert_eq!(h.counts, vec![vec![2, 0], vec![0, 2]]);
        assert_eq!(h.max_count(), 2);
    }

    #[test]
    fn identical_samples_get_a_nonempty_range() {
        let h = compute(&[vec![5.0; 10]], None);
        assert!(h.hi > h.lo);
        assert_eq!(h.counts[0].iter().sum::<u32>(), 10);
    }
}
