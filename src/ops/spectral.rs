//! Spectral initialization of a layout (umap's `spectral_layout`): the eigenvectors of the
//! normalized Laplacian L = I − D^(−½) W D^(−½) with the smallest non-trivial eigenvalues, per
//! connected component, found as the top eigenvectors of N = D^(−½) W D^(−½) by block Krylov
//! iteration with Rayleigh–Ritz restarts (the trivial eigenvector D^(½)·1 projected out).

use std::ops::Range;

use faer::{Mat, MatRef};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::eigen::{top_eigen, EigenSolver};
use super::fuzzy::Graph;
use crate::backend::cpu::sparse::CpuSparseOperator;
use crate::backend::{Backend, SparseOperator, SparseRows};
use crate::error::Result;

/// Residual ‖Nx − θx‖ at which an eigenvector counts as converged (umap's eigsh: tol 1e-4).
pub const SPECTRAL_TOL: f64 = 1e-4;
/// Most Rayleigh–Ritz restarts per component.
pub const SPECTRAL_MAX_RESTARTS: usize = 60;
/// Krylov blocks per restart (a deeper basis converges in far fewer products than restarts do).
const DEPTH: usize = 10;
/// Vector entries per rayon task (small components run on one thread).
const PAR_MIN: usize = 8192;
/// Components up to this size are solved densely (exact, no iteration).
const DENSE_MAX: usize = 400;
/// Components from this size apply their graph through the backend; smaller ones on the CPU
/// whatever the backend (an upload to a device would cost more than their products).
pub const DEVICE_MIN: usize = 1 << 16;

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
    /// Seconds spent in the products with the graph (on the backend for large components).
    pub product_seconds: f64,
}

/// The `dim` leading non-trivial eigenvectors of N for the connected subgraph `g` (all of it one
/// component), column-major in a `Vec` per dimension. The products with N run on `backend`'s
/// sparse operator for components of [`DEVICE_MIN`] vertices or more (the same bits on every
/// backend), the rest of the iteration on the CPU.
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
    // N·X for a block of columns, through the backend's sparse operator (uploaded once).
    let a = SparseRows::new(&g.indptr, &g.indices, &g.data)?;
    let mut op: Box<dyn SparseOperator + '_> = if n >= DEVICE_MIN {
        backend.sparse_operator(a, &inv_sqrt_deg)?
    } else {
        Box::new(CpuSparseOperator::new(a, &inv_sqrt_deg)?)
    };
    let product_time = std::cell::Cell::new(std::time::Duration::ZERO);
    let mut apply_block = |x: MatRef<'_, f64>| -> Result<Mat<f64>> {
        let start = std::time::Instant::now();
        let k = x.ncols();
        // The block row-major, each row pre-scaled by D^(−½) and rounded to f32: one gather
        // per stored edge, half the bytes (sums stay f64; the rounding, ~1e-7 relative, is far
        // below the solver's 1e-4 tolerance).
        let mut rows = vec![0f32; n * k];
        rows.par_chunks_mut(k.max(1))
            .with_min_len(PAR_MIN / k.max(1))
            .enumerate()
            .for_each(|(i, r)| {
                for (c, v) in r.iter_mut().enumerate() {
                    *v = (x[(i, c)] * inv_sqrt_deg[i]) as f32;
                }
            });
        let mut out = vec![0.0f64; n * k];
        op.apply(&rows, k, &mut out)?;
        let nx = Mat::from_fn(n, k, |i, c| out[i * k + c]);
        product_time.set(product_time.get() + start.elapsed());
        Ok(nx)
    };
    let b = (dim + 2).min(n.saturating_sub(1)).max(1);
    // Basis size per restart: DEPTH blocks, at most n − 1 vectors (u0 is excluded).
    let m_max = (b * DEPTH).min(n - 1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut x = Mat::<f64>::from_fn(n, b, |_, _| StandardNormal.sample(&mut rng));
    let u0 = Mat::<f64>::from_fn(n, 1, |i, _| u0[i]);
    let mut report = SpectralReport {
        restarts: 0,
        residual: f64::INFINITY,
        product_seconds: 0.0,
    };
    let mut best: Vec<Vec<f64>> = Vec::new();
    // W = [u0 | V]: the trivial vector, then the Krylov basis.
    let mut w = Mat::<f64>::zeros(n, 1 + m_max);
    w.as_mut().col_mut(0).copy_from(u0.as_ref().col(0));
    let mut h = Mat::<f64>::zeros(m_max, m_max);
    for restart in 0..SPECTRAL_MAX_RESTARTS {
        // Krylov basis V = orth[X, NX, N²X, …] ⟂ u0, and H = Vᵀ N V filled block by block
        // (N's images of a block are the next block before orthogonalization; they are not kept).
        // Each block arrives with its coefficients against W so far: for the images of a block,
        // the product that fills H.
        let mut m = 0;
        let mut block = x.clone();
        let mut coeffs = tall_t_mul(w.as_ref().subcols(0, 1), block.as_ref());
        while m < m_max {
            let kept = orthonormal_block(&mut block, w.as_ref().subcols(0, 1 + m), &coeffs);
            let kb = kept.min(m_max - m);
            if kb == 0 {
                break;
            }
            w.as_mut()
                .subcols_mut(1 + m, kb)
                .copy_from(block.as_ref().subcols(0, kb));
            let nb = apply_block(w.as_ref().subcols(1 + m, kb))?;
            coeffs = tall_t_mul(w.as_ref().subcols(0, 1 + m + kb), nb.as_ref());
            for c in 0..kb {
                for r in 0..m + kb {
                    h[(r, m + c)] = coeffs[(1 + r, c)];
                    if r < m {
                        h[(m + c, r)] = coeffs[(1 + r, c)];
                    }
                }
            }
            m += kb;
            block = nb;
        }
        if m == 0 {
            break;
        }
        let hm = Mat::from_fn(m, m, |r, c| (h[(r, c)] + h[(c, r)]) / 2.0);
        let Ok(eig) = top_eigen(hm.as_ref(), b.min(m), EigenSolver::Full) else {
            break;
        };
        let kk = eig.values.len();
        let ritz = w.as_ref().subcols(1, m) * eig.vectors.as_ref().subrows(0, m);
        let nx = apply_block(ritz.as_ref().subcols(0, dim.min(kk)))?;
        let residual = (0..dim.min(kk))
            .map(|c| {
                (0..n)
                    .map(|i| (nx[(i, c)] - eig.values[c] * ritz[(i, c)]).powi(2))
                    .sum::<f64>()
                    .sqrt()
            })
            .fold(0.0, f64::max);
        report = SpectralReport {
            restarts: restart + 1,
            residual,
            product_seconds: 0.0,
        };
        best = (0..dim.min(kk))
            .map(|c| ritz.col(c).iter().copied().collect())
            .collect();
        x = ritz;
        if residual <= SPECTRAL_TOL || m + 1 >= n {
            break;
        }
    }
    report.product_seconds = product_time.get().as_secs_f64();
    Ok((best, report))
}

/// Orthonormalizes the columns of `block` against the orthonormal `basis` (u0 and the Krylov
/// vectors so far) by classical Gram–Schmidt twice, given `coeffs` = basisᵀ·block: the first
/// pass's subtraction and the second pass's coefficients share one sweep over the basis, so
/// the basis is read twice, not four times. Then among themselves (modified Gram–Schmidt),
/// moving the independent ones to the front; returns how many there are.
fn orthonormal_block(block: &mut Mat<f64>, basis: MatRef<'_, f64>, coeffs: &Mat<f64>) -> usize {
    let before: Vec<f64> = (0..block.ncols())
        .map(|c| norm_col(block.as_ref(), c))
        .collect();
    let again = tall_sub_t_mul(block.as_mut(), basis, coeffs.as_ref());
    tall_sub_mul(block.as_mut(), basis, again.as_ref());
    let mut kept = 0;
    for (c, &norm0) in before.iter().enumerate() {
        for k in 0..kept {
            let d = tall_t_mul(block.as_ref().subcols(k, 1), block.as_ref().subcols(c, 1));
            let (done, rest) = block.as_mut().split_at_col_mut(c);
            tall_sub_mul(
                rest.subcols_mut(0, 1),
                done.as_ref().subcols(k, 1),
                d.as_ref(),
            );
        }
        let norm = norm_col(block.as_ref(), c);
        if norm > 1e-10 * norm0.max(1e-300) {
            let (mut done, mut rest) = block.as_mut().split_at_col_mut(c);
            col_slice_mut(rest.as_mut(), 0)
                .par_iter_mut()
                .with_min_len(PAR_MIN)
                .for_each(|v| *v /= norm);
            if kept < c {
                done.as_mut().col_mut(kept).copy_from(rest.as_ref().col(0));
            }
            kept += 1;
        }
    }
    kept
}

/// Rows per task of the tall-skinny products (a task's rows of the narrow operand, 4 columns of
/// 4,096 f64, stay in the core's L2 while the wide one streams past).
const TALL_ROWS: usize = 4096;

/// The column of a tall matrix as a slice (faer keeps our column-major columns contiguous).
fn col_slice(m: MatRef<'_, f64>, c: usize) -> &[f64] {
    m.col(c)
        .try_as_col_major()
        .expect("column-major storage")
        .as_slice()
}

/// [`col_slice`], writable.
fn col_slice_mut(m: faer::MatMut<'_, f64>, c: usize) -> &mut [f64] {
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
/// parallel tasks of [`TALL_ROWS`], each task's p × k partial product summed in task order (the
/// result does not depend on the thread count). faer's general product spent 2.7 s of a 4.4 s
/// spectral init at 200k points on this shape.
fn tall_t_mul(w: MatRef<'_, f64>, x: MatRef<'_, f64>) -> Mat<f64> {
    let (n, p, k) = (w.nrows(), w.ncols(), x.ncols());
    assert_eq!(x.nrows(), n, "row counts of a tall product");
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
    sum_parts(&parts, p, k)
}

/// `X −= W C`, then `Wᵀ X` of the result, in one sweep over the rows of the tall `W` (n × p) and
/// `X` (n × k) (each task's rows of `W` are read once for both, from cache the second time).
fn tall_sub_t_mul(x: faer::MatMut<'_, f64>, w: MatRef<'_, f64>, c: MatRef<'_, f64>) -> Mat<f64> {
    let (p, k) = (w.ncols(), x.ncols());
    assert_eq!(
        (c.nrows(), c.ncols(), w.nrows()),
        (p, k, x.nrows()),
        "shapes of a tall product"
    );
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
    sum_parts(&parts, p, k)
}

/// The p × k sum of row tasks' partial products, in task order.
fn sum_parts(parts: &[Vec<f64>], p: usize, k: usize) -> Mat<f64> {
    let mut out = Mat::<f64>::zeros(p, k);
    for part in parts {
        for j in 0..p {
            for q in 0..k {
                out[(j, q)] += part[j * k + q];
            }
        }
    }
    out
}

/// `X −= W C` for tall `W` (n × p), `X` (n × k) and small `C` (p × k), rows in parallel.
fn tall_sub_mul(x: faer::MatMut<'_, f64>, w: MatRef<'_, f64>, c: MatRef<'_, f64>) {
    let (p, k) = (w.ncols(), x.ncols());
    assert_eq!(
        (c.nrows(), c.ncols()),
        (p, k),
        "shape of a tall product's coefficients"
    );
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

/// Euclidean norm of a column (no scaling: the spectral vectors are far from f64's limits).
fn norm_col(m: MatRef<'_, f64>, c: usize) -> f64 {
    let x = col_slice(m, c);
    dot(x, x).sqrt()
}

/// Dot product with sixteen partial sums ([`super::dot_lanes`]): the same bits with or without
/// AVX2, and for a given length a fixed summation order.
#[inline(always)]
fn dot_body(a: &[f64], b: &[f64]) -> f64 {
    super::dot_lanes::<f64, 16>(a, b)
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
    dot_body(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn axpy_avx2(s: f64, x: &[f64], y: &mut [f64]) {
    axpy_body(s, x, y)
}

/// [`dot_body`], four lanes to a register where the CPU has AVX2.
fn dot_f64(a: &[f64], b: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports the features the function was compiled for.
        return unsafe { dot_avx2(a, b) };
    }
    dot_body(a, b)
}

/// [`axpy_body`], four lanes to a register where the CPU has AVX2.
fn axpy_f64(s: f64, x: &[f64], y: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports the features the function was compiled for.
        return unsafe { axpy_avx2(s, x, y) };
    }
    axpy_body(s, x, y)
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
        .map(|(x, y)| dot_f64(x, y))
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
