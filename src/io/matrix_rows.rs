//! Matrix elements (`X`, `layers/*`, `raw/X`) rewritten by rows in their stored encoding (CSR or
//! dense) and dtype, streamed by blocks of rows: row subsets (`adata[rows]`), gene selections
//! (`adata[:, genes]`) and row concatenations over a joined gene axis (`anndata.concat`). Values
//! are never converted, except where inputs of a concatenation disagree (see
//! [`concat_rows`]).

use std::ops::Range;

use hdf5::{Dataset, Group};

use super::array::{NumDtype, NumVec};
use super::csr::{CsrWriteOptions, CsrWriter, MatrixEncoding, MatrixInfo, MatrixReader};
use super::filters::Codec;
use super::h5::{self, format_err, H5Context};
use super::subset::RowPick;
use crate::error::{Error, Result};

/// Where each source column goes in the output: `map[j]` is source column `j`'s output column,
/// `None` when it is left out. Output columns no source column maps to are absent values (see
/// [`concat_rows`] for what fills them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnMap {
    map: Vec<Option<u32>>,
    n_out: usize,
}

impl ColumnMap {
    /// Every column of `n` in place.
    pub fn identity(n: usize) -> Self {
        ColumnMap {
            map: (0..n as u32).map(Some).collect(),
            n_out: n,
        }
    }

    /// The columns `keep` (ascending) of `n_src`, in that order (`adata[:, keep]`).
    pub fn select(n_src: usize, keep: &[usize]) -> Self {
        let mut map = vec![None; n_src];
        for (new, &old) in keep.iter().enumerate() {
            map[old] = Some(new as u32);
        }
        ColumnMap {
            map,
            n_out: keep.len(),
        }
    }

    /// A map of source columns onto `n_out` output columns (a joined gene axis).
    pub fn new(map: Vec<Option<u32>>, n_out: usize) -> Self {
        ColumnMap { map, n_out }
    }

    /// Source columns.
    pub fn n_src(&self) -> usize {
        self.map.len()
    }

    /// Output columns.
    pub fn n_out(&self) -> usize {
        self.n_out
    }

    /// True when every column stays where it is.
    pub fn is_identity(&self) -> bool {
        self.n_out == self.map.len()
            && self
                .map
                .iter()
                .enumerate()
                .all(|(i, c)| *c == Some(i as u32))
    }

    /// True when some output column has no source column.
    fn has_gaps(&self) -> bool {
        let mut hit = vec![false; self.n_out];
        for c in self.map.iter().flatten() {
            hit[*c as usize] = true;
        }
        hit.contains(&false)
    }
}

/// A block of rows of a matrix, values in their stored dtype.
#[derive(Clone, Debug, PartialEq)]
pub enum RowBlock {
    /// CSR rows: `indptr` local to the block (starting at 0).
    Csr {
        /// Columns.
        n_cols: usize,
        /// Row offsets, `n_rows + 1` entries.
        indptr: Vec<usize>,
        /// Column of each stored value.
        indices: Vec<u32>,
        /// Stored values.
        data: NumVec,
    },
    /// Dense rows, row-major.
    Dense {
        /// Rows.
        n_rows: usize,
        /// Columns.
        n_cols: usize,
        /// `n_rows * n_cols` values.
        data: NumVec,
    },
}

impl RowBlock {
    /// Rows in the block.
    pub fn n_rows(&self) -> usize {
        match self {
            RowBlock::Csr { indptr, .. } => indptr.len() - 1,
            RowBlock::Dense { n_rows, .. } => *n_rows,
        }
    }

    /// The local rows `rows`, in that order, repeats allowed.
    pub fn take_rows(&self, rows: &[usize]) -> RowBlock {
        match self {
            RowBlock::Csr {
                n_cols,
                indptr,
                indices,
                data,
            } => {
                let mut ptr = vec![0usize];
                let mut pos = Vec::new();
                for &r in rows {
                    pos.extend(indptr[r]..indptr[r + 1]);
                    ptr.push(pos.len());
                }
                RowBlock::Csr {
                    n_cols: *n_cols,
                    indptr: ptr,
                    indices: pos.iter().map(|&p| indices[p]).collect(),
                    data: data.take(&pos),
                }
            }
            RowBlock::Dense { n_cols, data, .. } => {
                let pos: Vec<usize> = rows
                    .iter()
                    .flat_map(|&r| r * n_cols..(r + 1) * n_cols)
                    .collect();
                RowBlock::Dense {
                    n_rows: rows.len(),
                    n_cols: *n_cols,
                    data: data.take(&pos),
                }
            }
        }
    }

    /// The block's columns moved as `map` says (`map.n_src()` must be the block's columns).
    /// Dense output columns without a source hold `fill`, the values then being of `fill_dtype`.
    fn map_columns(self, map: &ColumnMap, fill: f64, fill_dtype: NumDtype) -> RowBlock {
        if map.is_identity() {
            return self;
        }
        match &self {
            RowBlock::Csr {
                indptr,
                indices,
                data,
                ..
            } => {
                let mut ptr = vec![0usize];
                let (mut pos, mut cols) = (Vec::new(), Vec::new());
                let mut row: Vec<(u32, usize)> = Vec::new();
                for w in indptr.windows(2) {
                    row.clear();
                    row.extend(
                        (w[0]..w[1]).filter_map(|p| map.map[indices[p] as usize].map(|c| (c, p))),
                    );
                    row.sort_unstable_by_key(|&(c, _)| c);
                    for &(c, p) in &row {
                        cols.push(c);
                        pos.push(p);
                    }
                    ptr.push(pos.len());
                }
                RowBlock::Csr {
                    n_cols: map.n_out,
                    indptr: ptr,
                    indices: cols,
                    data: data.take(&pos),
                }
            }
            RowBlock::Dense {
                n_rows,
                n_cols,
                data,
            } => {
                let mut src_of = vec![None; map.n_out];
                for (j, c) in map.map.iter().enumerate() {
                    if let Some(c) = c {
                        src_of[*c as usize] = Some(j);
                    }
                }
                if src_of.iter().all(Option::is_some) {
                    let pos: Vec<usize> = (0..*n_rows)
                        .flat_map(|r| src_of.iter().map(move |j| r * n_cols + j.unwrap_or(0)))
                        .collect();
                    return RowBlock::Dense {
                        n_rows: *n_rows,
                        n_cols: map.n_out,
                        data: data.take(&pos),
                    };
                }
                let values = data.to_f64();
                let filled: Vec<f64> = (0..*n_rows)
                    .flat_map(|r| {
                        let values = &values;
                        src_of
                            .iter()
                            .map(move |j| j.map_or(fill, |j| values[r * n_cols + j]))
                    })
                    .collect();
                RowBlock::Dense {
                    n_rows: *n_rows,
                    n_cols: map.n_out,
                    data: NumVec::F64(filled).to_typed(fill_dtype),
                }
            }
        }
    }

    /// The dtype of the values.
    fn dtype(&self) -> NumDtype {
        match self {
            RowBlock::Csr { data, .. } | RowBlock::Dense { data, .. } => data.dtype(),
        }
    }

    /// The block as CSR (dense zeros dropped; values keep their dtype).
    fn into_csr(self) -> RowBlock {
        match &self {
            RowBlock::Csr { .. } => self,
            RowBlock::Dense {
                n_rows,
                n_cols,
                data,
            } => {
                let values = data.to_f64();
                let mut ptr = vec![0usize];
                let (mut pos, mut cols) = (Vec::new(), Vec::new());
                for r in 0..*n_rows {
                    for j in 0..*n_cols {
                        if values[r * n_cols + j] != 0.0 {
                            pos.push(r * n_cols + j);
                            cols.push(j as u32);
                        }
                    }
                    ptr.push(pos.len());
                }
                RowBlock::Csr {
                    n_cols: *n_cols,
                    indptr: ptr,
                    indices: cols,
                    data: data.take(&pos),
                }
            }
        }
    }

    /// The block with its values converted to `dtype` (numpy's `astype`).
    fn cast(self, dtype: NumDtype) -> RowBlock {
        match self {
            RowBlock::Csr {
                n_cols,
                indptr,
                indices,
                data,
            } if data.dtype() != dtype => RowBlock::Csr {
                n_cols,
                indptr,
                indices,
                data: data.to_typed(dtype),
            },
            RowBlock::Dense {
                n_rows,
                n_cols,
                data,
            } if data.dtype() != dtype => RowBlock::Dense {
                n_rows,
                n_cols,
                data: data.to_typed(dtype),
            },
            same => same,
        }
    }
}

impl MatrixReader {
    /// Reads rows `rows` in the stored encoding and dtype.
    pub fn read_block(&self, rows: Range<usize>) -> Result<RowBlock> {
        match self {
            MatrixReader::Csr(r) => {
                let (indptr, indices, data) = r.read_rows_typed(rows)?;
                Ok(RowBlock::Csr {
                    n_cols: self.shape().1,
                    indptr,
                    indices,
                    data,
                })
            }
            MatrixReader::Dense(r) => Ok(RowBlock::Dense {
                n_rows: rows.len(),
                n_cols: self.shape().1,
                data: r.read_rows_typed(rows)?,
            }),
        }
    }
}

/// Writes a matrix element block by block, in the encoding and dtype it was created with.
pub struct MatrixSink {
    kind: SinkKind,
    dtype: NumDtype,
    n_cols: usize,
}

enum SinkKind {
    Csr(CsrWriter),
    Dense {
        ds: Dataset,
        n_rows: usize,
        written: usize,
    },
}

/// Rows per HDF5 chunk of a dense matrix written here: about a million values.
fn dense_chunk_rows(n_cols: usize) -> usize {
    (1 << 20) / n_cols.max(1)
}

impl MatrixSink {
    /// Creates element `name` of `parent`: a `csr_matrix` group, or an `n_rows` × `n_cols`
    /// dense `array` dataset (`n_rows` is the dense matrix's final height), of `dtype` values.
    pub fn create(
        parent: &Group,
        name: &str,
        encoding: MatrixEncoding,
        dtype: NumDtype,
        n_rows: usize,
        n_cols: usize,
        opts: CsrWriteOptions,
    ) -> Result<Self> {
        let kind = match encoding {
            MatrixEncoding::Csr => {
                SinkKind::Csr(CsrWriter::create_typed(parent, name, n_cols, dtype, opts)?)
            }
            MatrixEncoding::Csc => {
                return Err(format_err(
                    parent,
                    name,
                    "scoop writes matrices as csr_matrix or array, not csc_matrix",
                ))
            }
            MatrixEncoding::Dense => {
                let ds = crate::with_num_type!(dtype, T => {
                    let mut b = parent.new_dataset::<T>().shape((n_rows, n_cols));
                    if n_rows > 0 && n_cols > 0 {
                        b = b.chunk((dense_chunk_rows(n_cols).clamp(1, n_rows), n_cols));
                        b = b.set_filters(&opts.compression.filters());
                    }
                    b.create(name).at(parent, name)
                })?;
                h5::set_encoding(&ds, "array", "0.2.0")?;
                SinkKind::Dense {
                    ds,
                    n_rows,
                    written: 0,
                }
            }
        };
        Ok(MatrixSink {
            kind,
            dtype,
            n_cols,
        })
    }

    /// Appends the rows of `block` (converted to this sink's dtype, and to CSR for a CSR sink).
    pub fn append(&mut self, block: &RowBlock) -> Result<()> {
        let n_cols = match block {
            RowBlock::Csr { n_cols, .. } | RowBlock::Dense { n_cols, .. } => *n_cols,
        };
        if n_cols != self.n_cols {
            return Err(Error::InvalidArgument(format!(
                "matrix writer: block of {n_cols} columns onto a matrix of {}",
                self.n_cols
            )));
        }
        let converted;
        let block = match (&self.kind, block) {
            (SinkKind::Csr(_), RowBlock::Dense { .. }) => {
                converted = block.clone().into_csr().cast(self.dtype);
                &converted
            }
            _ if block.dtype() != self.dtype => {
                converted = block.clone().cast(self.dtype);
                &converted
            }
            _ => block,
        };
        match (&mut self.kind, block) {
            (
                SinkKind::Csr(w),
                RowBlock::Csr {
                    indptr,
                    indices,
                    data,
                    ..
                },
            ) => w.append_typed(indptr, indices, data),
            (SinkKind::Csr(_), RowBlock::Dense { .. }) => unreachable!("converted to CSR above"),
            (SinkKind::Dense { .. }, RowBlock::Csr { .. }) => Err(Error::InvalidArgument(
                "matrix writer: CSR rows onto a dense matrix".into(),
            )),
            (
                SinkKind::Dense {
                    ds,
                    n_rows,
                    written,
                },
                RowBlock::Dense {
                    n_rows: rows, data, ..
                },
            ) => {
                let rows = *rows;
                if *written + rows > *n_rows {
                    return Err(Error::InvalidArgument(format!(
                        "matrix writer: {rows} rows onto {written} of {n_rows}"
                    )));
                }
                if rows > 0 && n_cols > 0 {
                    let loc: &hdf5::Location = ds;
                    crate::with_numvec!(data, v => {
                        let view = ndarray::ArrayView2::from_shape((rows, n_cols), v.as_slice())
                            .expect("block length is rows x columns");
                        ds.write_slice(view, (*written..*written + rows, ..)).at(loc, "")
                    })?;
                }
                *written += rows;
                Ok(())
            }
        }
    }

    /// Completes the element (the CSR `shape`; checks a dense matrix got all its rows).
    pub fn finish(self) -> Result<()> {
        match self.kind {
            SinkKind::Csr(w) => w.finish().map(|_| ()),
            SinkKind::Dense {
                ds,
                n_rows,
                written,
            } => {
                if written != n_rows {
                    return Err(format_err(
                        &ds,
                        "",
                        format!("{written} of {n_rows} rows written"),
                    ));
                }
                Ok(())
            }
        }
    }
}

/// Stored values a block read here aims at (≈ 32 MB of float64): wide dense matrices get fewer
/// rows per block than asked.
const BLOCK_VALUES: u64 = 1 << 22;

/// Rows per block of `info`'s matrix: `requested`, lowered to about [`BLOCK_VALUES`] stored
/// values, at least 1.
fn block_rows_for(info: &MatrixInfo, requested: usize) -> usize {
    let per_row = info.nnz.div_ceil(info.shape.0.max(1) as u64).max(1);
    requested.clamp(1, ((BLOCK_VALUES / per_row) as usize).max(1))
}

/// Rows `pick` names, counted with repeats.
fn picked_rows(pick: RowPick<'_>) -> usize {
    match pick {
        RowPick::Mask(m) => m.iter().filter(|&&k| k).count(),
        RowPick::Sorted(r) => r.len(),
    }
}

/// Writes the rows `pick` of matrix `name` of `src`, its columns moved as `cols` says (all in
/// place when `None`), as element `name` of `dst`, in the source's encoding and dtype: what
/// `adata[rows][:, genes]` holds for X, a layer or `raw.X`. Reads `block_rows` source rows at a
/// time; `compression` compresses what is written. Returns the written (rows, columns).
pub fn copy_rows(
    src: &Group,
    name: &str,
    dst: &Group,
    pick: RowPick<'_>,
    cols: Option<&ColumnMap>,
    block_rows: usize,
    compression: Codec,
) -> Result<(usize, usize)> {
    let reader = MatrixReader::open(src, name)?;
    let info = reader.info().clone();
    let (n, d) = info.shape;
    pick.check(n)
        .map_err(|e| format_err(src, name, e.to_string()))?;
    if let Some(c) = cols {
        if c.n_src() != d {
            return Err(format_err(
                src,
                name,
                format!("has {d} columns; {} expected", c.n_src()),
            ));
        }
    }
    let n_out = picked_rows(pick);
    let d_out = cols.map_or(d, ColumnMap::n_out);
    let all_rows = match pick {
        RowPick::Mask(m) => m.iter().all(|&k| k),
        RowPick::Sorted(r) => r.len() == n && r.iter().enumerate().all(|(i, &j)| i == j),
    };
    let nnz_hint = (all_rows && cols.is_none_or(ColumnMap::is_identity)).then_some(info.nnz);
    let mut sink = MatrixSink::create(
        dst,
        name,
        info.encoding,
        info.dtype,
        n_out,
        d_out,
        CsrWriteOptions {
            compression,
            nnz_hint,
        },
    )?;
    let block_rows = block_rows_for(&info, block_rows);
    for start in (0..n).step_by(block_rows) {
        let end = (start + block_rows).min(n);
        let Some(mut block) = read_picked(&reader, Some(pick), start..end)? else {
            continue;
        };
        if let Some(c) = cols {
            block = block.map_columns(c, 0.0, info.dtype);
        }
        sink.append(&block)?;
    }
    sink.finish()?;
    Ok((n_out, d_out))
}

/// The rows of `rows` that `pick` names (all of them when `None`), read from `reader`; `None`
/// when it names none there.
fn read_picked(
    reader: &MatrixReader,
    pick: Option<RowPick<'_>>,
    rows: Range<usize>,
) -> Result<Option<RowBlock>> {
    let Some(pick) = pick else {
        return reader.read_block(rows).map(Some);
    };
    let local = pick.rows_in(rows.start, rows.end);
    if local.is_empty() {
        return Ok(None);
    }
    let all = local.len() == rows.len() && local.iter().enumerate().all(|(i, &j)| i == j);
    let block = reader.read_block(rows)?;
    Ok(Some(if all { block } else { block.take_rows(&local) }))
}

/// One input of [`concat_rows`]: matrix `name` of `group`, the rows of it taken (`None`: all,
/// in order) and where its columns go on the joined axis.
#[derive(Clone, Copy)]
pub struct ConcatPart<'a> {
    /// The group holding the matrix.
    pub group: &'a Group,
    /// The matrix's name in `group`.
    pub name: &'a str,
    /// The rows taken, in order; `None`: all.
    pub rows: Option<RowPick<'a>>,
    /// Where its columns go.
    pub cols: &'a ColumnMap,
}

/// Writes the row concatenation of `parts` (each its picked rows, in order) as element `name`
/// of `dst`, as `anndata.concat` does for X, layers and obsm: dense when every part is dense,
/// else CSR (dense parts converted); values of the parts' dtype when they agree, else float64;
/// output columns a part lacks are NaN when every part is dense (whose values then become
/// floats), else zeros, as anndata's default fill value. Streams `block_rows` source rows at a
/// time. Returns (rows, columns).
pub fn concat_rows(
    parts: &[ConcatPart<'_>],
    dst: &Group,
    name: &str,
    block_rows: usize,
    compression: Codec,
) -> Result<(usize, usize)> {
    let Some(first) = parts.first() else {
        return Err(Error::InvalidArgument(format!(
            "{name}: nothing to concatenate"
        )));
    };
    let d_out = first.cols.n_out();
    let readers = parts
        .iter()
        .map(|p| MatrixReader::open(p.group, p.name))
        .collect::<Result<Vec<_>>>()?;
    for (p, r) in parts.iter().zip(&readers) {
        if r.shape().1 != p.cols.n_src() {
            return Err(format_err(
                p.group,
                p.name,
                format!(
                    "has {} columns; its var has {}",
                    r.shape().1,
                    p.cols.n_src()
                ),
            ));
        }
        if let Some(pick) = p.rows {
            pick.check(r.shape().0)
                .map_err(|e| format_err(p.group, p.name, e.to_string()))?;
        }
    }
    let all_dense = readers
        .iter()
        .all(|r| r.info().encoding == MatrixEncoding::Dense);
    let encoding = if all_dense {
        MatrixEncoding::Dense
    } else {
        MatrixEncoding::Csr
    };
    let dtype0 = readers[0].info().dtype;
    let mut dtype = if readers.iter().all(|r| r.info().dtype == dtype0) {
        dtype0
    } else {
        NumDtype::F64
    };
    // anndata's default fill: NaN when every part is dense, else 0.
    let fill = if all_dense { f64::NAN } else { 0.0 };
    let gaps = parts.iter().any(|p| p.cols.has_gaps());
    if all_dense && gaps && dtype != NumDtype::F32 {
        dtype = NumDtype::F64;
    }
    let n_out: usize = parts
        .iter()
        .zip(&readers)
        .map(|(p, r)| p.rows.map_or(r.shape().0, picked_rows))
        .sum();
    let identity = parts
        .iter()
        .all(|p| p.cols.is_identity() && p.rows.is_none());
    let nnz_hint = identity.then(|| readers.iter().map(|r| r.info().nnz).sum());
    let mut sink = MatrixSink::create(
        dst,
        name,
        encoding,
        dtype,
        n_out,
        d_out,
        CsrWriteOptions {
            compression,
            nnz_hint,
        },
    )?;
    for (p, r) in parts.iter().zip(&readers) {
        let block_rows = block_rows_for(r.info(), block_rows);
        let n = r.shape().0;
        for start in (0..n).step_by(block_rows) {
            let end = (start + block_rows).min(n);
            if let Some(block) = read_picked(r, p.rows, start..end)? {
                sink.append(&block.map_columns(p.cols, fill, dtype))?;
            }
        }
    }
    sink.finish()?;
    Ok((n_out, d_out))
}

/// Writes `raw` of `src_root` into `dst_root` for the rows `pick`: `raw/X`'s rows (all its
/// columns, as anndata keeps raw's genes when a view drops some of X's), and every other member
/// of `raw` (`var`, `varm`) copied unchanged inside HDF5. Does nothing when `src_root` has no
/// `raw` group.
pub fn copy_raw_rows(
    src_root: &Group,
    dst_root: &Group,
    pick: RowPick<'_>,
    block_rows: usize,
    compression: Codec,
) -> Result<bool> {
    if !h5::is_group(src_root, "raw") {
        return Ok(false);
    }
    let raw = src_root.group("raw").at(src_root, "raw")?;
    let out = dst_root.create_group("raw").at(dst_root, "raw")?;
    h5::set_encoding(&out, "raw", "0.1.0")?;
    for member in h5::members(&raw)? {
        if member == "X" {
            copy_rows(&raw, "X", &out, pick, None, block_rows, compression)?;
        } else {
            h5::copy_object(&raw, &member, &out)?;
        }
    }
    Ok(true)
}

/// Writes the rows `pick` and columns `cols` of every entry of `layers` of `src_root` as
/// `layers` of `dst_root` (created, empty when the source has none). Returns the keys written.
pub fn copy_layers_rows(
    src_root: &Group,
    dst_root: &Group,
    pick: RowPick<'_>,
    cols: Option<&ColumnMap>,
    block_rows: usize,
    compression: Codec,
) -> Result<Vec<String>> {
    let out = dst_root.create_group("layers").at(dst_root, "layers")?;
    h5::set_encoding(&out, "dict", "0.1.0")?;
    if !h5::is_group(src_root, "layers") {
        return Ok(Vec::new());
    }
    let layers = src_root.group("layers").at(src_root, "layers")?;
    let keys = h5::members(&layers)?;
    for key in &keys {
        copy_rows(&layers, key, &out, pick, cols, block_rows, compression)?;
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr() -> RowBlock {
        // [[1, 0, 2], [0, 0, 0], [0, 3, 0]]
        RowBlock::Csr {
            n_cols: 3,
            indptr: vec![0, 2, 2, 3],
            indices: vec![0, 2, 1],
            data: NumVec::I64(vec![1, 2, 3]),
        }
    }

    #[test]
    fn csr_rows_and_columns_keep_their_dtype() {
        let b = csr().take_rows(&[2, 0, 0]);
        assert_eq!(
            b,
            RowBlock::Csr {
                n_cols: 3,
                indptr: vec![0, 1, 3, 5],
                indices: vec![1, 0, 2, 0, 2],
                data: NumVec::I64(vec![3, 1, 2, 1, 2]),
            }
        );
        // Columns 2 and 0 swapped, column 1 dropped.
        let m = ColumnMap::new(vec![Some(1), None, Some(0)], 2);
        assert_eq!(
            csr().map_columns(&m, 0.0, NumDtype::I64),
            RowBlock::Csr {
                n_cols: 2,
                indptr: vec![0, 2, 2, 2],
                indices: vec![0, 1],
                data: NumVec::I64(vec![2, 1]),
            }
        );
    }

    #[test]
    fn dense_gaps_are_nan_and_csr_drops_zeros() {
        let d = RowBlock::Dense {
            n_rows: 2,
            n_cols: 2,
            data: NumVec::I32(vec![1, 0, 0, 4]),
        };
        let m = ColumnMap::new(vec![Some(2), Some(0)], 3);
        let RowBlock::Dense { data, .. } = d.clone().map_columns(&m, f64::NAN, NumDtype::F64)
        else {
            panic!("dense stays dense")
        };
        let v = data.to_f64();
        assert_eq!((v[0], v[2], v[3], v[5]), (0.0, 1.0, 4.0, 0.0));
        assert!(v[1].is_nan() && v[4].is_nan());
        assert_eq!(
            d.into_csr(),
            RowBlock::Csr {
                n_cols: 2,
                indptr: vec![0, 1, 2],
                indices: vec![0, 1],
                data: NumVec::I32(vec![1, 4]),
            }
        );
        assert!(ColumnMap::select(3, &[0, 2]).n_out() == 2);
        assert!(ColumnMap::identity(3).is_identity());
    }
}
