//! NN-descent's join candidates of one round: each point's new and old neighbours and reverse
//! neighbours, deduplicated and capped by a hash priority.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use rayon::prelude::*;

use super::heaps::Heaps;
use crate::simd::splitmix64;

/// Candidate lists of one round: per range of `size` consecutive points, a CSR of their lists
/// (row offsets from 0, and the candidates), as the ranges were built (not joined into one:
/// that copied them all).
pub(super) struct Lists {
    size: usize,
    parts: Vec<(Vec<usize>, Vec<u32>)>,
}

impl Lists {
    /// Point `p`'s candidates.
    pub(super) fn row(&self, p: usize) -> &[u32] {
        let (ptr, ids) = &self.parts[p / self.size];
        let r = p % self.size;
        &ids[ptr[r]..ptr[r + 1]]
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
pub(super) fn candidate_lists(heaps: &Heaps, cap: usize, seed: u64) -> (Lists, Lists) {
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
            // Counted first, so that each bucket is allocated at its size.
            let mut sizes = vec![0usize; ranges];
            for &q in &heaps.i[lo * m..hi * m] {
                if q != u32::MAX && joins[q as usize] {
                    sizes[range_of(q)] += 1;
                }
            }
            let mut out: Vec<Vec<(u32, u32)>> = sizes.into_iter().map(Vec::with_capacity).collect();
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
            let mut out: [(Vec<usize>, Vec<u32>); 2] =
                [(vec![0], Vec::new()), (vec![0], Vec::new())];
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
            // Only the ranges being built hold spare capacity.
            for (_, ids) in &mut out {
                ids.shrink_to_fit();
            }
            out
        })
        .collect();
    drop(buckets);
    let (mut new_c, mut old_c) = (Vec::with_capacity(ranges), Vec::with_capacity(ranges));
    for [new, old] in parts {
        new_c.push(new);
        old_c.push(old);
    }
    (Lists { size, parts: new_c }, Lists { size, parts: old_c })
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
