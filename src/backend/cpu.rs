//! The CPU backend: every kernel on rayon, and the reference the CUDA kernels are tested against.

use rayon::prelude::*;

use super::{check_row_args, Backend, GeneSums};
use crate::error::Result;
use crate::io::CsrChunk;

/// Rows per rayon task; big enough to amortize per-task accumulators.
const ROWS_PER_TASK: usize = 512;

/// rayon implementation of [`Backend`].
#[derive(Clone, Debug, Default)]
pub struct CpuBackend;

impl CpuBackend {
    /// The CPU backend on rayon's global pool (sized by `--threads`).
    pub fn new() -> Self {
        CpuBackend
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }

    fn row_totals(&self, chunk: &CsrChunk, mask: Option<&[bool]>, out: &mut [f64]) -> Result<()> {
        check_row_args(chunk, mask, None)?;
        assert_eq!(out.len(), chunk.n_rows(), "row_totals: output length");
        out.par_iter_mut().enumerate().for_each(|(i, o)| {
            *o = if mask.is_none_or(|m| m[i]) {
                chunk.row(i).1.iter().map(|&v| v as f64).sum()
            } else {
                0.0
            };
        });
        Ok(())
    }

    fn gene_sums(
        &self,
        chunk: &CsrChunk,
        mask: Option<&[bool]>,
        row_scale: Option<&[f64]>,
        acc: &mut GeneSums,
    ) -> Result<()> {
        check_row_args(chunk, mask, row_scale)?;
        let n_cols = chunk.n_cols;
        assert_eq!(acc.sum.len(), n_cols, "gene_sums: accumulator width");
        let n = chunk.n_rows();
        let tasks: Vec<std::ops::Range<usize>> = (0..n)
            .step_by(ROWS_PER_TASK)
            .map(|s| s..(s + ROWS_PER_TASK).min(n))
            .collect();
        let partial = tasks
            .into_par_iter()
            .fold(
                || GeneSums::new(n_cols),
                |mut p, rows| {
                    for i in rows {
                        if mask.is_some_and(|m| !m[i]) {
                            continue;
                        }
                        p.n_rows += 1;
                        let s = row_scale.map_or(1.0, |s| s[i]);
                        let (idx, val) = chunk.row(i);
                        for (&j, &v) in idx.iter().zip(val) {
                            let x = v as f64 * s;
                            let j = j as usize;
                            p.sum[j] += x;
                            p.sumsq[j] += x * x;
                            p.nnz[j] += (v != 0.0) as u64;
                        }
                    }
                    p
                },
            )
            .reduce_with(|mut a, b| {
                a.merge(&b);
                a
            });
        if let Some(p) = partial {
            acc.merge(&p);
        }
        Ok(())
    }
}
