//! [`TallMatrix`] in one worker's device memory: the matrix, the graph and the row scale stay
//! there for the whole eigen solve; only the small coefficient matrices (up) and partial
//! products (down) and the columns asked for cross. Kernels in kernels/tall.cu.

use std::ops::Range;

use cudarc::driver::CudaSlice;

use super::sparse::CudaSparseOperator;
use super::worker::{cuda_err, launch, Worker};
use crate::backend::sparse::SparseRows;
use crate::backend::tall::{
    check_cols, check_diag, check_product, sum_parts, TallMatrix, TALL_ROWS,
};
use crate::error::{Error, Result};

/// Block columns the scratch buffers are budgeted for (the spectral solve's blocks are dim + 2
/// wide; wider ones grow the scratch).
const SCRATCH_COLS: usize = 8;

/// A tall matrix on a device, with the sparse matrix its products apply.
pub(super) struct CudaTall<'a> {
    w: &'a Worker,
    n: usize,
    ncols: usize,
    m: CudaSlice<f64>,
    op: CudaSparseOperator<'a>,
    /// Scratch of the graph products (`n · k`, grown to the widest block), the small
    /// coefficient matrices and the row tasks' partial products.
    rows: CudaSlice<f32>,
    out: CudaSlice<f64>,
    coef: CudaSlice<f64>,
    parts: CudaSlice<f64>,
    width: usize,
}

/// A device buffer of at least `len` elements: `buf` when it is long enough, else a new one.
fn at_least<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
    w: &Worker,
    buf: &mut CudaSlice<T>,
    len: usize,
) -> Result<()> {
    if buf.len() < len {
        *buf = w.zeros(len)?;
    }
    Ok(())
}

impl<'a> CudaTall<'a> {
    /// Device bytes of a matrix of `n x ncols` with a graph of `nnz` stored values: the matrix,
    /// the graph and row scale, the products' scratch (blocks up to [`SCRATCH_COLS`] wide) and
    /// the partial products of the widest `t_mul`.
    pub fn bytes(n: usize, nnz: usize, ncols: usize) -> usize {
        n * ncols * 8
            + (n + 1) * 8
            + nnz * 8
            + n * 8
            + n * SCRATCH_COLS * 12
            + n.div_ceil(TALL_ROWS) * ncols * SCRATCH_COLS * 8
    }

    /// A zeroed `a.n() x ncols` matrix on worker `w`'s device, with `a` and `scale` uploaded, or
    /// `None` where [`CudaTall::bytes`] exceeds the worker's share of the device memory.
    pub fn new(
        w: &'a Worker,
        a: SparseRows<'_>,
        scale: &[f64],
        ncols: usize,
    ) -> Result<Option<Self>> {
        let n = a.n();
        if Self::bytes(n, a.nnz(), ncols) > w.budget {
            return Ok(None);
        }
        let op = CudaSparseOperator::new(w, a, scale)?;
        Ok(Some(CudaTall {
            w,
            n,
            ncols,
            m: w.zeros(n * ncols)?,
            op,
            rows: w.zeros(1)?,
            out: w.zeros(1)?,
            coef: w.zeros(1)?,
            parts: w.zeros(n.div_ceil(TALL_ROWS) * ncols * SCRATCH_COLS)?,
            width: 0,
        }))
    }

    /// Uploads the coefficients `c` into the scratch buffer.
    fn upload_coef(&mut self, c: &[f64]) -> Result<()> {
        at_least(self.w, &mut self.coef, c.len())?;
        if c.is_empty() {
            return Ok(());
        }
        let mut view = self.coef.slice_mut(..c.len());
        self.w
            .stream
            .memcpy_htod(c, &mut view)
            .map_err(cuda_err(format!("upload to device {}", self.w.ordinal)))
    }

    /// `M[:, x] −= M[:, a] C` (`sub`) or `M[:, x] = M[:, a] C`, with C already uploaded.
    fn launch_product(&mut self, sub: bool, x: &Range<usize>, a: &Range<usize>) -> Result<()> {
        let w = self.w;
        let (f, name) = if sub {
            (&w.k.tall_sub_mul, "tall_sub_mul")
        } else {
            (&w.k.tall_mul, "tall_mul")
        };
        let (n64, x0, k, a0, p) = (
            self.n as u64,
            x.start as u32,
            x.len() as u32,
            a.start as u32,
            a.len() as u32,
        );
        launch!(
            fn w,
            f,
            name,
            Worker::flat_launch(n64),
            &mut self.m,
            &n64,
            &x0,
            &k,
            &a0,
            &p,
            &self.coef
        )
    }
}

impl TallMatrix for CudaTall<'_> {
    fn on_device(&self) -> bool {
        true
    }

    fn nrows(&self) -> usize {
        self.n
    }

    fn ncols(&self) -> usize {
        self.ncols
    }

    fn set_cols(&mut self, at: usize, x: &[f64]) -> Result<()> {
        let k = x.len().checked_div(self.n).unwrap_or(0);
        check_cols("set_cols", &(at..at + k), self.ncols)?;
        if x.len() != k * self.n {
            return Err(Error::InvalidArgument(format!(
                "tall matrix set_cols: {} values are not columns of {}",
                x.len(),
                self.n
            )));
        }
        if x.is_empty() {
            return Ok(());
        }
        let mut view = self.m.slice_mut(at * self.n..(at + k) * self.n);
        self.w
            .stream
            .memcpy_htod(x, &mut view)
            .map_err(cuda_err(format!("upload to device {}", self.w.ordinal)))
    }

    fn cols(&self, cols: Range<usize>) -> Result<Vec<f64>> {
        check_cols("cols", &cols, self.ncols)?;
        let mut out = vec![0f64; cols.len() * self.n];
        if out.is_empty() {
            return Ok(out);
        }
        let view = self.m.slice(cols.start * self.n..cols.end * self.n);
        self.w
            .stream
            .memcpy_dtoh(&view, &mut out)
            .map_err(cuda_err(format!("download from device {}", self.w.ordinal)))?;
        self.w.sync()?;
        Ok(out)
    }

    fn t_mul(&mut self, a: Range<usize>, b: Range<usize>) -> Result<Vec<f64>> {
        check_cols("t_mul", &a, self.ncols)?;
        check_cols("t_mul", &b, self.ncols)?;
        let (p, k) = (a.len(), b.len());
        let len = self.n.div_ceil(TALL_ROWS) * p * k;
        if len == 0 {
            return Ok(vec![0.0; p * k]);
        }
        at_least(self.w, &mut self.parts, len)?;
        let (n64, a0, p32, b0, k32) = (
            self.n as u64,
            a.start as u32,
            p as u32,
            b.start as u32,
            k as u32,
        );
        launch!(
            self.w,
            tall_dot_parts,
            Worker::flat_launch(len as u64 * 16),
            &self.m,
            &n64,
            &a0,
            &p32,
            &b0,
            &k32,
            &mut self.parts
        )?;
        let mut host = vec![0f64; len];
        self.w.download(&self.parts, &mut host)?;
        Ok(sum_parts(host.chunks_exact(p * k), p, k))
    }

    fn sub_mul(&mut self, x: Range<usize>, a: Range<usize>, c: &[f64]) -> Result<()> {
        check_product("sub_mul", &x, &a, c.len(), self.ncols)?;
        if x.is_empty() || self.n == 0 {
            return Ok(());
        }
        self.upload_coef(c)?;
        self.launch_product(true, &x, &a)
    }

    fn sub_t_mul(&mut self, x: Range<usize>, a: Range<usize>, c: &[f64]) -> Result<Vec<f64>> {
        self.sub_mul(x.clone(), a.clone(), c)?;
        self.t_mul(a, x)
    }

    fn sub_diag(&mut self, x: Range<usize>, a: Range<usize>, c: &[f64]) -> Result<()> {
        check_diag(&x, &a, c.len(), self.ncols)?;
        if x.is_empty() || self.n == 0 {
            return Ok(());
        }
        self.upload_coef(c)?;
        let (n64, x0, k, a0) = (
            self.n as u64,
            x.start as u32,
            x.len() as u32,
            a.start as u32,
        );
        launch!(
            self.w,
            tall_sub_diag,
            Worker::flat_launch(n64),
            &mut self.m,
            &n64,
            &x0,
            &k,
            &a0,
            &self.coef
        )
    }

    fn mul(&mut self, x: Range<usize>, a: Range<usize>, v: &[f64]) -> Result<()> {
        check_product("mul", &x, &a, v.len(), self.ncols)?;
        if x.is_empty() || self.n == 0 {
            return Ok(());
        }
        self.upload_coef(v)?;
        self.launch_product(false, &x, &a)
    }

    fn div_col(&mut self, c: usize, s: f64) -> Result<()> {
        check_cols("div_col", &(c..c + 1), self.ncols)?;
        let (n64, c32) = (self.n as u64, c as u32);
        launch!(
            self.w,
            tall_div_col,
            Worker::flat_launch(n64),
            &mut self.m,
            &n64,
            &c32,
            &s
        )
    }

    fn copy_col(&mut self, dst: usize, src: usize) -> Result<()> {
        check_cols("copy_col", &(dst..dst + 1), self.ncols)?;
        check_cols("copy_col", &(src..src + 1), self.ncols)?;
        if dst == src {
            return Ok(());
        }
        let (n64, d32, s32) = (self.n as u64, dst as u32, src as u32);
        launch!(
            self.w,
            tall_copy_col,
            Worker::flat_launch(n64),
            &mut self.m,
            &n64,
            &d32,
            &s32
        )
    }

    fn apply(&mut self, x: Range<usize>, a: Range<usize>) -> Result<()> {
        check_product("apply", &x, &a, x.len() * a.len(), self.ncols)?;
        if x.len() != a.len() {
            return Err(Error::InvalidArgument(format!(
                "tall matrix apply: columns {a:?} into {x:?}"
            )));
        }
        let k = a.len();
        if k == 0 || self.n == 0 {
            return Ok(());
        }
        if self.width < k {
            self.rows = self.w.zeros(self.n * k)?;
            self.out = self.w.zeros(self.n * k)?;
            self.width = k;
        }
        let (n64, a0, x0, k32) = (self.n as u64, a.start as u32, x.start as u32, k as u32);
        let threads = Worker::flat_launch(n64 * k as u64);
        launch!(
            self.w,
            tall_pack,
            threads,
            &self.m,
            &n64,
            &a0,
            &k32,
            self.op.scale(),
            &mut self.rows
        )?;
        self.op.launch(&self.rows, k, &mut self.out)?;
        launch!(
            self.w,
            tall_unpack,
            Worker::flat_launch(n64),
            &mut self.m,
            &n64,
            &x0,
            &k32,
            &self.out
        )?;
        self.w.sync()
    }
}
