//! Small CPU helpers both `ops` and `backend` use: a stateless hash for per-item random streams,
//! cache prefetch hints, a mask's set bits, and a dot product whose result does not depend on
//! register use. The bottom of the module tree: it imports nothing of scoop's.

/// splitmix64: a stateless hash giving each (seed, epoch, edge) its own random stream, so the
/// samples drawn do not depend on how edges are split among threads.
#[inline]
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hints the CPU to bring the cache line holding `p` in (never faults, whatever the address;
/// a no-op off x86-64).
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it reads nothing the program sees and never faults.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Starts fetching the cache lines of the `len` values from `p` (any `p`: a hint never faults).
pub fn prefetch_span<T>(p: *const T, len: usize) {
    let bytes = len * std::mem::size_of::<T>();
    let p = p.cast::<u8>();
    for off in (0..bytes).step_by(64) {
        prefetch(p.wrapping_add(off));
    }
    // The last line, when the span starts part-way into its first.
    if bytes > 0 {
        prefetch(p.wrapping_add(bytes - 1));
    }
}

/// Indices of the set bits of `m`, lowest first (the lanes a SIMD comparison's mask selects).
#[inline]
pub fn set_bits(mut m: u16) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (m != 0).then(|| {
            let l = m.trailing_zeros() as usize;
            m &= m - 1;
            l
        })
    })
}

/// Dot product with `L` partial sums, added in a fixed order: the loop vectorizes (`L` lanes)
/// and the result does not depend on how the CPU's registers are used (no FMA). Inlined, so it
/// takes the target features of its caller.
#[inline(always)]
pub fn dot_lanes<T, const L: usize>(a: &[T], b: &[T]) -> T
where
    T: Copy + Default + std::ops::Add<Output = T> + std::ops::Mul<Output = T> + std::iter::Sum,
{
    let mut acc = [T::default(); L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let tail: T = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for t in 0..L {
            acc[t] = acc[t] + x[t] * y[t];
        }
    }
    acc.iter().copied().sum::<T>() + tail
}
