//! Top eigenpairs of a symmetric positive semi-definite matrix (a covariance), by a full
//! symmetric eigendecomposition (faer) or, for large dimensions, by subspace iteration with
//! Rayleigh–Ritz that stops when every wanted pair's residual is small.

use faer::{Mat, MatRef, Side};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{Error, Result};

/// How the top eigenpairs are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EigenSolver {
    /// `full` up to 3,000 genes, `subspace` above.
    #[default]
    Auto,
    /// Full symmetric eigendecomposition (what scanpy's `scipy.linalg.eigh` does).
    Full,
    /// Subspace iteration for the top k only.
    Subspace,
}

/// Largest dimension `auto` solves with the full decomposition.
pub const AUTO_FULL_MAX_DIM: usize = 3_000;

/// Relative residual ‖Cv − λv‖ / λ₁ at which subspace iteration stops.
pub const SUBSPACE_TOL: f64 = 1e-9;

/// Most subspace iterations before giving up.
pub const SUBSPACE_MAX_ITER: usize = 1_000;

/// The top `k` eigenpairs, eigenvalues descending.
#[derive(Clone, Debug)]
pub struct TopEigen {
    /// Eigenvalues λ₁ ≥ … ≥ λ_k.
    pub values: Vec<f64>,
    /// Eigenvectors as columns (`dim x k`), unit length, signs not yet fixed.
    pub vectors: Mat<f64>,
    /// The solver that ran.
    pub solver: EigenSolver,
    /// Subspace iterations run (0 for the full solve).
    pub iterations: usize,
}

/// The top `k` eigenpairs of the symmetric matrix `c`.
pub fn top_eigen(c: MatRef<'_, f64>, k: usize, solver: EigenSolver) -> Result<TopEigen> {
    let d = c.nrows();
    if c.ncols() != d || k == 0 || k > d {
        return Err(Error::InvalidArgument(format!(
            "top {k} eigenpairs of a {d} x {} matrix",
            c.ncols()
        )));
    }
    let solver = match solver {
        EigenSolver::Auto if d <= AUTO_FULL_MAX_DIM => EigenSolver::Full,
        EigenSolver::Auto => EigenSolver::Subspace,
        s => s,
    };
    // Subspace iteration needs room for oversampling; near k = d the full solve is cheaper.
    if solver == EigenSolver::Full || oversampled(k, d) >= d {
        return full(c, k);
    }
    subspace(c, k)
}

fn oversampled(k: usize, d: usize) -> usize {
    (k + (k / 2).max(16)).min(d)
}

fn full(c: MatRef<'_, f64>, k: usize) -> Result<TopEigen> {
    let d = c.nrows();
    let evd = c
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| Error::InvalidArgument(format!("eigendecomposition failed: {e:?}")))?;
    let s = evd.S().column_vector();
    let u = evd.U();
    // Ascending from faer: the last k, reversed.
    let values = (0..k).map(|i| s[d - 1 - i]).collect();
    let vectors = Mat::from_fn(d, k, |r, i| u[(r, d - 1 - i)]);
    Ok(TopEigen {
        values,
        vectors,
        solver: EigenSolver::Full,
        iterations: 0,
    })
}

/// Orthonormal basis of the columns of `y` (thin QR).
fn orthonormalize(y: &Mat<f64>) -> Mat<f64> {
    y.qr().compute_thin_Q()
}

fn subspace(c: MatRef<'_, f64>, k: usize) -> Result<TopEigen> {
    let d = c.nrows();
    let m = oversampled(k, d);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(0);
    let start = Mat::from_fn(d, m, |_, _| StandardNormal.sample(&mut rng));
    let mut q = orthonormalize(&start);
    let mut iterations = 0;
    loop {
        // Rayleigh–Ritz on span(Q): T = Qᵀ C Q, T = W Θ Wᵀ, Ritz vectors V = Q W.
        let cq = c * &q;
        iterations += 1;
        let t = q.transpose() * &cq;
        let evd = t
            .self_adjoint_eigen(Side::Lower)
            .map_err(|e| Error::InvalidArgument(format!("eigendecomposition failed: {e:?}")))?;
        let theta = evd.S().column_vector();
        let w = evd.U();
        // Descending order: column m-1-i of W is the i-th pair.
        let w_desc = Mat::from_fn(m, m, |r, i| w[(r, m - 1 - i)]);
        let values: Vec<f64> = (0..m).map(|i| theta[m - 1 - i]).collect();
        let v = &q * &w_desc;
        let cv = &cq * &w_desc;
        let scale = values[0].abs().max(f64::MIN_POSITIVE);
        let worst = (0..k)
            .map(|i| {
                let r = cv.col(i) - v.col(i) * values[i];
                r.norm_l2() / scale
            })
            .fold(0.0f64, f64::max);
        if worst <= SUBSPACE_TOL || iterations >= SUBSPACE_MAX_ITER {
            if worst > SUBSPACE_TOL * 1e3 {
                return Err(Error::InvalidArgument(format!(
                    "subspace iteration did not converge for {k} components in {iterations} \
                     iterations (residual {worst:.1e}); use --eigen full"
                )));
            }
            let vectors = Mat::from_fn(d, k, |r, i| v[(r, i)]);
            return Ok(TopEigen {
                values: values[..k].to_vec(),
                vectors,
                solver: EigenSolver::Subspace,
                iterations,
            });
        }
        // Next subspace: C·V (the Ritz vectors keep the block well conditioned).
        q = orthonormalize(&cv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random covariance with a decaying spectrum.
    fn covariance(d: usize, n: usize) -> Mat<f64> {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let x = Mat::from_fn(n, d, |_, j| {
            let s: f64 = StandardNormal.sample(&mut rng);
            s / (1.0 + j as f64).sqrt()
        });
        (x.transpose() * &x) * faer::Scale(1.0 / n as f64)
    }

    #[test]
    fn subspace_matches_full_solve() {
        let c = covariance(300, 2_000);
        let k = 40;
        let f = top_eigen(c.as_ref(), k, EigenSolver::Full).unwrap();
        let s = top_eigen(c.as_ref(), k, EigenSolver::Subspace).unwrap();
        assert_eq!(s.solver, EigenSolver::Subspace);
        assert!(s.iterations > 1);
        for i in 0..k {
            let rel = (f.values[i] - s.values[i]).abs() / f.values[i];
            assert!(
                rel < 1e-10,
                "eigenvalue {i}: {} vs {}",
                f.values[i],
                s.values[i]
            );
            let cos: f64 = (0..300)
                .map(|r| f.vectors[(r, i)] * s.vectors[(r, i)])
                .sum();
            assert!(
                cos.abs() > 1.0 - 1e-8,
                "eigenvector {i}: |cos| = {}",
                cos.abs()
            );
        }
        assert!(f.values.windows(2).all(|w| w[0] >= w[1]), "descending");
    }

    #[test]
    fn full_solve_satisfies_the_eigen_equation() {
        let c = covariance(50, 400);
        let e = top_eigen(c.as_ref(), 50, EigenSolver::Auto).unwrap();
        for i in 0..50 {
            let v = e.vectors.col(i);
            let r = &c * v - v * e.values[i];
            assert!(r.norm_l2() < 1e-12 * e.values[0], "pair {i}");
        }
        assert!(top_eigen(c.as_ref(), 51, EigenSolver::Auto).is_err());
        assert!(top_eigen(c.as_ref(), 0, EigenSolver::Auto).is_err());
    }
}
