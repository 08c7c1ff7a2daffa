//! `scoop convert`: a copy of an `.h5ad` file whose `csc_matrix` matrices (X, each layer, raw/X,
//! each obsm and obsp entry) are rewritten as `csr_matrix`, the same values in the same dtype,
//! so that scoop can stream its rows. With `--compression`, X, the layers and raw/X are written
//! with that codec whatever their encoding (the CSR and dense ones rewritten by rows, in their
//! encoding and dtype). Everything else is copied unchanged, inside HDF5. The transpose runs in
//! bounded memory with a scratch file in the output's staging directory ([`crate::io::csc`]).

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use hdf5::Group;

use crate::error::Result;
use crate::io::csc::{csc_to_csr, is_csc, TransposeOptions};
use crate::io::matrix_rows::copy_rows;
use crate::io::subset::RowPick;
use crate::io::{h5ad::MAPPING_KEYS, Codec, H5adReader, MatrixInfo, OutputFile};
use crate::progress::Progress;

/// Everything `scoop convert` needs.
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    /// Input `.h5ad`.
    pub input: PathBuf,
    /// Output `.h5ad`.
    pub output: PathBuf,
    /// `None`: CSC matrices are written uncompressed (anndata's default) and every other
    /// element is copied as it is stored. `Some(codec)`: X, each layer and raw/X are all
    /// written with `codec`, the CSR and dense ones rewritten by rows (e.g. `none` or `gzip` for
    /// a zstd file that Python must read without hdf5plugin).
    pub compression: Option<Codec>,
    /// Most rows per block when rewriting a CSR or dense matrix.
    pub chunk_rows: usize,
    /// Most stored entries per block of columns read, and per band of rows gathered.
    pub chunk_values: usize,
    /// Overwrite an existing output.
    pub force: bool,
    /// No progress bar.
    pub quiet: bool,
}

/// What `convert` did.
#[derive(Clone, Debug)]
pub struct ConvertSummary {
    /// The matrices rewritten from CSC as CSR (`X`, `layers/counts`, ...), with their stored
    /// entries.
    pub transposed: Vec<(String, u64)>,
    /// The CSR or dense matrices rewritten with `--compression`.
    pub recoded: Vec<String>,
    /// Seconds in all.
    pub seconds: f64,
    /// The written file.
    pub output: PathBuf,
}

impl fmt::Display for ConvertSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.transposed.is_empty() {
            let values: u64 = self.transposed.iter().map(|t| t.1).sum();
            let names: Vec<&str> = self.transposed.iter().map(|t| t.0.as_str()).collect();
            parts.push(format!(
                "rewrote {} as csr_matrix ({values} stored values, {:.0} values/s)",
                names.join(", "),
                values as f64 / self.seconds.max(1e-9)
            ));
        }
        if !self.recoded.is_empty() {
            parts.push(format!("recompressed {}", self.recoded.join(", ")));
        }
        if parts.is_empty() {
            parts.push("no csc_matrix to rewrite; copied".into());
        }
        write!(
            f,
            "{} into {} in {:.2} s",
            parts.join("; "),
            self.output.display(),
            self.seconds
        )
    }
}

/// A matrix `convert` writes itself instead of copying it: its parent group's path in the file
/// ("" for the root), its name, and how.
struct Rewrite {
    parent: &'static str,
    name: String,
    /// Its stored entries when it is a `csc_matrix` to transpose; `None` for a CSR or dense
    /// matrix rewritten by rows under `--compression`.
    csc_nnz: Option<u64>,
}

impl Rewrite {
    fn path(&self) -> String {
        if self.parent.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.parent, self.name)
        }
    }
}

/// Groups whose members are matrices that may be `csc_matrix`.
const MATRIX_GROUPS: [&str; 3] = ["layers", "obsm", "obsp"];

/// The matrices of `reader`'s file to rewrite: every `csc_matrix` among X, the members of
/// [`MATRIX_GROUPS`] and raw/X; with `recode`, also X, each layer and raw/X in CSR or dense.
fn rewrites(reader: &H5adReader, recode: bool) -> Result<Vec<Rewrite>> {
    let root = reader.root();
    let mut found = Vec::new();
    let mut consider = |parent: &'static str, group: &Group, name: String| -> Result<()> {
        if is_csc(group, &name)? {
            let csc_nnz = Some(MatrixInfo::of(group, &name)?.nnz);
            found.push(Rewrite {
                parent,
                name,
                csc_nnz,
            });
        } else if recode && matches!(parent, "" | "layers" | "raw") {
            found.push(Rewrite {
                parent,
                name,
                csc_nnz: None,
            });
        }
        Ok(())
    };
    if root.link_exists("X") {
        consider("", root, "X".into())?;
    }
    for group in MATRIX_GROUPS {
        for key in reader.keys(group)? {
            consider(group, &reader.group(group)?, key)?;
        }
    }
    if let Some(raw) = root
        .link_exists("raw")
        .then(|| reader.group("raw").ok())
        .flatten()
    {
        if raw.link_exists("X") {
            consider("raw", &raw, "X".into())?;
        }
    }
    Ok(found)
}

/// Runs `convert` as the options say.
pub fn convert(opts: &ConvertOptions) -> Result<ConvertSummary> {
    let t = Instant::now();
    let reader = H5adReader::open(&opts.input)?;
    let set = super::single_output(&opts.input, &opts.output, opts.force)?;
    let read_path = crate::io::default_read_path();
    let todo = rewrites(&reader, opts.compression.is_some())?;
    let codec = opts.compression.unwrap_or(Codec::None);

    let out = OutputFile::create_in(&set, &opts.output)?;
    let rewritten =
        |parent: &str, name: &str| todo.iter().any(|r| r.parent == parent && r.name == name);
    let raw_x = rewritten("raw", "X");
    // Every root member is copied whole (old layouts' `raw.X` and the like too), but the mapping
    // groups (copied key by key), an X rewritten here and a raw whose X is.
    let members = reader.root_members()?;
    let whole: Vec<&str> = members
        .iter()
        .map(String::as_str)
        .filter(|m| !MAPPING_KEYS.contains(m))
        .filter(|&m| !(m == "X" && rewritten("", "X")))
        .filter(|&m| !(m == "raw" && raw_x))
        .collect();
    let skip: Vec<String> = todo
        .iter()
        .filter(|r| MATRIX_GROUPS.contains(&r.parent))
        .map(Rewrite::path)
        .collect();
    let skip: Vec<&str> = skip.iter().map(String::as_str).collect();
    out.carry_over(&reader, &whole, &MAPPING_KEYS, &skip)?;
    if raw_x {
        out.carry_group_except(&reader, "raw", &["X"])?;
    }

    let n_obs = reader.shape()?.0;
    let total: u64 = todo
        .iter()
        .map(|r| r.csc_nnz.map_or(n_obs as u64, |n| 3 * n))
        .sum();
    let bar = Progress::new("convert", total, opts.quiet);
    let staged = set.staged(&opts.output);
    let scratch = staged
        .parent()
        .unwrap_or(staged)
        .join(".scoop-transpose-scratch");
    let topts = TransposeOptions {
        compression: codec,
        block_values: opts.chunk_values.max(1),
        band_values: opts.chunk_values.max(1),
        read_path,
    };
    let (mut transposed, mut recoded) = (Vec::new(), Vec::new());
    let every_row = vec![true; n_obs];
    for r in &todo {
        let src = group_in(reader.root(), r.parent, |g| reader.group(g))?;
        let dst = group_in(out.root(), r.parent, |g| out.group(g))?;
        match r.csc_nnz {
            Some(n) => {
                csc_to_csr(&src, &r.name, &dst, &scratch, &topts, &|k| bar.inc(k))?;
                transposed.push((r.path(), n));
            }
            None => {
                let pick = RowPick::Mask(&every_row);
                copy_rows(
                    &src,
                    &r.name,
                    &dst,
                    pick,
                    None,
                    opts.chunk_rows.max(1),
                    codec,
                )?;
                bar.inc(n_obs as u64);
                recoded.push(r.path());
            }
        }
    }
    bar.finish();
    out.close()?;
    set.commit()?;
    Ok(ConvertSummary {
        transposed,
        recoded,
        seconds: t.elapsed().as_secs_f64(),
        output: opts.output.clone(),
    })
}

/// `root` for "", else the group `path` opened by `open`.
fn group_in(root: &Group, path: &str, open: impl Fn(&str) -> Result<Group>) -> Result<Group> {
    if path.is_empty() {
        Ok(root.clone())
    } else {
        open(path)
    }
}
