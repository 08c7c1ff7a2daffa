//! Where the layout starts: umap's spectral layout of each component, the components placed
//! relative to each other (unit vectors, a meta-embedding of their centroids, a grid), and
//! given coordinates.

use faer::Mat;
use rand::Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

use super::{Init, Placement};
use crate::backend::{Backend, Points};
use crate::error::{Error, Result};
use crate::ops::eigen::{top_eigen, EigenSolver};
use crate::ops::fuzzy::Graph;
use crate::ops::knn::nearest_others;
use crate::ops::spectral::{components, laplacian_eigenvectors, SpectralReport};

/// Receives one block of consecutive rows of the source data: the rows (row-major f32) and
/// their width.
pub type RowVisitor<'v> = dyn FnMut(&[f32], usize) -> Result<()> + 'v;

/// The data a graph was built on (scanpy's representation, `X_pca`), streamed: `source(visit)`
/// calls `visit` on blocks of consecutive rows that together cover every row once, in order, and
/// returns `Ok(true)`; it returns `Ok(false)`, without calling `visit`, where there is no source
/// data. Called only when a layout needs component centroids, which take one pass: the data is
/// never held whole.
pub type SourceData<'a> = &'a dyn Fn(&mut RowVisitor<'_>) -> Result<bool>;

/// Spectral initialization as umap's `spectral_layout`: the Laplacian eigenvectors of a
/// connected graph; for several components, umap's `multi_component_layout`: each component
/// placed at its point of a meta-embedding ([`meta_embedding`]), within half the distance to
/// the nearest other one, as its own spectral layout scaled to that range (uniform random there
/// when it has fewer than 2·dim points or at most dim + 1).
///
/// Where the eigen solves fail, the start is uniform in [−10, 10] ([`Init::Random`], with the
/// reason); errors reading the source data, and the backend's errors (the graph products run
/// there), are returned.
pub(super) fn spectral_init(
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

/// The centroids of the components (row-major, with their width) in the source data, in one
/// pass over it (sums in f64, in row order), or None where there is none.
pub(super) fn component_centroids(
    label: &[u32],
    n_comp: usize,
    source: SourceData<'_>,
) -> Result<Option<(Vec<f64>, usize)>> {
    let mut centroids: Vec<f64> = Vec::new();
    let mut sizes = vec![0usize; n_comp];
    let mut width = 0usize;
    let mut row = 0usize;
    let found = source(&mut |block: &[f32], w: usize| {
        if w == 0 || !block.len().is_multiple_of(w) || (width != 0 && w != width) {
            return Err(Error::InvalidArgument(format!(
                "the source data's rows change width or do not divide the block: {} values \
                 in rows of {w}",
                block.len()
            )));
        }
        if width == 0 {
            width = w;
            centroids = vec![0f64; n_comp * w];
        }
        for values in block.chunks_exact(w) {
            let Some(&c) = label.get(row) else {
                return Err(Error::InvalidArgument(format!(
                    "the source data has more rows than the graph's {}",
                    label.len()
                )));
            };
            sizes[c as usize] += 1;
            for (s, &v) in centroids[c as usize * w..][..w].iter_mut().zip(values) {
                *s += v as f64;
            }
            row += 1;
        }
        Ok(())
    })?;
    if !found {
        return Ok(None);
    }
    if row != label.len() || width == 0 {
        return Err(Error::InvalidArgument(format!(
            "the source data has {row} rows, the graph {}",
            label.len()
        )));
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
pub(super) fn place_components(
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
pub(super) fn check_vectors(vecs: &[Vec<f64>], dim: usize, size: usize) -> Result<()> {
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
pub(super) const META_MAX: usize = 4096;

/// Where umap's `multi_component_layout` puts each of `n_comp` components (row-major,
/// `n_comp` x `dim`), as `placement` says. [`Placement::UnitVectors`] (up to 2·dim components):
/// ±unit vectors (e₁, e₂, …, −e₁, −e₂, …). [`Placement::Centroids`]: umap's `component_layout`,
/// a spectral embedding (scikit-learn's `SpectralEmbedding` with a precomputed affinity) of the
/// components' `centroids` in the source data, affinity exp(−d²) between centroids, divided by
/// its largest entry. [`Placement::Random`] (no source data): uniform in [0, 10), as umap.
/// [`Placement::Grid`] (more than [`META_MAX`]): a square grid of unit spacing.
pub(super) fn meta_embedding(
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
pub(super) fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

/// Half the distance from each of the `dim`-dimensional points `meta` to its nearest other
/// (1 where all coincide), as umap's `data_range`.
pub(super) fn half_nearest(meta: &[f64], dim: usize) -> Vec<f64> {
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
pub(super) fn centroid_embedding(points: &[f64], width: usize, dim: usize) -> Result<Vec<f64>> {
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
pub(super) fn subgraph(g: &Graph, ids: &[usize], local: &[u32]) -> Graph {
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
pub(super) fn given_start(
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
