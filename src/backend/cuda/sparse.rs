//! [`SparseOperator`] on a device: the matrix and row scale uploaded once, then each product
//! uploads the block, runs kernels/sparse.cu's `sparse_apply` and downloads the result (a block
//! of a million rows by four columns is 16 MB up and 32 MB down; the spectral initialization
//! applies its graph some sixty times).

use cudarc::driver::CudaSlice;

use super::worker::{cuda_err, launch, Worker};
use crate::backend::sparse::{check_apply, check_scale, SparseOperator, SparseRows};
use crate::error::{Error, Result};

/// Columns the block buffers are sized for when the operator is made (wider blocks reallocate).
const BLOCK_COLS: usize = 8;

/// The block buffers of one width: the block (f32) and the product (f64), `n · k` each.
struct Block {
    k: usize,
    rows: CudaSlice<f32>,
    out: CudaSlice<f64>,
}

/// A matrix and row scale in one worker's device memory.
pub(super) struct CudaSparseOperator<'a> {
    w: &'a Worker,
    n: usize,
    indptr: CudaSlice<usize>,
    indices: CudaSlice<u32>,
    data: CudaSlice<f32>,
    scale: CudaSlice<f64>,
    block: Option<Block>,
}

impl<'a> CudaSparseOperator<'a> {
    /// Uploads `diag(scale) · a` to worker `w`'s device, refusing what exceeds its memory share.
    pub fn new(w: &'a Worker, a: SparseRows<'_>, scale: &[f64]) -> Result<Self> {
        let n = a.n();
        check_scale(n, scale)?;
        let bytes = (n + 1) * 8 + a.nnz() * 8 + n * 8 + n * BLOCK_COLS * 12;
        if bytes > w.budget {
            return Err(Error::Backend(format!(
                "a sparse matrix of {n} rows and {} stored values needs {:.1} GiB on device {}, \
                 {:.1} GiB is this worker's share of the free memory (--backend cpu runs it on \
                 the host)",
                a.nnz(),
                bytes as f64 / (1u64 << 30) as f64,
                w.ordinal,
                w.budget as f64 / (1u64 << 30) as f64
            )));
        }
        Ok(CudaSparseOperator {
            w,
            n,
            indptr: w.upload(a.indptr())?,
            indices: w.upload(a.indices())?,
            data: w.upload(a.data())?,
            scale: w.upload(scale)?,
            block: None,
        })
    }
}

impl SparseOperator for CudaSparseOperator<'_> {
    fn n(&self) -> usize {
        self.n
    }

    fn apply(&mut self, rows: &[f32], k: usize, out: &mut [f64]) -> Result<()> {
        check_apply(self.n, rows.len(), k, out.len())?;
        if rows.is_empty() {
            return Ok(());
        }
        let w = self.w;
        if self.block.as_ref().is_none_or(|b| b.k < k) {
            self.block = None;
            let kb = k.max(BLOCK_COLS);
            self.block = Some(Block {
                k: kb,
                rows: w.zeros(self.n * kb)?,
                out: w.zeros(self.n * kb)?,
            });
        }
        let mut block = self.block.take().expect("allocated above");
        let done = w
            .stream
            .memcpy_htod(rows, &mut block.rows)
            .map_err(cuda_err(format!("upload to device {}", w.ordinal)))
            .and_then(|()| self.launch(&block.rows, k, &mut block.out))
            .and_then(|()| w.download(&block.out, out));
        self.block = Some(block);
        done
    }
}

impl CudaSparseOperator<'_> {
    /// The row scale on the device.
    pub fn scale(&self) -> &CudaSlice<f64> {
        &self.scale
    }

    /// Queues `out = diag(s) · A · rows` on the device for a row-major block of `k` columns
    /// (both buffers at least `n · k` long).
    pub fn launch(&self, rows: &CudaSlice<f32>, k: usize, out: &mut CudaSlice<f64>) -> Result<()> {
        let w = self.w;
        let (n64, k32) = (self.n as u64, k as u32);
        launch!(
            w,
            sparse_apply,
            Worker::flat_launch(n64 * k as u64),
            &self.indptr,
            &self.indices,
            &self.data,
            &n64,
            &self.scale,
            rows,
            &k32,
            out
        )
    }
}
