//! `highly_variable_genes` from per-gene moments, as scanpy 1.11 computes it: flavors `seurat`
//! (default), `cell_ranger` and `seurat_v3`, with `n_top_genes`.
//!
//! The moments come from the streaming passes (see [`crate::ops::preprocess`]); this module is the
//! per-gene arithmetic after them: dispersions, pandas' binning (`pd.cut`), per-bin
//! normalization, the loess fit of seurat_v3 and scanpy's tie rules.

use std::str::FromStr;

use crate::error::{Error, Result};
use crate::ops::loess::loess_fitted;

/// Which `highly_variable_genes` flavor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flavor {
    /// Dispersion of normalized counts, log-mean bins, z-scored per bin (scanpy's default).
    #[default]
    Seurat,
    /// Dispersion of log-normalized data, percentile bins, median/MAD-normalized per bin.
    CellRanger,
    /// Variance of raw counts standardized by a loess fit of log-variance on log-mean.
    SeuratV3,
}

impl Flavor {
    /// scanpy's name for the flavor.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Seurat => "seurat",
            Flavor::CellRanger => "cell_ranger",
            Flavor::SeuratV3 => "seurat_v3",
        }
    }
}

impl FromStr for Flavor {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "seurat" => Ok(Flavor::Seurat),
            "cell_ranger" => Ok(Flavor::CellRanger),
            "seurat_v3" => Ok(Flavor::SeuratV3),
            _ => Err(Error::InvalidArgument(format!(
                "flavor {s:?}: expected seurat, cell_ranger or seurat_v3"
            ))),
        }
    }
}

/// Per-gene statistics of one flavor, as scanpy stores them in `var`.
#[derive(Clone, Debug, PartialEq)]
pub enum HvgStats {
    /// `seurat` and `cell_ranger`: `means`, `dispersions` (f64), `dispersions_norm` (f32).
    Dispersion {
        /// Mean (log1p of the mean for seurat).
        means: Vec<f64>,
        /// Dispersion (log for seurat; NaN where undefined).
        dispersions: Vec<f64>,
        /// Normalized dispersion, f64 as used for selection (stored as f32).
        dispersions_norm: Vec<f64>,
    },
    /// `seurat_v3`: `means`, `variances`, `variances_norm` (f64) and `highly_variable_rank`
    /// (f32, NaN outside the top genes).
    SeuratV3 {
        /// Mean of raw counts.
        means: Vec<f64>,
        /// Variance of raw counts (ddof = 1).
        variances: Vec<f64>,
        /// Variance of clipped, standardized counts.
        variances_norm: Vec<f64>,
        /// Rank by `variances_norm` (0 = most variable); NaN when not in the top genes.
        highly_variable_rank: Vec<f32>,
    },
}

/// The result of `highly_variable_genes` on one plate.
#[derive(Clone, Debug, PartialEq)]
pub struct HvgTable {
    /// Flavor used.
    pub flavor: Flavor,
    /// Per-gene statistics.
    pub stats: HvgStats,
    /// The `highly_variable` column.
    pub highly_variable: Vec<bool>,
}

impl HvgTable {
    /// Number of genes.
    pub fn len(&self) -> usize {
        self.highly_variable.len()
    }

    /// True when there are no genes.
    pub fn is_empty(&self) -> bool {
        self.highly_variable.is_empty()
    }

    /// Genes flagged highly variable.
    pub fn n_highly_variable(&self) -> usize {
        self.highly_variable.iter().filter(|&&h| h).count()
    }
}

/// Kahan-summed mean, as pandas' groupby mean computes it.
fn kahan_mean(v: &[f64]) -> f64 {
    let (mut sum, mut comp) = (0.0f64, 0.0f64);
    for &x in v {
        let y = x - comp;
        let t = sum + y;
        comp = (t - sum) - y;
        sum = t;
    }
    sum / v.len() as f64
}

/// Sample standard deviation (ddof = 1) by Welford's update, as pandas' groupby std; NaN for
/// fewer than two values.
fn welford_std(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return f64::NAN;
    }
    let (mut mean, mut m2) = (0.0f64, 0.0f64);
    for (k, &x) in v.iter().enumerate() {
        let delta = x - mean;
        mean += delta / (k + 1) as f64;
        m2 += delta * (x - mean);
    }
    (m2 / (v.len() - 1) as f64).sqrt()
}

/// numpy's median (mean of the two middle values); NaN when empty or when any value is NaN.
fn np_median(v: &[f64]) -> f64 {
    if v.is_empty() || v.iter().any(|x| x.is_nan()) {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// `np.percentile(values, q)` with the default linear method.
fn np_percentile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let virtual_index = (n - 1) as f64 * (q / 100.0);
    let prev = virtual_index.floor();
    let gamma = virtual_index - prev;
    let lo = (prev as usize).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    let (a, b) = (sorted[lo], sorted[hi]);
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

/// Bin of `x` for right-closed bins with these ascending edges (pandas'
/// `searchsorted(side='left') - 1`); `None` (pandas' NaN bin) when `x` is NaN or outside
/// (edges[0], edges[last]].
fn right_closed_bin(edges: &[f64], x: f64) -> Option<usize> {
    if x.is_nan() {
        return None;
    }
    let k = edges.partition_point(|&e| e < x);
    (k >= 1 && k < edges.len()).then(|| k - 1)
}

/// `pd.cut(values, n_bins)` bin edges: equal-width over [min, max] of the finite values, the
/// first edge lowered by 0.1% of the range (both ends widened by 0.1% when all values are equal);
/// empty when no value is finite.
fn equal_width_edges(values: &[f64], n_bins: usize) -> Vec<f64> {
    let finite = values.iter().copied().filter(|x| x.is_finite());
    let mut mn = finite.clone().fold(f64::INFINITY, f64::min);
    let mut mx = finite.fold(f64::NEG_INFINITY, f64::max);
    if mn > mx {
        return Vec::new();
    }
    let linspace = |a: f64, b: f64| -> Vec<f64> {
        let step = (b - a) / n_bins as f64;
        let mut e: Vec<f64> = (0..=n_bins).map(|i| i as f64 * step + a).collect();
        e[n_bins] = b;
        e
    };
    if mn == mx {
        mn -= if mn != 0.0 { 0.001 * mn.abs() } else { 0.001 };
        mx += if mx != 0.0 { 0.001 * mx.abs() } else { 0.001 };
        linspace(mn, mx)
    } else {
        let mut e = linspace(mn, mx);
        e[0] -= (mx - mn) * 0.001;
        e
    }
}

/// `_subset_genes` with `n_top_genes`: the n-th highest non-NaN normalized dispersion is the
/// cutoff, every gene at or above it is selected (ties can add genes), NaN never is.
fn select_top(norm: &[f64], n_top: usize) -> Vec<bool> {
    let n_top = n_top.min(norm.len());
    let mut finite: Vec<f64> = norm.iter().copied().filter(|x| !x.is_nan()).collect();
    let n = n_top.min(finite.len());
    if n == 0 {
        return vec![false; norm.len()];
    }
    finite.sort_by(|a, b| b.total_cmp(a));
    let cutoff = finite[n - 1];
    norm.iter().map(|&x| !x.is_nan() && x >= cutoff).collect()
}

/// `seurat` / `cell_ranger` highly variable genes from per-gene mean and variance (ddof = 1).
///
/// For `seurat` the moments are those of the normalized counts (expm1 of the log data); for
/// `cell_ranger` those of the log-normalized data.
pub fn dispersion_hvg(
    flavor: Flavor,
    mean: &[f64],
    var: &[f64],
    n_top_genes: usize,
    n_bins: usize,
) -> Result<HvgTable> {
    assert_eq!(mean.len(), var.len(), "dispersion_hvg: lengths");
    if mean.is_empty() {
        return Err(Error::InvalidArgument(
            "highly_variable_genes: no genes".into(),
        ));
    }
    let g = mean.len();
    let mut means = Vec::with_capacity(g);
    let mut disp = Vec::with_capacity(g);
    for (&m, &v) in mean.iter().zip(var) {
        let m = if m == 0.0 { 1e-12 } else { m };
        let d = v / m;
        match flavor {
            Flavor::Seurat => {
                disp.push(if d == 0.0 { f64::NAN } else { d.ln() });
                means.push(m.ln_1p());
            }
            Flavor::CellRanger => {
                disp.push(d);
                means.push(m);
            }
            Flavor::SeuratV3 => unreachable!("seurat_v3 has its own path"),
        }
    }
    let (bins, n_groups) = match flavor {
        Flavor::Seurat => {
            let edges = equal_width_edges(&means, n_bins);
            let b: Vec<Option<usize>> =
                means.iter().map(|&x| right_closed_bin(&edges, x)).collect();
            (b, n_bins)
        }
        _ => {
            let mut sorted: Vec<f64> = means.iter().copied().filter(|x| !x.is_nan()).collect();
            if sorted.is_empty() {
                return Err(Error::InvalidArgument(
                    "highly_variable_genes: every gene's mean is NaN".into(),
                ));
            }
            sorted.sort_by(f64::total_cmp);
            let mut edges = vec![f64::NEG_INFINITY];
            edges.extend(
                (10..=100)
                    .step_by(5)
                    .map(|q| np_percentile(&sorted, q as f64)),
            );
            edges.push(f64::INFINITY);
            if edges.windows(2).any(|w| w[0] == w[1]) {
                return Err(Error::InvalidArgument(
                    "highly_variable_genes(flavor=cell_ranger): the 10th..100th percentiles of \
                     gene means are not distinct (too many genes share a mean), so its bins are \
                     undefined (scanpy raises `Bin edges must be unique` here too); use flavor \
                     seurat or drop unexpressed genes"
                        .into(),
                ));
            }
            let b: Vec<Option<usize>> =
                means.iter().map(|&x| right_closed_bin(&edges, x)).collect();
            (b, edges.len() - 1)
        }
    };
    let mut members: Vec<Vec<f64>> = vec![Vec::new(); n_groups];
    for (j, b) in bins.iter().enumerate() {
        if let Some(m) = b.and_then(|b| members.get_mut(b)) {
            m.push(disp[j]);
        }
    }
    let stats: Vec<(f64, f64)> = members
        .iter()
        .map(|m| match flavor {
            Flavor::Seurat => {
                let ok: Vec<f64> = m.iter().copied().filter(|x| !x.is_nan()).collect();
                let avg = if ok.is_empty() {
                    f64::NAN
                } else {
                    kahan_mean(&ok)
                };
                let dev = welford_std(&ok);
                if dev.is_nan() {
                    // One gene in the bin: its normalized dispersion is set to 1.
                    (0.0, avg)
                } else {
                    (avg, dev)
                }
            }
            _ => {
                let ok: Vec<f64> = m.iter().copied().filter(|x| !x.is_nan()).collect();
                let med = np_median(&ok);
                let c = 0.674_489_750_196_081_7;
                let dev: Vec<f64> = m.iter().map(|x| (x - med).abs() / c).collect();
                (med, np_median(&dev))
            }
        })
        .collect();
    let norm: Vec<f64> = (0..g)
        .map(|j| match bins[j].and_then(|b| stats.get(b)) {
            Some(&(avg, dev)) => (disp[j] - avg) / dev,
            // A gene outside every bin (NaN or infinite mean) has no normalized dispersion.
            None => f64::NAN,
        })
        .collect();
    let highly_variable = select_top(&norm, n_top_genes);
    Ok(HvgTable {
        flavor,
        stats: HvgStats::Dispersion {
            means,
            dispersions: disp,
            dispersions_norm: norm,
        },
        highly_variable,
    })
}

/// The first half of seurat_v3: the loess fit of log10 variance on log10 mean over genes with
/// positive variance, giving each gene's regularized standard deviation σ and its clip value
/// σ·√n + mean. Returns `(reg_std, clip)`.
pub fn seurat_v3_clip(
    mean: &[f64],
    var: &[f64],
    n_cells: u64,
    span: f64,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let keep: Vec<usize> = (0..var.len()).filter(|&j| var[j] > 0.0).collect();
    let x: Vec<f64> = keep.iter().map(|&j| mean[j].log10()).collect();
    let y: Vec<f64> = keep.iter().map(|&j| var[j].log10()).collect();
    let fitted = loess_fitted(&x, &y, span, 2).map_err(|e| {
        Error::InvalidArgument(format!(
            "highly_variable_genes(flavor=seurat_v3): loess fit over {} genes with non-zero \
             variance failed: {e}",
            keep.len()
        ))
    })?;
    let mut estimate = vec![0.0f64; var.len()];
    for (&j, f) in keep.iter().zip(fitted) {
        estimate[j] = f;
    }
    let reg_std: Vec<f64> = estimate.iter().map(|e| 10f64.powf(*e).sqrt()).collect();
    let vmax = (n_cells as f64).sqrt();
    let clip = reg_std
        .iter()
        .zip(mean)
        .map(|(s, m)| s * vmax + m)
        .collect();
    Ok((reg_std, clip))
}

/// The second half of seurat_v3: normalized variances from Σ min(x, clip) and Σ min(x, clip)²,
/// ranks, and the top `n_top_genes` (ties broken by gene order).
pub fn seurat_v3_hvg(
    mean: &[f64],
    var: &[f64],
    reg_std: &[f64],
    clipped_sum: &[f64],
    clipped_sumsq: &[f64],
    n_cells: u64,
    n_top_genes: usize,
) -> HvgTable {
    let n = n_cells as f64;
    let g = mean.len();
    let norm: Vec<f64> = (0..g)
        .map(|j| {
            let m = mean[j];
            (1.0 / ((n - 1.0) * reg_std[j] * reg_std[j]))
                * ((n * m * m) + clipped_sumsq[j] - 2.0 * clipped_sum[j] * m)
        })
        .collect();
    let mut order: Vec<usize> = (0..g).collect();
    order.sort_by(|&a, &b| norm[b].total_cmp(&norm[a]).then(a.cmp(&b)));
    let n_top = n_top_genes.min(g);
    let mut rank = vec![f32::NAN; g];
    let mut highly_variable = vec![false; g];
    for (r, &j) in order.iter().enumerate().take(n_top) {
        rank[j] = r as f32;
        highly_variable[j] = true;
    }
    HvgTable {
        flavor: Flavor::SeuratV3,
        stats: HvgStats::SeuratV3 {
            means: mean.to_vec(),
            variances: var.to_vec(),
            variances_norm: norm,
            highly_variable_rank: rank,
        },
        highly_variable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_numpys_linear_method() {
        let s = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(np_percentile(&s, 100.0), 8.0);
        assert_eq!(np_percentile(&s, 50.0), 3.0);
        assert!((np_percentile(&s, 10.0) - 1.3).abs() < 1e-15);
    }

    #[test]
    fn right_closed_bins_put_edges_in_the_lower_bin() {
        let e = [0.0, 1.0, 2.0, 3.0];
        assert_eq!(right_closed_bin(&e, 0.5), Some(0));
        assert_eq!(right_closed_bin(&e, 1.0), Some(0));
        assert_eq!(right_closed_bin(&e, 1.0001), Some(1));
        assert_eq!(right_closed_bin(&e, 3.0), Some(2));
        assert_eq!(right_closed_bin(&e, 0.0), None);
        assert_eq!(right_closed_bin(&e, 3.5), None);
        assert_eq!(right_closed_bin(&e, f64::NAN), None);
    }

    #[test]
    fn ties_at_the_cutoff_are_all_selected_and_nan_never() {
        let hv = select_top(&[1.0, 3.0, 2.0, 2.0, f64::NAN, 0.5], 3);
        assert_eq!(hv, vec![false, true, true, true, false, false]);
        let hv = select_top(&[f64::NAN, 1.0], 2);
        assert_eq!(hv, vec![false, true]);
    }

    #[test]
    fn single_gene_bins_get_normalized_dispersion_one() {
        // Gene 3's mean is far from the rest: alone in its bin.
        let mean = [1.0, 1.1, 1.2, 50.0];
        let var = [2.0, 2.5, 2.2, 400.0];
        let t = dispersion_hvg(Flavor::Seurat, &mean, &var, 2, 20).unwrap();
        let HvgStats::Dispersion {
            dispersions_norm, ..
        } = &t.stats
        else {
            panic!()
        };
        assert!((dispersions_norm[3] - 1.0).abs() < 1e-15);
    }

    #[test]
    fn any_float_moments_give_a_table_not_a_panic() {
        let odd = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            0.0,
            1.0,
            2.5,
            1e300,
        ];
        for flavor in [Flavor::Seurat, Flavor::CellRanger] {
            for &a in &odd {
                for &b in &odd {
                    let mean = [a, 1.0, 2.0, b, 3.0];
                    let var = [b, 0.5, a, 1.0, 2.0];
                    if let Ok(t) = dispersion_hvg(flavor, &mean, &var, 2, 20) {
                        assert_eq!(t.len(), 5);
                    }
                }
            }
            let nan = [f64::NAN; 3];
            if let Ok(t) = dispersion_hvg(flavor, &nan, &nan, 2, 20) {
                assert_eq!(t.n_highly_variable(), 0);
            }
        }
        for &a in &odd {
            let mean: Vec<f64> = (0..40)
                .map(|j| if j == 7 { a } else { 1.0 + j as f64 })
                .collect();
            let var: Vec<f64> = (0..40)
                .map(|j| if j == 9 { a } else { 2.0 + j as f64 })
                .collect();
            let _ = seurat_v3_clip(&mean, &var, 10, 0.3);
        }
        let n = [f64::NAN, 1.0, f64::INFINITY];
        let t = seurat_v3_hvg(&n, &n, &n, &n, &n, 10, 2);
        assert_eq!(t.n_highly_variable(), 2);
    }
}
