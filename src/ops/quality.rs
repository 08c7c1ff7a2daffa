//! Layout quality measures, as scikit-learn defines them: how well an embedding keeps each
//! cell's neighbourhood (`trustworthiness`) and separates labelled groups (`silhouette`). Used
//! by the tests and benchmarks that judge scoop's UMAP against umap-learn's.

use rayon::prelude::*;

use crate::backend::points::sq_dist_f64;
use crate::backend::Points;

/// sklearn's `trustworthiness(X, X_embedded, n_neighbors=k)`: 1 − 2/(n k (2n − 3k − 1)) ·
/// Σᵢ Σ_{j among i's k embedded neighbours} max(0, r(i, j) − k), where r(i, j) is j's rank
/// among i's neighbours in the original space. O(n² log n): for test-sized data and samples.
pub fn trustworthiness(original: Points<'_>, embedded: Points<'_>, k: usize) -> f64 {
    let n = original.len();
    assert_eq!(n, embedded.len(), "trustworthiness: point counts differ");
    assert!(
        k >= 1 && 2 * n > 3 * k + 1,
        "trustworthiness: k = {k} too large for n = {n}"
    );
    let penalty: f64 = (0..n)
        .into_par_iter()
        .map(|i| {
            let ranked = |p: Points<'_>| -> Vec<usize> {
                let mut d: Vec<(f64, usize)> = (0..n)
                    .filter(|&j| j != i)
                    .map(|j| (sq_dist_f64(p.row(i), p.row(j)), j))
                    .collect();
                d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                d.into_iter().map(|x| x.1).collect()
            };
            let mut rank = vec![0usize; n];
            for (r, j) in ranked(original).into_iter().enumerate() {
                rank[j] = r + 1;
            }
            ranked(embedded)[..k]
                .iter()
                .map(|&j| rank[j].saturating_sub(k) as f64)
                .sum::<f64>()
        })
        .sum();
    let (n, k) = (n as f64, k as f64);
    1.0 - penalty * 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))
}

/// sklearn's `silhouette_score(X, labels)` (Euclidean): the mean over cells of
/// (b − a) / max(a, b), with a the mean distance to the cell's own group and b the smallest mean
/// distance to another group; cells alone in their group score 0.
pub fn silhouette(points: Points<'_>, labels: &[u32]) -> f64 {
    let n = points.len();
    assert_eq!(labels.len(), n, "silhouette: one label per point");
    let n_groups = labels.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut size = vec![0usize; n_groups];
    for &l in labels {
        size[l as usize] += 1;
    }
    let total: f64 = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut sum = vec![0f64; n_groups];
            for j in 0..n {
                sum[labels[j] as usize] += sq_dist_f64(points.row(i), points.row(j)).sqrt();
            }
            let own = labels[i] as usize;
            if size[own] <= 1 {
                return 0.0;
            }
            let a = sum[own] / (size[own] - 1) as f64;
            let b = (0..n_groups)
                .filter(|&g| g != own && size[g] > 0)
                .map(|g| sum[g] / size[g] as f64)
                .fold(f64::INFINITY, f64::min);
            if !b.is_finite() {
                return 0.0;
            }
            (b - a) / a.max(b)
        })
        .sum();
    total / n as f64
}
