//! k-nearest-neighbour graphs of dense points (`X_pca` rows): exact search through the backend's
//! kernel, or NN-descent (random-projection-tree start, local joins) on the CPU for large n.
//!
//! Both return each point itself first (distance 0), then its k−1 nearest other points, as
//! scanpy's `neighbors` expects of a transformer.

mod candidates;
mod check;
mod descent;
mod heaps;
mod rptree;

use crate::backend::{Backend, Points};
use crate::error::{Error, Result};

pub(crate) use check::nearest_others;
pub use descent::{
    heap_factor, nn_descent, nn_descent_owned, DescentOptions, DescentReport, MAX_GROWS, MIN_RECALL,
};

/// The k nearest neighbours of every point, row-major n x k.
#[derive(Clone, Debug, PartialEq)]
pub struct Knn {
    /// Neighbours per point, the point itself included.
    pub k: usize,
    /// Neighbour indices (first of each row: the point itself).
    pub indices: Vec<u32>,
    /// Euclidean distances, ascending along each row (first: 0).
    pub distances: Vec<f32>,
}

impl Knn {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.indices.len() / self.k.max(1)
    }

    /// True when there are no points.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Neighbour indices of point `i`.
    pub fn row(&self, i: usize) -> &[u32] {
        &self.indices[i * self.k..(i + 1) * self.k]
    }

    /// Distances of point `i`'s neighbours.
    pub fn row_distances(&self, i: usize) -> &[f32] {
        &self.distances[i * self.k..(i + 1) * self.k]
    }
}

/// How neighbours are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KnnMethod {
    /// Exact up to 8191 points on the CPU (scanpy's brute-force threshold) and on
    /// any GPU; NN-descent above it on the CPU.
    #[default]
    Auto,
    /// Brute force: every pair (GEMM-class work on a GPU, n² on a CPU).
    Exact,
    /// NN-descent (CPU).
    Approx,
}

/// Largest n that `auto` searches exactly on the CPU (scanpy: brute force below 8192 cells).
pub const EXACT_MAX_CPU: usize = 8191;

impl KnnMethod {
    /// The method `auto` resolves to for `n` points on `backend`.
    pub fn resolve(self, n: usize, backend: &dyn Backend) -> KnnMethod {
        match self {
            KnnMethod::Auto if n <= EXACT_MAX_CPU || !on_cpu(backend) => KnnMethod::Exact,
            KnnMethod::Auto => KnnMethod::Approx,
            m => m,
        }
    }
}

fn check_k(n: usize, k: usize) -> Result<()> {
    if k < 2 || k > n {
        return Err(Error::InvalidArgument(format!(
            "--n-neighbors {k}: must be between 2 and the number of cells ({n}); it counts each \
             cell itself"
        )));
    }
    Ok(())
}

/// Whether `backend` is the CPU one (exact search is cheap on a GPU at any size, and wants
/// larger calls there).
fn on_cpu(backend: &dyn Backend) -> bool {
    !backend.is_device()
}

/// Queries per backend call of the exact search on the CPU (bounds the progress step, not
/// memory). A GPU gets every query in one call: each call pads and uploads every point, and a
/// call must fill the device.
const EXACT_QUERIES_PER_CALL: usize = 8192;

/// Exact kNN through [`Backend::knn_exact`]; `progress(points_done)` after each block.
pub fn exact(
    points: Points<'_>,
    k: usize,
    backend: &dyn Backend,
    progress: &dyn Fn(usize),
) -> Result<Knn> {
    let n = points.len();
    check_k(n, k)?;
    let mut indices = vec![0u32; n * k];
    let mut distances = vec![0f32; n * k];
    let per_call = if on_cpu(backend) {
        EXACT_QUERIES_PER_CALL
    } else {
        n.max(1)
    };
    for q0 in (0..n).step_by(per_call) {
        let q1 = (q0 + per_call).min(n);
        backend.knn_exact(
            points,
            q0..q1,
            k,
            &mut indices[q0 * k..q1 * k],
            &mut distances[q0 * k..q1 * k],
        )?;
        progress(q1 - q0);
    }
    Ok(Knn {
        k,
        indices,
        distances,
    })
}

/// Fraction of the true k−1 non-self neighbours that `approx` found, over the points `sample`
/// (`truth` rows correspond to `sample`).
pub fn recall(approx: &Knn, truth: &Knn, sample: &[usize]) -> f64 {
    let (mut hit, mut all) = (0usize, 0usize);
    for (t, &i) in sample.iter().enumerate() {
        let found = &approx.row(i)[1..];
        for j in &truth.row(t)[1..] {
            all += 1;
            hit += found.contains(j) as usize;
        }
    }
    hit as f64 / all.max(1) as f64
}

#[cfg(test)]
mod tests;
