//! [`SparseOperator`] on the CPU: the matrix stays where its owner keeps it, rows in parallel.

use rayon::prelude::*;

use super::prefetch;
use crate::backend::sparse::{check_apply, check_scale, SparseOperator, SparseRows};
use crate::error::Result;

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
        macro_rules! fixed {
            ($k:literal) => {
                apply_fixed::<$k>(self.a, self.scale, rows, out)
            };
        }
        match k {
            0 => {}
            1 => fixed!(1),
            2 => fixed!(2),
            3 => fixed!(3),
            4 => fixed!(4),
            5 => fixed!(5),
            6 => fixed!(6),
            _ => apply_any(self.a, self.scale, k, rows, out),
        }
        Ok(())
    }
}

/// [`SparseOperator::apply`] for `K` columns: the sums in registers, and the gathered block row
/// prefetched a few stored values ahead (in a large graph each is a cache miss).
fn apply_fixed<const K: usize>(a: SparseRows<'_>, scale: &[f64], rows: &[f32], out: &mut [f64]) {
    let indices = a.indices();
    out.par_chunks_mut(K)
        .with_min_len(PAR_MIN / K)
        .enumerate()
        .for_each(|(i, yi)| {
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
            for (y, s) in yi.iter_mut().zip(acc) {
                *y = s * scale[i];
            }
        });
}

/// [`SparseOperator::apply`] for any column count.
fn apply_any(a: SparseRows<'_>, scale: &[f64], k: usize, rows: &[f32], out: &mut [f64]) {
    out.par_chunks_mut(k)
        .with_min_len(PAR_MIN / k)
        .enumerate()
        .for_each(|(i, yi)| {
            yi.fill(0.0);
            let (cols, vals) = a.row(i);
            for (&j, &w) in cols.iter().zip(vals) {
                for (y, &r) in yi.iter_mut().zip(&rows[j as usize * k..][..k]) {
                    *y += w as f64 * r as f64;
                }
            }
            for y in yi.iter_mut() {
                *y *= scale[i];
            }
        });
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
        for k in [1, 2, 3, 4, 5, 6, 7, 9] {
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
