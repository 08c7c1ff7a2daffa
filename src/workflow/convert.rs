//! `scoop convert`: a copy of an `.h5ad` file whose `csc_matrix` matrices (X, each layer, raw/X,
//! each obsm and obsp entry) are rewritten as `csr_matrix`, the same values in the same dtype,
//! so that scoop can stream its rows. Everything else is copied unchanged, inside HDF5. The
//! transpose runs in bounded memory with a scratch file in the output's staging directory
//! ([`crate::io::csc`]).

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use hdf5::Group;

use crate::error::Result;
use crate::io::csc::{csc_nnz, csc_to_csr, is_csc, TransposeOptions};
use crate::io::{h5ad::MAPPING_KEYS, Codec, H5adReader, OutputFile};
use crate::progress::Progress;

/// Everything `scoop convert` needs.
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    /// Input `.h5ad`.
    pub input: PathBuf,
    /// Output `.h5ad`.
    pub output: PathBuf,
    /// Compression of the rewritten matrices' `data` and `indices`.
    pub compression: Codec,
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
    /// The matrices rewritten as CSR (`X`, `layers/counts`, ...), with their stored entries.
    pub transposed: Vec<(String, u64)>,
    /// Seconds in all.
    pub seconds: f64,
    /// The written file.
    pub output: PathBuf,
}

impl fmt::Display for ConvertSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.transposed.is_empty() {
            write!(
                f,
                "no csc_matrix to rewrite; copied to {} in {:.2} s",
                self.output.display(),
                self.seconds
            )
        } else {
            let values: u64 = self.transposed.iter().map(|t| t.1).sum();
            let names: Vec<&str> = self.transposed.iter().map(|t| t.0.as_str()).collect();
            write!(
                f,
                "rewrote {} as csr_matrix ({values} stored values) into {} in {:.2} s \
                 ({:.0} values/s)",
                names.join(", "),
                self.output.display(),
                self.seconds,
                values as f64 / self.seconds.max(1e-9)
            )
        }
    }
}

/// A `csc_matrix` element to rewrite: its parent group's path in the file ("" for the root)
/// and its name.
struct CscElement {
    parent: &'static str,
    name: String,
}

impl CscElement {
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

/// The `csc_matrix` elements of `reader`'s file: X, each member of [`MATRIX_GROUPS`], raw/X.
fn csc_elements(reader: &H5adReader) -> Result<Vec<CscElement>> {
    let root = reader.root();
    let mut found = Vec::new();
    if is_csc(root, "X")? {
        found.push(CscElement {
            parent: "",
            name: "X".into(),
        });
    }
    for group in MATRIX_GROUPS {
        for key in reader.keys(group)? {
            if is_csc(&reader.group(group)?, &key)? {
                found.push(CscElement {
                    parent: group,
                    name: key,
                });
            }
        }
    }
    if let Some(raw) = root
        .link_exists("raw")
        .then(|| reader.group("raw").ok())
        .flatten()
    {
        if is_csc(&raw, "X")? {
            found.push(CscElement {
                parent: "raw",
                name: "X".into(),
            });
        }
    }
    Ok(found)
}

/// Runs `convert` as the options say.
pub fn convert(opts: &ConvertOptions) -> Result<ConvertSummary> {
    let t = Instant::now();
    let reader = H5adReader::open(&opts.input)?;
    let set = super::single_output(&opts.input, &opts.output, opts.force)?;
    let csc = csc_elements(&reader)?;
    let read_path = crate::io::default_read_path();
    let mut total = 0u64;
    let mut sizes = Vec::with_capacity(csc.len());
    for e in &csc {
        let parent = group_in(reader.root(), e.parent, |g| reader.group(g))?;
        let n = csc_nnz(&parent, &e.name, read_path)?;
        sizes.push(n);
        total += n;
    }

    let out = OutputFile::create_in(&set, &opts.output)?;
    let raw_x = csc.iter().any(|e| e.parent == "raw");
    // Every root member is copied whole (old layouts' `raw.X` and the like too), but the mapping
    // groups (copied key by key), a CSC X and a raw whose X is CSC.
    let members = reader.root_members()?;
    let whole: Vec<&str> = members
        .iter()
        .map(String::as_str)
        .filter(|m| !MAPPING_KEYS.contains(m))
        .filter(|&m| !(m == "X" && csc.iter().any(|e| e.parent.is_empty())))
        .filter(|&m| !(m == "raw" && raw_x))
        .collect();
    let skip: Vec<String> = csc
        .iter()
        .filter(|e| MATRIX_GROUPS.contains(&e.parent))
        .map(CscElement::path)
        .collect();
    let skip: Vec<&str> = skip.iter().map(String::as_str).collect();
    out.carry_over(&reader, &whole, &MAPPING_KEYS, &skip)?;
    if raw_x {
        out.carry_group_except(&reader, "raw", &["X"])?;
    }

    let bar = Progress::new("convert", 3 * total, opts.quiet);
    let staged = set.staged(&opts.output);
    let scratch = staged
        .parent()
        .unwrap_or(staged)
        .join(".scoop-transpose-scratch");
    let topts = TransposeOptions {
        compression: opts.compression,
        block_values: opts.chunk_values.max(1),
        band_values: opts.chunk_values.max(1),
        read_path,
    };
    let mut transposed = Vec::with_capacity(csc.len());
    for (e, &n) in csc.iter().zip(&sizes) {
        let src = group_in(reader.root(), e.parent, |g| reader.group(g))?;
        let dst = group_in(out.root(), e.parent, |g| out.group(g))?;
        csc_to_csr(&src, &e.name, &dst, &scratch, &topts, &|k| bar.inc(k))?;
        transposed.push((e.path(), n));
    }
    bar.finish();
    out.close()?;
    set.commit()?;
    Ok(ConvertSummary {
        transposed,
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
