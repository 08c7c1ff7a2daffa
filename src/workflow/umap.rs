//! `scoop umap`: lays out the `neighbors` graph (`obsp/connectivities`) and writes
//! `obsm/X_umap` and `uns/umap` into a copy of the input's annotations.

use std::path::PathBuf;
use std::time::Instant;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::io::{
    write_element, DenseArray, DenseRowReader, Element, H5adReader, MatrixReader, NumVec,
};
use crate::ops::fuzzy::Graph;
use crate::ops::umap::{default_epochs, umap, Init, RowVisitor, Start, UmapOptions};
use crate::progress::Progress;
use crate::workflow::neighbors::{element_key, visit_representation, Representation, X_REP_MAX};
use crate::workflow::Matrices;

/// Everything `scoop umap` needs.
#[derive(Clone, Debug)]
pub struct UmapRunOptions {
    /// Input `.h5ad` with `obsp/connectivities` (from `scoop neighbors` or scanpy).
    pub input: PathBuf,
    /// Output `.h5ad`.
    pub output: PathBuf,
    /// Layout settings.
    pub umap: UmapOptions,
    /// The `uns` entry naming the graph (scanpy's `neighbors_key`).
    pub neighbors_key: String,
    /// Where the layout starts (scanpy's `init_pos`): an `obsm` key (its first `dim` columns),
    /// else `spectral` or `random`.
    pub init_pos: String,
    /// scanpy's `key_added`: the layout goes to `obsm/<key>` and `uns/<key>` (default
    /// `X_umap` and `umap`).
    pub key_added: Option<String>,
    /// Leave X, raw and layers out of the output.
    pub drop_matrices: bool,
    /// Overwrite an existing output.
    pub force: bool,
    /// No progress bars.
    pub quiet: bool,
}

/// What `umap` did.
#[derive(Clone, Debug)]
pub struct UmapSummary {
    /// Cells.
    pub n_cells: usize,
    /// Directed edges optimized.
    pub n_edges: usize,
    /// Epochs run.
    pub n_epochs: usize,
    /// Curve parameters.
    pub a: f64,
    /// Curve parameters.
    pub b: f64,
    /// The initialization used.
    pub init: Init,
    /// Seconds in the initialization and optimization.
    pub layout_seconds: f64,
    /// Of those, seconds in the initialization and in the SGD epochs.
    pub phase_seconds: (f64, f64),
    /// The input's X, raw and layers, and whether they were copied.
    pub matrices: Matrices,
    /// The written file.
    pub output: PathBuf,
    /// The `obsm` key the layout started from, where it started from given coordinates.
    pub init_pos: String,
    /// The backend that ran the layout ([`Backend::name`]).
    pub backend: String,
}

/// Reads the graph `obsp/<key>` as a square CSR graph with sorted rows.
pub fn read_graph(reader: &H5adReader, key: &str) -> Result<Graph> {
    let path = reader.path();
    let element = format!("/obsp/{key}");
    if !reader.keys("obsp")?.iter().any(|k| k == key) {
        return Err(Error::format(
            path,
            &element,
            "not found (run `scoop neighbors` first)",
        ));
    }
    let obsp = reader.group("obsp")?;
    let m = MatrixReader::open(&obsp, key)?;
    let (n, c) = m.shape();
    let (n_obs, _) = reader.shape()?;
    if n != c || n != n_obs {
        return Err(Error::format(
            path,
            &element,
            format!("expected a {n_obs} x {n_obs} graph, found {n} x {c}"),
        ));
    }
    let chunk = m.read_rows(0..n)?;
    let mut g = Graph {
        n,
        indptr: chunk.indptr,
        indices: chunk.indices,
        data: chunk.data,
    };
    if let Some(v) = g.data.iter().find(|v| !v.is_finite() || **v < 0.0) {
        return Err(Error::format(
            path,
            &element,
            format!("holds the weight {v}; weights must be finite and ≥ 0"),
        ));
    }
    for i in 0..n {
        let r = g.indptr[i]..g.indptr[i + 1];
        if g.indices[r.clone()].windows(2).any(|w| w[0] >= w[1]) {
            let mut row: Vec<(u32, f32)> = g.indices[r.clone()]
                .iter()
                .copied()
                .zip(g.data[r.clone()].iter().copied())
                .collect();
            row.sort_by_key(|e| e.0);
            for (s, (j, w)) in row.into_iter().enumerate() {
                g.indices[r.start + s] = j;
                g.data[r.start + s] = w;
            }
        }
    }
    Ok(g)
}

/// The graph key `uns/<neighbors_key>/connectivities_key` names (default `connectivities`).
fn graph_key(reader: &H5adReader, neighbors_key: &str) -> Result<String> {
    if reader.keys("uns")?.iter().any(|k| k == neighbors_key) {
        if let Element::Dict(items) = reader.element("uns", neighbors_key)? {
            if let Some((_, Element::String(k))) =
                items.iter().find(|(k, _)| k == "connectivities_key")
            {
                return Ok(k.clone());
            }
        }
    }
    Ok("connectivities".to_string())
}

/// The representation the graph was built on, as scanpy's `tl.umap` chooses it for umap's
/// component layout: `uns/<neighbors_key>/params/use_rep` (an obsm array's first `n_pcs`
/// columns when the params name them, or `X`), else scanpy's default ([`Representation::choose`]);
/// streamed to `visit` as [`crate::ops::umap::SourceData`] says. `Ok(false)` where that is an
/// `X` this file lacks (or too wide to read dense) or a missing `X_pca` (umap then places
/// components at random).
fn source_data(
    reader: &H5adReader,
    neighbors_key: &str,
    visit: &mut RowVisitor<'_>,
) -> Result<bool> {
    let params = if reader.keys("uns")?.iter().any(|k| k == neighbors_key) {
        reader.element("uns", neighbors_key)?.get("params").cloned()
    } else {
        None
    };
    let param = |key: &str| params.as_ref().and_then(|p| p.get(key));
    let use_rep = match param("use_rep") {
        Some(Element::String(rep)) => Some(rep.as_str()),
        _ => None,
    };
    let n_pcs = match param("n_pcs") {
        Some(Element::Scalar(v)) => v.to_f64().first().map(|&p| p as usize),
        _ => None,
    };
    let rep = Representation::choose(reader, use_rep)?;
    let usable = match &rep {
        Representation::X => reader.has_x() && reader.shape()?.1 <= X_REP_MAX,
        Representation::Obsm(k) => k != "X_pca" || reader.keys("obsm")?.iter().any(|x| x == k),
    };
    if !usable {
        return Ok(false);
    }
    visit_representation(reader, &rep, n_pcs, visit).map(|_| true)
}

/// The starting layout `init_pos` names, as scanpy resolves it: an `obsm` key first (its first
/// `dim` columns, read here), then `spectral` or `random`.
fn start_coords(reader: &H5adReader, init_pos: &str, dim: usize) -> Result<Option<Vec<f32>>> {
    let path = reader.path();
    if reader.keys("obsm")?.iter().any(|k| k == init_pos) {
        let obsm = reader.group("obsm")?;
        let r = DenseRowReader::open(&obsm, init_pos)?;
        let (n, d) = r.shape();
        let (n_obs, _) = reader.shape()?;
        let element = format!("/obsm/{init_pos}");
        if n != n_obs || d < dim {
            return Err(Error::format(
                path,
                &element,
                format!(
                    "--init-pos: a start needs {n_obs} rows of at least {dim} columns \
                     (--n-components), found {n} x {d}"
                ),
            ));
        }
        return Ok(Some(r.read_all(dim, 1 << 16)?));
    }
    match init_pos {
        "spectral" | "random" => Ok(None),
        other => Err(Error::format(
            path,
            format!("/obsm/{other}"),
            "--init-pos: not found, and not `spectral` or `random` (paga is not supported)",
        )),
    }
}

/// Runs `umap` as the options say.
pub fn run_umap(opts: &UmapRunOptions, backend: &dyn Backend) -> Result<UmapSummary> {
    opts.umap.check()?;
    let reader = H5adReader::open(&opts.input)?;
    let set = super::single_output(&opts.input, &opts.output, opts.force)?;
    let (obsm_key, uns_key) = match &opts.key_added {
        Some(k) => (element_key(k, "--key-added")?, k.as_str()),
        None => ("X_umap", "umap"),
    };
    let key = graph_key(&reader, &opts.neighbors_key)?;
    let g = read_graph(&reader, &key)?;
    let given = start_coords(&reader, &opts.init_pos, opts.umap.dim)?;
    let start = match (&given, opts.init_pos.as_str()) {
        (Some(c), _) => Start::Given(c),
        (None, "random") => Start::Random,
        (None, _) => Start::Spectral,
    };
    let n = g.n;
    let t = Instant::now();
    let epochs = opts.umap.n_epochs.unwrap_or_else(|| default_epochs(n));
    let bar = Progress::new("umap epochs", epochs as u64, opts.quiet);
    let source = |visit: &mut RowVisitor<'_>| source_data(&reader, &opts.neighbors_key, visit);
    let skip = [format!("obsm/{obsm_key}"), format!("uns/{uns_key}")];
    let skip: Vec<&str> = skip.iter().map(String::as_str).collect();
    let (out, u) = super::compute_while_copying(
        &reader,
        &set,
        &opts.output,
        &skip,
        opts.drop_matrices,
        || umap(&g, &source, start, &opts.umap, backend, &|_| bar.inc(1)),
    )?;
    bar.finish();
    drop((g, given));
    let layout_seconds = t.elapsed().as_secs_f64();
    let obsm = out.group("obsm")?;
    write_element(
        &obsm,
        obsm_key,
        &Element::Array(DenseArray::new(vec![n, u.dim], NumVec::F32(u.embedding))),
    )?;
    let uns = out.group("uns")?;
    let f = |v: f64| Element::Scalar(NumVec::F64(vec![v]));
    // scanpy names the seed only when it is not 0.
    let mut params = vec![("a".to_string(), f(u.a)), ("b".to_string(), f(u.b))];
    if opts.umap.seed != 0 {
        params.push((
            "random_state".to_string(),
            Element::Scalar(NumVec::I64(vec![opts.umap.seed as i64])),
        ));
    }
    write_element(
        &uns,
        uns_key,
        &Element::Dict(vec![("params".to_string(), Element::Dict(params))]),
    )?;
    out.close()?;
    set.commit()?;
    let output = opts.output.clone();
    Ok(UmapSummary {
        matrices: Matrices::unless_dropped(&reader, opts.drop_matrices)?,
        n_cells: n,
        n_edges: u.n_edges,
        n_epochs: u.n_epochs,
        a: u.a,
        b: u.b,
        init: u.init,
        layout_seconds,
        phase_seconds: u.seconds,
        output,
        init_pos: opts.init_pos.clone(),
        backend: backend.name(),
    })
}
