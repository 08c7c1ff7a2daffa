//! Spectral initialization of a layout (umap's `spectral_layout`): the eigenvectors of the
//! normalized Laplacian L = I − D^(−½) W D^(−½) with the smallest non-trivial eigenvalues, per
//! connected component, found as the top eigenvectors of N = D^(−½) W D^(−½) by thick-restarted
//! Krylov iteration with Rayleigh–Ritz (the trivial eigenvector D^(½)·1 projected out): each
//! restart keeps dim + 2 Ritz vectors and grows the basis from one new direction, as
//! thick-restart Lanczos does.

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

/// Residual ‖Nx − θx‖ at which an eigenvector counts as converged (umap's eigsh: tol 1e-4).
pub const SPECTRAL_TOL: f64 = 1e-4;
/// Most Rayleigh–Ritz restarts per component.
pub const SPECTRAL_MAX_RESTARTS: usize = 60;
/// Basis vectors per restart, in units of the restart's Ritz vectors (a deeper basis converges
/// in far fewer products than restarts do).
const DEPTH: usize = 10;
/// Vector entries per rayon task (small components run on one thread).
const PAR_MIN: usize = 8192;
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
    /// Restarts run.
    pub restarts: usize,
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
pub fn laplacian_eigenvectors(
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
    let b = (dim + 2).min(n.saturating_sub(1)).max(1);
    // Basis size per restart: DEPTH blocks' worth, at most n − 1 vectors (u0 is excluded).
    let m_max = (b * DEPTH).min(n - 1);
    // Column ranges of one tall matrix, where the backend computes: W = [u0 | V] (the trivial
    // vector, then the Krylov basis), two block slots (a block and its images under N), the
    // Ritz vectors (the next restart's start) and their images.
    let slot_a = 1 + m_max;
    let slot_b = slot_a + b;
    let ritz_at = slot_b + b;
    let images_at = ritz_at + b;
    let a = SparseRows::new(&g.indptr, &g.indices, &g.data)?;
    let mut t: Box<dyn TallMatrix + '_> = if n >= DEVICE_MIN {
        backend.tall_matrix(a, &inv_sqrt_deg, images_at + b)?
    } else {
        Box::new(CpuTall::new(a, &inv_sqrt_deg, images_at + b)?)
    };
    let product_time = std::cell::Cell::new(std::time::Duration::ZERO);
    // N·X: M[:, x] = N M[:, a] (the block rounded to f32 after its D^(−½) scaling: one gather
    // per stored edge, half the bytes; sums stay f64, and the rounding, ~1e-7 relative, is far
    // below the solver's 1e-4 tolerance).
    let apply = |t: &mut Box<dyn TallMatrix + '_>, x: usize, a: usize, k: usize| -> Result<()> {
        let start = std::time::Instant::now();
        t.apply(x..x + k, a..a + k)?;
        product_time.set(product_time.get() + start.elapsed());
        Ok(())
    };
    t.set_cols(0, &u0)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // One random start vector: every basis then grows from one vector, as thick-restart
    // Lanczos's does, so the Ritz vectors' residuals stay parallel (a random block of b, each
    // restart grown from one image, stalled above the tolerance on one graph).
    let x0: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
    t.set_cols(ritz_at, &x0)?;
    drop(x0);
    // Columns of the restart's start (the Ritz vectors of the last restart).
    let mut x_width = 1;
    let mut report = SpectralReport {
        restarts: 0,
        residual: f64::INFINITY,
        product_seconds: 0.0,
    };
    // Ritz vectors of the last completed restart.
    let mut found = 0;
    let mut h = Mat::<f64>::zeros(m_max, m_max);
    for restart in 0..SPECTRAL_MAX_RESTARTS {
        // Krylov basis V = orth[X, N x, N² x, …] ⟂ u0 (X the restart's start, x = N X's first
        // column), and H = Vᵀ N V filled block by block (N's images of a block are the next
        // block before orthogonalization; they are not kept).
        // Each block arrives with its coefficients against W so far: for the images of a block,
        // the product that fills H.
        let mut m = 0;
        let (mut block, mut images) = (slot_a, slot_b);
        for c in 0..x_width {
            t.copy_col(block + c, ritz_at + c)?;
        }
        let mut width = x_width;
        let mut coeffs = t.t_mul(0..1, block..block + width)?;
        while m < m_max {
            let kept = orthonormal_block(t.as_mut(), block, width, 1 + m, &coeffs)?;
            let kb = kept.min(m_max - m);
            if kb == 0 {
                break;
            }
            for c in 0..kb {
                t.copy_col(1 + m + c, block + c)?;
            }
            apply(&mut t, images, 1 + m, kb)?;
            coeffs = t.t_mul(0..1 + m + kb, images..images + kb)?;
            for c in 0..kb {
                for r in 0..m + kb {
                    let v = coeffs[(1 + r) * kb + c];
                    h[(r, m + c)] = v;
                    if r < m {
                        h[(m + c, r)] = v;
                    }
                }
            }
            m += kb;
            (block, images) = (images, block);
            width = kb;
            if width > 1 {
                // Thick restart: the basis grows from one image alone, one vector a product (a
                // polynomial of degree m − b per restart, not m / b). The Ritz vectors of a space
                // grown from one vector have parallel residuals (exactly, in exact arithmetic), so
                // the image of the first adds what all their images would.
                coeffs = (0..1 + m).map(|r| coeffs[r * kb]).collect();
                width = 1;
            }
        }
        if m == 0 {
            break;
        }
        let hm = Mat::from_fn(m, m, |r, c| (h[(r, c)] + h[(c, r)]) / 2.0);
        let Ok(eig) = top_eigen(hm.as_ref(), b.min(m), EigenSolver::Full) else {
            break;
        };
        let kk = eig.values.len();
        let v: Vec<f64> = (0..m)
            .flat_map(|j| (0..kk).map(move |c| (j, c)))
            .map(|(j, c)| eig.vectors[(j, c)])
            .collect();
        t.mul(ritz_at..ritz_at + kk, 1..1 + m, &v)?;
        let d = dim.min(kk);
        apply(&mut t, images_at, ritz_at, d)?;
        // ‖Nx − θx‖² = ‖Nx‖² − 2θ x·Nx + θ²‖x‖², from the gram of the Ritz vectors and their
        // images (columns ritz_at .. images_at + d), where the matrix is: no vector comes back
        // until the last restart.
        let span = ritz_at..images_at + d;
        let w = span.len();
        let gram = t.t_mul(span.clone(), span)?;
        let dot = |a: usize, b: usize| gram[a * w + b];
        let residual = (0..d)
            .map(|c| {
                let (x, nx, theta) = (c, b + c, eig.values[c]);
                (dot(nx, nx) - 2.0 * theta * dot(x, nx) + theta * theta * dot(x, x))
                    .max(0.0)
                    .sqrt()
            })
            .fold(0.0, f64::max);
        report = SpectralReport {
            restarts: restart + 1,
            residual,
            product_seconds: 0.0,
        };
        found = d;
        x_width = kk;
        if residual <= SPECTRAL_TOL || m + 1 >= n {
            break;
        }
    }
    report.product_seconds = product_time.get().as_secs_f64();
    // The last restart's Ritz vectors are still in place (a restart overwrites them only once
    // its Rayleigh–Ritz problem is solved).
    let best = t.cols(ritz_at..ritz_at + found)?;
    Ok((best.chunks_exact(n).map(<[f64]>::to_vec).collect(), report))
}

/// Orthonormalizes the `width` columns of the block at column `block` of `t` against the
/// orthonormal basis in its columns `0..p` (u0 and the Krylov vectors so far) by classical
/// Gram–Schmidt twice, given `coeffs` = basisᵀ·block (row-major p × width): the first pass's
/// subtraction and the second pass's coefficients share one sweep over the basis, so the basis
/// is read twice, not four times. Then among themselves (modified Gram–Schmidt), moving the
/// independent ones to the front; returns how many there are.
fn orthonormal_block(
    t: &mut dyn TallMatrix,
    block: usize,
    width: usize,
    p: usize,
    coeffs: &[f64],
) -> Result<usize> {
    let norm = |t: &mut dyn TallMatrix, c: usize| -> Result<f64> {
        Ok(t.t_mul(c..c + 1, c..c + 1)?[0].sqrt())
    };
    let cols = block..block + width;
    // The columns' norms: the diagonal of their gram (each entry is its own dot product, so
    // these are the bits of one column at a time).
    let gram = t.t_mul(cols.clone(), cols.clone())?;
    let before: Vec<f64> = (0..width).map(|c| gram[c * width + c].sqrt()).collect();
    let again = t.sub_t_mul(cols.clone(), 0..p, coeffs)?;
    t.sub_mul(cols, 0..p, &again)?;
    let mut kept = 0;
    for (c, &norm0) in before.iter().enumerate() {
        let col = block + c;
        for k in 0..kept {
            let d = t.t_mul(block + k..block + k + 1, col..col + 1)?;
            t.sub_mul(col..col + 1, block + k..block + k + 1, &d)?;
        }
        let norm = norm(t, col)?;
        if norm > 1e-10 * norm0.max(1e-300) {
            t.div_col(col, norm)?;
            if kept < c {
                t.copy_col(block + kept, col)?;
            }
            kept += 1;
        }
    }
    Ok(kept)
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
                product_seconds: 0.0,
            },
        ),
        Err(_) => (
            Vec::new(),
            SpectralReport {
                restarts: 0,
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

    #[test]
    fn krylov_eigenvectors_span_the_dense_solution() {
        let g = geometric_graph(1_500, 3);
        assert_eq!(components(&g).1, 1, "the test graph must be connected");
        let (vecs, report) =
            laplacian_eigenvectors(&g, 2, 7, &crate::backend::CpuBackend::new()).unwrap();
        assert!(g.n > DENSE_MAX, "the iterative path must run");
        assert!(
            report.residual <= SPECTRAL_TOL,
            "residual {} after {} restarts",
            report.residual,
            report.restarts
        );
        // The dense solve of the same operator.
        let inv_sqrt_deg: Vec<f64> = (0..g.n)
            .map(|i| 1.0 / g.row(i).1.iter().map(|&w| w as f64).sum::<f64>().sqrt())
            .collect();
        let mut u0: Vec<f64> = inv_sqrt_deg.iter().map(|s| 1.0 / s).collect();
        normalize(&mut u0);
        let (want, _) = dense_eigenvectors(&g, &inv_sqrt_deg, &u0, 2);
        for (c, v) in vecs.iter().enumerate() {
            // Unit length, orthogonal to the trivial vector, inside the dense top-2 span.
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
}
