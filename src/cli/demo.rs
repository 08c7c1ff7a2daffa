use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::GlobalArgs;
use crate::io::concat::{concat, ConcatOptions, Join};
use crate::io::H5adReader;
use crate::ops::filter::CellFilter;
use crate::ops::qc::qc_pass;
use crate::sim::{simulate, SimParams};
use crate::stream::RowSelection;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Working directory (recreated).
    #[arg(long, default_value = "scoop-demo")]
    dir: PathBuf,
    /// Plates to simulate.
    #[arg(long, default_value_t = 3)]
    plates: usize,
    /// Cells per plate.
    #[arg(long, default_value_t = 20_000)]
    cells_per_plate: usize,
    /// Genes.
    #[arg(long, default_value_t = 4_000)]
    genes: usize,
}

pub fn run(a: Args, g: &GlobalArgs) -> anyhow::Result<()> {
    let plates_dir = a.dir.join("plates");
    println!("== scoop demo in {}/", a.dir.display());
    let t = Instant::now();
    let params = SimParams {
        plates: a.plates,
        cells_per_plate: a.cells_per_plate,
        genes: a.genes,
        chunk_rows: g.chunk_rows,
        ..SimParams::default()
    };
    let plates = simulate(&params, &plates_dir, true, g.quiet)?;
    let secs = t.elapsed().as_secs_f64();
    let cells: usize = plates.iter().map(|p| p.cells).sum();
    println!(
        "1. simulate: {} plates, {cells} cells x {} genes in {secs:.2} s ({:.0} cells/s)",
        plates.len(),
        a.genes,
        cells as f64 / secs
    );

    let merged = a.dir.join("merged.h5ad");
    let t = Instant::now();
    let inputs: Vec<PathBuf> = plates.iter().map(|p| p.path.clone()).collect();
    let opts = ConcatOptions {
        label: "plate".into(),
        keys: None,
        join: Join::Inner,
        chunk_rows: g.chunk_rows,
        gzip: None,
        force: true,
    };
    let s = concat(&inputs, &merged, &opts, g.quiet)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "2. concat: {} ({} cells, {} nnz) in {secs:.2} s ({:.0} nnz/s)",
        merged.display(),
        s.n_obs,
        s.nnz,
        s.nnz as f64 / secs
    );

    println!("3. inspect {}:", merged.display());
    for line in crate::io::inspect::describe(&merged)?.lines() {
        println!("   {line}");
    }

    let backend = crate::backend::select(&g.backend_options())?;
    let filter: CellFilter = "pass_filter=full".parse()?;
    let mask = filter.mask(&H5adReader::open(&merged)?.obs()?)?;
    let t = Instant::now();
    let q = qc_pass(
        &merged,
        RowSelection::Mask(Arc::new(mask)),
        backend.as_ref(),
        g.stream_options(),
        g.quiet,
    )?;
    let secs = t.elapsed().as_secs_f64();
    let expressed = q.genes.nnz.iter().filter(|&&n| n > 0).count();
    println!(
        "4. stream X on {} with pass_filter == full: {} cells kept of {}, median UMIs/cell {:.0}, \
         {:.0} genes detected per cell, {expressed} genes expressed, {:.0} cells/s",
        backend.name(),
        q.cells,
        s.n_obs,
        q.median_total,
        q.mean_genes,
        q.cells as f64 / secs
    );
    println!("== done (steps to come: preprocess, pca, neighbors, umap, plot)");
    Ok(())
}
