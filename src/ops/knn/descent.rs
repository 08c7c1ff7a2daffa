//! NN-descent: a random-projection-tree start, then local joins of neighbours' neighbours until
//! few slots improve, on heaps sized from the data and grown until a checked recall holds.

use rayon::prelude::*;

use super::candidates::candidate_lists;
use super::check::Check;
use super::heaps::{Heaps, SharedHeaps};
use super::rptree::rp_leaves;
use super::{check_k, Knn};
use crate::backend::points::sq_dist_f32;
use crate::backend::Points;
use crate::error::{Error, Result};
use crate::ops::pairs::{prefetch_rows, PairBlock};
use crate::simd::{prefetch, prefetch_span, splitmix64};

/// NN-descent settings.
#[derive(Clone, Copy, Debug)]
pub struct DescentOptions {
    /// Random-projection trees for the starting graph.
    pub n_trees: usize,
    /// Points per tree leaf.
    pub leaf_size: usize,
    /// Most local-join rounds.
    pub max_iters: usize,
    /// Stop when a round improves fewer than `delta · n · k` neighbour slots.
    pub delta: f64,
    /// Most new (and, separately, old) join candidates per point and round.
    pub max_candidates: usize,
    /// Neighbours kept per point while searching (≥ k; the nearest k are returned); `None`
    /// sizes them from the data ([`heap_factor`]).
    pub heap_neighbors: Option<usize>,
    /// Recall of the k − 1 nearest other points that the graph must reach on the points whose
    /// neighbours were found exactly before the search; below it the heaps grow by half and the
    /// joins go on (at most [`MAX_GROWS`] times). 0 checks nothing.
    pub min_recall: f64,
    /// Points whose local joins are computed before their updates are applied (bounds the
    /// update lists' memory).
    pub join_group: usize,
    /// Seed of the trees and the candidate sampling.
    pub seed: u64,
}

impl DescentOptions {
    /// Defaults for `k` neighbours of `n` points: pynndescent's iteration rule, fewer trees,
    /// 4k join candidates, heaps sized from the data ([`heap_factor`]) and a recall of 0.95
    /// checked.
    pub fn for_n(n: usize, k: usize, seed: u64) -> Self {
        DescentOptions {
            n_trees: (4 + (n as f64).sqrt() as usize / 200).min(12),
            leaf_size: 32,
            max_iters: ((n.max(2) as f64).log2().round() as usize).max(5),
            delta: 0.001,
            heap_neighbors: None,
            min_recall: MIN_RECALL,
            max_candidates: 4 * k,
            join_group: JOIN_GROUP,
            seed,
        }
    }
}

/// Recall the default search must reach on its checked points: 0.95 of the exact k − 1 nearest
/// neighbours (pynndescent reaches 0.66–0.99 depending on the data; docs/design/knn.md).
pub const MIN_RECALL: f64 = 0.95;

/// Most times the heaps grow after a check finds the recall short.
pub const MAX_GROWS: usize = 3;

/// Heap size, in units of k, for `n` points whose local intrinsic dimension near their
/// neighbours is `lid` (the checked points' median MLE estimate): 1.5 up to a dimension of 20;
/// from 28, 2 growing to 3 as n grows from 250k to 1M; linear in the dimension between. Chosen so
/// that the search reaches [`MIN_RECALL`] on isotropic spaces and at least pynndescent's recall
/// on low-dimensional ones (docs/design/knn.md has the measurements).
pub fn heap_factor(lid: f64, n: usize) -> f64 {
    let t = ((lid - 20.0) / 8.0).clamp(0.0, 1.0);
    let grow = ((n.max(1) as f64 / 250_000.0).log2() / 2.0).clamp(0.0, 1.0);
    let high = 2.0 * (1.0 + grow / 2.0);
    1.5 + t * (high - 1.5)
}

/// What one NN-descent search did.
#[derive(Clone, Debug, PartialEq)]
pub struct DescentReport {
    /// Neighbours kept per point at the end (the heaps' size, the point itself included).
    pub heap_neighbors: usize,
    /// Median local intrinsic dimension of the checked points (NaN when none could be
    /// estimated).
    pub intrinsic_dim: f64,
    /// Points whose exact neighbours checked the graph (0: no check).
    pub checked: usize,
    /// Recall of their k − 1 nearest other points, a point as far as the (k − 1)-th counted
    /// as one of them (NaN without a check).
    pub recall: f64,
    /// Times the heaps grew.
    pub grows: usize,
    /// Local-join rounds run.
    pub rounds: usize,
}

/// Default [`DescentOptions::join_group`].
pub(super) const JOIN_GROUP: usize = 1 << 16;

/// Points whose local joins one task computes.
const JOIN_TASK: usize = 512;

/// Join tasks per thread whose updates are applied together (the update lists hold theirs).
const WAVE_TASKS_PER_THREAD: usize = 2;

/// Random-projection-tree leaves joined in order by one task (each prefetches the next).
const LEAVES_PER_TASK: usize = 64;

/// Updates between an update's heap-row prefetch and its application.
const APPLY_AHEAD: usize = 8;

/// One proposed neighbour: (point, candidate, squared distance).
type Update = (u32, u32, f32);

/// Approximate kNN by NN-descent, with what the search did; `progress(round)` after each
/// local-join round.
///
/// The search runs on a copy of the points in the leaf order of one random-projection tree:
/// neighbours (and neighbours of neighbours, the join candidates) then sit close together in
/// memory, so the random reads of the joins mostly hit cache. Results come back in the caller's
/// order and indices. [`nn_descent_owned`] finds the same graph without the copy.
pub fn nn_descent(
    points: Points<'_>,
    k: usize,
    opts: &DescentOptions,
    progress: &dyn Fn(usize),
) -> Result<(Knn, DescentReport)> {
    let order = leaf_order(points, k, opts)?;
    let dim = points.dim();
    let mut local = vec![0f32; points.len() * dim];
    local
        .par_chunks_mut(dim.max(1))
        .zip(order.par_iter())
        .for_each(|(row, &p)| row.copy_from_slice(points.row(p as usize)));
    let (found, report) = descend(Points::new(&local, dim)?, k, opts, progress)?;
    drop(local);
    Ok((in_caller_order(&found, &order), report))
}

/// [`nn_descent`] on points given by value (`data` row-major, `dim` columns): the search
/// reorders them in place instead of copying them, so they are held once, and frees them
/// before the graph is put back in the caller's order. Same graph and report as
/// [`nn_descent`] for the same points and options.
pub fn nn_descent_owned(
    mut data: Vec<f32>,
    dim: usize,
    k: usize,
    opts: &DescentOptions,
    progress: &dyn Fn(usize),
) -> Result<(Knn, DescentReport)> {
    let order = leaf_order(Points::new(&data, dim)?, k, opts)?;
    gather_rows(&mut data, dim, &order);
    let (found, report) = descend(Points::new(&data, dim)?, k, opts, progress)?;
    drop(data);
    Ok((in_caller_order(&found, &order), report))
}

/// The search's order of the points: the leaf order of one random-projection tree
/// (`order[pos]` is the point at position `pos`). Checks `k` first.
fn leaf_order(points: Points<'_>, k: usize, opts: &DescentOptions) -> Result<Vec<u32>> {
    let n = points.len();
    check_k(n, k)?;
    let mut order: Vec<u32> = (0..n as u32).collect();
    rp_leaves(
        points,
        &mut order,
        opts.leaf_size.max(2),
        splitmix64(opts.seed ^ 0x0DE7),
        &mut Vec::new(),
        0,
    );
    Ok(order)
}

/// Reorders the rows of `data` (`dim` columns) in place so that row `pos` holds what row
/// `order[pos]` held (`order` a permutation of the rows), one cycle of the permutation at a
/// time through a one-row buffer.
fn gather_rows(data: &mut [f32], dim: usize, order: &[u32]) {
    let mut done = vec![false; order.len()];
    let mut held = vec![0f32; dim];
    let span = |r: usize| r * dim..(r + 1) * dim;
    for start in 0..order.len() {
        if done[start] || order[start] as usize == start {
            continue;
        }
        held.copy_from_slice(&data[span(start)]);
        let mut at = start;
        loop {
            done[at] = true;
            let from = order[at] as usize;
            if from == start {
                data[span(at)].copy_from_slice(&held);
                break;
            }
            // The row after next is a random one: fetch it while this one moves.
            prefetch_span(data.as_ptr().wrapping_add(order[from] as usize * dim), dim);
            data.copy_within(span(from), at * dim);
            at = from;
        }
    }
}

/// The graph `found` of the points in the search's `order`, in the caller's order and indices.
fn in_caller_order(found: &Knn, order: &[u32]) -> Knn {
    let (n, k) = (found.len(), found.k);
    let mut indices = vec![0u32; n * k];
    let mut distances = vec![0f32; n * k];
    for (pos, &p) in order.iter().enumerate() {
        let at = p as usize * k;
        for (s, &j) in found.row(pos).iter().enumerate() {
            indices[at + s] = order[j as usize];
        }
        distances[at..at + k].copy_from_slice(found.row_distances(pos));
    }
    Knn {
        k,
        indices,
        distances,
    }
}

/// Updates per segment of [`TaskUpdates`].
const SEGMENT: usize = 512;

/// One join task's proposed updates by shard, each shard's in the order proposed, in
/// fixed-size segments kept for reuse: no buffer grows by copying, memory follows what the
/// task proposed (plus at most one partly filled segment per shard), and a reused task slot
/// needs no new memory.
struct TaskUpdates {
    /// Per shard: its segments in order, and how many updates the last one holds.
    shards: Vec<(Vec<Box<[Update]>>, usize)>,
    /// Emptied segments.
    spare: Vec<Box<[Update]>>,
}

impl TaskUpdates {
    fn new(shards: usize) -> Self {
        TaskUpdates {
            shards: (0..shards).map(|_| (Vec::new(), SEGMENT)).collect(),
            spare: Vec::new(),
        }
    }

    /// Empties every shard, keeping the segments.
    fn clear(&mut self) {
        for (segments, fill) in &mut self.shards {
            self.spare.append(segments);
            *fill = SEGMENT;
        }
    }

    /// Appends `u` to shard `s`.
    #[inline]
    fn push(&mut self, s: usize, u: Update) {
        let (segments, fill) = &mut self.shards[s];
        if *fill == SEGMENT {
            let fresh = self.spare.pop();
            segments.push(fresh.unwrap_or_else(|| vec![(0, 0, 0.0); SEGMENT].into_boxed_slice()));
            *fill = 0;
        }
        if let Some(last) = segments.last_mut() {
            last[*fill] = u;
        }
        *fill += 1;
    }

    /// Shard `s`'s updates in the order pushed, a segment at a time.
    fn shard(&self, s: usize) -> impl Iterator<Item = &[Update]> {
        let (segments, fill) = &self.shards[s];
        let last = segments.len().saturating_sub(1);
        segments
            .iter()
            .enumerate()
            .map(move |(i, seg)| if i == last { &seg[..*fill] } else { &seg[..] })
    }
}

/// NN-descent proper, on points in a locality-friendly order.
fn descend(
    points: Points<'_>,
    k: usize,
    opts: &DescentOptions,
    progress: &dyn Fn(usize),
) -> Result<(Knn, DescentReport)> {
    let n = points.len();
    let check = (opts.min_recall > 0.0 || opts.heap_neighbors.is_none())
        .then(|| Check::new(points, k - 1, opts.seed));
    let lid = check.as_ref().map_or(f64::NAN, Check::intrinsic_dim);
    // Heaps wider than k − 1 keep second-tier neighbours as join candidates: recall in high
    // intrinsic dimension rises far more than the extra distances cost.
    let wanted = opts.heap_neighbors.unwrap_or_else(|| {
        // No estimate (every checked point has duplicates at distance 0): the widest start.
        let factor = heap_factor(if lid.is_nan() { f64::INFINITY } else { lid }, n);
        (k as f64 * factor).round() as usize
    });
    let mut m = wanted.max(k).min(n) - 1;
    let mut heaps = Heaps::new(n, m);
    tree_start(points, &mut heaps, opts);
    let mut rounds = join_rounds(points, &mut heaps, k, opts, 0, progress);
    let mut recall = check
        .as_ref()
        .map_or(f64::NAN, |c| c.recall(points, &heaps));
    let mut grows = 0;
    while grows < MAX_GROWS && recall < opts.min_recall && m + 1 < n {
        // Short of the recall: wider heaps, every entry joined again.
        m = (((m + 1) as f64 * 1.5).round() as usize).min(n) - 1;
        heaps = heaps.grown(m);
        grows += 1;
        rounds += join_rounds(points, &mut heaps, k, opts, rounds, progress);
        recall = check
            .as_ref()
            .map_or(f64::NAN, |c| c.recall(points, &heaps));
    }
    let report = DescentReport {
        heap_neighbors: m + 1,
        intrinsic_dim: lid,
        checked: check.as_ref().map_or(0, |c| c.ids.len()),
        recall,
        grows,
        rounds,
    };
    // Only the heaps' indices are needed now (distances are computed afresh): the rest is
    // freed before the graph is allocated.
    let Heaps { m, i, .. } = heaps;
    finish(points, &i, m, k).map(|knn| (knn, report))
}

/// Starts the heaps with all pairs inside the leaves of a few random-projection trees.
fn tree_start(points: Points<'_>, heaps: &mut Heaps, opts: &DescentOptions) {
    let (n, m) = (points.len(), heaps.m);
    for t in 0..opts.n_trees {
        let mut ids: Vec<u32> = (0..n as u32).collect();
        let mut leaves = Vec::new();
        rp_leaves(
            points,
            &mut ids,
            opts.leaf_size.max(m + 2),
            splitmix64(opts.seed ^ ((t as u64 + 1) * 0x51)),
            &mut leaves,
            0,
        );
        let shared = SharedHeaps::new(heaps);
        // A leaf's points and heap rows lie scattered over memory: each task fetches the next
        // leaf's while it joins the current one.
        leaves
            .par_chunks(LEAVES_PER_TASK)
            .for_each_init(PairBlock::default, |block, run| {
                for (t, &(s, e)) in run.iter().enumerate() {
                    if let Some(&(s2, e2)) = run.get(t + 1) {
                        prefetch_rows(points, &ids[s2..e2]);
                        ids[s2..e2]
                            .iter()
                            .for_each(|&p| shared.prefetch(p as usize));
                    }
                    let leaf = &ids[s..e];
                    // SAFETY (every `row` call below): the leaves of one tree partition the
                    // points, only this task touches the points of its leaf, and each row view
                    // is dropped before the next is made.
                    block.load(points, leaf.iter().copied(), |p| unsafe {
                        shared.row(p as usize).d[0]
                    });
                    block.for_close_pairs(leaf.len(), |x, y, d| {
                        let (p, q) = (leaf[x], leaf[y]);
                        unsafe { shared.row(p as usize) }.push(d, q);
                        unsafe { shared.row(q as usize) }.push(d, p);
                    });
                }
            });
    }
}

/// Local-join rounds until fewer than `delta · n · k` slots improve or `max_iters` rounds have
/// run (numbered from `first` for their seeds and `progress`); returns how many ran.
fn join_rounds(
    points: Points<'_>,
    heaps: &mut Heaps,
    k: usize,
    opts: &DescentOptions,
    first: usize,
    progress: &dyn Fn(usize),
) -> usize {
    let (n, m) = (points.len(), heaps.m);
    let mut ran = 0;
    // Updates are applied by shard, a power-of-two range of points each (a shift, not a
    // division, per update), more than 4 and at most 8 a thread.
    let shift = (n.div_ceil((rayon::current_num_threads() * 8).max(1)))
        .next_power_of_two()
        .trailing_zeros();
    let shards = ((n.max(1) - 1) >> shift) + 1;
    let shard_of = |p: u32| (p >> shift) as usize;
    let max_cand = opts.max_candidates.max(m);
    let wave = rayon::current_num_threads().max(1) * WAVE_TASKS_PER_THREAD;
    let mut lists: Vec<TaskUpdates> = (0..wave).map(|_| TaskUpdates::new(shards)).collect();
    for round in first..first + opts.max_iters {
        // Candidates: new and old neighbours of each point, plus the reverse edges, capped.
        // Old candidates only matter to points with new ones (joins pair a new candidate with
        // the rest).
        let seed = splitmix64(opts.seed ^ 0xD1B5 ^ round as u64);
        let (new_c, old_c) = candidate_lists(heaps, max_cand, seed);
        heaps.new.fill(false);
        // Local joins, a group of points at a time: distances among each point's candidates,
        // proposed to both ends when they beat the end's current farthest neighbour (as the
        // group began), then applied by shard, and the group's thresholds are taken afresh.
        // Groups let later points prune with tighter thresholds. The joins read no heap, so a
        // group's updates are applied a wave of tasks at a time, in task order (each heap row
        // gets the group's updates in the same order, whatever the waves): the update lists
        // hold one wave's (a whole group's were hundreds of megabytes).
        let mut changed = 0usize;
        let group = opts.join_group.max(1);
        for g0 in (0..n).step_by(group) {
            let thr = heaps.thresholds();
            let g1 = (g0 + group).min(n);
            let tasks = (g1 - g0).div_ceil(JOIN_TASK);
            for w0 in (0..tasks).step_by(wave) {
                let w1 = (w0 + wave).min(tasks);
                let lists = &mut lists[..w1 - w0];
                lists.par_iter_mut().enumerate().for_each(|(t, out)| {
                    out.clear();
                    let lo = g0 + (w0 + t) * JOIN_TASK;
                    let hi = (lo + JOIN_TASK).min(g1);
                    let mut block = PairBlock::default();
                    let mut cand = Vec::new();
                    for p in lo..hi {
                        if p + 1 < hi && !new_c.row(p + 1).is_empty() {
                            for ids in [new_c.row(p + 1), old_c.row(p + 1)] {
                                prefetch_rows(points, ids);
                                ids.iter().for_each(|&c| prefetch(&thr[c as usize]));
                            }
                        }
                        let new = new_c.row(p);
                        if new.is_empty() {
                            // Joins pair a new candidate with the others: none, no pairs.
                            continue;
                        }
                        cand.clear();
                        cand.extend_from_slice(new);
                        cand.extend_from_slice(old_c.row(p));
                        block.load(points, cand.iter().copied(), |c| thr[c as usize]);
                        block.for_close_pairs(new.len(), |x, y, d| {
                            let (a, b) = (cand[x], cand[y]);
                            if a == b {
                                return;
                            }
                            if d < thr[a as usize] {
                                out.push(shard_of(a), (a, b, d));
                            }
                            if d < thr[b as usize] {
                                out.push(shard_of(b), (b, a, d));
                            }
                        });
                    }
                });
                let lists = &*lists;
                let shared = SharedHeaps::new(heaps);
                changed += (0..shards)
                    .into_par_iter()
                    .map(|s| {
                        let mut c = 0;
                        for ups in lists.iter().flat_map(|task| task.shard(s)) {
                            for (t, &(p, q, d)) in ups.iter().enumerate() {
                                if let Some(&(ahead, _, _)) = ups.get(t + APPLY_AHEAD) {
                                    shared.prefetch(ahead as usize);
                                }
                                // SAFETY: shard s owns the points p with shard_of(p) == s, and
                                // only this task applies shard s's updates.
                                let mut row = unsafe { shared.row(p as usize) };
                                c += row.push(d, q) as usize;
                            }
                        }
                        c
                    })
                    .sum::<usize>();
            }
        }
        drop((new_c, old_c));
        // Each round's candidate lists differ in size from the last's; the allocator (which
        // keeps freed memory) would otherwise hold every round's holes besides the next's.
        crate::mem::release_free_memory();
        progress(round + 1);
        ran += 1;
        if (changed as f64) < opts.delta * (n * k) as f64 {
            break;
        }
    }
    ran
}

/// The k nearest of each point's `m` heap entries (`heap_ids`, a row of m per point), sorted,
/// the point itself first.
fn finish(points: Points<'_>, heap_ids: &[u32], m: usize, k: usize) -> Result<Knn> {
    let n = points.len();
    // Sorted rows, the point itself first. The distances are computed afresh: the AVX-512
    // tiles' ‖x‖² + ‖y‖² − 2x·y form found the neighbours but cancels (see `ops::pairs`).
    let mut indices = vec![0u32; n * k];
    let mut distances = vec![0f32; n * k];
    indices
        .par_chunks_mut(k)
        .zip(distances.par_chunks_mut(k))
        .enumerate()
        .for_each(|(p, (ri, rd))| {
            let o = p * m;
            let exact = |j: u32| match j {
                u32::MAX => f32::INFINITY,
                j => sq_dist_f32(points.row(p), points.row(j as usize)),
            };
            let mut e: Vec<(f32, u32)> =
                heap_ids[o..o + m].iter().map(|&j| (exact(j), j)).collect();
            e.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
            ri[0] = p as u32;
            rd[0] = 0.0;
            for (s, (d, j)) in e.into_iter().take(k - 1).enumerate() {
                ri[s + 1] = j;
                rd[s + 1] = d.sqrt();
            }
        });
    if indices.contains(&u32::MAX) {
        return Err(Error::InvalidArgument(format!(
            "NN-descent found fewer than {m} neighbours for some point (n = {n})"
        )));
    }
    Ok(Knn {
        k,
        indices,
        distances,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::seq::SliceRandom;
    use rand::SeedableRng;

    #[test]
    fn rows_gathered_in_place_equal_rows_copied() {
        let (n, dim) = (1000, 3);
        let data: Vec<f32> = (0..n * dim).map(|v| v as f32 * 0.5).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.shuffle(&mut rng);
        // Some rows stay where they are.
        for p in [0, 17, 999] {
            let at = order.iter().position(|&o| o == p).unwrap();
            order.swap(at, p as usize);
        }
        let copied: Vec<f32> = order
            .iter()
            .flat_map(|&o| {
                data[o as usize * dim..(o as usize + 1) * dim]
                    .iter()
                    .copied()
            })
            .collect();
        let mut moved = data.clone();
        gather_rows(&mut moved, dim, &order);
        assert_eq!(moved, copied);
        assert_eq!(&moved[17 * dim..18 * dim], &data[17 * dim..18 * dim]);
    }

    #[test]
    fn task_updates_keep_each_shards_order_over_segments_and_reuse() {
        let mut u = TaskUpdates::new(3);
        for round in 0..2u32 {
            u.clear();
            let mut want: Vec<Vec<Update>> = vec![Vec::new(); 3];
            // Shard 1 fills several segments, shard 2 one partly, shard 0 none.
            for i in 0..(2 * SEGMENT as u32 + 5) {
                let e = (i, round, i as f32);
                u.push(1, e);
                want[1].push(e);
                if i % 7 == 0 {
                    u.push(2, (i + 1, round, 0.5));
                    want[2].push((i + 1, round, 0.5));
                }
            }
            for (s, w) in want.iter().enumerate() {
                let got: Vec<Update> = u.shard(s).flatten().copied().collect();
                assert_eq!(&got, w, "shard {s}, round {round}");
            }
        }
        // The second round reused the first one's segments.
        let held = u.spare.len() + u.shards.iter().map(|s| s.0.len()).sum::<usize>();
        assert_eq!(held, 4);
    }
}
