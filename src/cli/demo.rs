use std::path::PathBuf;
use std::time::Instant;

use super::GlobalArgs;
use crate::io::concat::{concat, ConcatOptions, Join};
use crate::io::Codec;
use crate::ops::eigen::EigenSolver;
use crate::ops::knn::KnnMethod;
use crate::ops::preprocess::PreprocessParams;
use crate::ops::umap::UmapOptions;
use crate::sim::{simulate, SimParams};
use crate::workflow::neighbors::{neighbors, NeighborsOptions};
use crate::workflow::pca::{pca, PcaOptions};
use crate::workflow::plot::{plot, PlotRunOptions};
use crate::workflow::preprocess::{preprocess, PreprocessOptions};
use crate::workflow::subsample::{subsample, SubsampleOptions};
use crate::workflow::umap::{run_umap, UmapRunOptions};

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
    /// Highly variable genes per plate.
    #[arg(long, default_value_t = 1_000)]
    n_top_genes: usize,
    /// Principal components.
    #[arg(long, default_value_t = 300)]
    n_comps: usize,
    /// Cells drawn for neighbors, UMAP and the plot.
    #[arg(long, default_value_t = 30_000)]
    subsample: usize,
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
        // gzip, as the released Tahoe-100M plates are.
        compression: Codec::Gzip(Codec::GZIP_DEFAULT),
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
    if let Some(first) = plates.first() {
        read_paths(&first.path, g)?;
    }

    let backend = crate::backend::select(&g.backend_options()?)?;
    let pre_dir = a.dir.join("preprocessed");
    let t = Instant::now();
    let opts = PreprocessOptions {
        inputs: plates.iter().map(|p| p.path.clone()).collect(),
        out_dir: pre_dir.clone(),
        filter: Some("pass_filter=full".parse()?),
        params: PreprocessParams {
            n_top_genes: a.n_top_genes,
            ..PreprocessParams::default()
        },
        min_plates: a.plates.min(3),
        stream: g.stream_options(),
        compression: Codec::None,
        force: true,
        quiet: g.quiet,
    };
    let pre = preprocess(&opts, backend.as_ref())?;
    let secs = t.elapsed().as_secs_f64();
    let kept: u64 = pre.plates.iter().map(|p| p.stats.cells).sum();
    println!(
        "2. preprocess on {} (pass_filter == full, normalize_total, log1p, seurat HVG top {} per \
         plate): {kept} of {cells} cells kept, {} genes highly variable in >= {} plates, \
         {secs:.2} s ({:.0} cells/s)",
        backend.name(),
        a.n_top_genes,
        pre.n_selected(),
        opts.min_plates,
        cells as f64 / secs
    );
    for p in &pre.plates {
        println!(
            "   {}: target sum {}, {} cells kept, {} HVGs",
            p.output.display(),
            p.stats.target_sum,
            p.stats.cells,
            p.stats.hvg.n_highly_variable()
        );
    }

    let merged = a.dir.join("merged.h5ad");
    let t = Instant::now();
    let inputs: Vec<PathBuf> = pre.plates.iter().map(|p| p.output.clone()).collect();
    let keys: Vec<String> = plates
        .iter()
        .map(|p| {
            p.path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .trim_end_matches("_filtered")
                .to_string()
        })
        .collect();
    let opts = ConcatOptions {
        label: "plate".into(),
        keys: Some(keys),
        join: Join::Inner,
        chunk_rows: g.chunk_rows,
        compression: Codec::None,
        force: true,
    };
    let s = concat(&inputs, &merged, &opts, g.quiet)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "3. concat: {} ({} cells x {} genes, {} nnz) in {secs:.2} s ({:.0} nnz/s)",
        merged.display(),
        s.n_obs,
        s.n_vars,
        s.nnz,
        s.nnz as f64 / secs
    );

    println!("4. inspect {}:", merged.display());
    for line in crate::io::inspect::describe(&merged)?.lines() {
        println!("   {line}");
    }

    let pca_out = a.dir.join("pca.h5ad");
    let pca_zarr = a.dir.join("X_pca.zarr");
    let opts = PcaOptions {
        input: merged.clone(),
        output: pca_out,
        zarr: Some(pca_zarr),
        n_comps: a.n_comps.min(s.n_vars).min(s.n_obs),
        solver: EigenSolver::Auto,
        drop_matrices: false,
        stream: g.stream_options(),
        force: true,
        quiet: g.quiet,
    };
    let t = Instant::now();
    let p = pca(&opts, backend.as_ref())?;
    let secs = t.elapsed().as_secs_f64();
    let ratios: Vec<String> = p
        .fit
        .variance_ratio
        .iter()
        .take(3)
        .map(|r| format!("{r:.4}"))
        .collect();
    println!(
        "5. pca: {} components of {} cells x {} genes in {secs:.2} s (gram {:.2} s at {:.2e} \
         pair-updates/s, eigen {:.2} s, projection + write {:.2} s); variance ratio {}, ... \
         -> {}, {}",
        p.fit.k,
        p.fit.n_rows,
        p.fit.dim,
        p.gram_seconds,
        p.pair_updates as f64 / p.gram_seconds.max(1e-9),
        p.eigen_seconds,
        p.project_seconds,
        ratios.join(", "),
        p.output.display(),
        p.zarr
            .as_ref()
            .map(|z| z.display().to_string())
            .unwrap_or_default()
    );

    // 6-9: the visual end: a random subset, its kNN graph, UMAP, and the plot.
    let sub = a.dir.join("subsample.h5ad");
    let t = Instant::now();
    let ss = subsample(&SubsampleOptions {
        input: p.output.clone(),
        output: sub.clone(),
        n: a.subsample.min(p.fit.n_rows as usize),
        seed: 0,
        replace: false,
        with_x: false,
        block_rows: g.chunk_rows,
        force: true,
        quiet: g.quiet,
    })?;
    println!(
        "6. subsample: {} of {} cells in {:.2} s -> {}",
        ss.n_output,
        ss.n_input,
        t.elapsed().as_secs_f64(),
        ss.output.display()
    );
    let nb = a.dir.join("neighbors.h5ad");
    let n = neighbors(
        &NeighborsOptions {
            input: sub,
            output: nb.clone(),
            n_neighbors: 15,
            use_rep: Some("X_pca".into()),
            n_pcs: None,
            method: KnnMethod::Auto,
            seed: 0,
            key_added: None,
            drop_matrices: false,
            force: true,
            quiet: g.quiet,
        },
        backend.as_ref(),
    )?;
    println!(
        "7. neighbors: 15 of {} cells on {} components ({:?}) in {:.2} s, connectivities {:.2} s -> {}",
        n.n_cells,
        n.n_dims,
        n.method,
        n.knn_seconds,
        n.fuzzy_seconds,
        n.output.display()
    );
    let um = a.dir.join("umap.h5ad");
    let u = run_umap(
        &UmapRunOptions {
            input: nb,
            output: um.clone(),
            umap: UmapOptions::default(),
            neighbors_key: "neighbors".into(),
            init_pos: "spectral".into(),
            key_added: None,
            drop_matrices: false,
            force: true,
            quiet: g.quiet,
        },
        backend.as_ref(),
    )?;
    println!(
        "8. umap: {} cells, {} edges, {} epochs in {:.2} s -> {}",
        u.n_cells,
        u.n_edges,
        u.n_epochs,
        u.layout_seconds,
        u.output.display()
    );
    let png = a.dir.join("umap.png");
    let t = Instant::now();
    plot(&PlotRunOptions {
        input: um,
        output: png.clone(),
        basis: "umap".into(),
        color: vec!["cell_line".into(), "plate".into()],
        size_px: 480,
        dpi: 100.0,
        point_size: None,
        force: true,
    })?;
    println!(
        "9. plot: cell_line, plate in {:.2} s -> {}",
        t.elapsed().as_secs_f64(),
        png.display()
    );
    println!("== done");
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
