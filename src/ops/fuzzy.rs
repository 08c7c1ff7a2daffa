//! umap's `fuzzy_simplicial_set` on a kNN graph (what scanpy's `neighbors` stores as
//! `connectivities`), with umap-learn's float32 arithmetic: per-cell ρ (nearest positive
//! distance) and σ (bisection to log2 k), memberships exp(−(d − ρ)/σ), then the fuzzy union
//! P + Pᵀ − P∘Pᵀ.

use rayon::prelude::*;

use super::knn::Knn;

/// Bisection steps for σ (umap: 64).
const SIGMA_ITERS: usize = 64;
/// Tolerance of Σ memberships against log2 k (umap's `SMOOTH_K_TOLERANCE`).
const SMOOTH_K_TOLERANCE: f32 = 1e-5;
/// Floor of σ as a fraction of the mean neighbour distance (umap's `MIN_K_DIST_SCALE`).
const MIN_K_DIST_SCALE: f32 = 1e-3;

/// A square sparse matrix in CSR form with f32 values and sorted column indices per row.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    /// Rows (= columns).
    pub n: usize,
    /// Row offsets, n + 1.
    pub indptr: Vec<usize>,
    /// Column of each stored value.
    pub indices: Vec<u32>,
    /// Stored values.
    pub data: Vec<f32>,
}

impl Graph {
    /// The graph whose row i holds the (column, value) pairs `rows[i]`, in that order.
    pub fn from_rows(rows: Vec<Vec<(u32, f32)>>) -> Graph {
        let n = rows.len();
        let nnz = rows.iter().map(Vec::len).sum();
        let mut indptr = Vec::with_capacity(n + 1);
        indptr.push(0);
        let mut indices = Vec::with_capacity(nnz);
        let mut data = Vec::with_capacity(nnz);
        for r in rows {
            for (j, w) in r {
                indices.push(j);
                data.push(w);
            }
            indptr.push(indices.len());
        }
        Graph {
            n,
            indptr,
            indices,
            data,
        }
    }

    /// Stored values.
    pub fn nnz(&self) -> usize {
        self.data.len()
    }

    /// Columns and values of row `i`.
    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let r = self.indptr[i]..self.indptr[i + 1];
        (&self.indices[r.clone()], &self.data[r])
    }

    /// The transpose (rows sorted).
    pub fn transpose(&self) -> Graph {
        let mut count = vec![0usize; self.n + 1];
        for &j in &self.indices {
            count[j as usize + 1] += 1;
        }
        for i in 0..self.n {
            count[i + 1] += count[i];
        }
        let mut fill = count.clone();
        let mut indices = vec![0u32; self.nnz()];
        let mut data = vec![0f32; self.nnz()];
        for i in 0..self.n {
            let (cols, vals) = self.row(i);
            for (&j, &v) in cols.iter().zip(vals) {
                let p = &mut fill[j as usize];
                indices[*p] = i as u32;
                data[*p] = v;
                *p += 1;
            }
        }
        Graph {
            n: self.n,
            indptr: count,
            indices,
            data,
        }
    }
}

/// ρ and σ of one cell from its neighbour distances (itself first), as umap's
/// `smooth_knn_dist` with `local_connectivity = 1`: f32 bisection on the membership sum.
/// `mean_all` is the mean of every stored distance (the σ floor of cells with ρ = 0).
pub fn smooth_knn_dist(dists: &[f32], mean_all: f32) -> (f32, f32) {
    let k = dists.len();
    let target = (k as f32).log2();
    let rho = dists.iter().copied().find(|&d| d > 0.0).unwrap_or(0.0);
    let (mut lo, mut hi, mut mid) = (0f32, f32::INFINITY, 1f32);
    for _ in 0..SIGMA_ITERS {
        let mut psum = 0f32;
        for &d in &dists[1..] {
            let d = d - rho;
            psum += if d > 0.0 { (-(d / mid)).exp() } else { 1.0 };
        }
        if (psum - target).abs() < SMOOTH_K_TOLERANCE {
            break;
        }
        if psum > target {
            hi = mid;
            mid = (lo + hi) / 2.0;
        } else {
            lo = mid;
            if hi == f32::INFINITY {
                mid *= 2.0;
            } else {
                mid = (lo + hi) / 2.0;
            }
        }
    }
    let floor = if rho > 0.0 {
        MIN_K_DIST_SCALE * (dists.iter().map(|&d| d as f64).sum::<f64>() / k as f64) as f32
    } else {
        MIN_K_DIST_SCALE * mean_all
    };
    (rho, mid.max(floor))
}

/// The directed membership matrix P: row i holds exp(−(d_ij − ρ_i)/σ_i) for its neighbours
/// (1 where d ≤ ρ, none for the cell itself), sorted by column, repeats summed.
pub fn memberships(knn: &Knn) -> Graph {
    let n = knn.len();
    let mean_all = (knn.distances.par_iter().map(|&d| d as f64).sum::<f64>()
        / knn.distances.len().max(1) as f64) as f32;
    let rows: Vec<Vec<(u32, f32)>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let d = knn.row_distances(i);
            let (rho, sigma) = smooth_knn_dist(d, mean_all);
            let mut r: Vec<(u32, f32)> = knn
                .row(i)
                .iter()
                .zip(d)
                .filter(|(&j, _)| j as usize != i)
                .map(|(&j, &dist)| {
                    let w = if dist - rho <= 0.0 || sigma == 0.0 {
                        1.0
                    } else {
                        (-((dist - rho) / sigma)).exp()
                    };
                    (j, w)
                })
                .collect();
            r.sort_by_key(|e| e.0);
            r.dedup_by(|b, a| {
                if a.0 == b.0 {
                    a.1 += b.1;
                    true
                } else {
                    false
                }
            });
            r.retain(|e| e.1 != 0.0);
            r
        })
        .collect();
    Graph::from_rows(rows)
}

/// The fuzzy union W = P + Pᵀ − P∘Pᵀ (f32, as scipy evaluates it), zeros dropped.
pub fn fuzzy_union(p: &Graph) -> Graph {
    let t = p.transpose();
    let rows: Vec<Vec<(u32, f32)>> = (0..p.n)
        .into_par_iter()
        .map(|i| {
            let (ca, va) = p.row(i);
            let (cb, vb) = t.row(i);
            let mut out = Vec::with_capacity(ca.len() + cb.len());
            let (mut x, mut y) = (0, 0);
            while x < ca.len() || y < cb.len() {
                let (j, a, b);
                if y == cb.len() || (x < ca.len() && ca[x] < cb[y]) {
                    (j, a, b) = (ca[x], va[x], 0.0);
                    x += 1;
                } else if x == ca.len() || cb[y] < ca[x] {
                    (j, a, b) = (cb[y], 0.0, vb[y]);
                    y += 1;
                } else {
                    (j, a, b) = (ca[x], va[x], vb[y]);
                    x += 1;
                    y += 1;
                }
                let w = (a + b) - a * b;
                if w != 0.0 {
                    out.push((j, w));
                }
            }
            out
        })
        .collect();
    Graph::from_rows(rows)
}

/// scanpy's `connectivities` of a kNN graph: [`fuzzy_union`] of [`memberships`].
pub fn connectivities(knn: &Knn) -> Graph {
    fuzzy_union(&memberships(knn))
}

/// scanpy's `distances`: the k−1 non-self neighbours of each cell (sorted by distance, as
/// scanpy stores them), as a CSR graph.
pub fn distance_graph(knn: &Knn) -> Graph {
    let (n, k) = (knn.len(), knn.k);
    let mut indptr = Vec::with_capacity(n + 1);
    indptr.push(0);
    let mut indices = Vec::with_capacity(n * (k - 1));
    let mut data = Vec::with_capacity(n * (k - 1));
    for i in 0..n {
        for (&j, &d) in knn.row(i).iter().zip(knn.row_distances(i)) {
            if j as usize != i {
                indices.push(j);
                data.push(d);
            }
        }
        indptr.push(indices.len());
    }
    Graph {
        n,
        indptr,
        indices,
        data,
    }
}
