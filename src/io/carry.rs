//! What a row concatenation carries besides X and obs, as `anndata.concat_on_disk` (inner join
//! of keys) carries it: each layer every input has, over the joined genes as X; each `obsm`
//! entry every input has, rows stacked; `raw` never. Planned (and checked against each input's
//! X) before anything is written, so a bad entry fails before a long pass rather than after it.

use super::array::DenseArray;
use super::elem::{write_element, Element};
use super::h5ad::{H5adReader, OutputFile};
use super::matrix_rows::{concat_rows, ColumnMap, ConcatPart};
use super::subset::RowPick;
use super::{Codec, MatrixReader};
use crate::error::{Error, Result};

/// How an `obsm` entry is stacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stack {
    /// A 2-D matrix (dense or sparse) of `n` columns in every input: streamed by rows.
    Matrix(usize),
    /// Some other dense array (1-D, n-D): read whole and stacked (only when every input's rows
    /// are all taken).
    InMemory,
}

/// The layers and `obsm` entries a concatenation writes, and what it leaves out.
#[derive(Clone, Debug, Default)]
pub struct Carried {
    /// Layer keys every input has, in the first input's order.
    pub layers: Vec<String>,
    obsm: Vec<(String, Stack)>,
    /// `layers/KEY` some inputs lack, `raw` (which `concat_on_disk` does not write) and
    /// `obsm/KEY (why)` entries that cannot be stacked on picked rows.
    pub left_out: Vec<String>,
}

impl Carried {
    /// Plans what `files` carry. `x_shapes[i]` is input `i`'s X shape: every carried layer must
    /// have it and every `obsm` entry its rows. `picked` says some input's rows are a subset (then
    /// only 2-D matrices in `obsm` can be carried).
    pub fn plan(files: &[H5adReader], x_shapes: &[(usize, usize)], picked: bool) -> Result<Self> {
        let mut carried = Carried::default();
        let common = |group: &str| -> Result<Vec<String>> {
            let mut keys = match files.first() {
                Some(f) => f.keys(group)?,
                None => Vec::new(),
            };
            for f in files.iter().skip(1) {
                let k = f.keys(group)?;
                keys.retain(|x| k.contains(x));
            }
            Ok(keys)
        };
        carried.layers = common("layers")?;
        for f in files {
            for k in f.keys("layers")? {
                let name = format!("layers/{k}");
                if !carried.layers.contains(&k) && !carried.left_out.contains(&name) {
                    carried.left_out.push(name);
                }
            }
        }
        if files.iter().any(|f| f.root().link_exists("raw")) {
            carried.left_out.push("raw".into());
        }
        for key in &carried.layers {
            for (f, &shape) in files.iter().zip(x_shapes) {
                let got = MatrixReader::open(&f.group("layers")?, key)?.shape();
                if got != shape {
                    return Err(Error::format(
                        f.path(),
                        format!("/layers/{key}"),
                        format!("shape {got:?}, but X's is {shape:?}"),
                    ));
                }
            }
        }
        for key in common("obsm")? {
            let mut widths = Vec::with_capacity(files.len());
            for (f, &(n, _)) in files.iter().zip(x_shapes) {
                let Ok(r) = MatrixReader::open(&f.group("obsm")?, &key) else {
                    break;
                };
                let (rows, cols) = r.shape();
                if rows != n {
                    return Err(Error::format(
                        f.path(),
                        format!("/obsm/{key}"),
                        format!("{rows} rows, but X has {n}"),
                    ));
                }
                widths.push(cols);
            }
            let stack = if widths.len() < files.len() {
                if picked {
                    carried
                        .left_out
                        .push(format!("obsm/{key} (not a 2-D matrix)"));
                    continue;
                }
                Stack::InMemory
            } else if let Some(i) = widths.iter().position(|&w| w != widths[0]) {
                return Err(Error::InvalidArgument(format!(
                    "obsm/{key} has {} columns in {} but {} in {}: it cannot be stacked",
                    widths[0],
                    files[0].path().display(),
                    widths[i],
                    files[i].path().display()
                )));
            } else {
                Stack::Matrix(widths[0])
            };
            carried.obsm.push((key, stack));
        }
        Ok(carried)
    }

    /// The `obsm` keys written.
    pub fn obsm_keys(&self) -> Vec<String> {
        self.obsm.iter().map(|(k, _)| k.clone()).collect()
    }

    /// Writes the planned layers and `obsm` entries into `output`: input `i`'s rows `picks[i]`
    /// (all when `None`), its genes moved as `genes[i]` says for layers; `block_rows` rows at a
    /// time, matrices compressed with `compression`. Writes an empty `layers` group when no
    /// layer is carried, as anndata does.
    pub fn write(
        &self,
        files: &[H5adReader],
        picks: &[Option<RowPick<'_>>],
        genes: &[ColumnMap],
        output: &OutputFile,
        block_rows: usize,
        compression: Codec,
    ) -> Result<()> {
        let dst = output.dict("layers")?;
        if !self.layers.is_empty() {
            let groups = files
                .iter()
                .map(|f| f.group("layers"))
                .collect::<Result<Vec<_>>>()?;
            for key in &self.layers {
                let parts: Vec<ConcatPart<'_>> = groups
                    .iter()
                    .zip(picks)
                    .zip(genes)
                    .map(|((group, &rows), cols)| ConcatPart {
                        group,
                        name: key,
                        rows,
                        cols,
                    })
                    .collect();
                concat_rows(&parts, &dst, key, block_rows, compression)?;
            }
        }
        if self.obsm.is_empty() {
            return Ok(());
        }
        let dst = output.dict("obsm")?;
        let groups = files
            .iter()
            .map(|f| f.group("obsm"))
            .collect::<Result<Vec<_>>>()?;
        for (key, stack) in &self.obsm {
            match *stack {
                Stack::Matrix(width) => {
                    let cols = ColumnMap::identity(width);
                    let parts: Vec<ConcatPart<'_>> = groups
                        .iter()
                        .zip(picks)
                        .map(|(group, &rows)| ConcatPart {
                            group,
                            name: key,
                            rows,
                            cols: &cols,
                        })
                        .collect();
                    concat_rows(&parts, &dst, key, block_rows, compression)?;
                }
                Stack::InMemory => {
                    let parts: Vec<Element> = files
                        .iter()
                        .map(|f| f.element("obsm", key))
                        .collect::<Result<_>>()?;
                    write_element(&dst, key, &stack_rows(key, parts)?)?;
                }
            }
        }
        Ok(())
    }
}

/// Stacks dense arrays along rows.
fn stack_rows(key: &str, parts: Vec<Element>) -> Result<Element> {
    let mut out: Option<DenseArray> = None;
    for p in parts {
        let Element::Array(a) = p else {
            return Err(Error::InvalidArgument(format!(
                "obsm/{key}: only arrays can be concatenated"
            )));
        };
        match &mut out {
            None => out = Some(a),
            Some(o) => {
                if o.shape[1..] != a.shape[1..] || o.data.dtype() != a.data.dtype() {
                    return Err(Error::InvalidArgument(format!(
                        "obsm/{key}: shapes or dtypes differ across inputs"
                    )));
                }
                o.shape[0] += a.shape[0];
                o.data.extend_from(&a.data);
            }
        }
    }
    Ok(Element::Array(out.expect("at least one input")))
}
