use std::path::PathBuf;

use super::GlobalArgs;
use crate::workflow::subsample::{subsample, SubsampleOptions};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .h5ad to draw cells from (e.g. the PCA output).
    input: PathBuf,
    /// Cells to draw.
    #[arg(long)]
    n: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Draw with replacement (default: without; every cell at most once).
    #[arg(long)]
    replace: bool,
    /// Also write the selected rows of X, of every layer and of raw (raw/var, raw/varm whole),
    /// as adata[rows] holds them (default: obs, obsm, var, varm, uns only).
    #[arg(long)]
    with_x: bool,
    /// Output .h5ad (rows in the input's order).
    #[arg(long)]
    out: PathBuf,
    /// Overwrite an existing output.
    #[arg(long)]
    force: bool,
}

pub fn run(a: Args, g: &GlobalArgs) -> anyhow::Result<()> {
    let s = subsample(&SubsampleOptions {
        input: a.input,
        output: a.out,
        n: a.n,
        seed: a.seed,
        replace: a.replace,
        with_x: a.with_x,
        block_rows: g.chunk_rows,
        force: a.force,
        quiet: g.quiet,
    })?;
    for k in &s.skipped {
        eprintln!("warning: obsm/{k} not carried");
    }
    println!("{s}");
    Ok(())
}
