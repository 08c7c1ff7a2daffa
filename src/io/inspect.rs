//! `scoop inspect`: what `print(adata)` shows, plus how X is stored, without reading X's values.

use std::fmt::Write as _;
use std::path::Path;

use super::h5ad::{H5adReader, MAPPING_KEYS};
use super::MatrixEncoding;
use crate::error::Result;

/// Describes the file at `path` as text.
pub fn describe(path: &Path) -> Result<String> {
    let f = H5adReader::open(path)?;
    let obs = f.obs_reader()?;
    let var = f.var_reader()?;
    let mut s = String::new();
    writeln!(
        s,
        "AnnData object with n_obs × n_vars = {} × {}",
        obs.len(),
        var.len()
    )
    .unwrap();
    let quoted = |v: &[String]| {
        v.iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !obs.column_names().is_empty() {
        writeln!(s, "    obs: {}", quoted(obs.column_names())).unwrap();
    }
    if !var.column_names().is_empty() {
        writeln!(s, "    var: {}", quoted(var.column_names())).unwrap();
    }
    for key in MAPPING_KEYS {
        let keys = f.keys(key)?;
        if !keys.is_empty() {
            writeln!(s, "    {key}: {}", quoted(&keys)).unwrap();
        }
    }
    if f.has_x() {
        let x = f.x()?;
        let i = x.info();
        match i.encoding {
            MatrixEncoding::Csr => {
                let (ind, ptr) = i.index_dtypes.expect("csr has index dtypes");
                write!(
                    s,
                    "X: csr_matrix {}, nnz {} ({:.2}% dense), indices {}, indptr {}",
                    i.dtype.name(),
                    i.nnz,
                    100.0 * i.nnz as f64 / (i.shape.0 as f64 * i.shape.1 as f64).max(1.0),
                    ind.name(),
                    ptr.name()
                )
                .unwrap();
            }
            MatrixEncoding::Dense => write!(s, "X: dense array {}", i.dtype.name()).unwrap(),
        }
        match &i.chunks {
            Some(c) => write!(s, ", chunks {c:?}").unwrap(),
            None => write!(s, ", contiguous").unwrap(),
        }
        writeln!(
            s,
            ", compression {}",
            i.compression.as_deref().unwrap_or("none")
        )
        .unwrap();
    } else {
        writeln!(s, "X: none").unwrap();
    }
    Ok(s)
}
