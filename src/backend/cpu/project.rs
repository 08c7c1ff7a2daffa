//! Sparse x dense projection of a CSR chunk on the CPU: `out = X · loadings − offset`.
//!
//! Each output row is a sum of loading rows scaled by the row's stored values (an AXPY of
//! length k per stored value) accumulated in f32. The body is compiled twice: generic, and with
//! AVX2 + FMA enabled (chosen at run time), where the AXPY runs 8 lanes wide.

use rayon::prelude::*;

use crate::backend::gram::Projection;
use crate::error::Result;
use crate::io::CsrChunk;

/// Rows per rayon task.
const ROWS_PER_TASK: usize = 64;

#[inline(always)]
fn project_rows(chunk: &CsrChunk, first_row: usize, proj: &Projection, out: &mut [f32]) {
    let k = proj.k();
    let (v, offset) = (proj.loadings(), proj.offset());
    for (r, line) in out.chunks_exact_mut(k).enumerate() {
        for (o, &m) in line.iter_mut().zip(offset) {
            *o = -m;
        }
        let (idx, val) = chunk.row(first_row + r);
        // Two stored values per sweep over the output row: half the loads and stores of it.
        let mut pairs = idx.chunks_exact(2).zip(val.chunks_exact(2));
        for (j, x) in &mut pairs {
            let w0 = &v[j[0] as usize * k..(j[0] as usize + 1) * k];
            let w1 = &v[j[1] as usize * k..(j[1] as usize + 1) * k];
            for ((o, &a), &b) in line.iter_mut().zip(w0).zip(w1) {
                *o += x[0] * a + x[1] * b;
            }
        }
        if idx.len() % 2 == 1 {
            let (j, x) = (idx[idx.len() - 1] as usize, val[val.len() - 1]);
            for (o, &l) in line.iter_mut().zip(&v[j * k..(j + 1) * k]) {
                *o += x * l;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn project_rows_avx2(chunk: &CsrChunk, first_row: usize, proj: &Projection, out: &mut [f32]) {
    project_rows(chunk, first_row, proj, out)
}

fn project_rows_dispatch(chunk: &CsrChunk, first_row: usize, proj: &Projection, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function was compiled for.
        return unsafe { project_rows_avx2(chunk, first_row, proj, out) };
    }
    project_rows(chunk, first_row, proj, out)
}

/// `out` (rows x k, row-major) = chunk · loadings − offset.
pub(super) fn project(chunk: &CsrChunk, proj: &Projection, out: &mut [f32]) -> Result<()> {
    let k = proj.k();
    if k == 0 {
        return Ok(());
    }
    out.par_chunks_mut(ROWS_PER_TASK * k)
        .enumerate()
        .for_each(|(t, block)| project_rows_dispatch(chunk, t * ROWS_PER_TASK, proj, block));
    Ok(())
}
