//! The 2-D lanes in AVX-512: all 16 lanes of an epoch block in one register, and the negative
//! samples' bookkeeping vectorized as well: which lanes draw a negative sample this step (a
//! mask), their random streams (splitmix64, eight 64-bit states to a register), sample indices
//! and counts. Scalar code is left with what differs per lane: reading the sampled points
//! (relaxed atomic loads, as everywhere in the layout), and the lanes between edges.
//!
//! The arithmetic is the AVX2 lanes' operation for operation (`d²ᵇ` by [`super::avx2::pow`] on
//! each half), and a step reads and writes the embedding in the order [`Epoch::block`] does,
//! so the layout is the AVX2 lanes' layout.

use std::arch::x86_64::*;

use super::{avx2, prefetch, set_bits as bits, Epoch, Lanes, Step, LANES};

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

/// First coordinates (2-D) of the negative samples that eight states draw, as
/// [`Epoch::sample`]: `((state >> 32) · n) >> 32`, times 2.
#[inline]
#[target_feature(enable = "avx512f")]
fn samples8(state: __m512i, n: __m512i) -> __m512i {
    let k = _mm512_srli_epi64::<32>(_mm512_mul_epu32(_mm512_srli_epi64::<32>(state), n));
    _mm512_slli_epi64::<1>(k)
}

/// Loads eight `u64`s.
#[inline]
#[target_feature(enable = "avx512f")]
fn load8(v: &[u64]) -> __m512i {
    let v: &[u64; 8] = v[..8].try_into().unwrap();
    // SAFETY: `v` holds 8 u64s; the load is unaligned.
    unsafe { _mm512_loadu_si512(v.as_ptr().cast()) }
}

/// Stores eight `u64`s.
#[inline]
#[target_feature(enable = "avx512f")]
fn store8(v: &mut [u64], x: __m512i) {
    let v: &mut [u64; 8] = (&mut v[..8]).try_into().unwrap();
    // SAFETY: `v` holds 8 u64s; the store is unaligned.
    unsafe { _mm512_storeu_si512(v.as_mut_ptr().cast(), x) }
}

/// Loads the 16 lanes of `v`.
#[inline]
#[target_feature(enable = "avx512f")]
fn load16(v: &[f32; LANES]) -> __m512 {
    // SAFETY: `v` holds 16 f32s; the load is unaligned.
    unsafe { _mm512_loadu_ps(v.as_ptr()) }
}

/// Stores `x` to the 16 lanes of `v`.
#[inline]
#[target_feature(enable = "avx512f")]
fn store16(v: &mut [f32; LANES], x: __m512) {
    // SAFETY: `v` holds 16 f32s; the store is unaligned.
    unsafe { _mm512_storeu_ps(v.as_mut_ptr(), x) }
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
    let att = _mm512_div_ps(
        _mm512_mul_ps(_mm512_set1_ps(-2.0 * s.a * s.b), _mm512_div_ps(pb, d2)),
        apb1,
    );
    let rep = _mm512_div_ps(
        _mm512_set1_ps(2.0 * s.gamma * s.b),
        _mm512_mul_ps(_mm512_add_ps(_mm512_set1_ps(0.001), d2), apb1),
    );
    let coeff = _mm512_mask_blend_ps(attract, rep, att);
    // Coincident points (d² = 0, where pb / d² is NaN) take no step.
    let moving = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(d2, _mm512_setzero_ps());
    let alpha = _mm512_set1_ps(s.alpha);
    let clip =
        |x: __m512| _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-4.0)), _mm512_set1_ps(4.0));
    let gx = _mm512_maskz_mov_ps(moving, _mm512_mul_ps(clip(_mm512_mul_ps(coeff, dx)), alpha));
    let gy = _mm512_maskz_mov_ps(moving, _mm512_mul_ps(clip(_mm512_mul_ps(coeff, dy)), alpha));
    (gx, gy)
}

/// [`Epoch::block`] in 2-D with the negative samples' bookkeeping and the arithmetic in
/// AVX-512: the same lanes, steps and embedding reads and writes in the same order.
///
/// # Safety
/// The CPU must have AVX-512 F and DQ, AVX2 and FMA ([`available`]).
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
pub(super) unsafe fn block2(
    epoch: &Epoch<'_>,
    base: usize,
    next_s: &mut [f32],
    next_n: &mut [f32],
) {
    let emb = epoch.emb;
    let mut lanes = Lanes::<2>::new(next_s.len());
    // Per lane: the points of this step's negative sample and of the one two samples on
    // (first coordinates).
    let (mut sample, mut ahead) = ([0u64; LANES], [0u64; LANES]);
    let n = _mm512_set1_epi64(epoch.n as i64);
    let one = _mm512_set1_epi32(1);
    loop {
        // SAFETY: `left` holds 16 u32s; the load is unaligned.
        let count = unsafe { _mm512_loadu_si512(lanes.left.as_ptr().cast()) };
        let negative = _mm512_cmpgt_epu32_mask(count, _mm512_setzero_si512());
        let mut busy = negative != 0;
        let mut attract = 0u16;
        if negative != 0 {
            let count = _mm512_mask_sub_epi32(count, negative, count, one);
            // SAFETY: as the load above.
            unsafe { _mm512_storeu_si512(lanes.left.as_mut_ptr().cast(), count) };
            let far = _mm512_mask_cmpgt_epu32_mask(negative, count, one);
            for h in [0, 8] {
                let m = (negative >> h) as u8;
                if m == 0 {
                    continue;
                }
                let (s, a) = (load8(&lanes.state[h..]), load8(&lanes.after[h..]));
                let a2 = splitmix8(a);
                store8(&mut sample[h..], samples8(s, n));
                store8(&mut ahead[h..], samples8(a2, n));
                store8(&mut lanes.state[h..], _mm512_mask_mov_epi64(s, m, a));
                store8(&mut lanes.after[h..], _mm512_mask_mov_epi64(a, m, a2));
            }
            for l in bits(negative) {
                let k = sample[l] as usize;
                lanes.other[0][l] = emb.get(k);
                lanes.other[1][l] = emb.get(k + 1);
            }
            for l in bits(far) {
                // The point two samples on (see `Epoch::block`).
                prefetch(&emb.0[ahead[l] as usize]);
            }
        }
        for l in bits(!negative) {
            if epoch.next_edge(&mut lanes, l, base, next_s, next_n) {
                attract |= 1 << l;
                busy = true;
            }
        }
        if !busy {
            break;
        }
        let (cur, other) = (&mut lanes.cur, &lanes.other);
        let (cx, cy) = (load16(&cur[0]), load16(&cur[1]));
        let (gx, gy) = step16(
            (cx, cy),
            (load16(&other[0]), load16(&other[1])),
            attract,
            &epoch.step,
        );
        store16(&mut cur[0], _mm512_add_ps(cx, gx));
        store16(&mut cur[1], _mm512_add_ps(cy, gy));
        if attract != 0 {
            let mut step = [[0f32; LANES]; 2];
            store16(&mut step[0], gx);
            store16(&mut step[1], gy);
            for l in bits(attract) {
                epoch.move_both_ends(&lanes, l, &step);
            }
        }
    }
}
