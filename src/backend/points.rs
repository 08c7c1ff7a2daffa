//! Inputs of the neighbor and layout kernels: dense points and the UMAP edge list.

use crate::error::{Error, Result};

/// `n` points of `dim` f32 coordinates, row-major (a cell's `X_pca` row each).
#[derive(Clone, Copy, Debug)]
pub struct Points<'a> {
    data: &'a [f32],
    dim: usize,
}

impl<'a> Points<'a> {
    /// Wraps row-major `data` of `dim` columns.
    pub fn new(data: &'a [f32], dim: usize) -> Result<Self> {
        if dim == 0 || !data.len().is_multiple_of(dim) {
            return Err(Error::InvalidArgument(format!(
                "{} coordinates do not make rows of {dim}",
                data.len()
            )));
        }
        if let Some(i) = data.iter().position(|x| !x.is_finite()) {
            return Err(Error::InvalidArgument(format!(
                "point {} has a non-finite coordinate ({})",
                i / dim,
                data[i]
            )));
        }
        Ok(Points { data, dim })
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// True when there are no points.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Coordinates per point.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Point `i`.
    #[inline]
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// All coordinates, row-major.
    pub fn data(&self) -> &'a [f32] {
        self.data
    }

    /// The mean point, in f64: per-block sums in parallel, added in block order (the same bits
    /// each run, whatever the threads).
    pub fn mean(&self) -> Vec<f64> {
        use rayon::prelude::*;
        let dim = self.dim;
        let block_sums: Vec<Vec<f64>> = self
            .data
            .par_chunks(MEAN_ROWS_PER_TASK * dim)
            .map(|block| {
                let mut s = vec![0f64; dim];
                for row in block.chunks_exact(dim) {
                    s.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
                }
                s
            })
            .collect();
        let mut mean = vec![0f64; dim];
        for s in &block_sums {
            mean.iter_mut().zip(s).for_each(|(m, &v)| *m += v);
        }
        mean.iter_mut().for_each(|m| *m /= self.len().max(1) as f64);
        mean
    }
}

/// Rows per task of [`Points::mean`].
const MEAN_ROWS_PER_TASK: usize = 8192;

/// Squared Euclidean distance in f32 with four partial sums (vectorizes without fast-math).
#[inline]
pub fn sq_dist_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for t in 0..8 {
            let d = x[t] - y[t];
            acc[t] += d * d;
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        let d = x - y;
        s += d * d;
    }
    s
}

/// Squared Euclidean distance of f32 points computed in f64 (the exact kNN path: no two
/// distances that differ in f64 compare equal).
#[inline]
pub fn sq_dist_f64(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for t in 0..4 {
            let d = x[t] as f64 - y[t] as f64;
            acc[t] += d * d;
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        let d = *x as f64 - *y as f64;
        s += d * d;
    }
    s
}

/// The directed edges UMAP's optimizer samples: `head → tail` with the epochs between samples
/// (`w_max / w`), in the order of the symmetric graph's CSR (rows = heads).
#[derive(Clone, Debug, Default)]
pub struct EdgeList {
    /// Moving end of each edge.
    pub head: Vec<u32>,
    /// Other end.
    pub tail: Vec<u32>,
    /// Epochs between two samples of the edge (≥ 1).
    pub epochs_per_sample: Vec<f32>,
}

/// Constants of one UMAP optimization (umap-learn's `optimize_layout_euclidean`).
#[derive(Clone, Copy, Debug)]
pub struct LayoutParams {
    /// Curve parameter a of 1 / (1 + a d^(2b)).
    pub a: f32,
    /// Curve parameter b.
    pub b: f32,
    /// Repulsion weight γ.
    pub gamma: f32,
    /// Negative samples per positive sample.
    pub negative_sample_rate: f32,
    /// Total epochs (the learning rate decays linearly to 0 over them).
    pub n_epochs: usize,
    /// Seed of the negative sampling.
    pub seed: u64,
}

/// Per-edge sampling clocks carried from epoch to epoch.
#[derive(Clone, Debug)]
pub struct EdgeClocks {
    /// Epoch at which each edge is next sampled.
    pub next_sample: Vec<f32>,
    /// Epoch at which each edge's next negative samples are due.
    pub next_negative: Vec<f32>,
}

impl EdgeClocks {
    /// Clocks at epoch 0 for `edges`.
    pub fn new(edges: &EdgeList, negative_sample_rate: f32) -> Self {
        EdgeClocks {
            next_sample: edges.epochs_per_sample.clone(),
            next_negative: edges
                .epochs_per_sample
                .iter()
                .map(|e| e / negative_sample_rate)
                .collect(),
        }
    }
}

/// Checks the arguments of [`crate::backend::Backend::knn_exact`]: 1 ≤ k ≤ n, the queries within
/// the points, and `queries.len() * k` index and distance slots.
pub(crate) fn check_knn_args(
    n: usize,
    queries: &std::ops::Range<usize>,
    k: usize,
    idx_len: usize,
    dist_len: usize,
) -> Result<()> {
    if k == 0 || k > n {
        return Err(Error::InvalidArgument(format!(
            "k = {k} neighbours asked of {n} points (k counts the point itself: 1..={n})"
        )));
    }
    if queries.start > queries.end
        || queries.end > n
        || idx_len != queries.len() * k
        || dist_len != idx_len
    {
        return Err(Error::InvalidArgument(format!(
            "knn: queries {queries:?} of {n} points with {idx_len} index and {dist_len} distance \
             slots for k = {k}"
        )));
    }
    Ok(())
}

/// Checks the arguments of [`crate::backend::Backend::optimize_layout`] and returns the number of
/// points: `dim` in 1..=[`crate::backend::MAX_LAYOUT_DIM`], whole rows, edge arrays of one length
/// and edge ends among the points.
pub(crate) fn check_layout_args(
    embedding_len: usize,
    dim: usize,
    edges: &EdgeList,
) -> Result<usize> {
    if dim == 0 || dim > crate::backend::MAX_LAYOUT_DIM || !embedding_len.is_multiple_of(dim) {
        return Err(Error::InvalidArgument(format!(
            "layout: {embedding_len} coordinates in {dim} dimensions (1..={} dimensions, whole rows)",
            crate::backend::MAX_LAYOUT_DIM
        )));
    }
    let n = embedding_len / dim;
    let m = edges.head.len();
    if edges.tail.len() != m || edges.epochs_per_sample.len() != m {
        return Err(Error::InvalidArgument(
            "layout: edge arrays differ in length".into(),
        ));
    }
    if let Some(&v) = edges
        .head
        .iter()
        .chain(&edges.tail)
        .find(|&&v| v as usize >= n)
    {
        return Err(Error::InvalidArgument(format!(
            "layout: edge end {v} outside the {n} points"
        )));
    }
    Ok(n)
}
