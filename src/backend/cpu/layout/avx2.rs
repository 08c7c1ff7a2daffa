//! The 2-D lane arithmetic in AVX2 + FMA: an epoch block's lanes go eight to a register (eight
//! `f32`s), and `d²ᵇ` is `exp(b · ln d²)` by Cephes' single-precision polynomials (ln to about
//! 1 ulp, exp to about 1 ulp), vectorized, in place of a libm `powf` call per lane. The result
//! differs from `powf` by a few parts in 10⁷ relative (the SGD adds noise of order 1 to every
//! step; `tests` bounds the error).

use std::arch::x86_64::*;

use super::{Coords, DueEdges, Epoch, LaneMath, Step, LANES};

/// Whether this CPU has AVX2 and FMA.
pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// [`Epoch::block`] in 2-D with the AVX2 arithmetic, compiled with AVX2 and FMA enabled so the
/// lane arithmetic inlines into the loop.
///
/// # Safety
/// The CPU must have AVX2 and FMA ([`available`]).
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn walk2(epoch: &Epoch<'_>, due: &DueEdges) {
    epoch.block::<2, Avx2>(due)
}

/// The AVX2 lane arithmetic; only ever instantiated in 2-D (see [`walk2`]).
struct Avx2;

impl LaneMath for Avx2 {
    #[inline(always)]
    fn step<const D: usize>(
        cur: &mut Coords<D>,
        other: &Coords<D>,
        attract: &[bool; LANES],
        s: &Step,
    ) -> Coords<D> {
        assert_eq!(D, 2);
        let mut step = [[0f32; LANES]; D];
        // SAFETY: D is 2, so these point at `Coords<2>`s; `walk2` runs only on CPUs with
        // AVX2 and FMA.
        unsafe {
            step2(
                &mut *cur.as_mut_ptr().cast::<Coords<2>>(),
                &*other.as_ptr().cast::<Coords<2>>(),
                attract,
                s,
                &mut *step.as_mut_ptr().cast::<Coords<2>>(),
            )
        };
        step
    }
}

/// Lanes `h..h + 8` of `v`, read one by one: the loop fills these arrays a lane at a time,
/// and a vector load of eight fresh scalar stores would wait for them to reach the cache (no
/// store forwarding across stores); eight scalar loads are each forwarded. Volatile keeps the
/// compiler from merging them back into one vector load.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn lanes(v: &[f32; LANES], h: usize) -> __m256 {
    // SAFETY: each pointer is to an element of `v`.
    let r = |i: usize| unsafe { std::ptr::read_volatile(&v[h + i]) };
    _mm256_set_ps(r(7), r(6), r(5), r(4), r(3), r(2), r(1), r(0))
}

/// Stores `x` to lanes `h..h + 8` of `v`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn store(v: &mut [f32; LANES], h: usize, x: __m256) {
    // SAFETY: `v[h..h + 8]` holds 8 f32s; the store is unaligned.
    unsafe { _mm256_storeu_ps(v[h..h + 8].as_mut_ptr(), x) }
}

#[cfg(test)]
#[inline]
#[target_feature(enable = "avx2,fma")]
fn load(v: &[f32; 8]) -> __m256 {
    // SAFETY: `v` holds 8 f32s; the load is unaligned.
    unsafe { _mm256_loadu_ps(v.as_ptr()) }
}

/// `clamp(x, -4, 4)`, as umap-learn's `clip`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn clip(x: __m256) -> __m256 {
    _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-4.0)), _mm256_set1_ps(4.0))
}

/// One step of the lanes: `step = clip(coeff · (cur − other)) · α`, `cur += step`, with
/// `coeff = −2ab·d²⁽ᵇ⁻¹⁾ / (a·d²ᵇ + 1)` in attracting lanes and
/// `coeff = 2γb / ((0.001 + d²)(a·d²ᵇ + 1))` in repelling ones; no step where the points
/// coincide. The lanes go eight to a register; the registers' chains are independent, so the
/// CPU overlaps them.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn step2(
    cur: &mut Coords<2>,
    other: &Coords<2>,
    attract: &[bool; LANES],
    s: &Step,
    step: &mut Coords<2>,
) {
    for h in (0..LANES).step_by(8) {
        let (cx, cy) = (lanes(&cur[0], h), lanes(&cur[1], h));
        let dx = _mm256_sub_ps(cx, lanes(&other[0], h));
        let dy = _mm256_sub_ps(cy, lanes(&other[1], h));
        let d2 = _mm256_fmadd_ps(dx, dx, _mm256_mul_ps(dy, dy));
        let pb = pow(d2, s.b);
        let apb1 = _mm256_fmadd_ps(_mm256_set1_ps(s.a), pb, _mm256_set1_ps(1.0));
        // One division for both kinds: -2ab·d²ᵇ / (d²(1 + a d²ᵇ)) attracting, 2γb / ((0.001 + d²)
        // (1 + a d²ᵇ)) repelling.
        let att = mask(attract, h);
        let num = _mm256_blendv_ps(
            _mm256_set1_ps(2.0 * s.gamma * s.b),
            _mm256_mul_ps(_mm256_set1_ps(-2.0 * s.a * s.b), pb),
            att,
        );
        let den = _mm256_blendv_ps(_mm256_add_ps(_mm256_set1_ps(0.001), d2), d2, att);
        let coeff = _mm256_div_ps(num, _mm256_mul_ps(den, apb1));
        // Coincident points (d² = 0, where pb / d² is NaN) take no step.
        let moving = _mm256_cmp_ps::<_CMP_GT_OQ>(d2, _mm256_setzero_ps());
        let alpha = _mm256_set1_ps(s.alpha);
        let gx = _mm256_and_ps(_mm256_mul_ps(clip(_mm256_mul_ps(coeff, dx)), alpha), moving);
        let gy = _mm256_and_ps(_mm256_mul_ps(clip(_mm256_mul_ps(coeff, dy)), alpha), moving);
        store(&mut cur[0], h, _mm256_add_ps(cx, gx));
        store(&mut cur[1], h, _mm256_add_ps(cy, gy));
        store(&mut step[0], h, gx);
        store(&mut step[1], h, gy);
    }
}

/// All ones in lanes `h..h + 8` where `b` is set (the sign bit is what `blendv` reads).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn mask(b: &[bool; LANES], h: usize) -> __m256 {
    // SAFETY: each pointer is to an element of `b` (volatile: see `lanes`).
    let r = |i: usize| -(unsafe { std::ptr::read_volatile(&b[h + i]) } as i32);
    _mm256_castsi256_ps(_mm256_set_epi32(
        r(7),
        r(6),
        r(5),
        r(4),
        r(3),
        r(2),
        r(1),
        r(0),
    ))
}

/// `x^b` for `x ≥ 0` lane-wise, as `exp(b · ln x)`; `x` below the smallest normal `f32`
/// (0 included) counts as that normal, and the exponent is clamped to ±87 (the result stays a
/// finite normal number).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn pow(x: __m256, b: f32) -> __m256 {
    let y = _mm256_mul_ps(
        ln(_mm256_max_ps(x, _mm256_set1_ps(f32::MIN_POSITIVE))),
        _mm256_set1_ps(b),
    );
    exp(_mm256_min_ps(
        _mm256_max_ps(y, _mm256_set1_ps(-87.0)),
        _mm256_set1_ps(87.0),
    ))
}

/// Evaluates `c[0]·xⁿ⁻¹ + … + c[n-1]` by Horner's rule.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn horner(x: __m256, c: &[f32]) -> __m256 {
    let mut p = _mm256_set1_ps(c[0]);
    for &k in &c[1..] {
        p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(k));
    }
    p
}

/// ln 2 split in two for the range reduction: a high part exact in few bits, and the rest.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// Natural log of positive normal `x`, lane-wise (Cephes `logf`).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn ln(x: __m256) -> __m256 {
    // x = m · 2^e with m in [√½, √2).
    let bits = _mm256_castps_si256(x);
    let mut e = _mm256_sub_epi32(_mm256_srli_epi32::<23>(bits), _mm256_set1_epi32(127));
    let mut m = _mm256_castsi256_ps(_mm256_or_si256(
        _mm256_and_si256(bits, _mm256_set1_epi32(0x007f_ffff)),
        _mm256_set1_epi32(0x3f80_0000),
    ));
    let big = _mm256_cmp_ps::<_CMP_GT_OQ>(m, _mm256_set1_ps(std::f32::consts::SQRT_2));
    m = _mm256_blendv_ps(m, _mm256_mul_ps(m, _mm256_set1_ps(0.5)), big);
    // `big` is all ones (−1) where m was halved: e + 1 there.
    e = _mm256_sub_epi32(e, _mm256_castps_si256(big));
    let e = _mm256_cvtepi32_ps(e);
    let f = _mm256_sub_ps(m, _mm256_set1_ps(1.0));
    let z = _mm256_mul_ps(f, f);
    // ln(1 + f) = f − f²/2 + f³·P(f)
    let p = horner(
        f,
        &[
            7.037_683_6e-2,
            -1.151_461_1e-1,
            1.167_699_9e-1,
            -1.242_014_1e-1,
            1.424_932_3e-1,
            -1.666_805_8e-1,
            2.000_071_4e-1,
            -2.499_999_4e-1,
            3.333_333e-1,
        ],
    );
    let mut y = _mm256_mul_ps(_mm256_mul_ps(p, f), z);
    y = _mm256_fmadd_ps(e, _mm256_set1_ps(LN2_LO), y);
    y = _mm256_fnmadd_ps(z, _mm256_set1_ps(0.5), y);
    let r = _mm256_add_ps(f, y);
    _mm256_fmadd_ps(e, _mm256_set1_ps(LN2_HI), r)
}

/// eʸ for |y| ≤ 87, lane-wise (Cephes `expf`).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn exp(y: __m256) -> __m256 {
    // y = n·ln 2 + r with |r| ≤ ln 2 / 2.
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        y,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), y);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    // eʳ = 1 + r + r²·P(r)
    let p = horner(
        r,
        &[
            1.987_569_1e-4,
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            0.5, // Cephes: 5.0000001201e-1, which rounds to 0.5 in f32
        ],
    );
    let er = _mm256_add_ps(
        _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r),
        _mm256_set1_ps(1.0),
    );
    // 2ⁿ built from its exponent bits (n is within the normal range after the clamp).
    let two_n = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
        _mm256_cvtps_epi32(n),
        _mm256_set1_epi32(127),
    )));
    _mm256_mul_ps(er, two_n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pow_is_within_a_few_ulp_of_libm() {
        if !available() {
            eprintln!("skipping: this CPU has no AVX2/FMA");
            return;
        }
        let mut worst = 0f64;
        for &b in &[0.5f32, 0.79, 0.895, 1.0, 1.334, 1.93] {
            // x from 1e-30 to 1e30 in steps of 1.0007 (about 200k values per b).
            let mut xs = Vec::new();
            let mut x = 1e-30f64;
            while x < 1e30 {
                xs.push(x as f32);
                x *= 1.0007;
            }
            xs.extend([1.0, 2.0, 0.5, std::f32::consts::SQRT_2, 1.414_213_7]);
            for c in xs.chunks(8) {
                let mut v = [1f32; 8];
                v[..c.len()].copy_from_slice(c);
                let mut got = [0f32; 8];
                // SAFETY: AVX2 and FMA are present (checked above).
                unsafe { _mm256_storeu_ps(got.as_mut_ptr(), pow(load(&v), b)) };
                for (&x, &g) in v.iter().zip(&got) {
                    let want = (x as f64).powf(b as f64);
                    if want < f32::MIN_POSITIVE as f64 * 1e3 || want > 1e36 {
                        continue; // the clamp's range
                    }
                    let rel = ((g as f64 - want) / want).abs();
                    // Relative error scales with |b·ln x| (the exp amplifies ln's absolute
                    // error): allow 4 ulp of f32 plus that.
                    let allowed = 2.4e-7 * (1.0 + (b as f64 * (x as f64).ln()).abs());
                    assert!(rel <= allowed, "{x}^{b}: {g} vs {want} (rel {rel:e})");
                    worst = worst.max(rel);
                }
            }
        }
        eprintln!("worst relative error {worst:e}");
        // Zero and subnormal inputs give finite results (the lane is masked by its caller).
        let mut got = [0f32; 8];
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(got.as_mut_ptr(), pow(_mm256_setzero_ps(), 1.3)) };
        assert!(got.iter().all(|g| g.is_finite() && *g >= 0.0));
    }
}
