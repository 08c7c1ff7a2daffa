//! `scoop inspect`: what `print(adata)` shows, plus how X is stored, without reading X's values.

use std::fmt::Write as _;
use std::path::Path;

use super::dataframe::DataFrameReader;
use super::h5;
use super::h5ad::{H5adReader, MAPPING_KEYS};
use super::{MatrixEncoding, MatrixInfo};
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
        if key == "layers" {
            s.push_str(&describe_layers(&f)?);
            continue;
        }
        let keys = f.keys(key)?;
        if !keys.is_empty() {
            writeln!(s, "    {key}: {}", quoted(&keys)).unwrap();
        }
    }
    s.push_str(&describe_raw(&f)?);
    if f.has_x() {
        let i = &MatrixInfo::of(f.root(), "X")?;
        match i.encoding {
            MatrixEncoding::Csr | MatrixEncoding::Csc => {
                let (ind, ptr) = i.index_dtypes.expect("sparse has index dtypes");
                write!(
                    s,
                    "X: {} {}, nnz {} ({:.2}% dense), indices {}, indptr {}",
                    encoding_name(i.encoding),
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
        write!(
            s,
            ", compression {}",
            i.compression.as_deref().unwrap_or("none")
        )
        .unwrap();
        match f.x_link() {
            Some(link) => writeln!(
                s,
                "; stored in {} ({}, external link)",
                link.file, link.element
            ),
            None => writeln!(s),
        }
        .unwrap();
        if i.encoding == MatrixEncoding::Csc {
            writeln!(
                s,
                "    (scoop streams rows: `scoop convert` writes a copy with X as csr_matrix)"
            )
            .unwrap();
        }
    } else {
        writeln!(s, "X: none").unwrap();
    }
    Ok(s)
}

/// `    layers: 'counts' (csr_matrix float32), ...`, or nothing without layers.
fn describe_layers(f: &H5adReader) -> Result<String> {
    let keys = f.keys("layers")?;
    if keys.is_empty() {
        return Ok(String::new());
    }
    let g = f.group("layers")?;
    let items = keys
        .iter()
        .map(|k| Ok(format!("'{k}' ({})", matrix_kind(&MatrixInfo::of(&g, k)?))))
        .collect::<Result<Vec<_>>>()?;
    Ok(format!("    layers: {}\n", items.join(", ")))
}

/// `    raw: 40 × 80 (csr_matrix float32), var: 'kind'`, or nothing without raw.
fn describe_raw(f: &H5adReader) -> Result<String> {
    if !h5::is_group(f.root(), "raw") {
        return Ok(String::new());
    }
    let raw = f.group("raw")?;
    let x = MatrixInfo::of(&raw, "X")?;
    let (n, d) = x.shape;
    let mut line = format!("    raw: {n} × {d} ({})", matrix_kind(&x));
    if raw.link_exists("var") {
        let var = DataFrameReader::open(&raw, "var")?;
        if !var.column_names().is_empty() {
            let cols: Vec<String> = var
                .column_names()
                .iter()
                .map(|c| format!("'{c}'"))
                .collect();
            write!(line, ", var: {}", cols.join(", ")).unwrap();
        }
    }
    line.push('\n');
    Ok(line)
}

/// `csr_matrix float32` or `array float64`.
fn matrix_kind(m: &MatrixInfo) -> String {
    format!("{} {}", encoding_name(m.encoding), m.dtype.name())
}

/// The encoding's name in AnnData files.
fn encoding_name(e: MatrixEncoding) -> &'static str {
    match e {
        MatrixEncoding::Csr => "csr_matrix",
        MatrixEncoding::Csc => "csc_matrix",
        MatrixEncoding::Dense => "array",
    }
}
