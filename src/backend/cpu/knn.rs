//! Exact k-nearest-neighbour search: query blocks against tiles of all points, f64 distances,
//! a sorted top-k per query.

use std::ops::Range;

use rayon::prelude::*;

use crate::backend::points::{check_knn_args, sq_dist_f64, Points};
use crate::error::Result;

/// Queries per rayon task.
const QUERY_BLOCK: usize = 16;
/// Points per tile (≈ 50 KB of 50-D points stays in L1/L2 while a query block passes over it).
const POINT_TILE: usize = 256;

/// The k−1 nearest other points of one query, sorted by (distance, index).
struct TopK {
    d: Vec<f64>,
    i: Vec<u32>,
    len: usize,
}

impl TopK {
    fn new(m: usize) -> Self {
        TopK {
            d: vec![f64::INFINITY; m],
            i: vec![u32::MAX; m],
            len: 0,
        }
    }

    #[inline]
    fn worst(&self) -> f64 {
        if self.len < self.d.len() {
            f64::INFINITY
        } else {
            self.d[self.d.len() - 1]
        }
    }

    #[inline]
    fn push(&mut self, d: f64, i: u32) {
        let m = self.d.len();
        if m == 0 || d >= self.worst() {
            return;
        }
        // Shift larger entries right; equal distances keep the earlier (smaller) index first.
        let mut pos = self.len.min(m - 1);
        while pos > 0 && self.d[pos - 1] > d {
            self.d[pos] = self.d[pos - 1];
            self.i[pos] = self.i[pos - 1];
            pos -= 1;
        }
        self.d[pos] = d;
        self.i[pos] = i;
        self.len = (self.len + 1).min(m);
    }
}

pub(super) fn knn_exact(
    points: Points<'_>,
    queries: Range<usize>,
    k: usize,
    idx: &mut [u32],
    dist: &mut [f32],
) -> Result<()> {
    let n = points.len();
    check_knn_args(n, &queries, k, idx.len(), dist.len())?;
    idx.par_chunks_mut(QUERY_BLOCK * k)
        .zip(dist.par_chunks_mut(QUERY_BLOCK * k))
        .enumerate()
        .for_each(|(b, (idx, dist))| {
            let q0 = queries.start + b * QUERY_BLOCK;
            let nq = idx.len() / k;
            let mut tops: Vec<TopK> = (0..nq).map(|_| TopK::new(k - 1)).collect();
            for t0 in (0..n).step_by(POINT_TILE) {
                let t1 = (t0 + POINT_TILE).min(n);
                for (qi, top) in tops.iter_mut().enumerate() {
                    let q = q0 + qi;
                    let x = points.row(q);
                    for p in t0..t1 {
                        if p != q {
                            top.push(sq_dist_f64(x, points.row(p)), p as u32);
                        }
                    }
                }
            }
            for (qi, top) in tops.iter().enumerate() {
                let (ri, rd) = (
                    &mut idx[qi * k..(qi + 1) * k],
                    &mut dist[qi * k..(qi + 1) * k],
                );
                ri[0] = (q0 + qi) as u32;
                rd[0] = 0.0;
                for j in 0..k - 1 {
                    ri[j + 1] = top.i[j];
                    rd[j + 1] = top.d[j].sqrt() as f32;
                }
            }
        });
    Ok(())
}
