//! `scoop pca`: out-of-core PCA of an `.h5ad`'s X, written as scanpy writes it (`obsm/X_pca`,
//! `varm/PCs`, `uns/pca`) into a new `.h5ad` holding the input's obs, var, uns, other obsm,
//! varm, obsp and varp entries, and its X, raw and layers (copied inside HDF5, unless dropped),
//! and optionally as a Zarr v2 array written while projecting.
//!
//! Two passes over X: the gram pass, then (after the eigendecomposition) the projection pass,
//! which computes each chunk's coordinates on this thread while a writer thread stores the
//! previous chunk's. Outputs go to temporary names and are renamed when complete.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::io::subset::copy_dataframe;
use crate::io::{
    write_element, DenseArray, DenseRowWriter, Element, H5adReader, NumVec, OutputFile,
    OutputOptions, OutputSet, ZarrRowWriter,
};
use crate::ops::eigen::EigenSolver;
use crate::ops::pca::{accumulate_gram, check_n_comps, fit, project_chunk, PcaFit};
use crate::progress::Progress;
use crate::stream::{ChunkStream, RowSelection, StreamOptions};
use crate::workflow::Matrices;

/// Everything `scoop pca` needs.
#[derive(Clone, Debug)]
pub struct PcaOptions {
    /// The (merged, preprocessed) input.
    pub input: PathBuf,
    /// The `.h5ad` written: obs, var, X, raw, layers, `obsm/X_pca`, `varm/PCs`, `uns/pca`.
    pub output: PathBuf,
    /// Also write X_pca as a Zarr v2 array here.
    pub zarr: Option<PathBuf>,
    /// Components.
    pub n_comps: usize,
    /// Eigen solver.
    pub solver: EigenSolver,
    /// Chunking of both passes (also the Zarr chunk rows); rows per chunk are lowered to about
    /// [`PCA_CHUNK_NNZ`] stored values.
    pub stream: StreamOptions,
    /// Leave X, raw and layers out of the output.
    pub drop_matrices: bool,
    /// Overwrite existing outputs.
    pub force: bool,
    /// No progress bars.
    pub quiet: bool,
}

/// What `pca` did.
#[derive(Clone, Debug)]
pub struct PcaSummary {
    /// The fit (components, variances).
    pub fit: PcaFit,
    /// Written `.h5ad`.
    pub output: PathBuf,
    /// Written Zarr store.
    pub zarr: Option<PathBuf>,
    /// Symmetric pair-updates of the gram pass: Σ m(m+1)/2 over rows with m stored values.
    pub pair_updates: u64,
    /// Seconds in the gram pass.
    pub gram_seconds: f64,
    /// Seconds in the eigendecomposition.
    pub eigen_seconds: f64,
    /// Seconds in the projection pass (including writing).
    pub project_seconds: f64,
    /// Seconds copying X, raw and layers into the output.
    pub copy_seconds: f64,
    /// The input's X, raw and layers, and whether they were copied.
    pub matrices: Matrices,
    /// Entries of the input's uns not carried over (unreadable), with the reason.
    pub uns_skipped: Vec<String>,
}

/// Stored values per chunk the PCA passes aim at: the stream's own budget (≈ 16 MB of CSR), so
/// dense matrices get fewer rows per chunk than `--chunk-rows` and the chunks in flight stay
/// small next to the eigen step's d x d workspaces.
pub const PCA_CHUNK_NNZ: u64 = crate::stream::DEFAULT_CHUNK_VALUES;

/// Rows per chunk: `--chunk-rows`, lowered to about [`PCA_CHUNK_NNZ`] stored values, at least 256.
pub(crate) fn chunk_rows(requested: usize, nnz: u64, n_rows: usize) -> usize {
    let per_row = nnz.div_ceil(n_rows.max(1) as u64).max(1);
    requested.min(((PCA_CHUNK_NNZ / per_row) as usize).max(256))
}

/// Runs PCA as the options say.
pub fn pca(opts: &PcaOptions, backend: &dyn Backend) -> Result<PcaSummary> {
    let reader = H5adReader::open(&opts.input)?;
    let info = reader.x()?.info().clone();
    let (n, d) = info.shape;
    let stream = StreamOptions {
        chunk_rows: chunk_rows(opts.stream.chunk_rows, info.nnz, n),
        ..opts.stream
    };
    check_n_comps(opts.n_comps, n as u64, d).map_err(|e| match e {
        Error::InvalidArgument(m) => Error::format(&opts.input, "/X", m),
        other => other,
    })?;
    if opts.zarr.as_ref() == Some(&opts.output) {
        return Err(Error::InvalidArgument(
            "--zarr and --out name the same path".into(),
        ));
    }
    // Both outputs are checked (and their directories proved writable) before the gram pass,
    // and become visible together.
    let targets: Vec<&PathBuf> = std::iter::once(&opts.output).chain(&opts.zarr).collect();
    let set = OutputSet::create(
        &targets,
        &OutputOptions::new(opts.force).inputs([&opts.input]),
    )?;

    // Pass 1: gram and column sums.
    let t = Instant::now();
    let progress = Progress::new("pca gram", n as u64, opts.quiet);
    let mut pair_updates = 0u64;
    let chunks = ChunkStream::open(&opts.input, RowSelection::All, stream)?.inspect(|c| {
        if let Ok(c) = c {
            pair_updates += c
                .indptr
                .windows(2)
                .map(|w| {
                    let m = (w[1] - w[0]) as u64;
                    m * (m + 1) / 2
                })
                .sum::<u64>();
        }
    });
    let gram = accumulate_gram(chunks, backend, d, |rows| progress.inc(rows as u64))
        .map_err(|e| about_x(&opts.input, e))?;
    progress.finish();
    let gram_seconds = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let fit = fit(gram, opts.n_comps, opts.solver).map_err(|e| about_x(&opts.input, e))?;
    // The eigensolver's d x d workspaces are freed by now: the projection pass's peak is not
    // stacked on the eigen step's.
    crate::mem::release_free_memory();
    let eigen_seconds = t.elapsed().as_secs_f64();

    let w = write_projection(
        &ProjectionTarget {
            reader: &reader,
            input: &opts.input,
            output: &opts.output,
            zarr: opts.zarr.as_deref(),
            drop_matrices: opts.drop_matrices,
            link_x: None,
            set: &set,
            quiet: opts.quiet,
        },
        &fit,
        stream,
        backend,
        |_, _| {},
    )?;
    set.commit()?;
    Ok(PcaSummary {
        fit,
        output: w.output,
        zarr: w.zarr,
        pair_updates,
        gram_seconds,
        eigen_seconds,
        project_seconds: w.project_seconds,
        copy_seconds: w.copy_seconds,
        matrices: w.matrices,
        uns_skipped: w.uns_skipped,
    })
}

/// Where [`write_projection`] reads from and writes to.
pub(crate) struct ProjectionTarget<'a> {
    /// The input, open.
    pub reader: &'a H5adReader,
    /// Its path.
    pub input: &'a Path,
    /// The `.h5ad` written.
    pub output: &'a Path,
    /// The Zarr copy of X_pca, if any.
    pub zarr: Option<&'a Path>,
    /// Leave X, raw and layers out of the output.
    pub drop_matrices: bool,
    /// Write X as an HDF5 external link to the input's `/X`, naming the input by this file
    /// name (relative to the output's directory, where the input must lie), instead of a copy;
    /// raw and layers are copied as usual. `None`: X is copied.
    pub link_x: Option<&'a str>,
    /// The output set `output` and `zarr` are staged in (committed by the caller).
    pub set: &'a OutputSet,
    /// No progress bars.
    pub quiet: bool,
}

/// What [`write_projection`] wrote.
pub(crate) struct Projected {
    pub output: PathBuf,
    pub zarr: Option<PathBuf>,
    pub project_seconds: f64,
    pub copy_seconds: f64,
    pub matrices: Matrices,
    pub uns_skipped: Vec<String>,
}

/// The projection pass of `pca`: streams the input's X in `stream`'s chunks, projects each on
/// `fit` and writes the output `.h5ad` (the input's annotations, `obsm/X_pca`, `varm/PCs`,
/// `uns/pca`, and its matrices unless dropped, X copied or linked as
/// [`ProjectionTarget::link_x`] says) and the Zarr copy, both committed only when complete.
/// `on_block(first_row, coords)` sees each chunk's coordinates (rows x k, row-major) in row
/// order, on the calling thread.
pub(crate) fn write_projection(
    to: &ProjectionTarget<'_>,
    fit: &PcaFit,
    stream: StreamOptions,
    backend: &dyn Backend,
    mut on_block: impl FnMut(usize, &[f32]),
) -> Result<Projected> {
    let n = to.reader.x()?.info().shape.0;
    let d = fit.dim;
    // Project, writing the h5ad's obsm/X_pca and the Zarr chunks as chunks complete.
    let t = Instant::now();
    let out = OutputFile::create_in(to.set, to.output)?;
    copy_dataframe(
        &to.reader.obs_reader()?,
        out.root(),
        "obs",
        stream.chunk_rows,
    )?;
    to.reader.var()?.write(out.root(), "var")?;
    // The input's other obsm, varm, obsp and varp entries, as scanpy's pca leaves them.
    out.carry_over(
        to.reader,
        &[],
        &["obsm", "varm", "obsp", "varp"],
        &["obsm/X_pca", "varm/PCs"],
    )?;
    let obsm = out.group("obsm")?;
    let k = fit.k;
    let mut h5w = DenseRowWriter::create(&obsm, "X_pca", n, k, stream.chunk_rows)?;
    let mut zw = match to.zarr {
        Some(z) => Some(ZarrRowWriter::create(
            to.set.staged(z),
            n,
            k,
            stream.chunk_rows,
        )?),
        None => None,
    };
    let proj = fit.projection()?;
    let progress = Progress::new("pca project", n as u64, to.quiet);
    let (tx, rx) = crossbeam_channel::bounded::<Vec<f32>>(1);
    let mut written = None;
    std::thread::scope(|scope| -> Result<()> {
        let writer = scope.spawn(move || -> Result<(DenseRowWriter, Option<ZarrRowWriter>)> {
            for block in rx {
                h5w.append(&block)?;
                if let Some(z) = zw.as_mut() {
                    z.append(&block)?;
                }
            }
            Ok((h5w, zw))
        });
        let produced = (|| -> Result<()> {
            let mut first_row = 0usize;
            for chunk in ChunkStream::open(to.input, RowSelection::All, stream)? {
                let chunk = chunk?;
                let coords = project_chunk(&chunk, backend, &proj)?;
                on_block(first_row, &coords);
                first_row += chunk.n_rows();
                progress.inc(chunk.n_rows() as u64);
                if tx.send(coords).is_err() {
                    break; // the writer failed; its error is reported below
                }
            }
            Ok(())
        })();
        drop(tx);
        written = Some(writer.join().expect("writer thread panicked")?);
        produced.map_err(|e| about_x(to.input, e))
    })?;
    progress.finish();
    let (h5w, zw) = written.expect("writer finished");
    h5w.finish()?;

    let varm = out.group("varm")?;
    let f32s = |v: &[f64]| NumVec::F32(v.iter().map(|&x| x as f32).collect());
    write_element(
        &varm,
        "PCs",
        &Element::Array(DenseArray::new(vec![d, k], f32s(&fit.loadings))),
    )?;
    let uns = out.dict("uns")?;
    let mut uns_skipped = Vec::new();
    for key in to.reader.keys("uns")? {
        if key == "pca" {
            continue;
        }
        // uns is carried over as a courtesy: an entry scoop cannot read is reported, not fatal.
        match to.reader.element("uns", &key) {
            Ok(e) => write_element(&uns, &key, &e)?,
            Err(e) => uns_skipped.push(format!("{key} ({e})")),
        }
    }
    write_element(&uns, "pca", &uns_pca(fit))?;
    let project_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let matrices = Matrices::unless_dropped(to.reader, to.drop_matrices)?;
    match to.link_x {
        _ if to.drop_matrices => {}
        Some(file) if to.reader.has_x() => {
            out.link_external("X", file, "/X")?;
            out.carry_over(to.reader, &["raw"], &["layers"], &[])?;
        }
        _ => out.carry_over(to.reader, &["X", "raw"], &["layers"], &[])?,
    }
    let copy_seconds = t.elapsed().as_secs_f64();
    // Both outputs are complete in the set's staging area; the caller commits the set.
    zw.map(ZarrRowWriter::finish).transpose()?;
    out.close()?;
    let (output, zarr) = (to.output.to_path_buf(), to.zarr.map(Path::to_path_buf));
    Ok(Projected {
        output,
        zarr,
        project_seconds,
        copy_seconds,
        matrices,
        uns_skipped,
    })
}

fn about_x(path: &Path, e: Error) -> Error {
    match e {
        Error::InvalidArgument(m) => Error::format(path, "/X", m),
        other => other,
    }
}

/// `uns['pca']` as scanpy writes it for `pca(adata, n_comps, mask_var=None)`.
fn uns_pca(fit: &PcaFit) -> Element {
    let bool_scalar = |b: bool| Element::Scalar(NumVec::Bool(vec![b]));
    let f32_array = |v: &[f64]| {
        Element::Array(DenseArray::new(
            vec![v.len()],
            NumVec::F32(v.iter().map(|&x| x as f32).collect()),
        ))
    };
    let dict = |items: Vec<(&str, Element)>| {
        Element::Dict(items.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    };
    dict(vec![
        (
            "params",
            dict(vec![
                ("zero_center", bool_scalar(true)),
                ("use_highly_variable", bool_scalar(false)),
                ("mask_var", Element::Null),
            ]),
        ),
        ("variance", f32_array(&fit.variance)),
        ("variance_ratio", f32_array(&fit.variance_ratio)),
    ])
}
