use std::path::PathBuf;
use std::time::Instant;

use super::choices::FlavorArg;
use super::GlobalArgs;
use crate::io::Codec;
use crate::ops::filter::CellFilter;
use crate::ops::normalize::TargetSum;
use crate::ops::preprocess::PreprocessParams;
use crate::workflow::preprocess::{preprocess, PreprocessOptions};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Plate .h5ad files (raw counts, CSR or dense X, same genes).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output directory: `<stem>_preprocessed.h5ad` per plate, `preprocess.json`, `genes.tsv`.
    #[arg(long)]
    out_dir: PathBuf,
    /// Keep only cells where an obs column equals a value (e.g. `pass_filter=full`).
    #[arg(long)]
    filter: Option<CellFilter>,
    /// normalize_total target: `auto` (median of positive per-cell totals) or a number.
    #[arg(long, default_value = "auto")]
    target_sum: TargetSum,
    /// Highly variable genes per plate.
    #[arg(long, default_value_t = 2000)]
    n_top_genes: usize,
    /// highly_variable_genes flavor.
    #[arg(long, value_enum, default_value_t = FlavorArg::Seurat)]
    flavor: FlavorArg,
    /// Keep genes highly variable in at least this many plates.
    #[arg(long, default_value_t = 3)]
    min_plates: usize,
    /// Compression of the written X, layers and raw/X: none, gzip[:LEVEL 0-9, default 4], lzf or
    /// zstd[:LEVEL 1-22, default 3] (Python reads zstd after `import hdf5plugin`).
    #[arg(long, default_value_t = Codec::None, value_name = "CODEC")]
    compression: Codec,
    /// Overwrite existing outputs.
    #[arg(long)]
    force: bool,
}

pub fn run(a: Args, g: &GlobalArgs) -> anyhow::Result<()> {
    let backend = crate::backend::select(&g.backend_options()?)?;
    let opts = PreprocessOptions {
        inputs: a.inputs,
        out_dir: a.out_dir,
        filter: a.filter,
        params: PreprocessParams {
            target_sum: a.target_sum,
            flavor: a.flavor.into(),
            n_top_genes: a.n_top_genes,
            ..PreprocessParams::default()
        },
        min_plates: a.min_plates,
        stream: g.stream_options(),
        compression: a.compression,
        force: a.force,
        quiet: g.quiet,
    };
    let t = Instant::now();
    let s = preprocess(&opts, backend.as_ref())?;
    let secs = t.elapsed().as_secs_f64();
    let cells: u64 = s.plates.iter().map(|p| p.stats.cells).sum();
    println!(
        "{s} in {secs:.2} s ({:.0} cells/s) on {}",
        cells as f64 / secs.max(1e-9),
        backend.name()
    );
    Ok(())
}
