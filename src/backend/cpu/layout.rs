//! UMAP's stochastic gradient descent on the CPU: each epoch's edges are split into rayon tasks
//! that update one shared embedding without locks (Hogwild, as umap-learn's parallel mode).
//! Coordinates live in `AtomicU32`s read and written with relaxed ordering: plain loads and
//! stores on x86, and no data race in Rust's sense.
//!
//! Each task first lists its block's edges due this epoch ([`DueEdges`]), then walks them in
//! [`LANES`] lanes that move in lockstep, one sample each per step (each edge's own samples in
//! umap-learn's order), and prefetches what the lanes will read: the next edge's tail point, and
//! every negative sample's point two samples ahead. Three kinds of lanes ([`LaneKind`]), chosen
//! at run time (`KernelChoice::cpu_layout` asks for one, for benchmarks):
//!
//! - [`Portable`]: one lane at a time, in any dimension, `d²ᵇ` by libm's `powf` as umap-learn's
//!   `pow(dist_squared, b)`;
//! - `avx2` (x86-64 with AVX2 and FMA, 2-D layouts): the step's arithmetic eight lanes to a
//!   register, `d²ᵇ` by vectorized polynomials, within a few parts in 10⁷ of `powf`;
//! - `avx512` (AVX-512 F and DQ as well): all 16 lanes in one register, held there from step
//!   to step (positions, the negative samples' random streams and counts), the negative
//!   samples' points gathered; the AVX2 lanes' bits.
//!
//! The loop is compiled once per layout dimension (1..=8), so the coordinates of the common
//! cases stay in registers.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use rayon::prelude::*;

use crate::backend::kernels::CpuLayoutLanes;
use crate::backend::points::{check_layout_args, EdgeClocks, EdgeList, LayoutParams};
use crate::error::Result;
use crate::simd::{prefetch, splitmix64};

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

/// Edges per rayon task. Its 16 lanes' runs end at different steps, the first lanes then idle
/// till the last is done: 10% of the lane-steps with 8,192 edges a task at 200k cells, 5.6%
/// with 32,768 (and 4.9% fewer steps).
const EDGES_PER_TASK: usize = 32768;

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

/// Edges each task carries at once, in lockstep. Each edge's samples form a dependency chain
/// (every negative sample moves the head, which the next one reads); carrying several chains
/// side by side lets the CPU overlap their memory reads and do their arithmetic in the lanes of
/// vector registers.
const LANES: usize = 16;

/// Per-lane coordinates, `[dimension][lane]`.
type Coords<const D: usize> = [[f32; LANES]; D];

/// The constants of one step's arithmetic.
#[derive(Clone, Copy, Debug)]
struct Step {
    /// Curve parameter a.
    a: f32,
    /// Curve parameter b.
    b: f32,
    /// Repulsion weight γ.
    gamma: f32,
    /// This epoch's learning rate.
    alpha: f32,
}

/// The arithmetic of one lockstep step, every lane at once: each lane's `cur` moves relative to
/// its `other` point, attracted to it where `attract` is set (a positive sample; `other` is the
/// edge's tail, which moves by the returned step's negative) and repelled from it elsewhere (a
/// negative sample). Lanes whose points coincide (idle lanes carry `other = cur`) stay.
trait LaneMath {
    /// Moves `cur` and returns each lane's step (the clipped gradient times α).
    fn step<const D: usize>(
        cur: &mut Coords<D>,
        other: &Coords<D>,
        attract: &[bool; LANES],
        s: &Step,
    ) -> Coords<D>;
}

/// Lane arithmetic one lane at a time, `d²ᵇ` by libm's `powf` as umap-learn's
/// `pow(dist_squared, b)`. Runs on any CPU and in any dimension.
struct Portable;

impl LaneMath for Portable {
    #[inline(always)]
    fn step<const D: usize>(
        cur: &mut Coords<D>,
        other: &Coords<D>,
        attract: &[bool; LANES],
        s: &Step,
    ) -> Coords<D> {
        let mut step = [[0f32; LANES]; D];
        for l in 0..LANES {
            let mut d2 = 0f32;
            for d in 0..D {
                let diff = cur[d][l] - other[d][l];
                d2 += diff * diff;
            }
            if d2 > 0.0 {
                let pb = d2.powf(s.b);
                // umap-learn's coefficients, each with one division: -2ab·d²ᵇ / (d²(1 + a d²ᵇ))
                // attracting, 2γb / ((0.001 + d²)(1 + a d²ᵇ)) repelling.
                let (num, den) = if attract[l] {
                    (-2.0 * s.a * s.b * pb, d2)
                } else {
                    (2.0 * s.gamma * s.b, 0.001 + d2)
                };
                let coeff = num / (den * (s.a * pb + 1.0));
                for d in 0..D {
                    step[d][l] = clip(coeff * (cur[d][l] - other[d][l])) * s.alpha;
                    cur[d][l] += step[d][l];
                }
            }
        }
        step
    }
}

/// The constants of one epoch.
struct Epoch<'a> {
    emb: &'a Shared<'a>,
    edges: &'a EdgeList,
    negative_sample_rate: f32,
    step: Step,
    n: usize,
    e: f32,
    seed: u64,
}

/// An epoch block's due edges, each lane's run in order, as the lanes take them: head and
/// tail (points), the negative samples' count and the random states of the first two. Found
/// before the lanes walk the block ([`Epoch::find_due`], or 16 edges at a time by the AVX-512
/// lanes), so that a lane between edges only reads its next entry rather than scanning the
/// clocks, booking them and drawing the random states in the walk.
#[derive(Default)]
struct DueEdges {
    head: Vec<u32>,
    tail: Vec<u32>,
    left: Vec<u32>,
    state: Vec<u64>,
    after: Vec<u64>,
    /// Scratch of the AVX-512 pass: each due edge's index in the whole list.
    index: Vec<u32>,
    /// Lane `l`'s edges: `start[l]..start[l + 1]`.
    start: [usize; LANES + 1],
}

thread_local! {
    /// Each thread's [`DueEdges`], kept from block to block (a block's lists reach hundreds of
    /// kilobytes: fresh ones would be fresh pages, zeroed by the kernel, every block).
    static DUE: std::cell::RefCell<DueEdges> = std::cell::RefCell::default();
}

/// The lanes of one epoch block, each field per lane: its run of the block's due edges
/// (`next..end`), its edge (head and tail first coordinates; `head` is [`IDLE`]
/// between edges), the head's position, the point this step moves it against, the random
/// states of its next two negative samples and the negative samples left.
struct Lanes<const D: usize> {
    next: [usize; LANES],
    end: [usize; LANES],
    head: [usize; LANES],
    tail: [usize; LANES],
    cur: Coords<D>,
    other: Coords<D>,
    state: [u64; LANES],
    after: [u64; LANES],
    left: [u32; LANES],
}

impl<const D: usize> Lanes<D> {
    /// Lanes over a block's due edges, none holding an edge yet.
    fn new(due: &DueEdges) -> Self {
        Lanes {
            next: std::array::from_fn(|l| due.start[l]),
            end: std::array::from_fn(|l| due.start[l + 1]),
            head: [IDLE; LANES],
            tail: [0; LANES],
            cur: [[0.0; LANES]; D],
            other: [[0.0; LANES]; D],
            state: [0; LANES],
            after: [0; LANES],
            left: [0; LANES],
        }
    }
}

/// Position of the first clock in `next_s` at or before epoch `e` (`next_s.len()` if none):
/// compares 16 clocks at a time without branches (vectorizes), as runs of not-yet-due edges are
/// common and a branch per edge mispredicts.
#[inline(always)]
fn first_due(next_s: &[f32], e: f32) -> usize {
    let mut chunks = next_s.chunks_exact(16);
    let mut at = 0;
    for c in chunks.by_ref() {
        let mut due = 0u32;
        for (t, &v) in c.iter().enumerate() {
            due |= ((v <= e) as u32) << t;
        }
        if due != 0 {
            return at + due.trailing_zeros() as usize;
        }
        at += 16;
    }
    at + chunks
        .remainder()
        .iter()
        .position(|&v| v <= e)
        .unwrap_or(chunks.remainder().len())
}

/// Marks a lane with no edge.
const IDLE: usize = usize::MAX;

impl Epoch<'_> {
    /// First coordinate of the negative sample drawn by `state`.
    #[inline(always)]
    fn sample<const D: usize>(&self, state: u64) -> usize {
        (((state >> 32) * self.n as u64) >> 32) as usize * D
    }

    /// The due edges of the block at `base` (its clocks `next_s`, `next_n`) this epoch, into
    /// `due`, with their samples booked in the clocks. The block is cut into [`LANES`] runs, one
    /// a lane.
    fn find_due(&self, base: usize, next_s: &mut [f32], next_n: &mut [f32], due: &mut DueEdges) {
        let (edges, e) = (self.edges, self.e);
        let len = next_s.len();
        for v in [&mut due.head, &mut due.tail, &mut due.left] {
            v.clear();
        }
        due.state.clear();
        due.after.clear();
        for l in 0..LANES {
            due.start[l] = due.head.len();
            let (mut o, hi) = (l * len / LANES, (l + 1) * len / LANES);
            loop {
                o += first_due(&next_s[o..hi], e);
                if o == hi {
                    break;
                }
                let i = base + o;
                let eps = edges.epochs_per_sample[i];
                next_s[o] += eps;
                let eps_neg = eps / self.negative_sample_rate;
                let left = ((e - next_n[o]) / eps_neg).max(0.0) as u32;
                next_n[o] += left as f32 * eps_neg;
                let state = splitmix64(splitmix64(self.seed ^ i as u64));
                due.head.push(edges.head[i]);
                due.tail.push(edges.tail[i]);
                due.left.push(left);
                due.state.push(state);
                due.after.push(splitmix64(state));
                o += 1;
            }
        }
        due.start[LANES] = due.head.len();
    }

    /// Lane `l` between edges: writes its head back, then takes its run's next due edge (its
    /// head's position into `cur`, its tail's into `other`; true) or, at the run's end, idles
    /// (repelling from itself, which moves nothing; false). Starts fetching what the lane reads
    /// next: the tail point of the run's next edge (a random read, fetched while this edge's
    /// samples run) and this edge's first two negative samples' points.
    #[inline(always)]
    fn next_edge<const D: usize>(&self, lanes: &mut Lanes<D>, l: usize, due: &DueEdges) -> bool {
        let emb = self.emb;
        if lanes.head[l] != IDLE {
            for (d, c) in lanes.cur.iter().enumerate() {
                emb.set(lanes.head[l] + d, c[l]);
            }
            lanes.head[l] = IDLE;
        }
        let i = lanes.next[l];
        if i == lanes.end[l] {
            for (o, c) in lanes.other.iter_mut().zip(&lanes.cur) {
                o[l] = c[l];
            }
            return false;
        }
        lanes.next[l] = i + 1;
        if i + 1 < lanes.end[l] {
            prefetch(&emb.0[due.tail[i + 1] as usize * D]);
        }
        let (state, after, left) = (due.state[i], due.after[i], due.left[i]);
        if left > 0 {
            prefetch(&emb.0[self.sample::<D>(state)]);
        }
        if left > 1 {
            prefetch(&emb.0[self.sample::<D>(after)]);
        }
        let (head, tail) = (due.head[i] as usize * D, due.tail[i] as usize * D);
        (lanes.head[l], lanes.tail[l]) = (head, tail);
        for d in 0..D {
            lanes.cur[d][l] = emb.get(head + d);
            lanes.other[d][l] = emb.get(tail + d);
        }
        (lanes.state[l], lanes.after[l]) = (state, after);
        lanes.left[l] = left;
        true
    }

    /// Ends lane `l`'s positive sample: its head (moved already) is written back and its tail
    /// moves by the step's negative, as umap-learn's `move_other`.
    #[inline(always)]
    fn move_both_ends<const D: usize>(&self, lanes: &Lanes<D>, l: usize, step: &Coords<D>) {
        let (emb, head, tail) = (self.emb, lanes.head[l], lanes.tail[l]);
        for (d, (c, g)) in lanes.cur.iter().zip(step).enumerate() {
            emb.set(head + d, c[l]);
            emb.set(tail + d, emb.get(tail + d) - g[l]);
        }
    }

    /// One epoch over a block's due edges `due` in `D` dimensions. Each lane walks its run, an
    /// edge at a time: its positive sample
    /// (head and tail attract, both written back), then its negative samples (the head, held
    /// in the lane, is pushed from random points), then the head is written back. The lanes
    /// move in lockstep, one sample each per step; each edge's own samples keep umap-learn's
    /// order. A step reads the negative samples' points first, then the lanes between edges
    /// write their heads back and read their next edges (in lane order), then moves every lane.
    #[inline(always)]
    fn block<const D: usize, M: LaneMath>(&self, due: &DueEdges) {
        let emb = self.emb;
        let mut lanes = Lanes::<D>::new(due);
        loop {
            let mut attract = [false; LANES];
            let negative: [bool; LANES] = std::array::from_fn(|l| lanes.left[l] > 0);
            let mut busy = false;
            for l in (0..LANES).filter(|&l| negative[l]) {
                busy = true;
                let k = self.sample::<D>(lanes.state[l]);
                for (d, o) in lanes.other.iter_mut().enumerate() {
                    o[l] = emb.get(k + d);
                }
                lanes.left[l] -= 1;
                lanes.state[l] = lanes.after[l];
                lanes.after[l] = splitmix64(lanes.after[l]);
                if lanes.left[l] > 1 {
                    // The point two samples on is known now: start fetching it (the
                    // embedding outgrows the core's cache at a million points).
                    prefetch(&emb.0[self.sample::<D>(lanes.after[l])]);
                }
            }
            for l in (0..LANES).filter(|&l| !negative[l]) {
                attract[l] = self.next_edge(&mut lanes, l, due);
                busy |= attract[l];
            }
            if !busy {
                break;
            }
            let step = M::step(&mut lanes.cur, &lanes.other, &attract, &self.step);
            for l in (0..LANES).filter(|&l| attract[l]) {
                self.move_both_ends(&lanes, l, &step);
            }
        }
    }

    /// One epoch over the edges `base..base + next_s.len()` (the block's clocks `next_s`,
    /// `next_n`) in `dim` dimensions with the lane arithmetic `lanes` (the SIMD kinds serve 2-D
    /// layouts; other dimensions take the portable lanes): its due edges are found, then walked.
    fn run_block(
        &self,
        dim: usize,
        lanes: LaneKind,
        base: usize,
        next_s: &mut [f32],
        next_n: &mut [f32],
    ) {
        DUE.with_borrow_mut(|due| {
            #[cfg(target_arch = "x86_64")]
            match lanes {
                // Edges past 2³² (their indices do not fit its lists) take the AVX2 lanes: the
                // same bits.
                // SAFETY (all): `optimize_layout_with` keeps a kind only where the CPU has it,
                // and AVX-512's includes AVX2's.
                LaneKind::Avx512 if dim == 2 && base + next_s.len() <= u32::MAX as usize => {
                    return unsafe {
                        avx512::find_due(self, base, next_s, next_n, due);
                        avx512::walk2(self, due)
                    };
                }
                LaneKind::Avx2 | LaneKind::Avx512 if dim == 2 => {
                    self.find_due(base, next_s, next_n, due);
                    return unsafe { avx2::walk2(self, due) };
                }
                _ => {}
            }
            let _ = lanes;
            self.find_due(base, next_s, next_n, due);
            macro_rules! run {
                ($d:literal) => {
                    self.block::<$d, Portable>(due)
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
        })
    }
}

/// Which lane arithmetic an epoch runs (the SIMD kinds in 2-D only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LaneKind {
    /// [`Portable`]: any CPU, any dimension.
    Portable,
    /// AVX2 + FMA: eight lanes to a register.
    Avx2,
    /// AVX-512 (F, DQ) with AVX2 + FMA: every lane in one register, and the negative samples'
    /// bookkeeping (random streams, sample indices, counts) vectorized too.
    Avx512,
}

impl LaneKind {
    /// The fastest kind this CPU runs.
    fn best() -> LaneKind {
        [LaneKind::Avx512, LaneKind::Avx2]
            .into_iter()
            .find(|k| k.available())
            .unwrap_or(LaneKind::Portable)
    }

    /// Whether this CPU runs this kind.
    fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        return match self {
            LaneKind::Portable => true,
            LaneKind::Avx2 => avx2::available(),
            LaneKind::Avx512 => avx512::available(),
        };
        #[cfg(not(target_arch = "x86_64"))]
        return self == LaneKind::Portable;
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
    asked: Option<CpuLayoutLanes>,
) -> Result<()> {
    // One lane kind when asked (for benchmarks; the portable lanes where this CPU lacks it).
    let lanes = match asked {
        None => LaneKind::best(),
        Some(CpuLayoutLanes::Portable) => LaneKind::Portable,
        Some(CpuLayoutLanes::Avx2) => LaneKind::Avx2,
        Some(CpuLayoutLanes::Avx512) => LaneKind::Avx512,
    };
    optimize_layout_with(embedding, dim, edges, params, on_epoch, lanes)
}

/// [`optimize_layout`] with the lane arithmetic chosen by the caller (the portable lanes where
/// the CPU lacks the kind asked for).
fn optimize_layout_with(
    embedding: &mut [f32],
    dim: usize,
    edges: &EdgeList,
    params: &LayoutParams,
    on_epoch: &(dyn Fn(usize) + Sync),
    lanes: LaneKind,
) -> Result<()> {
    let n = check_layout_args(embedding.len(), dim, edges)?;
    let m = edges.head.len();
    if n == 0 || m == 0 {
        return Ok(());
    }
    let lanes = if lanes.available() {
        lanes
    } else {
        LaneKind::Portable
    };
    // SAFETY: AtomicU32 has the size and alignment of f32, and the exclusive borrow of
    // `embedding` is held (through `emb`) for as long as the atomic view is used.
    let emb: &[AtomicU32] = unsafe {
        std::slice::from_raw_parts(embedding.as_mut_ptr() as *const AtomicU32, embedding.len())
    };
    let emb = Shared(emb);
    let mut clocks = EdgeClocks::new(edges, params.negative_sample_rate);
    for epoch_no in 0..params.n_epochs {
        let seed = splitmix64(params.seed ^ (epoch_no as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let epoch = Epoch {
            emb: &emb,
            edges,
            negative_sample_rate: params.negative_sample_rate,
            step: Step {
                a: params.a,
                b: params.b,
                gamma: params.gamma,
                alpha: 1.0 - epoch_no as f32 / params.n_epochs as f32,
            },
            n,
            e: epoch_no as f32,
            seed,
        };
        clocks
            .next_sample
            .par_chunks_mut(EDGES_PER_TASK)
            .zip(clocks.next_negative.par_chunks_mut(EDGES_PER_TASK))
            .enumerate()
            .for_each(|(t, (next_s, next_n))| {
                epoch.run_block(dim, lanes, t * EDGES_PER_TASK, next_s, next_n)
            });
        on_epoch(epoch_no);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, Rng, SeedableRng};

    /// A random graph of `n` points with 10 edges each (sorted by head, as `ops::umap` sends
    /// them) and a random start.
    fn problem(n: usize, seed: u64) -> (Vec<f32>, EdgeList) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut edges = EdgeList::default();
        for j in 0..n as u32 {
            for _ in 0..10 {
                let k = rng.random_range(0..n as u32);
                if k != j {
                    edges.head.push(j);
                    edges.tail.push(k);
                    edges.epochs_per_sample.push(rng.random_range(1.0f32..4.0));
                }
            }
        }
        let start = (0..2 * n).map(|_| rng.random_range(-10.0..10.0)).collect();
        (start, edges)
    }

    /// The layout from `start` by the portable lanes, and by each SIMD kind this CPU has, each
    /// on one thread: the same lanes then meet the same points in the same order on every path,
    /// so they differ only by the rounding of d²ᵇ (and FMA). Says so when the CPU has none.
    fn all_paths(
        start: &[f32],
        edges: &EdgeList,
        params: &LayoutParams,
    ) -> (Vec<f32>, Vec<(LaneKind, Vec<f32>)>) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let run = |lanes: LaneKind| {
            let mut emb = start.to_vec();
            pool.install(|| optimize_layout_with(&mut emb, 2, edges, params, &|_| {}, lanes))
                .unwrap();
            emb
        };
        let simd: Vec<_> = [LaneKind::Avx2, LaneKind::Avx512]
            .into_iter()
            .filter(|k| k.available())
            .map(|k| (k, run(k)))
            .collect();
        if simd.is_empty() {
            eprintln!("skipping: this CPU has no SIMD lane arithmetic (AVX2 + FMA)");
        }
        (run(LaneKind::Portable), simd)
    }

    #[test]
    fn first_due_finds_the_first_clock_at_or_before_the_epoch() {
        let mut rng = SmallRng::seed_from_u64(9);
        for len in 0..70 {
            for _ in 0..20 {
                // Half-epoch clocks, so some fall due exactly at the epoch.
                let clocks: Vec<f32> = (0..len)
                    .map(|_| rng.random_range(0..80) as f32 * 0.5)
                    .collect();
                let e = rng.random_range(0..5) as f32;
                let want = clocks.iter().position(|&c| c <= e).unwrap_or(len);
                assert_eq!(first_due(&clocks, e), want, "{clocks:?} at {e}");
            }
        }
    }

    #[test]
    fn one_edge_runs_alike_with_and_without_simd() {
        // The CUDA parity test's single edge (tests/cuda.rs): the device's `powf` is libm-like,
        // so the SIMD polynomials must stay as close to the portable lanes as it allows.
        let params = LayoutParams {
            a: 1.577,
            b: 0.895,
            gamma: 1.0,
            negative_sample_rate: 5.0,
            n_epochs: 50,
            seed: 11,
        };
        let mut rng = SmallRng::seed_from_u64(3);
        let start: Vec<f32> = (0..40 * 2).map(|_| rng.random_range(-10.0..10.0)).collect();
        let one = EdgeList {
            head: vec![3],
            tail: vec![17],
            epochs_per_sample: vec![1.0],
        };
        let (portable, simd) = all_paths(&start, &one, &params);
        assert_ne!(portable, start, "nothing moved");
        for (kind, simd) in simd {
            for (i, (a, b)) in simd.iter().zip(&portable).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 + 1e-5 * b.abs(),
                    "{kind:?}, coordinate {i}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn simd_lanes_follow_the_portable_lanes() {
        let params = LayoutParams {
            a: 0.583,
            b: 1.334,
            gamma: 1.0,
            negative_sample_rate: 5.0,
            n_epochs: 3,
            seed: 5,
        };
        let (start, edges) = problem(3_000, 1);
        let (portable, simd) = all_paths(&start, &edges, &params);
        let moved = portable.iter().zip(&start).filter(|(a, b)| a != b).count();
        assert!(moved > 5_000, "only {moved} coordinates moved");
        for (kind, simd) in &simd {
            let worst = portable
                .iter()
                .zip(simd)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            eprintln!("{kind:?}: largest coordinate difference {worst}");
            assert!(
                worst < 1e-3,
                "{kind:?}: largest coordinate difference {worst}"
            );
        }
        // The AVX-512 lanes do the AVX2 lanes' operations in the same order: the same bits.
        if let [(_, avx2), (_, avx512)] = &simd[..] {
            assert!(avx2 == avx512, "the AVX2 and AVX-512 layouts differ");
        }
    }
}
