use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::ArgMatches;

use super::choices::{BackendArg, FigureFormatArg, FlavorArg};
use super::GlobalArgs;
use crate::backend::BackendOptions;
use crate::io::Codec;
use crate::ops::filter::CellFilter;
use crate::ops::normalize::TargetSum;
use crate::workflow::run::{run as run_workflow, RunConfig};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Plate .h5ad files (raw counts, CSR or dense X, same genes); replace the config's `plates`.
    inputs: Vec<PathBuf>,
    /// Output directory: merged.h5ad, pca.h5ad, X_pca.zarr, subset.h5ad, neighbors.h5ad,
    /// umap.h5ad, umap.png, genes.tsv, stats/, run.json (and plates/ with --keep-plates).
    /// Rerunning into it skips the finished steps.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Read the parameters from a TOML file (`--print-config` writes one); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the default configuration as commented TOML and exit.
    #[arg(long)]
    print_config: bool,
    /// Keep only cells where an obs column equals a value (e.g. `pass_filter=full`) [default:
    /// every cell].
    #[arg(long)]
    filter: Option<CellFilter>,
    /// normalize_total target: `auto` (median of positive per-cell totals) or a number
    /// [default: auto].
    #[arg(long)]
    target_sum: Option<TargetSum>,
    /// Highly variable genes per plate [default: 2000].
    #[arg(long)]
    n_top_genes: Option<usize>,
    /// highly_variable_genes flavor [default: seurat].
    #[arg(long, value_enum)]
    flavor: Option<FlavorArg>,
    /// Keep genes highly variable in at least this many plates [default: 3, or the number of
    /// plates if fewer].
    #[arg(long)]
    min_plates: Option<usize>,
    /// Principal components [default: 300, or min(cells, selected genes) if fewer].
    #[arg(long)]
    n_comps: Option<usize>,
    /// Cells drawn for neighbors, UMAP and the plot (all cells if fewer) [default: 1000000].
    #[arg(long)]
    subsample: Option<usize>,
    /// Neighbours per cell, the cell itself included [default: 15].
    #[arg(long)]
    n_neighbors: Option<usize>,
    /// obs columns umap.png is colored by, comma-separated (`plate` is the plate label)
    /// [default: cell_line,plate].
    #[arg(long, value_delimiter = ',')]
    color: Option<Vec<String>>,
    /// Format of the UMAP figure, DIR/umap.EXT: png, or svg/pdf (vector frames and text, the
    /// points rasterized) [default: png].
    #[arg(long, value_enum)]
    figure: Option<FigureFormatArg>,
    /// Compression of merged.h5ad's X (and the plate files'): none, gzip[:LEVEL], lzf or
    /// zstd[:LEVEL] [default: none].
    #[arg(long, value_name = "CODEC")]
    compression: Option<Codec>,
    /// Also write each plate as `scoop preprocess` does (DIR/plates/STEM_preprocessed.h5ad,
    /// its HVG columns in var), from the same pass as merged.h5ad.
    #[arg(long)]
    keep_plates: bool,
    /// Seed of the subsample, the neighbor search and UMAP [default: 0].
    #[arg(long)]
    seed: Option<u64>,
}

/// The configuration: the file's (or the defaults), then every flag given on the command line.
fn merged_config(a: Args, g: &GlobalArgs, m: Option<&ArgMatches>) -> anyhow::Result<RunConfig> {
    let mut c = match &a.config {
        Some(path) => RunConfig::read(path)?,
        None => RunConfig::default(),
    };
    if !a.inputs.is_empty() {
        c.plates = a.inputs;
    }
    macro_rules! set {
        ($field:ident, $conv:expr) => {
            if let Some(v) = a.$field {
                c.$field = $conv(v);
            }
        };
    }
    set!(out_dir, Some);
    set!(filter, |f: CellFilter| Some(format!(
        "{}={}",
        f.column, f.value
    )));
    set!(target_sum, |t: TargetSum| t.to_string());
    set!(n_top_genes, |n| n);
    set!(flavor, |f: FlavorArg| crate::ops::hvg::Flavor::from(f)
        .name()
        .to_string());
    set!(min_plates, Some);
    set!(n_comps, Some);
    set!(subsample, |n| n);
    set!(n_neighbors, |n| n);
    set!(color, |v| v);
    set!(figure, |f: FigureFormatArg| {
        crate::plot::FigureFormat::from(f).to_string()
    });
    set!(compression, |x: Codec| x.to_string());
    set!(seed, |n| n);
    c.keep_plates |= a.keep_plates;
    // Global options override the file only when given on the command line.
    let given = |id: &str| {
        m.and_then(|m| m.value_source(id))
            .is_some_and(|s| s == ValueSource::CommandLine)
    };
    if given("backend") || a.config.is_none() {
        c.backend = clap::ValueEnum::to_possible_value(&g.backend)
            .map(|v| v.get_name().to_string())
            .unwrap_or_else(|| "auto".into());
    }
    if given("devices") || a.config.is_none() {
        c.devices = g.devices.clone();
    }
    if g.threads.is_some() {
        c.threads = g.threads;
    }
    if given("chunk_rows") || a.config.is_none() {
        c.chunk_rows = g.chunk_rows;
    }
    if given("chunk_values") || a.config.is_none() {
        c.chunk_values = g.chunk_values;
    }
    c.quiet |= g.quiet;
    Ok(c)
}

/// What an interrupted run prints: how to resume it.
fn interrupt_line(record: &std::path::Path) -> String {
    if crate::events::json() {
        crate::events::line(
            "interrupted",
            serde_json::json!({
                "resume": "run the same command again",
                "run_json": record,
            }),
        )
    } else {
        format!(
            "scoop: interrupted; run the same command again to resume (finished steps are kept \
             in {})",
            record.display()
        )
    }
}

pub fn run(a: Args, g: &GlobalArgs, m: Option<&ArgMatches>) -> anyhow::Result<()> {
    if a.print_config {
        print!("{}", RunConfig::default().commented_toml());
        return Ok(());
    }
    let c = merged_config(a, g, m)?;
    if let Some(dir) = &c.out_dir {
        let record = std::path::absolute(dir)
            .unwrap_or_else(|_| dir.clone())
            .join("run.json");
        super::signals::set_interrupt_line(&interrupt_line(&record));
    }
    if g.threads.is_none() {
        if let Some(n) = c.threads {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build_global()
                .map_err(|e| anyhow::anyhow!("threads = {n}: {e}"))?;
        }
    }
    let backend_arg = <BackendArg as clap::ValueEnum>::from_str(&c.backend, true)
        .map_err(|e| anyhow::anyhow!("backend {:?}: {e}", c.backend))?;
    let backend = crate::backend::select(&BackendOptions {
        kind: backend_arg.into(),
        devices: c.devices.clone(),
        kernels: super::kernel_choice_from_env()?,
    })?;
    let s = run_workflow(&c, backend.as_ref())?;
    println!("{s}");
    Ok(())
}
