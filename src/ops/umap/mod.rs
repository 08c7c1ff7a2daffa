//! UMAP layout of a connectivities graph, as umap-learn's `simplicial_set_embedding` (what
//! scanpy's `tl.umap` calls): the a/b curve fit, edge pruning and sampling rates, spectral
//! initialization (per component), then the backend's SGD epochs.

mod curve;
mod edges;
mod init;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use self::edges::{head_offsets, pruned, renumbered, z_order};
use self::init::{given_start, spectral_init};
use super::fuzzy::Graph;
use super::spectral::SpectralReport;
use crate::backend::{Backend, LayoutParams, MAX_LAYOUT_DIM};
use crate::error::{Error, Result};

pub use curve::find_ab_params;
pub use edges::{edge_list, max_weight};
pub use init::{RowVisitor, SourceData};

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
mod tests;
