//! Spectral initialization of a layout (umap's `spectral_layout`): the eigenvectors of the
//! normalized Laplacian L = I − D^(−½) W D^(−½) with the smallest non-trivial eigenvalues, per
//! connected component, found as the top eigenvectors of N = D^(−½) W D^(−½) by
//! Chebyshev-filtered subspace iteration with Rayleigh–Ritz (the trivial eigenvector D^(½)·1
//! projected out).

use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use faer::Mat;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::eigen::{top_eigen, EigenSolver};
use super::fuzzy::Graph;
use crate::backend::cpu::tall::CpuTall;
use crate::backend::tall::{dot16, TALL_ROWS};
use crate::backend::{Backend, SparseRows, TallMatrix};
use crate::error::Result;
use crate::simd::prefetch_span;

/// Residual ‖Nx − θx‖ at which an eigenvector counts as converged (umap's eigsh: tol 1e-4).
pub const SPECTRAL_TOL: f64 = 1e-4;
/// Most Rayleigh–Ritz rounds per component.
pub const SPECTRAL_MAX_ROUNDS: usize = 100;
/// Rounds over which [`stalled`] measures the residual's progress.
const STALL_WINDOW: usize = 5;
/// Rounds still needed at the current rate beyond which [`stalled`] stops the iteration.
const STALL_ROUNDS: f64 = 20.0;
/// Multiple of [`SPECTRAL_TOL`] under which a stalled iteration is accepted.
const STALL_TOL: f64 = 10.0 * SPECTRAL_TOL;
/// Largest growth of a filter at the top of N's spectrum relative to its bound on the damped
/// interval: the condition of the filtered block, which its orthonormalization must survive.
const FILTER_GROWTH: f64 = 1e4;
/// Highest degree of one filter (between Rayleigh–Ritz rounds). A filter also stops at the
/// degree that should bring the residual within the tolerance.
const FILTER_MAX_DEGREE: usize = 20;
/// Condition of a block's (scaled) gram above which [`orthonormalize`] runs twice: one pass
/// leaves the columns orthogonal to about ε times it (1e-10 here).
const REORTH_COND: f64 = 1e6;
/// Relative eigenvalue of a block's gram below which [`orthonormalize`] drops a direction.
const RANK_TOL: f64 = 1e-13;
/// Vector entries per rayon task (small components run on one thread).
const PAR_MIN: usize = 8192;
/// Components from this size are solved in breadth-first order (see
/// [`laplacian_eigenvectors`]).
pub const LOCALITY_MIN: usize = 1 << 15;
/// Components up to this size are solved densely (exact, no iteration).
const DENSE_MAX: usize = 400;
/// Components from this size are solved in the backend's tall matrix; smaller ones on the CPU
/// whatever the backend (an upload to a device would cost more than their products).
pub const DEVICE_MIN: usize = 1 << 16;

/// Connected components: a label per vertex (0 = largest component, ties by smallest vertex)
/// and the component count. Rows are joined in parallel by a lock-free union–find whose links
/// always point to a smaller vertex, so each component's root is its smallest vertex whatever
/// the order of the joins.
pub fn components(g: &Graph) -> (Vec<u32>, usize) {
    let n = g.n;
    let parent: Vec<AtomicU32> = (0..n as u32).map(AtomicU32::new).collect();
    // The root of x, halving the path on the way: each store points a vertex at an ancestor,
    // which stays an ancestor (roots only ever gain parents), so concurrent stores are safe.
    let find = |mut x: u32| -> u32 {
        loop {
            let p = parent[x as usize].load(Relaxed);
            if p == x {
                return x;
            }
            let gp = parent[p as usize].load(Relaxed);
            if gp != p {
                parent[x as usize].store(gp, Relaxed);
            }
            x = gp;
        }
    };
    (0..n).into_par_iter().with_min_len(PAR_MIN).for_each(|i| {
        for &j in g.row(i).0 {
            let (mut a, mut b) = (find(i as u32), find(j));
            // Link the larger root under the smaller while it is still a root.
            while a != b {
                let (hi, lo) = (a.max(b), a.min(b));
                match parent[hi as usize].compare_exchange(hi, lo, Relaxed, Relaxed) {
                    Ok(_) => break,
                    Err(_) => (a, b) = (find(hi), find(lo)),
                }
            }
        }
    });
    let roots: Vec<u32> = (0..n as u32).into_par_iter().map(find).collect();
    let mut size = vec![0usize; n];
    for &r in &roots {
        size[r as usize] += 1;
    }
    let mut order: Vec<u32> = (0..n as u32).filter(|&r| size[r as usize] > 0).collect();
    order.sort_by_key(|&r| (std::cmp::Reverse(size[r as usize]), r));
    let mut label = vec![0u32; n];
    for (c, &r) in order.iter().enumerate() {
        label[r as usize] = c as u32;
    }
    (
        roots.par_iter().map(|&r| label[r as usize]).collect(),
        order.len(),
    )
}

/// What the eigen solve of one component reached.
#[derive(Clone, Debug)]
pub struct SpectralReport {
    /// Rayleigh–Ritz rounds run (each after one polynomial filter of the block).
    pub rounds: usize,
    /// Block products with the graph.
    pub products: usize,
    /// Largest residual of the returned vectors.
    pub residual: f64,
    /// Seconds spent in the products with the graph (on the backend for large components).
    pub product_seconds: f64,
}

/// The `dim` leading non-trivial eigenvectors of N for the connected subgraph `g` (all of it one
/// component), column-major in a `Vec` per dimension. For components of [`DEVICE_MIN`] vertices
/// or more the whole iteration runs in `backend`'s [`TallMatrix`] (on a GPU, in device memory),
/// smaller ones on the CPU's; both give the same bits. Only the small Rayleigh–Ritz problems and
/// the residuals are computed here.
///
/// The solver is Chebyshev-filtered subspace iteration: a block of 2·(dim + 2) vectors (⟂
/// the trivial eigenvector u0 = D^(½)·1) is multiplied by a Chebyshev polynomial of N that stays
/// within ±1 on [−1, c] (c the block's smallest Ritz value) and grows fast above it, then
/// orthonormalized, and Rayleigh–Ritz gives the next block. N's spectrum lies in [−1, 1], and on
/// graphs of nearly separate clusters its top eigenvalues crowd within 1e-4 of 1: Krylov
/// methods then need a basis as deep as the crowd is wide, with a sweep over the basis for every
/// vector, while the filter's cost is a block product a degree (one pass over the graph for all
/// the block's columns) and its rate is set by the gap to the block's edge, not within the crowd.
///
/// Components of [`LOCALITY_MIN`] vertices or more are solved in breadth-first order: a vertex's
/// neighbours then sit near it in memory, and the block products' gathers hit cache
/// (docs/design/spectral-init.md has the measurements).
pub fn laplacian_eigenvectors(
    g: &Graph,
    dim: usize,
    seed: u64,
    backend: &dyn Backend,
) -> Result<(Vec<Vec<f64>>, SpectralReport)> {
    if g.n < LOCALITY_MIN {
        return solve(g, dim, seed, backend);
    }
    solve_in_order(g, &breadth_first(g), dim, seed, backend)
}

/// [`laplacian_eigenvectors`] solved with the vertices renumbered, `order[r]` becoming `r`; the
/// vectors come back in the graph's own order.
fn solve_in_order(
    g: &Graph,
    order: &[u32],
    dim: usize,
    seed: u64,
    backend: &dyn Backend,
) -> Result<(Vec<Vec<f64>>, SpectralReport)> {
    let (vecs, report) = solve(&g.permuted(order), dim, seed, backend)?;
    let vecs = vecs
        .iter()
        .map(|v| {
            let mut out = vec![0f64; g.n];
            for (&o, &x) in order.iter().zip(v) {
                out[o as usize] = x;
            }
            out
        })
        .collect();
    Ok((vecs, report))
}

/// Queue entries between a row's prefetch and its visit in [`breadth_first`] (the rows lie
/// scattered, so each is fetched this many visits ahead).
const BFS_AHEAD: usize = 8;

/// The vertices of `g` in breadth-first order, from vertex 0 and then from the first vertex not
/// yet reached (each vertex once).
fn breadth_first(g: &Graph) -> Vec<u32> {
    let mut order: Vec<u32> = Vec::with_capacity(g.n);
    let mut seen = vec![false; g.n];
    for root in 0..g.n {
        if seen[root] {
            continue;
        }
        seen[root] = true;
        let mut head = order.len();
        order.push(root as u32);
        while head < order.len() {
            if let Some(&ahead) = order.get(head + BFS_AHEAD) {
                let (a, b) = (g.indptr[ahead as usize], g.indptr[ahead as usize + 1]);
                prefetch_span(g.indices[a..].as_ptr(), b - a);
            }
            for &j in g.row(order[head] as usize).0 {
                if !std::mem::replace(&mut seen[j as usize], true) {
                    order.push(j);
                }
            }
            head += 1;
        }
    }
    order
}

/// [`laplacian_eigenvectors`] in the graph's own order.
fn solve(
    g: &Graph,
    dim: usize,
    seed: u64,
    backend: &dyn Backend,
) -> Result<(Vec<Vec<f64>>, SpectralReport)> {
    let n = g.n;
    let inv_sqrt_deg: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| {
            let d: f64 = g.row(i).1.iter().map(|&w| w as f64).sum();
            if d > 0.0 {
                1.0 / d.sqrt()
            } else {
                0.0
            }
        })
        .collect();
    // Trivial eigenvector of N: D^(1/2)·1, normalized.
    let mut u0: Vec<f64> = inv_sqrt_deg
        .iter()
        .map(|&s| if s > 0.0 { 1.0 / s } else { 0.0 })
        .collect();
    normalize(&mut u0);
    if n <= DENSE_MAX {
        return Ok(dense_eigenvectors(g, &inv_sqrt_deg, &u0, dim));
    }
    let p = block_width(dim, n);
    let a = SparseRows::new(&g.indptr, &g.indices, &g.data)?;
    // One tall matrix, where the backend computes: u0, then FilterSolver's five blocks.
    let t: Box<dyn TallMatrix + '_> = if n >= DEVICE_MIN {
        backend.tall_matrix(a, &inv_sqrt_deg, 1 + 5 * p)?
    } else {
        Box::new(CpuTall::new(a, &inv_sqrt_deg, 1 + 5 * p)?)
    };
    let mut s = FilterSolver {
        t,
        p,
        report: SpectralReport {
            rounds: 0,
            products: 0,
            residual: f64::INFINITY,
            product_seconds: 0.0,
        },
        product_time: std::time::Duration::ZERO,
    };
    s.t.set_cols(0, &u0)?;
    // The random start, drawn in parallel: a stream per TALL_ROWS values, each seeded from `seed`
    // and its index (the same values whatever the thread count).
    let mut x0 = vec![0f64; n * p];
    x0.par_chunks_mut(TALL_ROWS)
        .enumerate()
        .for_each(|(c, chunk)| {
            let stream = seed ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut rng = rand::rngs::SmallRng::seed_from_u64(stream);
            chunk
                .iter_mut()
                .for_each(|v| *v = StandardNormal.sample(&mut rng));
        });
    s.t.set_cols(s.slot(X, p).start, &x0)?;
    drop(x0);
    let (mut from, mut w) = (X, p);
    let mut residuals = Vec::with_capacity(SPECTRAL_MAX_ROUNDS);
    for round in 0..SPECTRAL_MAX_ROUNDS {
        let theta = s.rayleigh_ritz(from, &mut w)?;
        let d = dim.min(w);
        s.report.residual = s.residual(&theta[..d])?;
        residuals.push(s.report.residual);
        if s.report.residual <= SPECTRAL_TOL
            || stalled(&residuals)
            || w <= d
            || round + 1 == SPECTRAL_MAX_ROUNDS
        {
            break;
        }
        match s.filter(theta[w - 1], w, theta[d - 1], s.report.residual)? {
            Some(block) => from = block,
            None => break,
        }
    }
    s.report.product_seconds = s.product_time.as_secs_f64();
    let d = dim.min(w);
    let best = s.t.cols(s.slot(X, d))?;
    Ok((
        best.chunks_exact(n).map(<[f64]>::to_vec).collect(),
        s.report,
    ))
}

/// True when the residuals of the rounds so far say the block sits in a crowd of eigenvalues it
/// cannot separate: the last is within [`STALL_TOL`], and at the rate of the last
/// [`STALL_WINDOW`] rounds reaching [`SPECTRAL_TOL`] would take more than [`STALL_ROUNDS`] more.
/// There the wanted eigenvalues lie closer together than the residual, so their eigenvectors are
/// fixed only up to a rotation among them, and further rounds mostly rotate the block
/// (docs/design/spectral-init.md).
fn stalled(residuals: &[f64]) -> bool {
    let Some(&now) = residuals.last() else {
        return false;
    };
    if residuals.len() <= STALL_WINDOW || now > STALL_TOL || now <= SPECTRAL_TOL {
        return false;
    }
    let before = residuals[residuals.len() - 1 - STALL_WINDOW];
    let gain = (before / now).ln();
    gain <= 0.0 || STALL_WINDOW as f64 * (now / SPECTRAL_TOL).ln() / gain > STALL_ROUNDS
}

/// Vectors in the filtered block for `dim` wanted ones: 2·(dim + 2). The filter's rate is set by
/// the gap between the wanted eigenvalues and the block's edge, which a wider block pushes down
/// past the crowd of eigenvalues near 1 that nearly separate clusters make, but a block product
/// costs more the wider (docs/design/spectral-init.md has the widths measured).
fn block_width(dim: usize, n: usize) -> usize {
    (2 * (dim + 2)).min(n.saturating_sub(2)).max(dim + 1)
}

/// Block slots of [`FilterSolver`]'s tall matrix (column 0 is u0): the Ritz vectors X, their
/// images N·X, and scratch blocks A, B, C (the filter's recurrence runs over X, A and B).
const X: usize = 0;
const NX: usize = 1;
const A: usize = 2;
const B: usize = 3;
const C: usize = 4;

/// Chebyshev-filtered subspace iteration on a tall matrix (see [`laplacian_eigenvectors`]).
struct FilterSolver<'a> {
    t: Box<dyn TallMatrix + 'a>,
    /// Columns a block slot holds.
    p: usize,
    report: SpectralReport,
    product_time: std::time::Duration,
}

impl FilterSolver<'_> {
    /// The first `w` columns of block slot `k`.
    fn slot(&self, k: usize, w: usize) -> Range<usize> {
        let start = 1 + k * self.p;
        start..start + w
    }

    /// `M[:, x] = N M[:, a]` (the block rounded to f32 after its D^(−½) scaling: one gather per
    /// stored edge, half the bytes; sums stay f64, and the rounding, ~1e-7 relative, is far below
    /// the solver's 1e-4 tolerance), timed and counted.
    fn apply(&mut self, x: Range<usize>, a: Range<usize>) -> Result<()> {
        let start = std::time::Instant::now();
        self.t.apply(x, a)?;
        self.product_time += start.elapsed();
        self.report.products += 1;
        Ok(())
    }

    /// The first `w` columns of slot `from` (any slot but C) orthogonalized against u0 and
    /// orthonormalized (into A, B or C), then Rayleigh–Ritz: the Ritz vectors into X, their
    /// images into N·X. Returns the Ritz values, descending; `w` becomes the columns kept.
    fn rayleigh_ritz(&mut self, from: usize, w: &mut usize) -> Result<Vec<f64>> {
        let y = self.slot(from, *w);
        // One pass against u0 leaves rounding: its share is only what the f32 products put
        // there, times the filter's growth.
        let c = self.t.t_mul(0..1, y.clone())?;
        self.t.sub_mul(y.clone(), 0..1, &c)?;
        let mut q = if from == A { B } else { A };
        let to = self.slot(q, 0).start;
        let (kept, cond) = orthonormalize(self.t.as_mut(), y, to)?;
        *w = kept;
        if cond > REORTH_COND {
            let (from, to) = (self.slot(q, kept), self.slot(C, 0).start);
            *w = orthonormalize(self.t.as_mut(), from, to)?.0;
            q = C;
        }
        if *w == 0 {
            return Ok(Vec::new());
        }
        let nq = if q == C { A } else { C };
        let (q, nq) = (self.slot(q, *w), self.slot(nq, *w));
        self.apply(nq.clone(), q.clone())?;
        let k = *w;
        let h = self.t.t_mul(q.clone(), nq.clone())?;
        let hm = Mat::from_fn(k, k, |r, c| (h[r * k + c] + h[c * k + r]) / 2.0);
        let eig = top_eigen(hm.as_ref(), k, EigenSolver::Full)?;
        let v: Vec<f64> = (0..k * k).map(|i| eig.vectors[(i / k, i % k)]).collect();
        self.t.mul(self.slot(X, k), q, &v)?;
        self.t.mul(self.slot(NX, k), nq, &v)?;
        self.report.rounds += 1;
        Ok(eig.values)
    }

    /// The largest residual ‖Nx − θx‖ of the first `theta.len()` Ritz vectors, from
    /// ‖Nx‖² − 2θ x·Nx + θ²‖x‖².
    fn residual(&mut self, theta: &[f64]) -> Result<f64> {
        let d = theta.len();
        let (x, nx) = (self.slot(X, d), self.slot(NX, d));
        let xx = self.t.t_mul(x.clone(), x.clone())?;
        let xn = self.t.t_mul(x, nx.clone())?;
        let nn = self.t.t_mul(nx.clone(), nx)?;
        Ok(theta
            .iter()
            .enumerate()
            .map(|(c, &th)| {
                let k = c * d + c;
                (nn[k] - 2.0 * th * xn[k] + th * th * xx[k]).max(0.0).sqrt()
            })
            .fold(0.0, f64::max))
    }

    /// Filters the `w` Ritz vectors (and their images) by the Chebyshev polynomial T_deg of
    /// (N − c0)/e, which maps [−1, cut] onto [−1, 1] (N's spectrum lies in [−1, 1]), as
    /// Z_{k+1} = (N − c0) Z_k − β_k Z_{k−1} from Z_0 = X and Z_1 = N·X − c0·X (Z_k = T_k · e^k /
    /// 2^(k−1), so no step rescales a block: β_1 = e²/2, then e²/4). The degree keeps the growth
    /// at the top of the spectrum within [`FILTER_GROWTH`] (the filtered block's condition), at
    /// most [`FILTER_MAX_DEGREE`]. Returns the slot of the filtered block, or `None` when `cut`
    /// leaves nothing to filter.
    fn filter(&mut self, cut: f64, w: usize, want: f64, residual: f64) -> Result<Option<usize>> {
        let (e, c0) = ((cut + 1.0) / 2.0, (cut - 1.0) / 2.0);
        let top = (1.0 - c0) / e;
        if !(e > 0.0 && top > 1.0) {
            return Ok(None);
        }
        // The filter grows the wanted vectors over the rest by T_deg at their Ritz value: enough
        // to bring the residual to a quarter of the tolerance is enough.
        let at_want = (want - c0) / e;
        let needed = if at_want > 1.0 {
            ((residual / (SPECTRAL_TOL / 4.0)).max(1.0).acosh() / at_want.acosh()).ceil() as usize
        } else {
            usize::MAX
        };
        let degree = ((FILTER_GROWTH.acosh() / top.acosh()).floor() as usize)
            .min(needed)
            .clamp(1, FILTER_MAX_DEGREE);
        let shift = vec![c0; w];
        for q in 0..w {
            self.t
                .copy_col(self.slot(A, 0).start + q, self.slot(NX, 0).start + q)?;
        }
        self.t.sub_diag(self.slot(A, w), self.slot(X, w), &shift)?;
        let (mut prev, mut cur, mut next) = (X, A, B);
        for k in 1..degree {
            let (x, z, zp) = (self.slot(next, w), self.slot(cur, w), self.slot(prev, w));
            self.apply(x.clone(), z.clone())?;
            self.t.sub_diag(x.clone(), z, &shift)?;
            let beta = if k == 1 { e * e / 2.0 } else { e * e / 4.0 };
            self.t.sub_diag(x, zp, &vec![beta; w])?;
            (prev, cur, next) = (cur, next, prev);
        }
        Ok(Some(cur))
    }
}

/// Orthonormalizes the columns `y` of `t` into the columns from `to` (disjoint from `y`) by
/// SVQB: with G = YᵀY and D its diagonal, the eigenvectors U and values Λ of D^(−½) G D^(−½)
/// give Q = Y D^(−½) U Λ^(−½). Directions with eigenvalues below [`RANK_TOL`] of the largest are
/// dropped. Returns how many columns Q has and the condition of the scaled gram: Q is exactly
/// orthonormal in exact arithmetic, and in floating point to about ε times that condition (a
/// second pass removes the rest, as in CholQR2).
fn orthonormalize(t: &mut dyn TallMatrix, y: Range<usize>, to: usize) -> Result<(usize, f64)> {
    let w = y.len();
    if w == 0 {
        return Ok((0, 1.0));
    }
    let g = t.t_mul(y.clone(), y.clone())?;
    let scale: Vec<f64> = (0..w)
        .map(|c| match g[c * w + c] {
            d if d > 0.0 => 1.0 / d.sqrt(),
            _ => 0.0,
        })
        .collect();
    let gs = Mat::from_fn(w, w, |r, c| {
        (g[r * w + c] + g[c * w + r]) / 2.0 * scale[r] * scale[c]
    });
    let eig = top_eigen(gs.as_ref(), w, EigenSolver::Full)?;
    let floor = eig.values[0] * RANK_TOL;
    let kept = eig
        .values
        .iter()
        .take_while(|&&l| l > floor && l > 0.0)
        .count();
    let v: Vec<f64> = (0..w * kept)
        .map(|i| {
            let (r, c) = (i / kept, i % kept);
            scale[r] * eig.vectors[(r, c)] / eig.values[c].sqrt()
        })
        .collect();
    t.mul(to..to + kept, y, &v)?;
    let cond = match kept {
        0 => 1.0,
        k => eig.values[0] / eig.values[k - 1],
    };
    Ok((kept, cond))
}

/// Small components: N deflated by u0 (N − u0 u0ᵀ), decomposed whole.
fn dense_eigenvectors(
    g: &Graph,
    inv_sqrt_deg: &[f64],
    u0: &[f64],
    dim: usize,
) -> (Vec<Vec<f64>>, SpectralReport) {
    let n = g.n;
    let mut m = Mat::<f64>::zeros(n, n);
    for i in 0..n {
        let (cols, vals) = g.row(i);
        for (&j, &w) in cols.iter().zip(vals) {
            m[(i, j as usize)] += w as f64 * inv_sqrt_deg[i] * inv_sqrt_deg[j as usize];
        }
    }
    let m = Mat::from_fn(n, n, |r, c| (m[(r, c)] + m[(c, r)]) / 2.0 - u0[r] * u0[c]);
    let want = dim.min(n);
    match top_eigen(m.as_ref(), want, EigenSolver::Full) {
        Ok(e) => (
            (0..want)
                .map(|c| (0..n).map(|r| e.vectors[(r, c)]).collect())
                .collect(),
            SpectralReport {
                rounds: 0,
                products: 0,
                residual: 0.0,
                product_seconds: 0.0,
            },
        ),
        Err(_) => (
            Vec::new(),
            SpectralReport {
                rounds: 0,
                products: 0,
                residual: f64::INFINITY,
                product_seconds: 0.0,
            },
        ),
    }
}

/// Dot product of two long vectors: [`dot_f64`] over row chunks in parallel, the chunks' sums
/// added in order (the result does not depend on the thread count).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.par_chunks(TALL_ROWS)
        .zip(b.par_chunks(TALL_ROWS))
        .map(|(x, y)| dot16(x, y))
        .collect::<Vec<f64>>()
        .iter()
        .sum()
}

fn normalize(x: &mut [f64]) -> f64 {
    let norm = dot(x, x).sqrt();
    if norm > 0.0 {
        x.par_iter_mut()
            .with_min_len(PAR_MIN)
            .for_each(|v| *v /= norm);
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// A symmetric 10-NN graph of `n` random points in the unit square, weights exp(−d/0.05).
    fn geometric_graph(n: usize, seed: u64) -> Graph {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let p: Vec<(f64, f64)> = (0..n).map(|_| (rng.random(), rng.random())).collect();
        let mut rows: Vec<std::collections::BTreeMap<u32, f32>> = vec![Default::default(); n];
        for i in 0..n {
            let mut d: Vec<(f64, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| ((p[i].0 - p[j].0).hypot(p[i].1 - p[j].1), j))
                .collect();
            d.sort_by(|a, b| a.0.total_cmp(&b.0));
            for &(dist, j) in &d[..10] {
                let w = (-dist / 0.05).exp() as f32;
                rows[i].insert(j as u32, w);
                rows[j].insert(i as u32, w);
            }
        }
        Graph::from_rows(rows.into_iter().map(|r| r.into_iter().collect()).collect())
    }

    #[test]
    fn components_match_a_serial_union_find() {
        // Sparse enough for thousands of components, large enough for many rayon tasks.
        let n = 20 * PAR_MIN + 7;
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let mut rows: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n];
        for i in 0..n {
            if rng.random_range(0.0..1.0) < 0.45 {
                // Mostly near neighbours (long chains), now and then a far one.
                let j = if rng.random_range(0..10) == 0 {
                    rng.random_range(0..n)
                } else {
                    (i + rng.random_range(1..40)).min(n - 1)
                };
                rows[i].push((j as u32, 1.0));
                rows[j].push((i as u32, 1.0));
            }
        }
        for r in &mut rows {
            r.sort_unstable_by_key(|e| e.0);
            r.dedup_by_key(|e| e.0);
        }
        let g = Graph::from_rows(rows);
        // The reference: serial union–find, roots the smallest vertex, labels by size then root.
        let mut parent: Vec<usize> = (0..n).collect();
        fn root(p: &[usize], mut x: usize) -> usize {
            while p[x] != x {
                x = p[x];
            }
            x
        }
        for i in 0..n {
            for &j in g.row(i).0 {
                let (a, b) = (root(&parent, i), root(&parent, j as usize));
                parent[a.max(b)] = a.min(b);
            }
        }
        let roots: Vec<usize> = (0..n).map(|i| root(&parent, i)).collect();
        let mut size = vec![0usize; n];
        roots.iter().for_each(|&r| size[r] += 1);
        let mut order: Vec<usize> = (0..n).filter(|&r| size[r] > 0).collect();
        order.sort_by_key(|&r| (std::cmp::Reverse(size[r]), r));
        let mut label = vec![0u32; n];
        order
            .iter()
            .enumerate()
            .for_each(|(c, &r)| label[r] = c as u32);
        let want: Vec<u32> = roots.iter().map(|&r| label[r]).collect();
        let (got, count) = components(&g);
        assert!(order.len() > 100, "{} components", order.len());
        assert_eq!(count, order.len());
        assert_eq!(got, want);
    }

    /// Asserts that `vecs` are unit length, orthogonal to D^(½)·1 and inside the span of the dense
    /// solution's top `vecs.len()` for `g`.
    fn assert_spans_dense(g: &Graph, vecs: &[Vec<f64>]) {
        let inv_sqrt_deg: Vec<f64> = (0..g.n)
            .map(|i| 1.0 / g.row(i).1.iter().map(|&w| w as f64).sum::<f64>().sqrt())
            .collect();
        let mut u0: Vec<f64> = inv_sqrt_deg.iter().map(|s| 1.0 / s).collect();
        normalize(&mut u0);
        let (want, _) = dense_eigenvectors(g, &inv_sqrt_deg, &u0, vecs.len());
        for (c, v) in vecs.iter().enumerate() {
            assert!((dot(v, v) - 1.0).abs() < 1e-8, "vector {c} not unit");
            assert!(
                dot(v, &u0).abs() < 1e-8,
                "vector {c} not orthogonal to D^½·1"
            );
            let inside: f64 = want.iter().map(|w| dot(v, w).powi(2)).sum();
            assert!(
                inside > 1.0 - 1e-4,
                "vector {c}: {inside} of it in the dense span"
            );
        }
    }

    #[test]
    fn filtered_eigenvectors_span_the_dense_solution() {
        let g = geometric_graph(1_500, 3);
        assert_eq!(components(&g).1, 1, "the test graph must be connected");
        assert!(g.n > DENSE_MAX, "the iterative path must run");
        // 2-D (blocks of 8) and 3-D (blocks of 10).
        for dim in [2, 3] {
            let (vecs, report) =
                laplacian_eigenvectors(&g, dim, 7, &crate::backend::CpuBackend::new()).unwrap();
            assert!(
                report.residual <= SPECTRAL_TOL,
                "{dim}-D: residual {} after {} rounds",
                report.residual,
                report.rounds
            );
            assert!(report.rounds > 1 && report.products > report.rounds);
            assert_eq!(vecs.len(), dim);
            assert_spans_dense(&g, &vecs);
        }
    }

    #[test]
    fn vectors_solved_in_another_order_come_back_in_the_graphs() {
        let g = geometric_graph(1_500, 4);
        // A random order, and breadth-first's.
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut order: Vec<u32> = (0..g.n as u32).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        let backend = crate::backend::CpuBackend::new();
        for order in [order, breadth_first(&g)] {
            let (vecs, report) = solve_in_order(&g, &order, 2, 7, &backend).unwrap();
            assert!(report.residual <= SPECTRAL_TOL, "{report:?}");
            assert_spans_dense(&g, &vecs);
        }
    }

    #[test]
    fn a_crowded_spectrum_stalls_and_a_converging_one_does_not() {
        // Residuals of the largest component of an 800k-cell subset of Tahoe-shaped plates
        // (~50 cell-line clusters): 1.5% less a round from round 4 on, which would take 100
        // rounds to reach the tolerance.
        let crowd = [
            1.930e-1, 2.742e-1, 1.714e-2, 1.093e-3, 8.466e-4, 7.250e-4, 6.439e-4, 5.820e-4,
            5.329e-4, 4.942e-4, 4.652e-4, 4.543e-4,
        ];
        let first = (1..=crowd.len()).find(|&r| stalled(&crowd[..r]));
        assert_eq!(first, Some(12));
        // Halving a round converges well before the cap: never stalled.
        let halving: Vec<f64> = (0..20).map(|r| 1e-2 * 0.5f64.powi(r)).collect();
        assert!((1..=halving.len()).all(|r| !stalled(&halving[..r])));
        // Stuck far from the tolerance: iterate on (the cap ends it).
        assert!(!stalled(&[5e-3; 30]));
        // Stuck within 10x of it: stalled.
        assert!(stalled(&[5e-4; 6]));
    }

    #[test]
    fn breadth_first_reaches_every_vertex_once_level_by_level() {
        // Two components: a geometric graph, and 50 vertices joined only to their successor.
        let mut rows: Vec<Vec<(u32, f32)>> = Vec::new();
        let g = geometric_graph(300, 5);
        for i in 0..g.n {
            rows.push(g.row(i).0.iter().map(|&j| (j, 1.0)).collect());
        }
        for i in 0..50u32 {
            let mut r = Vec::new();
            if i > 0 {
                r.push((300 + i - 1, 1.0));
            }
            if i < 49 {
                r.push((300 + i + 1, 1.0));
            }
            rows.push(r);
        }
        let g = Graph::from_rows(rows);
        let order = breadth_first(&g);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..g.n as u32).collect::<Vec<_>>(), "a permutation");
        // Each vertex's distance from its component's root: neighbours differ by at most one
        // and the order never goes back a level.
        let mut level = vec![usize::MAX; g.n];
        let mut last = 0;
        for &v in &order {
            let v = v as usize;
            let l = g
                .row(v)
                .0
                .iter()
                .filter(|&&j| level[j as usize] != usize::MAX)
                .map(|&j| level[j as usize] + 1)
                .min()
                .unwrap_or(0);
            assert!(
                l == 0 || l >= last,
                "vertex {v} at level {l} after level {last}"
            );
            level[v] = l;
            last = l;
        }
        assert_eq!(order[300], 300, "the chain starts at its smallest vertex");
        assert_eq!(&order[300..], &(300..350).collect::<Vec<u32>>()[..]);
    }
}
