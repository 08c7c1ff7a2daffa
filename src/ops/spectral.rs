//! Spectral initialization of a layout (umap's `spectral_layout`): the eigenvectors of the
//! normalized Laplacian L = I − D^(−½) W D^(−½) with the smallest non-trivial eigenvalues, per
//! connected component, found as the top eigenvectors of N = D^(−½) W D^(−½) by block Krylov
//! iteration with Rayleigh–Ritz restarts (the trivial eigenvector D^(½)·1 projected out).

use faer::Mat;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::eigen::{top_eigen, EigenSolver};
use super::fuzzy::Graph;

/// Residual ‖Nx − θx‖ at which an eigenvector counts as converged (umap's eigsh: tol 1e-4).
pub const SPECTRAL_TOL: f64 = 1e-4;
/// Most Rayleigh–Ritz restarts per component.
pub const SPECTRAL_MAX_RESTARTS: usize = 60;
/// Krylov blocks per restart.
const DEPTH: usize = 4;
/// Vector entries per rayon task (small components run on one thread).
const PAR_MIN: usize = 8192;
/// Components up to this size are solved densely (exact, no iteration).
const DENSE_MAX: usize = 400;

/// Connected components: a label per vertex (0 = largest component) and the component count.
pub fn components(g: &Graph) -> (Vec<u32>, usize) {
    let n = g.n;
    let mut parent: Vec<u32> = (0..n as u32).collect();
    fn find(p: &mut [u32], mut x: u32) -> u32 {
        while p[x as usize] != x {
            p[x as usize] = p[p[x as usize] as usize];
            x = p[x as usize];
        }
        x
    }
    for i in 0..n {
        for &j in g.row(i).0 {
            let (a, b) = (find(&mut parent, i as u32), find(&mut parent, j));
            if a != b {
                parent[a.max(b) as usize] = a.min(b);
            }
        }
    }
    let roots: Vec<u32> = (0..n as u32).map(|i| find(&mut parent, i)).collect();
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
        roots.iter().map(|&r| label[r as usize]).collect(),
        order.len(),
    )
}

/// What the eigen solve of one component reached.
#[derive(Clone, Debug)]
pub struct SpectralReport {
    /// Restarts run.
    pub restarts: usize,
    /// Largest residual of the returned vectors.
    pub residual: f64,
}

/// The `dim` leading non-trivial eigenvectors of N for the connected subgraph `g` (all of it one
/// component), column-major in a `Vec` per dimension.
pub fn laplacian_eigenvectors(g: &Graph, dim: usize, seed: u64) -> (Vec<Vec<f64>>, SpectralReport) {
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
    let apply = |x: &[f64], y: &mut [f64]| {
        y.par_iter_mut()
            .with_min_len(PAR_MIN)
            .enumerate()
            .for_each(|(i, yi)| {
                let (cols, vals) = g.row(i);
                let s: f64 = cols
                    .iter()
                    .zip(vals)
                    .map(|(&j, &w)| w as f64 * inv_sqrt_deg[j as usize] * x[j as usize])
                    .sum();
                *yi = s * inv_sqrt_deg[i];
            });
    };
    if n <= DENSE_MAX {
        return dense_eigenvectors(g, &inv_sqrt_deg, &u0, dim);
    }
    let b = (dim + 2).min(n.saturating_sub(1)).max(1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut x: Vec<Vec<f64>> = (0..b)
        .map(|_| (0..n).map(|_| StandardNormal.sample(&mut rng)).collect())
        .collect();
    let mut report = SpectralReport {
        restarts: 0,
        residual: f64::INFINITY,
    };
    let mut best = x.clone();
    for restart in 0..SPECTRAL_MAX_RESTARTS {
        // Krylov basis V = [X, NX, N²X, …] (orthonormal, ⟂ u0) and W = N V.
        let mut v: Vec<Vec<f64>> = Vec::with_capacity(b * DEPTH);
        let mut w: Vec<Vec<f64>> = Vec::with_capacity(b * DEPTH);
        let mut block = std::mem::take(&mut x);
        for _ in 0..DEPTH {
            for mut col in block.drain(..) {
                if orthonormalize(&mut col, &u0, &v) {
                    let mut y = vec![0.0; n];
                    apply(&col, &mut y);
                    v.push(col);
                    w.push(y);
                }
            }
            block = w[w.len().saturating_sub(b)..].to_vec();
            if v.len() + 1 >= n {
                break;
            }
        }
        let m = v.len();
        if m == 0 {
            break;
        }
        let h = Mat::from_fn(m, m, |r, c| {
            let (a, bb) = (dot(&v[r], &w[c]), dot(&v[c], &w[r]));
            (a + bb) / 2.0
        });
        let Ok(eig) = top_eigen(h.as_ref(), b.min(m), EigenSolver::Full) else {
            break;
        };
        let kk = eig.values.len();
        let combine = |basis: &[Vec<f64>], c: usize| -> Vec<f64> {
            let mut out = vec![0.0; n];
            for (r, vec) in basis.iter().enumerate() {
                let coef = eig.vectors[(r, c)];
                out.par_iter_mut()
                    .zip(vec.par_iter())
                    .for_each(|(o, &x)| *o += coef * x);
            }
            out
        };
        x = (0..kk).map(|c| combine(&v, c)).collect();
        let nx: Vec<Vec<f64>> = (0..dim.min(kk)).map(|c| combine(&w, c)).collect();
        let residual = nx
            .iter()
            .enumerate()
            .map(|(c, y)| {
                y.iter()
                    .zip(&x[c])
                    .map(|(a, b)| (a - eig.values[c] * b).powi(2))
                    .sum::<f64>()
                    .sqrt()
            })
            .fold(0.0, f64::max);
        report = SpectralReport {
            restarts: restart + 1,
            residual,
        };
        best = x.clone();
        if residual <= SPECTRAL_TOL || m + 1 >= n {
            break;
        }
    }
    best.truncate(dim);
    (best, report)
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
                restarts: 0,
                residual: 0.0,
            },
        ),
        Err(_) => (
            Vec::new(),
            SpectralReport {
                restarts: 0,
                residual: f64::INFINITY,
            },
        ),
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.par_iter()
        .with_min_len(PAR_MIN)
        .zip(b.par_iter())
        .map(|(x, y)| x * y)
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

/// Orthogonalizes `x` against `u0` and `basis` (twice, classical Gram–Schmidt) and normalizes
/// it; false when nothing independent is left.
fn orthonormalize(x: &mut [f64], u0: &[f64], basis: &[Vec<f64>]) -> bool {
    let before = dot(x, x).sqrt();
    for _ in 0..2 {
        for q in std::iter::once(u0).chain(basis.iter().map(Vec::as_slice)) {
            let c = dot(x, q);
            x.par_iter_mut()
                .zip(q.par_iter())
                .for_each(|(a, &b)| *a -= c * b);
        }
    }
    let after = normalize(x);
    after > 1e-10 * before.max(1e-300)
}
