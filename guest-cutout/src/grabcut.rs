//! GrabCut (Rother, Kolmogorov & Blake, "GrabCut: interactive foreground extraction using iterated graph
//! cuts", SIGGRAPH 2004), in the formulation of OpenCV's `cv::grabCut`, so that results compare with it:
//!
//! - every pixel has a label: sure background, sure foreground, probably background, probably
//!   foreground ([`Label`]); the caller sets them from the rectangle and the strokes;
//! - foreground and background each have a Gaussian mixture of [`COMPONENTS`] full-covariance colour
//!   models, first fitted by k-means;
//! - each iteration gives every pixel the component of its GMM that explains its colour best, refits the
//!   GMMs from those assignments, and relabels the uncertain pixels by a minimum cut of a graph whose
//!   terminal links are the GMMs' negative log-likelihoods and whose links between 8-neighbours are
//!   `gamma / distance * exp(-beta * |colour difference|²)`, `beta` the inverse of twice the image's mean
//!   squared neighbour difference.
//!
//! One difference in the graph, which changes no result: the sure pixels are not nodes. Their labels
//! are fixed (OpenCV ties them to their terminal by more than all their links together), so a link from
//! an uncertain pixel to a sure one is the same as a terminal link to that side, and is folded into it.
//! The graph then only spans the uncertain pixels (the rectangle), and its layout is built once and
//! reused by every iteration.

use crate::maxflow::{Builder, Graph};

/// Gaussians per colour model, as in the paper and OpenCV.
pub const COMPONENTS: usize = 5;
/// Weight of the smoothness term, as in the paper and OpenCV.
const GAMMA: f32 = 50.0;
/// Lloyd iterations of the k-means that seeds the GMMs (OpenCV's `kMeansItCount`).
const KMEANS_ITERATIONS: usize = 10;

/// A pixel's label; the values are OpenCV's `GC_BGD`, `GC_FGD`, `GC_PR_BGD`, `GC_PR_FGD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Label {
    Background = 0,
    Foreground = 1,
    ProbablyBackground = 2,
    ProbablyForeground = 3,
}

impl Label {
    pub fn is_foreground(self) -> bool {
        matches!(self, Label::Foreground | Label::ProbablyForeground)
    }

    fn is_sure(self) -> bool {
        matches!(self, Label::Foreground | Label::Background)
    }
}

/// Why segmentation cannot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    NoBackground,
    NoForeground,
}

/// An 8-bit RGB image, row-major.
pub struct Rgb<'a> {
    pub width: usize,
    pub height: usize,
    pub data: &'a [u8],
}

impl Rgb<'_> {
    fn colour(&self, i: usize) -> [f32; 3] {
        let p = &self.data[i * 3..i * 3 + 3];
        [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])]
    }
}

/// Runs `iterations` rounds of GrabCut, relabelling the uncertain pixels of `labels` in place.
/// `after_iteration` is called with each finished iteration's number, from 1.
pub fn segment(
    image: &Rgb,
    labels: &mut [Label],
    iterations: u32,
    mut after_iteration: impl FnMut(u32),
) -> Result<(), Error> {
    assert_eq!(labels.len(), image.width * image.height);
    assert_eq!(image.data.len(), labels.len() * 3);
    if !labels.iter().any(|l| !l.is_foreground()) {
        return Err(Error::NoBackground);
    }
    if !labels.iter().any(|l| l.is_foreground()) {
        return Err(Error::NoForeground);
    }
    let mut background = Gmm::from_kmeans(image, labels, false);
    let mut foreground = Gmm::from_kmeans(image, labels, true);
    let mut cut = Cut::new(image, labels);
    let mut components = vec![0u8; labels.len()];
    for iteration in 1..=iterations {
        for (i, (&label, component)) in labels.iter().zip(&mut components).enumerate() {
            let gmm = if label.is_foreground() {
                &foreground
            } else {
                &background
            };
            *component = gmm.best_component(image.colour(i));
        }
        background.learn(image, labels, &components, false);
        foreground.learn(image, labels, &components, true);
        cut.run(image, labels, &background, &foreground);
        after_iteration(iteration);
    }
    Ok(())
}

/// One Gaussian: its weight in the mixture, mean, and the inverse covariance with the normalisation
/// `weight / sqrt(det)` (the common `(2π)^-3/2` left out, as it cancels in every comparison).
#[derive(Debug, Clone, Copy, Default)]
struct Gaussian {
    weight: f64,
    mean: [f32; 3],
    /// Upper triangle of the inverse covariance: xx, xy, xz, yy, yz, zz.
    inverse: [f32; 6],
    /// `ln(weight / sqrt(det))`, for the log-density.
    log_norm: f32,
}

impl Gaussian {
    /// Half the squared Mahalanobis distance of `c` from the mean.
    fn half_distance(&self, c: [f32; 3]) -> f32 {
        let d = [c[0] - self.mean[0], c[1] - self.mean[1], c[2] - self.mean[2]];
        let m = &self.inverse;
        0.5 * (d[0] * (d[0] * m[0] + 2.0 * (d[1] * m[1] + d[2] * m[2]))
            + d[1] * (d[1] * m[3] + 2.0 * d[2] * m[4])
            + d[2] * d[2] * m[5])
    }
}

/// A Gaussian mixture colour model.
#[derive(Debug, Clone)]
struct Gmm {
    components: [Gaussian; COMPONENTS],
}

/// Sums over one component's pixels, for refitting it.
#[derive(Debug, Clone, Copy, Default)]
struct Moments {
    count: u64,
    sum: [f64; 3],
    /// Sums of products: xx, xy, xz, yy, yz, zz.
    products: [f64; 6],
}

impl Moments {
    fn add(&mut self, c: [f32; 3]) {
        let c = c.map(f64::from);
        self.count += 1;
        for (sum, v) in self.sum.iter_mut().zip(c) {
            *sum += v;
        }
        let p = &mut self.products;
        p[0] += c[0] * c[0];
        p[1] += c[0] * c[1];
        p[2] += c[0] * c[2];
        p[3] += c[1] * c[1];
        p[4] += c[1] * c[2];
        p[5] += c[2] * c[2];
    }
}

impl Gmm {
    /// Seeds the model of one side (`foreground` or not) by k-means of its pixels' colours.
    fn from_kmeans(image: &Rgb, labels: &[Label], foreground: bool) -> Gmm {
        let samples: Vec<[f32; 3]> = (0..labels.len())
            .filter(|&i| labels[i].is_foreground() == foreground)
            .map(|i| image.colour(i))
            .collect();
        let assignment = kmeans(&samples);
        let mut moments = [Moments::default(); COMPONENTS];
        for (c, &k) in samples.iter().zip(&assignment) {
            moments[k as usize].add(*c);
        }
        let mut gmm = Gmm {
            components: [Gaussian::default(); COMPONENTS],
        };
        gmm.fit(&moments);
        gmm
    }

    /// Refits from the current labels and component assignments; a side with no pixels keeps its
    /// model.
    fn learn(&mut self, image: &Rgb, labels: &[Label], components: &[u8], foreground: bool) {
        let mut moments = [Moments::default(); COMPONENTS];
        for (i, (&label, &k)) in labels.iter().zip(components).enumerate() {
            if label.is_foreground() == foreground {
                moments[k as usize].add(image.colour(i));
            }
        }
        if moments.iter().any(|m| m.count > 0) {
            self.fit(&moments);
        }
    }

    fn fit(&mut self, moments: &[Moments; COMPONENTS]) {
        let total: u64 = moments.iter().map(|m| m.count).sum();
        for (g, m) in self.components.iter_mut().zip(moments) {
            if m.count == 0 {
                *g = Gaussian::default();
                continue;
            }
            let n = m.count as f64;
            let mean = m.sum.map(|s| s / n);
            let p = &m.products;
            // Covariance, with a little white noise so that a flat colour region stays invertible.
            const NOISE: f64 = 0.01;
            let xx = p[0] / n - mean[0] * mean[0] + NOISE;
            let xy = p[1] / n - mean[0] * mean[1];
            let xz = p[2] / n - mean[0] * mean[2];
            let yy = p[3] / n - mean[1] * mean[1] + NOISE;
            let yz = p[4] / n - mean[1] * mean[2];
            let zz = p[5] / n - mean[2] * mean[2] + NOISE;
            let c00 = yy * zz - yz * yz;
            let c01 = xz * yz - xy * zz;
            let c02 = xy * yz - xz * yy;
            let det = (xx * c00 + xy * c01 + xz * c02).max(f64::MIN_POSITIVE);
            let inverse = [
                c00 / det,
                c01 / det,
                c02 / det,
                (xx * zz - xz * xz) / det,
                (xy * xz - xx * yz) / det,
                (xx * yy - xy * xy) / det,
            ];
            let weight = n / total as f64;
            *g = Gaussian {
                weight,
                mean: mean.map(|v| v as f32),
                inverse: inverse.map(|v| v as f32),
                log_norm: (weight.ln() - 0.5 * det.ln()) as f32,
            };
        }
    }

    /// The component most likely to have produced `c` (OpenCV's `whichComponent`, in logs).
    fn best_component(&self, c: [f32; 3]) -> u8 {
        let mut best = 0;
        let mut best_log = f32::NEG_INFINITY;
        for (k, g) in self.components.iter().enumerate() {
            if g.weight > 0.0 {
                // The component's density without its mixture weight, as OpenCV compares them.
                let log = g.log_norm - g.weight.ln() as f32 - g.half_distance(c);
                if log > best_log {
                    best = k as u8;
                    best_log = log;
                }
            }
        }
        best
    }

    /// `-ln p(c)`, the cost of giving colour `c` this model's label.
    fn cost(&self, c: [f32; 3]) -> f32 {
        let mut logs = [f32::NEG_INFINITY; COMPONENTS];
        let mut max = f32::NEG_INFINITY;
        for (log, g) in logs.iter_mut().zip(&self.components) {
            if g.weight > 0.0 {
                *log = g.log_norm - g.half_distance(c);
                max = max.max(*log);
            }
        }
        let sum: f32 = logs.iter().map(|&l| (l - max).exp()).sum();
        // Finite even for colours no component explains: keeps the graph's capacities finite.
        (-(max + sum.ln())).min(1e6)
    }
}

/// k-means with k-means++ seeding on `samples`, returning each sample's cluster. Deterministic.
fn kmeans(samples: &[[f32; 3]]) -> Vec<u8> {
    let mut assignment = vec![0u8; samples.len()];
    if samples.is_empty() {
        return assignment;
    }
    let dist2 = |a: &[f32; 3], b: &[f32; 3]| (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2);
    // A fixed-seed generator: the same input gives the same result, as a cacheable kind must.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut centres = vec![samples[(random() * samples.len() as f64) as usize % samples.len()]];
    let mut nearest: Vec<f32> = samples.iter().map(|s| dist2(s, &centres[0])).collect();
    while centres.len() < COMPONENTS {
        let total: f64 = nearest.iter().map(|&d| f64::from(d)).sum();
        if total <= 0.0 {
            break; // fewer distinct colours than clusters
        }
        let mut target = random() * total;
        let mut pick = samples.len() - 1;
        for (i, &d) in nearest.iter().enumerate() {
            target -= f64::from(d);
            if target <= 0.0 {
                pick = i;
                break;
            }
        }
        let centre = samples[pick];
        for (n, s) in nearest.iter_mut().zip(samples) {
            *n = n.min(dist2(s, &centre));
        }
        centres.push(centre);
    }
    for _ in 0..KMEANS_ITERATIONS {
        let mut sums = vec![([0f64; 3], 0u64); centres.len()];
        for (s, a) in samples.iter().zip(&mut assignment) {
            let mut best = (f32::INFINITY, 0);
            for (k, c) in centres.iter().enumerate() {
                let d = dist2(s, c);
                if d < best.0 {
                    best = (d, k);
                }
            }
            *a = best.1 as u8;
            let (sum, count) = &mut sums[best.1];
            for (sum, &v) in sum.iter_mut().zip(s) {
                *sum += f64::from(v);
            }
            *count += 1;
        }
        for (c, (sum, count)) in centres.iter_mut().zip(&sums) {
            if *count > 0 {
                *c = sum.map(|v| (v / *count as f64) as f32);
            }
        }
    }
    assignment
}

/// The graph over the uncertain pixels, built once.
struct Cut {
    graph: Graph,
    /// Pixel index of each node.
    pixels: Vec<u32>,
    /// Per node: the links to sure foreground (source side) and sure background (sink side) neighbours.
    fixed: Vec<(f32, f32)>,
}

/// The neighbours already visited in a row-major scan: left, up-left, up, up-right, as (dx, dy).
const BACK_NEIGHBOURS: [(isize, isize); 4] = [(-1, 0), (-1, -1), (0, -1), (1, -1)];

impl Cut {
    fn new(image: &Rgb, labels: &[Label]) -> Cut {
        let beta = beta(image);
        let mut node_of = vec![u32::MAX; labels.len()];
        let mut pixels = Vec::new();
        for (i, label) in labels.iter().enumerate() {
            if !label.is_sure() {
                node_of[i] = pixels.len() as u32;
                pixels.push(i as u32);
            }
        }
        let mut fixed = vec![(0f32, 0f32); pixels.len()];
        let mut builder = Builder::new(pixels.len() as u32, pixels.len() * 4);
        for_each_pair(image, |i, j, diagonal, diff| {
            let length = if diagonal { std::f32::consts::SQRT_2 } else { 1.0 };
            let w = GAMMA / length * (-beta * diff).exp();
            match (node_of[i], node_of[j]) {
                (u32::MAX, u32::MAX) => {}
                (u32::MAX, n) => fold(&mut fixed[n as usize], labels[i], w),
                (n, u32::MAX) => fold(&mut fixed[n as usize], labels[j], w),
                (a, b) => builder.add_edge(a, b, w, w),
            }
        });
        Cut {
            graph: builder.build(),
            pixels,
            fixed,
        }
    }

    /// Sets the terminal links from the models, cuts, and relabels the uncertain pixels.
    fn run(&mut self, image: &Rgb, labels: &mut [Label], background: &Gmm, foreground: &Gmm) {
        self.graph.reset();
        for (node, (&pixel, &(to_fg, to_bg))) in self.pixels.iter().zip(&self.fixed).enumerate() {
            let c = image.colour(pixel as usize);
            // Cutting the source link labels the pixel background, which costs its background cost.
            let source = background.cost(c) + to_fg;
            let sink = foreground.cost(c) + to_bg;
            self.graph.add_tweights(node as u32, source, sink);
        }
        self.graph.maxflow();
        for (node, &pixel) in self.pixels.iter().enumerate() {
            labels[pixel as usize] = if self.graph.is_source(node as u32) {
                Label::ProbablyForeground
            } else {
                Label::ProbablyBackground
            };
        }
    }
}

/// Adds the link to a sure neighbour to the terminal link of its side.
fn fold(fixed: &mut (f32, f32), sure: Label, weight: f32) {
    if sure == Label::Foreground {
        fixed.0 += weight;
    } else {
        fixed.1 += weight;
    }
}

/// `1 / (2 * mean squared colour difference)` over all 8-neighbour pairs; 0 for a flat image.
fn beta(image: &Rgb) -> f32 {
    let mut sum = 0f64;
    let mut count = 0u64;
    for_each_pair(image, |_, _, _, diff| {
        sum += f64::from(diff);
        count += 1;
    });
    if sum <= f64::EPSILON {
        0.0
    } else {
        (count as f64 / (2.0 * sum)) as f32
    }
}

/// Calls `f(i, j, diagonal, squared colour difference)` once for every pair of 8-neighbours.
fn for_each_pair(image: &Rgb, mut f: impl FnMut(usize, usize, bool, f32)) {
    let width = image.width;
    for y in 0..image.height {
        for x in 0..width {
            let i = y * width + x;
            let c = image.colour(i);
            for (dx, dy) in BACK_NEIGHBOURS {
                let (nx, ny) = (x as isize + dx, y as isize + dy);
                if nx < 0 || ny < 0 || nx as usize >= width {
                    continue;
                }
                let j = ny as usize * width + nx as usize;
                let d = image.colour(j);
                let diff = (c[0] - d[0]).powi(2) + (c[1] - d[1]).powi(2) + (c[2] - d[2]).powi(2);
                f(i, j, dx != 0 && dy != 0, diff);
            }
        }
    }
}
