//! The eigendecomposition and pass 3 of `scoop run`: components from the gram pass 2 kept, the
//! projection of `merged.h5ad` into `pca.h5ad` and `X_pca.zarr` (as `scoop pca` writes them,
//! except that `pca.h5ad`'s X is an HDF5 external link to `merged.h5ad`'s, not a copy),
//! with the subsample's rows of X_pca taken on the way ([`Drawn`]), so `subset.h5ad` (as `scoop
//! subsample --n N --seed S` of `pca.h5ad` writes it) needs no pass of its own
//! ([`write_drawn_subset`]). A subset drawn again (another size or seed) is taken from
//! `pca.h5ad`'s obs and `obsm/X_pca` alone ([`subset_of_pca`]): no pass over merged X.

use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::io::subset::{write_dataframe_pick, RowPick};
use crate::io::{DenseRowWriter, H5adReader, OutputFile, OutputOptions, OutputSet};
use crate::ops::eigen::EigenSolver;
use crate::ops::pca::{check_n_comps, fit, PcaFit};
use crate::stream::StreamOptions;
use crate::workflow::pca::{chunk_rows, write_projection, ProjectionTarget};
use crate::workflow::subsample::{sample_rows, write_obsm_rows};

/// Where pass 3 writes.
pub(crate) struct ProjectPaths<'a> {
    pub merged: &'a Path,
    pub gram: &'a Path,
    pub pca: &'a Path,
    pub zarr: &'a Path,
}

/// The subsample's rows drawn during the projection: their indices (ascending) and coordinates
/// (row-major, `k` per row), kept in an unnamed scratch file next to `pca.h5ad` (removed by the
/// system when dropped) rather than in memory, so the projection and subset steps hold no
/// subsample-sized buffer.
pub(crate) struct Drawn {
    pub rows: Vec<usize>,
    coords: std::fs::File,
    pub k: usize,
}

/// What the step did.
pub(crate) struct Projected {
    pub fit: PcaFit,
    /// The subsample's rows.
    pub drawn: Drawn,
    /// Stored values of merged X streamed.
    pub values: u64,
    pub eigen_seconds: f64,
    pub project_seconds: f64,
}

/// Components: `n_comps`, or [`super::config::DEFAULT_N_COMPS`] lowered to min(cells, genes).
pub(crate) fn resolve_n_comps(n_comps: Option<usize>, n_obs: u64, n_vars: usize) -> Result<usize> {
    match n_comps {
        Some(k) => check_n_comps(k, n_obs, n_vars).map(|()| k),
        None => Ok(super::config::DEFAULT_N_COMPS
            .min(n_vars)
            .min(n_obs as usize)
            .max(1)),
    }
}

/// Fits `n_comps` components from the gram file, projects merged X, writes `pca.h5ad` (its X
/// an external link to `merged.h5ad`, which must lie in the same directory) and `X_pca.zarr`
/// (committed together), and keeps the coordinates of `subsample` rows drawn with
/// `seed`.
pub(crate) fn project(
    paths: &ProjectPaths<'_>,
    n_comps: usize,
    subsample: usize,
    seed: u64,
    stream: StreamOptions,
    backend: &dyn Backend,
    quiet: bool,
) -> Result<Projected> {
    let t = std::time::Instant::now();
    let gram = super::gram_file::load(paths.gram)?;
    let fit = fit(gram, n_comps, EigenSolver::Auto)?;
    crate::mem::release_free_memory();
    let eigen_seconds = t.elapsed().as_secs_f64();

    let t = std::time::Instant::now();
    let reader = H5adReader::open(paths.merged)?;
    let info = reader.x()?.info().clone();
    let n = info.shape.0;
    let stream = StreamOptions {
        chunk_rows: chunk_rows(stream.chunk_rows, info.nnz, n),
        ..stream
    };
    let rows = sample_rows(n, subsample.min(n), false, seed)?;
    let k = fit.k;
    let scratch_dir = paths.pca.parent().unwrap_or(Path::new("."));
    let scratch = tempfile::tempfile_in(scratch_dir).map_err(|e| Error::io(scratch_dir, e))?;
    let mut picked = std::io::BufWriter::with_capacity(1 << 20, scratch);
    let mut spill_error: Option<std::io::Error> = None;
    // The step's two outputs become visible together.
    let set = OutputSet::create(
        &[paths.pca, paths.zarr],
        &OutputOptions::new(true).inputs([paths.merged]),
    )?;
    // X stays in merged.h5ad: pca.h5ad links to it by its final name, which resolves beside
    // pca.h5ad once committed.
    let link_x = (paths.merged.parent() == paths.pca.parent())
        .then(|| paths.merged.file_name().and_then(|n| n.to_str()))
        .flatten();
    write_projection(
        &ProjectionTarget {
            reader: &reader,
            input: paths.merged,
            output: paths.pca,
            zarr: Some(paths.zarr),
            drop_matrices: false,
            link_x,
            set: &set,
            quiet,
        },
        &fit,
        stream,
        backend,
        |first, coords| {
            let m = coords.len() / k;
            let a = rows.partition_point(|&r| r < first);
            let b = rows.partition_point(|&r| r < first + m);
            for &r in &rows[a..b] {
                let i = r - first;
                if spill_error.is_none() {
                    let row = &coords[i * k..(i + 1) * k];
                    if let Err(e) = row
                        .iter()
                        .try_for_each(|x| picked.write_all(&x.to_le_bytes()))
                    {
                        spill_error = Some(e);
                    }
                }
            }
        },
    )?;
    let spilled = match spill_error {
        Some(e) => Err(e),
        None => picked.into_inner().map_err(|e| e.into_error()),
    };
    let coords = spilled.map_err(|e| Error::io(scratch_dir, e))?;
    set.commit()?;
    Ok(Projected {
        fit,
        drawn: Drawn { rows, coords, k },
        values: info.nnz,
        eigen_seconds,
        project_seconds: t.elapsed().as_secs_f64(),
    })
}

/// Writes `subset` as `scoop subsample` of `pca` writes it without `--with-x`: var, varm and uns
/// of `pca`, obs's drawn rows (unused categories dropped), their `obsm/X_pca` (`drawn`'s
/// coordinates) and their rows of `pca`'s other `obsm` matrices.
pub(crate) fn write_drawn_subset(
    pca: &Path,
    subset: &Path,
    drawn: &Drawn,
    block: usize,
) -> Result<()> {
    let (rows, k) = (&drawn.rows[..], drawn.k);
    let set = OutputSet::create(&[subset], &OutputOptions::new(true).inputs([pca]))?;
    let reader = H5adReader::open(pca)?;
    let out = OutputFile::create_in(&set, subset)?;
    out.carry_over(&reader, &["var"], &["varm", "uns"], &["uns/neighbors"])?;
    let block = block.max(1);
    write_dataframe_pick(
        &reader.obs_reader()?,
        RowPick::Sorted(rows),
        out.root(),
        "obs",
        block,
    )?;
    // pca.h5ad's other obsm entries (those the plates all had), as `subsample` carries them.
    write_obsm_rows(
        &reader,
        RowPick::Sorted(rows),
        &out,
        &["X_pca"],
        block,
        None,
    )?;
    let obsm = out.group("obsm")?;
    let mut w = DenseRowWriter::create(&obsm, "X_pca", rows.len(), k, block)?;
    let scratch = |e: std::io::Error| Error::io(Path::new("<subsample scratch file>"), e);
    let mut file = &drawn.coords;
    file.seek(std::io::SeekFrom::Start(0)).map_err(scratch)?;
    let mut bytes = vec![0u8; block.min(rows.len()).max(1) * k * 4];
    let mut part: Vec<f32> = Vec::with_capacity(bytes.len() / 4);
    let mut left = rows.len() * k * 4;
    while left > 0 {
        let len = left.min(bytes.len());
        let buf = &mut bytes[..len];
        file.read_exact(buf).map_err(scratch)?;
        left -= buf.len();
        part.clear();
        part.extend(
            buf.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        w.append(&part)?;
    }
    w.finish()?;
    out.close()?;
    set.commit()
}

/// Draws `n` rows with `seed` from `pca` into `subset` as `scoop subsample --n N --seed S` does:
/// reads `pca`'s obs and `obsm`, not X.
pub(crate) fn subset_of_pca(
    pca: &Path,
    subset: &Path,
    n: usize,
    seed: u64,
    block: usize,
    quiet: bool,
) -> Result<usize> {
    let s = crate::workflow::subsample::subsample(&crate::workflow::subsample::SubsampleOptions {
        input: pca.to_path_buf(),
        output: subset.to_path_buf(),
        n,
        seed,
        replace: false,
        with_x: false,
        block_rows: block,
        force: true,
        quiet,
    })?;
    Ok(s.n_output)
}
