use std::path::PathBuf;

use super::GlobalArgs;
use crate::ops::umap::{Init, UmapOptions};
use crate::workflow::umap::{run_umap, UmapRunOptions};

/// `auto` or a number of epochs.
#[derive(Clone, Copy, Debug)]
struct Epochs(Option<usize>);

impl std::str::FromStr for Epochs {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            return Ok(Epochs(None));
        }
        s.parse::<usize>()
            .map(|n| Epochs(Some(n)))
            .map_err(|_| format!("expected `auto` or a number of epochs, got `{s}`"))
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .h5ad with obsp/connectivities (from `scoop neighbors`).
    input: PathBuf,
    /// Output .h5ad: the input (X, raw, layers and annotations) plus obsm/X_umap and uns/umap
    /// (see --key-added).
    #[arg(long)]
    out: PathBuf,
    /// Effective minimum distance between embedded points.
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    min_dist: f64,
    /// Scale of embedded points.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    spread: f64,
    /// Epochs: `auto` (500 up to 10,000 cells, else 200) or a number.
    #[arg(long, default_value = "auto")]
    n_epochs: Epochs,
    /// Embedding dimensions.
    #[arg(long, default_value_t = 2)]
    n_components: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Negative samples per positive one.
    #[arg(long, default_value_t = 5.0, allow_negative_numbers = true)]
    negative_sample_rate: f64,
    /// Weight of the negative samples (scanpy's gamma, umap's repulsion_strength).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    gamma: f64,
    /// The uns entry describing the graph (scanpy's neighbors_key).
    #[arg(long, default_value = "neighbors")]
    neighbors_key: String,
    /// Starting layout (scanpy's init_pos): `spectral`, `random`, or an obsm key (its first
    /// --n-components columns, e.g. an earlier X_umap).
    #[arg(long, default_value = "spectral")]
    init_pos: String,
    /// Store the layout as obsm/KEY and its parameters as uns/KEY (scanpy's key_added;
    /// default: obsm/X_umap and uns/umap).
    #[arg(long)]
    key_added: Option<String>,
    #[command(flatten)]
    matrices: super::MatrixArgs,
    /// Overwrite an existing output.
    #[arg(long)]
    force: bool,
}

pub fn run(a: Args, g: &GlobalArgs) -> anyhow::Result<()> {
    let backend = crate::backend::select(&g.backend_options()?)?;
    let s = run_umap(
        &UmapRunOptions {
            input: a.input,
            output: a.out,
            umap: UmapOptions {
                min_dist: a.min_dist,
                spread: a.spread,
                n_epochs: a.n_epochs.0,
                dim: a.n_components,
                seed: a.seed,
                negative_sample_rate: a.negative_sample_rate,
                gamma: a.gamma,
            },
            neighbors_key: a.neighbors_key,
            init_pos: a.init_pos,
            key_added: a.key_added,
            drop_matrices: a.matrices.drop_matrices,
            force: a.force,
            quiet: g.quiet,
        },
        backend.as_ref(),
    )?;
    if let Init::Random(why) = &s.init {
        eprintln!("warning: spectral initialization failed ({why}); started from random");
    }
    println!("{s}");
    Ok(())
}
