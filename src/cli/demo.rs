//! `scoop demo`: simulated gzip plates, then `scoop run` on them.

use std::path::PathBuf;
use std::time::Instant;

use super::GlobalArgs;
use crate::io::Codec;
use crate::sim::{simulate, SimParams};
use crate::workflow::run::{run as run_workflow, RunConfig};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Working directory: plates in DIR/plates, the run's outputs in DIR/run. The plates are
    /// simulated again each time, so the run redoes every step.
    #[arg(long, default_value = "scoop-demo")]
    dir: PathBuf,
    /// Plates to simulate.
    #[arg(long, default_value_t = 3)]
    plates: usize,
    /// Cells per plate.
    #[arg(long, default_value_t = 10_000)]
    cells_per_plate: usize,
    /// Genes.
    #[arg(long, default_value_t = 4_000)]
    genes: usize,
    /// Highly variable genes per plate.
    #[arg(long, default_value_t = 1_000)]
    n_top_genes: usize,
    /// Principal components [default: 300, or fewer if fewer genes are selected].
    #[arg(long)]
    n_comps: Option<usize>,
    /// Cells drawn for neighbors, UMAP and the plot.
    #[arg(long, default_value_t = 20_000)]
    subsample: usize,
}

pub fn run(a: Args, g: &GlobalArgs) -> anyhow::Result<()> {
    let plates_dir = a.dir.join("plates");
    let out_dir = a.dir.join("run");
    println!("== scoop demo in {}/", a.dir.display());
    let t = Instant::now();
    let params = SimParams {
        plates: a.plates,
        cells_per_plate: a.cells_per_plate,
        genes: a.genes,
        chunk_rows: g.chunk_rows,
        // gzip, as the released Tahoe-100M plates are.
        compression: Codec::Gzip(Codec::GZIP_DEFAULT),
        ..SimParams::default()
    };
    let plates = simulate(&params, &plates_dir, true, g.quiet)?;
    let secs = t.elapsed().as_secs_f64();
    let cells: usize = plates.iter().map(|p| p.cells).sum();
    println!(
        "simulated {} gzip plates, {cells} cells x {} genes, in {secs:.2} s ({:.0} cells/s)",
        plates.len(),
        a.genes,
        cells as f64 / secs
    );
    if let Some(first) = plates.first() {
        read_paths(&first.path, g)?;
    }

    let config = RunConfig {
        plates: plates.iter().map(|p| p.path.clone()).collect(),
        out_dir: Some(out_dir.clone()),
        filter: Some("pass_filter=full".into()),
        n_top_genes: a.n_top_genes,
        n_comps: a.n_comps,
        subsample: a.subsample,
        devices: g.devices.clone(),
        chunk_rows: g.chunk_rows,
        quiet: g.quiet,
        ..RunConfig::default()
    };
    // What `scoop run` with these flags does.
    let mut cmd = format!("scoop run {}/*.h5ad", plates_dir.display());
    cmd.push_str(&format!(
        " --out-dir {} --filter pass_filter=full --n-top-genes {} --subsample {}",
        out_dir.display(),
        a.n_top_genes,
        a.subsample
    ));
    if let Some(k) = a.n_comps {
        cmd.push_str(&format!(" --n-comps {k}"));
    }
    println!("{cmd}");
    let backend = crate::backend::select(&g.backend_options()?)?;
    let summary = run_workflow(&config, backend.as_ref())?;
    println!("{summary}");
    Ok(())
}

/// Times one pass over `plate`'s gzip-compressed X through each read path: the parallel chunk
/// reader (positioned reads, chunks decoded on every core outside HDF5's lock) and HDF5's own
/// (one reader thread behind its lock).
fn read_paths(plate: &std::path::Path, g: &GlobalArgs) -> anyhow::Result<()> {
    use crate::io::chunks::{default_read_path, set_default_read_path, ReadPath};
    use crate::stream::{scan_x, RowSelection};
    let chosen = default_read_path();
    let rate = |path: ReadPath| -> anyhow::Result<(u64, f64)> {
        set_default_read_path(path);
        let t = Instant::now();
        let s = scan_x(plate, RowSelection::All, g.stream_options());
        set_default_read_path(chosen);
        Ok((s?.nnz, t.elapsed().as_secs_f64()))
    };
    let (nnz, parallel) = rate(ReadPath::Parallel)?;
    let (_, hdf5) = rate(ReadPath::Hdf5)?;
    println!(
        "   reading {}'s X (gzip, {nnz} stored values): {:.2e} values/s with the parallel chunk \
         reader on {} threads, {:.2e} through HDF5 alone ({:.1}x)",
        plate.display(),
        nnz as f64 / parallel.max(1e-9),
        rayon::current_num_threads(),
        nnz as f64 / hdf5.max(1e-9),
        hdf5 / parallel.max(1e-9)
    );
    Ok(())
}
