//! Steps 1–3 of the workflow on one plate, in streaming passes over its (filtered) rows:
//! `normalize_total` → `log1p` → `highly_variable_genes`, then the cross-plate gene selection and
//! the chunk transform that writes the result.
//!
//! Passes over X per plate, besides the final write:
//! - `seurat`: **one**. Per-cell totals c and Σ x/c, Σ (x/c)² per gene come from the same chunk;
//!   the normalized values are y = x·T/c, so the moments follow once the median T is known.
//! - `cell_ranger`: two (totals; then moments of log1p(x / (c/T)), which need T).
//! - `seurat_v3`: two (totals and raw moments; then clipped sums, which need the loess fit).
//!
//! The functions take a closure that opens a fresh chunk stream per pass, so they know nothing
//! of files.

use crate::backend::{Backend, GeneSubset, GeneSums, ValueMap};
use crate::error::{Error, Result};
use crate::io::CsrChunk;
use crate::ops::hvg::{dispersion_hvg, seurat_v3_clip, seurat_v3_hvg, Flavor, HvgTable};
use crate::ops::normalize::{cell_total, divisor, TargetSum, TotalsCounter};
use crate::ops::values::{check_chunk, ValueRule};

/// Parameters of the per-plate statistics.
#[derive(Clone, Copy, Debug)]
pub struct PreprocessParams {
    /// `normalize_total`'s target.
    pub target_sum: TargetSum,
    /// `highly_variable_genes` flavor.
    pub flavor: Flavor,
    /// `n_top_genes`.
    pub n_top_genes: usize,
    /// Bins of mean expression (`seurat`; scanpy's default 20).
    pub n_bins: usize,
    /// Loess span (`seurat_v3`; scanpy's default 0.3).
    pub span: f64,
}

impl Default for PreprocessParams {
    fn default() -> Self {
        PreprocessParams {
            target_sum: TargetSum::Median,
            flavor: Flavor::Seurat,
            n_top_genes: 2000,
            n_bins: 20,
            span: 0.3,
        }
    }
}

/// What the statistics passes learned about one plate; the write pass and later steps reuse it.
#[derive(Clone, Debug)]
pub struct PlateStats {
    /// Cells streamed (those kept by the filter).
    pub cells: u64,
    /// Of those, cells whose total count is zero.
    pub zero_count_cells: u64,
    /// Stored values streamed.
    pub nnz: u64,
    /// Mean total count per cell.
    pub mean_total: f64,
    /// `normalize_total`'s target sum (f32, as scanpy holds it).
    pub target_sum: f32,
    /// Per-gene mean and variance (ddof = 1) the flavor's statistics start from.
    pub mean: Vec<f64>,
    /// See `mean`.
    pub var: Vec<f64>,
    /// Genes with at least one stored non-zero value.
    pub genes_detected: usize,
    /// The `highly_variable_genes` table.
    pub hvg: HvgTable,
}

/// Per-cell f32 totals of a chunk.
fn chunk_totals(backend: &dyn Backend, chunk: &CsrChunk) -> Result<Vec<f32>> {
    let mut t = vec![0.0f64; chunk.n_rows()];
    backend.row_totals(chunk, None, &mut t)?;
    Ok(t.into_iter().map(cell_total).collect())
}

/// Per-cell divisors of a chunk against `target`: f32 totals / target, 0 replaced by 1.
fn chunk_divisors(backend: &dyn Backend, chunk: &CsrChunk, target: f32) -> Result<Vec<f32>> {
    Ok(chunk_totals(backend, chunk)?
        .into_iter()
        .map(|c| divisor(c, target))
        .collect())
}

/// Runs the statistics passes over one plate. `open` yields a fresh stream of the plate's
/// (filtered) rows each time it is called; `on_pass(k)` is called before pass k (1-based) starts.
pub fn plate_stats<S, O, C>(
    mut open: O,
    backend: &dyn Backend,
    params: &PreprocessParams,
    mut on_pass: impl FnMut(usize),
) -> Result<PlateStats>
where
    O: FnMut() -> Result<S>,
    S: Iterator<Item = Result<C>>,
    C: std::ops::Deref<Target = CsrChunk>,
{
    if params.n_top_genes == 0 {
        return Err(Error::InvalidArgument(
            "n_top_genes must be at least 1".into(),
        ));
    }
    // Pass 1: totals, plus the moments that need no target sum; it refuses values that are not
    // counts before anything is written.
    on_pass(1);
    let mut counter = TotalsCounter::new();
    let mut acc: Option<GeneSums> = None;
    let mut nnz = 0u64;
    for chunk in open()? {
        let chunk = chunk?;
        check_chunk(&chunk, ValueRule::Counts)?;
        let acc = acc.get_or_insert_with(|| GeneSums::new(chunk.n_cols));
        let totals = chunk_totals(backend, &chunk)?;
        totals.iter().for_each(|&t| counter.add(t));
        nnz += chunk.nnz() as u64;
        match params.flavor {
            Flavor::Seurat => {
                let inv: Vec<f64> = totals
                    .iter()
                    .map(|&t| if t > 0.0 { 1.0 / t as f64 } else { 0.0 })
                    .collect();
                backend.gene_moments(&chunk, None, ValueMap::Scaled(&inv), acc)?
            }
            Flavor::SeuratV3 => backend.gene_moments(&chunk, None, ValueMap::Raw, acc)?,
            Flavor::CellRanger => acc.n_rows += chunk.n_rows() as u64,
        }
    }
    let cells = counter.cells();
    let Some(mut acc) = acc.filter(|_| cells > 0) else {
        return Err(Error::InvalidArgument(
            "no cells to preprocess (every cell was filtered out)".into(),
        ));
    };
    let target = counter.target(params.target_sum).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "all {cells} cells have zero counts: normalize_total's median target is undefined"
        ))
    })?;
    let n_genes = acc.sum.len();

    // Moments of the values each flavor's statistics start from, and the accumulator whose
    // non-zero counts say which genes were detected.
    let (mean, var, hvg, detected) = match params.flavor {
        Flavor::Seurat | Flavor::CellRanger => {
            let moments = if params.flavor == Flavor::Seurat {
                // y = x·T/c: scale the sums of x/c by T and T².
                let t = target as f64;
                acc.sum.iter_mut().for_each(|s| *s *= t);
                acc.sumsq.iter_mut().for_each(|s| *s *= t * t);
                acc
            } else {
                on_pass(2);
                let mut log = GeneSums::new(n_genes);
                for chunk in open()? {
                    let chunk = chunk?;
                    let div = chunk_divisors(backend, &chunk, target)?;
                    backend.gene_moments(&chunk, None, ValueMap::LogNormalized(&div), &mut log)?;
                }
                log
            };
            let (mean, var) = (moments.means(), moments.variances(1));
            let hvg = dispersion_hvg(
                params.flavor,
                &mean,
                &var,
                params.n_top_genes,
                params.n_bins,
            )?;
            (mean, var, hvg, moments.nnz)
        }
        Flavor::SeuratV3 => {
            let (mean, var) = (acc.means(), acc.variances(1));
            let (reg_std, clip) = seurat_v3_clip(&mean, &var, cells, params.span)?;
            on_pass(2);
            let mut clipped = GeneSums::new(n_genes);
            for chunk in open()? {
                backend.gene_moments(&*chunk?, None, ValueMap::Clipped(&clip), &mut clipped)?;
            }
            let hvg = seurat_v3_hvg(
                &mean,
                &var,
                &reg_std,
                &clipped.sum,
                &clipped.sumsq,
                cells,
                params.n_top_genes,
            );
            (mean, var, hvg, acc.nnz)
        }
    };
    let genes_detected = detected.iter().filter(|&&n| n > 0).count();
    Ok(PlateStats {
        cells,
        zero_count_cells: counter.zero_cells(),
        nnz,
        mean_total: counter.mean(),
        target_sum: target,
        mean,
        var,
        genes_detected,
        hvg,
    })
}

/// Genes highly variable in at least `min_plates` of the tables (all over the same genes):
/// returns how many plates chose each gene and the selection, in var order.
pub fn select_genes(tables: &[&HvgTable], min_plates: usize) -> Result<(Vec<u32>, Vec<bool>)> {
    let masks: Vec<&[bool]> = tables.iter().map(|t| &t.highly_variable[..]).collect();
    select_genes_by_mask(&masks, min_plates)
}

/// [`select_genes`] on each plate's `highly_variable` mask.
pub fn select_genes_by_mask(masks: &[&[bool]], min_plates: usize) -> Result<(Vec<u32>, Vec<bool>)> {
    let Some(first) = masks.first() else {
        return Err(Error::InvalidArgument("no plates".into()));
    };
    if min_plates == 0 || min_plates > masks.len() {
        return Err(Error::InvalidArgument(format!(
            "--min-plates {min_plates}: must be between 1 and the number of plates ({})",
            masks.len()
        )));
    }
    let g = first.len();
    let mut count = vec![0u32; g];
    for m in masks {
        assert_eq!(m.len(), g, "select_genes: plates differ in gene count");
        for (c, &h) in count.iter_mut().zip(m.iter()) {
            *c += h as u32;
        }
    }
    let selected = count.iter().map(|&c| c as usize >= min_plates).collect();
    Ok((count, selected))
}

/// The write pass's transform of one chunk: totals, divisors against `target`, then
/// `log1p(x / divisor)` on the selected genes.
pub fn normalize_chunk(
    backend: &dyn Backend,
    chunk: &CsrChunk,
    target: f32,
    genes: &GeneSubset,
) -> Result<CsrChunk> {
    let div = chunk_divisors(backend, chunk, target)?;
    backend.normalize_log1p(chunk, &div, genes)
}
