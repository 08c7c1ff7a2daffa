//! Square sparse matrices held where a backend computes, for many products with narrow dense
//! blocks: UMAP's spectral initialization (Chebyshev-filtered subspace iteration) applies the
//! normalized graph to a block of a few vectors many times, so the graph goes to the device once.

use crate::error::{Error, Result};

/// A square CSR matrix borrowed from its owner: row `i` holds `indices[indptr[i]..indptr[i+1]]`
/// with the values `data[..]` alongside, every column below the row count. Construction checks
/// the structure, so kernels index it without checks of their own.
#[derive(Clone, Copy, Debug)]
pub struct SparseRows<'a> {
    indptr: &'a [usize],
    indices: &'a [u32],
    data: &'a [f32],
}

impl<'a> SparseRows<'a> {
    /// Wraps the three CSR arrays of an `n x n` matrix, `n = indptr.len() - 1`.
    pub fn new(indptr: &'a [usize], indices: &'a [u32], data: &'a [f32]) -> Result<Self> {
        let bad = |what: String| Err(Error::InvalidArgument(format!("sparse matrix: {what}")));
        let Some((&first, &last)) = indptr.first().zip(indptr.last()) else {
            return bad("no row offsets (an n x n matrix has n + 1)".into());
        };
        if first != 0 || last != indices.len() || data.len() != indices.len() {
            return bad(format!(
                "row offsets from {first} to {last} over {} columns and {} values",
                indices.len(),
                data.len()
            ));
        }
        if let Some(r) = indptr.windows(2).position(|w| w[0] > w[1]) {
            return bad(format!("row offsets decrease at row {r}"));
        }
        let n = indptr.len() - 1;
        if n > u32::MAX as usize {
            return bad(format!("{n} rows (at most {} fit u32 columns)", u32::MAX));
        }
        if let Some(&j) = indices.iter().find(|&&j| j as usize >= n) {
            return bad(format!("column {j} in a matrix of {n} columns"));
        }
        Ok(SparseRows {
            indptr,
            indices,
            data,
        })
    }

    /// Rows (= columns).
    pub fn n(&self) -> usize {
        self.indptr.len() - 1
    }

    /// Stored values.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Row offsets, `n + 1`.
    pub fn indptr(&self) -> &'a [usize] {
        self.indptr
    }

    /// Column of each stored value.
    pub fn indices(&self) -> &'a [u32] {
        self.indices
    }

    /// Stored values.
    pub fn data(&self) -> &'a [f32] {
        self.data
    }

    /// Columns and values of row `i`.
    #[inline]
    pub fn row(&self, i: usize) -> (&'a [u32], &'a [f32]) {
        let (a, b) = (self.indptr[i], self.indptr[i + 1]);
        (&self.indices[a..b], &self.data[a..b])
    }
}

/// A square sparse matrix `A` and a row scale `s`, held where the backend computes (device
/// memory for CUDA), applied to many narrow dense blocks (see
/// [`crate::backend::CpuBackend::sparse_operator`]).
pub trait SparseOperator {
    /// Rows (= columns) of `A`.
    fn n(&self) -> usize;

    /// `out[i][c] = s[i] · Σ_j A[i][j] · rows[j][c]` for a row-major block of `k` columns
    /// (`rows` and `out` hold `n · k` values each). Each row's sum runs over its stored values in
    /// order, every product and sum rounded to f64 (no fused multiply-add), then is scaled: every
    /// backend gives the same bits.
    fn apply(&mut self, rows: &[f32], k: usize, out: &mut [f64]) -> Result<()>;
}

/// Checks a [`SparseOperator`]'s row scale: one finite value per row.
pub(crate) fn check_scale(n: usize, scale: &[f64]) -> Result<()> {
    if scale.len() != n {
        return Err(Error::InvalidArgument(format!(
            "sparse operator: {} row scales for {n} rows",
            scale.len()
        )));
    }
    if let Some(i) = scale.iter().position(|s| !s.is_finite()) {
        return Err(Error::InvalidArgument(format!(
            "sparse operator: row {i} has scale {}",
            scale[i]
        )));
    }
    Ok(())
}

/// Checks [`SparseOperator::apply`]'s block shapes: `n · k` values in and out.
pub(crate) fn check_apply(n: usize, rows: usize, k: usize, out: usize) -> Result<()> {
    if n.checked_mul(k) != Some(rows) || rows != out {
        return Err(Error::InvalidArgument(format!(
            "sparse operator: a block of {rows} values in and {out} out for {n} rows x {k} columns"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_matrices_are_refused_with_the_reason() {
        let msg = |r: Result<SparseRows<'_>>| r.unwrap_err().to_string();
        assert!(msg(SparseRows::new(&[], &[], &[])).contains("no row offsets"));
        assert!(msg(SparseRows::new(&[1, 1], &[0], &[1.0])).contains("from 1 to 1"));
        assert!(msg(SparseRows::new(&[0, 2], &[0], &[1.0])).contains("from 0 to 2"));
        assert!(msg(SparseRows::new(&[0, 2, 1, 2], &[0, 1], &[1.0, 1.0])).contains("decrease"));
        assert!(msg(SparseRows::new(&[0, 1, 1], &[2], &[1.0])).contains("column 2"));
        let a = SparseRows::new(&[0, 1, 3], &[1, 0, 1], &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((a.n(), a.nnz()), (2, 3));
        assert_eq!(a.row(1), (&[0u32, 1][..], &[2.0f32, 3.0][..]));
        assert!(check_scale(2, &[1.0]).is_err());
        assert!(check_scale(2, &[1.0, f64::NAN]).is_err());
        assert!(check_apply(2, 6, 3, 6).is_ok());
        assert!(check_apply(2, 6, 3, 4).is_err());
        assert!(check_apply(2, 5, 3, 5).is_err());
    }
}
