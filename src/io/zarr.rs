//! Zarr output (via `zarrs`): a dense 2-D f32 array written chunk row by chunk row, in Zarr
//! format v2 so that zarr-python 2 and 3 and `dask.array.from_zarr` all read it.
//!
//! The store is written where it is told, normally an output's staged path in an
//! [`OutputSet`](super::OutputSet), whose commit makes it visible.

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zarrs::array::{Array, ArrayMetadata};
use zarrs::filesystem::FilesystemStore;
use zarrs::metadata::v2::{ArrayMetadataV2, DataTypeMetadataV2, FillValueMetadataV2};

use crate::error::{Error, Result};

/// A `rows x cols` little-endian f32 Zarr v2 array (no compressor, C order), chunked by
/// `chunk_rows` whole rows, filled by appending rows in order.
pub struct ZarrRowWriter {
    array: Array<FilesystemStore>,
    path: PathBuf,
    n_rows: u64,
    n_cols: usize,
    chunk_rows: usize,
    pending: Vec<f32>,
    next_chunk: u64,
}

/// A zarrs error on the store at `path`: an OS failure underneath (no space, ...) as
/// [`Error::Io`] with the OS's reason, anything else as a format error.
fn zarr_err(path: &Path, e: impl std::error::Error + 'static) -> Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if let Some(code) = io.raw_os_error() {
                return Error::io(path, std::io::Error::from_raw_os_error(code));
            }
        }
        source = s.source();
    }
    Error::format(path, "/", format!("zarr: {e}"))
}

impl ZarrRowWriter {
    /// Starts a store at `path` (a new directory) for an `n_rows x n_cols` array.
    pub fn create(path: &Path, n_rows: usize, n_cols: usize, chunk_rows: usize) -> Result<Self> {
        let tmp = path.to_path_buf();
        std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let chunk_rows = chunk_rows.clamp(1, n_rows.max(1));
        let nz = |v: usize| NonZeroU64::new(v.max(1) as u64).expect("max(1) is non-zero");
        let meta = ArrayMetadataV2::new(
            vec![n_rows as u64, n_cols as u64],
            vec![nz(chunk_rows), nz(n_cols)],
            DataTypeMetadataV2::Simple("<f4".into()),
            FillValueMetadataV2::from(0.0f32),
            None,
            None,
        );
        let store = Arc::new(FilesystemStore::new(&tmp).map_err(|e| zarr_err(&tmp, e))?);
        let array = Array::new_with_metadata(store, "/", ArrayMetadata::V2(meta))
            .map_err(|e| zarr_err(&tmp, e))?;
        array.store_metadata().map_err(|e| zarr_err(&tmp, e))?;
        Ok(ZarrRowWriter {
            array,
            path: tmp,
            n_rows: n_rows as u64,
            n_cols,
            chunk_rows,
            pending: Vec::new(),
            next_chunk: 0,
        })
    }

    /// Rows per chunk.
    pub fn chunk_rows(&self) -> usize {
        self.chunk_rows
    }

    fn rows_stored(&self) -> u64 {
        self.next_chunk * self.chunk_rows as u64
    }

    fn store_chunk(&mut self, values: &[f32]) -> Result<()> {
        self.array
            .store_chunk(&[self.next_chunk, 0], values)
            .map_err(|e| zarr_err(&self.path, e))?;
        self.next_chunk += 1;
        Ok(())
    }

    /// Appends whole rows; every complete chunk is written now.
    pub fn append(&mut self, values: &[f32]) -> Result<()> {
        if self.n_cols == 0 {
            return Ok(());
        }
        let rows = (values.len() / self.n_cols) as u64;
        let held = (self.pending.len() / self.n_cols) as u64;
        if !values.len().is_multiple_of(self.n_cols)
            || self.rows_stored() + held + rows > self.n_rows
        {
            return Err(Error::format(
                &self.path,
                "/",
                format!(
                    "{} values do not fit the array's remaining rows",
                    values.len()
                ),
            ));
        }
        let chunk_len = self.chunk_rows * self.n_cols;
        let mut rest = values;
        if self.pending.is_empty() {
            // Aligned input (the usual case): whole chunks go straight to the store.
            while rest.len() >= chunk_len {
                let (head, tail) = rest.split_at(chunk_len);
                self.store_chunk(head)?;
                rest = tail;
            }
        }
        self.pending.extend_from_slice(rest);
        while self.pending.len() >= chunk_len {
            let tail = self.pending.split_off(chunk_len);
            let head = std::mem::replace(&mut self.pending, tail);
            self.store_chunk(&head)?;
        }
        Ok(())
    }

    /// Writes the last (partial, zero-padded) chunk and checks every row arrived.
    pub fn finish(mut self) -> Result<()> {
        if !self.pending.is_empty() {
            let mut last = std::mem::take(&mut self.pending);
            last.resize(self.chunk_rows * self.n_cols, 0.0);
            self.store_chunk(&last)?;
        }
        let stored = self.rows_stored().min(self.n_rows);
        if stored != self.n_rows && self.n_cols > 0 {
            return Err(Error::format(
                &self.path,
                "/",
                format!("{stored} of {} rows written", self.n_rows),
            ));
        }
        Ok(())
    }
}
