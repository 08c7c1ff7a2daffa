//! UMAP layout of a connectivities graph, as umap-learn's `simplicial_set_embedding` (what
//! scanpy's `tl.umap` calls): the a/b curve fit, edge pruning and sampling rates, spectral
//! initialization (per component), then the backend's SGD epochs.

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

use super::fuzzy::Graph;
use super::spectral::{components, laplacian_eigenvectors, SpectralReport};
use crate::backend::{Backend, EdgeList, LayoutParams};
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

/// How the layout was started.
#[derive(Clone, Debug)]
pub enum Init {
    /// Spectral, per component: components found, and the worst eigen solve.
    Spectral {
        /// Connected components of the pruned graph.
        components: usize,
        /// Largest residual and most restarts over the components solved.
        worst: Option<SpectralReport>,
    },
    /// Uniform random in [−10, 10] (the spectral solve failed; the reason).
    Random(String),
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

/// Edges of the symmetric graph with weight ≥ w_max / n_epochs, with their sampling periods
/// w_max / w (umap's `make_epochs_per_sample`).
pub fn edge_list(g: &Graph, n_epochs: usize) -> EdgeList {
    let w_max = g.data.iter().copied().fold(0f32, f32::max);
    let cut = w_max / n_epochs as f32;
    let mut e = EdgeList::default();
    for i in 0..g.n {
        let (cols, vals) = g.row(i);
        for (&j, &w) in cols.iter().zip(vals) {
            if w >= cut && w > 0.0 {
                e.head.push(i as u32);
                e.tail.push(j);
                e.epochs_per_sample.push(w_max / w);
            }
        }
    }
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
/// the edges renamed and regrouped by their new head (each head's edges in their old order).
fn renumbered(
    embedding: &[f32],
    dim: usize,
    edges: &EdgeList,
    order: &[u32],
) -> (Vec<f32>, EdgeList) {
    let n = order.len();
    let mut rank = vec![0u32; n];
    for (pos, &p) in order.iter().enumerate() {
        rank[p as usize] = pos as u32;
    }
    let start = head_offsets(edges, n);
    debug_assert!(
        edges.head.windows(2).all(|w| w[0] <= w[1]),
        "edges grouped by head"
    );
    let m = edges.head.len();
    let mut out = EdgeList {
        head: Vec::with_capacity(m),
        tail: Vec::with_capacity(m),
        epochs_per_sample: Vec::with_capacity(m),
    };
    let mut local = vec![0f32; embedding.len()];
    for (pos, &p) in order.iter().enumerate() {
        let p = p as usize;
        local[pos * dim..(pos + 1) * dim].copy_from_slice(&embedding[p * dim..(p + 1) * dim]);
        for e in start[p]..start[p + 1] {
            out.head.push(pos as u32);
            out.tail.push(rank[edges.tail[e] as usize]);
            out.epochs_per_sample.push(edges.epochs_per_sample[e]);
        }
    }
    (local, out)
}

/// Where each head's edges start in `edges` (grouped by head, as `edge_list` makes them), for
/// the `n` points: a CSR row pointer.
fn head_offsets(edges: &EdgeList, n: usize) -> Vec<usize> {
    let mut start = vec![0usize; n + 1];
    for &h in &edges.head {
        start[h as usize + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    start
}

/// The graph restricted to `edges` (what the initialization sees).
fn pruned(g: &Graph, edges: &EdgeList, w_max: f32) -> Graph {
    Graph {
        n: g.n,
        indptr: head_offsets(edges, g.n),
        indices: edges.tail.clone(),
        data: edges.epochs_per_sample.iter().map(|e| w_max / e).collect(),
    }
}

/// Spectral initialization with umap's scaling: each component's eigenvectors scaled into its
/// place (components on a grid, largest first), the whole scaled to max |y| = 10, N(0, 1e-4)
/// noise added.
fn spectral_init(g: &Graph, dim: usize, rng: &mut rand::rngs::StdRng) -> Result<(Vec<f64>, Init)> {
    let n = g.n;
    let (label, n_comp) = components(g);
    let mut y = vec![0f64; n * dim];
    let mut worst: Option<SpectralReport> = None;
    let grid = (n_comp as f64).sqrt().ceil() as usize;
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_comp];
    // Each vertex's position inside its component (components partition the vertices).
    let mut local = vec![0u32; n];
    for (i, &c) in label.iter().enumerate() {
        local[i] = members[c as usize].len() as u32;
        members[c as usize].push(i);
    }
    for (c, ids) in members.iter().enumerate() {
        let centre: Vec<f64> = (0..dim)
            .map(|d| match d {
                0 => (c % grid) as f64,
                1 => (c / grid) as f64,
                _ => 0.0,
            })
            .collect();
        // A single component fills the layout; several share a grid of unit cells.
        let range = if n_comp == 1 { 1.0 } else { 0.4 };
        if ids.len() <= 2 * dim + 1 {
            for &i in ids {
                for d in 0..dim {
                    y[i * dim + d] = centre[d] + rng.random_range(-range..range);
                }
            }
            continue;
        }
        let sub = subgraph(g, ids, &local);
        let (vecs, report) = laplacian_eigenvectors(&sub, dim, rng.random());
        if vecs.len() < dim || vecs.iter().flatten().any(|v| !v.is_finite()) {
            return Err(Error::InvalidArgument(format!(
                "spectral initialization of a component of {} cells produced no usable vectors",
                ids.len()
            )));
        }
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
        if worst.as_ref().is_none_or(|w| report.residual > w.residual) {
            worst = Some(report);
        }
    }
    Ok((
        y,
        Init::Spectral {
            components: n_comp,
            worst,
        },
    ))
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

/// Lays out the graph `g` (scanpy's `connectivities`); `on_epoch(e)` after each epoch.
pub fn umap(
    g: &Graph,
    opts: &UmapOptions,
    backend: &dyn Backend,
    on_epoch: &(dyn Fn(usize) + Sync),
) -> Result<Umap> {
    let n = g.n;
    let dim = opts.dim;
    if n == 0 {
        return Err(Error::InvalidArgument("UMAP of an empty graph".into()));
    }
    let valid = opts.spread > 0.0 && opts.min_dist >= 0.0 && opts.min_dist <= opts.spread;
    if !valid {
        return Err(Error::InvalidArgument(format!(
            "--min-dist {} and --spread {}: need 0 ≤ min-dist ≤ spread, spread > 0",
            opts.min_dist, opts.spread
        )));
    }
    let (a, b) = find_ab_params(opts.spread, opts.min_dist);
    let n_epochs = opts.n_epochs.unwrap_or_else(|| default_epochs(n));
    if n_epochs == 0 {
        return Err(Error::InvalidArgument(
            "--n-epochs must be at least 1".into(),
        ));
    }
    let edges = edge_list(g, n_epochs);
    let w_max = g.data.iter().copied().fold(0f32, f32::max);
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
    let t0 = std::time::Instant::now();
    let (y, init) = match spectral_init(&pruned(g, &edges, w_max), dim, &mut rng) {
        Ok(r) => r,
        Err(e) => {
            let y = (0..n * dim)
                .map(|_| rng.random_range(-10.0..10.0))
                .collect();
            (y, Init::Random(e.to_string()))
        }
    };
    // umap: scale to max |y| = 10, add N(0, 1e-4) noise, then each column to [0, 10].
    let expansion = 10.0 / y.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-300);
    let noise = Normal::new(0.0, 1e-4).expect("valid normal");
    let y: Vec<f32> = y
        .iter()
        .map(|v| (v * expansion) as f32 + noise.sample(&mut rng) as f32)
        .collect();
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
    let (mut local, local_edges) = renumbered(&embedding, dim, &edges, &order);
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
        let (local, moved) = renumbered(&emb, dim, &edges, &order);
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
