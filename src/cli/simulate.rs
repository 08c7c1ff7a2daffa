use std::path::PathBuf;

use super::GlobalArgs;
use crate::io::Codec;
use crate::sim::{simulate_timed, SimParams};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output directory (plates are written as plate{i}_filtered.h5ad).
    #[arg(long)]
    out: PathBuf,
    /// Number of plates.
    #[arg(long, default_value_t = 2)]
    plates: usize,
    /// Cells per plate.
    #[arg(long, default_value_t = 10_000)]
    cells_per_plate: usize,
    /// Genes.
    #[arg(long, default_value_t = 2_000)]
    genes: usize,
    /// Cell lines.
    #[arg(long, default_value_t = 10)]
    cell_lines: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Compression of X: none, gzip[:LEVEL 0-9, default 4], lzf or
    /// zstd[:LEVEL 1-22, default 3] (Python reads zstd after `import hdf5plugin`).
    #[arg(long, default_value_t = Codec::None, value_name = "CODEC")]
    compression: Codec,
    /// Overwrite existing plates.
    #[arg(long)]
    force: bool,
}

pub fn run(a: Args, g: &GlobalArgs) -> anyhow::Result<()> {
    let p = SimParams {
        plates: a.plates,
        cells_per_plate: a.cells_per_plate,
        genes: a.genes,
        cell_lines: a.cell_lines,
        seed: a.seed,
        chunk_rows: g.chunk_rows,
        compression: a.compression,
        ..SimParams::default()
    };
    let (plates, secs) = simulate_timed(&p, &a.out, a.force, g.quiet)?;
    let cells: usize = plates.iter().map(|s| s.cells).sum();
    for s in &plates {
        println!("{s}");
    }
    println!(
        "simulated {cells} cells in {secs:.2} s ({:.0} cells/s)",
        cells as f64 / secs.max(1e-9)
    );
    Ok(())
}
