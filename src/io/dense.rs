//! Dense 2-D f32 arrays (`obsm` entries such as `X_pca`), read and written by row blocks as
//! HDF5 datasets anndata reads as an `array`.

use std::ops::Range;

use hdf5::{Dataset, Group};

use super::filters;
use super::h5::{self, format_err, H5Context, ValueKind};
use crate::error::{Error, Result};

/// A fixed-shape `n_rows x n_cols` f32 dataset filled in row order.
pub struct DenseRowWriter {
    ds: Dataset,
    n_rows: usize,
    n_cols: usize,
    written: usize,
}

impl DenseRowWriter {
    /// Creates dataset `name` under `parent`, chunked by `chunk_rows` rows.
    pub fn create(
        parent: &Group,
        name: &str,
        n_rows: usize,
        n_cols: usize,
        chunk_rows: usize,
    ) -> Result<Self> {
        let mut b = parent.new_dataset::<f32>().shape((n_rows, n_cols));
        if n_rows > 0 && n_cols > 0 {
            b = b.chunk((chunk_rows.clamp(1, n_rows), n_cols));
        }
        let ds = b.create(name).at(parent, name)?;
        h5::set_encoding(&ds, "array", "0.2.0")?;
        Ok(DenseRowWriter {
            ds,
            n_rows,
            n_cols,
            written: 0,
        })
    }

    /// Appends whole rows (`values.len()` a multiple of the column count).
    pub fn append(&mut self, values: &[f32]) -> Result<()> {
        if self.n_cols == 0 || values.is_empty() {
            return Ok(());
        }
        if !values.len().is_multiple_of(self.n_cols)
            || self.written + values.len() / self.n_cols > self.n_rows
        {
            return Err(Error::InvalidArgument(format!(
                "dense writer: {} values onto {} of {} rows of {} columns",
                values.len(),
                self.written,
                self.n_rows,
                self.n_cols
            )));
        }
        let rows = values.len() / self.n_cols;
        let view = ndarray::ArrayView2::from_shape((rows, self.n_cols), values)
            .expect("length checked above");
        let loc: &hdf5::Location = &self.ds;
        self.ds
            .write_slice(view, (self.written..self.written + rows, ..))
            .at(loc, "")?;
        self.written += rows;
        Ok(())
    }

    /// Checks every row was written.
    pub fn finish(self) -> Result<()> {
        if self.written != self.n_rows && self.n_cols > 0 {
            return Err(Error::InvalidArgument(format!(
                "dense writer: {} of {} rows written",
                self.written, self.n_rows
            )));
        }
        Ok(())
    }
}

/// Reader of a stored 2-D numeric array (`obsm/X_pca`), any float or integer dtype, as f32 rows.
pub struct DenseRowReader {
    ds: Dataset,
    parent: Group,
    name: String,
    shape: (usize, usize),
}

impl DenseRowReader {
    /// Opens dataset `name` of `parent`, checking it is a 2-D numeric array.
    pub fn open(parent: &Group, name: &str) -> Result<Self> {
        if !parent.link_exists(name) {
            return Err(format_err(parent, name, "not found"));
        }
        let ds = parent.dataset(name).map_err(|_| {
            format_err(
                parent,
                name,
                "expected a dense array (a dataset), found a group",
            )
        })?;
        let ValueKind::Num(_) = h5::value_kind(&ds, parent, name)? else {
            return Err(format_err(parent, name, "expected a numeric array"));
        };
        filters::check_decodable(&ds, parent, name)?;
        let shape = ds.shape();
        if shape.len() != 2 {
            return Err(format_err(
                parent,
                name,
                format!("expected a 2-D array, found shape {shape:?}"),
            ));
        }
        Ok(DenseRowReader {
            ds,
            parent: parent.clone(),
            name: name.to_string(),
            shape: (shape[0], shape[1]),
        })
    }

    /// (rows, columns).
    pub fn shape(&self) -> (usize, usize) {
        self.shape
    }

    /// Rows `rows`, columns `0..n_cols`, row-major f32.
    pub fn read_rows(&self, rows: Range<usize>, n_cols: usize) -> Result<Vec<f32>> {
        if rows.end > self.shape.0 || n_cols > self.shape.1 {
            return Err(format_err(
                &self.parent,
                &self.name,
                format!(
                    "rows {rows:?} x {n_cols} columns asked of a {} x {} array",
                    self.shape.0, self.shape.1
                ),
            ));
        }
        if rows.is_empty() || n_cols == 0 {
            return Ok(Vec::new());
        }
        let block = self
            .ds
            .as_reader()
            .read_slice_2d::<f32, _>((rows, 0..n_cols))
            .at(&self.parent, &self.name)?;
        Ok(block.into_raw_vec_and_offset().0)
    }

    /// The first `n_cols` columns of every row, read `block_rows` rows at a time.
    pub fn read_all(&self, n_cols: usize, block_rows: usize) -> Result<Vec<f32>> {
        let n = self.shape.0;
        let mut out = Vec::with_capacity(n * n_cols);
        for start in (0..n).step_by(block_rows.max(1)) {
            out.extend(self.read_rows(start..(start + block_rows).min(n), n_cols)?);
        }
        Ok(out)
    }
}
