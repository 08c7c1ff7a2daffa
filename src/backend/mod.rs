//! The compute backends. [`Backend`]'s methods are the numeric kernels; `cpu` (rayon) and `cuda`
//! implement the same trait, and algorithms are written once against it.

pub mod cpu;
pub mod cuda;
pub mod gram;
pub mod kernels;
pub mod points;
pub mod sparse;
pub mod tall;

use std::ops::Range;

use crate::error::{Error, Result};
use crate::io::CsrChunk;

pub use cpu::CpuBackend;
pub use gram::{Gram, Projection, GRAM_TILE};
pub use kernels::{CpuLayoutLanes, CudaKnn, CudaLayout, KernelChoice};
pub use points::{EdgeList, LayoutParams, Points};
pub use sparse::{SparseOperator, SparseRows};
pub use tall::TallMatrix;

/// Per-gene (per-column) accumulators over many chunks, in f64.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneSums {
    /// Rows accumulated.
    pub n_rows: u64,
    /// Σ x per column.
    pub sum: Vec<f64>,
    /// Σ x² per column.
    pub sumsq: Vec<f64>,
    /// Rows with a stored non-zero value per column.
    pub nnz: Vec<u64>,
}

impl GeneSums {
    /// Zeroed accumulators for `n_cols` columns.
    pub fn new(n_cols: usize) -> Self {
        GeneSums {
            n_rows: 0,
            sum: vec![0.0; n_cols],
            sumsq: vec![0.0; n_cols],
            nnz: vec![0; n_cols],
        }
    }

    /// Adds another accumulator (e.g. a shard's partial result).
    pub fn merge(&mut self, other: &GeneSums) {
        assert_eq!(
            self.sum.len(),
            other.sum.len(),
            "GeneSums::merge: column count"
        );
        self.n_rows += other.n_rows;
        for (a, b) in self.sum.iter_mut().zip(&other.sum) {
            *a += b;
        }
        for (a, b) in self.sumsq.iter_mut().zip(&other.sumsq) {
            *a += b;
        }
        for (a, b) in self.nnz.iter_mut().zip(&other.nnz) {
            *a += b;
        }
    }

    /// Per-column means.
    pub fn means(&self) -> Vec<f64> {
        let n = self.n_rows.max(1) as f64;
        self.sum.iter().map(|s| s / n).collect()
    }

    /// Per-column variances with `ddof` (0 = population, 1 = sample).
    pub fn variances(&self, ddof: u64) -> Vec<f64> {
        let n = self.n_rows as f64;
        let denom = self.n_rows.saturating_sub(ddof).max(1) as f64;
        self.sum
            .iter()
            .zip(&self.sumsq)
            .map(|(s, q)| {
                let mean = s / n;
                (q / n - mean * mean) * n / denom
            })
            .collect()
    }
}

/// The numeric kernels. Every method has a CPU implementation and (where built) a CUDA twin.
///
/// Each kernel is a provided method that checks its arguments once, for every backend, and then
/// calls the backend's `*_kernel` method: both twins return the same
/// [`Error::InvalidArgument`] for the same bad call.
pub trait Backend: Send + Sync {
    /// Short name (`cpu`, `cuda:0`).
    fn name(&self) -> String;

    /// True when the kernels run on an accelerator (data crosses to device memory), false when
    /// they run on the host's cores.
    fn is_device(&self) -> bool;

    /// Per-row sums of stored values into `out` (length = rows). With `mask`, rows whose entry
    /// is false are skipped and get 0.
    fn row_totals(&self, chunk: &CsrChunk, mask: Option<&[bool]>, out: &mut [f64]) -> Result<()> {
        check_row_totals_args(chunk, mask, out)?;
        self.row_totals_kernel(chunk, mask, out)
    }

    /// Adds per-column Σv, Σv² and non-zero counts of the chunk's rows to `acc`, where v is each
    /// stored value x mapped by `map` (raw, scaled, log-normalized or clipped). With `mask`, rows
    /// whose entry is false are skipped.
    fn gene_moments(
        &self,
        chunk: &CsrChunk,
        mask: Option<&[bool]>,
        map: ValueMap<'_>,
        acc: &mut GeneSums,
    ) -> Result<()> {
        check_moments_args(chunk, mask, &map, acc)?;
        self.gene_moments_kernel(chunk, mask, map, acc)
    }

    /// `normalize_total` + `log1p` + gene subset of a chunk: each stored value becomes
    /// `ln(1 + x / divisors[i])` computed in f32 (scanpy's arithmetic), columns outside `genes`
    /// are dropped and the rest renumbered.
    fn normalize_log1p(
        &self,
        chunk: &CsrChunk,
        divisors: &[f32],
        genes: &GeneSubset,
    ) -> Result<CsrChunk> {
        check_normalize_args(chunk, divisors, genes)?;
        self.normalize_log1p_kernel(chunk, divisors, genes)
    }

    /// Adds the chunk's XᵀX (upper triangle), column sums Σx and row count to `acc`, in f64.
    /// Rows with unsorted or repeated column indices count as their canonical form.
    fn gram(&self, chunk: &CsrChunk, acc: &mut Gram) -> Result<()>;

    /// A gram accumulation over many chunks of `dim` columns: what [`Backend::gram`] adds, kept
    /// where the backend computes (device memory for CUDA) until [`GramAccumulator::finish`].
    fn gram_accumulator(&self, dim: usize) -> Result<Box<dyn GramAccumulator + '_>>;

    /// Sparse x dense projection: `out` (rows x k, row-major) = chunk · loadings − offset,
    /// accumulated in f32.
    fn project(&self, chunk: &CsrChunk, proj: &Projection, out: &mut [f32]) -> Result<()> {
        check_project_args(chunk, proj, out.len())?;
        self.project_kernel(chunk, proj, out)
    }

    /// Exact Euclidean k nearest neighbours of the points `queries` among all `points`. Each
    /// query's `k` slots of `idx`/`dist` hold the query itself first (distance 0), then its k−1
    /// nearest other points by increasing (distance, index), the distances computed in f64 and
    /// stored as f32: every backend returns the same lists (CUDA screens pairs with f32 or TF32
    /// estimates and recomputes the candidates exactly).
    fn knn_exact(
        &self,
        points: Points<'_>,
        queries: Range<usize>,
        k: usize,
        idx: &mut [u32],
        dist: &mut [f32],
    ) -> Result<()> {
        points::check_knn_args(points.len(), &queries, k, idx.len(), dist.len())?;
        self.knn_exact_kernel(points, queries, k, idx, dist)
    }

    /// A zeroed tall matrix of `a.n()` rows and `ncols` columns where the backend computes
    /// (device memory for CUDA), whose [`TallMatrix::apply`] multiplies by `a` with `scale` on
    /// both sides: the workspace of the spectral initialization's eigensolver (the same bits on
    /// every backend).
    fn tall_matrix<'a>(
        &'a self,
        a: SparseRows<'a>,
        scale: &'a [f64],
        ncols: usize,
    ) -> Result<Box<dyn TallMatrix + 'a>>;

    /// UMAP's optimization: `params.n_epochs` epochs of edge sampling with negative samples over
    /// `embedding` (n x `dim`, row-major, at most [`MAX_LAYOUT_DIM`] columns), calling
    /// `on_epoch` after each.
    fn optimize_layout(
        &self,
        embedding: &mut [f32],
        dim: usize,
        edges: &EdgeList,
        params: &LayoutParams,
        on_epoch: &(dyn Fn(usize) + Sync),
    ) -> Result<()> {
        points::check_layout_args(embedding.len(), dim, edges)?;
        self.optimize_layout_kernel(embedding, dim, edges, params, on_epoch)
    }

    /// [`Backend::row_totals`] on arguments it has checked (implementors' entry point; callers
    /// use the checked method).
    fn row_totals_kernel(
        &self,
        chunk: &CsrChunk,
        mask: Option<&[bool]>,
        out: &mut [f64],
    ) -> Result<()>;

    /// [`Backend::gene_moments`] on arguments it has checked.
    fn gene_moments_kernel(
        &self,
        chunk: &CsrChunk,
        mask: Option<&[bool]>,
        map: ValueMap<'_>,
        acc: &mut GeneSums,
    ) -> Result<()>;

    /// [`Backend::normalize_log1p`] on arguments it has checked.
    fn normalize_log1p_kernel(
        &self,
        chunk: &CsrChunk,
        divisors: &[f32],
        genes: &GeneSubset,
    ) -> Result<CsrChunk>;

    /// [`Backend::project`] on arguments it has checked (column indices included).
    fn project_kernel(&self, chunk: &CsrChunk, proj: &Projection, out: &mut [f32]) -> Result<()>;

    /// [`Backend::knn_exact`] on arguments it has checked.
    fn knn_exact_kernel(
        &self,
        points: Points<'_>,
        queries: Range<usize>,
        k: usize,
        idx: &mut [u32],
        dist: &mut [f32],
    ) -> Result<()>;

    /// [`Backend::optimize_layout`] on arguments it has checked (edge ends inside the
    /// embedding, at most [`MAX_LAYOUT_DIM`] columns).
    fn optimize_layout_kernel(
        &self,
        embedding: &mut [f32],
        dim: usize,
        edges: &EdgeList,
        params: &LayoutParams,
        on_epoch: &(dyn Fn(usize) + Sync),
    ) -> Result<()>;
}

/// Most layout dimensions [`Backend::optimize_layout`] takes.
pub const MAX_LAYOUT_DIM: usize = 8;

/// A running gram accumulation (see [`Backend::gram_accumulator`]).
pub trait GramAccumulator {
    /// Adds one chunk's XᵀX, column sums and rows.
    fn add(&mut self, chunk: &CsrChunk) -> Result<()>;

    /// The accumulated gram.
    fn finish(self: Box<Self>) -> Result<Gram>;
}

/// A [`GramAccumulator`] on the host: [`Backend::gram`] into a [`Gram`] in memory.
pub struct HostGramAccumulator<'a> {
    backend: &'a dyn Backend,
    gram: Gram,
}

impl<'a> HostGramAccumulator<'a> {
    /// An empty accumulation of `dim` columns through `backend`.
    pub fn new(backend: &'a dyn Backend, dim: usize) -> Self {
        HostGramAccumulator {
            backend,
            gram: Gram::new(dim),
        }
    }
}

impl GramAccumulator for HostGramAccumulator<'_> {
    fn add(&mut self, chunk: &CsrChunk) -> Result<()> {
        self.backend.gram(chunk, &mut self.gram)
    }

    fn finish(self: Box<Self>) -> Result<Gram> {
        Ok(self.gram)
    }
}

/// How a stored value x of row i, column j is mapped before [`Backend::gene_moments`]
/// accumulates it.
#[derive(Clone, Copy, Debug)]
pub enum ValueMap<'a> {
    /// x as stored.
    Raw,
    /// x · s\[i\] in f64 (one scale per row), e.g. s = 1/total for normalized moments from
    /// raw counts in the same pass as the totals.
    Scaled(&'a [f64]),
    /// `ln(1 + x / d[i])` in f32: the values `normalize_total` + `log1p` produce.
    LogNormalized(&'a [f32]),
    /// min(x, c\[j\]) in f64 (one clip per column): seurat_v3's clipped counts.
    Clipped(&'a [f64]),
}

/// `ln(1 + x)` for f32 values, within one f32 ulp of the exact value (as glibc's `log1pf`, which
/// numpy uses), about twice as fast: for |x| ≥ 1e-3, `1 + x` is exact in f64 and f64 `ln` rounded
/// to f32 is faithful; below that, `log1pf` itself.
#[inline]
pub fn log1p_f32(x: f32) -> f32 {
    if x.abs() >= 1e-3 {
        (x as f64 + 1.0).ln() as f32
    } else {
        x.ln_1p()
    }
}

/// A subset of columns (genes), renumbered in their original order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneSubset {
    /// New index of each old column, or `u32::MAX` when dropped.
    map: Vec<u32>,
    /// Old index of each new column.
    kept: Vec<u32>,
}

impl GeneSubset {
    /// Every one of `n` columns.
    pub fn all(n: usize) -> Self {
        GeneSubset {
            map: (0..n as u32).collect(),
            kept: (0..n as u32).collect(),
        }
    }

    /// The columns where `keep` is true.
    pub fn from_mask(keep: &[bool]) -> Self {
        let mut map = vec![u32::MAX; keep.len()];
        let mut kept = Vec::new();
        for (j, _) in keep.iter().enumerate().filter(|(_, &k)| k) {
            map[j] = kept.len() as u32;
            kept.push(j as u32);
        }
        GeneSubset { map, kept }
    }

    /// Columns before subsetting.
    pub fn n_old(&self) -> usize {
        self.map.len()
    }

    /// Columns kept.
    pub fn n_new(&self) -> usize {
        self.kept.len()
    }

    /// Old indices of the kept columns, ascending.
    pub fn kept(&self) -> &[u32] {
        &self.kept
    }

    /// The old-to-new map (`u32::MAX` = dropped), as kernels take it.
    pub fn map(&self) -> &[u32] {
        &self.map
    }
}

/// Checks the optional per-row and per-column arguments of a kernel against the chunk.
pub(crate) fn check_kernel_args(
    chunk: &CsrChunk,
    mask: Option<&[bool]>,
    map: &ValueMap<'_>,
) -> Result<()> {
    let n = chunk.n_rows();
    let bad = |what: &str, len: usize, want: usize| {
        Err(Error::InvalidArgument(format!(
            "kernel argument {what} has {len} entries, the chunk has {want}"
        )))
    };
    if let Some(m) = mask.filter(|m| m.len() != n) {
        return bad("mask", m.len(), n);
    }
    match map {
        ValueMap::Scaled(s) if s.len() != n => bad("row scale", s.len(), n),
        ValueMap::LogNormalized(d) if d.len() != n => bad("row divisors", d.len(), n),
        ValueMap::Clipped(c) if c.len() != chunk.n_cols => {
            bad("column clips", c.len(), chunk.n_cols)
        }
        _ => Ok(()),
    }
}

/// Checks [`Backend::row_totals`]'s arguments: [`check_kernel_args`] and an output per row.
pub(crate) fn check_row_totals_args(
    chunk: &CsrChunk,
    mask: Option<&[bool]>,
    out: &[f64],
) -> Result<()> {
    check_kernel_args(chunk, mask, &ValueMap::Raw)?;
    if out.len() != chunk.n_rows() {
        return Err(Error::InvalidArgument(format!(
            "row_totals: {} outputs for {} rows",
            out.len(),
            chunk.n_rows()
        )));
    }
    Ok(())
}

/// Checks [`Backend::gene_moments`]'s arguments: [`check_kernel_args`] and an accumulator as
/// wide as the chunk.
pub(crate) fn check_moments_args(
    chunk: &CsrChunk,
    mask: Option<&[bool]>,
    map: &ValueMap<'_>,
    acc: &GeneSums,
) -> Result<()> {
    check_kernel_args(chunk, mask, map)?;
    if acc.sum.len() != chunk.n_cols {
        return Err(Error::InvalidArgument(format!(
            "gene_moments: an accumulator of {} columns for a chunk of {}",
            acc.sum.len(),
            chunk.n_cols
        )));
    }
    Ok(())
}

/// Checks [`Backend::normalize_log1p`]'s arguments: a divisor per row, a gene map per column.
pub(crate) fn check_normalize_args(
    chunk: &CsrChunk,
    divisors: &[f32],
    genes: &GeneSubset,
) -> Result<()> {
    if divisors.len() != chunk.n_rows() || genes.n_old() != chunk.n_cols {
        return Err(Error::InvalidArgument(format!(
            "normalize_log1p: {} divisors and {} genes for a chunk of {} x {}",
            divisors.len(),
            genes.n_old(),
            chunk.n_rows(),
            chunk.n_cols
        )));
    }
    Ok(())
}

/// Checks [`Backend::project`]'s arguments: loadings for the chunk's columns, `rows x k`
/// outputs, and every column index inside the matrix.
pub(crate) fn check_project_args(
    chunk: &CsrChunk,
    proj: &Projection,
    out_len: usize,
) -> Result<()> {
    let (n, k) = (chunk.n_rows(), proj.k());
    if chunk.n_cols != proj.dim() || out_len != n * k {
        return Err(Error::InvalidArgument(format!(
            "project: a chunk of {n} x {} onto {} x {k} loadings into {out_len} outputs",
            chunk.n_cols,
            proj.dim(),
        )));
    }
    check_columns(chunk, "project")
}

/// Errors on a column index outside the chunk's columns (`kernel` names the caller).
pub(crate) fn check_columns(chunk: &CsrChunk, kernel: &str) -> Result<()> {
    let d = chunk.n_cols as u32;
    match chunk.indices.iter().find(|&&j| j >= d) {
        Some(j) => Err(Error::InvalidArgument(format!(
            "{kernel}: column index {j} in a matrix of {d} columns"
        ))),
        None => Ok(()),
    }
}

/// Which backend the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// CUDA when a usable GPU and kernels are present, else CPU.
    #[default]
    Auto,
    /// rayon on the CPU.
    Cpu,
    /// CUDA GPUs (`--devices`).
    Cuda,
}

/// Options that choose and size a backend.
#[derive(Clone, Debug, Default)]
pub struct BackendOptions {
    /// Requested kind.
    pub kind: BackendKind,
    /// CUDA device ordinals (repeat one to run two workers on it).
    pub devices: Vec<usize>,
    /// Kernel variants (the defaults are the measured best).
    pub kernels: KernelChoice,
}

/// Builds the backend the options ask for.
pub fn select(opts: &BackendOptions) -> Result<Box<dyn Backend>> {
    match opts.kind {
        BackendKind::Cpu => Ok(Box::new(CpuBackend::with_kernels(opts.kernels))),
        BackendKind::Cuda => cuda::open_with(&opts.devices, opts.kernels),
        // `auto` falls back silently: a machine without a GPU is the usual case, not news.
        // `scoop devices` says why CUDA did not open.
        BackendKind::Auto => match cuda::open_with(&opts.devices, opts.kernels) {
            Ok(b) => Ok(b),
            Err(_) => Ok(Box::new(CpuBackend::with_kernels(opts.kernels))),
        },
    }
}
