//! The `scoop` command line: thin clap commands over the library, one module per subcommand.

mod choices;
mod concat;
mod convert;
mod demo;
mod devices;
mod inspect;
mod neighbors;
mod pca;
mod plot;
mod preprocess;
mod run;
mod signals;
mod simulate;
mod subsample;
mod umap;

use clap::{Parser, Subcommand};

use crate::backend::{BackendOptions, CpuLayoutLanes, CudaKnn, CudaLayout, KernelChoice};
use crate::error::{Error, Result};
use crate::stream::{StreamOptions, DEFAULT_CHUNK_ROWS, DEFAULT_CHUNK_VALUES};
use choices::{BackendArg, LogFormatArg, ReadPathArg};

/// The kernel variants the environment asks for, read here at the edge and nowhere in the
/// library: `SCOOP_CPU_LAYOUT=portable|avx2|avx512`, `SCOOP_CUDA_KNN=auto|f32|tf32|tf32-stream`,
/// `SCOOP_CUDA_KNN_FLUSH=0..32`, `SCOOP_CUDA_KNN_BATCH=N` and `SCOOP_CUDA_LAYOUT=auto|generic|
/// batched` (benchmark and test hooks; docs/gpu.md says what each is for).
pub fn kernel_choice_from_env() -> Result<KernelChoice> {
    fn var(name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
    fn parse<T: std::str::FromStr<Err = Error>>(name: &str) -> Result<Option<T>> {
        var(name)
            .map(|v| {
                v.parse()
                    .map_err(|e: Error| Error::InvalidArgument(format!("{name}: {e}")))
            })
            .transpose()
    }
    fn count(name: &str) -> Result<Option<usize>> {
        var(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    Error::InvalidArgument(format!("{name}={v}: expected a whole number"))
                })
            })
            .transpose()
    }
    let choice = KernelChoice {
        cpu_layout: parse::<CpuLayoutLanes>("SCOOP_CPU_LAYOUT")?,
        cuda_knn: parse::<CudaKnn>("SCOOP_CUDA_KNN")?.unwrap_or_default(),
        cuda_knn_flush: count("SCOOP_CUDA_KNN_FLUSH")?
            .map_or(0, |c| u32::try_from(c).unwrap_or(u32::MAX)),
        cuda_knn_batch: count("SCOOP_CUDA_KNN_BATCH")?,
        cuda_layout: parse::<CudaLayout>("SCOOP_CUDA_LAYOUT")?.unwrap_or_default(),
    };
    choice.validate()?;
    Ok(choice)
}

/// Options every subcommand accepts, before or after its name.
#[derive(clap::Args, Clone, Debug)]
pub struct GlobalArgs {
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto, global = true)]
    pub backend: BackendArg,
    /// CUDA devices to shard chunks over (comma-separated ordinals; repeat one for two workers).
    #[arg(long, value_delimiter = ',', global = true)]
    pub devices: Vec<usize>,
    /// CPU threads (default: all cores).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Most rows per streamed chunk (a chunk ends at this many rows or at --chunk-values stored
    /// values, whichever comes first, and holds at least one row).
    #[arg(long, default_value_t = DEFAULT_CHUNK_ROWS, global = true)]
    pub chunk_rows: usize,
    /// Most stored values per streamed chunk (about 8 bytes each in memory, per chunk in flight;
    /// a row longer than this is a chunk of its own).
    #[arg(long, default_value_t = DEFAULT_CHUNK_VALUES, global = true)]
    pub chunk_values: u64,
    /// How X's values are read: decompressed on all cores outside HDF5, or through HDF5 alone.
    #[arg(long, value_enum, default_value_t = ReadPathArg::Parallel, global = true)]
    pub read_path: ReadPathArg,
    /// No progress bars or info lines (nor JSON progress events).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// How progress and events are reported on stderr: bars for people, or one JSON object per
    /// line for batch systems.
    #[arg(long, value_enum, default_value_t = LogFormatArg::Text, global = true)]
    pub log_format: LogFormatArg,
}

impl GlobalArgs {
    /// Backend selection options, with the kernel variants the environment asks for.
    pub fn backend_options(&self) -> Result<BackendOptions> {
        Ok(BackendOptions {
            kind: self.backend.into(),
            devices: self.devices.clone(),
            kernels: kernel_choice_from_env()?,
        })
    }

    /// Streaming options.
    pub fn stream_options(&self) -> StreamOptions {
        StreamOptions {
            chunk_rows: self.chunk_rows,
            chunk_values: self.chunk_values,
            ..StreamOptions::default()
        }
    }
}

/// `--drop-matrices`, the same on every step that carries its input's matrices into OUT.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct MatrixArgs {
    /// Leave X, raw and layers out of OUT (default: copied unchanged, inside HDF5, so OUT is a
    /// whole AnnData).
    #[arg(long)]
    pub drop_matrices: bool,
}

/// The command-line reference as Markdown, made from the same definitions `--help` prints
/// (docs/cli.md holds it; a test keeps the two equal).
pub fn reference_markdown() -> String {
    use clap::CommandFactory;
    let mut root = Cli::command();
    root.build();
    let mut md = String::from(
        "# Command-line reference\n\nGenerated from `scoop --help` and each command's `--help` \
         (`SCOOP_BLESS=1 cargo test --release --test cli docs_cli_md` rewrites it).\n",
    );
    let help = |cmd: &mut clap::Command| cmd.render_long_help().to_string();
    md.push_str(&format!("\n## scoop\n\n```text\n{}```\n", help(&mut root)));
    let names: Vec<String> = root
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|n| n != "help")
        .collect();
    for name in names {
        let sub = root.find_subcommand_mut(&name).expect("listed");
        let text = help(sub);
        md.push_str(&format!("\n## scoop {name}\n\n```text\n{text}```\n"));
    }
    md
}

/// scoop: GPU-first, out-of-core single-cell analysis.
#[derive(Parser, Debug)]
#[command(name = "scoop", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Simulate Tahoe-like plates (negative-binomial counts) as .h5ad files.
    Simulate(simulate::Args),
    /// Concatenate .h5ad files along cells (anndata concat_on_disk semantics), streamed.
    Concat(concat::Args),
    /// Filter cells, normalize_total, log1p, highly variable genes per plate; keep genes
    /// variable in enough plates; write each plate on them.
    Preprocess(preprocess::Args),
    /// Out-of-core PCA (covariance route, as scanpy on dask): obsm/X_pca, varm/PCs, uns/pca,
    /// and optionally a Zarr copy of X_pca.
    Pca(pca::Args),
    /// Uniform random subset of cells (obs, obsm; X, layers and raw with --with-x), streamed.
    Subsample(subsample::Args),
    /// kNN graph of a representation (X_pca) with umap's connectivities, as scanpy's
    /// pp.neighbors: obsp/distances, obsp/connectivities, uns/neighbors.
    Neighbors(neighbors::Args),
    /// UMAP layout of the neighbors graph: obsm/X_umap, uns/umap.
    Umap(umap::Args),
    /// PNG of an embedding colored by obs columns, categorical or numeric (scanpy's pl.umap look).
    Plot(plot::Args),
    /// The whole workflow in one command, resumable: preprocess the plates straight into one
    /// merged file, PCA, subsample, neighbors, UMAP and the figure, in the fewest passes.
    Run(run::Args),
    /// Describe an .h5ad file without reading X (`--stats`: one timed pass over X).
    Inspect(inspect::Args),
    /// Copy an .h5ad with its csc_matrix matrices rewritten as csr_matrix (the same values),
    /// in bounded memory, so that every command can stream its rows.
    Convert(convert::Args),
    /// Run every workflow step on built-in demo data in ./scoop-demo/.
    Demo(demo::Args),
    /// List CUDA devices and how the kernels were built.
    Devices,
}

pub use signals::interrupted;

/// Parses the command line and runs the subcommand. SIGINT and SIGTERM remove the staged outputs
/// and end the process (status 130, 143) with one line; see [`interrupted`].
pub fn run() -> anyhow::Result<()> {
    signals::install();
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    crate::events::set_format(cli.global.log_format.into());
    if let Some(n) = cli.global.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| anyhow::anyhow!("--threads {n}: {e}"))?;
    }
    crate::io::set_default_read_path(cli.global.read_path.into());
    match cli.command {
        Command::Simulate(a) => simulate::run(a, &cli.global),
        Command::Concat(a) => concat::run(a, &cli.global),
        Command::Preprocess(a) => preprocess::run(a, &cli.global),
        Command::Pca(a) => pca::run(a, &cli.global),
        Command::Subsample(a) => subsample::run(a, &cli.global),
        Command::Neighbors(a) => neighbors::run(a, &cli.global),
        Command::Umap(a) => umap::run(a, &cli.global),
        Command::Plot(a) => plot::run(a),
        Command::Run(a) => run::run(a, &cli.global, matches.subcommand_matches("run")),
        Command::Inspect(a) => inspect::run(a, &cli.global),
        Command::Convert(a) => convert::run(a, &cli.global),
        Command::Demo(a) => demo::run(a, &cli.global),
        Command::Devices => devices::run(),
    }
}
