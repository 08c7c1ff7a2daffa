//! The end of `scoop run`, on the subset: the neighbors graph, the UMAP layout and the figure,
//! through the commands' own workflow functions (each reads the previous step's file).

use std::path::Path;

use serde_json::{json, Value};

use super::runner::Outcome;
use super::RunParams;
use crate::backend::Backend;
use crate::error::Result;
use crate::ops::knn::KnnMethod;
use crate::ops::umap::UmapOptions;
use crate::workflow::neighbors::{neighbors, NeighborsOptions};
use crate::workflow::plot::{plot, PlotRunOptions};
use crate::workflow::umap::{run_umap, UmapRunOptions};

/// `scoop neighbors` of `subset` on `obsm/X_pca` into `out`.
pub(crate) fn neighbors_step(
    subset: &Path,
    out: &Path,
    params: &RunParams,
    backend: &dyn Backend,
    quiet: bool,
) -> Result<Outcome> {
    let s = neighbors(
        &NeighborsOptions {
            input: subset.to_path_buf(),
            output: out.to_path_buf(),
            n_neighbors: params.n_neighbors,
            use_rep: Some("X_pca".into()),
            n_pcs: None,
            method: KnnMethod::Auto,
            seed: params.seed,
            key_added: None,
            drop_matrices: false,
            force: true,
            quiet,
        },
        backend,
    )?;
    let values = (s.n_cells * s.n_dims) as u64;
    Ok(Outcome {
        reads: vec![(0, s.n_cells as u64, values)],
        outputs: vec![out.to_path_buf()],
        cells: s.n_cells as u64,
        values,
        result: json!({ "n_neighbors": s.n_neighbors, "method": format!("{:?}", s.method) }),
    })
}

/// `scoop umap` of `graph` into `out`.
pub(crate) fn umap_step(
    graph: &Path,
    out: &Path,
    umap: UmapOptions,
    backend: &dyn Backend,
    quiet: bool,
) -> Result<Outcome> {
    let u = run_umap(
        &UmapRunOptions {
            input: graph.to_path_buf(),
            output: out.to_path_buf(),
            umap,
            neighbors_key: "neighbors".into(),
            init_pos: "spectral".into(),
            key_added: None,
            drop_matrices: false,
            force: true,
            quiet,
        },
        backend,
    )?;
    Ok(Outcome {
        reads: vec![(0, u.n_cells as u64, u.n_edges as u64)],
        outputs: vec![out.to_path_buf()],
        cells: u.n_cells as u64,
        values: u.n_edges as u64,
        result: json!({ "n_epochs": u.n_epochs, "n_edges": u.n_edges }),
    })
}

/// `scoop plot` of `layout`'s `obsm/X_umap` colored by `color` into `figure` (its extension names
/// the format).
pub(crate) fn plot_step(
    layout: &Path,
    figure: &Path,
    color: &[String],
    cells: u64,
) -> Result<Outcome> {
    plot(&PlotRunOptions {
        input: layout.to_path_buf(),
        output: figure.to_path_buf(),
        basis: "umap".into(),
        color: color.to_vec(),
        size_px: 480,
        dpi: 100.0,
        point_size: None,
        force: true,
    })?;
    Ok(Outcome {
        reads: vec![(0, cells, 0)],
        outputs: vec![figure.to_path_buf()],
        cells,
        values: 0,
        result: Value::Null,
    })
}
