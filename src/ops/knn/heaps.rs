//! NN-descent's per-point neighbour heaps, and their rows shared across threads that own
//! disjoint points.

use rayon::prelude::*;

use crate::simd::prefetch_span;

/// Per-point bounded max-heaps of (squared distance, index, is-new) of size m = k − 1.
pub(super) struct Heaps {
    /// Entries per point.
    pub(super) m: usize,
    /// Squared distances, each row a max-heap.
    pub(super) d: Vec<f32>,
    /// Indices (`u32::MAX`: empty).
    pub(super) i: Vec<u32>,
    /// Whether each entry is new since the point last joined.
    pub(super) new: Vec<bool>,
}

impl Heaps {
    /// Empty heaps of `m` for `n` points.
    pub(super) fn new(n: usize, m: usize) -> Self {
        Heaps {
            m,
            d: vec![f32::INFINITY; n * m],
            i: vec![u32::MAX; n * m],
            new: vec![false; n * m],
        }
    }

    /// Largest kept squared distance of each point.
    pub(super) fn thresholds(&self) -> Vec<f32> {
        self.d.par_chunks(self.m).map(|d| d[0]).collect()
    }

    /// Heaps of `m` (≥ these) holding these entries, every one flagged new so that it joins
    /// again.
    pub(super) fn grown(&self, m: usize) -> Heaps {
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

/// One point's heap, borrowed.
pub(super) struct HeapRow<'a> {
    pub(super) d: &'a mut [f32],
    i: &'a mut [u32],
    new: &'a mut [bool],
}

impl HeapRow<'_> {
    /// Inserts (d, j) as new when closer than the farthest kept and not present; true if kept.
    pub(super) fn push(&mut self, d: f32, j: u32) -> bool {
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
pub(super) struct SharedHeaps {
    m: usize,
    d: *mut f32,
    i: *mut u32,
    new: *mut bool,
}

// SAFETY: the pointers are only dereferenced through `row`, whose callers guarantee that no two
// threads hold the same point's row.
unsafe impl Sync for SharedHeaps {}

impl SharedHeaps {
    /// Raw views of `h`'s rows; `h` must outlive them and not be used otherwise meanwhile.
    pub(super) fn new(h: &mut Heaps) -> Self {
        SharedHeaps {
            m: h.m,
            d: h.d.as_mut_ptr(),
            i: h.i.as_mut_ptr(),
            new: h.new.as_mut_ptr(),
        }
    }

    /// Starts fetching every cache line of point `p`'s row (any `p`: a hint never faults).
    pub(super) fn prefetch(&self, p: usize) {
        let o = p.wrapping_mul(self.m);
        prefetch_span(self.d.wrapping_add(o), self.m);
        prefetch_span(self.i.wrapping_add(o), self.m);
        prefetch_span(self.new.wrapping_add(o), self.m);
    }

    /// # Safety
    /// No other live `HeapRow` of point `p` may exist, and `p` must be in range.
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn row(&self, p: usize) -> HeapRow<'_> {
        let o = p * self.m;
        HeapRow {
            d: std::slice::from_raw_parts_mut(self.d.add(o), self.m),
            i: std::slice::from_raw_parts_mut(self.i.add(o), self.m),
            new: std::slice::from_raw_parts_mut(self.new.add(o), self.m),
        }
    }
}
