//! The chunk kernels on one worker's shard of rows: row totals, gene moments, normalize + log1p
//! and the projection. Each uploads its rows, launches, and downloads a partial result that the
//! backend stitches (rows) or reduces (columns) on the host.

use std::ops::Range;

use cudarc::driver::CudaSlice;

use super::worker::{launch, Worker, NULL};
use crate::backend::{GeneSubset, GeneSums, Projection, ValueMap};
use crate::error::Result;
use crate::io::CsrChunk;

/// The mask entries of `rows` as bytes for the device, or `None`.
fn mask_bytes(mask: Option<&[bool]>, rows: &Range<usize>) -> Option<Vec<u8>> {
    mask.map(|m| m[rows.clone()].iter().map(|&b| b as u8).collect())
}

/// Row sums of `rows` (0 where masked out).
pub(super) fn row_totals(
    w: &Worker,
    chunk: &CsrChunk,
    rows: Range<usize>,
    mask: Option<&[bool]>,
    out: &mut [f64],
) -> Result<()> {
    let csr = w.upload_rows(chunk, rows.clone())?;
    let mask = mask_bytes(mask, &rows).map(|m| w.upload(&m)).transpose()?;
    let dev_out = w.zeros::<f64>(rows.len())?;
    let cfg = Worker::row_launch(csr.n_rows);
    match &mask {
        Some(m) => launch!(
            w,
            row_totals,
            cfg,
            &csr.indptr,
            &csr.base,
            &csr.data,
            m,
            &csr.n_rows,
            &dev_out
        )?,
        None => launch!(
            w,
            row_totals,
            cfg,
            &csr.indptr,
            &csr.base,
            &csr.data,
            &NULL,
            &csr.n_rows,
            &dev_out
        )?,
    }
    w.download(&dev_out, out)
}

/// Value-map codes of kernels/rowops.cu.
const MAP_RAW: i32 = 0;
const MAP_SCALED: i32 = 1;
const MAP_LOGNORM: i32 = 2;
const MAP_CLIPPED: i32 = 3;

/// Column moments of the mapped values of `rows` (the row count is the caller's).
pub(super) fn gene_moments(
    w: &Worker,
    chunk: &CsrChunk,
    rows: Range<usize>,
    mask: Option<&[bool]>,
    map: ValueMap<'_>,
) -> Result<GeneSums> {
    let d = chunk.n_cols;
    let csr = w.upload_rows(chunk, rows.clone())?;
    let mask = mask_bytes(mask, &rows).map(|m| w.upload(&m)).transpose()?;
    let (sum, sumsq, nnz) = (w.zeros::<f64>(d)?, w.zeros::<f64>(d)?, w.zeros::<u64>(d)?);
    // Per-row argument (f64 scale or f32 divisor) and per-column clip, as device buffers; the
    // unused ones are one zero element.
    let (code, scale, div, clip): (i32, CudaSlice<f64>, CudaSlice<f32>, CudaSlice<f64>) = match map
    {
        ValueMap::Raw => (MAP_RAW, w.zeros(1)?, w.zeros(1)?, w.zeros(1)?),
        ValueMap::Scaled(s) => (
            MAP_SCALED,
            w.upload(&s[rows.clone()])?,
            w.zeros(1)?,
            w.zeros(1)?,
        ),
        ValueMap::LogNormalized(dv) => (
            MAP_LOGNORM,
            w.zeros(1)?,
            w.upload(&dv[rows.clone()])?,
            w.zeros(1)?,
        ),
        ValueMap::Clipped(c) => (MAP_CLIPPED, w.zeros(1)?, w.zeros(1)?, w.upload(c)?),
    };
    let cfg = Worker::row_launch(csr.n_rows);
    macro_rules! go {
        ($mask:expr, $row_arg:expr) => {
            launch!(
                w,
                gene_moments,
                cfg,
                &csr.indptr,
                &csr.base,
                &csr.indices,
                &csr.data,
                $mask,
                &csr.n_rows,
                &code,
                $row_arg,
                &clip,
                &sum,
                &sumsq,
                &nnz
            )
        };
    }
    match (&mask, code == MAP_LOGNORM) {
        (Some(m), true) => go!(m, &div)?,
        (Some(m), false) => go!(m, &scale)?,
        (None, true) => go!(&NULL, &div)?,
        (None, false) => go!(&NULL, &scale)?,
    }
    let mut out = GeneSums::new(d);
    w.download(&sum, &mut out.sum)?;
    w.download(&sumsq, &mut out.sumsq)?;
    w.download(&nnz, &mut out.nnz)?;
    Ok(out)
}

/// `normalize_total` + `log1p` + gene subset of `rows`: the kept values per row, their new
/// columns and values.
pub(super) fn normalize_log1p(
    w: &Worker,
    chunk: &CsrChunk,
    rows: Range<usize>,
    divisors: &[f32],
    genes: &GeneSubset,
) -> Result<(Vec<usize>, Vec<u32>, Vec<f32>)> {
    let n = rows.len();
    let csr = w.upload_rows(chunk, rows.clone())?;
    let map = w.upload(genes.map())?;
    let div = w.upload(&divisors[rows])?;
    let counts = w.zeros::<u64>(n)?;
    let cfg = Worker::row_launch(csr.n_rows);
    launch!(
        w,
        count_kept,
        cfg,
        &csr.indptr,
        &csr.base,
        &csr.indices,
        &map,
        &csr.n_rows,
        &counts
    )?;
    let mut lens = vec![0u64; n];
    w.download(&counts, &mut lens)?;
    let mut out_indptr = Vec::with_capacity(n + 1);
    out_indptr.push(0usize);
    for &l in &lens {
        out_indptr.push(out_indptr[out_indptr.len() - 1] + l as usize);
    }
    let nnz = out_indptr[n];
    let dev_indptr = w.upload(&out_indptr)?;
    let (out_idx, out_val) = (w.zeros::<u32>(nnz)?, w.zeros::<f32>(nnz)?);
    launch!(
        w,
        normalize_log1p,
        cfg,
        &csr.indptr,
        &csr.base,
        &csr.indices,
        &csr.data,
        &div,
        &map,
        &csr.n_rows,
        &dev_indptr,
        &out_idx,
        &out_val
    )?;
    let (mut idx, mut val) = (vec![0u32; nnz], vec![0f32; nnz]);
    w.download(&out_idx, &mut idx)?;
    w.download(&out_val, &mut val)?;
    Ok((lens.into_iter().map(|l| l as usize).collect(), idx, val))
}

/// `rows x k` coordinates of `rows` on the projection.
pub(super) fn project(
    w: &Worker,
    chunk: &CsrChunk,
    rows: Range<usize>,
    proj: &Projection,
    out: &mut [f32],
) -> Result<()> {
    let csr = w.upload_rows(chunk, rows)?;
    let loadings = w.upload(proj.loadings())?;
    let offset = w.upload(proj.offset())?;
    let k = proj.k() as u32;
    let dev_out = w.zeros::<f32>(out.len())?;
    launch!(
        w,
        project,
        Worker::row_launch(csr.n_rows),
        &csr.indptr,
        &csr.base,
        &csr.indices,
        &csr.data,
        &csr.n_rows,
        &loadings,
        &offset,
        &k,
        &dev_out
    )?;
    w.download(&dev_out, out)
}

/// y = A·x for the CSR rows `rows` (f64 accumulation): the SpMV kernel, for tests and power
/// iterations.
pub(super) fn spmv(
    w: &Worker,
    chunk: &CsrChunk,
    rows: Range<usize>,
    x: &[f64],
    y: &mut [f64],
) -> Result<()> {
    let csr = w.upload_rows(chunk, rows)?;
    let dx = w.upload(x)?;
    let dy = w.zeros::<f64>(y.len())?;
    launch!(
        w,
        spmv,
        Worker::row_launch(csr.n_rows),
        &csr.indptr,
        &csr.base,
        &csr.indices,
        &csr.data,
        &csr.n_rows,
        &dx,
        &dy
    )?;
    w.download(&dy, y)
}
