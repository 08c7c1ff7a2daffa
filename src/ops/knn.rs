//! k-nearest-neighbour graphs of dense points (`X_pca` rows): exact search through the backend's
//! kernel, or NN-descent (random-projection-tree start, local joins) on the CPU for large n.
//!
//! Both return each point itself first (distance 0), then its k−1 nearest other points, as
//! scanpy's `neighbors` expects of a transformer.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use rayon::prelude::*;

use crate::backend::cpu::{prefetch, prefetch_span, splitmix64};
use crate::backend::points::sq_dist_f32;
use crate::backend::{Backend, Points};
use crate::error::{Error, Result};
use crate::ops::pairs::{prefetch_rows, PairBlock};

/// The k nearest neighbours of every point, row-major n x k.
#[derive(Clone, Debug, PartialEq)]
pub struct Knn {
    /// Neighbours per point, the point itself included.
    pub k: usize,
    /// Neighbour indices (first of each row: the point itself).
    pub indices: Vec<u32>,
    /// Euclidean distances, ascending along each row (first: 0).
    pub distances: Vec<f32>,
}

impl Knn {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.indices.len() / self.k.max(1)
    }

    /// True when there are no points.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Neighbour indices of point `i`.
    pub fn row(&self, i: usize) -> &[u32] {
        &self.indices[i * self.k..(i + 1) * self.k]
    }

    /// Distances of point `i`'s neighbours.
    pub fn row_distances(&self, i: usize) -> &[f32] {
        &self.distances[i * self.k..(i + 1) * self.k]
    }
}

/// How neighbours are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum KnnMethod {
    /// Exact up to 8191 points on the CPU (scanpy's brute-force threshold) and on
    /// any GPU; NN-descent above it on the CPU.
    #[default]
    Auto,
    /// Brute force: every pair (GEMM-class work on a GPU, n² on a CPU).
    Exact,
    /// NN-descent (CPU).
    Approx,
}

/// Largest n that `auto` searches exactly on the CPU (scanpy: brute force below 8192 cells).
pub const EXACT_MAX_CPU: usize = 8191;

impl KnnMethod {
    /// The method `auto` resolves to for `n` points on `backend`.
    pub fn resolve(self, n: usize, backend: &dyn Backend) -> KnnMethod {
        match self {
            KnnMethod::Auto if n <= EXACT_MAX_CPU || !on_cpu(backend) => KnnMethod::Exact,
            KnnMethod::Auto => KnnMethod::Approx,
            m => m,
        }
    }
}

fn check_k(n: usize, k: usize) -> Result<()> {
    if k < 2 || k > n {
        return Err(Error::InvalidArgument(format!(
            "--n-neighbors {k}: must be between 2 and the number of cells ({n}); it counts each \
             cell itself"
        )));
    }
    Ok(())
}

/// Whether `backend` is the CPU one (exact search is cheap on a GPU at any size, and wants
/// larger calls there).
fn on_cpu(backend: &dyn Backend) -> bool {
    backend.name().starts_with("cpu")
}

/// Queries per backend call of the exact search on the CPU (bounds the progress step, not
/// memory). A GPU gets every query in one call: each call pads and uploads every point, and a
/// call must fill the device.
const EXACT_QUERIES_PER_CALL: usize = 8192;

/// Exact kNN through [`Backend::knn_exact`]; `progress(points_done)` after each block.
pub fn exact(
    points: Points<'_>,
    k: usize,
    backend: &dyn Backend,
    progress: &dyn Fn(usize),
) -> Result<Knn> {
    let n = points.len();
    check_k(n, k)?;
    let mut indices = vec![0u32; n * k];
    let mut distances = vec![0f32; n * k];
    let per_call = if on_cpu(backend) {
        EXACT_QUERIES_PER_CALL
    } else {
        n.max(1)
    };
    for q0 in (0..n).step_by(per_call) {
        let q1 = (q0 + per_call).min(n);
        backend.knn_exact(
            points,
            q0..q1,
            k,
            &mut indices[q0 * k..q1 * k],
            &mut distances[q0 * k..q1 * k],
        )?;
        progress(q1 - q0);
    }
    Ok(Knn {
        k,
        indices,
        distances,
    })
}

/// Fraction of the true k−1 non-self neighbours that `approx` found, over the points `sample`
/// (`truth` rows correspond to `sample`).
pub fn recall(approx: &Knn, truth: &Knn, sample: &[usize]) -> f64 {
    let (mut hit, mut all) = (0usize, 0usize);
    for (t, &i) in sample.iter().enumerate() {
        let found = &approx.row(i)[1..];
        for j in &truth.row(t)[1..] {
            all += 1;
            hit += found.contains(j) as usize;
        }
    }
    hit as f64 / all.max(1) as f64
}

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

/// Recall the default search must reach on its checked points (the 0.95 at 100k cells).
pub const MIN_RECALL: f64 = 0.95;

/// Most times the heaps grow after a check finds the recall short.
pub const MAX_GROWS: usize = 3;

/// Heap size, in units of k, for `n` points whose local intrinsic dimension near their
/// neighbours is `lid` (the checked points' median MLE estimate): 1.5 up to a dimension of 20;
/// from 28, 2 growing to 3 as n grows from 250k to 1M; linear in the dimension between.
///
/// Measured on simulated PCA spaces, recall@15 of the k − 1 nearest other points (2 cores):
/// - isotropic within each cell line (dimension ~31, scoop's preprocess + pca output): 200k,
///   heaps of 2k: 0.956, against 0.60 with heaps of k; 1M: 2k 0.91, 2.5k 0.95, 3k 0.96;
/// - variances decaying as PCA's do (dimension ~16–19, `benches/make_points.py`): 200k x 50,
///   heaps of k 0.988 in 2.2 s, 1.5k 0.998 in 3.5 s, 2k 0.9994 in 4.6 s (pynndescent: 0.994);
///   200k x 300, 1.5k 0.998 in 8.1 s, 2k 0.999 in 12.9 s; 1M x 50, k 0.975 in 16.4 s, 1.5k
///   0.996 in 22.8 s (pynndescent: 0.994 in 167 s), 3k 0.9998 in 62 s. Heaps of k would be
///   fastest, but their graph's UMAP separated the cell lines less (silhouette 0.45–0.47
///   against 0.49–0.51 from heaps of 2k, two runs each), so the low end keeps at least
///   pynndescent's recall.
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
    /// Recall of their k − 1 nearest other points (NaN without a check).
    pub recall: f64,
    /// Times the heaps grew.
    pub grows: usize,
    /// Local-join rounds run.
    pub rounds: usize,
}

/// Default [`DescentOptions::join_group`].
const JOIN_GROUP: usize = 1 << 16;

/// Per-point bounded max-heaps of (squared distance, index, is-new) of size m = k − 1.
struct Heaps {
    m: usize,
    d: Vec<f32>,
    i: Vec<u32>,
    new: Vec<bool>,
}

impl Heaps {
    fn new(n: usize, m: usize) -> Self {
        Heaps {
            m,
            d: vec![f32::INFINITY; n * m],
            i: vec![u32::MAX; n * m],
            new: vec![false; n * m],
        }
    }

    /// Largest kept squared distance of each point.
    fn thresholds(&self) -> Vec<f32> {
        self.d.par_chunks(self.m).map(|d| d[0]).collect()
    }

    /// Heaps of `m` (≥ these) holding these entries, every one flagged new so that it joins
    /// again.
    fn grown(&self, m: usize) -> Heaps {
        let n = self.i.len() / self.m.max(1);
        let mut out = Heaps::new(n, m);
        out.d
            .par_chunks_mut(m)
            .zip(out.i.par_chunks_mut(m))
            .zip(out.new.par_chunks_mut(m))
            .enumerate()
            .for_each(|(p, ((d, i), new))| {
                let mut row = HeapRow { d, i, new };
                let o = p * self.m;
                for (&j, &dj) in self.i[o..o + self.m].iter().zip(&self.d[o..o + self.m]) {
                    if j != u32::MAX {
                        row.push(dj, j);
                    }
                }
            });
        out
    }
}

struct HeapRow<'a> {
    d: &'a mut [f32],
    i: &'a mut [u32],
    new: &'a mut [bool],
}

impl HeapRow<'_> {
    /// Inserts (d, j) as new when closer than the farthest kept and not present; true if kept.
    fn push(&mut self, d: f32, j: u32) -> bool {
        if d >= self.d[0] || holds(self.i, j) {
            return false;
        }
        let m = self.d.len();
        let mut pos = 0;
        loop {
            let (l, r) = (2 * pos + 1, 2 * pos + 2);
            let mut big = pos;
            let mut bd = d;
            if l < m && self.d[l] > bd {
                big = l;
                bd = self.d[l];
            }
            if r < m && self.d[r] > bd {
                big = r;
            }
            if big == pos {
                break;
            }
            self.d[pos] = self.d[big];
            self.i[pos] = self.i[big];
            self.new[pos] = self.new[big];
            pos = big;
        }
        self.d[pos] = d;
        self.i[pos] = j;
        self.new[pos] = true;
        true
    }
}

/// Whether `ids` holds `j`: compares every entry without an early exit, eight at a time, so
/// the loop vectorizes (`contains` stops at the first hit and stays scalar).
fn holds(ids: &[u32], j: u32) -> bool {
    let chunks = ids.chunks_exact(8);
    let tail = chunks.remainder().contains(&j);
    let mut hit = [false; 8];
    for c in chunks {
        for t in 0..8 {
            hit[t] |= c[t] == j;
        }
    }
    tail || hit.iter().any(|&h| h)
}

/// Raw access to per-point heap rows from several threads at once; sound only while the threads
/// touch disjoint points (the leaves of one tree are disjoint).
struct SharedHeaps {
    m: usize,
    d: *mut f32,
    i: *mut u32,
    new: *mut bool,
}

// SAFETY: the pointers are only dereferenced through `row`, whose callers guarantee that no two
// threads hold the same point's row.
unsafe impl Sync for SharedHeaps {}

impl SharedHeaps {
    fn new(h: &mut Heaps) -> Self {
        SharedHeaps {
            m: h.m,
            d: h.d.as_mut_ptr(),
            i: h.i.as_mut_ptr(),
            new: h.new.as_mut_ptr(),
        }
    }

    /// Starts fetching every cache line of point `p`'s row (any `p`: a hint never faults).
    fn prefetch(&self, p: usize) {
        let o = p.wrapping_mul(self.m);
        prefetch_span(self.d.wrapping_add(o), self.m);
        prefetch_span(self.i.wrapping_add(o), self.m);
        prefetch_span(self.new.wrapping_add(o), self.m);
    }

    /// # Safety
    /// No other live `HeapRow` of point `p` may exist, and `p` must be in range.
    #[allow(clippy::mut_from_ref)]
    unsafe fn row(&self, p: usize) -> HeapRow<'_> {
        let o = p * self.m;
        HeapRow {
            d: std::slice::from_raw_parts_mut(self.d.add(o), self.m),
            i: std::slice::from_raw_parts_mut(self.i.add(o), self.m),
            new: std::slice::from_raw_parts_mut(self.new.add(o), self.m),
        }
    }
}

/// Dot product in f32 with eight partial sums (vectorizes).
fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    super::dot_lanes::<f32, 8>(a, b)
}

/// Points between a tree split's row prefetch and its margin.
const SPLIT_AHEAD: usize = 8;

/// Splits `ids` recursively by random hyperplanes into leaves of at most `leaf` points.
fn rp_leaves(
    points: Points<'_>,
    ids: &mut [u32],
    leaf: usize,
    seed: u64,
    out: &mut Vec<(usize, usize)>,
    offset: usize,
) {
    if ids.len() <= leaf {
        out.push((offset, offset + ids.len()));
        return;
    }
    let s1 = splitmix64(seed);
    let s2 = splitmix64(s1);
    let len = ids.len() as u64;
    let a = ids[(s1 % len) as usize] as usize;
    let mut b = ids[(s2 % len) as usize] as usize;
    if a == b {
        b = ids[((s2 % len + 1) % len) as usize] as usize;
    }
    let (xa, xb) = (points.row(a), points.row(b));
    let normal: Vec<f32> = xa.iter().zip(xb).map(|(p, q)| p - q).collect();
    let offset_h: f32 = -normal
        .iter()
        .zip(xa.iter().zip(xb))
        .map(|(w, (p, q))| w * (p + q) / 2.0)
        .sum::<f32>();
    // Stable partition, left side (margin < 0, ties broken by a hash) first: ids stay
    // ascending within every node, so each level reads the points in memory order.
    let side = |p: u32| -> bool {
        let m = dot_f32(&normal, points.row(p as usize)) + offset_h;
        if m.abs() < 1e-12 {
            splitmix64(seed ^ p as u64) & 1 == 0
        } else {
            m < 0.0
        }
    };
    // The node's rows lie scattered over the point matrix below the top levels (ascending, but
    // far apart): each is a cache miss unless fetched ahead.
    let (mut left, mut right) = (Vec::with_capacity(ids.len()), Vec::with_capacity(ids.len()));
    for (t, &p) in ids.iter().enumerate() {
        if let Some(&ahead) = ids.get(t + SPLIT_AHEAD) {
            prefetch_rows(points, &[ahead]);
        }
        if side(p) {
            left.push(p);
        } else {
            right.push(p);
        }
    }
    let mut lo = left.len();
    ids[..lo].copy_from_slice(&left);
    ids[lo..].copy_from_slice(&right);
    drop((left, right));
    if lo == 0 || lo == ids.len() {
        // Degenerate hyperplane (duplicates): split in the middle.
        lo = ids.len() / 2;
    }
    let (left, right) = ids.split_at_mut(lo);
    if left.len() + right.len() > 50_000 {
        let (mut lo_out, mut hi_out) = (Vec::new(), Vec::new());
        rayon::join(
            || rp_leaves(points, left, leaf, splitmix64(s2 ^ 1), &mut lo_out, offset),
            || {
                rp_leaves(
                    points,
                    right,
                    leaf,
                    splitmix64(s2 ^ 2),
                    &mut hi_out,
                    offset + lo,
                )
            },
        );
        out.extend(lo_out);
        out.extend(hi_out);
    } else {
        rp_leaves(points, left, leaf, splitmix64(s2 ^ 1), out, offset);
        rp_leaves(points, right, leaf, splitmix64(s2 ^ 2), out, offset + lo);
    }
}

/// Candidate lists of one round, as CSR over points.
struct Lists {
    ptr: Vec<usize>,
    ids: Vec<u32>,
}

impl Lists {
    fn row(&self, p: usize) -> &[u32] {
        &self.ids[self.ptr[p]..self.ptr[p + 1]]
    }
}

/// The join candidates of one round, new and old, each as CSR over points: a point's heap
/// entries flagged new (old), plus every point whose new (old) entries include it, without
/// repeats, at most `cap` chosen by a hash priority (deterministic); old candidates only for
/// points with new ones (a join pairs a new candidate with the others).
///
/// Three parallel passes. The first marks the points that will join: those with a new entry,
/// and those a new entry points to (late rounds: few). The second appends the reverse entries
/// that go to marked points to buckets by the range of points they go to (sequential writes;
/// placing them at their points directly was a random write, and an atomic one, per entry).
/// The third gathers each range's buckets, and sorts, deduplicates and caps its marked points'
/// forward and reverse entries.
fn candidate_lists(heaps: &Heaps, cap: usize, seed: u64) -> (Lists, Lists) {
    const NEW: u32 = 1 << 31;
    let m = heaps.m.max(1);
    let n = heaps.i.len() / m;
    let size = n.div_ceil((rayon::current_num_threads() * 8).max(1)).max(1);
    let ranges = n.div_ceil(size);
    let range_of = |q: u32| q as usize / size;
    let bounds = |r: usize| (r * size, ((r + 1) * size).min(n));
    // Points that join this round: a new entry of their own, or a new entry pointing to them.
    let joins: Vec<AtomicBool> = (0..n).map(|_| AtomicBool::new(false)).collect();
    (0..ranges).into_par_iter().for_each(|r| {
        let (lo, hi) = bounds(r);
        for p in lo..hi {
            let row = p * m..(p + 1) * m;
            for (&q, _) in heaps.i[row.clone()]
                .iter()
                .zip(&heaps.new[row])
                .filter(|e| *e.1)
            {
                joins[p].store(true, Relaxed);
                joins[q as usize].store(true, Relaxed);
            }
        }
    });
    let joins: Vec<bool> = joins.into_iter().map(AtomicBool::into_inner).collect();
    // buckets[source range][destination range]: (destination, source with the new flag).
    let buckets: Vec<Vec<Vec<(u32, u32)>>> = (0..ranges)
        .into_par_iter()
        .map(|r| {
            let (lo, hi) = bounds(r);
            let mut out: Vec<Vec<(u32, u32)>> = vec![Vec::new(); ranges];
            for s in lo * m..hi * m {
                let q = heaps.i[s];
                if q != u32::MAX && joins[q as usize] {
                    let p = (s / m) as u32;
                    out[range_of(q)].push((q, p | (heaps.new[s] as u32) << 31));
                }
            }
            out
        })
        .collect();
    let parts: Vec<[(Vec<usize>, Vec<u32>); 2]> = (0..ranges)
        .into_par_iter()
        .map(|r| {
            let (lo, hi) = bounds(r);
            // This range's reverse entries, grouped by point (a counting sort).
            let mut start = vec![0usize; hi - lo + 1];
            for b in &buckets {
                for &(q, _) in &b[r] {
                    start[q as usize - lo + 1] += 1;
                }
            }
            for i in 0..hi - lo {
                start[i + 1] += start[i];
            }
            let mut at = start.clone();
            let mut reverse = vec![0u32; start[hi - lo]];
            for b in &buckets {
                for &(q, e) in &b[r] {
                    reverse[at[q as usize - lo]] = e;
                    at[q as usize - lo] += 1;
                }
            }
            let mut out: [(Vec<usize>, Vec<u32>); 2] = Default::default();
            let mut row: Vec<u32> = Vec::new();
            let mut keyed = Vec::new();
            for p in lo..hi {
                let back = &reverse[start[p - lo]..start[p - lo + 1]];
                if !joins[p] {
                    // No new candidates, so no joins: both lists empty (most points, late on).
                    for (ptr, ids) in &mut out {
                        ptr.push(ids.len());
                    }
                    continue;
                }
                row.clear();
                for s in p * m..(p + 1) * m {
                    if heaps.i[s] != u32::MAX {
                        row.push(heaps.i[s] | (heaps.new[s] as u32) << 31);
                    }
                }
                row.extend_from_slice(back);
                // New entries sort after old ones (the flag is the top bit).
                row.sort_unstable();
                let split = row.partition_point(|&e| e & NEW == 0);
                let (old, new) = row.split_at_mut(split);
                let new_len = pick(new, NEW, p, cap, seed, &mut keyed);
                let old_len = if new_len > 0 {
                    pick(old, 0, p, cap, seed ^ 0x0F, &mut keyed)
                } else {
                    0
                };
                for ((ptr, ids), kept) in out.iter_mut().zip([&new[..new_len], &old[..old_len]]) {
                    ids.extend(kept.iter().map(|&e| e & !NEW));
                    ptr.push(ids.len());
                }
            }
            out
        })
        .collect();
    drop(buckets);
    let mut lists = [(); 2].map(|_| Lists {
        ptr: Vec::with_capacity(n + 1),
        ids: Vec::new(),
    });
    for l in &mut lists {
        l.ptr.push(0);
    }
    for part in parts {
        for (l, (ptr, ids)) in lists.iter_mut().zip(part) {
            let base = l.ids.len();
            l.ptr.extend(ptr.iter().map(|&x| x + base));
            l.ids.extend_from_slice(&ids);
        }
    }
    let [new_c, old_c] = lists;
    (new_c, old_c)
}

/// Deduplicates the sorted entries of point `p` (all flagged `flag`), keeps at most `cap` of
/// them chosen by a hash priority of (seed, p, id), lowest first, and returns how many are kept
/// (first). `keyed` is scratch.
///
/// The priorities are distinct (splitmix64 is a bijection and the ids are), so selecting the
/// `cap` lowest and sorting only those gives what a full sort by priority gives.
fn pick(
    entries: &mut [u32],
    flag: u32,
    p: usize,
    cap: usize,
    seed: u64,
    keyed: &mut Vec<(u64, u32)>,
) -> usize {
    let len = dedup_sorted(entries);
    if len <= cap {
        return len;
    }
    let base = seed ^ ((p as u64) << 32);
    keyed.clear();
    keyed.extend(
        entries[..len]
            .iter()
            .map(|&e| (splitmix64(base ^ (e & !flag) as u64), e)),
    );
    if cap > 0 {
        keyed.select_nth_unstable(cap - 1);
    }
    keyed.truncate(cap);
    keyed.sort_unstable();
    for (slot, &(_, e)) in entries.iter_mut().zip(keyed.iter()) {
        *slot = e;
    }
    cap
}

/// Removes repeats from a sorted slice, keeping the distinct values first; returns their count.
fn dedup_sorted(row: &mut [u32]) -> usize {
    let mut len = 0;
    for r in 0..row.len() {
        if len == 0 || row[r] != row[len - 1] {
            row[len] = row[r];
            len += 1;
        }
    }
    len
}

/// Points whose local joins one task computes.
const JOIN_TASK: usize = 2048;

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
/// order and indices.
pub fn nn_descent(
    points: Points<'_>,
    k: usize,
    opts: &DescentOptions,
    progress: &dyn Fn(usize),
) -> Result<(Knn, DescentReport)> {
    let n = points.len();
    check_k(n, k)?;
    let dim = points.dim();
    let mut order: Vec<u32> = (0..n as u32).collect();
    rp_leaves(
        points,
        &mut order,
        opts.leaf_size.max(2),
        splitmix64(opts.seed ^ 0x0DE7),
        &mut Vec::new(),
        0,
    );
    let mut local = vec![0f32; n * dim];
    local
        .par_chunks_mut(dim.max(1))
        .zip(order.par_iter())
        .for_each(|(row, &p)| row.copy_from_slice(points.row(p as usize)));
    let (found, report) = descend(Points::new(&local, dim)?, k, opts, progress)?;
    drop(local);
    let mut indices = vec![0u32; n * k];
    let mut distances = vec![0f32; n * k];
    for (pos, &p) in order.iter().enumerate() {
        let at = p as usize * k;
        for (s, &j) in found.row(pos).iter().enumerate() {
            indices[at + s] = order[j as usize];
        }
        distances[at..at + k].copy_from_slice(found.row_distances(pos));
    }
    Ok((
        Knn {
            k,
            indices,
            distances,
        },
        report,
    ))
}

/// Points whose exact neighbours [`Check`] finds: all of them up to this many (the default
/// search is exact there anyway), else [`CHECK_SAMPLE`] drawn at random.
const CHECK_ALL_MAX: usize = 8192;
/// Points checked above [`CHECK_ALL_MAX`] (the recall's standard error: ~0.004 at 0.95).
const CHECK_SAMPLE: usize = 256;
/// Points a task of [`Check::new`] compares with every checked point.
const CHECK_BLOCK: usize = 4096;
/// Candidates per checked point beyond its m that the product form keeps for the exact ranking.
const CHECK_SPARE: usize = 8;

/// The exact neighbours of a few points, found by brute force before the search: their local
/// intrinsic dimension sizes the heaps, and the recall of their neighbours checks the graph.
struct Check {
    /// The checked points.
    ids: Vec<u32>,
    /// Nearest other points kept per checked point (k − 1).
    m: usize,
    /// Per checked point, its m nearest other points by (squared f32 distance, index).
    truth: Vec<(f32, u32)>,
}

/// The `m` nearest other points of each point `ids` (row-major, `m` a point, by squared f32
/// distance then index; (∞, `u32::MAX`) where there are fewer), exactly: each task takes a
/// block of points, computes its products with the points `ids` as one matrix product (faer)
/// of the points less their mean, keeps each one's [`CHECK_SPARE`] + m nearest by
/// ‖x‖² + ‖y‖² − 2x·y, and those are then ranked again by their exact f32 distances (the product
/// form cancels).
pub(crate) fn nearest_others(points: Points<'_>, ids: &[u32], m: usize) -> Vec<(f32, u32)> {
    let (n, dim) = (points.len(), points.dim());
    let c = ids.len();
    let mean: Vec<f32> = points.mean().iter().map(|&m| m as f32).collect();
    let centred = |p: usize, out: &mut Vec<f32>| {
        out.extend(points.row(p).iter().zip(&mean).map(|(v, m)| v - m));
    };
    let mut q = Vec::with_capacity(c * dim);
    ids.iter().for_each(|&id| centred(id as usize, &mut q));
    let norm = |r: &[f32]| r.iter().map(|v| v * v).sum::<f32>();
    let qn: Vec<f32> = q.chunks_exact(dim.max(1)).map(norm).collect();
    let keep = (m + CHECK_SPARE).min(n.saturating_sub(1)).max(1);
    let none = (f32::INFINITY, u32::MAX);
    // Blocks whose products with the checked points take at most 4M floats (16 MB).
    let block = ((1usize << 22) / c.max(1)).clamp(64, CHECK_BLOCK);
    let parts: Vec<Vec<(f32, u32)>> = (0..n.div_ceil(block))
        .into_par_iter()
        .map(|b| {
            let (lo, hi) = (b * block, ((b + 1) * block).min(n));
            let mut rows = Vec::with_capacity((hi - lo) * dim);
            (lo..hi).for_each(|p| centred(p, &mut rows));
            let mut g = faer::Mat::<f32>::zeros(c, hi - lo);
            faer::linalg::matmul::matmul(
                g.as_mut(),
                faer::Accum::Replace,
                faer::MatRef::from_row_major_slice(&q, c, dim),
                faer::MatRef::from_row_major_slice(&rows, hi - lo, dim).transpose(),
                1.0f32,
                faer::Par::Seq,
            );
            let mut tops = vec![none; c * keep];
            for (t, r) in rows.chunks_exact(dim.max(1)).enumerate() {
                let (p, pn) = ((lo + t) as u32, norm(r));
                let col = g.col(t);
                for (ci, &id) in ids.iter().enumerate() {
                    let top = &mut tops[ci * keep..(ci + 1) * keep];
                    let e = ((qn[ci] + pn - 2.0 * col[ci]).max(0.0), p);
                    if id != p && e < top[keep - 1] {
                        let mut pos = keep - 1;
                        while pos > 0 && top[pos - 1] > e {
                            top[pos] = top[pos - 1];
                            pos -= 1;
                        }
                        top[pos] = e;
                    }
                }
            }
            tops
        })
        .collect();
    let mut truth = vec![none; c * m];
    truth
        .par_chunks_mut(m.max(1))
        .zip(ids.par_iter())
        .enumerate()
        .for_each(|(ci, (out, &id))| {
            let x = points.row(id as usize);
            let mut all: Vec<(f32, u32)> = parts
                .iter()
                .flat_map(|t| t[ci * keep..(ci + 1) * keep].iter())
                .filter(|e| e.1 != u32::MAX)
                .map(|&(_, j)| (sq_dist_f32(x, points.row(j as usize)), j))
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            all.dedup_by_key(|e| e.1);
            for (o, e) in out.iter_mut().zip(all) {
                *o = e;
            }
        });
    truth
}

impl Check {
    /// The checked points (all, or a random sample) and their exact neighbours
    /// ([`nearest_others`]).
    fn new(points: Points<'_>, m: usize, seed: u64) -> Self {
        let n = points.len();
        let ids: Vec<u32> = if n <= CHECK_ALL_MAX {
            (0..n as u32).collect()
        } else {
            let mut rng =
                <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(splitmix64(seed ^ 0xC4EC));
            let mut v: Vec<u32> = rand::seq::index::sample(&mut rng, n, CHECK_SAMPLE)
                .into_iter()
                .map(|i| i as u32)
                .collect();
            v.sort_unstable();
            v
        };
        let truth = nearest_others(points, &ids, m);
        Check { ids, m, truth }
    }

    /// Median over the checked points of the maximum-likelihood estimate of the local intrinsic
    /// dimension from their m nearest distances, −(m − 1) / Σ ln(dⱼ / dₘ) (Levina and Bickel);
    /// NaN when no point has m distinct positive distances.
    fn intrinsic_dim(&self) -> f64 {
        let m = self.m;
        let mut est: Vec<f64> = self
            .truth
            .chunks_exact(m.max(1))
            .filter_map(|row| {
                let far = (row[m - 1].0 as f64).sqrt();
                let sum: f64 = row[..m - 1]
                    .iter()
                    .map(|e| ((e.0 as f64).sqrt() / far).ln())
                    .sum();
                (m >= 3 && row[0].0 > 0.0 && far.is_finite() && sum < 0.0)
                    .then(|| -((m - 1) as f64) / sum)
            })
            .collect();
        if est.is_empty() {
            return f64::NAN;
        }
        est.sort_by(f64::total_cmp);
        est[est.len() / 2]
    }

    /// The fraction of the checked points' m nearest other points that are among the m nearest
    /// of their heap entries by exact distance (the neighbours the search would return now).
    fn recall(&self, points: Points<'_>, heaps: &Heaps) -> f64 {
        let (m, hm) = (self.m, heaps.m);
        let hits: usize = self
            .ids
            .par_iter()
            .zip(self.truth.par_chunks(m.max(1)))
            .map(|(&id, truth)| {
                let x = points.row(id as usize);
                let mut got: Vec<(f32, u32)> = heaps.i[id as usize * hm..(id as usize + 1) * hm]
                    .iter()
                    .filter(|&&j| j != u32::MAX)
                    .map(|&j| (sq_dist_f32(x, points.row(j as usize)), j))
                    .collect();
                got.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                got.truncate(m);
                truth
                    .iter()
                    .filter(|t| got.iter().any(|g| g.1 == t.1))
                    .count()
            })
            .sum();
        hits as f64 / (self.ids.len() * m).max(1) as f64
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
    finish(points, &heaps, k).map(|knn| (knn, report))
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
    for round in first..first + opts.max_iters {
        // Candidates: new and old neighbours of each point, plus the reverse edges, capped.
        // Old candidates only matter to points with new ones (joins pair a new candidate with
        // the rest).
        let seed = splitmix64(opts.seed ^ 0xD1B5 ^ round as u64);
        let (new_c, old_c) = candidate_lists(heaps, max_cand, seed);
        heaps.new.fill(false);
        // Local joins, a group of points at a time: distances among each point's candidates,
        // proposed to both ends when they beat the end's current farthest neighbour, then
        // applied by shard. Applying per group bounds the update lists (they held a whole
        // round's, gigabytes at 1M points) and lets later groups prune with tighter thresholds.
        let mut changed = 0usize;
        let group = opts.join_group.max(1);
        for g0 in (0..n).step_by(group) {
            let thr = heaps.thresholds();
            let g1 = (g0 + group).min(n);
            let tasks = (g1 - g0).div_ceil(JOIN_TASK);
            let blocks: Vec<Vec<Vec<Update>>> = (0..tasks)
                .into_par_iter()
                .map(|task| {
                    let mut out: Vec<Vec<Update>> = vec![Vec::new(); shards];
                    let lo = g0 + task * JOIN_TASK;
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
                                out[shard_of(a)].push((a, b, d));
                            }
                            if d < thr[b as usize] {
                                out[shard_of(b)].push((b, a, d));
                            }
                        });
                    }
                    out
                })
                .collect();
            let shared = SharedHeaps::new(heaps);
            changed += (0..shards)
                .into_par_iter()
                .map(|s| {
                    let mut c = 0;
                    for b in &blocks {
                        let ups = &b[s];
                        for (t, &(p, q, d)) in ups.iter().enumerate() {
                            if let Some(&(ahead, _, _)) = ups.get(t + APPLY_AHEAD) {
                                shared.prefetch(ahead as usize);
                            }
                            // SAFETY: shard s owns the points p with shard_of(p) == s, and only
                            // this task applies shard s's updates.
                            let mut row = unsafe { shared.row(p as usize) };
                            c += row.push(d, q) as usize;
                        }
                    }
                    c
                })
                .sum::<usize>();
        }
        progress(round + 1);
        ran += 1;
        if (changed as f64) < opts.delta * (n * k) as f64 {
            break;
        }
    }
    ran
}

/// The k nearest of each point's heap entries, sorted, the point itself first.
fn finish(points: Points<'_>, heaps: &Heaps, k: usize) -> Result<Knn> {
    let (n, m) = (points.len(), heaps.m);
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
            let mut e: Vec<(f32, u32)> = heaps.i[o..o + m].iter().map(|&j| (exact(j), j)).collect();
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
    use crate::backend::CpuBackend;
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, Normal};

    #[test]
    fn auto_help_names_the_threshold() {
        use clap::ValueEnum;
        let help = KnnMethod::Auto.to_possible_value().unwrap();
        let help = help.get_help().unwrap().to_string();
        assert!(help.contains(&EXACT_MAX_CPU.to_string()), "{help}");
    }

    /// `n` points of `dim` coordinates around 12 Gaussian centres with varying spread.
    pub(crate) fn clustered(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let centres: Vec<f32> = (0..12 * dim).map(|_| rng.random_range(-6.0..6.0)).collect();
        let mut out = Vec::with_capacity(n * dim);
        for _ in 0..n {
            let c = rng.random_range(0..12);
            let s = Normal::new(0.0, 0.5 + c as f32 * 0.1).unwrap();
            for d in 0..dim {
                out.push(centres[c * dim + d] + s.sample(&mut rng));
            }
        }
        out
    }

    #[test]
    fn exact_matches_a_sort_of_all_distances() {
        let data = clustered(300, 7, 1);
        let p = Points::new(&data, 7).unwrap();
        let knn = exact(p, 6, &CpuBackend::new(), &|_| {}).unwrap();
        for i in 0..300 {
            let mut all: Vec<(f64, u32)> = (0..300)
                .filter(|&j| j != i)
                .map(|j| {
                    let d: f64 = p
                        .row(i)
                        .iter()
                        .zip(p.row(j))
                        .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
                        .sum();
                    (d, j as u32)
                })
                .collect();
            all.sort_by(|a, b| a.partial_cmp(b).unwrap());
            assert_eq!(knn.row(i)[0], i as u32);
            let want: Vec<u32> = all[..5].iter().map(|x| x.1).collect();
            assert_eq!(&knn.row(i)[1..], &want[..], "row {i}");
            for (s, x) in all[..5].iter().enumerate() {
                assert!((knn.row_distances(i)[s + 1] as f64 - x.0.sqrt()).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn heaps_widen_with_the_intrinsic_dimension_and_the_points() {
        assert_eq!(heap_factor(10.0, 100_000), 1.5);
        assert_eq!(heap_factor(24.0, 100_000), 1.75);
        assert_eq!(heap_factor(40.0, 100_000), 2.0);
        // From 250k to 1M points, high dimensions up to half again; low ones need no more.
        assert_eq!(heap_factor(40.0, 1_000_000), 3.0);
        assert_eq!(heap_factor(10.0, 4_000_000), 1.5);
        assert!((heap_factor(40.0, 500_000) - 2.5).abs() < 1e-12);
        assert!((heap_factor(24.0, 1_000_000) - 2.25).abs() < 1e-12);
    }

    /// Points uniform in a cube of `d` dimensions, embedded in `dim ≥ d` (the rest zeros).
    fn cube(n: usize, d: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n * dim)
            .map(|e| {
                if e % dim < d {
                    rng.random_range(0.0..1.0)
                } else {
                    0.0
                }
            })
            .collect()
    }

    #[test]
    fn the_check_estimates_the_intrinsic_dimension() {
        // Uniform data of 3 and of 12 dimensions in 30 coordinates: the MLE over 14 neighbours
        // is near the truth (it runs low in higher dimensions at this n).
        for (d, lo, hi) in [(3, 2.5, 3.6), (12, 8.5, 13.0)] {
            let x = cube(20_000, d, 30, d as u64);
            let check = Check::new(Points::new(&x, 30).unwrap(), 14, 1);
            assert_eq!(check.ids.len(), CHECK_SAMPLE);
            let lid = check.intrinsic_dim();
            assert!(lid > lo && lid < hi, "{d} dimensions: estimated {lid}");
            // The checked neighbours are the exact ones.
            let p = Points::new(&x, 30).unwrap();
            for (c, &id) in check.ids.iter().enumerate().take(5) {
                let mut all: Vec<(f32, u32)> = (0..20_000u32)
                    .filter(|&j| j != id)
                    .map(|j| (sq_dist_f32(p.row(id as usize), p.row(j as usize)), j))
                    .collect();
                all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                assert_eq!(&check.truth[c * 14..(c + 1) * 14], &all[..14]);
            }
        }
    }

    #[test]
    fn heaps_grow_until_the_checked_recall_holds() {
        // Heaps of k on hard data (uniform in 24 dimensions) fall short of a recall of 0.99; the
        // search grows them and goes on until the check holds.
        let (n, dim, k) = (6007, 24, 15);
        let data = cube(n, dim, dim, 5);
        let p = Points::new(&data, dim).unwrap();
        let truth = exact(p, k, &CpuBackend::new(), &|_| {}).unwrap();
        let all: Vec<usize> = (0..n).collect();
        let opts = |min_recall| DescentOptions {
            heap_neighbors: Some(k),
            min_recall,
            ..DescentOptions::for_n(n, k, 0)
        };
        let (plain, first) = nn_descent(p, k, &opts(0.0), &|_| {}).unwrap();
        let short = recall(&plain, &truth, &all);
        assert_eq!(
            (first.grows, first.heap_neighbors, first.checked),
            (0, k, 0)
        );
        assert!(first.recall.is_nan());
        assert!(short < 0.99, "heaps of k already recall {short}");
        let (grown, report) = nn_descent(p, k, &opts(0.99), &|_| {}).unwrap();
        let r = recall(&grown, &truth, &all);
        assert!(report.grows > 0 && report.heap_neighbors > k, "{report:?}");
        assert!(r >= 0.99 && r > short, "recall {r} ({report:?})");
        assert!((report.recall - r).abs() < 1e-3, "{report:?} vs {r}");
    }

    #[test]
    fn descent_recalls_the_exact_neighbours() {
        // n prime: no task's range of points divides it evenly.
        let (n, dim, k) = (6007, 20, 15);
        let data = clustered(n, dim, 2);
        let p = Points::new(&data, dim).unwrap();
        let truth = exact(p, k, &CpuBackend::new(), &|_| {}).unwrap();
        let all: Vec<usize> = (0..n).collect();
        // One group of joins per round (the default at this size), and rounds split into groups
        // of 700 points as at a million.
        for group in [JOIN_GROUP, 700] {
            let opts = DescentOptions {
                join_group: group,
                ..DescentOptions::for_n(n, k, 0)
            };
            let (approx, report) = nn_descent(p, k, &opts, &|_| {}).unwrap();
            let r = recall(&approx, &truth, &all);
            assert!(r >= 0.95, "recall {r} with join groups of {group}");
            // Every point was checked (n ≤ CHECK_ALL_MAX): the report's recall is this one.
            assert_eq!(report.checked, n);
            assert!((report.recall - r).abs() < 1e-3, "{report:?} vs {r}");
            for i in 0..n {
                assert_eq!(approx.row(i)[0], i as u32);
                let d = approx.row_distances(i);
                assert!(d.windows(2).all(|w| w[0] <= w[1]));
                // Reported distances are computed afresh, not the search's ‖x‖² + ‖y‖² − 2x·y.
                for (&j, &dj) in approx.row(i).iter().zip(d).skip(1) {
                    let want = sq_dist_f32(p.row(i), p.row(j as usize)).sqrt();
                    assert_eq!(dj.to_bits(), want.to_bits(), "point {i}, neighbour {j}");
                }
            }
        }
    }
}
