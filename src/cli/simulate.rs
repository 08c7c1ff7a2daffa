use std::path::PathBuf;

use super::GlobalArgs;
use crate::io::Codec;
use crate::sim::{simulate_timed, SimParams};

/// The shape of the simulated plates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Shape {
    /// 2,000 genes, 2,500 median UMIs per cell, uncompressed: quick to write and analyse.
    #[default]
    Small,
    /// Tahoe-100M's plates: 62,710 genes, about 1,450 stored values per cell on average,
    /// 50 cell lines, X gzip-compressed like the released files.
    Tahoe,
}

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
    /// Defaults for genes, cell lines, UMIs per cell and compression.
    #[arg(long, value_enum, default_value_t = Shape::Small)]
    shape: Shape,
    /// Genes [default: the shape's, 2000 or 62710].
    #[arg(long)]
    genes: Option<usize>,
    /// Cell lines [default: the shape's, 10 or 50].
    #[arg(long)]
    cell_lines: Option<usize>,
    /// Median UMIs per cell passing the filter [default: the shape's, 2500 or 1800].
    #[arg(long, value_name = "UMIS")]
    median_umis: Option<f64>,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Compression of X: none, gzip[:LEVEL 0-9, default 4], lzf or zstd[:LEVEL 1-22, default 3]
    /// (Python reads zstd after `import hdf5plugin`) [default: the shape's, none or gzip].
    #[arg(long, value_name = "CODEC")]
    compression: Option<Codec>,
    /// Overwrite existing plates.
    #[arg(long)]
    force: bool,
}

pub fn run(a: Args, g: &GlobalArgs) -> anyhow::Result<()> {
    let base = match a.shape {
        Shape::Small => SimParams::default(),
        Shape::Tahoe => SimParams::tahoe(),
    };
    if a.median_umis.is_some_and(|m| !(m.is_finite() && m >= 1.0)) {
        anyhow::bail!("--median-umis must be a number of at least 1");
    }
    let p = SimParams {
        plates: a.plates,
        cells_per_plate: a.cells_per_plate,
        genes: a.genes.unwrap_or(base.genes),
        cell_lines: a.cell_lines.unwrap_or(base.cell_lines),
        median_umis: a.median_umis.unwrap_or(base.median_umis),
        seed: a.seed,
        chunk_rows: g.chunk_rows,
        compression: a.compression.unwrap_or(base.compression),
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
