//! Tall column-major f64 matrices held where a backend computes, with the operations of a block
//! eigensolver on them (UMAP's spectral initialization, Chebyshev-filtered subspace iteration):
//! products of column ranges with
//! each other and with small host matrices, and the graph's product with a block of columns. The
//! solver (`ops::spectral`) keeps its basis, blocks and Ritz vectors as column ranges of one
//! such matrix, so on a GPU they never leave the device; only small coefficient matrices and the
//! returned vectors cross.
//!
//! Every operation is defined down to its rounding, and both backends follow it, so the solver
//! takes the same steps and returns the same bits on each:
//!
//! - a product `Aᵀ B` of two column ranges sums over row tasks of [`TALL_ROWS`] rows: in each,
//!   every column pair's dot product is [`dot16`]; the tasks' partial products are then added in
//!   task order ([`sum_parts`]);
//! - `X −= A C` updates each value of X by `x + (−c_jq · a_j)` for j in order, each product and
//!   sum rounded (no fused multiply-add);
//! - `X −= A diag(c)` is `X −= A C` for the diagonal C, column by column;
//! - `X = A V` sums `a_j · v_jq` for j in order from 0, each product and sum rounded;
//! - the graph product rounds each row of the block, scaled by the operator's row scale, to f32,
//!   applies the [`crate::backend::SparseOperator`] and stores its f64 result.

use std::ops::Range;

use crate::error::{Error, Result};

/// Rows per task of the tall products: the unit of their partial sums.
pub const TALL_ROWS: usize = 4096;

/// A tall matrix of `nrows() x ncols()` f64 values, column-major, where the backend computes
/// (see the module documentation for each operation's rounding).
pub trait TallMatrix {
    /// Rows.
    fn nrows(&self) -> usize;

    /// Columns.
    fn ncols(&self) -> usize;

    /// Whether the columns live in a device's memory (false for the host's; a GPU backend falls
    /// back to the host where a solve does not fit its device).
    fn on_device(&self) -> bool {
        false
    }

    /// Writes the column-major values `x` (`nrows · k`) into columns `at..at + k`.
    fn set_cols(&mut self, at: usize, x: &[f64]) -> Result<()>;

    /// Columns `cols`, column-major.
    fn cols(&self, cols: Range<usize>) -> Result<Vec<f64>>;

    /// `M[:, a]ᵀ M[:, b]`, row-major `a.len() x b.len()` (`&mut`: a device keeps its partial
    /// products in scratch memory).
    fn t_mul(&mut self, a: Range<usize>, b: Range<usize>) -> Result<Vec<f64>>;

    /// `M[:, x] −= M[:, a] · C` for the row-major `a.len() x x.len()` matrix `c` (`a` and `x`
    /// disjoint).
    fn sub_mul(&mut self, x: Range<usize>, a: Range<usize>, c: &[f64]) -> Result<()>;

    /// [`TallMatrix::sub_mul`], then `M[:, a]ᵀ M[:, x]` of the result (one sweep over the rows
    /// where the backend can).
    fn sub_t_mul(&mut self, x: Range<usize>, a: Range<usize>, c: &[f64]) -> Result<Vec<f64>>;

    /// `M[:, x] −= M[:, a] · diag(c)`: column q of `x` less `c[q]` times column q of `a` (`a` and
    /// `x` disjoint, of one width, `c` as long), each value `x + (−c_q · a_q)` as
    /// [`TallMatrix::sub_mul`] rounds it. By default one `sub_mul` per column; a backend may do
    /// it in one sweep.
    fn sub_diag(&mut self, x: Range<usize>, a: Range<usize>, c: &[f64]) -> Result<()> {
        check_diag(&x, &a, c.len(), self.ncols())?;
        for (q, &cq) in c.iter().enumerate() {
            let (xq, aq) = (x.start + q, a.start + q);
            self.sub_mul(xq..xq + 1, aq..aq + 1, &[cq])?;
        }
        Ok(())
    }

    /// `M[:, x] = M[:, a] · V` for the row-major `a.len() x x.len()` matrix `v` (`a` and `x`
    /// disjoint).
    fn mul(&mut self, x: Range<usize>, a: Range<usize>, v: &[f64]) -> Result<()>;

    /// `M[:, c] /= s`.
    fn div_col(&mut self, c: usize, s: f64) -> Result<()>;

    /// `M[:, dst] = M[:, src]`.
    fn copy_col(&mut self, dst: usize, src: usize) -> Result<()>;

    /// `M[:, x] = diag(s) · A · f32(diag(s) · M[:, a])` for the backend's sparse matrix `A` and
    /// row scale `s` (the block rounded to f32 after scaling; `a` and `x` disjoint, of one width).
    /// Returns when the product is done (callers time it).
    fn apply(&mut self, x: Range<usize>, a: Range<usize>) -> Result<()>;
}

/// The dot product of two slices as scoop's CPU computes it: sixteen partial sums, sum `t` over
/// the elements `16c + t` of the whole chunks of 16 (from 0.0, each product and sum rounded),
/// the sixteen added in order from −0.0, plus the remainder's products added in order from −0.0.
#[inline(always)]
pub fn dot16(a: &[f64], b: &[f64]) -> f64 {
    crate::simd::dot_lanes::<f64, 16>(a, b)
}

/// The `p x k` sum of row tasks' partial products (`parts[t][j * k + q]`), added in task order
/// from 0.0 (row-major result).
pub fn sum_parts<'a>(parts: impl IntoIterator<Item = &'a [f64]>, p: usize, k: usize) -> Vec<f64> {
    let mut out = vec![0f64; p * k];
    for part in parts {
        for (o, v) in out.iter_mut().zip(part) {
            *o += v;
        }
    }
    out
}

/// Checks that `r` is a range of the `ncols` columns.
pub(crate) fn check_cols(what: &str, r: &Range<usize>, ncols: usize) -> Result<()> {
    if r.start > r.end || r.end > ncols {
        return Err(Error::InvalidArgument(format!(
            "tall matrix {what}: columns {r:?} of {ncols}"
        )));
    }
    Ok(())
}

/// Checks an in-place product's ranges: both within the columns, disjoint, and a `p x k`
/// coefficient matrix of `len` values (`k` the columns of `x`, `p` of `a`).
pub(crate) fn check_product(
    what: &str,
    x: &Range<usize>,
    a: &Range<usize>,
    len: usize,
    ncols: usize,
) -> Result<()> {
    check_cols(what, x, ncols)?;
    check_cols(what, a, ncols)?;
    if x.start < a.end && a.start < x.end {
        return Err(Error::InvalidArgument(format!(
            "tall matrix {what}: columns {x:?} overlap {a:?}"
        )));
    }
    if len != x.len() * a.len() {
        return Err(Error::InvalidArgument(format!(
            "tall matrix {what}: {len} coefficients for {} x {} columns",
            a.len(),
            x.len()
        )));
    }
    Ok(())
}

/// Checks [`TallMatrix::sub_diag`]'s ranges: within the columns, disjoint, of one width, with a
/// coefficient per column.
pub(crate) fn check_diag(
    x: &Range<usize>,
    a: &Range<usize>,
    len: usize,
    ncols: usize,
) -> Result<()> {
    check_product("sub_diag", x, a, x.len() * a.len(), ncols)?;
    if x.len() != a.len() || len != x.len() {
        return Err(Error::InvalidArgument(format!(
            "tall matrix sub_diag: {len} coefficients for columns {a:?} into {x:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot16_adds_as_documented() {
        let a: Vec<f64> = (0..37).map(|i| 1.0 + i as f64 * 1e-3).collect();
        let b: Vec<f64> = (0..37).map(|i| (i as f64).sin() * 1e8).collect();
        let mut lanes = [0f64; 16];
        for c in 0..2 {
            for (t, l) in lanes.iter_mut().enumerate() {
                *l += a[16 * c + t] * b[16 * c + t];
            }
        }
        let head = lanes.iter().fold(-0.0, |s, &l| s + l);
        let tail = (32..37).fold(-0.0, |s, i| s + a[i] * b[i]);
        assert_eq!(dot16(&a, &b).to_bits(), (head + tail).to_bits());
        // Sixteen +0.0 lanes added to −0.0 give +0.0.
        assert_eq!(dot16(&[], &[]).to_bits(), 0);
    }

    #[test]
    fn ranges_are_checked() {
        assert!(check_cols("t", &(2..5), 5).is_ok());
        assert!(check_cols("t", &(2..6), 5).is_err());
        assert!(check_product("t", &(0..2), &(2..5), 6, 5).is_ok());
        assert!(check_product("t", &(0..3), &(2..5), 9, 5).is_err());
        assert!(check_product("t", &(0..2), &(2..5), 5, 5).is_err());
        assert_eq!(
            sum_parts([&[1.0, 2.0][..], &[0.5, 0.25][..]], 1, 2),
            [1.5, 2.25]
        );
    }
}
