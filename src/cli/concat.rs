use std::path::PathBuf;
use std::time::Instant;

use super::choices::JoinArg;
use super::GlobalArgs;
use crate::io::concat::{concat, ConcatOptions};
use crate::io::Codec;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Input .h5ad files, in order.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output .h5ad.
    #[arg(long)]
    out: PathBuf,
    /// obs column recording each cell's source file.
    #[arg(long, default_value = "plate")]
    label: String,
    /// One name per input (default: file stems).
    #[arg(long, value_delimiter = ',')]
    keys: Option<Vec<String>>,
    /// How genes are joined.
    #[arg(long, value_enum, default_value_t = JoinArg::Inner)]
    join: JoinArg,
    /// Compression of X: none, gzip[:LEVEL 0-9, default 4], lzf or
    /// zstd[:LEVEL 1-22, default 3] (Python reads zstd after `import hdf5plugin`).
    #[arg(long, default_value_t = Codec::None, value_name = "CODEC")]
    compression: Codec,
    /// Overwrite the output.
    #[arg(long)]
    force: bool,
}

pub fn run(a: Args, g: &GlobalArgs) -> anyhow::Result<()> {
    let opts = ConcatOptions {
        label: a.label,
        keys: a.keys,
        join: a.join.into(),
        chunk_rows: g.chunk_rows,
        compression: a.compression,
        force: a.force,
    };
    let t = Instant::now();
    let s = concat(&a.inputs, &a.out, &opts, g.quiet)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{s} in {secs:.2} s ({:.0} nnz/s)",
        s.nnz as f64 / secs.max(1e-9)
    );
    Ok(())
}
