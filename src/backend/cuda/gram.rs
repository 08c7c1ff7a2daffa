//! Gram accumulation on the devices: each worker keeps a dense f64 `dim x dim` gram and column
//! sums in device memory, adds its shard of every chunk to them (densify a panel of rows, then
//! the SYRK kernel) without waiting for the device, and hands them to the host once at the end,
//! where the workers' partial grams are added in f64.

use cudarc::driver::{CudaSlice, LaunchConfig};

use super::worker::{launch, Worker};
use super::CudaBackend;
use crate::backend::{Gram, GramAccumulator};
use crate::error::{Error, Result};
use crate::io::CsrChunk;

/// Side of the gram tiles of kernels/gram.cu's `syrk_upper`.
const SYRK_TILE: usize = 64;

/// Bytes of a densified panel of rows (the panel's rows follow from it and `dim`).
const PANEL_BYTES: usize = 64 << 20;

/// One worker's device-resident gram.
struct DeviceGram {
    gram: CudaSlice<f64>,
    sum: CudaSlice<f64>,
    panel: CudaSlice<f64>,
    panel_rows: usize,
}

impl DeviceGram {
    fn new(w: &Worker, dim: usize) -> Result<Self> {
        let panel_rows = (PANEL_BYTES / (dim.max(1) * 8)).clamp(16, 1 << 16);
        let bytes = (dim * dim + dim + panel_rows * dim) * 8;
        if bytes > w.budget {
            return Err(Error::Backend(format!(
                "a gram of {dim} genes needs {:.1} GiB on device {}, {:.1} GiB is this worker's \
                 share of the free memory (PCA runs on the highly variable genes; subset first)",
                bytes as f64 / (1u64 << 30) as f64,
                w.ordinal,
                w.budget as f64 / (1u64 << 30) as f64
            )));
        }
        Ok(DeviceGram {
            gram: w.zeros(dim * dim)?,
            sum: w.zeros(dim)?,
            panel: w.zeros(panel_rows * dim)?,
            panel_rows,
        })
    }

    /// Adds rows `rows` of `chunk`.
    fn add(
        &mut self,
        w: &Worker,
        chunk: &CsrChunk,
        rows: std::ops::Range<usize>,
        dim: usize,
    ) -> Result<()> {
        if dim == 0 {
            return Ok(());
        }
        // The previous chunk's kernels (queued without a wait) finish first.
        w.sync()?;
        let csr = w.upload_rows(chunk, rows.clone())?;
        let n_tiles = dim.div_ceil(SYRK_TILE) as u32;
        let syrk = LaunchConfig {
            grid_dim: (n_tiles * (n_tiles + 1) / 2, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let dim64 = dim as u64;
        for r0 in (0..rows.len()).step_by(self.panel_rows) {
            let r1 = (r0 + self.panel_rows).min(rows.len());
            let n = (r1 - r0) as u64;
            w.stream
                .memset_zeros(&mut self.panel)
                .map_err(super::worker::cuda_err(format!(
                    "memset on device {}",
                    w.ordinal
                )))?;
            let indptr = csr.indptr.slice(r0..=r1);
            launch!(
                w,
                densify,
                Worker::row_launch(n),
                &indptr,
                &csr.base,
                &csr.indices,
                &csr.data,
                &n,
                &dim64,
                &self.panel
            )?;
            launch!(
                w,
                panel_colsum,
                Worker::flat_launch(dim64),
                &self.panel,
                &n,
                &dim64,
                &self.sum
            )?;
            launch!(
                w,
                syrk_upper,
                syrk,
                &self.panel,
                &n,
                &dim64,
                &n_tiles,
                &self.gram
            )?;
        }
        // No wait here: the launches are queued on the worker's stream and `csr` is freed in
        // stream order after them (cuMemFreeAsync), so the host checks and shards the next chunk
        // while this one computes. The next `add` waits before queueing more (one chunk in
        // flight bounds device memory); errors surface there or in `finish`.
        Ok(())
    }
}

/// A gram accumulation over the backend's workers.
pub(super) struct CudaGramAccumulator<'a> {
    backend: &'a CudaBackend,
    dim: usize,
    n_rows: u64,
    grams: Vec<DeviceGram>,
}

impl<'a> CudaGramAccumulator<'a> {
    pub fn new(backend: &'a CudaBackend, dim: usize) -> Result<Self> {
        let grams = backend
            .workers
            .iter()
            .map(|w| DeviceGram::new(w, dim))
            .collect::<Result<_>>()?;
        Ok(CudaGramAccumulator {
            backend,
            dim,
            n_rows: 0,
            grams,
        })
    }
}

impl GramAccumulator for CudaGramAccumulator<'_> {
    fn add(&mut self, chunk: &CsrChunk) -> Result<()> {
        if chunk.n_cols != self.dim {
            return Err(Error::InvalidArgument(format!(
                "gram: a chunk of {} columns into a gram of {} genes",
                chunk.n_cols, self.dim
            )));
        }
        crate::backend::check_columns(chunk, "gram")?;
        let dim = self.dim;
        self.backend
            .on_shards_with(&mut self.grams, chunk.n_rows(), |w, g, rows| {
                g.add(w, chunk, rows, dim)
            })?;
        self.n_rows += chunk.n_rows() as u64;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<Gram> {
        let d = self.dim;
        let mut dense = vec![0.0f64; d * d];
        let mut sum = vec![0.0f64; d];
        let mut total = Gram::new(d);
        for (g, w) in self.grams.iter().zip(&self.backend.workers) {
            w.download(&g.gram, &mut dense)?;
            w.download(&g.sum, &mut sum)?;
            total.add_dense_upper(0, &sum, &dense)?;
        }
        total.n_rows = self.n_rows;
        Ok(total)
    }
}
