//! Random-projection trees: recursive splits of the points by random hyperplanes into small
//! leaves (NN-descent's start, and the locality order it searches in).

use crate::backend::Points;
use crate::ops::pairs::prefetch_rows;
use crate::simd::splitmix64;

/// Dot product in f32 with eight partial sums (vectorizes).
fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    crate::simd::dot_lanes::<f32, 8>(a, b)
}

/// Points between a tree split's row prefetch and its margin.
const SPLIT_AHEAD: usize = 8;

/// Splits `ids` recursively by random hyperplanes into leaves of at most `leaf` points.
pub(super) fn rp_leaves(
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
