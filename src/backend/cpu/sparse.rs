//! [`SparseOperator`] on the CPU: the matrix stays where its owner keeps it, rows in parallel.

use std::ops::Range;

use rayon::prelude::*;

use crate::backend::sparse::{check_apply, check_scale, SparseOperator, SparseRows};
use crate::error::Result;
use crate::simd::prefetch;

/// Output values per rayon task (small matrices run on one thread).
const PAR_MIN: usize = 8192;

/// How far ahead (in stored values) a row's product prefetches the block row it gathers.
const GATHER_AHEAD: usize = 16;

/// A borrowed matrix and row scale, applied on rayon's pool.
pub struct CpuSparseOperator<'a> {
    a: SparseRows<'a>,
    scale: &'a [f64],
}

impl<'a> CpuSparseOperator<'a> {
    /// `diag(scale) · a`, checked.
    pub fn new(a: SparseRows<'a>, scale: &'a [f64]) -> Result<Self> {
        check_scale(a.n(), scale)?;
        Ok(CpuSparseOperator { a, scale })
    }
}

impl SparseOperator for CpuSparseOperator<'_> {
    fn n(&self) -> usize {
        self.a.n()
    }

    fn apply(&mut self, rows: &[f32], k: usize, out: &mut [f64]) -> Result<()> {
        check_apply(self.a.n(), rows.len(), k, out.len())?;
        if k == 0 {
            return Ok(());
        }
        let (a, scale) = (self.a, self.scale);
        let task = (PAR_MIN / k).max(1);
        out.par_chunks_mut(k * task).enumerate().for_each(|(t, o)| {
            let r0 = t * task;
            visit_row_sums(a, rows, k, r0..r0 + o.len() / k, |i, sums| {
                for (y, &s) in o[(i - r0) * k..][..k].iter_mut().zip(sums) {
                    *y = s * scale[i];
                }
            });
        });
        Ok(())
    }
}

/// Calls `f(i, sums)` for each row `i` in `range` of `a` times the `k`-column row-major block
/// `rows`, in order: the row's unscaled sums, each over its stored values in order from 0.0 with
/// every product and sum rounded (the sums [`SparseOperator::apply`] scales). Common widths keep
/// the sums in registers and prefetch the gathered block rows a few stored values ahead (in a
/// large graph each is a cache miss).
pub(crate) fn visit_row_sums(
    a: SparseRows<'_>,
    rows: &[f32],
    k: usize,
    range: Range<usize>,
    mut f: impl FnMut(usize, &[f64]),
) {
    macro_rules! fixed {
        ($k:literal) => {
            visit_fixed::<$k>(a, rows, range, &mut f)
        };
    }
    match k {
        1 => fixed!(1),
        2 => fixed!(2),
        3 => fixed!(3),
        4 => fixed!(4),
        5 => fixed!(5),
        6 => fixed!(6),
        8 => fixed!(8),
        10 => fixed!(10),
        12 => fixed!(12),
        16 => fixed!(16),
        20 => fixed!(20),
        24 => fixed!(24),
        _ => {
            let mut acc = vec![0f64; k];
            for i in range {
                acc.fill(0.0);
                let (cols, vals) = a.row(i);
                for (&j, &w) in cols.iter().zip(vals) {
                    for (y, &r) in acc.iter_mut().zip(&rows[j as usize * k..][..k]) {
                        *y += w as f64 * r as f64;
                    }
                }
                f(i, &acc);
            }
        }
    }
}

/// [`visit_row_sums`] for `K` columns.
fn visit_fixed<const K: usize>(
    a: SparseRows<'_>,
    rows: &[f32],
    range: Range<usize>,
    f: &mut impl FnMut(usize, &[f64]),
) {
    #[cfg(target_arch = "x86_64")]
    let avx2 = std::arch::is_x86_feature_detected!("avx2");
    for i in range {
        #[cfg(target_arch = "x86_64")]
        let acc = if avx2 {
            // SAFETY: the CPU supports the features the function was compiled for.
            unsafe { row_sums_avx2::<K>(a, i, rows) }
        } else {
            row_sums::<K>(a, i, rows)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let acc = row_sums::<K>(a, i, rows);
        f(i, &acc);
    }
}

/// Row `i` of `a` times the `K`-column block `rows` (see [`visit_row_sums`]).
#[inline(always)]
fn row_sums<const K: usize>(a: SparseRows<'_>, i: usize, rows: &[f32]) -> [f64; K] {
    let indices = a.indices();
    let (cols, vals) = a.row(i);
    let lo = a.indptr()[i];
    let mut acc = [0f64; K];
    for (p, (&j, &w)) in cols.iter().zip(vals).enumerate() {
        // (Past the row's end this is the next row's gather, as useful.)
        if let Some(&ahead) = indices.get(lo + p + GATHER_AHEAD) {
            prefetch(rows.as_ptr().wrapping_add(ahead as usize * K));
        }
        let r = &rows[j as usize * K..][..K];
        for c in 0..K {
            acc[c] += w as f64 * r[c] as f64;
        }
    }
    acc
}

/// [`row_sums`], four lanes to a register where the CPU has AVX2 (the same bits).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn row_sums_avx2<const K: usize>(a: SparseRows<'_>, i: usize, rows: &[f32]) -> [f64; K] {
    row_sums::<K>(a, i, rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, Rng, SeedableRng};

    #[test]
    fn products_equal_a_dense_reference_for_every_width() {
        let mut rng = SmallRng::seed_from_u64(3);
        let n = 300;
        let (mut indptr, mut indices, mut data) = (vec![0usize], Vec::new(), Vec::new());
        for i in 0..n {
            // Every 11th row empty; repeated columns allowed (they add).
            if i % 11 != 5 {
                for _ in 0..rng.random_range(1..40) {
                    indices.push(rng.random_range(0..n as u32));
                    data.push(rng.random_range(-2.0f32..2.0));
                }
            }
            indptr.push(indices.len());
        }
        let a = SparseRows::new(&indptr, &indices, &data).unwrap();
        let scale: Vec<f64> = (0..n).map(|i| 0.5 + i as f64 / n as f64).collect();
        let mut op = CpuSparseOperator::new(a, &scale).unwrap();
        for k in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 16, 20, 24] {
            let rows: Vec<f32> = (0..n * k).map(|_| rng.random_range(-1.0..1.0)).collect();
            let mut out = vec![f64::NAN; n * k];
            op.apply(&rows, k, &mut out).unwrap();
            for i in 0..n {
                for c in 0..k {
                    let (cols, vals) = a.row(i);
                    let want: f64 = cols
                        .iter()
                        .zip(vals)
                        .map(|(&j, &w)| w as f64 * rows[j as usize * k + c] as f64)
                        .sum::<f64>()
                        * scale[i];
                    let got = out[i * k + c];
                    assert!(
                        (got - want).abs() <= 1e-12 * (1.0 + want.abs()),
                        "{k} {i} {c}"
                    );
                }
            }
        }
        let mut out = vec![0.0; n * 2];
        assert!(op.apply(&vec![0.0; n], 2, &mut out).is_err());
        assert!(CpuSparseOperator::new(a, &scale[1..]).is_err());
    }
}
