//! The edges the SGD samples: pruning by weight, sampling periods, grouping by head, and the
//! Z-order renumbering of the points that keeps graph neighbours close in memory.

use rayon::prelude::*;

use crate::backend::EdgeList;
use crate::ops::fuzzy::Graph;

/// The graph's largest weight (0 for an empty graph).
pub fn max_weight(g: &Graph) -> f32 {
    g.data.par_iter().copied().reduce(|| 0f32, f32::max)
}

/// Edges of the symmetric graph with weight ≥ w_max / n_epochs (`w_max` its
/// [`max_weight`]), with their sampling periods w_max / w (umap's `make_epochs_per_sample`),
/// grouped by head in row order.
pub fn edge_list(g: &Graph, w_max: f32, n_epochs: usize) -> EdgeList {
    let cut = w_max / n_epochs as f32;
    let keep = |w: f32| w >= cut && w > 0.0;
    let counts: Vec<usize> = (0..g.n)
        .into_par_iter()
        .map(|i| g.row(i).1.iter().filter(|&&w| keep(w)).count())
        .collect();
    fill_rows(&counts, |i, head, tail, eps| {
        let (cols, vals) = g.row(i);
        let kept = cols.iter().zip(vals).filter(|e| keep(*e.1));
        for (t, (&j, &w)) in kept.enumerate() {
            head[t] = i as u32;
            tail[t] = j;
            eps[t] = w_max / w;
        }
    })
}

/// Rows per task of [`fill_rows`].
pub(super) const FILL_ROWS_PER_TASK: usize = 4096;

/// An edge list of `counts[r]` edges per row `r`, rows in order, each row's edges written by
/// `fill(r, head, tail, epochs_per_sample)` into slices of that length; rows in parallel.
pub(super) fn fill_rows(
    counts: &[usize],
    fill: impl Fn(usize, &mut [u32], &mut [u32], &mut [f32]) + Sync,
) -> EdgeList {
    let mut offsets = Vec::with_capacity(counts.len() + 1);
    offsets.push(0usize);
    for &c in counts {
        offsets.push(offsets.last().unwrap() + c);
    }
    let m = offsets[counts.len()];
    let mut e = EdgeList {
        head: vec![0; m],
        tail: vec![0; m],
        epochs_per_sample: vec![0.0; m],
    };
    // Each task's stretch of the three arrays, split off in row order.
    let mut tasks = Vec::with_capacity(counts.len().div_ceil(FILL_ROWS_PER_TASK));
    let (mut head, mut tail, mut eps) = (
        &mut e.head[..],
        &mut e.tail[..],
        &mut e.epochs_per_sample[..],
    );
    for r0 in (0..counts.len()).step_by(FILL_ROWS_PER_TASK) {
        let r1 = (r0 + FILL_ROWS_PER_TASK).min(counts.len());
        let len = offsets[r1] - offsets[r0];
        let (h, h_rest) = std::mem::take(&mut head).split_at_mut(len);
        let (t, t_rest) = std::mem::take(&mut tail).split_at_mut(len);
        let (p, p_rest) = std::mem::take(&mut eps).split_at_mut(len);
        (head, tail, eps) = (h_rest, t_rest, p_rest);
        tasks.push((r0..r1, h, t, p));
    }
    tasks.into_par_iter().for_each(|(rows, h, t, p)| {
        let base = offsets[rows.start];
        for r in rows {
            let at = offsets[r] - base..offsets[r + 1] - base;
            fill(r, &mut h[at.clone()], &mut t[at.clone()], &mut p[at]);
        }
    });
    e
}

/// The points ordered along a Z-order (Morton) curve of their first two coordinates (ties by
/// index): points close in the plane come close in the order.
pub(super) fn z_order(embedding: &[f32], dim: usize) -> Vec<u32> {
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
/// the edges renamed and regrouped by their new head (each head's edges in their old order);
/// `start` is [`head_offsets`] of `edges`.
pub(super) fn renumbered(
    embedding: &[f32],
    dim: usize,
    edges: &EdgeList,
    start: &[usize],
    order: &[u32],
) -> (Vec<f32>, EdgeList) {
    let n = order.len();
    let mut rank = vec![0u32; n];
    for (pos, &p) in order.iter().enumerate() {
        rank[p as usize] = pos as u32;
    }
    let counts: Vec<usize> = order
        .par_iter()
        .map(|&p| start[p as usize + 1] - start[p as usize])
        .collect();
    let out = fill_rows(&counts, |pos, head, tail, eps| {
        let from = start[order[pos] as usize]..start[order[pos] as usize + 1];
        head.fill(pos as u32);
        for (t, e) in from.enumerate() {
            tail[t] = rank[edges.tail[e] as usize];
            eps[t] = edges.epochs_per_sample[e];
        }
    });
    let mut local = vec![0f32; embedding.len()];
    local
        .par_chunks_mut(dim)
        .zip(order.par_iter())
        .for_each(|(row, &p)| row.copy_from_slice(&embedding[p as usize * dim..][..dim]));
    (local, out)
}

/// Where each head's edges start in `edges` (grouped by head in increasing order, as
/// `edge_list` makes them), for the `n` points: a CSR row pointer, a block of rows per task
/// (one binary search for the block's first edge, then a walk).
pub(super) fn head_offsets(edges: &EdgeList, n: usize) -> Vec<usize> {
    debug_assert!(edges.head.windows(2).all(|w| w[0] <= w[1]));
    let heads = &edges.head;
    let mut start = vec![0usize; n + 1];
    start
        .par_chunks_mut(FILL_ROWS_PER_TASK)
        .enumerate()
        .for_each(|(b, out)| {
            let r0 = b * FILL_ROWS_PER_TASK;
            let mut e = heads.partition_point(|&h| (h as usize) < r0);
            for (r, s) in (r0..).zip(out) {
                while e < heads.len() && (heads[e] as usize) < r {
                    e += 1;
                }
                *s = e;
            }
        });
    start
}

/// The graph restricted to `edges` (what the initialization sees), `start` their
/// [`head_offsets`].
pub(super) fn pruned(g: &Graph, edges: &EdgeList, start: Vec<usize>, w_max: f32) -> Graph {
    Graph {
        n: g.n,
        indptr: start,
        indices: edges.tail.clone(),
        data: edges
            .epochs_per_sample
            .par_iter()
            .map(|e| w_max / e)
            .collect(),
    }
}
