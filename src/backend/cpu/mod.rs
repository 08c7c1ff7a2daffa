//! The CPU backend: every kernel on rayon, and the reference the CUDA kernels are tested against.

mod gram;
mod knn;
mod layout;
mod project;
pub mod sparse;
pub mod tall;

use std::ops::Range;

use rayon::prelude::*;

use super::{
    log1p_f32, Backend, EdgeList, GeneSubset, GeneSums, Gram, GramAccumulator, HostGramAccumulator,
    KernelChoice, LayoutParams, Points, Projection, SparseOperator, SparseRows, TallMatrix,
    ValueMap,
};
use crate::error::Result;
use crate::io::CsrChunk;

/// Rows per rayon task; big enough to amortize per-task accumulators.
const ROWS_PER_TASK: usize = 512;

/// rayon implementation of [`Backend`].
#[derive(Clone, Debug, Default)]
pub struct CpuBackend {
    kernels: KernelChoice,
}

impl CpuBackend {
    /// The CPU backend on rayon's global pool (sized by `--threads`), default kernels.
    pub const fn new() -> Self {
        Self::with_kernels(KernelChoice::DEFAULT)
    }

    /// The CPU backend running the kernel variants `kernels` names (its `cpu_layout`).
    pub const fn with_kernels(kernels: KernelChoice) -> Self {
        CpuBackend { kernels }
    }

    /// `diag(scale) · a` applied on rayon's pool to many narrow dense blocks: the product the
    /// spectral initialization's [`TallMatrix::apply`] runs, on its own for the CUDA parity suite
    /// and the benchmarks (the same bits as [`crate::backend::cuda::CudaBackend::sparse_operator`]).
    pub fn sparse_operator<'a>(
        &self,
        a: SparseRows<'a>,
        scale: &'a [f64],
    ) -> Result<Box<dyn SparseOperator + 'a>> {
        Ok(Box::new(sparse::CpuSparseOperator::new(a, scale)?))
    }
}

/// Most partial accumulators one reduction over a chunk's rows keeps at once.
const MAX_PARTIALS: usize = 16;

/// Contiguous row ranges covering `0..n` for a reduction: at least [`ROWS_PER_TASK`] rows each
/// (but the last), at most [`MAX_PARTIALS`] of them. They depend on `n` alone, never on the
/// thread count or on scheduling, so partials merged in range order give the same bits on every
/// run.
fn reduction_blocks(n: usize) -> Vec<Range<usize>> {
    let len = n.div_ceil(MAX_PARTIALS).max(ROWS_PER_TASK);
    (0..n).step_by(len).map(|s| s..(s + len).min(n)).collect()
}

/// Row ranges of at most [`ROWS_PER_TASK`] rows covering `0..n`.
fn row_tasks(n: usize) -> Vec<Range<usize>> {
    (0..n)
        .step_by(ROWS_PER_TASK)
        .map(|s| s..(s + ROWS_PER_TASK).min(n))
        .collect()
}

/// Accumulates mapped values of `rows` into `p`; `f(x, row, col)` is the value map, resolved
/// once per task so the inner loop is monomorphic.
fn accumulate<F: Fn(f32, usize, usize) -> f64>(
    chunk: &CsrChunk,
    mask: Option<&[bool]>,
    rows: Range<usize>,
    p: &mut GeneSums,
    f: F,
) {
    for i in rows {
        if mask.is_some_and(|m| !m[i]) {
            continue;
        }
        p.n_rows += 1;
        let (idx, val) = chunk.row(i);
        for (&j, &x) in idx.iter().zip(val) {
            let j = j as usize;
            let v = f(x, i, j);
            p.sum[j] += v;
            p.sumsq[j] += v * v;
            p.nnz[j] += (x != 0.0) as u64;
        }
    }
}

impl Backend for CpuBackend {
    fn is_device(&self) -> bool {
        false
    }

    fn name(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }

    fn row_totals_kernel(
        &self,
        chunk: &CsrChunk,
        mask: Option<&[bool]>,
        out: &mut [f64],
    ) -> Result<()> {
        out.par_iter_mut().enumerate().for_each(|(i, o)| {
            *o = if mask.is_none_or(|m| m[i]) {
                chunk.row(i).1.iter().map(|&v| v as f64).sum()
            } else {
                0.0
            };
        });
        Ok(())
    }

    fn gene_moments_kernel(
        &self,
        chunk: &CsrChunk,
        mask: Option<&[bool]>,
        map: ValueMap<'_>,
        acc: &mut GeneSums,
    ) -> Result<()> {
        let n_cols = chunk.n_cols;
        // Fixed blocks merged in order: the sums' rounding is the same on every run.
        let partials: Vec<GeneSums> = reduction_blocks(chunk.n_rows())
            .into_par_iter()
            .map(|rows| {
                let mut p = GeneSums::new(n_cols);
                match map {
                    ValueMap::Raw => accumulate(chunk, mask, rows, &mut p, |x, _, _| x as f64),
                    ValueMap::Scaled(s) => {
                        accumulate(chunk, mask, rows, &mut p, |x, i, _| x as f64 * s[i])
                    }
                    ValueMap::LogNormalized(d) => {
                        accumulate(chunk, mask, rows, &mut p, |x, i, _| {
                            log1p_f32(x / d[i]) as f64
                        })
                    }
                    ValueMap::Clipped(c) => {
                        accumulate(chunk, mask, rows, &mut p, |x, _, j| (x as f64).min(c[j]))
                    }
                }
                p
            })
            .collect();
        for p in &partials {
            acc.merge(p);
        }
        Ok(())
    }

    fn normalize_log1p_kernel(
        &self,
        chunk: &CsrChunk,
        divisors: &[f32],
        genes: &GeneSubset,
    ) -> Result<CsrChunk> {
        let map = genes.map();
        let blocks: Vec<(Vec<usize>, Vec<u32>, Vec<f32>)> = row_tasks(chunk.n_rows())
            .into_par_iter()
            .map(|rows| {
                let mut lens = Vec::with_capacity(rows.len());
                let mut idx = Vec::new();
                let mut val = Vec::new();
                for i in rows {
                    let d = divisors[i];
                    let before = idx.len();
                    let (ci, cv) = chunk.row(i);
                    for (&j, &x) in ci.iter().zip(cv) {
                        let m = map[j as usize];
                        if m != u32::MAX {
                            idx.push(m);
                            val.push(log1p_f32(x / d));
                        }
                    }
                    lens.push(idx.len() - before);
                }
                (lens, idx, val)
            })
            .collect();
        let nnz: usize = blocks.iter().map(|b| b.1.len()).sum();
        let mut out = CsrChunk {
            rows: chunk.rows.clone(),
            n_cols: genes.n_new(),
            indptr: Vec::with_capacity(chunk.n_rows() + 1),
            indices: Vec::with_capacity(nnz),
            data: Vec::with_capacity(nnz),
        };
        out.indptr.push(0);
        for (lens, idx, val) in blocks {
            for l in lens {
                out.indptr.push(out.indptr.last().copied().unwrap_or(0) + l);
            }
            out.indices.extend_from_slice(&idx);
            out.data.extend_from_slice(&val);
        }
        Ok(out)
    }

    fn gram(&self, chunk: &CsrChunk, acc: &mut Gram) -> Result<()> {
        gram::accumulate(chunk, acc)
    }

    fn gram_accumulator(&self, dim: usize) -> Result<Box<dyn GramAccumulator + '_>> {
        Ok(Box::new(HostGramAccumulator::new(self, dim)))
    }

    fn project_kernel(&self, chunk: &CsrChunk, proj: &Projection, out: &mut [f32]) -> Result<()> {
        project::project(chunk, proj, out)
    }

    fn knn_exact_kernel(
        &self,
        points: Points<'_>,
        queries: Range<usize>,
        k: usize,
        idx: &mut [u32],
        dist: &mut [f32],
    ) -> Result<()> {
        knn::knn_exact(points, queries, k, idx, dist)
    }

    fn tall_matrix<'a>(
        &'a self,
        a: SparseRows<'a>,
        scale: &'a [f64],
        ncols: usize,
    ) -> Result<Box<dyn TallMatrix + 'a>> {
        Ok(Box::new(tall::CpuTall::new(a, scale, ncols)?))
    }

    fn optimize_layout_kernel(
        &self,
        embedding: &mut [f32],
        dim: usize,
        edges: &EdgeList,
        params: &LayoutParams,
        on_epoch: &(dyn Fn(usize) + Sync),
    ) -> Result<()> {
        layout::optimize_layout(
            embedding,
            dim,
            edges,
            params,
            on_epoch,
            self.kernels.cpu_layout,
        )
    }
}
