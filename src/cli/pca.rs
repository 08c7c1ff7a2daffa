use std::path::PathBuf;
use std::time::Instant;

use super::choices::EigenArg;
use super::GlobalArgs;
use crate::workflow::pca::{pca, PcaOptions};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .h5ad to analyse (e.g. the merged, preprocessed plates); its X is used whole.
    input: PathBuf,
    /// Principal components to compute.
    #[arg(long, default_value_t = 50)]
    n_comps: usize,
    /// Output .h5ad: the input (obs, var, uns, obsm, varm, obsp, varp, X, raw, layers) plus
    /// obsm/X_pca, varm/PCs and uns/pca.
    #[arg(long)]
    out: PathBuf,
    /// Also write X_pca as a Zarr (v2) array, chunked like the projection (--chunk-rows rows).
    #[arg(long)]
    zarr: Option<PathBuf>,
    /// Eigen solver: full decomposition, or subspace iteration for the top components only.
    #[arg(long, value_enum, default_value_t = EigenArg::Auto)]
    eigen: EigenArg,
    #[command(flatten)]
    matrices: super::MatrixArgs,
    /// Overwrite existing outputs.
    #[arg(long)]
    force: bool,
}

pub fn run(a: Args, g: &GlobalArgs) -> anyhow::Result<()> {
    let backend = crate::backend::select(&g.backend_options()?)?;
    let opts = PcaOptions {
        input: a.input,
        output: a.out,
        zarr: a.zarr,
        n_comps: a.n_comps,
        solver: a.eigen.into(),
        drop_matrices: a.matrices.drop_matrices,
        stream: g.stream_options(),
        force: a.force,
        quiet: g.quiet,
    };
    let t = Instant::now();
    let s = pca(&opts, backend.as_ref())?;
    let secs = t.elapsed().as_secs_f64();
    for u in &s.uns_skipped {
        eprintln!("warning: uns/{u} not copied");
    }
    println!("{s}; {secs:.2} s in all on {}", backend.name());
    println!("{}", s.outputs());
    Ok(())
}
