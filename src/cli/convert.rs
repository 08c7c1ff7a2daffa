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
    /// Write X, every layer and raw/X with this codec, whatever their encoding: none,
    /// gzip[:LEVEL 0-9, default 4], lzf or zstd[:LEVEL 1-22, default 3] (Python reads zstd
    /// after `import hdf5plugin`); e.g. `gzip` or `none` for a zstd or blosc file Python must
    /// read without hdf5plugin. Default: csc_matrix rewritten uncompressed, the rest copied as
    /// stored.
    #[arg(long, value_name = "CODEC")]
    compression: Option<Codec>,
    /// Overwrite an existing output.
    #[arg(long)]
    force: bool,
}

pub fn run(a: Args, g: &GlobalArgs) -> anyhow::Result<()> {
    let s = convert(&ConvertOptions {
        input: a.input,
        output: a.out,
        compression: a.compression,
        chunk_rows: g.chunk_rows,
        chunk_values: usize::try_from(g.chunk_values).unwrap_or(usize::MAX),
        force: a.force,
        quiet: g.quiet,
    })?;
    println!("{s}");
    Ok(())
}
