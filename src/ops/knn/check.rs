//! The exact neighbours of a few points, found by brute force before NN-descent: their local
//! intrinsic dimension sizes its heaps and their recall checks its graph.

use rayon::prelude::*;

use super::heaps::Heaps;
use crate::backend::points::sq_dist_f32;
use crate::backend::Points;
use crate::simd::splitmix64;

/// Points whose exact neighbours [`Check`] finds: all of them up to this many (the default
/// search is exact there anyway), else [`CHECK_SAMPLE`] drawn at random.
const CHECK_ALL_MAX: usize = 8192;
/// Points checked above [`CHECK_ALL_MAX`] (the recall's standard error: ~0.004 at 0.95).
pub(super) const CHECK_SAMPLE: usize = 256;
/// Points a task of [`Check::new`] compares with every checked point.
const CHECK_BLOCK: usize = 4096;
/// Candidates per checked point beyond its m that the product form keeps for the exact ranking.
const CHECK_SPARE: usize = 8;

/// The exact neighbours of a few points, found by brute force before the search: their local
/// intrinsic dimension sizes the heaps, and the recall of their neighbours checks the graph.
pub(super) struct Check {
    /// The checked points.
    pub(super) ids: Vec<u32>,
    /// Nearest other points kept per checked point (k − 1).
    m: usize,
    /// Per checked point, its m nearest other points by (squared f32 distance, index).
    pub(super) truth: Vec<(f32, u32)>,
}

/// The `m` nearest other points of each point `ids` (row-major, `m` a point, by squared f32
/// distance then index; (∞, `u32::MAX`) where there are fewer), exactly: each task takes a
/// block of points, computes its products with the points `ids` as one matrix product (faer)
/// of the points less their mean, keeps each one's [`CHECK_SPARE`] + m nearest by
/// ‖x‖² + ‖y‖² − 2x·y, and those are then ranked again by their exact f32 distances (the product
/// form cancels).
pub(crate) fn nearest_others(points: Points<'_>, ids: &[u32], m: usize) -> Vec<(f32, u32)> {
    let (n, dim) = (points.len(), points.dim());
    let c = ids.len();
    let mean: Vec<f32> = points.mean().iter().map(|&m| m as f32).collect();
    let centred = |p: usize, out: &mut Vec<f32>| {
        out.extend(points.row(p).iter().zip(&mean).map(|(v, m)| v - m));
    };
    let mut q = Vec::with_capacity(c * dim);
    ids.iter().for_each(|&id| centred(id as usize, &mut q));
    let norm = |r: &[f32]| r.iter().map(|v| v * v).sum::<f32>();
    let qn: Vec<f32> = q.chunks_exact(dim.max(1)).map(norm).collect();
    let keep = (m + CHECK_SPARE).min(n.saturating_sub(1)).max(1);
    let none = (f32::INFINITY, u32::MAX);
    // Blocks whose products with the checked points take at most 4M floats (16 MB).
    let block = ((1usize << 22) / c.max(1)).clamp(64, CHECK_BLOCK);
    let parts: Vec<Vec<(f32, u32)>> = (0..n.div_ceil(block))
        .into_par_iter()
        .map(|b| {
            let (lo, hi) = (b * block, ((b + 1) * block).min(n));
            let mut rows = Vec::with_capacity((hi - lo) * dim);
            (lo..hi).for_each(|p| centred(p, &mut rows));
            let mut g = faer::Mat::<f32>::zeros(c, hi - lo);
            faer::linalg::matmul::matmul(
                g.as_mut(),
                faer::Accum::Replace,
                faer::MatRef::from_row_major_slice(&q, c, dim),
                faer::MatRef::from_row_major_slice(&rows, hi - lo, dim).transpose(),
                1.0f32,
                faer::Par::Seq,
            );
            let mut tops = vec![none; c * keep];
            for (t, r) in rows.chunks_exact(dim.max(1)).enumerate() {
                let (p, pn) = ((lo + t) as u32, norm(r));
                let col = g.col(t);
                for (ci, &id) in ids.iter().enumerate() {
                    let top = &mut tops[ci * keep..(ci + 1) * keep];
                    let e = ((qn[ci] + pn - 2.0 * col[ci]).max(0.0), p);
                    if id != p && e < top[keep - 1] {
                        let mut pos = keep - 1;
                        while pos > 0 && top[pos - 1] > e {
                            top[pos] = top[pos - 1];
                            pos -= 1;
                        }
                        top[pos] = e;
                    }
                }
            }
            tops
        })
        .collect();
    let mut truth = vec![none; c * m];
    truth
        .par_chunks_mut(m.max(1))
        .zip(ids.par_iter())
        .enumerate()
        .for_each(|(ci, (out, &id))| {
            let x = points.row(id as usize);
            let mut all: Vec<(f32, u32)> = parts
                .iter()
                .flat_map(|t| t[ci * keep..(ci + 1) * keep].iter())
                .filter(|e| e.1 != u32::MAX)
                .map(|&(_, j)| (sq_dist_f32(x, points.row(j as usize)), j))
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            all.dedup_by_key(|e| e.1);
            for (o, e) in out.iter_mut().zip(all) {
                *o = e;
            }
        });
    truth
}

impl Check {
    /// The checked points (all, or a random sample) and their exact neighbours
    /// ([`nearest_others`]).
    pub(super) fn new(points: Points<'_>, m: usize, seed: u64) -> Self {
        let n = points.len();
        let ids: Vec<u32> = if n <= CHECK_ALL_MAX {
            (0..n as u32).collect()
        } else {
            let mut rng =
                <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(splitmix64(seed ^ 0xC4EC));
            let mut v: Vec<u32> = rand::seq::index::sample(&mut rng, n, CHECK_SAMPLE)
                .into_iter()
                .map(|i| i as u32)
                .collect();
            v.sort_unstable();
            v
        };
        let truth = nearest_others(points, &ids, m);
        Check { ids, m, truth }
    }

    /// Median over the checked points of the maximum-likelihood estimate of the local intrinsic
    /// dimension from their m nearest distances, −(m − 1) / Σ ln(dⱼ / dₘ) (Levina and Bickel);
    /// NaN when no point has m distinct positive distances.
    pub(super) fn intrinsic_dim(&self) -> f64 {
        let m = self.m;
        let mut est: Vec<f64> = self
            .truth
            .chunks_exact(m.max(1))
            .filter_map(|row| {
                let far = (row[m - 1].0 as f64).sqrt();
                let sum: f64 = row[..m - 1]
                    .iter()
                    .map(|e| ((e.0 as f64).sqrt() / far).ln())
                    .sum();
                (m >= 3 && row[0].0 > 0.0 && far.is_finite() && sum < 0.0)
                    .then(|| -((m - 1) as f64) / sum)
            })
            .collect();
        if est.is_empty() {
            return f64::NAN;
        }
        est.sort_by(f64::total_cmp);
        est[est.len() / 2]
    }

    /// The fraction of the checked points' m nearest other points that the m nearest of their
    /// heap entries by exact distance (the neighbours the search would return now) hold, ties
    /// counted as found: an entry no farther than the point's m-th nearest is one of its m
    /// nearest, whichever of equally distant points it is (duplicated cells are all at
    /// distance 0, and which of them is returned does not matter). Without ties this is the
    /// fraction of the true neighbours found.
    pub(super) fn recall(&self, points: Points<'_>, heaps: &Heaps) -> f64 {
        let (m, hm) = (self.m, heaps.m);
        let hits: usize = self
            .ids
            .par_iter()
            .zip(self.truth.par_chunks(m.max(1)))
            .map(|(&id, truth)| {
                let x = points.row(id as usize);
                let mut got: Vec<(f32, u32)> = heaps.i[id as usize * hm..(id as usize + 1) * hm]
                    .iter()
                    .filter(|&&j| j != u32::MAX)
                    .map(|&j| (sq_dist_f32(x, points.row(j as usize)), j))
                    .collect();
                got.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                got.truncate(m);
                let bound = truth[m - 1].0;
                got.iter().filter(|g| g.0 <= bound).count()
            })
            .sum();
        hits as f64 / (self.ids.len() * m).max(1) as f64
    }
}
