use std::path::PathBuf;
use std::time::Instant;

use super::GlobalArgs;
use crate::io::concat::{concat, ConcatOptions, Join};
use crate::ops::eigen::EigenSolver;
use crate::ops::preprocess::PreprocessParams;
use crate::sim::{simulate, SimParams};
use crate::workflow::pca::{pca, PcaOptions};
use crate::workflow::preprocess::{preprocess, PreprocessOptions};

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

    let backend = crate::backend::select(&g.backend_options())?;
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
        gzip: None,
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
        gzip: None,
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
    println!("== done (steps to come: neighbors, umap, plot)");
    Ok(())
}
