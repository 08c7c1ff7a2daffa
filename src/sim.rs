//! `scoop simulate`: Tahoe-like plates with negative-binomial counts, written as `.h5ad`.
//!
//! Model, per cell: a cell line (gene-level log-fold changes on 5% of genes), a drug (module-level
//! fold changes on a few of the gene modules), a log-normal library size, and a Gamma(2, 1/2)
//! multiplier per gene module: given the multipliers, UMIs are drawn multinomially, so each gene's
//! count is a gamma-Poisson (negative-binomial) mixture whose dispersion is shared within a module.
//! Every cell has its own RNG stream, so output is identical for a seed whatever the thread count.
//!
//! obs carries Tahoe-100M's per-cell columns: sample, gene_count, tscp_count, mread_count,
//! drugname_drugconc, drug, cell_line, sublibrary, BARCODE, pcnt_mito, S_score, G2M_score, phase,
//! pass_filter, cell_name and BARCODE_SUB_LIB_ID (`plate` is left to `scoop concat --label`). [`SimParams::tahoe`] gives plates
//! Tahoe's shape.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::weighted::WeightedAliasIndex;
use rand_distr::{Distribution, Gamma, LogNormal, Normal};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::io::{
    Categories, Column, ColumnValues, CsrChunk, CsrWriteOptions, CsrWriter, DataFrame,
    DataFrameWriter, NumVec, OutputFile, OutputOptions, OutputSet, RowIds,
};
use crate::progress::Progress;

/// Drugs, and the concentration (uM) each one is simulated at.
const DRUGS: [&str; 8] = [
    "DMSO_TF",
    "Bortezomib",
    "Trametinib",
    "Paclitaxel",
    "Staurosporine",
    "Vorinostat",
    "Dexamethasone",
    "Palbociclib",
];
const DOSES_UM: [f64; 8] = [0.0, 0.05, 0.5, 0.05, 0.05, 5.0, 5.0, 0.5];
/// Cell barcodes per sublibrary (three rounds of 96 wells).
const BARCODES_PER_SUBLIB: usize = 96 * 96 * 96;
const MITO: [&str; 13] = [
    "MT-ND1", "MT-ND2", "MT-CO1", "MT-CO2", "MT-ATP8", "MT-ATP6", "MT-CO3", "MT-ND3", "MT-ND4L",
    "MT-ND4", "MT-ND5", "MT-ND6", "MT-CYB",
];
const N_MODULES: usize = 64;

/// Parameters of a simulated dataset.
#[derive(Clone, Debug)]
pub struct SimParams {
    /// Number of plates (files).
    pub plates: usize,
    /// Cells in each plate.
    pub cells_per_plate: usize,
    /// Genes.
    pub genes: usize,
    /// Cell lines.
    pub cell_lines: usize,
    /// Random seed.
    pub seed: u64,
    /// Median UMIs per cell.
    pub median_umis: f64,
    /// Rows generated and written per chunk.
    pub chunk_rows: usize,
    /// Compression of X.
    pub compression: crate::io::Codec,
}

impl SimParams {
    /// Genes in Tahoe-100M's plates.
    pub const TAHOE_GENES: usize = 62_710;
    /// The median UMIs per full cell that give Tahoe's mean of about 1,450 stored values per cell
    /// over 62,710 genes.
    pub const TAHOE_MEDIAN_UMIS: f64 = 1_800.0;

    /// Plates of Tahoe-100M's shape: 62,710 genes, about 1,450 stored values per cell on
    /// average, X gzip-compressed like the released files; 50 cell lines as in Tahoe.
    pub fn tahoe() -> Self {
        SimParams {
            genes: Self::TAHOE_GENES,
            cell_lines: 50,
            median_umis: Self::TAHOE_MEDIAN_UMIS,
            compression: crate::io::Codec::Gzip(crate::io::Codec::GZIP_DEFAULT),
            ..Self::default()
        }
    }
}

impl Default for SimParams {
    fn default() -> Self {
        SimParams {
            plates: 2,
            cells_per_plate: 10_000,
            genes: 2_000,
            cell_lines: 10,
            seed: 0,
            median_umis: 2_500.0,
            chunk_rows: 10_000,
            compression: crate::io::Codec::None,
        }
    }
}

/// What one simulated plate holds.
#[derive(Clone, Debug)]
pub struct PlateSummary {
    /// The file written.
    pub path: PathBuf,
    /// Cells.
    pub cells: usize,
    /// Stored non-zeros.
    pub nnz: u64,
    /// Cells with `pass_filter == "full"`.
    pub full: usize,
}

/// Per cell line: gene weights grouped by module, as alias tables, plus module totals.
struct LineModel {
    module_genes: Vec<Vec<u32>>,
    module_alias: Vec<WeightedAliasIndex<f64>>,
    module_weight: Vec<f64>,
}

struct Model {
    lines: Vec<LineModel>,
    drug_fold: Vec<Vec<f64>>,
    mito_genes: usize,
    cell_line_names: Vec<String>,
    gene_ids: Vec<String>,
    gene_symbols: Vec<String>,
}

fn build_model(p: &SimParams) -> Result<Model> {
    if p.genes < 20 || p.cell_lines == 0 || p.plates == 0 {
        return Err(Error::InvalidArgument(
            "simulate needs --genes >= 20, --plates >= 1 and at least one cell line".into(),
        ));
    }
    let mut rng = SmallRng::seed_from_u64(p.seed ^ 0x5C00_9000);
    let base = LogNormal::new(0.0, 1.6).expect("valid");
    let mito_genes = MITO.len().min(p.genes / 10);
    let mut w: Vec<f64> = (0..p.genes).map(|_| base.sample(&mut rng)).collect();
    for wg in w.iter_mut().take(mito_genes) {
        *wg *= 40.0;
    }
    let module_of: Vec<usize> = (0..p.genes)
        .map(|_| rng.random_range(0..N_MODULES))
        .collect();
    let lfc = Normal::new(0.0, 1.5).expect("valid");
    let mut lines = Vec::with_capacity(p.cell_lines);
    for _ in 0..p.cell_lines {
        let wl: Vec<f64> = w
            .iter()
            .map(|&x| {
                if rng.random::<f64>() < 0.05 {
                    x * Distribution::<f64>::sample(&lfc, &mut rng).exp()
                } else {
                    x
                }
            })
            .collect();
        let mut module_genes = vec![Vec::new(); N_MODULES];
        let mut module_w: Vec<Vec<f64>> = vec![Vec::new(); N_MODULES];
        for g in 0..p.genes {
            module_genes[module_of[g]].push(g as u32);
            module_w[module_of[g]].push(wl[g]);
        }
        let module_weight = module_w.iter().map(|v| v.iter().sum()).collect();
        let module_alias = module_w
            .into_iter()
            .map(|v| {
                WeightedAliasIndex::new(if v.is_empty() { vec![1.0] } else { v })
                    .expect("positive weights")
            })
            .collect();
        lines.push(LineModel {
            module_genes,
            module_alias,
            module_weight,
        });
    }
    let fold = Normal::new(0.0, 1.0).expect("valid");
    let drug_fold = (0..DRUGS.len())
        .map(|d| {
            let mut f = vec![1.0; N_MODULES];
            if d > 0 {
                for _ in 0..3 {
                    f[rng.random_range(0..N_MODULES)] =
                        Distribution::<f64>::sample(&fold, &mut rng).exp();
                }
            }
            f
        })
        .collect();
    Ok(Model {
        lines,
        drug_fold,
        mito_genes,
        cell_line_names: (0..p.cell_lines)
            .map(|i| format!("CVCL_{:04}", 1000 + 37 * i))
            .collect(),
        gene_ids: (0..p.genes)
            .map(|g| format!("ENSG{:011}", 100_000 + g))
            .collect(),
        gene_symbols: (0..p.genes)
            .map(|g| {
                if g < mito_genes {
                    MITO[g].to_string()
                } else {
                    format!("GENE{g}")
                }
            })
            .collect(),
    })
}

/// One simulated cell.
struct Cell {
    line: usize,
    drug: usize,
    full: bool,
    indices: Vec<u32>,
    counts: Vec<f32>,
    mito: u64,
    total: u64,
    /// Sequencing reads behind the UMIs.
    reads: u64,
    s_score: f64,
    g2m_score: f64,
}

fn simulate_cell(model: &Model, p: &SimParams, plate: usize, i: usize) -> Cell {
    let stream = p.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ((plate as u64) << 40) ^ i as u64;
    let mut rng = SmallRng::seed_from_u64(stream);
    let line = rng.random_range(0..model.lines.len());
    let drug = rng.random_range(0..DRUGS.len());
    let full = rng.random::<f64>() < 0.9;
    let lib = LogNormal::new(p.median_umis.ln(), 0.35)
        .expect("valid")
        .sample(&mut rng);
    let umis = ((if full { lib } else { lib * 0.3 }).round() as usize).max(20);
    let lm = &model.lines[line];
    let gamma = Gamma::new(2.0, 0.5).expect("valid");
    let mut cum = Vec::with_capacity(N_MODULES);
    let mut acc = 0.0;
    for m in 0..N_MODULES {
        acc += lm.module_weight[m] * model.drug_fold[drug][m] * gamma.sample(&mut rng);
        cum.push(acc);
    }
    let mut genes: Vec<u32> = Vec::with_capacity(umis);
    for _ in 0..umis {
        let u = rng.random::<f64>() * acc;
        let m = cum.partition_point(|&c| c <= u).min(N_MODULES - 1);
        if lm.module_genes[m].is_empty() {
            continue;
        }
        genes.push(lm.module_genes[m][lm.module_alias[m].sample(&mut rng)]);
    }
    genes.sort_unstable();
    let mut indices = Vec::new();
    let mut counts = Vec::new();
    let mut mito = 0u64;
    for run in genes.chunk_by(|a, b| a == b) {
        indices.push(run[0]);
        counts.push(run.len() as f32);
        if (run[0] as usize) < model.mito_genes {
            mito += run.len() as u64;
        }
    }
    // Drawn after the counts, so the counts do not depend on these columns.
    let total = genes.len() as u64;
    let reads = (total as f64 * rng.random_range(1.2..2.0)).round() as u64;
    let score = Normal::new(-0.05, 0.15).expect("valid");
    Cell {
        line,
        drug,
        full,
        indices,
        counts,
        mito,
        total,
        reads,
        s_score: score.sample(&mut rng),
        g2m_score: score.sample(&mut rng),
    }
}

impl Cell {
    /// The cell-cycle phase Seurat's `score_genes_cell_cycle` assigns from the two scores.
    fn phase(&self) -> i32 {
        if self.s_score < 0.0 && self.g2m_score < 0.0 {
            0
        } else if self.s_score >= self.g2m_score {
            1
        } else {
            2
        }
    }
}

/// Cell `i`'s barcode (three well numbers) and sublibrary number in plate `plate`.
fn barcode(plate: usize, i: usize) -> (String, usize) {
    let well = i % BARCODES_PER_SUBLIB;
    let sublib = 1000 + 10 * plate + i / BARCODES_PER_SUBLIB;
    (
        format!(
            "{:02}_{:03}_{:03}",
            well / (96 * 96) + 1,
            well / 96 % 96 + 1,
            well % 96 + 1
        ),
        sublib,
    )
}

/// The nnz hint for a plate of `cells` cells whose first `rows` cells hold `nnz` values: the
/// extrapolated total plus a margin, so a plate near int32's limit gets int64 indptr at once.
fn nnz_estimate(nnz: u64, rows: usize, cells: usize) -> u64 {
    (nnz as f64 / rows.max(1) as f64 * cells as f64 * 1.05) as u64
}

fn category(codes: Vec<i32>, names: &[String]) -> ColumnValues {
    ColumnValues::Categorical {
        codes,
        categories: Categories::Strings(names.to_vec()),
        ordered: false,
    }
}

/// Simulates `p.plates` plates into `out_dir` as `plate{i}_filtered.h5ad` (i from 1).
pub fn simulate(
    p: &SimParams,
    out_dir: &Path,
    force: bool,
    quiet: bool,
) -> Result<Vec<PlateSummary>> {
    let model = build_model(p)?;
    let paths: Vec<PathBuf> = (1..=p.plates)
        .map(|i| out_dir.join(format!("plate{i}_filtered.h5ad")))
        .collect();
    // Every plate appears together at the end, or none does.
    let set = OutputSet::create(&paths, &OutputOptions::new(force).make_dirs())?;
    let drugs: Vec<String> = DRUGS.iter().map(|s| s.to_string()).collect();
    let drug_doses: Vec<String> = DRUGS
        .iter()
        .zip(DOSES_UM)
        .map(|(d, c)| format!("[('{d}', {c}, 'uM')]"))
        .collect();
    let pass: Vec<String> = vec!["full".into(), "minimal".into()];
    let phases: Vec<String> = ["G1", "S", "G2M"].map(String::from).to_vec();
    let line_names: Vec<String> = (0..p.cell_lines).map(|i| format!("LINE-{i}")).collect();
    let n_sublibs = p.cells_per_plate.div_ceil(BARCODES_PER_SUBLIB).max(1);
    let mut summaries = Vec::new();
    for (pi, path) in paths.iter().enumerate() {
        let plate = pi + 1;
        let samples: Vec<String> = (0..DRUGS.len())
            .map(|d| format!("smp_{}", plate * 100 + d))
            .collect();
        let out = OutputFile::create_in(&set, path)?;
        let mut var = DataFrame::with_index(model.gene_ids.clone());
        var.set_column(
            "gene_symbol",
            ColumnValues::Strings(model.gene_symbols.clone()),
        );
        var.write(out.root(), "var")?;
        let sublibs: Vec<String> = (0..n_sublibs)
            .map(|k| format!("lib_{}", 1000 + 10 * plate + k))
            .collect();
        // Created at the first chunk, whose stored values give the nnz hint.
        let mut x: Option<CsrWriter> = None;
        let mut obs_writer: Option<DataFrameWriter> = None;
        let progress = Progress::new(&format!("plate{plate}"), p.cells_per_plate as u64, quiet);
        let mut full_count = 0;
        let mut start = 0;
        while start < p.cells_per_plate {
            let end = (start + p.chunk_rows.max(1)).min(p.cells_per_plate);
            let cells: Vec<Cell> = (start..end)
                .into_par_iter()
                .map(|i| simulate_cell(&model, p, plate, i))
                .collect();
            let mut chunk = CsrChunk::empty(p.genes);
            chunk.rows = RowIds::Range(start as u64..end as u64);
            for c in &cells {
                chunk.indices.extend_from_slice(&c.indices);
                chunk.data.extend_from_slice(&c.counts);
                chunk.indptr.push(chunk.data.len());
            }
            let x = match &mut x {
                Some(x) => x,
                None => x.insert(CsrWriter::create(
                    out.root(),
                    "X",
                    p.genes,
                    CsrWriteOptions {
                        compression: p.compression,
                        nnz_hint: Some(nnz_estimate(
                            chunk.data.len() as u64,
                            end - start,
                            p.cells_per_plate,
                        )),
                    },
                )?),
            };
            x.append(&chunk)?;
            full_count += cells.iter().filter(|c| c.full).count();
            let names: Vec<String> = (start..end).map(|i| format!("c{i:08}-p{plate}")).collect();
            let (barcodes, sublib): (Vec<String>, Vec<usize>) =
                (start..end).map(|i| barcode(plate, i)).unzip();
            let ints = |f: &dyn Fn(&Cell) -> i64| {
                ColumnValues::Array(NumVec::I64(cells.iter().map(f).collect()))
            };
            let floats = |f: &dyn Fn(&Cell) -> f64| {
                ColumnValues::Array(NumVec::F64(cells.iter().map(f).collect()))
            };
            let codes = |f: &dyn Fn(&Cell) -> usize| cells.iter().map(|c| f(c) as i32).collect();
            let column = |name: &str, values: ColumnValues| Column {
                name: name.into(),
                values,
            };
            let mut obs = DataFrame::with_index(names);
            obs.columns = vec![
                column("sample", category(codes(&|c| c.drug), &samples)),
                column("gene_count", ints(&|c| c.indices.len() as i64)),
                column("tscp_count", ints(&|c| c.total as i64)),
                column("mread_count", ints(&|c| c.reads as i64)),
                column(
                    "drugname_drugconc",
                    category(codes(&|c| c.drug), &drug_doses),
                ),
                column("drug", category(codes(&|c| c.drug), &drugs)),
                column(
                    "cell_line",
                    category(codes(&|c| c.line), &model.cell_line_names),
                ),
                column(
                    "sublibrary",
                    category(
                        sublib
                            .iter()
                            .map(|&s| (s - 1000 - 10 * plate) as i32)
                            .collect(),
                        &sublibs,
                    ),
                ),
                column("BARCODE", ColumnValues::Strings(barcodes.clone())),
                column(
                    "pcnt_mito",
                    floats(&|c| 100.0 * c.mito as f64 / c.total.max(1) as f64),
                ),
                column("S_score", floats(&|c| c.s_score)),
                column("G2M_score", floats(&|c| c.g2m_score)),
                column(
                    "phase",
                    category(cells.iter().map(Cell::phase).collect(), &phases),
                ),
                column(
                    "pass_filter",
                    category(codes(&|c| usize::from(!c.full)), &pass),
                ),
                column("cell_name", category(codes(&|c| c.line), &line_names)),
                column(
                    "BARCODE_SUB_LIB_ID",
                    ColumnValues::Strings(
                        barcodes
                            .into_iter()
                            .zip(&sublib)
                            .map(|(b, s)| format!("{b}-lib_{s}"))
                            .collect(),
                    ),
                ),
            ];
            if obs_writer.is_none() {
                obs_writer = Some(DataFrameWriter::create(out.root(), "obs", &obs)?);
            }
            obs_writer.as_mut().expect("created").append(&obs)?;
            progress.inc((end - start) as u64);
            start = end;
        }
        progress.finish();
        if obs_writer.is_none() {
            DataFrame::with_index(Vec::new()).write(out.root(), "obs")?;
        }
        let x = match x {
            Some(x) => x,
            None => CsrWriter::create(
                out.root(),
                "X",
                p.genes,
                CsrWriteOptions {
                    compression: p.compression,
                    nnz_hint: Some(0),
                },
            )?,
        };
        let (cells, nnz) = x.finish()?;
        out.close()?;
        summaries.push(PlateSummary {
            path: path.clone(),
            cells,
            nnz,
            full: full_count,
        });
    }
    set.commit()?;
    Ok(summaries)
}

/// Simulates and reports throughput (cells/s) alongside the summaries.
pub fn simulate_timed(
    p: &SimParams,
    out_dir: &Path,
    force: bool,
    quiet: bool,
) -> Result<(Vec<PlateSummary>, f64)> {
    let t = Instant::now();
    let s = simulate(p, out_dir, force, quiet)?;
    Ok((s, t.elapsed().as_secs_f64()))
}
