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
/// Rows a parallel task of graph assembly takes.
const ROWS_PER_TASK: usize = 4096;

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

    /// The graph with its vertices renumbered: vertex `order[r]` becomes `r` (`order` a
    /// permutation of `0..n`). Each row keeps its values in their order.
    pub fn permuted(&self, order: &[u32]) -> Graph {
        let n = self.n;
        let mut new_id = vec![0u32; n];
        for (r, &v) in order.iter().enumerate() {
            new_id[v as usize] = r as u32;
        }
        let mut indptr = Vec::with_capacity(n + 1);
        indptr.push(0);
        for &v in order {
            let v = v as usize;
            indptr.push(indptr[indptr.len() - 1] + self.indptr[v + 1] - self.indptr[v]);
        }
        let nnz = indptr[n];
        let (mut indices, mut data) = (vec![0u32; nnz], vec![0f32; nnz]);
        // Blocks of ROWS_PER_TASK rows, each writing its own share of the outputs.
        let mut parts = Vec::with_capacity(n.div_ceil(ROWS_PER_TASK));
        let (mut idx, mut val) = (&mut indices[..], &mut data[..]);
        for r0 in (0..n).step_by(ROWS_PER_TASK) {
            let rows = r0..(r0 + ROWS_PER_TASK).min(n);
            let len = indptr[rows.end] - indptr[r0];
            let (i, i_rest) = idx.split_at_mut(len);
            let (v, v_rest) = val.split_at_mut(len);
            parts.push((rows, i, v));
            (idx, val) = (i_rest, v_rest);
        }
        parts.into_par_iter().for_each(|(rows, idx, val)| {
            let mut at = 0;
            for r in rows {
                let (cols, vals) = self.row(order[r] as usize);
                for (&j, &w) in cols.iter().zip(vals) {
                    idx[at] = new_id[j as usize];
                    val[at] = w;
                    at += 1;
                }
            }
        });
        Graph {
            n,
            indptr,
            indices,
            data,
        }
    }

    /// The graph whose row i is what `row(i, buf)` leaves in `buf` (emptied before each row):
    /// rows made in parallel, `ROWS_PER_TASK` a task, then copied into place in parallel.
    pub fn from_row_fn<F>(n: usize, row: F) -> Graph
    where
        F: Fn(usize, &mut Vec<(u32, f32)>) + Sync,
    {
        struct Block {
            lens: Vec<usize>,
            indices: Vec<u32>,
            data: Vec<f32>,
        }
        let blocks: Vec<Block> = (0..n.div_ceil(ROWS_PER_TASK))
            .into_par_iter()
            .map(|b| {
                let rows = b * ROWS_PER_TASK..((b + 1) * ROWS_PER_TASK).min(n);
                let mut block = Block {
                    lens: Vec::with_capacity(rows.len()),
                    indices: Vec::new(),
                    data: Vec::new(),
                };
                let mut buf = Vec::new();
                for i in rows {
                    buf.clear();
                    row(i, &mut buf);
                    block.lens.push(buf.len());
                    block.indices.extend(buf.iter().map(|e| e.0));
                    block.data.extend(buf.iter().map(|e| e.1));
                }
                block
            })
            .collect();
        let nnz = blocks.iter().map(|b| b.indices.len()).sum();
        let mut indptr = vec![0usize; n + 1];
        let mut indices = vec![0u32; nnz];
        let mut data = vec![0f32; nnz];
        // Each block's share of the outputs, cut off in order.
        let mut parts = Vec::with_capacity(blocks.len());
        let (mut ptr, mut idx, mut val) = (&mut indptr[1..], &mut indices[..], &mut data[..]);
        let mut start = 0;
        for b in &blocks {
            let (p, p_rest) = ptr.split_at_mut(b.lens.len());
            let (i, i_rest) = idx.split_at_mut(b.indices.len());
            let (v, v_rest) = val.split_at_mut(b.data.len());
            parts.push((b, p, i, v, start));
            start += b.indices.len();
            (ptr, idx, val) = (p_rest, i_rest, v_rest);
        }
        parts.into_par_iter().for_each(|(b, p, i, v, start)| {
            let mut end = start;
            for (p, &len) in p.iter_mut().zip(&b.lens) {
                end += len;
                *p = end;
            }
            i.copy_from_slice(&b.indices);
            v.copy_from_slice(&b.data);
        });
        Graph {
            n,
            indptr,
            indices,
            data,
        }
    }

    /// The transpose, each row's columns ascending (entries of one source row keep their
    /// order). Two parallel passes, as a two-level counting sort: tasks over ranges of rows
    /// append each entry to the bucket of its column's range (sequential writes), then each
    /// range of columns counts its buckets' entries per column and places them, the buckets
    /// read in row order, so every transposed row comes out sorted with no sort and no atomics.
    pub fn transpose(&self) -> Graph {
        let n = self.n;
        let parts = (rayon::current_num_threads() * 8).max(1);
        // Row tasks of about equal numbers of entries; column ranges of equal width.
        let per_task = self.nnz().div_ceil(parts).max(1);
        let mut row_cuts = vec![0usize];
        for i in 0..n {
            if self.indptr[i + 1] - self.indptr[row_cuts[row_cuts.len() - 1]] >= per_task {
                row_cuts.push(i + 1);
            }
        }
        if row_cuts[row_cuts.len() - 1] != n {
            row_cuts.push(n);
        }
        let width = n.div_ceil(parts).max(1);
        let ranges = n.div_ceil(width);
        // buckets[row task][column range]: (column, row, value).
        let buckets: Vec<Vec<Vec<(u32, u32, f32)>>> = row_cuts
            .windows(2)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|w| {
                let mut out: Vec<Vec<(u32, u32, f32)>> = vec![Vec::new(); ranges];
                for i in w[0]..w[1] {
                    let (cols, vals) = self.row(i);
                    for (&j, &v) in cols.iter().zip(vals) {
                        out[j as usize / width].push((j, i as u32, v));
                    }
                }
                out
            })
            .collect();
        let sizes: Vec<usize> = (0..ranges)
            .map(|r| buckets.iter().map(|b| b[r].len()).sum())
            .collect();
        let mut indptr = vec![0usize; n + 1];
        let mut indices = vec![0u32; self.nnz()];
        let mut data = vec![0f32; self.nnz()];
        // Each column range's share of the outputs, cut off in order.
        let mut shares = Vec::with_capacity(ranges);
        let (mut ptr, mut idx, mut val) = (&mut indptr[1..], &mut indices[..], &mut data[..]);
        let mut base = 0;
        for (r, &size) in sizes.iter().enumerate() {
            let cols = (r * width..((r + 1) * width).min(n)).len();
            let (p, p_rest) = ptr.split_at_mut(cols);
            let (i, i_rest) = idx.split_at_mut(size);
            let (v, v_rest) = val.split_at_mut(size);
            shares.push((r, p, i, v, base));
            base += size;
            (ptr, idx, val) = (p_rest, i_rest, v_rest);
        }
        shares.into_par_iter().for_each(|(r, ptr, idx, val, base)| {
            let lo = r * width;
            // Entries per column, then each column's first slot (relative to the range).
            let mut at = vec![0usize; ptr.len() + 1];
            for b in &buckets {
                for &(j, _, _) in &b[r] {
                    at[j as usize - lo + 1] += 1;
                }
            }
            for c in 0..ptr.len() {
                at[c + 1] += at[c];
                ptr[c] = base + at[c + 1];
            }
            for b in &buckets {
                for &(j, i, v) in &b[r] {
                    let slot = &mut at[j as usize - lo];
                    idx[*slot] = i;
                    val[*slot] = v;
                    *slot += 1;
                }
            }
        });
        Graph {
            n,
            indptr,
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
    Graph::from_row_fn(n, |i, r| {
        let d = knn.row_distances(i);
        let (rho, sigma) = smooth_knn_dist(d, mean_all);
        r.extend(
            knn.row(i)
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
                }),
        );
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
    })
}

/// The fuzzy union W = P + Pᵀ − P∘Pᵀ (f32, as scipy evaluates it), zeros dropped.
pub fn fuzzy_union(p: &Graph) -> Graph {
    let t = p.transpose();
    Graph::from_row_fn(p.n, |i, out| {
        let (ca, va) = p.row(i);
        let (cb, vb) = t.row(i);
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
    })
}

/// scanpy's `connectivities` of a kNN graph: [`fuzzy_union`] of [`memberships`].
pub fn connectivities(knn: &Knn) -> Graph {
    fuzzy_union(&memberships(knn))
}

/// scanpy's `distances`: the k−1 non-self neighbours of each cell (sorted by distance, as
/// scanpy stores them), as a CSR graph.
pub fn distance_graph(knn: &Knn) -> Graph {
    Graph::from_row_fn(knn.len(), |i, out| {
        let row = knn.row(i).iter().zip(knn.row_distances(i));
        out.extend(row.filter(|e| *e.0 as usize != i).map(|(&j, &d)| (j, d)));
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Rows of distinct sorted columns, some empty, over several assembly tasks.
    fn random_rows(n: usize, seed: u64) -> Vec<Vec<(u32, f32)>> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                if i % 11 == 5 {
                    return Vec::new();
                }
                let mut r: Vec<(u32, f32)> = (0..rng.random_range(1..20))
                    .map(|_| (rng.random_range(0..n as u32), rng.random_range(0.0..1.0)))
                    .collect();
                r.sort_by_key(|e| e.0);
                r.dedup_by_key(|e| e.0);
                r
            })
            .collect()
    }

    #[test]
    fn parallel_assembly_and_transpose_equal_serial_ones() {
        let n = 3 * ROWS_PER_TASK + 5;
        let rows = random_rows(n, 9);
        let g = Graph::from_rows(rows.clone());
        assert_eq!(Graph::from_row_fn(n, |i, r| r.extend(&rows[i])), g);
        // The transpose by a serial scatter, rows in increasing order.
        let mut t_rows: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n];
        for (i, r) in rows.iter().enumerate() {
            for &(j, v) in r {
                t_rows[j as usize].push((i as u32, v));
            }
        }
        let t = g.transpose();
        assert_eq!(t, Graph::from_rows(t_rows));
        assert_eq!(t.transpose(), g);
    }
}
