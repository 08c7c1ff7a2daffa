//! UMAP layout of a connectivities graph, as umap-learn's `simplicial_set_embedding` (what
//! scanpy's `tl.umap` calls): the a/b curve fit, edge pruning and sampling rates, spectral
//! initialization (per component), then the backend's SGD epochs.

use faer::Mat;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

use super::eigen::{top_eigen, EigenSolver};
use super::fuzzy::Graph;
use super::knn::nearest_others;
use super::spectral::{components, laplacian_eigenvectors, SpectralReport};
use crate::backend::{Backend, EdgeList, LayoutParams, Points, MAX_LAYOUT_DIM};
use crate::error::{Error, Result};

/// a, b of the curve 1 / (1 + a·x^(2b)) fitted (least squares, Levenberg–Marquardt from
/// a = b = 1, as scipy's `curve_fit`) to 1 below `min_dist` and exp(−(x − min_dist)/spread)
/// above, on 300 points of [0, 3·spread].
pub fn find_ab_params(spread: f64, min_dist: f64) -> (f64, f64) {
    let xs: Vec<f64> = (0..300).map(|i| 3.0 * spread * i as f64 / 299.0).collect();
    let ys: Vec<f64> = xs
        .iter()
        .map(|&x| {
            if x < min_dist {
                1.0
            } else {
                (-(x - min_dist) / spread).exp()
            }
        })
        .collect();
    let cost = |a: f64, b: f64| -> f64 {
        xs.iter()
            .zip(&ys)
            .map(|(&x, &y)| (1.0 / (1.0 + a * x.powf(2.0 * b)) - y).powi(2))
            .sum()
    };
    let (mut a, mut b) = (1.0f64, 1.0f64);
    let mut lambda = 1e-3;
    let mut c = cost(a, b);
    for _ in 0..500 {
        // Normal equations JᵀJ δ = −Jᵀr of the residuals r = f − y.
        let (mut jaa, mut jab, mut jbb, mut ga, mut gb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&x, &y) in xs.iter().zip(&ys) {
            let p = if x > 0.0 { x.powf(2.0 * b) } else { 0.0 };
            let f = 1.0 / (1.0 + a * p);
            let r = f - y;
            let da = -p * f * f;
            let db = if x > 0.0 {
                -a * p * 2.0 * x.ln() * f * f
            } else {
                0.0
            };
            jaa += da * da;
            jab += da * db;
            jbb += db * db;
            ga += da * r;
            gb += db * r;
        }
        let mut improved = false;
        for _ in 0..30 {
            let (m11, m22) = (jaa * (1.0 + lambda), jbb * (1.0 + lambda));
            let det = m11 * m22 - jab * jab;
            if det.abs() < 1e-300 {
                lambda *= 10.0;
                continue;
            }
            let da = -(m22 * ga - jab * gb) / det;
            let db = -(m11 * gb - jab * ga) / det;
            let c_new = cost(a + da, b + db);
            if c_new < c {
                let rel = (c - c_new) / c.max(1e-300);
                a += da;
                b += db;
                c = c_new;
                lambda = (lambda / 10.0).max(1e-12);
                improved = rel > 1e-15;
                break;
            }
            lambda *= 10.0;
        }
        if !improved {
            break;
        }
    }
    (a, b)
}

/// umap-learn's default epochs: 500 up to 10,000 cells, 200 above.
pub fn default_epochs(n: usize) -> usize {
    if n <= 10_000 {
        500
    } else {
        200
    }
}

/// Where the layout starts (scanpy's `init_pos`).
#[derive(Clone, Copy, Debug, Default)]
pub enum Start<'a> {
    /// umap's spectral initialization (`spectral_init`).
    #[default]
    Spectral,
    /// Uniform in [−10, 10] per coordinate, as umap's `init="random"`.
    Random,
    /// Given coordinates, n x dim row-major (scanpy's `init_pos` naming an obsm array): used as
    /// they are, with umap's noise of 0.001 x the mean nearest-neighbour distance where rows
    /// repeat.
    Given(&'a [f32]),
}

/// UMAP settings (scanpy's `tl.umap` defaults).
#[derive(Clone, Copy, Debug)]
pub struct UmapOptions {
    /// Effective minimum distance of embedded points.
    pub min_dist: f64,
    /// Scale of embedded points.
    pub spread: f64,
    /// Epochs; `None` = [`default_epochs`].
    pub n_epochs: Option<usize>,
    /// Embedding dimensions.
    pub dim: usize,
    /// Seed (initialization noise and negative sampling).
    pub seed: u64,
    /// Negative samples per positive one.
    pub negative_sample_rate: f64,
    /// Repulsion strength.
    pub gamma: f64,
}

impl Default for UmapOptions {
    fn default() -> Self {
        UmapOptions {
            min_dist: 0.5,
            spread: 1.0,
            n_epochs: None,
            dim: 2,
            seed: 0,
            negative_sample_rate: 5.0,
            gamma: 1.0,
        }
    }
}

impl UmapOptions {
    /// Refuses options no layout can run with (checked before any data is read).
    pub fn check(&self) -> Result<()> {
        let dim = self.dim;
        if !(1..=MAX_LAYOUT_DIM).contains(&dim) {
            return Err(Error::InvalidArgument(format!(
                "--n-components {dim}: expected 1 to {MAX_LAYOUT_DIM}"
            )));
        }
        let valid = self.spread > 0.0 && self.min_dist >= 0.0 && self.min_dist <= self.spread;
        if !valid {
            return Err(Error::InvalidArgument(format!(
                "--min-dist {} and --spread {}: need 0 ≤ min-dist ≤ spread, spread > 0",
                self.min_dist, self.spread
            )));
        }
        if !(self.negative_sample_rate > 0.0 && self.negative_sample_rate <= 1e6) {
            return Err(Error::InvalidArgument(format!(
                "--negative-sample-rate {}: expected more than 0, at most 1e6",
                self.negative_sample_rate
            )));
        }
        if !(self.gamma >= 0.0 && self.gamma.is_finite()) {
            return Err(Error::InvalidArgument(format!(
                "--gamma {}: expected a finite value ≥ 0",
                self.gamma
            )));
        }
        if self.n_epochs == Some(0) {
            return Err(Error::InvalidArgument(
                "--n-epochs must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// How the layout was started.
#[derive(Clone, Debug)]
pub enum Init {
    /// Spectral, per component: components found, and the worst eigen solve.
    Spectral {
        /// Connected components of the pruned graph.
        components: usize,
        /// How the components were placed relative to each other.
        placement: Placement,
        /// Largest residual and most rounds over the components solved.
        worst: Option<SpectralReport>,
        /// Seconds of the graph products, all components together.
        product_seconds: f64,
    },
    /// Uniform random in [−10, 10] (the spectral solve failed; the reason).
    Random(String),
    /// Uniform random in [−10, 10], as asked ([`Start::Random`]).
    Uniform,
    /// The coordinates given ([`Start::Given`]); `jittered` when rows repeated and got noise.
    Given {
        /// Whether noise was added (some rows repeated).
        jittered: bool,
    },
}

/// How umap's `multi_component_layout` placed a graph's components relative to each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// One component: nothing to place.
    Single,
    /// Up to 2·dim components: at ±unit vectors.
    UnitVectors,
    /// By a spectral embedding of their centroids in the source data.
    Centroids,
    /// At random (more than 2·dim components and no source data).
    Random,
    /// On a grid (more components than umap's layout takes in reasonable time and memory).
    Grid,
}

/// A finished layout.
#[derive(Clone, Debug)]
pub struct Umap {
    /// n x dim, row-major.
    pub embedding: Vec<f32>,
    /// Dimensions.
    pub dim: usize,
    /// Curve parameters.
    pub a: f64,
    /// Curve parameters.
    pub b: f64,
    /// Epochs run.
    pub n_epochs: usize,
    /// Directed edges sampled (after pruning).
    pub n_edges: usize,
    /// The initialization used.
    pub init: Init,
    /// Seconds in the initialization and in the SGD epochs.
    pub seconds: (f64, f64),
}

/// The graph's largest weight (0 for an empty graph).
pub fn max_weight(g: &Graph) -> f32 {
    g.data.par_iter().copied().reduce(|| 0f32, f32::max)
}

/// Edges of the symmetric graph with weight ≥ w_max / n_epochs (`w_max` its
/// [`max_weight`]), with their sampling periods w_max / w (umap's `make_epochs_per_sample`),
/// grouped by head in row order.
pub fn edge_list(g: &Graph, w_max: f32, n_epochs: usize) -> EdgeList {
    let cut = w_max / n_epochs as f32;
    let keep = |w: f32| w >= cut && w > 0.0;
    let counts: Vec<usize> = (0..g.n)
        .into_par_iter()
        .map(|i| g.row(i).1.iter().filter(|&&w| keep(w)).count())
        .collect();
    fill_rows(&counts, |i, head, tail, eps| {
        let (cols, vals) = g.row(i);
        let kept = cols.iter().zip(vals).filter(|e| keep(*e.1));
        for (t, (&j, &w)) in kept.enumerate() {
            head[t] = i as u32;
            tail[t] = j;
            eps[t] = w_max / w;
        }
    })
}

/// Rows per task of [`fill_rows`].
const FILL_ROWS_PER_TASK: usize = 4096;

/// An edge list of `counts[r]` edges per row `r`, rows in order, each row's edges written by
/// `fill(r, head, tail, epochs_per_sample)` into slices of that length; rows in parallel.
fn fill_rows(
    counts: &[usize],
    fill: impl Fn(usize, &mut [u32], &mut [u32], &mut [f32]) + Sync,
) -> EdgeList {
    let mut offsets = Vec::with_capacity(counts.len() + 1);
    offsets.push(0usize);
    for &c in counts {
        offsets.push(offsets.last().unwrap() + c);
    }
    let m = offsets[counts.len()];
    let mut e = EdgeList {
        head: vec![0; m],
        tail: vec![0; m],
        epochs_per_sample: vec![0.0; m],
    };
    // Each task's stretch of the three arrays, split off in row order.
    let mut tasks = Vec::with_capacity(counts.len().div_ceil(FILL_ROWS_PER_TASK));
    let (mut head, mut tail, mut eps) = (
        &mut e.head[..],
        &mut e.tail[..],
        &mut e.epochs_per_sample[..],
    );
    for r0 in (0..counts.len()).step_by(FILL_ROWS_PER_TASK) {
        let r1 = (r0 + FILL_ROWS_PER_TASK).min(counts.len());
        let len = offsets[r1] - offsets[r0];
        let (h, h_rest) = std::mem::take(&mut head).split_at_mut(len);
        let (t, t_rest) = std::mem::take(&mut tail).split_at_mut(len);
        let (p, p_rest) = std::mem::take(&mut eps).split_at_mut(len);
        (head, tail, eps) = (h_rest, t_rest, p_rest);
        tasks.push((r0..r1, h, t, p));
    }
    tasks.into_par_iter().for_each(|(rows, h, t, p)| {
        let base = offsets[rows.start];
        for r in rows {
            let at = offsets[r] - base..offsets[r + 1] - base;
            fill(r, &mut h[at.clone()], &mut t[at.clone()], &mut p[at]);
        }
    });
    e
}

/// The points ordered along a Z-order (Morton) curve of their first two coordinates (ties by
/// index): points close in the plane come close in the order.
fn z_order(embedding: &[f32], dim: usize) -> Vec<u32> {
    let n = embedding.len() / dim;
    let axes = dim.min(2);
    let mut range = [(f32::INFINITY, f32::NEG_INFINITY); 2];
    for row in embedding.chunks_exact(dim) {
        for (r, &v) in range.iter_mut().zip(&row[..axes]) {
            *r = (r.0.min(v), r.1.max(v));
        }
    }
    // Spreads the 16 bits of v to the even bits of a u32.
    let spread = |v: u32| {
        let mut x = v & 0xFFFF;
        x = (x | (x << 8)) & 0x00FF_00FF;
        x = (x | (x << 4)) & 0x0F0F_0F0F;
        x = (x | (x << 2)) & 0x3333_3333;
        (x | (x << 1)) & 0x5555_5555
    };
    let mut keyed: Vec<(u32, u32)> = embedding
        .par_chunks_exact(dim)
        .enumerate()
        .map(|(i, row)| {
            let mut code = 0u32;
            for (a, (&v, &(lo, hi))) in row[..axes].iter().zip(&range).enumerate() {
                let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
                code |= spread((t * 65535.0) as u32) << a;
            }
            (code, i as u32)
        })
        .collect();
    keyed.par_sort_unstable();
    debug_assert_eq!(keyed.len(), n);
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// The layout problem with point `order[pos]` renumbered `pos`: the embedding's rows moved, and
/// the edges renamed and regrouped by their new head (each head's edges in their old order);
/// `start` is [`head_offsets`] of `edges`.
fn renumbered(
    embedding: &[f32],
    dim: usize,
    edges: &EdgeList,
    start: &[usize],
    order: &[u32],
) -> (Vec<f32>, EdgeList) {
    let n = order.len();
    let mut rank = vec![0u32; n];
    for (pos, &p) in order.iter().enumerate() {
        rank[p as usize] = pos as u32;
    }
    let counts: Vec<usize> = order
        .par_iter()
        .map(|&p| start[p as usize + 1] - start[p as usize])
        .collect();
    let out = fill_rows(&counts, |pos, head, tail, eps| {
        let from = start[order[pos] as usize]..start[order[pos] as usize + 1];
        head.fill(pos as u32);
        for (t, e) in from.enumerate() {
            tail[t] = rank[edges.tail[e] as usize];
            eps[t] = edges.epochs_per_sample[e];
        }
    });
    let mut local = vec![0f32; embedding.len()];
    local
        .par_chunks_mut(dim)
        .zip(order.par_iter())
        .for_each(|(row, &p)| row.copy_from_slice(&embedding[p as usize * dim..][..dim]));
    (local, out)
}

/// Where each head's edges start in `edges` (grouped by head in increasing order, as
/// `edge_list` makes them), for the `n` points: a CSR row pointer, a block of rows per task
/// (one binary search for the block's first edge, then a walk).
fn head_offsets(edges: &EdgeList, n: usize) -> Vec<usize> {
    debug_assert!(edges.head.windows(2).all(|w| w[0] <= w[1]));
    let heads = &edges.head;
    let mut start = vec![0usize; n + 1];
    start
        .par_chunks_mut(FILL_ROWS_PER_TASK)
        .enumerate()
        .for_each(|(b, out)| {
            let r0 = b * FILL_ROWS_PER_TASK;
            let mut e = heads.partition_point(|&h| (h as usize) < r0);
            for (r, s) in (r0..).zip(out) {
                while e < heads.len() && (heads[e] as usize) < r {
                    e += 1;
                }
                *s = e;
            }
        });
    start
}

/// The graph restricted to `edges` (what the initialization sees), `start` their
/// [`head_offsets`].
fn pruned(g: &Graph, edges: &EdgeList, start: Vec<usize>, w_max: f32) -> Graph {
    Graph {
        n: g.n,
        indptr: start,
        indices: edges.tail.clone(),
        data: edges
            .epochs_per_sample
            .par_iter()
            .map(|e| w_max / e)
            .collect(),
    }
}

/// The data a graph was built on (scanpy's representation, `X_pca`), as row-major f32 rows and
/// their width; `Ok(None)` where there is none. Read only when a layout needs component
/// centroids.
pub type SourceData<'a> = &'a dyn Fn() -> Result<Option<(Vec<f32>, usize)>>;

/// Spectral initialization as umap's `spectral_layout`: the Laplacian eigenvectors of a
/// connected graph; for several components, umap's `multi_component_layout`: each component
/// placed at its point of a meta-embedding ([`meta_embedding`]), within half the distance to
/// the nearest other one, as its own spectral layout scaled to that range (uniform random there
/// when it has fewer than 2·dim points or at most dim + 1).
///
/// Where the eigen solves fail, the start is uniform in [−10, 10] ([`Init::Random`], with the
/// reason); errors reading the source data, and the backend's errors (the graph products run
/// there), are returned.
fn spectral_init(
    g: &Graph,
    dim: usize,
    source: SourceData<'_>,
    rng: &mut rand::rngs::StdRng,
    backend: &dyn Backend,
) -> Result<(Vec<f64>, Init)> {
    let (label, n_comp) = components(g);
    let centroids = if n_comp > 2 * dim && n_comp <= META_MAX {
        component_centroids(&label, n_comp, source)?
    } else {
        None
    };
    Ok(
        match place_components(g, &label, n_comp, centroids.as_ref(), dim, rng, backend) {
            Ok(r) => r,
            Err(e @ Error::Backend(_)) => return Err(e),
            Err(e) => {
                let y = (0..g.n * dim)
                    .map(|_| rng.random_range(-10.0..10.0))
                    .collect();
                (y, Init::Random(e.to_string()))
            }
        },
    )
}

/// The centroids of the components (row-major, with their width) in the source data, or None
/// where there is none.
fn component_centroids(
    label: &[u32],
    n_comp: usize,
    source: SourceData<'_>,
) -> Result<Option<(Vec<f64>, usize)>> {
    let Some((data, width)) = source()? else {
        return Ok(None);
    };
    if width == 0 || data.len() != label.len() * width {
        return Err(Error::InvalidArgument(format!(
            "the source data has {} values, not {} rows of {width}",
            data.len(),
            label.len()
        )));
    }
    let mut centroids = vec![0f64; n_comp * width];
    let mut sizes = vec![0usize; n_comp];
    for (row, &c) in data.chunks_exact(width).zip(label) {
        sizes[c as usize] += 1;
        for (s, &v) in centroids[c as usize * width..][..width].iter_mut().zip(row) {
            *s += v as f64;
        }
    }
    for (c, &size) in sizes.iter().enumerate() {
        centroids[c * width..][..width]
            .iter_mut()
            .for_each(|s| *s /= size as f64);
    }
    Ok(Some((centroids, width)))
}

/// [`spectral_init`]'s layout of the components `label` (`centroids` in the source data where
/// there are more than 2·dim components and source data).
fn place_components(
    g: &Graph,
    label: &[u32],
    n_comp: usize,
    centroids: Option<&(Vec<f64>, usize)>,
    dim: usize,
    rng: &mut rand::rngs::StdRng,
    backend: &dyn Backend,
) -> Result<(Vec<f64>, Init)> {
    let n = g.n;
    if n_comp == 1 {
        let (vecs, report) = laplacian_eigenvectors(g, dim, rng.random(), backend)?;
        check_vectors(&vecs, dim, n)?;
        let y = (0..n * dim).map(|t| vecs[t % dim][t / dim]).collect();
        let init = Init::Spectral {
            components: 1,
            placement: Placement::Single,
            product_seconds: report.product_seconds,
            worst: Some(report),
        };
        return Ok((y, init));
    }
    let placement = match centroids {
        _ if n_comp <= 2 * dim => Placement::UnitVectors,
        _ if n_comp > META_MAX => Placement::Grid,
        Some(_) => Placement::Centroids,
        None => Placement::Random,
    };
    let meta = meta_embedding(placement, n_comp, dim, centroids, rng)?;
    let ranges = match placement {
        // Grid points one apart.
        Placement::Grid => vec![0.5; n_comp],
        _ => half_nearest(&meta, dim),
    };
    let mut y = vec![0f64; n * dim];
    let mut worst: Option<SpectralReport> = None;
    let mut product_seconds = 0.0;
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_comp];
    // Each vertex's position inside its component (components partition the vertices).
    let mut local = vec![0u32; n];
    for (i, &c) in label.iter().enumerate() {
        local[i] = members[c as usize].len() as u32;
        members[c as usize].push(i);
    }
    for (c, ids) in members.iter().enumerate() {
        let (centre, range) = (&meta[c * dim..(c + 1) * dim], ranges[c]);
        if ids.len() < 2 * dim || ids.len() <= dim + 1 {
            for &i in ids {
                for d in 0..dim {
                    y[i * dim + d] = centre[d] + rng.random_range(-range..range);
                }
            }
            continue;
        }
        let sub = subgraph(g, ids, &local);
        let (vecs, report) = laplacian_eigenvectors(&sub, dim, rng.random(), backend)?;
        check_vectors(&vecs, dim, ids.len())?;
        let max = vecs
            .iter()
            .flatten()
            .fold(0f64, |m, v| m.max(v.abs()))
            .max(1e-300);
        for (s, &i) in ids.iter().enumerate() {
            for d in 0..dim {
                y[i * dim + d] = centre[d] + range * vecs[d][s] / max;
            }
        }
        product_seconds += report.product_seconds;
        if worst.as_ref().is_none_or(|w| report.residual > w.residual) {
            worst = Some(report);
        }
    }
    Ok((
        y,
        Init::Spectral {
            components: n_comp,
            placement,
            worst,
            product_seconds,
        },
    ))
}

/// An error unless the eigen solve gave `dim` finite vectors (for a component of `size` cells).
fn check_vectors(vecs: &[Vec<f64>], dim: usize, size: usize) -> Result<()> {
    if vecs.len() < dim || vecs.iter().flatten().any(|v| !v.is_finite()) {
        return Err(Error::InvalidArgument(format!(
            "spectral initialization of a component of {size} cells produced no usable vectors"
        )));
    }
    Ok(())
}

/// Most components that umap's component layout places ([`Placement::Centroids`] and
/// [`Placement::Random`]): its centroid affinity is a dense `n_comp`² matrix, and each
/// component's range a distance to every other. Above, a grid (the pruning can leave every cell
/// a component of its own, with too few epochs for any edge to be sampled).
const META_MAX: usize = 4096;

/// Where umap's `multi_component_layout` puts each of `n_comp` components (row-major,
/// `n_comp` x `dim`), as `placement` says. [`Placement::UnitVectors`] (up to 2·dim components):
/// ±unit vectors (e₁, e₂, …, −e₁, −e₂, …). [`Placement::Centroids`]: umap's `component_layout`,
/// a spectral embedding (scikit-learn's `SpectralEmbedding` with a precomputed affinity) of the
/// components' `centroids` in the source data, affinity exp(−d²) between centroids, divided by
/// its largest entry. [`Placement::Random`] (no source data): uniform in [0, 10), as umap.
/// [`Placement::Grid`] (more than [`META_MAX`]): a square grid of unit spacing.
fn meta_embedding(
    placement: Placement,
    n_comp: usize,
    dim: usize,
    centroids: Option<&(Vec<f64>, usize)>,
    rng: &mut rand::rngs::StdRng,
) -> Result<Vec<f64>> {
    Ok(match (placement, centroids) {
        (Placement::UnitVectors, _) => {
            let k = n_comp.div_ceil(2);
            (0..n_comp * dim)
                .map(|t| {
                    let (c, d) = (t / dim, t % dim);
                    let sign = if c < k { 1.0 } else { -1.0 };
                    if c % k == d {
                        sign
                    } else {
                        0.0
                    }
                })
                .collect()
        }
        (Placement::Grid, _) => {
            let side = (n_comp as f64).sqrt().ceil() as usize;
            (0..n_comp * dim)
                .map(|t| match t % dim {
                    0 => ((t / dim) % side) as f64,
                    1 => ((t / dim) / side) as f64,
                    _ => 0.0,
                })
                .collect()
        }
        (Placement::Centroids, Some((points, width))) => centroid_embedding(points, *width, dim)?,
        _ => (0..n_comp * dim)
            .map(|_| rng.random_range(0.0..10.0))
            .collect(),
    })
}

/// Squared Euclidean distance of two f64 points.
fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

/// Half the distance from each of the `dim`-dimensional points `meta` to its nearest other
/// (1 where all coincide), as umap's `data_range`.
fn half_nearest(meta: &[f64], dim: usize) -> Vec<f64> {
    let m = meta.len() / dim;
    let row = |i: usize| &meta[i * dim..(i + 1) * dim];
    (0..m)
        .into_par_iter()
        .map(|c| {
            let nearest = (0..m)
                .map(|o| sq_dist(row(c), row(o)).sqrt())
                .filter(|&d| d > 0.0)
                .fold(f64::INFINITY, f64::min);
            if nearest.is_finite() {
                nearest / 2.0
            } else {
                1.0
            }
        })
        .collect()
}

/// scikit-learn's `SpectralEmbedding(n_components=dim, affinity='precomputed')` of the affinity
/// exp(−d²) between `points` (row-major, `width` columns), then divided by its largest entry (as
/// umap's `component_layout`): the eigenvectors of the normalized Laplacian (diagonal ignored,
/// as scipy's `laplacian`) with the 2nd to (dim+1)-th smallest eigenvalues, each divided by
/// √degree (1 for an isolated point) and signed so its largest |entry| is positive.
fn centroid_embedding(points: &[f64], width: usize, dim: usize) -> Result<Vec<f64>> {
    let m = points.len() / width;
    let row = |i: usize| &points[i * width..(i + 1) * width];
    let mut a = Mat::<f64>::from_fn(m, m, |i, j| {
        if i == j {
            return 0.0;
        }
        (-sq_dist(row(i), row(j))).exp()
    });
    let w: Vec<f64> = (0..m)
        .map(|j| {
            let deg: f64 = a.col(j).iter().sum();
            if deg > 0.0 {
                deg.sqrt()
            } else {
                1.0
            }
        })
        .collect();
    // L = I − D^(−½) A D^(−½): its smallest eigenvectors are the largest of D^(−½) A D^(−½)
    // (scaled in place: thousands of components, most of them cells the pruning cut off, are
    // possible).
    for j in 0..m {
        for i in 0..m {
            a[(i, j)] /= w[i] * w[j];
        }
    }
    let want = (dim + 1).min(m);
    let eig = top_eigen(a.as_ref(), want, EigenSolver::Auto)?;
    let mut out = vec![0f64; m * dim];
    for d in 0..dim.min(want.saturating_sub(1)) {
        let v: Vec<f64> = (0..m).map(|i| eig.vectors[(i, d + 1)] / w[i]).collect();
        let big = v
            .iter()
            .fold(0f64, |b, &x| if x.abs() > b.abs() { x } else { b });
        let sign = if big < 0.0 { -1.0 } else { 1.0 };
        for (i, x) in v.iter().enumerate() {
            out[i * dim + d] = sign * x;
        }
    }
    let max = out.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max > 0.0 {
        out.iter_mut().for_each(|x| *x /= max);
    }
    Ok(out)
}

/// The component `ids` of `g`; `local[v]` is v's position in its component's `ids`.
fn subgraph(g: &Graph, ids: &[usize], local: &[u32]) -> Graph {
    if ids.len() == g.n {
        return g.clone();
    }
    let mut indptr = Vec::with_capacity(ids.len() + 1);
    indptr.push(0);
    let (mut indices, mut data) = (Vec::new(), Vec::new());
    for &i in ids {
        let (cols, vals) = g.row(i);
        for (&j, &w) in cols.iter().zip(vals) {
            indices.push(local[j as usize]);
            data.push(w);
        }
        indptr.push(indices.len());
    }
    Graph {
        n: ids.len(),
        indptr,
        indices,
        data,
    }
}

/// Rows sampled to estimate the mean nearest-neighbour distance of a given start.
const GIVEN_NN_SAMPLE: usize = 2000;

/// A [`Start::Given`] layout as umap-learn takes an `init` array: the coordinates as they are;
/// where some rows repeat, plus N(0, (0.001 d)²) noise, d the mean distance from a row to its
/// nearest other row (here over up to [`GIVEN_NN_SAMPLE`] random rows, exactly against all:
/// [`nearest_others`]).
fn given_start(
    coords: &[f32],
    n: usize,
    dim: usize,
    rng: &mut rand::rngs::StdRng,
) -> Result<(Vec<f32>, Init)> {
    if coords.len() != n * dim {
        return Err(Error::InvalidArgument(format!(
            "the starting layout has {} values, not {n} rows of {dim}",
            coords.len()
        )));
    }
    let points = Points::new(coords, dim)
        .map_err(|e| Error::InvalidArgument(format!("the starting layout: {e}")))?;
    let row = |i: usize| points.row(i);
    // Rows in lexicographic order (−0 as 0, so that equal rows end up side by side).
    let mut order: Vec<usize> = (0..n).collect();
    order.par_sort_unstable_by(|&a, &b| {
        let key = |v: &f32| v + 0.0;
        row(a)
            .iter()
            .map(key)
            .zip(row(b).iter().map(key))
            .map(|(x, y)| x.total_cmp(&y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let repeats = order.windows(2).any(|w| row(w[0]) == row(w[1]));
    if !repeats {
        return Ok((coords.to_vec(), Init::Given { jittered: false }));
    }
    let sample: Vec<u32> = rand::seq::index::sample(rng, n, GIVEN_NN_SAMPLE.min(n))
        .into_iter()
        .map(|i| i as u32)
        .collect();
    let nearest: f64 = nearest_others(points, &sample, 1)
        .iter()
        .filter(|e| e.0.is_finite())
        .map(|e| (e.0 as f64).sqrt())
        .sum();
    let scale = 0.001 * nearest / sample.len().max(1) as f64;
    let noise = Normal::new(0.0, scale.max(f64::MIN_POSITIVE)).expect("valid normal");
    let y = coords
        .iter()
        .map(|&v| v + noise.sample(rng) as f32)
        .collect();
    Ok((y, Init::Given { jittered: true }))
}

/// Lays out the graph `g` (scanpy's `connectivities`) from `start`; `source` gives the data the
/// graph was built on when a spectral start's components need placing (see [`SourceData`]);
/// `on_epoch(e)` after each epoch. Every start ends with umap's rescaling of each coordinate to
/// [0, 10].
pub fn umap(
    g: &Graph,
    source: SourceData<'_>,
    start: Start<'_>,
    opts: &UmapOptions,
    backend: &dyn Backend,
    on_epoch: &(dyn Fn(usize) + Sync),
) -> Result<Umap> {
    let n = g.n;
    let dim = opts.dim;
    if n == 0 {
        return Err(Error::InvalidArgument("UMAP of an empty graph".into()));
    }
    opts.check()?;
    let (a, b) = find_ab_params(opts.spread, opts.min_dist);
    let n_epochs = opts.n_epochs.unwrap_or_else(|| default_epochs(n));
    let w_max = max_weight(g);
    let edges = edge_list(g, w_max, n_epochs);
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
    let t0 = std::time::Instant::now();
    // Each head's edges (`heads`): the pruned graph's rows, and the renumbering's source.
    let heads = head_offsets(&edges, n);
    let (y, init): (Vec<f32>, Init) = match start {
        Start::Spectral => {
            let pg = pruned(g, &edges, heads.clone(), w_max);
            let (y, init) = spectral_init(&pg, dim, source, &mut rng, backend)?;
            drop(pg);
            // umap: scale to max |y| = 10, add N(0, 1e-4) noise.
            let expansion = 10.0 / y.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-300);
            let noise = Normal::new(0.0, 1e-4).expect("valid normal");
            let y = y
                .iter()
                .map(|v| (v * expansion) as f32 + noise.sample(&mut rng) as f32)
                .collect();
            (y, init)
        }
        Start::Random => {
            let y = (0..n * dim)
                .map(|_| rng.random_range(-10.0f32..10.0))
                .collect();
            (y, Init::Uniform)
        }
        Start::Given(coords) => given_start(coords, n, dim, &mut rng)?,
    };
    // umap: each column to [0, 10], whatever the start.
    let mut embedding = vec![0f32; n * dim];
    for d in 0..dim {
        let col = y.iter().skip(d).step_by(dim);
        let (lo, hi) = col.fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
        let span = if hi > lo { hi - lo } else { 1.0 };
        for i in 0..n {
            embedding[i * dim + d] = 10.0 * (y[i * dim + d] - lo) / span;
        }
    }
    let params = LayoutParams {
        a: a as f32,
        b: b as f32,
        gamma: opts.gamma as f32,
        negative_sample_rate: opts.negative_sample_rate as f32,
        n_epochs,
        seed: opts.seed,
    };
    let t1 = std::time::Instant::now();
    // The SGD runs on the points renumbered in a Z-order of their starting positions: graph
    // neighbours then sit close in memory, so the tails each thread writes mostly lie in its own
    // stretch of the embedding instead of in cache lines the other threads are reading.
    let order = z_order(&embedding, dim);
    let (mut local, local_edges) = renumbered(&embedding, dim, &edges, &heads, &order);
    drop(edges);
    backend.optimize_layout(&mut local, dim, &local_edges, &params, on_epoch)?;
    for (pos, &p) in order.iter().enumerate() {
        let p = p as usize;
        embedding[p * dim..(p + 1) * dim].copy_from_slice(&local[pos * dim..(pos + 1) * dim]);
    }
    let edges = local_edges;
    let seconds = ((t1 - t0).as_secs_f64(), t1.elapsed().as_secs_f64());
    Ok(Umap {
        embedding,
        dim,
        a,
        b,
        n_epochs,
        n_edges: edges.head.len(),
        init,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renumbering_keeps_the_problem_and_groups_near_points() {
        // 4 × 50 points on two well-separated lines per axis: a Z-order keeps each 2 × 2 cell
        // of the plane (one quadrant of 50 points) contiguous.
        let dim = 2;
        let mut emb = Vec::new();
        for i in 0..200 {
            let (qx, qy) = ((i % 2) as f32 * 100.0, ((i / 2) % 2) as f32 * 100.0);
            emb.extend([qx + (i % 7) as f32 * 0.1, qy + (i % 5) as f32 * 0.1]);
        }
        let order = z_order(&emb, dim);
        let mut seen = order.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..200).collect::<Vec<u32>>(), "a permutation");
        let quadrant = |p: u32| (p % 2, (p / 2) % 2);
        for run in order.chunks(50) {
            assert!(
                run.iter().all(|&p| quadrant(p) == quadrant(run[0])),
                "{run:?}"
            );
        }
        // Edges grouped by head (as `edge_list` makes them), renumbered and back again.
        let edges = EdgeList {
            head: vec![0, 0, 3, 7, 7, 7, 150],
            tail: vec![5, 199, 1, 2, 8, 0, 3],
            epochs_per_sample: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        };
        let start = head_offsets(&edges, emb.len() / dim);
        let (local, moved) = renumbered(&emb, dim, &edges, &start, &order);
        assert!(
            moved.head.windows(2).all(|w| w[0] <= w[1]),
            "grouped by new head"
        );
        let mut back: Vec<(u32, u32, f32)> = (0..moved.head.len())
            .map(|e| {
                let (h, t) = (moved.head[e] as usize, moved.tail[e] as usize);
                assert_eq!(
                    local[h * dim..h * dim + dim],
                    emb[order[h] as usize * dim..][..dim]
                );
                (order[h], order[t], moved.epochs_per_sample[e])
            })
            .collect();
        back.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let mut want: Vec<(u32, u32, f32)> = (0..edges.head.len())
            .map(|e| (edges.head[e], edges.tail[e], edges.epochs_per_sample[e]))
            .collect();
        want.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(back, want);
    }

    /// A random graph of `n` rows (0 to 12 entries each, some of them weak enough to prune).
    fn random_graph(n: usize, seed: u64) -> Graph {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let rows = (0..n)
            .map(|_| {
                let mut cols: Vec<u32> = (0..rng.random_range(0..13))
                    .map(|_| rng.random_range(0..n as u32))
                    .collect();
                cols.sort_unstable();
                cols.dedup();
                cols.into_iter()
                    .map(|j| (j, rng.random_range(0.0f32..1.0)))
                    .collect()
            })
            .collect();
        Graph::from_rows(rows)
    }

    #[test]
    fn edge_lists_and_renumbering_match_a_serial_walk() {
        // Rows over several tasks of `fill_rows`, and a row count that is not a multiple.
        let n = 3 * FILL_ROWS_PER_TASK + 123;
        let g = random_graph(n, 5);
        let w_max = max_weight(&g);
        let n_epochs = 20;
        let cut = w_max / n_epochs as f32;
        let mut want = EdgeList::default();
        for i in 0..n {
            for (&j, &w) in g.row(i).0.iter().zip(g.row(i).1) {
                if w >= cut && w > 0.0 {
                    want.head.push(i as u32);
                    want.tail.push(j);
                    want.epochs_per_sample.push(w_max / w);
                }
            }
        }
        let got = edge_list(&g, w_max, n_epochs);
        assert!(want.head.len() < g.data.len(), "some edges pruned");
        assert_eq!(
            (&got.head, &got.tail, &got.epochs_per_sample),
            (&want.head, &want.tail, &want.epochs_per_sample)
        );
        // Renumbered along a random order: each new head's edges are its old head's, in order.
        let dim = 3;
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        let emb: Vec<f32> = (0..n * dim).map(|_| rng.random()).collect();
        let mut order: Vec<u32> = (0..n as u32).collect();
        rand::seq::SliceRandom::shuffle(&mut order[..], &mut rng);
        let mut rank = vec![0u32; n];
        for (pos, &p) in order.iter().enumerate() {
            rank[p as usize] = pos as u32;
        }
        let mut moved_want = EdgeList::default();
        for (pos, &p) in order.iter().enumerate() {
            let from = want.head.partition_point(|&h| h < p);
            let to = want.head.partition_point(|&h| h <= p);
            for e in from..to {
                moved_want.head.push(pos as u32);
                moved_want.tail.push(rank[want.tail[e] as usize]);
                moved_want.epochs_per_sample.push(want.epochs_per_sample[e]);
            }
        }
        let (local, moved) = renumbered(&emb, dim, &want, &head_offsets(&want, n), &order);
        assert_eq!(
            (&moved.head, &moved.tail, &moved.epochs_per_sample),
            (
                &moved_want.head,
                &moved_want.tail,
                &moved_want.epochs_per_sample
            )
        );
        for (pos, &p) in order.iter().enumerate() {
            assert_eq!(local[pos * dim..][..dim], emb[p as usize * dim..][..dim]);
        }
    }

    #[test]
    fn given_starts_are_kept_and_repeated_rows_jittered() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        // Distinct rows (one pair equal in x, another with −0 against 0 in one coordinate
        // only): kept bit for bit.
        let distinct = [0.0f32, 1.0, 0.0, 2.0, -0.0, 3.0, 5.0, 3.0, 4.0, 4.0];
        let (y, init) = given_start(&distinct, 5, 2, &mut rng).unwrap();
        assert!(matches!(init, Init::Given { jittered: false }));
        assert_eq!(y, distinct.to_vec());
        // Rows 0 and 3 equal (−0 counts as 0), on a grid of spacing 1: noise of 0.001 x the
        // mean nearest distance (here (4 x 1 + 0) / 5 = 0.8 for the 5 rows sampled), so every
        // coordinate moves, by far less than the spacing.
        let repeated = [0.0f32, 0.0, 1.0, 0.0, 2.0, 0.0, -0.0, 0.0, 3.0, 0.0];
        let (y, init) = given_start(&repeated, 5, 2, &mut rng).unwrap();
        assert!(matches!(init, Init::Given { jittered: true }));
        assert_ne!(y[0..2], y[6..8]);
        let moved: Vec<f32> = y
            .iter()
            .zip(&repeated)
            .map(|(a, b)| (a - b).abs())
            .collect();
        assert!(moved.iter().all(|&m| m > 0.0 && m < 0.008), "{moved:?}");
        assert!(moved.iter().any(|&m| m > 1e-5), "{moved:?}");
        // Wrong sizes and non-finite values are refused.
        assert!(given_start(&repeated, 4, 2, &mut rng).is_err());
        assert!(given_start(&[0.0, f32::NAN], 1, 2, &mut rng).is_err());
    }

    #[test]
    fn layout_dimensions_out_of_range_are_refused() {
        let g = random_graph(50, 1);
        for dim in [0, MAX_LAYOUT_DIM + 1] {
            let opts = UmapOptions {
                dim,
                ..UmapOptions::default()
            };
            let err = umap(
                &g,
                &|| Ok(None),
                Start::Spectral,
                &opts,
                &crate::backend::CpuBackend::new(),
                &|_| {},
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("--n-components"), "{err}");
        }
    }

    #[test]
    fn components_go_where_umaps_component_layout_puts_them() {
        // umap-learn's `component_layout` of 9 components' points
        // (tests/python/make_neighbors_fixtures.py).
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/neighbors/component_layout.json"
        );
        let case: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let floats = |key: &str| -> Vec<f64> {
            case[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        let (width, dim) = (
            case["width"].as_u64().unwrap() as usize,
            case["dim"].as_u64().unwrap() as usize,
        );
        let data: Vec<f32> = floats("data").iter().map(|&v| v as f32).collect();
        let label: Vec<u32> = floats("labels").iter().map(|&v| v as u32).collect();
        let want = floats("layout");
        let n_comp = want.len() / dim;
        let source = || Ok(Some((data.clone(), width)));
        let centroids = component_centroids(&label, n_comp, &source)
            .unwrap()
            .unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let got = meta_embedding(
            Placement::Centroids,
            n_comp,
            dim,
            Some(&centroids),
            &mut rng,
        )
        .unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 1e-6, "entry {i}: {g} vs umap-learn's {w}");
        }
    }

    #[test]
    fn few_components_sit_on_unit_vectors_and_no_data_means_random() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        // umap: k = ⌈n/2⌉ rows of [I_k 0], then their negatives, the first n_comp kept.
        let three = meta_embedding(Placement::UnitVectors, 3, 2, None, &mut rng).unwrap();
        assert_eq!(three, vec![1.0, 0.0, 0.0, 1.0, -1.0, 0.0]);
        let two = meta_embedding(Placement::UnitVectors, 2, 3, None, &mut rng).unwrap();
        assert_eq!(two, vec![1.0, 0.0, 0.0, -1.0, 0.0, 0.0]);
        // More than 2·dim components without source data: uniform in [0, 10).
        let many = meta_embedding(Placement::Random, 7, 2, None, &mut rng).unwrap();
        assert_eq!(many.len(), 14);
        assert!(many.iter().all(|v| (0.0..10.0).contains(v)));
        assert!(many.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn each_component_gets_half_the_distance_to_its_nearest() {
        let meta = [0.0, 0.0, 3.0, 0.0, 0.0, 1.0];
        assert_eq!(half_nearest(&meta, 2), vec![0.5, 1.5, 0.5]);
        assert_eq!(half_nearest(&[2.0, 2.0, 2.0, 2.0], 2), vec![1.0, 1.0]);
    }

    #[test]
    fn thousands_of_lone_cells_go_on_a_grid_without_reading_the_data() {
        // No edge survives the pruning: every cell is a component of its own.
        let n = META_MAX + 1;
        let g = Graph {
            n,
            indptr: vec![0; n + 1],
            indices: Vec::new(),
            data: Vec::new(),
        };
        let source = || -> Result<Option<(Vec<f32>, usize)>> {
            panic!("the source data is not needed for a grid")
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let (y, init) =
            spectral_init(&g, 2, &source, &mut rng, &crate::backend::CpuBackend::new()).unwrap();
        assert!(matches!(
            init,
            Init::Spectral {
                components,
                placement: Placement::Grid,
                ..
            } if components == n
        ));
        // Each cell within half a grid step of its own grid point.
        let side = (n as f64).sqrt().ceil() as usize;
        let (label, _) = components(&g);
        for (i, &c) in label.iter().enumerate() {
            let c = c as usize;
            assert!((y[2 * i] - (c % side) as f64).abs() <= 0.5);
            assert!((y[2 * i + 1] - (c / side) as f64).abs() <= 0.5);
        }
    }

    #[test]
    fn ab_fit_matches_umap_learn() {
        // umap-learn 0.5 / scanpy for min_dist = 0.5, spread = 1 (spec §9), and umap's own
        // default min_dist = 0.1.
        let (a, b) = find_ab_params(1.0, 0.5);
        assert!((a - 0.5830300203968329).abs() < 1e-5, "a = {a}");
        assert!((b - 1.3341669926352966).abs() < 1e-5, "b = {b}");
        let (a, b) = find_ab_params(1.0, 0.1);
        assert!((a - 1.576943460405378).abs() < 1e-4, "a = {a}");
        assert!((b - 0.8950608781227859).abs() < 1e-4, "b = {b}");
    }
}
