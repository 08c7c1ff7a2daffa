//! The 2-D lanes in AVX-512: all 16 lanes of an epoch block in registers, from one step to the
//! next. Positions, the negative samples' random streams (splitmix64, eight 64-bit states to a
//! register) and counts never pass through memory: a scalar read of a lane is a register
//! permute and a scalar write a masked move, since a scalar load right after a vector store (or
//! the reverse) is not store-forwarded on Intel cores and waits for the store to reach the
//! cache (a fifth of the samples of the previous, memory-held lanes on a Xeon). The negative
//! samples' points are gathered. Scalar code is left with what differs per lane: the lanes
//! between edges, and the writes of heads and tails.
//!
//! A block's due edges are found 16 at a time ([`find_due`]).
//!
//! The arithmetic is the AVX2 lanes' operation for operation (`d²ᵇ` by [`super::avx2::pow`] on
//! each half), and a step reads and writes the embedding in the order [`Epoch::block`] does,
//! so the layout is the AVX2 lanes' layout.

use std::arch::x86_64::*;

use super::{avx2, DueEdges, Epoch, Step, LANES};
use crate::simd::{prefetch, set_bits as bits};

/// Whether this CPU has AVX-512 F and DQ, and the AVX2 lanes' features.
pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512dq") && avx2::available()
}

/// splitmix64 of eight states (as [`super::splitmix64`]).
#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
fn splitmix8(z: __m512i) -> __m512i {
    let c = |v: u64| _mm512_set1_epi64(v as i64);
    let z = _mm512_add_epi64(z, c(0x9E37_79B9_7F4A_7C15));
    let z = _mm512_mullo_epi64(
        _mm512_xor_si512(z, _mm512_srli_epi64::<30>(z)),
        c(0xBF58_476D_1CE4_E5B9),
    );
    let z = _mm512_mullo_epi64(
        _mm512_xor_si512(z, _mm512_srli_epi64::<27>(z)),
        c(0x94D0_49BB_1331_11EB),
    );
    _mm512_xor_si512(z, _mm512_srli_epi64::<31>(z))
}

/// The points (indices) of the negative samples that eight states draw, as [`Epoch::sample`]:
/// `((state >> 32) · n) >> 32`.
#[inline]
#[target_feature(enable = "avx512f")]
fn samples8(state: __m512i, n: __m512i) -> __m512i {
    _mm512_srli_epi64::<32>(_mm512_mul_epu32(_mm512_srli_epi64::<32>(state), n))
}

/// Stores eight `u64`s.
#[inline]
#[target_feature(enable = "avx512f")]
fn store8(v: &mut [u64], x: __m512i) {
    let v: &mut [u64; 8] = (&mut v[..8]).try_into().unwrap();
    // SAFETY: `v` holds 8 u64s; the store is unaligned.
    unsafe { _mm512_storeu_si512(v.as_mut_ptr().cast(), x) }
}

/// `x^b` in 16 lanes: [`avx2::pow`] on each half.
#[inline]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
fn pow16(x: __m512, b: f32) -> __m512 {
    let lo = avx2::pow(_mm512_castps512_ps256(x), b);
    let hi = avx2::pow(_mm512_extractf32x8_ps::<1>(x), b);
    _mm512_insertf32x8::<1>(_mm512_castps256_ps512(lo), hi)
}

/// One step of every lane, as the AVX2 lanes' `step2`: moves `(cx, cy)` and returns each
/// lane's step.
#[inline]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
fn step16(
    (cx, cy): (__m512, __m512),
    (ox, oy): (__m512, __m512),
    attract: u16,
    s: &Step,
) -> (__m512, __m512) {
    let dx = _mm512_sub_ps(cx, ox);
    let dy = _mm512_sub_ps(cy, oy);
    let d2 = _mm512_fmadd_ps(dx, dx, _mm512_mul_ps(dy, dy));
    let pb = pow16(d2, s.b);
    let apb1 = _mm512_fmadd_ps(_mm512_set1_ps(s.a), pb, _mm512_set1_ps(1.0));
    // One division for both kinds, as the AVX2 lanes.
    let num = _mm512_mask_blend_ps(
        attract,
        _mm512_set1_ps(2.0 * s.gamma * s.b),
        _mm512_mul_ps(_mm512_set1_ps(-2.0 * s.a * s.b), pb),
    );
    let den = _mm512_mask_blend_ps(attract, _mm512_add_ps(_mm512_set1_ps(0.001), d2), d2);
    let coeff = _mm512_div_ps(num, _mm512_mul_ps(den, apb1));
    // Coincident points (d² = 0, where pb / d² is NaN) take no step.
    let moving = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(d2, _mm512_setzero_ps());
    let alpha = _mm512_set1_ps(s.alpha);
    let clip =
        |x: __m512| _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-4.0)), _mm512_set1_ps(4.0));
    let gx = _mm512_maskz_mov_ps(moving, _mm512_mul_ps(clip(_mm512_mul_ps(coeff, dx)), alpha));
    let gy = _mm512_maskz_mov_ps(moving, _mm512_mul_ps(clip(_mm512_mul_ps(coeff, dy)), alpha));
    (gx, gy)
}

/// Lane `l` of `v`, read from the register (a scalar load right after a vector store is not
/// store-forwarded on Intel cores: it waits for the store to reach the cache).
#[inline]
#[target_feature(enable = "avx512f")]
fn lane(v: __m512, l: usize) -> f32 {
    _mm512_cvtss_f32(_mm512_permutexvar_ps(_mm512_set1_epi32(l as i32), v))
}

/// `v` with lane `l` set to `x`.
#[inline]
#[target_feature(enable = "avx512f")]
fn with_lane(v: __m512, l: usize, x: f32) -> __m512 {
    _mm512_mask_mov_ps(v, 1 << l, _mm512_set1_ps(x))
}

/// The 64-bit lane `l` (of 16, over two registers) set to `x`.
#[inline]
#[target_feature(enable = "avx512f")]
fn with_lane64(v: [__m512i; 2], l: usize, x: u64) -> [__m512i; 2] {
    let mut v = v;
    v[l / 8] = _mm512_mask_mov_epi64(v[l / 8], 1 << (l % 8), _mm512_set1_epi64(x as i64));
    v
}

/// The 2-D points `idx` (point indices) of the embedding at `base`, one 64-bit (x, y) pair per
/// lane of `mask` (0 in the others).
///
/// # Safety
/// Every index of `mask` must be a point of the embedding.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn gather_points(base: *const f32, idx: __m512i, mask: u8) -> __m512i {
    let mut out = _mm512_setzero_si512();
    if mask == 0 {
        return out;
    }
    // An asm gather, not the intrinsic: each element is a hardware load of aligned 32-bit
    // halves, as the relaxed atomic loads of the rest of the layout are, while other threads
    // store to the embedding; the intrinsic would be a plain (racing) read in Rust's model.
    // SAFETY: the caller guarantees the addresses; the mask register is consumed (cleared).
    unsafe {
        std::arch::asm!(
            "vpgatherqq {out}{{{k}}}, [{base} + {idx}*8]",
            out = inout(zmm_reg) out,
            k = inout(kreg) mask => _,
            base = in(reg) base,
            idx = in(zmm_reg) idx,
            options(nostack, preserves_flags, readonly),
        );
    }
    out
}

/// [`Epoch::find_due`] 16 edges at a step: the same operations, so the same lists, clocks and
/// random states.
///
/// # Safety
/// The CPU must have AVX-512 F and DQ, and the block's edges' indices must fit 32 bits.
#[target_feature(enable = "avx512f,avx512dq")]
pub(super) unsafe fn find_due(
    epoch: &Epoch<'_>,
    base: usize,
    next_s: &mut [f32],
    next_n: &mut [f32],
    due: &mut DueEdges,
) {
    let len = next_s.len();
    let edges = epoch.edges;
    assert!(base + len <= edges.head.len() && next_n.len() == len);
    assert!(
        base + len <= u32::MAX as usize,
        "edge indices must fit 32 bits"
    );
    for v in [&mut due.head, &mut due.tail, &mut due.left, &mut due.index] {
        v.clear();
        v.reserve(len);
    }
    let e = _mm512_set1_ps(epoch.e);
    let rate = _mm512_set1_ps(epoch.negative_sample_rate);
    let sixteen = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let mut count = 0usize;
    for l in 0..LANES {
        due.start[l] = count;
        let (lo, hi) = (l * len / LANES, (l + 1) * len / LANES);
        for o in (lo..hi).step_by(16) {
            let valid = if hi - o >= 16 {
                u16::MAX
            } else {
                ((1u32 << (hi - o)) - 1) as u16
            };
            let i = base + o;
            // SAFETY (every access below): lanes of `valid` lie in `o..hi`, within the block's
            // clocks and (at `base + o`) the edge arrays, and `d` only has lanes of `valid`;
            // the outputs hold `len` entries, of which `count + popcount(d)` are written.
            unsafe {
                let ns = _mm512_maskz_loadu_ps(valid, next_s.as_ptr().add(o));
                let d = _mm512_mask_cmp_ps_mask::<_CMP_LE_OQ>(valid, ns, e);
                if d == 0 {
                    continue;
                }
                let eps = _mm512_maskz_loadu_ps(d, edges.epochs_per_sample.as_ptr().add(i));
                _mm512_mask_storeu_ps(next_s.as_mut_ptr().add(o), d, _mm512_add_ps(ns, eps));
                let eps_neg = _mm512_maskz_div_ps(d, eps, rate);
                let nn = _mm512_maskz_loadu_ps(d, next_n.as_ptr().add(o));
                let ratio = _mm512_maskz_div_ps(d, _mm512_sub_ps(e, nn), eps_neg);
                // `max(ratio, 0)`, 0 for NaN as `f32::max`; truncated as `as u32`.
                let left = _mm512_cvttps_epu32(_mm512_max_ps(ratio, _mm512_setzero_ps()));
                let booked = _mm512_mul_ps(_mm512_cvtepu32_ps(left), eps_neg);
                _mm512_mask_storeu_ps(next_n.as_mut_ptr().add(o), d, _mm512_add_ps(nn, booked));
                let at = count;
                let put = |v: &mut Vec<u32>, x: __m512i| {
                    _mm512_mask_compressstoreu_epi32(v.as_mut_ptr().add(at).cast(), d, x)
                };
                put(
                    &mut due.head,
                    _mm512_maskz_loadu_epi32(d, edges.head.as_ptr().add(i).cast()),
                );
                put(
                    &mut due.tail,
                    _mm512_maskz_loadu_epi32(d, edges.tail.as_ptr().add(i).cast()),
                );
                put(&mut due.left, left);
                let index = _mm512_add_epi32(_mm512_set1_epi32(i as i32), sixteen);
                put(&mut due.index, index);
                count += d.count_ones() as usize;
            }
        }
    }
    due.start[LANES] = count;
    // SAFETY: `count` entries of each were written above, within the `len` reserved.
    unsafe {
        for v in [&mut due.head, &mut due.tail, &mut due.left, &mut due.index] {
            v.set_len(count);
        }
    }
    // The random states, only of the edges due (six 64-bit multiplies an edge, the slowest work
    // here).
    let seed = _mm512_set1_epi64(epoch.seed as i64);
    due.state.clear();
    due.after.clear();
    due.state.reserve(count + 8);
    due.after.reserve(count + 8);
    for at in (0..count).step_by(8) {
        // SAFETY: `index` holds `count` entries and the states room for `count + 8`.
        unsafe {
            let m = if count - at >= 8 {
                u8::MAX
            } else {
                (1u8 << (count - at)) - 1
            };
            let i = _mm512_maskz_loadu_epi32(m as u16, due.index.as_ptr().add(at).cast());
            let i = _mm512_cvtepu32_epi64(_mm512_castsi512_si256(i));
            let s = splitmix8(splitmix8(_mm512_xor_si512(seed, i)));
            _mm512_storeu_si512(due.state.as_mut_ptr().add(at).cast(), s);
            _mm512_storeu_si512(due.after.as_mut_ptr().add(at).cast(), splitmix8(s));
        }
    }
    // SAFETY: `count` states were written (and room for 8 more) above.
    unsafe {
        due.state.set_len(count);
        due.after.set_len(count);
    }
}

/// [`Epoch::block`] in 2-D with the lanes held in registers: positions, negative-sample
/// states and counts never pass through memory between steps (every scalar read of a lane is a
/// register permute, every scalar write a masked move), the negative samples' points are
/// gathered, and the arithmetic is AVX-512. The same lanes, steps and embedding reads and
/// writes in the same order as [`Epoch::block`].
///
/// # Safety
/// The CPU must have AVX-512 F and DQ, AVX2 and FMA ([`available`]).
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
pub(super) unsafe fn walk2(epoch: &Epoch<'_>, due: &DueEdges) {
    let emb = epoch.emb;
    let points = emb.0.as_ptr().cast::<f32>();
    // Per lane, scalar: its next due edge and the end of its run, and its edge's head and tail
    // (first coordinates; `head` is IDLE between edges).
    let mut next: [usize; LANES] = std::array::from_fn(|l| due.start[l]);
    let end: [usize; LANES] = std::array::from_fn(|l| due.start[l + 1]);
    let (mut head, mut tail) = ([super::IDLE; LANES], [0usize; LANES]);
    // Per lane, in registers: the head's position, the point it moves against, the random
    // states of its next two negative samples and the negative samples left.
    let (mut cx, mut cy) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let (mut ox, mut oy) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut state = [_mm512_setzero_si512(); 2];
    let mut after = [_mm512_setzero_si512(); 2];
    let mut left = _mm512_setzero_si512();
    // Per lane: the point three samples on, prefetched next step; it is read a step after its
    // store, which a load right after would wait for.
    let mut ahead = [0u64; LANES];
    let n = _mm512_set1_epi64(epoch.n as i64);
    let one = _mm512_set1_epi32(1);
    // x and y of 16 gathered (x, y) pairs: the even and the odd f32s of two registers.
    let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odds = _mm512_add_epi32(evens, one);
    loop {
        let negative = _mm512_cmpgt_epu32_mask(left, _mm512_setzero_si512());
        let mut busy = negative != 0;
        let mut attract = 0u16;
        if negative != 0 {
            left = _mm512_mask_sub_epi32(left, negative, left, one);
            let far = _mm512_mask_cmpgt_epu32_mask(negative, left, one);
            let mut pairs = [_mm512_setzero_si512(); 2];
            for h in 0..2 {
                let m = (negative >> (8 * h)) as u8;
                // SAFETY: a sample is a point below n (`Epoch::sample`).
                pairs[h] = unsafe { gather_points(points, samples8(state[h], n), m) };
            }
            let (px, py) = (_mm512_castsi512_ps(pairs[0]), _mm512_castsi512_ps(pairs[1]));
            ox = _mm512_mask_mov_ps(ox, negative, _mm512_permutex2var_ps(px, evens, py));
            oy = _mm512_mask_mov_ps(oy, negative, _mm512_permutex2var_ps(px, odds, py));
            for l in bits(far) {
                // The point two samples on (see `Epoch::block`), found a step ago: stale where
                // the lane has taken an edge since, a wasted hint then.
                prefetch(points.wrapping_add(2 * ahead[l] as usize));
            }
            for h in 0..2 {
                let m = (negative >> (8 * h)) as u8;
                if m == 0 {
                    continue;
                }
                let (s, a) = (state[h], after[h]);
                let a2 = splitmix8(a);
                store8(&mut ahead[8 * h..], samples8(splitmix8(a2), n));
                state[h] = _mm512_mask_mov_epi64(s, m, a);
                after[h] = _mm512_mask_mov_epi64(a, m, a2);
            }
        }
        let mut idle = 0u16;
        for l in bits(!negative) {
            // Between edges: write the head back, take the run's next due edge.
            if head[l] != super::IDLE {
                emb.set(head[l], lane(cx, l));
                emb.set(head[l] + 1, lane(cy, l));
                head[l] = super::IDLE;
            }
            let i = next[l];
            if i == end[l] {
                // At the run's end: repel from itself, which moves nothing.
                idle |= 1 << l;
                continue;
            }
            next[l] = i + 1;
            // The run's next edge's tail, a random read, is fetched while this edge's samples
            // run; so are this edge's first two negative samples.
            if i + 1 < end[l] {
                prefetch(points.wrapping_add(2 * due.tail[i + 1] as usize));
            }
            let (s, a, n_left) = (due.state[i], due.after[i], due.left[i]);
            if n_left > 0 {
                prefetch(points.wrapping_add(epoch.sample::<2>(s)));
            }
            if n_left > 1 {
                prefetch(points.wrapping_add(epoch.sample::<2>(a)));
            }
            (head[l], tail[l]) = (2 * due.head[i] as usize, 2 * due.tail[i] as usize);
            cx = with_lane(cx, l, emb.get(head[l]));
            cy = with_lane(cy, l, emb.get(head[l] + 1));
            ox = with_lane(ox, l, emb.get(tail[l]));
            oy = with_lane(oy, l, emb.get(tail[l] + 1));
            state = with_lane64(state, l, s);
            after = with_lane64(after, l, a);
            left = _mm512_mask_mov_epi32(left, 1 << l, _mm512_set1_epi32(n_left as i32));
            attract |= 1 << l;
            busy = true;
        }
        if !busy {
            break;
        }
        ox = _mm512_mask_mov_ps(ox, idle, cx);
        oy = _mm512_mask_mov_ps(oy, idle, cy);
        let (gx, gy) = step16((cx, cy), (ox, oy), attract, &epoch.step);
        cx = _mm512_add_ps(cx, gx);
        cy = _mm512_add_ps(cy, gy);
        for l in bits(attract) {
            // Both ends move, as `Epoch::move_both_ends`.
            let (h, t) = (head[l], tail[l]);
            emb.set(h, lane(cx, l));
            emb.set(h + 1, lane(cy, l));
            emb.set(t, emb.get(t) - lane(gx, l));
            emb.set(t + 1, emb.get(t + 1) - lane(gy, l));
        }
    }
}
