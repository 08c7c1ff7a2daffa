//! `scoop preprocess`: per plate, filter cells, `normalize_total`, `log1p`,
//! `highly_variable_genes`; then keep the genes highly variable in at least `min_plates` plates
//! and write each plate on those genes, with what `adata[cells][:, genes]` keeps of the rest:
//! each layer's kept cells and genes, values unchanged (scanpy's normalize_total and log1p do not
//! touch layers), raw's kept cells with all its genes, obsm/obsp on the kept cells, varm/varp on
//! the kept genes, and uns.
//!
//! Nothing is written until every plate's statistics are known and every output name is free;
//! each output goes to a temporary name and is renamed when complete.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::backend::{Backend, GeneSubset};
use crate::error::{Error, Result};
use crate::io::matrix_rows::{copy_layers_rows, copy_raw_rows, copy_rows, ColumnMap};
use crate::io::subset::{write_dataframe_rows, RowPick};
use crate::io::{
    write_element, ColumnValues, CsrChunk, CsrWriteOptions, CsrWriter, DataFrame, Element,
    H5adReader, MatrixReader, NumVec, OutputFile, OutputOptions, OutputSet,
};
use crate::ops::filter::CellFilter;
use crate::ops::hvg::{Flavor, HvgStats, HvgTable};
use crate::ops::preprocess::{
    normalize_chunk, plate_stats, select_genes, PlateStats, PreprocessParams,
};
use crate::progress::Progress;
use crate::stream::{ChunkPool, ChunkStream, PooledChunk, RowSelection, StreamOptions};

/// Everything `scoop preprocess` needs.
#[derive(Clone, Debug)]
pub struct PreprocessOptions {
    /// Plate files.
    pub inputs: Vec<PathBuf>,
    /// Output directory (created if missing).
    pub out_dir: PathBuf,
    /// Keep only cells where an obs column has a value.
    pub filter: Option<CellFilter>,
    /// normalize/HVG parameters.
    pub params: PreprocessParams,
    /// Genes must be highly variable in at least this many plates.
    pub min_plates: usize,
    /// Chunking of the streams.
    pub stream: StreamOptions,
    /// Compression of the written X.
    pub compression: crate::io::Codec,
    /// Overwrite existing outputs.
    pub force: bool,
    /// No progress bars.
    pub quiet: bool,
}

/// What happened to one plate.
#[derive(Clone, Debug)]
pub struct PlateReport {
    /// Input file.
    pub input: PathBuf,
    /// Written file.
    pub output: PathBuf,
    /// Cells in the input.
    pub cells_in: usize,
    /// The statistics of its kept cells.
    pub stats: PlateStats,
    /// Seconds spent in the statistics passes.
    pub stats_seconds: f64,
    /// Seconds spent writing.
    pub write_seconds: f64,
    /// The plate's elements written besides X, obs, var and uns: `raw`, `layers/KEY`,
    /// `obsm/KEY`, `varm/KEY`, `obsp/KEY`, `varp/KEY`.
    pub matrices: Vec<String>,
    /// The plate's `obsm`, `varm`, `obsp` and `varp` entries not written (not a CSR or dense
    /// matrix), with the reason.
    pub not_carried: Vec<String>,
}

/// What `preprocess` did.
#[derive(Clone, Debug)]
pub struct PreprocessSummary {
    /// Per plate, in input order.
    pub plates: Vec<PlateReport>,
    /// Gene names of the inputs.
    pub genes: Vec<String>,
    /// Plates choosing each gene.
    pub plate_counts: Vec<u32>,
    /// Selected genes (var order).
    pub selected: Vec<bool>,
    /// `DIR/preprocess.json`.
    pub report: PathBuf,
    /// `DIR/genes.tsv`.
    pub genes_tsv: PathBuf,
    /// Plates a gene had to be highly variable in to be kept (`--min-plates`).
    pub min_plates: usize,
}

impl PreprocessSummary {
    /// Number of selected genes.
    pub fn n_selected(&self) -> usize {
        self.selected.iter().filter(|&&s| s).count()
    }
}

/// `DIR/<stem>_preprocessed.h5ad`.
pub fn output_path(out_dir: &Path, input: &Path) -> PathBuf {
    let stem = input.file_stem().unwrap_or_default().to_string_lossy();
    out_dir.join(format!("{stem}_preprocessed.h5ad"))
}

/// Prefixes argument errors with the file they are about.
pub(crate) fn about(path: &Path, element: &str, e: Error) -> Error {
    match e {
        Error::InvalidArgument(m) => Error::format(path, element, m),
        other => other,
    }
}

/// One input, opened and checked, with its filter mask.
pub(crate) struct Plate {
    pub(crate) path: PathBuf,
    /// File stem, for progress labels.
    pub(crate) stem: String,
    pub(crate) output: PathBuf,
    pub(crate) n_obs: usize,
    pub(crate) selection: RowSelection,
    pub(crate) mask: Option<Arc<Vec<bool>>>,
}

pub(crate) fn open_plate(
    path: &Path,
    out_dir: &Path,
    filter: Option<&CellFilter>,
) -> Result<(Plate, Vec<String>)> {
    // Opening checks X's shape against obs and var.
    let f = H5adReader::open(path)?;
    let (n_obs, _) = f.shape()?;
    f.x()?;
    let var = f.var_reader()?;
    let genes = var.read_rows(0..var.len())?.index;
    let (selection, mask) = match filter {
        None => (RowSelection::All, None),
        Some(flt) => {
            let obs = f.obs_reader()?;
            if !obs.column_names().contains(&flt.column) {
                return Err(Error::format(
                    path,
                    "/obs",
                    format!(
                        "filter: no column {:?}; columns are: {}",
                        flt.column,
                        obs.column_names().join(", ")
                    ),
                ));
            }
            let element = format!("/obs/{}", flt.column);
            let col = obs.read_column(&flt.column, 0..n_obs)?;
            let m = Arc::new(
                flt.mask_column(&col)
                    .map_err(|e| about(path, &element, e))?,
            );
            (RowSelection::Mask(m.clone()), Some(m))
        }
    };
    Ok((
        Plate {
            path: path.to_path_buf(),
            stem: path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            output: output_path(out_dir, path),
            n_obs,
            selection,
            mask,
        },
        genes,
    ))
}

/// A stream over a plate's selected rows, refilling `pool`'s buffers, that advances `progress`.
fn stream<'a>(
    plate: &Plate,
    opts: StreamOptions,
    pool: &ChunkPool,
    progress: &'a Progress,
) -> Result<impl Iterator<Item = Result<PooledChunk>> + 'a> {
    let s = ChunkStream::open_pooled(&plate.path, plate.selection.clone(), opts, pool.clone())?;
    Ok(s.inspect(move |c| {
        if let Ok(c) = c {
            progress.inc(c.n_rows() as u64);
        }
    }))
}

fn var_columns(var: &mut DataFrame, stats: &HvgStats, hv: &[bool], keep: &[usize]) {
    let f64s = |v: &[f64]| ColumnValues::Array(NumVec::F64(keep.iter().map(|&j| v[j]).collect()));
    let f32s =
        |v: &[f64]| ColumnValues::Array(NumVec::F32(keep.iter().map(|&j| v[j] as f32).collect()));
    var.set_column(
        "highly_variable",
        ColumnValues::Array(NumVec::Bool(keep.iter().map(|&j| hv[j]).collect())),
    );
    match stats {
        HvgStats::Dispersion {
            means,
            dispersions,
            dispersions_norm,
        } => {
            var.set_column("means", f64s(means));
            var.set_column("dispersions", f64s(dispersions));
            var.set_column("dispersions_norm", f32s(dispersions_norm));
        }
        HvgStats::SeuratV3 {
            means,
            variances,
            variances_norm,
            highly_variable_rank,
        } => {
            var.set_column(
                "highly_variable_rank",
                ColumnValues::Array(NumVec::F32(
                    keep.iter().map(|&j| highly_variable_rank[j]).collect(),
                )),
            );
            var.set_column("means", f64s(means));
            var.set_column("variances", f64s(variances));
            var.set_column("variances_norm", f64s(variances_norm));
        }
    }
}

/// Writes text output `path` at its staged path in `set`.
fn write_text(set: &OutputSet, path: &Path, text: &str) -> Result<()> {
    std::fs::write(set.staged(path), text).map_err(|e| Error::io(path, e))
}

/// `DIR/preprocess.json`: the parameters, the selection and each plate's counts and timings.
fn report_json(opts: &PreprocessOptions, s: &PreprocessSummary) -> String {
    use serde_json::json;
    let p = &opts.params;
    let ms = |seconds: f64| (seconds * 1000.0).round() / 1000.0;
    let plates: Vec<serde_json::Value> = s
        .plates
        .iter()
        .map(|r| {
            let st = &r.stats;
            json!({
                "input": r.input.to_string_lossy(),
                "output": r.output.to_string_lossy(),
                "cells_in": r.cells_in,
                "cells_kept": st.cells,
                "zero_count_cells": st.zero_count_cells,
                "nnz": st.nnz,
                "mean_total_counts": st.mean_total,
                "target_sum": st.target_sum,
                "genes_detected": st.genes_detected,
                "hvg_count": st.hvg.n_highly_variable(),
                "stats_seconds": ms(r.stats_seconds),
                "write_seconds": ms(r.write_seconds),
            })
        })
        .collect();
    let report = json!({
        "scoop_version": env!("CARGO_PKG_VERSION"),
        "filter": opts.filter.as_ref().map(|f| format!("{}={}", f.column, f.value)),
        "target_sum": p.target_sum.to_string(),
        "flavor": p.flavor.name(),
        "n_top_genes": p.n_top_genes,
        "min_plates": opts.min_plates,
        "genes_in": s.genes.len(),
        "selected_genes": s.n_selected(),
        "plates": plates,
    });
    let mut text = serde_json::to_string_pretty(&report).expect("a JSON value serializes");
    text.push('\n');
    text
}

/// Runs the whole step; see the module docs.
pub fn preprocess(opts: &PreprocessOptions, backend: &dyn Backend) -> Result<PreprocessSummary> {
    if opts.inputs.is_empty() {
        return Err(Error::InvalidArgument(
            "preprocess needs at least one plate".into(),
        ));
    }
    if opts.min_plates == 0 || opts.min_plates > opts.inputs.len() {
        return Err(Error::InvalidArgument(format!(
            "--min-plates {} with {} plate(s): must be between 1 and the number of plates",
            opts.min_plates,
            opts.inputs.len()
        )));
    }
    let report = opts.out_dir.join("preprocess.json");
    let genes_tsv = opts.out_dir.join("genes.tsv");

    // Open and check every plate, and every output name, before computing anything.
    let mut plates = Vec::new();
    let mut genes: Option<(PathBuf, Vec<String>)> = None;
    for path in &opts.inputs {
        let (plate, names) = open_plate(path, &opts.out_dir, opts.filter.as_ref())?;
        match &genes {
            None => genes = Some((path.clone(), names)),
            Some((first, g)) if *g != names => {
                return Err(Error::format(
                    path,
                    "/var",
                    format!(
                        "its genes differ from {}'s ({} vs {} genes, or a different order); \
                         plates must share var",
                        first.display(),
                        names.len(),
                        g.len()
                    ),
                ))
            }
            Some(_) => {}
        }
        if plates.iter().any(|p: &Plate| p.output == plate.output) {
            return Err(Error::InvalidArgument(format!(
                "two inputs would both write {}; rename one",
                plate.output.display()
            )));
        }
        plates.push(plate);
    }
    let genes = genes.expect("at least one plate").1;
    // Every output is staged and committed together; --out-dir is created here, after the
    // inputs were checked, and removed again if nothing is committed.
    let targets: Vec<&PathBuf> = plates
        .iter()
        .map(|p| &p.output)
        .chain([&genes_tsv, &report])
        .collect();
    let set = OutputSet::create(
        &targets,
        &OutputOptions::new(opts.force)
            .inputs(&opts.inputs)
            .make_dirs(),
    )?;

    // Statistics passes. Every pass of every plate refills one pool of chunk buffers (the plates
    // share var, so their chunks are alike).
    let pool = ChunkPool::for_stream(&opts.stream);
    let mut stats = Vec::new();
    for plate in &plates {
        let t = Instant::now();
        let kept = plate.selection.count(plate.n_obs) as u64;
        let st = plate_stats_pooled(plate, opts, backend, &plate.stem, kept, &pool)
            .map_err(|e| about(&plate.path, "/X", e))?;
        stats.push((st, t.elapsed().as_secs_f64()));
    }

    let tables: Vec<&_> = stats.iter().map(|(s, _)| &s.hvg).collect();
    let (plate_counts, selected) = select_genes(&tables, opts.min_plates)?;
    let subset = GeneSubset::from_mask(&selected);
    let keep: Vec<usize> = subset.kept().iter().map(|&j| j as usize).collect();
    if keep.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "no gene is highly variable in {} or more plates; lower --min-plates or raise \
             --n-top-genes",
            opts.min_plates
        )));
    }

    // Write pass.
    let mut reports = Vec::new();
    for (plate, (st, stats_seconds)) in plates.iter().zip(stats) {
        let t = Instant::now();
        let (matrices, not_carried) =
            write_plate(&set, plate, &st, &subset, &keep, opts, backend, &pool)?;
        reports.push(PlateReport {
            matrices,
            not_carried,
            input: plate.path.clone(),
            output: plate.output.clone(),
            cells_in: plate.n_obs,
            stats: st,
            stats_seconds,
            write_seconds: t.elapsed().as_secs_f64(),
        });
    }
    let summary = PreprocessSummary {
        plates: reports,
        genes,
        plate_counts,
        selected,
        report,
        genes_tsv,
        min_plates: opts.min_plates,
    };
    let mut tsv = String::from("gene\tn_plates\n");
    for ((g, &c), _) in summary
        .genes
        .iter()
        .zip(&summary.plate_counts)
        .zip(&summary.selected)
        .filter(|(_, &s)| s)
    {
        tsv.push_str(&format!("{g}\t{c}\n"));
    }
    write_text(&set, &summary.genes_tsv, &tsv)?;
    write_text(&set, &summary.report, &report_json(opts, &summary))?;
    set.commit()?;
    Ok(summary)
}

pub(crate) fn plate_stats_with_progress(
    plate: &Plate,
    opts: &PreprocessOptions,
    backend: &dyn Backend,
    stem: &str,
    kept: u64,
) -> Result<PlateStats> {
    let pool = ChunkPool::for_stream(&opts.stream);
    plate_stats_pooled(plate, opts, backend, stem, kept, &pool)
}

/// [`plate_stats_with_progress`] refilling the chunk buffers of `pool`.
fn plate_stats_pooled(
    plate: &Plate,
    opts: &PreprocessOptions,
    backend: &dyn Backend,
    stem: &str,
    kept: u64,
    pool: &ChunkPool,
) -> Result<PlateStats> {
    let passes = match opts.params.flavor {
        crate::ops::hvg::Flavor::Seurat => 1,
        _ => 2,
    };
    let bars: Vec<Progress> = (1..=passes)
        .map(|k| {
            let label = if passes == 1 {
                format!("{stem} stats")
            } else {
                format!("{stem} stats {k}/{passes}")
            };
            Progress::new(&label, kept, opts.quiet)
        })
        .collect();
    let bars_ref = &bars;
    let pass_ref = std::cell::Cell::new(0usize);
    let st = plate_stats(
        || {
            let k = pass_ref.get().saturating_sub(1).min(bars_ref.len() - 1);
            stream(plate, opts.stream, pool, &bars_ref[k])
        },
        backend,
        &opts.params,
        |k| {
            if k > 1 {
                bars_ref[k - 2].finish();
            }
            pass_ref.set(k);
        },
    );
    bars.iter().for_each(Progress::finish);
    st
}

/// Writes one plate's output; returns the matrices besides X written and the input's entries not
/// carried over.
#[allow(clippy::too_many_arguments)]
fn write_plate(
    set: &OutputSet,
    plate: &Plate,
    st: &PlateStats,
    subset: &GeneSubset,
    keep: &[usize],
    opts: &PreprocessOptions,
    backend: &dyn Backend,
    pool: &ChunkPool,
) -> Result<(Vec<String>, Vec<String>)> {
    let pw = PlateWriter::create(
        set,
        plate,
        &plate.output,
        &PlateTable {
            hvg: &st.hvg,
            nnz: st.nnz,
        },
        keep,
        opts.compression,
        opts.stream.chunk_rows,
    )?;
    let progress = Progress::new(&format!("{} write", plate.stem), st.cells, opts.quiet);
    // Normalize on this thread while a writer thread appends the previous chunk.
    let (tx, rx) = crossbeam_channel::bounded::<CsrChunk>(1);
    let pw = std::thread::scope(|scope| -> Result<PlateWriter> {
        let writer = scope.spawn(move || -> Result<PlateWriter> {
            let mut pw = pw;
            for chunk in rx {
                pw.append(&chunk)?;
            }
            Ok(pw)
        });
        let produced = (|| -> Result<()> {
            for chunk in stream(plate, opts.stream, pool, &progress)? {
                let out = normalize_chunk(backend, &*chunk?, st.target_sum, subset)?;
                if tx.send(out).is_err() {
                    break; // the writer failed; its error is reported below
                }
            }
            Ok(())
        })();
        drop(tx);
        let pw = writer.join().expect("writer thread panicked")?;
        produced.map(|()| pw)
    })?;
    progress.finish();
    pw.finish()
}

/// What a plate's output needs of its statistics besides the normalized rows.
pub(crate) struct PlateTable<'a> {
    /// The plate's `highly_variable_genes` table (all genes): var's columns and `uns/hvg`.
    pub hvg: &'a HvgTable,
    /// Stored values of its kept cells over all genes: a bound on X's, which picks indptr's width.
    pub nnz: u64,
}

/// One plate's `preprocess` output being written: [`PlateWriter::create`] writes obs (the kept
/// cells, unused categories dropped) and var (the kept genes with the plate's
/// `highly_variable_genes` columns); the caller appends the normalized X rows in order
/// ([`PlateWriter::append`]); [`PlateWriter::finish`] completes X, copies layers, raw, obsm,
/// varm, obsp, varp and uns as `adata[cells][:, genes]` keeps them, and closes the file at its
/// staged path (its set commits it).
pub(crate) struct PlateWriter {
    source: H5adReader,
    out: OutputFile,
    x: CsrWriter,
    mask: Vec<bool>,
    n_genes: usize,
    keep: Vec<usize>,
    flavor: Flavor,
    compression: crate::io::Codec,
    block: usize,
}

impl PlateWriter {
    /// Starts `target` (one of `set`'s outputs) for `plate`, keeping the genes `keep` (indices
    /// into the plate's var, ascending); `block` rows at a time are copied.
    pub(crate) fn create(
        set: &OutputSet,
        plate: &Plate,
        target: &Path,
        table: &PlateTable<'_>,
        keep: &[usize],
        compression: crate::io::Codec,
        block: usize,
    ) -> Result<PlateWriter> {
        let source = H5adReader::open(&plate.path)?;
        let out = OutputFile::create_in(set, target)?;
        let mask = match &plate.mask {
            Some(m) => m.as_ref().clone(),
            None => vec![true; plate.n_obs],
        };
        let block = block.max(1);
        write_dataframe_rows(&source.obs_reader()?, &mask, out.root(), "obs", block)?;
        let mut var = source.var()?.take(keep);
        var.remove_unused_categories();
        var_columns(&mut var, &table.hvg.stats, &table.hvg.highly_variable, keep);
        var.write(out.root(), "var")?;
        let x = CsrWriter::create(
            out.root(),
            "X",
            keep.len(),
            CsrWriteOptions {
                compression,
                // The kept cells' stored values bound X's: past 2^31 indptr is int64 from the
                // start.
                nnz_hint: Some(table.nnz),
            },
        )?;
        Ok(PlateWriter {
            source,
            out,
            x,
            mask,
            n_genes: table.hvg.len(),
            keep: keep.to_vec(),
            flavor: table.hvg.flavor,
            compression,
            block,
        })
    }

    /// Appends the next rows of X (normalized, on the kept genes).
    pub(crate) fn append(&mut self, chunk: &CsrChunk) -> Result<()> {
        self.x.append(chunk)
    }

    /// Completes the file; returns the matrices besides X written and the input's entries not
    /// carried over.
    pub(crate) fn finish(self) -> Result<(Vec<String>, Vec<String>)> {
        let PlateWriter {
            source: f,
            out,
            x,
            mask,
            n_genes,
            keep,
            flavor,
            compression,
            block,
        } = self;
        x.finish()?;
        let n_obs = mask.len();
        let pick = RowPick::Mask(&mask);
        let genes = ColumnMap::select(n_genes, &keep);
        let mut matrices: Vec<String> =
            copy_layers_rows(f.root(), out.root(), pick, Some(&genes), block, compression)?
                .into_iter()
                .map(|k| format!("layers/{k}"))
                .collect();
        if copy_raw_rows(f.root(), out.root(), pick, block, compression)? {
            matrices.insert(0, "raw".into());
        }
        // obsm, varm, obsp and varp on the kept cells and genes, as `adata[cells][:, genes]`.
        let cells: Vec<usize> = (0..n_obs).filter(|&i| mask[i]).collect();
        let cell_cols = ColumnMap::select(n_obs, &cells);
        let mut gene_mask = vec![false; n_genes];
        keep.iter().for_each(|&j| gene_mask[j] = true);
        let gene_pick = RowPick::Mask(&gene_mask);
        let mut not_carried = Vec::new();
        for (group, rows, cols) in [
            ("obsm", pick, None),
            ("varm", gene_pick, None),
            ("obsp", pick, Some(&cell_cols)),
            ("varp", gene_pick, Some(&genes)),
        ] {
            let keys = f.keys(group)?;
            if keys.is_empty() {
                continue;
            }
            let (src, dst) = (f.group(group)?, out.dict(group)?);
            for key in keys {
                if let Err(e) = MatrixReader::open(&src, &key) {
                    not_carried.push(format!("{group}/{key} ({e})"));
                    continue;
                }
                copy_rows(&src, &key, &dst, rows, cols, block, compression)?;
                matrices.push(format!("{group}/{key}"));
            }
        }

        // uns: the input's entries, and what log1p and highly_variable_genes write.
        out.carry_over(&f, &[], &["uns"], &["uns/log1p", "uns/hvg"])?;
        let uns = out.group("uns")?;
        let dict = |items: Vec<(&str, Element)>| {
            Element::Dict(items.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
        };
        write_element(&uns, "log1p", &dict(vec![("base", Element::Null)]))?;
        write_element(
            &uns,
            "hvg",
            &dict(vec![("flavor", Element::String(flavor.name().into()))]),
        )?;
        out.close()?;
        Ok((matrices, not_carried))
    }
}
