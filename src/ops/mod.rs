//! Algorithms, written once against [`crate::backend::Backend`] and the chunk stream. They know
//! nothing of HDF5.

pub mod eigen;
pub mod filter;
pub mod fuzzy;
pub mod hvg;
pub mod knn;
pub mod loess;
pub mod normalize;
pub mod pairs;
pub mod pca;
pub mod preprocess;
pub mod quality;
pub mod spectral;
pub mod umap;

/// Dot product with `L` partial sums, added in a fixed order: the loop vectorizes (`L` lanes)
/// and the result does not depend on how the CPU's registers are used (no FMA). Inlined, so it
/// takes the target features of its caller.
#[inline(always)]
pub(crate) fn dot_lanes<T, const L: usize>(a: &[T], b: &[T]) -> T
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
