//! UMAP's stochastic gradient descent on the CPU: each epoch's edges are split into rayon tasks
//! that update one shared embedding without locks (Hogwild, as umap-learn's parallel mode).
//! Coordinates live in `AtomicU32`s read and written with relaxed ordering: plain loads and
//! stores on x86, and no data race in Rust's sense.
//!
//! Each task keeps [`WALKS`] edges in flight, taking their samples in turn (each edge's own
//! samples in umap-learn's order), and prefetches every negative sample's point one sample ahead.
//!
//! The loop is compiled once per layout dimension (1..=8), so the 2-D case runs with its
//! coordinates in registers. d²ᵇ is libm's `powf`, as umap-learn's `pow(dist_squared, b)`: one
//! correctly rounded call where `exp(b·ln d²)` made two (no slower on this machine, within its
//! noise), and faster than a hand-written polynomial (each negative sample depends on the last,
//! so latency counts, and glibc's table-driven code has the shorter chain).

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use rayon::prelude::*;

use crate::backend::points::{check_layout_args, EdgeClocks, EdgeList, LayoutParams};
use crate::error::Result;

/// Edges per rayon task.
const EDGES_PER_TASK: usize = 8192;

/// splitmix64: a stateless hash giving each (seed, epoch, edge) its own random stream, so the
/// samples drawn do not depend on how edges are split among threads.
#[inline]
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hints the CPU to bring the cache line holding `p` in (never faults, whatever the address;
/// a no-op off x86-64).
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it reads nothing the program sees and never faults.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[inline]
fn clip(v: f32) -> f32 {
    v.clamp(-4.0, 4.0)
}

struct Shared<'a>(&'a [AtomicU32]);

impl Shared<'_> {
    #[inline]
    fn get(&self, i: usize) -> f32 {
        f32::from_bits(self.0[i].load(Relaxed))
    }
    #[inline]
    fn set(&self, i: usize, v: f32) {
        self.0[i].store(v.to_bits(), Relaxed)
    }
}

/// Independent edges each thread carries at once. Each edge's samples form a dependency chain
/// (every negative sample moves the head, which the next one reads), with a `powf` in every
/// link: interleaving the chains of a few edges lets the CPU overlap them.
const WALKS: usize = 4;

/// The constants of one epoch.
struct Epoch<'a> {
    emb: &'a Shared<'a>,
    edges: &'a EdgeList,
    params: &'a LayoutParams,
    n: usize,
    e: f32,
    alpha: f32,
    seed: u64,
}

/// One edge in progress: its head's working position and the negative samples left.
struct Walk<const D: usize> {
    /// Head's first coordinate in the embedding.
    j: usize,
    cur: [f32; D],
    state: u64,
    left: usize,
}

impl Epoch<'_> {
    /// The positive sample of edge `i` (head and tail attract); returns the walk of its
    /// negative samples and the epoch clocks' new values.
    #[inline(always)]
    fn attract<const D: usize>(&self, i: usize, ns: &mut f32, nn: &mut f32) -> Walk<D> {
        let (a, b) = (self.params.a, self.params.b);
        let emb = self.emb;
        let j = self.edges.head[i] as usize * D;
        let k = self.edges.tail[i] as usize * D;
        let mut cur = [0f32; D];
        let mut grad = [0f32; D];
        let mut d2 = 0f32;
        for d in 0..D {
            cur[d] = emb.get(j + d);
            let diff = cur[d] - emb.get(k + d);
            grad[d] = diff;
            d2 += diff * diff;
        }
        let coeff = if d2 > 0.0 {
            let pb = d2.powf(b);
            -2.0 * a * b * (pb / d2) / (a * pb + 1.0)
        } else {
            0.0
        };
        for d in 0..D {
            let g = clip(coeff * grad[d]) * self.alpha;
            cur[d] += g;
            emb.set(j + d, cur[d]);
            emb.set(k + d, emb.get(k + d) - g);
        }
        let eps = self.edges.epochs_per_sample[i];
        *ns += eps;
        let eps_neg = eps / self.params.negative_sample_rate;
        let left = ((self.e - *nn) / eps_neg).max(0.0) as usize;
        *nn += left as f32 * eps_neg;
        let state = splitmix64(self.seed ^ i as u64);
        if left > 0 {
            prefetch(&self.emb.0[self.sample::<D>(splitmix64(state))]);
        }
        Walk {
            j,
            cur,
            state,
            left,
        }
    }

    /// First coordinate of the negative sample drawn by `state`.
    #[inline(always)]
    fn sample<const D: usize>(&self, state: u64) -> usize {
        (((state >> 32) * self.n as u64) >> 32) as usize * D
    }

    /// One negative sample of `w`: the head is pushed away from a random point.
    #[inline(always)]
    fn repel<const D: usize>(&self, w: &mut Walk<D>) {
        let (a, b, gamma) = (self.params.a, self.params.b, self.params.gamma);
        w.state = splitmix64(w.state);
        w.left -= 1;
        let k = self.sample::<D>(w.state);
        if w.left > 0 {
            // The next sample's point is known now: start fetching it (the embedding outgrows
            // the core's cache at a million points).
            prefetch(&self.emb.0[self.sample::<D>(splitmix64(w.state))]);
        }
        let mut grad = [0f32; D];
        let mut d2 = 0f32;
        for (d, (g, &c)) in grad.iter_mut().zip(&w.cur).enumerate() {
            *g = c - self.emb.get(k + d);
            d2 += *g * *g;
        }
        if d2 > 0.0 {
            let pb = d2.powf(b);
            let coeff = 2.0 * gamma * b / ((0.001 + d2) * (a * pb + 1.0));
            for (c, &g) in w.cur.iter_mut().zip(&grad) {
                *c += clip(coeff * g) * self.alpha;
            }
        }
    }

    /// Writes the head's final position.
    #[inline(always)]
    fn finish<const D: usize>(&self, w: &Walk<D>) {
        for (d, &c) in w.cur.iter().enumerate() {
            self.emb.set(w.j + d, c);
        }
    }

    /// One epoch over the edges `base..base + next_s.len()` in `D` dimensions: the block is cut
    /// into [`WALKS`] runs, and one edge of each run is in progress at a time, their samples
    /// taken in turn. Each edge's own samples keep umap-learn's order.
    #[inline(always)]
    fn block<const D: usize>(&self, base: usize, next_s: &mut [f32], next_n: &mut [f32]) {
        let e = self.e;
        let len = next_s.len();
        let mut runs: [(usize, usize); WALKS] =
            std::array::from_fn(|r| (r * len / WALKS, (r + 1) * len / WALKS));
        let mut walks: [Option<Walk<D>>; WALKS] = std::array::from_fn(|_| None);
        loop {
            let mut busy = false;
            for (run, walk) in runs.iter_mut().zip(walks.iter_mut()) {
                if let Some(w) = walk {
                    if w.left > 0 {
                        self.repel(w);
                        busy = true;
                        continue;
                    }
                    self.finish(w);
                    *walk = None;
                }
                // The run's next due edge.
                while run.0 < run.1 && next_s[run.0] > e {
                    run.0 += 1;
                }
                if run.0 < run.1 {
                    let o = run.0;
                    run.0 += 1;
                    *walk = Some(self.attract(base + o, &mut next_s[o], &mut next_n[o]));
                    busy = true;
                }
            }
            if !busy {
                break;
            }
        }
    }
}

/// UMAP's `optimize_layout_euclidean` with `move_other = True`: for each edge due this epoch,
/// attract head and tail, then repel the head from `n_neg` random points, with the learning
/// rate decaying linearly to 0.
pub(super) fn optimize_layout(
    embedding: &mut [f32],
    dim: usize,
    edges: &EdgeList,
    params: &LayoutParams,
    on_epoch: &(dyn Fn(usize) + Sync),
) -> Result<()> {
    let n = check_layout_args(embedding.len(), dim, edges)?;
    let m = edges.head.len();
    if n == 0 || m == 0 {
        return Ok(());
    }
    // SAFETY: AtomicU32 has the size and alignment of f32, and the exclusive borrow of
    // `embedding` is held (through `emb`) for as long as the atomic view is used.
    let emb: &[AtomicU32] = unsafe {
        std::slice::from_raw_parts(embedding.as_mut_ptr() as *const AtomicU32, embedding.len())
    };
    let emb = Shared(emb);
    let mut clocks = EdgeClocks::new(edges, params.negative_sample_rate);
    for epoch_no in 0..params.n_epochs {
        let alpha = 1.0 - epoch_no as f32 / params.n_epochs as f32;
        let e = epoch_no as f32;
        let seed = splitmix64(params.seed ^ (epoch_no as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let epoch = Epoch {
            emb: &emb,
            edges,
            params,
            n,
            e,
            alpha,
            seed,
        };
        clocks
            .next_sample
            .par_chunks_mut(EDGES_PER_TASK)
            .zip(clocks.next_negative.par_chunks_mut(EDGES_PER_TASK))
            .enumerate()
            .for_each(|(t, (next_s, next_n))| {
                let base = t * EDGES_PER_TASK;
                macro_rules! run {
                    ($d:literal) => {
                        epoch.block::<$d>(base, next_s, next_n)
                    };
                }
                match dim {
                    1 => run!(1),
                    2 => run!(2),
                    3 => run!(3),
                    4 => run!(4),
                    5 => run!(5),
                    6 => run!(6),
                    7 => run!(7),
                    _ => run!(8),
                }
            });
        on_epoch(epoch_no);
    }
    Ok(())
}
