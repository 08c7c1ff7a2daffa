//! Streamed writes of a dense 2-D f32 array (`obsm` entries such as `X_pca`), row block by row
//! block, into an HDF5 dataset anndata reads as an `array`.

use hdf5::{Dataset, Group};

use super::h5::{self, H5Context};
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
        if values.len() % self.n_cols != 0
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
