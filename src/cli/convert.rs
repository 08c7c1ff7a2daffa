use std::path::PathBuf;

use super::GlobalArgs;
use crate::io::Codec;
use crate::workflow::convert::{convert, ConvertOptions};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .h5ad to convert (not modified).
    input: PathBuf,
    /// Output .h5ad: the input with every csc_matrix (X, layers, raw/X, obsm, obsp) rewritten
    /// as csr_matrix, everything else copied unchanged.
    #[arg(long)]
    out: PathBuf,
    /// Compression of the rewritten matrices: none, gzip[:LEVEL 0-9, default 4], lzf or
    /// zstd[:LEVEL 1-22, default 3] (Python reads zstd after `import hdf5plugin`).
    #[arg(long, default_value_t = Codec::None, value_name = "CODEC")]
    compression: Codec,
    /// Overwrite an existing output.
    #[arg(long)]
    force: bool,
}

pub fn run(a: Args, g: &GlobalArgs) -> anyhow::Result<()> {
    let s = convert(&ConvertOptions {
        input: a.input,
        output: a.out,
        compression: a.compression,
        chunk_values: usize::try_from(g.chunk_values).unwrap_or(usize::MAX),
        force: a.force,
        quiet: g.quiet,
    })?;
    println!("{s}");
    Ok(())
}
