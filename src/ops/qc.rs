//! A streaming QC pass: per-cell totals and per-gene sums through the backend, one read of X.

use std::path::Path;

use crate::backend::{Backend, GeneSums, ValueMap};
use crate::error::Result;
use crate::progress::Progress;
use crate::stream::{ChunkStream, RowSelection, StreamOptions};

/// What one QC pass measured.
#[derive(Clone, Debug)]
pub struct QcSummary {
    /// Cells streamed.
    pub cells: u64,
    /// Median total counts per cell.
    pub median_total: f64,
    /// Mean genes detected per cell.
    pub mean_genes: f64,
    /// Per-gene sums over the streamed cells.
    pub genes: GeneSums,
    /// Stored values streamed.
    pub nnz: u64,
}

/// Streams X of `path` once, computing per-cell totals and per-gene sums on `backend`.
pub fn qc_pass(
    path: &Path,
    selection: RowSelection,
    backend: &dyn Backend,
    opts: StreamOptions,
    quiet: bool,
) -> Result<QcSummary> {
    let stream = ChunkStream::open(path, selection, opts)?;
    let progress = Progress::new("qc", stream.selected_rows() as u64, quiet);
    let mut genes = GeneSums::new(stream.info().shape.1);
    let mut totals: Vec<f64> = Vec::with_capacity(stream.selected_rows());
    let mut nnz = 0u64;
    let mut detected = 0u64;
    for chunk in stream {
        let chunk = chunk?;
        let mut t = vec![0.0; chunk.n_rows()];
        backend.row_totals(&chunk, None, &mut t)?;
        backend.gene_moments(&chunk, None, ValueMap::Raw, &mut genes)?;
        totals.extend_from_slice(&t);
        nnz += chunk.nnz() as u64;
        detected += chunk.data.iter().filter(|&&v| v != 0.0).count() as u64;
        progress.inc(chunk.n_rows() as u64);
    }
    progress.finish();
    let cells = totals.len() as u64;
    Ok(QcSummary {
        cells,
        median_total: median(&mut totals),
        mean_genes: detected as f64 / cells.max(1) as f64,
        genes,
        nnz,
    })
}

/// Median (mean of the two middle values for an even count); NaN when empty.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    let (_, &mut hi, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        hi
    } else {
        let lo = v[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo + hi) / 2.0
    }
}
