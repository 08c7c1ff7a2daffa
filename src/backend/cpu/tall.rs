//! [`TallMatrix`] on the CPU: a faer matrix in host memory, products row-parallel in tasks of
//! [`TALL_ROWS`] rows (a task's rows of the narrow operand stay in the core's L2 while the wide
//! one streams past), AVX2 where present, partial sums added in task order (the result does not
//! depend on the thread count).

use std::ops::Range;

use faer::reborrow::IntoConst;
use faer::{Mat, MatMut, MatRef};
use rayon::prelude::*;

use super::sparse::visit_row_sums;
use crate::backend::sparse::{check_scale, SparseRows};
use crate::backend::tall::{
    check_cols, check_diag, check_product, dot16, sum_parts, TallMatrix, TALL_ROWS,
};
use crate::error::Result;

/// Vector entries per rayon task of the element-wise steps.
const PAR_MIN: usize = 8192;

/// A tall matrix in host memory with the sparse matrix its products apply.
pub struct CpuTall<'a> {
    m: Mat<f64>,
    a: SparseRows<'a>,
    scale: &'a [f64],
    /// The block of a product, row-major f32 (kept between products).
    rows: Vec<f32>,
}

impl<'a> CpuTall<'a> {
    /// A zeroed `a.n() x ncols` matrix whose [`TallMatrix::apply`] multiplies by `a` scaled by
    /// `scale` on both sides.
    pub fn new(a: SparseRows<'a>, scale: &'a [f64], ncols: usize) -> Result<Self> {
        check_scale(a.n(), scale)?;
        Ok(CpuTall {
            m: Mat::zeros(a.n(), ncols),
            a,
            scale,
            rows: Vec::new(),
        })
    }

    /// Column ranges `x` (writable) and `a` of the matrix, checked disjoint by the caller.
    fn split(&mut self, x: &Range<usize>, a: &Range<usize>) -> (MatMut<'_, f64>, MatRef<'_, f64>) {
        if x.end <= a.start {
            let (l, r) = self.m.as_mut().split_at_col_mut(x.end);
            (
                l.subcols_mut(x.start, x.len()),
                r.into_const().subcols(a.start - x.end, a.len()),
            )
        } else {
            let (l, r) = self.m.as_mut().split_at_col_mut(a.end);
            (
                r.subcols_mut(x.start - a.end, x.len()),
                l.into_const().subcols(a.start, a.len()),
            )
        }
    }
}

/// A row-major `p x k` slice as a faer matrix.
fn coefficients(c: &[f64], p: usize, k: usize) -> Mat<f64> {
    Mat::from_fn(p, k, |j, q| c[j * k + q])
}

impl TallMatrix for CpuTall<'_> {
    fn nrows(&self) -> usize {
        self.m.nrows()
    }

    fn ncols(&self) -> usize {
        self.m.ncols()
    }

    fn set_cols(&mut self, at: usize, x: &[f64]) -> Result<()> {
        let n = self.m.nrows();
        let k = x.len().checked_div(n).unwrap_or(0);
        check_cols("set_cols", &(at..at + k), self.m.ncols())?;
        if x.len() != k * n {
            return Err(crate::error::Error::InvalidArgument(format!(
                "tall matrix set_cols: {} values are not columns of {n}",
                x.len()
            )));
        }
        for (c, col) in x.chunks_exact(n.max(1)).enumerate() {
            col_slice_mut(self.m.as_mut(), at + c).copy_from_slice(col);
        }
        Ok(())
    }

    fn cols(&self, cols: Range<usize>) -> Result<Vec<f64>> {
        check_cols("cols", &cols, self.m.ncols())?;
        Ok(cols
            .flat_map(|c| col_slice(self.m.as_ref(), c).iter().copied())
            .collect())
    }

    fn t_mul(&mut self, a: Range<usize>, b: Range<usize>) -> Result<Vec<f64>> {
        check_cols("t_mul", &a, self.m.ncols())?;
        check_cols("t_mul", &b, self.m.ncols())?;
        let m = self.m.as_ref();
        Ok(tall_t_mul(
            m.subcols(a.start, a.len()),
            m.subcols(b.start, b.len()),
        ))
    }

    fn sub_mul(&mut self, x: Range<usize>, a: Range<usize>, c: &[f64]) -> Result<()> {
        check_product("sub_mul", &x, &a, c.len(), self.m.ncols())?;
        let c = coefficients(c, a.len(), x.len());
        let (xm, am) = self.split(&x, &a);
        tall_sub_mul(xm, am, c.as_ref());
        Ok(())
    }

    fn sub_t_mul(&mut self, x: Range<usize>, a: Range<usize>, c: &[f64]) -> Result<Vec<f64>> {
        check_product("sub_t_mul", &x, &a, c.len(), self.m.ncols())?;
        let c = coefficients(c, a.len(), x.len());
        let (xm, am) = self.split(&x, &a);
        Ok(tall_sub_t_mul(xm, am, c.as_ref()))
    }

    fn sub_diag(&mut self, x: Range<usize>, a: Range<usize>, c: &[f64]) -> Result<()> {
        check_diag(&x, &a, c.len(), self.m.ncols())?;
        let (xm, am) = self.split(&x, &a);
        xm.par_row_chunks_mut(TALL_ROWS)
            .enumerate()
            .for_each(|(t, mut xt)| {
                let rows = t * TALL_ROWS..t * TALL_ROWS + xt.nrows();
                for (q, &cq) in c.iter().enumerate() {
                    axpy_f64(
                        -cq,
                        &col_slice(am, q)[rows.clone()],
                        col_slice_mut(xt.as_mut(), q),
                    );
                }
            });
        Ok(())
    }

    fn mul(&mut self, x: Range<usize>, a: Range<usize>, v: &[f64]) -> Result<()> {
        check_product("mul", &x, &a, v.len(), self.m.ncols())?;
        let (p, k) = (a.len(), x.len());
        let (xm, am) = self.split(&x, &a);
        xm.par_row_chunks_mut(TALL_ROWS)
            .enumerate()
            .for_each(|(t, mut xt)| {
                let rows = t * TALL_ROWS..t * TALL_ROWS + xt.nrows();
                for q in 0..k {
                    let out = col_slice_mut(xt.as_mut(), q);
                    out.fill(0.0);
                    for j in 0..p {
                        axpy_f64(v[j * k + q], &col_slice(am, j)[rows.clone()], out);
                    }
                }
            });
        Ok(())
    }

    fn div_col(&mut self, c: usize, s: f64) -> Result<()> {
        check_cols("div_col", &(c..c + 1), self.m.ncols())?;
        col_slice_mut(self.m.as_mut(), c)
            .par_iter_mut()
            .with_min_len(PAR_MIN)
            .for_each(|v| *v /= s);
        Ok(())
    }

    fn copy_col(&mut self, dst: usize, src: usize) -> Result<()> {
        check_cols("copy_col", &(dst..dst + 1), self.m.ncols())?;
        check_cols("copy_col", &(src..src + 1), self.m.ncols())?;
        if dst != src {
            let (d, s) = self.split(&(dst..dst + 1), &(src..src + 1));
            col_slice_mut(d, 0).copy_from_slice(col_slice(s, 0));
        }
        Ok(())
    }

    /// Row tasks of [`TALL_ROWS`], each summing its rows row-major (in L2), then writing them
    /// into the columns of `x` one column at a time.
    fn apply(&mut self, x: Range<usize>, a: Range<usize>) -> Result<()> {
        check_product("apply", &x, &a, x.len() * a.len(), self.m.ncols())?;
        if x.len() != a.len() {
            return Err(crate::error::Error::InvalidArgument(format!(
                "tall matrix apply: columns {a:?} into {x:?}"
            )));
        }
        let (n, k) = (self.m.nrows(), a.len());
        if k == 0 {
            return Ok(());
        }
        let scale = self.scale;
        // The block row-major, each row scaled and rounded to f32: one gather per stored value
        // (kept between products: 8 columns of 1M rows are 32 MB).
        self.rows.resize(n * k, 0.0);
        let rows = &mut self.rows[..n * k];
        let src = self.m.as_ref().subcols(a.start, k);
        rows.par_chunks_mut(k * TALL_ROWS)
            .enumerate()
            .for_each(|(t, chunk)| {
                let r0 = t * TALL_ROWS;
                for c in 0..k {
                    let col = &col_slice(src, c)[r0..];
                    for (i, r) in chunk.chunks_exact_mut(k).enumerate() {
                        r[c] = (col[i] * scale[r0 + i]) as f32;
                    }
                }
            });
        let (rows, matrix) = (&self.rows[..n * k], self.a);
        self.m
            .as_mut()
            .subcols_mut(x.start, k)
            .par_row_chunks_mut(TALL_ROWS)
            .enumerate()
            .for_each(|(t, mut xt)| {
                let r0 = t * TALL_ROWS;
                let len = xt.nrows();
                let mut sums = vec![0f64; len * k];
                visit_row_sums(matrix, rows, k, r0..r0 + len, |i, row| {
                    for (o, &v) in sums[(i - r0) * k..][..k].iter_mut().zip(row) {
                        *o = v * scale[i];
                    }
                });
                for c in 0..k {
                    let col = col_slice_mut(xt.as_mut(), c);
                    for (r, v) in col.iter_mut().enumerate() {
                        *v = sums[r * k + c];
                    }
                }
            });
        Ok(())
    }
}

/// The column of a tall matrix as a slice (our matrices keep their columns contiguous).
fn col_slice(m: MatRef<'_, f64>, c: usize) -> &[f64] {
    m.col(c)
        .try_as_col_major()
        .expect("column-major storage")
        .as_slice()
}

/// [`col_slice`], writable.
fn col_slice_mut(m: MatMut<'_, f64>, c: usize) -> &mut [f64] {
    m.col_mut(c)
        .try_as_col_major_mut()
        .expect("column-major storage")
        .as_slice_mut()
}

/// `x −= W[rows, :] · c[:, q]`: column q of a row task's share of `X −= W C` (the task's rows of
/// X's column q in `x`).
fn sub_w_c_col(
    x: &mut [f64],
    w: MatRef<'_, f64>,
    c: MatRef<'_, f64>,
    q: usize,
    rows: &Range<usize>,
) {
    for j in 0..w.ncols() {
        axpy_f64(-c[(j, q)], &col_slice(w, j)[rows.clone()], x);
    }
}

/// `Wᵀ X` for tall `W` (n × p) and `X` (n × k), p and k small: one pass over both, rows in
/// parallel tasks of [`TALL_ROWS`], each task's p × k partial product summed in task order
/// (a general product is several times slower on this shape: docs/design/spectral-init.md).
fn tall_t_mul(w: MatRef<'_, f64>, x: MatRef<'_, f64>) -> Vec<f64> {
    let (n, p, k) = (w.nrows(), w.ncols(), x.ncols());
    let parts: Vec<Vec<f64>> = (0..n.div_ceil(TALL_ROWS))
        .into_par_iter()
        .map(|t| {
            let rows = t * TALL_ROWS..((t + 1) * TALL_ROWS).min(n);
            let xs: Vec<&[f64]> = (0..k).map(|q| &col_slice(x, q)[rows.clone()]).collect();
            let mut part = vec![0f64; p * k];
            for j in 0..p {
                let wj = &col_slice(w, j)[rows.clone()];
                for (q, xq) in xs.iter().enumerate() {
                    part[j * k + q] = dot_f64(wj, xq);
                }
            }
            part
        })
        .collect();
    sum_parts(parts.iter().map(Vec::as_slice), p, k)
}

/// `X −= W C`, then `Wᵀ X` of the result, in one sweep over the rows of the tall `W` (n × p) and
/// `X` (n × k) (each task's rows of `W` are read once for both, from cache the second time).
fn tall_sub_t_mul(x: MatMut<'_, f64>, w: MatRef<'_, f64>, c: MatRef<'_, f64>) -> Vec<f64> {
    let (p, k) = (w.ncols(), x.ncols());
    let parts: Vec<Vec<f64>> = x
        .par_row_chunks_mut(TALL_ROWS)
        .enumerate()
        .map(|(t, mut xt)| {
            let r0 = t * TALL_ROWS;
            let rows = r0..r0 + xt.nrows();
            let mut part = vec![0f64; p * k];
            for q in 0..k {
                let xq = col_slice_mut(xt.as_mut(), q);
                sub_w_c_col(xq, w, c, q, &rows);
                for j in 0..p {
                    part[j * k + q] = dot_f64(&col_slice(w, j)[rows.clone()], xq);
                }
            }
            part
        })
        .collect();
    sum_parts(parts.iter().map(Vec::as_slice), p, k)
}

/// `X −= W C` for tall `W` (n × p), `X` (n × k) and small `C` (p × k), rows in parallel.
fn tall_sub_mul(x: MatMut<'_, f64>, w: MatRef<'_, f64>, c: MatRef<'_, f64>) {
    let k = x.ncols();
    x.par_row_chunks_mut(TALL_ROWS)
        .enumerate()
        .for_each(|(t, mut xt)| {
            let r0 = t * TALL_ROWS;
            let rows = r0..r0 + xt.nrows();
            for q in 0..k {
                sub_w_c_col(col_slice_mut(xt.as_mut(), q), w, c, q, &rows);
            }
        });
}

/// `y += s · x`.
#[inline(always)]
fn axpy_body(s: f64, x: &[f64], y: &mut [f64]) {
    for (yv, &xv) in y.iter_mut().zip(x) {
        *yv += s * xv;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_avx2(a: &[f64], b: &[f64]) -> f64 {
    dot16(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn axpy_avx2(s: f64, x: &[f64], y: &mut [f64]) {
    axpy_body(s, x, y)
}

/// [`dot16`], four lanes to a register where the CPU has AVX2 (the same bits).
fn dot_f64(a: &[f64], b: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports the features the function was compiled for.
        return unsafe { dot_avx2(a, b) };
    }
    dot16(a, b)
}

/// [`axpy_body`], four lanes to a register where the CPU has AVX2 (the same bits).
fn axpy_f64(s: f64, x: &[f64], y: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports the features the function was compiled for.
        return unsafe { axpy_avx2(s, x, y) };
    }
    axpy_body(s, x, y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, Rng, SeedableRng};

    /// A random graph of `n` rows and its row scale.
    fn graph(n: usize, seed: u64) -> (Vec<usize>, Vec<u32>, Vec<f32>, Vec<f64>) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let (mut indptr, mut indices, mut data) = (vec![0], Vec::new(), Vec::new());
        for _ in 0..n {
            for _ in 0..rng.random_range(0..9) {
                indices.push(rng.random_range(0..n as u32));
                data.push(rng.random_range(0.0f32..1.0));
            }
            indptr.push(indices.len());
        }
        let scale = (0..n).map(|_| rng.random_range(0.1..2.0)).collect();
        (indptr, indices, data, scale)
    }

    #[test]
    fn operations_round_as_documented() {
        // Three row tasks, the last of 808 rows (50 whole chunks of 16 and 8 more).
        let n = 2 * TALL_ROWS + 808;
        let (indptr, indices, data, scale) = graph(n, 1);
        let a = SparseRows::new(&indptr, &indices, &data).unwrap();
        let mut t = CpuTall::new(a, &scale, 12).unwrap();
        let mut rng = SmallRng::seed_from_u64(2);
        let init: Vec<f64> = (0..n * 12).map(|_| rng.random_range(-1.0..1.0)).collect();
        t.set_cols(0, &init).unwrap();
        assert_eq!(t.cols(0..12).unwrap(), init);
        let col = |t: &CpuTall<'_>, c: usize| t.cols(c..c + 1).unwrap();

        // t_mul: dot16 per task, added in task order from 0.0.
        let got = t.t_mul(0..3, 5..7).unwrap();
        for j in 0..3 {
            for q in 0..2 {
                let (x, y) = (col(&t, j), col(&t, 5 + q));
                let want = x
                    .chunks(TALL_ROWS)
                    .zip(y.chunks(TALL_ROWS))
                    .fold(0.0, |s, (a, b)| s + dot16(a, b));
                assert_eq!(got[j * 2 + q].to_bits(), want.to_bits());
            }
        }

        // sub_mul: v + (−c_jq · a_j), j in order; sub_t_mul = sub_mul, then t_mul.
        let c: Vec<f64> = (0..6).map(|_| rng.random_range(-1.0..1.0)).collect();
        let before: Vec<Vec<f64>> = (0..12).map(|k| col(&t, k)).collect();
        let got_t = t.sub_t_mul(8..10, 2..5, &c).unwrap();
        for q in 0..2 {
            let want: Vec<f64> = (0..n)
                .map(|i| {
                    (0..3).fold(before[8 + q][i], |v, j| {
                        v + -c[j * 2 + q] * before[2 + j][i]
                    })
                })
                .collect();
            assert_eq!(col(&t, 8 + q), want);
        }
        assert_eq!(got_t, t.t_mul(2..5, 8..10).unwrap());

        // mul: Σ v_jq · a_j from 0.0, j in order.
        let v: Vec<f64> = (0..8).map(|_| rng.random_range(-1.0..1.0)).collect();
        t.mul(10..12, 0..4, &v).unwrap();
        for q in 0..2 {
            let want: Vec<f64> = (0..n)
                .map(|i| (0..4).fold(0.0, |s, j| s + v[j * 2 + q] * before[j][i]))
                .collect();
            assert_eq!(col(&t, 10 + q), want);
        }

        // sub_diag: what a sub_mul per column gives (the trait's default), in one sweep.
        let d = [0.3, -1.7];
        let mut twin = CpuTall::new(a, &scale, 12).unwrap();
        twin.set_cols(0, &t.cols(0..12).unwrap()).unwrap();
        t.sub_diag(10..12, 0..2, &d).unwrap();
        for (q, &dq) in d.iter().enumerate() {
            twin.sub_mul(10 + q..11 + q, q..q + 1, &[dq]).unwrap();
        }
        assert_eq!(t.cols(0..12).unwrap(), twin.cols(0..12).unwrap());
        // The destination before the source (the other side of the split borrow).
        t.sub_diag(6..8, 8..10, &d).unwrap();
        for (q, &dq) in d.iter().enumerate() {
            twin.sub_mul(6 + q..7 + q, 8 + q..9 + q, &[dq]).unwrap();
        }
        assert_eq!(t.cols(0..12).unwrap(), twin.cols(0..12).unwrap());
        assert!(t.sub_diag(10..12, 0..3, &d).is_err(), "widths differ");
        assert!(
            t.sub_diag(10..12, 0..2, &d[..1]).is_err(),
            "coefficient count"
        );

        // div_col, copy_col.
        t.div_col(3, 3.0).unwrap();
        assert_eq!(
            col(&t, 3),
            before[3].iter().map(|v| v / 3.0).collect::<Vec<_>>()
        );
        t.copy_col(4, 3).unwrap();
        assert_eq!(col(&t, 4), col(&t, 3));

        // apply: s ⊙ A · f32(s ⊙ x), the sparse operator's sums.
        t.apply(6..8, 0..2).unwrap();
        for (c, src) in before.iter().take(2).enumerate() {
            let x: Vec<f32> = (0..n).map(|i| (src[i] * scale[i]) as f32).collect();
            let want: Vec<f64> = (0..n)
                .map(|i| {
                    let (cols, vals) = a.row(i);
                    cols.iter()
                        .zip(vals)
                        .fold(0.0, |s, (&j, &w)| s + w as f64 * x[j as usize] as f64)
                        * scale[i]
                })
                .collect();
            assert_eq!(col(&t, 6 + c), want);
        }

        // Misuse is an error, not a panic.
        assert!(
            t.sub_mul(0..3, 2..5, &[0.0; 9]).is_err(),
            "overlapping ranges"
        );
        assert!(t.mul(0..2, 2..5, &[0.0; 5]).is_err(), "coefficient count");
        assert!(t.apply(0..2, 2..5).is_err(), "widths differ");
        assert!(t.t_mul(0..13, 0..1).is_err(), "past the columns");
        assert!(t.set_cols(11, &init[..2 * n]).is_err(), "past the columns");
    }
}
