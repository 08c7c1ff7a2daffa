//! UMAP's stochastic gradient descent on the CPU: each epoch's edges are split into rayon tasks
//! that update one shared embedding without locks (Hogwild, as umap-learn's parallel mode).
//! Coordinates live in `AtomicU32`s read and written with relaxed ordering: plain loads and
//! stores on x86, and no data race in Rust's sense.
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

/// One epoch over the edges `base..base + next_s.len()` in `D` dimensions.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn epoch_block<const D: usize>(
    emb: &Shared<'_>,
    edges: &EdgeList,
    params: &LayoutParams,
    n: usize,
    e: f32,
    alpha: f32,
    seed: u64,
    base: usize,
    next_s: &mut [f32],
    next_n: &mut [f32],
) {
    let (a, b, gamma) = (params.a, params.b, params.gamma);
    let neg_rate = params.negative_sample_rate;
    for (o, (ns, nn)) in next_s.iter_mut().zip(next_n.iter_mut()).enumerate() {
        if *ns > e {
            continue;
        }
        let i = base + o;
        let j = edges.head[i] as usize * D;
        let k = edges.tail[i] as usize * D;
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
            let g = clip(coeff * grad[d]) * alpha;
            cur[d] += g;
            emb.set(j + d, cur[d]);
            emb.set(k + d, emb.get(k + d) - g);
        }
        let eps = edges.epochs_per_sample[i];
        *ns += eps;
        let eps_neg = eps / neg_rate;
        let n_neg = ((e - *nn) / eps_neg).max(0.0) as usize;
        let mut state = splitmix64(seed ^ i as u64);
        for _ in 0..n_neg {
            state = splitmix64(state);
            let kk = (((state >> 32) * n as u64) >> 32) as usize;
            let k = kk * D;
            let mut d2 = 0f32;
            for d in 0..D {
                let diff = cur[d] - emb.get(k + d);
                grad[d] = diff;
                d2 += diff * diff;
            }
            if d2 > 0.0 {
                let pb = d2.powf(b);
                let coeff = 2.0 * gamma * b / ((0.001 + d2) * (a * pb + 1.0));
                for d in 0..D {
                    cur[d] += clip(coeff * grad[d]) * alpha;
                }
            }
        }
        for (d, &c) in cur.iter().enumerate() {
            emb.set(j + d, c);
        }
        *nn += n_neg as f32 * eps_neg;
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
    for epoch in 0..params.n_epochs {
        let alpha = 1.0 - epoch as f32 / params.n_epochs as f32;
        let e = epoch as f32;
        let seed = splitmix64(params.seed ^ (epoch as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        clocks
            .next_sample
            .par_chunks_mut(EDGES_PER_TASK)
            .zip(clocks.next_negative.par_chunks_mut(EDGES_PER_TASK))
            .enumerate()
            .for_each(|(t, (next_s, next_n))| {
                let base = t * EDGES_PER_TASK;
                macro_rules! run {
                    ($d:literal) => {
                        epoch_block::<$d>(
                            &emb, edges, params, n, e, alpha, seed, base, next_s, next_n,
                        )
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
        on_epoch(epoch);
    }
    Ok(())
}
