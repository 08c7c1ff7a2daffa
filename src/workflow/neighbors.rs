//! `scoop neighbors`: the kNN graph of a representation (`obsm/X_pca`), with umap's fuzzy
//! connectivities, written as scanpy's `pp.neighbors` writes them (`obsp/distances`,
//! `obsp/connectivities`, `uns/neighbors`) into a copy of the input's annotations.

use std::path::PathBuf;
use std::time::Instant;

use crate::backend::{Backend, Points};
use crate::error::{Error, Result};
use crate::io::csr::write_csr;
use crate::io::{write_element, CsrChunk, DenseRowReader, Element, H5adReader, NumVec, RowIds};
use crate::ops::fuzzy::{connectivities, distance_graph, Graph};
use crate::ops::knn::{exact, nn_descent_owned, DescentOptions, DescentReport, Knn, KnnMethod};
use crate::ops::umap::RowVisitor;
use crate::progress::Progress;

/// Everything `scoop neighbors` needs.
#[derive(Clone, Debug)]
pub struct NeighborsOptions {
    /// Input `.h5ad` (holding the representation).
    pub input: PathBuf,
    /// Output `.h5ad`.
    pub output: PathBuf,
    /// Neighbours per cell, the cell itself included (scanpy's `n_neighbors`).
    pub n_neighbors: usize,
    /// The representation: an `obsm` key or `X`; `None` chooses as scanpy does
    /// ([`Representation::choose`]).
    pub use_rep: Option<String>,
    /// Leading columns of the representation to use (all when `None`; an `obsm` array's only).
    pub n_pcs: Option<usize>,
    /// Exact or approximate search.
    pub method: KnnMethod,
    /// Seed of the approximate search.
    pub seed: u64,
    /// scanpy's `key_added`: where the graph goes ([`GraphKeys`]).
    pub key_added: Option<String>,
    /// Leave X, raw and layers out of the output.
    pub drop_matrices: bool,
    /// Overwrite an existing output.
    pub force: bool,
    /// No progress bars.
    pub quiet: bool,
}

/// What `neighbors` did.
#[derive(Clone, Debug)]
pub struct NeighborsSummary {
    /// What the search ran on.
    pub representation: Representation,
    /// Cells.
    pub n_cells: usize,
    /// Neighbours per cell searched: the option's, or fewer on a small dataset
    /// ([`effective_n_neighbors`]).
    pub n_neighbors: usize,
    /// Columns of the representation used.
    pub n_dims: usize,
    /// The search that ran.
    pub method: KnnMethod,
    /// What NN-descent did (heaps, intrinsic dimension, checked recall), where it ran.
    pub descent: Option<DescentReport>,
    /// Stored connectivities.
    pub nnz: usize,
    /// Seconds reading the representation.
    pub read_seconds: f64,
    /// Seconds in the kNN search.
    pub knn_seconds: f64,
    /// Seconds computing connectivities.
    pub fuzzy_seconds: f64,
    /// The input's X, raw and layers, and whether they were copied.
    pub matrices: super::Matrices,
    /// The written file.
    pub output: PathBuf,
    /// The backend that ran the search ([`Backend::name`]).
    pub backend: String,
}

/// Where a neighbors graph is stored, as scanpy's `pp.neighbors(key_added=…)` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphKeys {
    /// The `uns` entry describing the graph (`neighbors`, or the key added).
    pub uns: String,
    /// `obsp` key of the distances (`distances`, or `<key>_distances`).
    pub distances: String,
    /// `obsp` key of the connectivities (`connectivities`, or `<key>_connectivities`).
    pub connectivities: String,
}

impl GraphKeys {
    /// scanpy's names for `key_added` (`None`: the defaults). Fails on a key that is empty or
    /// holds a `/` (it names HDF5 groups).
    pub fn new(key_added: Option<&str>) -> Result<Self> {
        Ok(match key_added {
            None => GraphKeys {
                uns: "neighbors".into(),
                distances: "distances".into(),
                connectivities: "connectivities".into(),
            },
            Some(k) => GraphKeys {
                uns: element_key(k, "--key-added")?.into(),
                distances: format!("{k}_distances"),
                connectivities: format!("{k}_connectivities"),
            },
        })
    }
}

/// `key`, when it can name an HDF5 group member (not empty, no `/`, not `.`/`..`).
pub(crate) fn element_key<'k>(key: &'k str, flag: &str) -> Result<&'k str> {
    if key.is_empty() || key.contains('/') || key == "." || key == ".." {
        return Err(Error::InvalidArgument(format!(
            "{flag} {key:?}: a key names one element: not empty, no '/'"
        )));
    }
    Ok(key)
}

/// Bytes per block of a representation read (dense f32 rows).
const OBSM_BLOCK_BYTES: usize = 8 << 20;

/// Genes up to which scanpy takes `X` itself as the representation (`settings.N_PCS`).
pub const X_REP_MAX_DEFAULT: usize = 50;

/// Most genes `X` may have to be a representation: it is read dense, n x genes (a larger `X`
/// wants a PCA first).
pub const X_REP_MAX: usize = 4096;

/// What the kNN search runs on (scanpy's `use_rep`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Representation {
    /// `obsm/<key>`.
    Obsm(String),
    /// `X`, read dense.
    X,
}

impl Representation {
    /// The representation `use_rep` names (`X` or an obsm key); for `None` scanpy's choice:
    /// `X_pca` above [`X_REP_MAX_DEFAULT`] genes, else `X`, or `X_pca` where there is no `X`
    /// (a file of annotations alone, such as `scoop subsample` writes without `--with-x`).
    pub fn choose(reader: &H5adReader, use_rep: Option<&str>) -> Result<Self> {
        Ok(match use_rep {
            Some("X") => Representation::X,
            Some(key) => Representation::Obsm(key.to_string()),
            None if reader.shape()?.1 <= X_REP_MAX_DEFAULT && reader.has_x() => Representation::X,
            None => Representation::Obsm("X_pca".to_string()),
        })
    }

    /// Its name as scanpy writes `use_rep`.
    pub fn name(&self) -> &str {
        match self {
            Representation::Obsm(k) => k,
            Representation::X => "X",
        }
    }

    /// The h5ad element it is read from (`/obsm/<key>` or `/X`).
    pub fn element(&self) -> String {
        match self {
            Representation::Obsm(k) => format!("/obsm/{k}"),
            Representation::X => "/X".to_string(),
        }
    }
}

/// Reads the representation as f32 rows and their width: the first `n_cols` (all when `None`)
/// columns of an obsm array, or all of `X` (`n_cols` does not apply to it, as in scanpy).
pub fn read_representation(
    reader: &H5adReader,
    rep: &Representation,
    n_cols: Option<usize>,
) -> Result<(Vec<f32>, usize)> {
    let (n, _) = reader.shape()?;
    let mut out: Vec<f32> = Vec::new();
    // Each block is read into a buffer of its own, then copied: small blocks keep that off the
    // peak (the whole representation is held once).
    let width = visit_representation(reader, rep, n_cols, &mut |rows, w| {
        if out.capacity() == 0 {
            out.reserve_exact(n * w);
        }
        out.extend_from_slice(rows);
        Ok(())
    })?;
    Ok((out, width))
}

/// [`read_representation`]'s rows streamed: `visit(rows, width)` on blocks of about
/// [`OBSM_BLOCK_BYTES`] of consecutive rows, in order, covering every row once; returns the
/// width. Holds one block at a time.
pub fn visit_representation(
    reader: &H5adReader,
    rep: &Representation,
    n_cols: Option<usize>,
    visit: &mut RowVisitor<'_>,
) -> Result<usize> {
    match rep {
        Representation::Obsm(key) => visit_obsm(reader, key, n_cols, visit),
        Representation::X => visit_x_dense(reader, visit),
    }
}

/// Rows per block of `width` f32 columns.
fn block_rows(width: usize) -> usize {
    (OBSM_BLOCK_BYTES / (4 * width.max(1))).max(1)
}

/// All of `X` as dense f32 rows (at most [`X_REP_MAX`] genes), block by block.
fn visit_x_dense(reader: &H5adReader, visit: &mut RowVisitor<'_>) -> Result<usize> {
    let x = reader.x()?;
    let (n, genes) = x.shape();
    let (n_obs, _) = reader.shape()?;
    if n != n_obs {
        return Err(Error::format(
            reader.path(),
            "/X",
            format!("has {n} rows, obs has {n_obs}"),
        ));
    }
    if genes == 0 || genes > X_REP_MAX {
        return Err(Error::format(
            reader.path(),
            "/X",
            format!(
                "has {genes} genes: a kNN on X takes 1 to {X_REP_MAX} (run `scoop pca` and use \
                 X_pca)"
            ),
        ));
    }
    let step = block_rows(genes);
    let mut block = Vec::new();
    for start in (0..n).step_by(step) {
        let end = (start + step).min(n);
        let chunk = x.read_rows(start..end)?;
        block.clear();
        block.resize((end - start) * genes, 0f32);
        for (r, row) in block.chunks_exact_mut(genes).enumerate() {
            let (cols, vals) = chunk.row(r);
            for (&c, &v) in cols.iter().zip(vals) {
                // Repeated columns add up, as scipy densifies them.
                let slot = row.get_mut(c as usize).ok_or_else(|| {
                    Error::format(
                        reader.path(),
                        "/X/indices",
                        format!("column {c} in row {}: X has {genes} columns", start + r),
                    )
                })?;
                *slot += v;
            }
        }
        visit(&block, genes)?;
    }
    Ok(genes)
}

/// The first `n_cols` (all when `None`) columns of `obsm/<key>` as f32 rows, block by block.
fn visit_obsm(
    reader: &H5adReader,
    key: &str,
    n_cols: Option<usize>,
    visit: &mut RowVisitor<'_>,
) -> Result<usize> {
    let path = reader.path();
    if !reader.keys("obsm")?.iter().any(|k| k == key) {
        return Err(Error::format(
            path,
            format!("/obsm/{key}"),
            "not found (run `scoop pca` first, or name another obsm key with --use-rep)",
        ));
    }
    let obsm = reader.group("obsm")?;
    let r = DenseRowReader::open(&obsm, key)?;
    let (n, d) = r.shape();
    let (n_obs, _) = reader.shape()?;
    if n != n_obs {
        return Err(Error::format(
            path,
            format!("/obsm/{key}"),
            format!("has {n} rows, obs has {n_obs}"),
        ));
    }
    let cols = n_cols.unwrap_or(d);
    if cols == 0 || cols > d {
        return Err(Error::format(
            path,
            format!("/obsm/{key}"),
            format!("--n-pcs {cols}: the array has {d} columns"),
        ));
    }
    let step = block_rows(cols);
    for start in (0..n).step_by(step) {
        visit(&r.read_rows(start..(start + step).min(n), cols)?, cols)?;
    }
    Ok(cols)
}

/// A graph as the CSR chunk the writer takes.
pub(crate) fn graph_chunk(g: Graph) -> CsrChunk {
    CsrChunk {
        rows: RowIds::Range(0..g.n as u64),
        n_cols: g.n,
        indptr: g.indptr,
        indices: g.indices,
        data: g.data,
    }
}

/// Runs the kNN search the options ask for on the points `data` (row-major, `dim` columns,
/// taken by value: NN-descent reorders them in place rather than copying them, and they are
/// freed when the search ends): the graph, the method that ran and, for NN-descent, its report.
pub fn knn_graph(
    data: Vec<f32>,
    dim: usize,
    opts: &NeighborsOptions,
    backend: &dyn Backend,
) -> Result<(Knn, KnnMethod, Option<DescentReport>)> {
    let n = Points::new(&data, dim)?.len();
    let method = opts.method.resolve(n, backend);
    let mut descent = None;
    let knn = match method {
        KnnMethod::Approx => {
            let d = DescentOptions::for_n(n, opts.n_neighbors, opts.seed);
            let bar = Progress::new("knn rounds", d.max_iters as u64, opts.quiet);
            let r = nn_descent_owned(data, dim, opts.n_neighbors, &d, &|_| bar.inc(1));
            bar.finish();
            let (knn, report) = r?;
            descent = Some(report);
            knn
        }
        _ => {
            let bar = Progress::new("knn exact", n as u64, opts.quiet);
            let points = Points::new(&data, dim)?;
            let r = exact(points, opts.n_neighbors, backend, &|c| bar.inc(c as u64));
            bar.finish();
            r?
        }
    };
    Ok((knn, method, descent))
}

/// The neighbours per cell searched among `n_obs` cells when `n_neighbors` were asked for: as
/// scanpy, more than there are cells becomes `1 + n_obs / 2` (scanpy warns "n_obs too small").
pub fn effective_n_neighbors(n_neighbors: usize, n_obs: usize) -> usize {
    if n_neighbors > n_obs {
        1 + n_obs / 2
    } else {
        n_neighbors
    }
}

/// Runs `neighbors` as the options say.
pub fn neighbors(opts: &NeighborsOptions, backend: &dyn Backend) -> Result<NeighborsSummary> {
    let keys = GraphKeys::new(opts.key_added.as_deref())?;
    let reader = H5adReader::open(&opts.input)?;
    let set = super::single_output(&opts.input, &opts.output, opts.force)?;
    let t = Instant::now();
    let rep = Representation::choose(&reader, opts.use_rep.as_deref())?;
    if rep == Representation::X && opts.n_pcs.is_some() {
        eprintln!("warning: --n-pcs does not apply to X (scanpy ignores it too); using all genes");
    }
    let (data, dim) = read_representation(&reader, &rep, opts.n_pcs)?;
    let n = Points::new(&data, dim)
        .map_err(|e| Error::format(&opts.input, rep.element(), e.to_string()))?
        .len();
    let read_seconds = t.elapsed().as_secs_f64();
    let k = effective_n_neighbors(opts.n_neighbors, n);
    let adjusted;
    let opts = if k == opts.n_neighbors {
        opts
    } else {
        eprintln!(
            "warning: {n} cells are fewer than --n-neighbors {}: using {k} (1 + n/2, as scanpy)",
            opts.n_neighbors
        );
        adjusted = NeighborsOptions {
            n_neighbors: k,
            ..opts.clone()
        };
        &adjusted
    };

    let skip = [
        format!("obsp/{}", keys.distances),
        format!("obsp/{}", keys.connectivities),
        format!("uns/{}", keys.uns),
    ];
    let skip: Vec<&str> = skip.iter().map(String::as_str).collect();
    let t = Instant::now();
    let (out, (knn, method, descent)) = super::compute_while_copying(
        &reader,
        &set,
        &opts.output,
        &skip,
        opts.drop_matrices,
        || knn_graph(data, dim, opts, backend),
    )?;
    // The points and the search's buffers are freed: their pages go back before the graphs are
    // built.
    crate::mem::release_free_memory();
    let knn_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let conn = connectivities(&knn);
    let dist = distance_graph(&knn);
    drop(knn);
    let fuzzy_seconds = t.elapsed().as_secs_f64();
    let nnz = conn.nnz();
    let obsp = out.group("obsp")?;
    write_csr(&obsp, &keys.distances, &graph_chunk(dist))?;
    write_csr(&obsp, &keys.connectivities, &graph_chunk(conn))?;
    let uns = out.group("uns")?;
    write_element(&uns, &keys.uns, &uns_neighbors(opts, &keys))?;
    out.close()?;
    set.commit()?;
    let output = opts.output.clone();
    Ok(NeighborsSummary {
        matrices: super::Matrices::unless_dropped(&reader, opts.drop_matrices)?,
        representation: rep,
        descent,
        n_cells: n,
        n_neighbors: k,
        n_dims: dim,
        method,
        nnz,
        read_seconds,
        knn_seconds,
        fuzzy_seconds,
        output,
        backend: backend.name(),
    })
}

/// `uns['neighbors']` (or the key added) as scanpy writes it.
fn uns_neighbors(opts: &NeighborsOptions, keys: &GraphKeys) -> Element {
    let s = |v: &str| Element::String(v.to_string());
    let int = |v: i64| Element::Scalar(NumVec::I64(vec![v]));
    let mut params = vec![
        ("n_neighbors".to_string(), int(opts.n_neighbors as i64)),
        ("method".to_string(), s("umap")),
        ("random_state".to_string(), int(opts.seed as i64)),
        ("metric".to_string(), s("euclidean")),
    ];
    // scanpy names the representation only when it was given.
    if let Some(rep) = &opts.use_rep {
        params.push(("use_rep".to_string(), s(rep)));
    }
    if let Some(p) = opts.n_pcs {
        params.push(("n_pcs".to_string(), int(p as i64)));
    }
    Element::Dict(vec![
        ("connectivities_key".to_string(), s(&keys.connectivities)),
        ("distances_key".to_string(), s(&keys.distances)),
        ("params".to_string(), Element::Dict(params)),
    ])
}
