use std::path::PathBuf;

use super::choices::KnnMethodArg;
use super::GlobalArgs;
use crate::workflow::neighbors::{neighbors, NeighborsOptions};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .h5ad holding the representation (e.g. the PCA or subsample output).
    input: PathBuf,
    /// Output .h5ad: the input (X, raw, layers, obs, var, obsm, varm, obsp, uns) plus
    /// obsp/distances, obsp/connectivities and uns/neighbors (see --key-added).
    #[arg(long)]
    out: PathBuf,
    /// Neighbours per cell, the cell itself included (scanpy's n_neighbors). On fewer cells
    /// than that, 1 + cells / 2, as scanpy.
    #[arg(long, default_value_t = 15)]
    n_neighbors: usize,
    /// Leading columns of the representation to use (default: all).
    #[arg(long)]
    n_pcs: Option<usize>,
    /// The representation: an obsm key, or X (read dense, up to 4096 genes). Default, as
    /// scanpy: X_pca, or X when there are at most 50 genes.
    #[arg(long)]
    use_rep: Option<String>,
    /// Exact (brute force) or approximate (NN-descent) search; auto = exact below 8192 cells
    /// or on a GPU.
    #[arg(long, value_enum, default_value_t = KnnMethodArg::Auto)]
    method: KnnMethodArg,
    /// Random seed of the approximate search.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Store the graph as scanpy's key_added does: obsp/KEY_distances,
    /// obsp/KEY_connectivities and uns/KEY (default: distances, connectivities, uns/neighbors).
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
    let s = neighbors(
        &NeighborsOptions {
            input: a.input,
            output: a.out,
            n_neighbors: a.n_neighbors,
            use_rep: a.use_rep,
            n_pcs: a.n_pcs,
            method: a.method.into(),
            seed: a.seed,
            key_added: a.key_added,
            drop_matrices: a.matrices.drop_matrices,
            force: a.force,
            quiet: g.quiet,
        },
        backend.as_ref(),
    )?;
    println!("{s}");
    Ok(())
}
