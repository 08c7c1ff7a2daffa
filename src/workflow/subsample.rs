//! `scoop subsample`: a uniform random subset of cells, read in ascending row order: obs (unused
//! categories dropped, as anndata does), every dense `obsm` array, var, varm and uns, and with
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
use crate::io::{Codec, DenseRowReader, DenseRowWriter, H5adReader, OutputFile};
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

    // obsm: every dense 2-D array, block by block.
    let obsm_out = out.dict("obsm")?;
    let (mut obsm, mut skipped) = (Vec::new(), Vec::new());
    let keys = reader.keys("obsm")?;
    let bar = Progress::new(
        "subsample",
        (n_obs * (keys.len() + opts.with_x as usize)) as u64,
        opts.quiet,
    );
    if !keys.is_empty() {
        let obsm_in = reader.group("obsm")?;
        for key in keys {
            let r = match DenseRowReader::open(&obsm_in, &key) {
                Ok(r) if r.shape().0 == n_obs => r,
                Ok(r) => {
                    return Err(Error::format(
                        &opts.input,
                        format!("/obsm/{key}"),
                        format!("has {} rows, obs has {n_obs}", r.shape().0),
                    ))
                }
                Err(e) => {
                    skipped.push(format!("{key} ({e})"));
                    continue;
                }
            };
            let cols = r.shape().1;
            let mut w = DenseRowWriter::create(&obsm_out, &key, rows.len(), cols, block)?;
            for start in (0..n_obs).step_by(block) {
                let end = (start + block).min(n_obs);
                let local = pick.rows_in(start, end);
                if !local.is_empty() {
                    let vals = r.read_rows(start..end, cols)?;
                    let mut picked = Vec::with_capacity(local.len() * cols);
                    for i in local {
                        picked.extend_from_slice(&vals[i * cols..(i + 1) * cols]);
                    }
                    w.append(&picked)?;
                }
                bar.inc((end - start) as u64);
            }
            w.finish()?;
            obsm.push(key);
        }
    }
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
