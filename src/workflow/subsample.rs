//! `scoop subsample`: a uniform random subset of cells, read in ascending row order: obs (unused
//! categories dropped, as anndata does), every `obsm` matrix (dense or sparse, dtype kept), var,
//! varm and uns, and with
//! `--with-x` the matrices as `adata[rows]` holds them: X and each layer (their rows, in their
//! encoding and dtype) and raw (raw/X's rows; raw/var and raw/varm whole). Output rows are in
//! the input's order (sorted sample). `obsp` graphs and `uns/neighbors` describe the full set
//! and are not carried.

use std::path::PathBuf;
use std::time::Instant;

use rand::SeedableRng;

use crate::error::{Error, Result};
use crate::io::matrix_rows::{copy_layers_rows, copy_raw_rows, copy_rows};
use crate::io::subset::{write_dataframe_pick, RowPick};
use crate::io::{Codec, H5adReader, MatrixReader, OutputFile};
use crate::progress::Progress;
use crate::workflow::Matrices;

/// Everything `scoop subsample` needs.
#[derive(Clone, Debug)]
pub struct SubsampleOptions {
    /// Input `.h5ad`.
    pub input: PathBuf,
    /// Output `.h5ad`.
    pub output: PathBuf,
    /// Cells to draw.
    pub n: usize,
    /// Seed.
    pub seed: u64,
    /// Draw with replacement (a cell may appear several times).
    pub replace: bool,
    /// Also write the selected rows of X, the layers and raw.
    pub with_x: bool,
    /// Rows per read.
    pub block_rows: usize,
    /// Overwrite an existing output.
    pub force: bool,
    /// No progress bars.
    pub quiet: bool,
}

/// What `subsample` did.
#[derive(Clone, Debug)]
pub struct SubsampleSummary {
    /// Cells in the input.
    pub n_input: usize,
    /// Cells written.
    pub n_output: usize,
    /// Distinct input cells written.
    pub n_distinct: usize,
    /// obsm arrays carried.
    pub obsm: Vec<String>,
    /// obsm entries not carried (not dense arrays), with the reason.
    pub skipped: Vec<String>,
    /// The input's X, raw and layers, and whether they were written.
    pub matrices: Matrices,
    /// Seconds in all.
    pub seconds: f64,
    /// The written file.
    pub output: PathBuf,
}

/// `n` row indices of `0..n_obs`, ascending: uniform without replacement (every subset equally
/// likely) or, with `replace`, `n` independent uniform draws.
pub fn sample_rows(n_obs: usize, n: usize, replace: bool, seed: u64) -> Result<Vec<usize>> {
    if n == 0 {
        return Err(Error::InvalidArgument("--n must be at least 1".into()));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut rows = if replace {
        if n_obs == 0 {
            return Err(Error::InvalidArgument("cannot sample from 0 cells".into()));
        }
        (0..n)
            .map(|_| rand::Rng::random_range(&mut rng, 0..n_obs))
            .collect()
    } else {
        if n > n_obs {
            return Err(Error::InvalidArgument(format!(
                "--n {n} is more than the {n_obs} cells (use --replace to draw with replacement)"
            )));
        }
        rand::seq::index::sample(&mut rng, n_obs, n).into_vec()
    };
    rows.sort_unstable();
    Ok(rows)
}

/// Writes the rows `pick` of every `obsm` matrix of `reader` (dense or sparse, in its encoding
/// and dtype, as `adata[rows]` keeps it; but those named in `skip`) into `out`'s `obsm`,
/// `block` input rows at a time, advancing `bar` by the input rows read. Returns the keys
/// written and the entries left out (no 2-D matrix), with why.
pub(crate) fn write_obsm_rows(
    reader: &H5adReader,
    pick: RowPick<'_>,
    out: &OutputFile,
    skip: &[&str],
    block: usize,
    bar: Option<&Progress>,
) -> Result<(Vec<String>, Vec<String>)> {
    let (n_obs, _) = reader.shape()?;
    let obsm_out = out.dict("obsm")?;
    let (mut obsm, mut skipped) = (Vec::new(), Vec::new());
    let keys = reader.keys("obsm")?;
    if keys.is_empty() {
        return Ok((obsm, skipped));
    }
    let obsm_in = reader.group("obsm")?;
    for key in keys {
        if skip.contains(&key.as_str()) {
            continue;
        }
        match MatrixReader::open(&obsm_in, &key) {
            Ok(r) if r.shape().0 != n_obs => {
                return Err(Error::format(
                    reader.path(),
                    format!("/obsm/{key}"),
                    format!("has {} rows, obs has {n_obs}", r.shape().0),
                ))
            }
            Ok(_) => {}
            Err(e) => {
                skipped.push(format!("{key} ({e})"));
                continue;
            }
        }
        copy_rows(&obsm_in, &key, &obsm_out, pick, None, block, Codec::None)?;
        if let Some(bar) = bar {
            bar.inc(n_obs as u64);
        }
        obsm.push(key);
    }
    Ok((obsm, skipped))
}

/// Runs `subsample` as the options say.
pub fn subsample(opts: &SubsampleOptions) -> Result<SubsampleSummary> {
    let t = Instant::now();
    let reader = H5adReader::open(&opts.input)?;
    let set = super::single_output(&opts.input, &opts.output, opts.force)?;
    // Opening checked X's shape against obs and var.
    let (n_obs, _) = reader.shape()?;
    let rows = sample_rows(n_obs, opts.n, opts.replace, opts.seed).map_err(|e| match e {
        Error::InvalidArgument(m) => Error::format(&opts.input, "/obs", m),
        other => other,
    })?;
    let pick = RowPick::Sorted(&rows);
    let block = opts.block_rows.max(1);
    let matrices = Matrices::of(&reader, (!opts.with_x).then_some("no --with-x"))?;

    let out = OutputFile::create_in(&set, &opts.output)?;
    out.carry_over(&reader, &["var"], &["varm", "uns"], &["uns/neighbors"])?;
    write_dataframe_pick(&reader.obs_reader()?, pick, out.root(), "obs", block)?;

    let bar = Progress::new(
        "subsample",
        (n_obs * (reader.keys("obsm")?.len() + opts.with_x as usize)) as u64,
        opts.quiet,
    );
    let (obsm, skipped) = write_obsm_rows(&reader, pick, &out, &[], block, Some(&bar))?;
    if opts.with_x {
        let root = reader.root();
        copy_rows(root, "X", out.root(), pick, None, block, Codec::None)?;
        bar.inc(n_obs as u64);
        copy_layers_rows(root, out.root(), pick, None, block, Codec::None)?;
        copy_raw_rows(root, out.root(), pick, block, Codec::None)?;
    }
    bar.finish();
    let mut distinct = rows.clone();
    distinct.dedup();
    out.close()?;
    set.commit()?;
    let output = opts.output.clone();
    Ok(SubsampleSummary {
        n_input: n_obs,
        n_output: rows.len(),
        n_distinct: distinct.len(),
        obsm,
        skipped,
        matrices,
        seconds: t.elapsed().as_secs_f64(),
        output,
    })
}
