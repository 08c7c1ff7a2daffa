//! Squared Euclidean distances among the points of one small set: NN-descent's join candidates
//! of a point, or the points of a random-projection-tree leaf.
//!
//! The set is gathered once into a coordinate-major block (one coordinate of every member per
//! line, padded to 16 members; with AVX-512, by one gather instruction per 16 members and
//! coordinate), and distances are computed for a few members against 8 or 16
//! at a time. Each member is read from the point matrix once per set instead of once per pair,
//! and the inner loop is vector arithmetic with no gathers. Three bodies, chosen at run time:
//! - AVX-512: 4 members against 32 (16 for a last odd tile), eight registers of independent
//!   sums, as ‖x‖² + ‖y‖² − 2x·y: one fused
//!   multiply-add per coordinate (with the member's coordinate broadcast from memory inside
//!   the instruction) instead of a subtraction and a multiply-add. That form cancels: a
//!   distance is off by up to γ₍dim+2₎ · 2(‖x‖² + ‖y‖²) (γₘ = m·u / (1 − m·u), u = 2⁻²⁴), not
//!   a rounding of itself, so callers that report distances recompute them (NN-descent does for
//!   the neighbours it keeps);
//! - AVX2: 4 members against 8, one 8-lane register per member;
//! - generic (SSE2): the AVX2 body compiled without it (two 4-lane halves).
//!
//! The AVX2 and generic bodies do the same operations in the same order per lane (no FMA), so
//! they give identical bits.

use crate::backend::Points;
use crate::simd::prefetch_span;

/// Members per column tile of the AVX2 and generic bodies (the vector width).
const LANES: usize = 8;
/// Members per row tile.
const ROWS: usize = 4;
/// Members per column tile of the AVX-512 body; members are padded to a multiple of it.
const PAD: usize = 16;

/// A set of points held coordinate-major for pairwise distances (reusable scratch).
#[derive(Default)]
pub struct PairBlock {
    /// `dim` lines of `cols` values: line d holds coordinate d of every member.
    t: Vec<f32>,
    /// Members, padded up to a multiple of [`PAD`] with zeros.
    cols: usize,
    /// Per member: the squared distance a pair must be below to be reported (padding: −∞).
    limit: Vec<f32>,
    /// Per member: its squared norm (padding: 0), for the AVX-512 body (zeros without it).
    norm: Vec<f32>,
    /// The members' ids (scratch of the gathering load).
    ids: Vec<u32>,
    /// Members loaded.
    len: usize,
}

impl PairBlock {
    /// Members loaded.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no member is loaded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Loads the points `ids` (in order) of `points` as the members, each with the squared
    /// distance below which its pairs are reported (`limit(id)`; +∞ reports every pair).
    pub fn load(
        &mut self,
        points: Points<'_>,
        ids: impl ExactSizeIterator<Item = u32>,
        limit: impl Fn(u32) -> f32,
    ) {
        let (len, dim) = (ids.len(), points.dim());
        let cols = len.div_ceil(PAD) * PAD;
        self.t.clear();
        self.t.resize(dim * cols, 0.0);
        self.limit.clear();
        self.limit.resize(cols, f32::NEG_INFINITY);
        self.norm.clear();
        self.norm.resize(cols, 0.0);
        self.ids.clear();
        // With AVX-512 the pairs body needs the norms, and the load gathers 16 members'
        // coordinate at a time (its offsets are 32-bit).
        #[cfg(target_arch = "x86_64")]
        let wide = std::arch::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        let wide = false;
        let gather = wide && points.data().len() <= i32::MAX as usize;
        for (((j, id), lim), norm) in ids.enumerate().zip(&mut self.limit).zip(&mut self.norm) {
            let row = points.row(id as usize);
            if gather {
                self.ids.push(id);
            } else {
                // j < len ≤ cols: every line has a slot j.
                for (line, &x) in self.t.chunks_exact_mut(cols).zip(row) {
                    line[j] = x;
                }
            }
            *lim = limit(id);
            if wide {
                *norm = crate::simd::dot_lanes::<f32, 8>(row, row);
            }
        }
        #[cfg(target_arch = "x86_64")]
        if gather {
            // SAFETY: the CPU supports AVX-512 F, and every offset fits in i32 (checked above).
            unsafe { avx512::gather(&mut self.t, cols, points, &self.ids) };
        }
        (self.cols, self.len) = (cols, len);
    }

    /// Calls `f(i, j, d²)` for every pair of members `i < j` with `i < rows` (the first `rows`
    /// members against every later member; `rows` = all members: every pair once) whose squared
    /// distance is below the limit of `i` or of `j`.
    pub fn for_close_pairs(&self, rows: usize, f: impl FnMut(usize, usize, f32)) {
        let rows = rows.min(self.len);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the feature the function was compiled for.
            return unsafe { avx512::pairs(self, rows, f) };
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the feature the function was compiled for.
            return unsafe { pairs_avx2(self, rows, f) };
        }
        pairs(self, rows, f)
    }
}

/// Asks the CPU to start loading the rows `ids` of `points` into cache (the rows of a later
/// [`PairBlock::load`]: their memory latency then overlaps the work in between).
pub fn prefetch_rows(points: Points<'_>, ids: &[u32]) {
    for &id in ids {
        prefetch_span(points.row(id as usize).as_ptr(), points.dim());
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn pairs_avx2(b: &PairBlock, rows: usize, f: impl FnMut(usize, usize, f32)) {
    pairs(b, rows, f)
}

#[inline(always)]
fn pairs(b: &PairBlock, rows: usize, mut f: impl FnMut(usize, usize, f32)) {
    let (t, cols, len) = (&b.t[..], b.cols, b.len);
    if rows == 0 {
        return;
    }
    for i0 in (0..rows).step_by(ROWS) {
        // i0 + ROWS ≤ cols: both are multiples of ROWS and i0 < cols. Rows past `rows` read
        // padding or later members, and are masked below.
        let lim_i: &[f32; ROWS] = b.limit[i0..i0 + ROWS].try_into().unwrap();
        // Columns from the tile holding i0 + 1: the earlier ones pair with no row here.
        for j0 in ((i0 + 1) / LANES * LANES..len).step_by(LANES) {
            let mut acc = [[0f32; LANES]; ROWS];
            for line in t.chunks_exact(cols) {
                let y: &[f32; LANES] = line[j0..j0 + LANES].try_into().unwrap();
                let x: &[f32; ROWS] = line[i0..i0 + ROWS].try_into().unwrap();
                for (a, &x) in acc.iter_mut().zip(x) {
                    for l in 0..LANES {
                        let d = x - y[l];
                        a[l] += d * d;
                    }
                }
            }
            let lim_j: &[f32; LANES] = b.limit[j0..j0 + LANES].try_into().unwrap();
            for (r, a) in acc.iter().enumerate() {
                // The lanes close to either end, as a bit mask.
                let mut close = 0u32;
                for l in 0..LANES {
                    close |= (((a[l] < lim_i[r]) | (a[l] < lim_j[l])) as u32) << l;
                }
                let i = i0 + r;
                if close == 0 || i >= rows {
                    continue;
                }
                for (l, &d) in a.iter().enumerate() {
                    let j = j0 + l;
                    if close & (1 << l) != 0 && j > i && j < len {
                        f(i, j, d);
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{PairBlock, Points, PAD, ROWS};
    use crate::simd::set_bits;
    use std::arch::x86_64::*;

    /// Fills the coordinate-major block `t` (lines of `cols` values) with the rows `ids` of
    /// `points`, 16 members a gather per coordinate; padding members get zeros.
    ///
    /// # Safety
    /// Every `id · dim + coordinate` must fit in an i32 (the gather's offsets), and `cols` must
    /// be a multiple of 16 with `ids.len() ≤ cols` and `t.len() == dim · cols`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gather(t: &mut [f32], cols: usize, points: Points<'_>, ids: &[u32]) {
        let dim = points.dim();
        assert!(cols.is_multiple_of(PAD) && ids.len() <= cols && t.len() == dim * cols);
        let base = points.data().as_ptr();
        for (g, group) in ids.chunks(PAD).enumerate() {
            let mut off = [0i32; PAD];
            for (o, &id) in off.iter_mut().zip(group) {
                *o = (id as usize * dim) as i32;
            }
            // group.len() ≤ 16: the shift stays within u32.
            let mask = ((1u32 << group.len()) - 1) as u16;
            let j0 = g * PAD;
            // SAFETY: `off` is 16 readable i32s; every lane in `mask` reads coordinate d < dim of
            // a row of `points` (in bounds), the others read nothing; j0 + 16 ≤ cols, so each
            // store writes 16 floats of line d.
            unsafe {
                let idx = _mm512_loadu_si512(off.as_ptr().cast());
                for d in 0..dim {
                    let v = _mm512_mask_i32gather_ps::<4>(
                        _mm512_setzero_ps(),
                        mask,
                        idx,
                        base.add(d).cast(),
                    );
                    _mm512_storeu_ps(t[d * cols + j0..d * cols + j0 + PAD].as_mut_ptr(), v);
                }
            }
        }
    }

    /// Bit mask of the lanes `l` of the column tile at `j0` with `lo ≤ j0 + l < hi`.
    fn lanes_between(j0: usize, lo: usize, hi: usize) -> u16 {
        let from = lo.saturating_sub(j0).min(PAD);
        let to = hi.saturating_sub(j0).min(PAD);
        let below = |b: usize| ((1u32 << b) - 1) as u16;
        below(to) & !below(from)
    }

    /// [`super::pairs`] with 16-lane column tiles, as ‖x‖² + ‖y‖² − 2x·y. Two column tiles at
    /// a time where there are two: eight independent multiply-add chains keep both FMA units
    /// busy (four, one per row, wait on the previous step's latency).
    #[target_feature(enable = "avx512f")]
    pub(super) fn pairs(b: &PairBlock, rows: usize, mut f: impl FnMut(usize, usize, f32)) {
        let (cols, len) = (b.cols, b.len);
        for i0 in (0..rows).step_by(ROWS) {
            // i0 + ROWS ≤ cols: cols is a multiple of PAD (of ROWS) and i0 < rows ≤ cols.
            let mut j0 = (i0 + 1) / PAD * PAD;
            while j0 < len {
                if j0 + PAD < len && j0 + 2 * PAD <= cols {
                    tiles::<2>(b, i0, j0, rows, &mut f);
                    j0 += 2 * PAD;
                } else {
                    tiles::<1>(b, i0, j0, rows, &mut f);
                    j0 += PAD;
                }
            }
        }
    }

    /// Rows `i0..i0 + ROWS` against the `T` column tiles from `j0` (all within `cols`).
    #[inline(always)]
    fn tiles<const T: usize>(
        b: &PairBlock,
        i0: usize,
        j0: usize,
        rows: usize,
        f: &mut impl FnMut(usize, usize, f32),
    ) {
        let (t, cols, len) = (&b.t[..], b.cols, b.len);
        let dim = t.len() / cols.max(1);
        // SAFETY (every intrinsic below): this is only called from `pairs`, which requires
        // AVX-512 F; every load and store reads or writes 16 floats of a 16-float array.
        unsafe {
            let zero = _mm512_setzero_ps();
            let mut acc = [[zero; ROWS]; T];
            for d in 0..dim {
                let line = &t[d * cols..(d + 1) * cols];
                let x: &[f32; ROWS] = line[i0..i0 + ROWS].try_into().unwrap();
                for (u, acc) in acc.iter_mut().enumerate() {
                    let at = j0 + u * PAD;
                    let y: &[f32; PAD] = line[at..at + PAD].try_into().unwrap();
                    let y = _mm512_loadu_ps(y.as_ptr());
                    for (a, &x) in acc.iter_mut().zip(x) {
                        *a = _mm512_fmadd_ps(_mm512_set1_ps(x), y, *a);
                    }
                }
            }
            let lim_i: &[f32; ROWS] = b.limit[i0..i0 + ROWS].try_into().unwrap();
            let norm_i: &[f32; ROWS] = b.norm[i0..i0 + ROWS].try_into().unwrap();
            let two = _mm512_set1_ps(2.0);
            for (u, acc) in acc.iter_mut().enumerate() {
                let at = j0 + u * PAD;
                let lim_j: &[f32; PAD] = b.limit[at..at + PAD].try_into().unwrap();
                let norm_j: &[f32; PAD] = b.norm[at..at + PAD].try_into().unwrap();
                let (lim_j, norm_j) = (
                    _mm512_loadu_ps(lim_j.as_ptr()),
                    _mm512_loadu_ps(norm_j.as_ptr()),
                );
                for (r, a) in acc.iter_mut().enumerate() {
                    let i = i0 + r;
                    if i >= rows {
                        break;
                    }
                    // ‖x‖² + ‖y‖² − 2x·y, at least 0 (it cancels).
                    let sum = _mm512_add_ps(_mm512_set1_ps(norm_i[r]), norm_j);
                    *a = _mm512_max_ps(_mm512_fnmadd_ps(two, *a, sum), zero);
                    let close = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(*a, _mm512_set1_ps(lim_i[r]))
                        | _mm512_cmp_ps_mask::<_CMP_LT_OQ>(*a, lim_j);
                    let hit = close & lanes_between(at, i + 1, len);
                    if hit == 0 {
                        continue;
                    }
                    let mut d = [0f32; PAD];
                    _mm512_storeu_ps(d.as_mut_ptr(), *a);
                    for l in set_bits(hit) {
                        f(i, at + l, d[l]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::points::sq_dist_f64;

    /// A bound on |reported − exact| of the squared distance of two members with squared norms `nx`
    /// and `ny` in `dim` coordinates: γ₍dim+2₎ · 2(‖x‖² + ‖y‖²), γₘ = m·u / (1 − m·u), u = 2⁻²⁴,
    /// the AVX-512 form's worst case (its dot product, norms and the two sums that join them). The
    /// direct form's error, at most γ₍dim+1₎ · ‖x − y‖², is inside it.
    fn distance_error_bound(dim: usize, nx: f64, ny: f64) -> f64 {
        let mu = (dim + 2) as f64 * f64::from(f32::EPSILON) / 2.0;
        mu / (1.0 - mu) * 2.0 * (nx + ny)
    }

    /// `distance_error_bound` of points `a` and `b` of `p`.
    fn bound(p: Points<'_>, a: u32, b: u32) -> f64 {
        let norm = |i: u32| sq_dist_f64(p.row(i as usize), &vec![0.0; p.dim()]);
        distance_error_bound(p.dim(), norm(a), norm(b))
    }

    #[test]
    fn every_pair_once_with_the_distance() {
        let dim = 13;
        let data: Vec<f32> = (0..40 * dim)
            .map(|v| ((v * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let p = Points::new(&data, dim).unwrap();
        let ids: Vec<u32> = vec![5, 3, 39, 0, 17, 17, 22, 8, 1, 30, 11];
        let mut b = PairBlock::default();
        // Limits: none, then one per point that keeps some pairs and drops others.
        let some = |id: u32| (id % 7) as f32 * 9.0;
        for limited in [false, true] {
            let limit = |id: u32| if limited { some(id) } else { f32::INFINITY };
            b.load(p, ids.iter().copied(), limit);
            assert_eq!(b.len(), ids.len());
            for rows in [0, 1, 3, 4, 5, ids.len(), 99] {
                let mut seen = vec![0u32; ids.len() * ids.len()];
                b.for_close_pairs(rows, |i, j, d| {
                    seen[i * ids.len() + j] += 1;
                    let want = sq_dist_f64(p.row(ids[i] as usize), p.row(ids[j] as usize));
                    let tol = bound(p, ids[i], ids[j]);
                    assert!((d as f64 - want).abs() <= tol, "{i} {j}: {d} vs {want}");
                    assert!(d < limit(ids[i]) || d < limit(ids[j]), "{i} {j}: not close");
                });
                let mut dropped = 0;
                for i in 0..ids.len() {
                    for j in 0..ids.len() {
                        let d = sq_dist_f64(p.row(ids[i] as usize), p.row(ids[j] as usize));
                        let lim = limit(ids[i]).max(limit(ids[j])) as f64;
                        let pair = i < rows.min(ids.len()) && j > i;
                        let tol = bound(p, ids[i], ids[j]);
                        if pair && d >= lim + tol {
                            dropped += 1;
                        }
                        let want = (pair && d < lim - tol) as u32;
                        if !(pair && (d - lim).abs() <= tol) {
                            assert_eq!(seen[i * ids.len() + j], want, "rows {rows}: ({i}, {j})");
                        }
                    }
                }
                if !limited {
                    assert_eq!(dropped, 0);
                } else if rows == ids.len() {
                    // The limits are a real filter here: some pairs kept, some dropped.
                    let kept: u32 = seen.iter().sum();
                    assert!(dropped > 0 && kept > 0, "{dropped} dropped, {kept} kept");
                }
            }
        }
        // The generic body gives the same bits as the AVX2 one, and the same pairs as the
        // dispatched one.
        b.load(p, ids.iter().copied(), |_| f32::INFINITY);
        let (mut a, mut c) = (Vec::new(), Vec::new());
        b.for_close_pairs(ids.len(), |i, j, _| a.push((i, j)));
        pairs(&b, ids.len(), |i, j, d| c.push((i, j, d.to_bits())));
        let mut c_pairs: Vec<_> = c.iter().map(|&(i, j, _)| (i, j)).collect();
        a.sort_unstable();
        c_pairs.sort_unstable();
        assert_eq!(a, c_pairs);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            let mut v = Vec::new();
            // SAFETY: the CPU supports AVX2.
            unsafe { pairs_avx2(&b, ids.len(), |i, j, d| v.push((i, j, d.to_bits()))) };
            assert_eq!(v, c);
        }
    }

    /// The block holds coordinate d of member j at line d, slot j, and zeros in the padding,
    /// whichever load filled it (AVX-512 gathers 16 members at a time).
    #[test]
    fn load_transposes_the_members() {
        for dim in [1, 13, 50] {
            let data: Vec<f32> = (0..70 * dim).map(|v| v as f32 * 0.5 - 7.0).collect();
            let p = Points::new(&data, dim).unwrap();
            let mut b = PairBlock::default();
            for len in [0usize, 1, 15, 16, 17, 33, 70] {
                let ids: Vec<u32> = (0..len as u32).map(|i| (i * 29 + 3) % 70).collect();
                b.load(p, ids.iter().copied(), |id| id as f32);
                let cols = len.div_ceil(PAD) * PAD;
                assert_eq!((b.len(), b.cols), (len, cols));
                let mut want = vec![0f32; dim * cols];
                for (j, &id) in ids.iter().enumerate() {
                    for (d, &x) in p.row(id as usize).iter().enumerate() {
                        want[d * cols + j] = x;
                    }
                }
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&b.t), bits(&want), "dim {dim}, {len} members");
            }
        }
    }

    /// The AVX-512 body reports what the generic one does on sets of every size around its
    /// 16-member tiles (one and two at a time), with distances within the error bound.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn wide_tiles_match_the_generic_body() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("skipped: this CPU has no AVX-512");
            return;
        }
        let dim = 50;
        let data: Vec<f32> = (0..120 * dim)
            .map(|v| ((v * 53 % 211) as f32 - 105.0) / 13.0)
            .collect();
        let p = Points::new(&data, dim).unwrap();
        let mut b = PairBlock::default();
        let (mut kept, mut all) = (0, 0);
        for len in [1, 2, 5, 15, 16, 17, 31, 33, 64, 90, 120] {
            let ids: Vec<u32> = (0..len as u32).map(|i| (i * 7) % 120).collect();
            // Limits that keep some of the pairs and drop others.
            b.load(p, ids.iter().copied(), |id| {
                1900.0 + (id % 5) as f32 * 100.0
            });
            for rows in [1, 3, 4, 7, len / 2, len] {
                let (mut wide, mut base) = (Vec::new(), Vec::new());
                unsafe { avx512::pairs(&b, rows, |i, j, d| wide.push((i, j, d))) };
                pairs(&b, rows, |i, j, d| base.push((i, j, d)));
                let near = |d: f32, i: usize, j: usize| {
                    let lim = b.limit[i].max(b.limit[j]);
                    (d - lim).abs() <= 1e-3 * lim
                };
                let key = |v: &Vec<(usize, usize, f32)>| -> Vec<(usize, usize)> {
                    let mut k: Vec<_> = v
                        .iter()
                        .filter(|&&(i, j, d)| !near(d, i, j))
                        .map(|&(i, j, _)| (i, j))
                        .collect();
                    k.sort_unstable();
                    k
                };
                assert_eq!(key(&wide), key(&base), "len {len} rows {rows}");
                kept += base.len();
                all += (0..rows.min(len)).map(|i| len - 1 - i).sum::<usize>();
                for w in &wide {
                    let (a, c) = (ids[w.0], ids[w.1]);
                    let want = sq_dist_f64(p.row(a as usize), p.row(c as usize));
                    assert!(
                        (w.2 as f64 - want).abs() <= bound(p, a, c),
                        "{w:?} vs {want}"
                    );
                }
            }
        }
        assert!(
            kept > all / 5 && kept < all * 4 / 5,
            "{kept} of {all} pairs kept"
        );
    }
}
