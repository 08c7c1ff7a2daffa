//! Zero-centred PCA by the covariance route scanpy takes for sparse dask input:
//! one streaming pass accumulates G = XᵀX and column sums (f64), C = G/n − μμᵀ (population
//! covariance), the top k eigenpairs of C give components and variances, and a second pass
//! projects every row: X·V − μ·V.
//!
//! Sign convention: each component is flipped so that its entry of largest magnitude (the first
//! such on ties) is positive, the rule scikit-learn's `PCA` applies (`svd_flip` on the
//! components). scanpy's dask path applies no rule, so its signs are arbitrary; compare up to
//! sign.

use faer::Mat;

use super::eigen::{top_eigen, EigenSolver};
use super::values::{check_chunk, ValueRule};
use crate::backend::{Backend, Gram, Projection};
use crate::error::{Error, Result};
use crate::io::CsrChunk;

/// A fitted PCA: what `uns['pca']` and `varm['PCs']` hold, plus what projection needs.
#[derive(Clone, Debug)]
pub struct PcaFit {
    /// Rows (cells) the fit saw.
    pub n_rows: u64,
    /// Genes.
    pub dim: usize,
    /// Components kept.
    pub k: usize,
    /// Per-gene means μ.
    pub mean: Vec<f64>,
    /// Components as columns, `dim x k` row-major (scanpy's `varm['PCs']` layout).
    pub loadings: Vec<f64>,
    /// Eigenvalues of C, descending (`uns['pca']['variance']`, ddof = 0).
    pub variance: Vec<f64>,
    /// variance / trace(C) (`uns['pca']['variance_ratio']`).
    pub variance_ratio: Vec<f64>,
    /// trace(C): the total variance of the centred data.
    pub total_variance: f64,
    /// The eigen solver that ran.
    pub solver: EigenSolver,
    /// Its iterations (0 for the full solve).
    pub iterations: usize,
}

/// Streams `chunks` through the backend's gram kernel, refusing NaN and infinite values (see
/// [`check_chunk`]). `on_chunk` sees each chunk's row count (for progress).
pub fn accumulate_gram<C: std::ops::Deref<Target = CsrChunk>>(
    chunks: impl IntoIterator<Item = Result<C>>,
    backend: &dyn Backend,
    dim: usize,
    mut on_chunk: impl FnMut(usize),
) -> Result<Gram> {
    let mut acc = backend.gram_accumulator(dim)?;
    for chunk in chunks {
        let chunk = chunk?;
        check_chunk(&chunk, ValueRule::Finite)?;
        acc.add(&chunk)?;
        on_chunk(chunk.n_rows());
    }
    acc.finish()
}

/// Checks `n_comps` against the data: 1 ≤ n_comps ≤ min(n_cells, n_genes).
pub fn check_n_comps(n_comps: usize, n_rows: u64, dim: usize) -> Result<()> {
    let limit = (n_rows as usize).min(dim);
    if n_comps == 0 || n_comps > limit {
        return Err(Error::InvalidArgument(format!(
            "--n-comps {n_comps} must be between 1 and min(n_cells = {n_rows}, n_genes = {dim}) \
             = {limit}"
        )));
    }
    Ok(())
}

/// C = G/n − μμᵀ and μ, in f64.
pub fn covariance(gram: &Gram) -> (Mat<f64>, Vec<f64>) {
    let d = gram.dim();
    let n = gram.n_rows.max(1) as f64;
    let mean: Vec<f64> = gram.sum.iter().map(|s| s / n).collect();
    let c = Mat::from_fn(d, d, |i, j| gram.get(i, j) / n - mean[i] * mean[j]);
    (c, mean)
}

/// Fits `n_comps` components from an accumulated gram (consumed: it is freed before the
/// eigendecomposition allocates).
pub fn fit(gram: Gram, n_comps: usize, solver: EigenSolver) -> Result<PcaFit> {
    let d = gram.dim();
    let n_rows = gram.n_rows;
    check_n_comps(n_comps, n_rows, d)?;
    let (c, mean) = covariance(&gram);
    drop(gram);
    let total_variance: f64 = (0..d).map(|i| c[(i, i)]).sum();
    let top = top_eigen(c.as_ref(), n_comps, solver)?;
    drop(c);
    let k = n_comps;
    let mut loadings = vec![0.0; d * k];
    for i in 0..k {
        let col = top.vectors.col(i);
        // The first entry of largest magnitude decides the sign.
        let mut best = 0;
        for r in 1..d {
            if col[r].abs() > col[best].abs() {
                best = r;
            }
        }
        let sign = if col[best] < 0.0 { -1.0 } else { 1.0 };
        for r in 0..d {
            loadings[r * k + i] = sign * col[r];
        }
    }
    let variance_ratio = top
        .values
        .iter()
        .map(|v| {
            if total_variance > 0.0 {
                v / total_variance
            } else {
                0.0
            }
        })
        .collect();
    Ok(PcaFit {
        n_rows,
        dim: d,
        k,
        mean,
        loadings,
        variance: top.values,
        variance_ratio,
        total_variance,
        solver: top.solver,
        iterations: top.iterations,
    })
}

impl PcaFit {
    /// The projection onto the components with the mean correction μ·V.
    pub fn projection(&self) -> Result<Projection> {
        let k = self.k;
        let mut offset = vec![0.0f64; k];
        for (j, &m) in self.mean.iter().enumerate() {
            for (o, &v) in offset.iter_mut().zip(&self.loadings[j * k..(j + 1) * k]) {
                *o += m * v;
            }
        }
        Projection::new(
            self.dim,
            k,
            self.loadings.iter().map(|&v| v as f32).collect(),
            offset.iter().map(|&v| v as f32).collect(),
        )
    }
}

/// Projects one chunk: `rows x k` coordinates, row-major.
pub fn project_chunk(
    chunk: &CsrChunk,
    backend: &dyn Backend,
    proj: &Projection,
) -> Result<Vec<f32>> {
    let mut out = vec![0.0f32; chunk.n_rows() * proj.k()];
    backend.project(chunk, proj, &mut out)?;
    Ok(out)
}
