//! The point kernels on the device: exact kNN (a worker's share of the queries against all
//! points) and UMAP's layout epochs.

use std::ops::Range;

use cudarc::driver::sys::CUfunction_attribute;
use cudarc::driver::{LaunchConfig, PushKernelArg as _};
use rayon::prelude::*;

use super::worker::{cuda_err, launch, KnnKernel, Worker};
use crate::backend::kernels::CudaLayout;
use crate::backend::points::{EdgeClocks, EdgeList, LayoutParams, Points};
use crate::error::{Error, Result};
use crate::simd::splitmix64;

/// Queries per block of kernels/knn_tile.cuh (`KT_Q`), its threads per block (`KT_THREADS`) and
/// the dimensions of one shared-memory pass (`KT_DK`; rows go up padded to a multiple of it).
const KNN_QUERIES_PER_BLOCK: usize = 128;
const KNN_THREADS: usize = 256;
const KNN_DIMS_PER_PASS: usize = 8;

/// Most queries per launch: gives a device of 132 SMs several waves of blocks.
const KNN_QUERIES_PER_LAUNCH: usize = 1 << 18;

/// Bytes the per-query lists of one launch may take (`queries x (k - 1)` f64 + u32 entries: 44 MB
/// at k = 15 and 2^18 queries; large k get fewer queries per launch).
const KNN_LIST_BYTES: usize = 1 << 30;

/// Queries per launch for `k` neighbours: [`KNN_QUERIES_PER_LAUNCH`] within [`KNN_LIST_BYTES`]
/// and the kernel choice's batch, a multiple of the block's queries.
fn knn_batch(k: usize, asked: Option<usize>) -> usize {
    let by_memory = KNN_LIST_BYTES / (12 * (k - 1).max(1));
    let b = KNN_QUERIES_PER_LAUNCH
        .min(by_memory)
        .min(asked.unwrap_or(usize::MAX));
    (b / KNN_QUERIES_PER_BLOCK).max(1) * KNN_QUERIES_PER_BLOCK
}

/// How one exact kNN runs, beside its arithmetic: the tiles asked for, the pairs a query queues
/// before the kernels merge them into its list (their `flush_at`, at most `KT_CAP`, 32; 0 merges
/// each tile's pairs at once, the measured default), and the most queries per launch.
#[derive(Clone, Copy, Debug)]
pub(super) struct KnnPlan {
    pub(super) tiles: KnnTiles,
    pub(super) flush_at: u32,
    pub(super) batch: Option<usize>,
}

/// The arithmetic of the exact kNN's distance estimates (exact distances are f64 either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KnnArith {
    /// f32 FMAs on the CUDA cores (kernels/knn.cu; any GPU).
    F32,
    /// TF32 tensor cores (kernels/knn_tc.cu; sm_80 and newer): inputs rounded to 10-bit
    /// mantissas, a wider filter.
    Tf32,
}

impl KnnArith {
    /// Bound σ on the relative error of the estimate `‖q‖² + ‖p‖² − 2 q·p` of `dimp` padded
    /// dimensions, times `‖q‖² + ‖p‖²`, taken 4 to 8 times larger than the worst case as it only
    /// widens the filter: f32 sums of `dimp` products, each term below `‖q‖² + ‖p‖²` in all,
    /// about `2 (dimp + 2)` units of rounding (2⁻²⁴); TF32 inputs add 2⁻¹⁰ from the products
    /// and 2⁻¹¹ from each norm.
    fn sigma(self, dimp: usize) -> f32 {
        let f32_sums = (8 * (dimp + 8)) as f32 * f32::EPSILON / 2.0;
        match self {
            KnnArith::F32 => f32_sums,
            KnnArith::Tf32 => f32_sums + 2f32.powi(-8),
        }
    }
}

/// How the tensor-core kernel gets its tiles into shared memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KnnTiles {
    /// Queries and points streamed 8 dimensions at a time (any dimension; the only form of
    /// the f32 kernel).
    Streamed,
    /// The block's queries resident and whole point tiles copied asynchronously
    /// (`knn_exact_tc_resident`), where its shared memory fits [`KNN_RESIDENT_MAX_BYTES`] and
    /// the device grants it; else [`KnnTiles::Streamed`].
    Resident,
}

/// Most dynamic shared memory `knn_exact_tc_resident` may take: 96 KiB (with its 17 KiB of
/// static lists, two blocks fit an sm_90 multiprocessor): up to 56 padded dimensions, which
/// takes 50 PCs.
const KNN_RESIDENT_MAX_BYTES: usize = 96 << 10;

/// Dynamic shared memory of `knn_exact_tc_resident` for `dimp` padded dimensions: the queries
/// and two point tiles, rows of `dimp + 4` floats.
fn resident_bytes(dimp: usize) -> usize {
    (KNN_QUERIES_PER_BLOCK + 2 * KNN_QUERIES_PER_BLOCK) * (dimp + 4) * 4
}

/// `v` rounded to TF32 as `cvt.rna.tf32.f32` rounds it: 10 mantissa bits, ties away from zero
/// (finite `v` below f32's largest binade, as the augmented points are).
fn tf32(v: f32) -> f32 {
    f32::from_bits((v.to_bits() + 0x1000) & !0x1fff)
}

/// Largest squared distance from the mean the kernels' f32 estimates hold (`2^100`: norms,
/// their sums and `−2x` stay far from f32's overflow).
const KNN_MAX_SQ_NORM: f64 = 1.2676506002282294e30;

/// The points as kernels/knn_tile.cuh reads them: the coordinates as given (exact distances
/// come from them), and the estimate's two augmentations of the points less their mean
/// (distances do not change; the error bound, relative to the norms, shrinks), padded with zeros
/// to a multiple of [`KNN_DIMS_PER_PASS`] dimensions: query rows `[y, (1 − σ)‖y‖², 1]` and point
/// rows `[−2y, 1, (1 − σ)‖y‖²]`, whose dot product is the distance estimate less its error
/// bound. The norms are summed in f64 and rounded once. For TF32 estimates both are stored
/// rounded to TF32 (the streaming kernel's conversion then changes nothing; the resident one
/// copies them as they are). Made once per search and shared by the workers.
pub(super) struct PaddedPoints<'a> {
    x: Points<'a>,
    rows: Vec<f32>,
    cols: Vec<f32>,
    dimp: usize,
    arith: KnnArith,
}

impl<'a> PaddedPoints<'a> {
    /// Fails when a point lies beyond [`KNN_MAX_SQ_NORM`] of the mean.
    pub(super) fn new(points: Points<'a>, arith: KnnArith) -> Result<Self> {
        let (n, dim) = (points.len(), points.dim());
        let dimp = (dim + 2).div_ceil(KNN_DIMS_PER_PASS) * KNN_DIMS_PER_PASS;
        let shrink = 1.0 - arith.sigma(dimp) as f64;
        let mean = points.mean();
        let mut rows = vec![0f32; n * dimp];
        let mut cols = vec![0f32; n * dimp];
        let largest = rows
            .par_chunks_mut(dimp)
            .zip(cols.par_chunks_mut(dimp))
            .enumerate()
            .map(|(p, (r, c))| {
                for ((r, &v), &m) in r.iter_mut().zip(points.row(p)).zip(&mean) {
                    *r = (v as f64 - m) as f32;
                }
                let sq: f64 = r[..dim].iter().map(|&v| v as f64 * v as f64).sum();
                let norm = (sq * shrink) as f32;
                for (c, &v) in c.iter_mut().zip(&r[..dim]) {
                    *c = -2.0 * v;
                }
                (r[dim], r[dim + 1]) = (norm, 1.0);
                (c[dim], c[dim + 1]) = (1.0, norm);
                if arith == KnnArith::Tf32 {
                    r.iter_mut().chain(c.iter_mut()).for_each(|v| *v = tf32(*v));
                }
                sq
            })
            .reduce(|| 0.0, f64::max);
        if largest > KNN_MAX_SQ_NORM {
            return Err(Error::InvalidArgument(format!(
                "exact kNN on the GPU: a point lies {:.3e} from the mean of the points, beyond \
                 the 1e15 its f32 estimates hold; use --backend cpu",
                largest.sqrt()
            )));
        }
        Ok(PaddedPoints {
            x: points,
            rows,
            cols,
            dimp,
            arith,
        })
    }
}

/// Exact kNN of `queries` among `points`, `k` slots per query (the query first), with the
/// estimates of `points.arith` (whose kernel the caller checked this worker has) and, for TF32,
/// the `tiles` asked for where they can be had.
pub(super) fn knn_exact(
    w: &Worker,
    points: &PaddedPoints<'_>,
    plan: KnnPlan,
    queries: Range<usize>,
    k: usize,
    idx: &mut [u32],
    dist: &mut [f32],
) -> Result<()> {
    if queries.is_empty() {
        return Ok(());
    }
    let x = w.upload(points.x.data())?;
    let rows = w.upload(&points.rows)?;
    let cols = w.upload(&points.cols)?;
    let n = points.x.len() as u64;
    let (dim, dimp) = (points.x.dim() as u32, points.dimp as u32);
    let m = k - 1;
    let KnnPlan {
        tiles,
        flush_at,
        batch,
    } = plan;
    let batch = knn_batch(k, batch).min(queries.len());
    let list_d = w.zeros::<f64>(batch * m)?;
    let list_i = w.zeros::<u32>(batch * m)?;
    let out_i = w.zeros::<u32>(batch * k)?;
    let out_d = w.zeros::<f32>(batch * k)?;
    let k32 = k as u32;
    fn tc<'k>(w: &Worker, f: &'k Option<KnnKernel>) -> Result<&'k KnnKernel> {
        f.as_ref().ok_or_else(|| {
            Error::Backend(format!(
                "device {} has no TF32 kNN kernel (it needs sm_80 or newer)",
                w.ordinal
            ))
        })
    }
    let resident = resident_bytes(points.dimp);
    let granted = || -> Result<bool> {
        let f = tc(w, &w.k.knn_exact_tc_resident)?;
        let (f, name) = if flush_at == 0 {
            (&f.merge, "knn_exact_tc_resident")
        } else {
            (&f.deferred, "knn_exact_tc_resident_deferred")
        };
        let set = f.set_attribute(
            CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            resident as i32,
        );
        if let Err(e) = &set {
            eprintln!(
                "info: device {}: {name} was refused {resident} bytes of shared memory \
                 ({e:?}); the streaming kernel runs instead",
                w.ordinal
            );
        }
        Ok(set.is_ok())
    };
    let (kernel, name, shared) = match (points.arith, tiles) {
        (KnnArith::F32, _) => (&w.k.knn_exact, "knn_exact", 0),
        (KnnArith::Tf32, KnnTiles::Resident)
            if resident <= KNN_RESIDENT_MAX_BYTES && granted()? =>
        {
            (
                tc(w, &w.k.knn_exact_tc_resident)?,
                "knn_exact_tc_resident",
                resident as u32,
            )
        }
        (KnnArith::Tf32, _) => (tc(w, &w.k.knn_exact_tc)?, "knn_exact_tc", 0),
    };
    let (kernel, name) = if flush_at == 0 {
        (&kernel.merge, name.to_string())
    } else {
        (&kernel.deferred, format!("{name}_deferred"))
    };
    for b0 in (0..queries.len()).step_by(batch) {
        let nq = batch.min(queries.len() - b0);
        let q0 = (queries.start + b0) as u64;
        let nq64 = nq as u64;
        let cfg = LaunchConfig {
            grid_dim: (nq.div_ceil(KNN_QUERIES_PER_BLOCK) as u32, 1, 1),
            block_dim: (KNN_THREADS as u32, 1, 1),
            shared_mem_bytes: shared,
        };
        let mut b = w.stream.launch_builder(kernel);
        b.arg(&x)
            .arg(&rows)
            .arg(&cols)
            .arg(&n)
            .arg(&dim)
            .arg(&dimp)
            .arg(&q0)
            .arg(&nq64);
        b.arg(&k32)
            .arg(&flush_at)
            .arg(&list_d)
            .arg(&list_i)
            .arg(&out_i)
            .arg(&out_d);
        // SAFETY: the arguments follow knn_tile.cuh's signature (both kernels'), the buffers are
        // sized for the launch (lists: batch x m, outputs: batch x k, with nq <= batch), and the
        // resident kernel gets the dynamic shared memory its dimp needs, granted above.
        unsafe { b.launch(cfg) }
            .map(|_| ())
            .map_err(cuda_err(format!(
                "launching {name} on device {}",
                w.ordinal
            )))?;
        w.download(&out_i, &mut idx[b0 * k..(b0 + nq) * k])?;
        w.download(&out_d, &mut dist[b0 * k..(b0 + nq) * k])?;
    }
    Ok(())
}

/// UMAP's epochs on the device: the embedding, edges and edge clocks are uploaded once, one
/// launch per epoch (one thread per edge), the embedding is downloaded at the end.
pub(super) fn optimize_layout(
    w: &Worker,
    embedding: &mut [f32],
    dim: usize,
    edges: &EdgeList,
    params: &LayoutParams,
    on_epoch: &(dyn Fn(usize) + Sync),
    variant: CudaLayout,
) -> Result<()> {
    let n = (embedding.len() / dim) as u32;
    let m = edges.head.len() as u64;
    let emb = w.upload(embedding)?;
    let head = w.upload(&edges.head)?;
    let tail = w.upload(&edges.tail)?;
    let eps = w.upload(&edges.epochs_per_sample)?;
    let clocks = EdgeClocks::new(edges, params.negative_sample_rate);
    let next_sample = w.upload(&clocks.next_sample)?;
    let next_negative = w.upload(&clocks.next_negative)?;
    let dim32 = dim as u32;
    let (a, b, gamma, rate) = (
        params.a,
        params.b,
        params.gamma,
        params.negative_sample_rate,
    );
    let cfg = Worker::flat_launch(m);
    // 2-D layouts keep their coordinates in registers; the generic kernel runs any dimension,
    // the batched one loads eight negative samples' points at once (2-D only; the same layout).
    let (kernel, name) = match variant {
        CudaLayout::Generic => (&w.k.layout_epoch, "layout_epoch"),
        CudaLayout::Batched if dim == 2 => {
            (&w.k.layout_epoch_2d_batched, "layout_epoch_2d_batched")
        }
        CudaLayout::Auto if dim == 2 => (&w.k.layout_epoch_2d, "layout_epoch_2d"),
        CudaLayout::Auto | CudaLayout::Batched => (&w.k.layout_epoch, "layout_epoch"),
    };
    for epoch in 0..params.n_epochs {
        let alpha = 1.0 - epoch as f32 / params.n_epochs as f32;
        let e = epoch as f32;
        // The CPU twin's per-epoch seed (backend/cpu/layout.rs).
        let seed = splitmix64(params.seed ^ (epoch as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        launch!(
            fn w,
            kernel,
            name,
            cfg,
            &emb,
            &n,
            &dim32,
            &head,
            &tail,
            &eps,
            &m,
            &next_sample,
            &next_negative,
            &a,
            &b,
            &gamma,
            &rate,
            &alpha,
            &e,
            &seed
        )?;
        on_epoch(epoch);
    }
    w.download(&emb, embedding)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::points::sq_dist_f64;
    use rand::{rngs::SmallRng, Rng, SeedableRng};

    /// The kernel's estimate for one pair, emulated: f32 products (of TF32-rounded inputs for
    /// the tensor cores) summed with FMAs in dimension order.
    fn estimate(row: &[f32], col: &[f32], arith: KnnArith) -> f32 {
        row.iter().zip(col).fold(0f32, |acc, (&a, &b)| match arith {
            KnnArith::F32 => a.mul_add(b, acc),
            KnnArith::Tf32 => tf32(a).mul_add(tf32(b), acc),
        })
    }

    /// The filter is sound: no estimate exceeds its pair's exact squared distance (the kernel
    /// queues a pair whose estimate is at most a threshold at or above that distance, floored
    /// at 2^-100), for both arithmetics, points far from the origin, and scales from 2^-70 to
    /// 2^40; and it is within twice its error bound of the exact value.
    #[test]
    fn estimates_never_exceed_the_exact_squared_distance() {
        let mut rng = SmallRng::seed_from_u64(7);
        for arith in [KnnArith::F32, KnnArith::Tf32] {
            for (dim, scale, offset) in [
                (2usize, 1f32, 0f32),
                (7, 1.0, 0.0),
                (50, 1.0, 0.0),
                (50, 1.0, 1e4),
                (50, 2f32.powi(40), 0.0),
                (50, 2f32.powi(-70), 0.0),
                (300, 1.0, -3.0),
            ] {
                let n = 120;
                let x: Vec<f32> = (0..n * dim)
                    .map(|e| {
                        let cluster = (e / dim % 4) as f32 * 3.0;
                        (cluster + rng.random_range(-1.0f32..1.0)) * scale + offset
                    })
                    .collect();
                let pts = Points::new(&x, dim).unwrap();
                let padded = PaddedPoints::new(pts, arith).unwrap();
                let dimp = padded.dimp;
                for q in 0..n {
                    for p in 0..n {
                        let est = estimate(
                            &padded.rows[q * dimp..(q + 1) * dimp],
                            &padded.cols[p * dimp..(p + 1) * dimp],
                            arith,
                        ) as f64;
                        let exact = sq_dist_f64(pts.row(q), pts.row(p));
                        assert!(
                            est <= exact.max(2f64.powi(-100)),
                            "{arith:?}, dim {dim}, scale {scale}, offset {offset}: pair \
                             ({q}, {p}) estimate {est} above {exact}"
                        );
                        // Within twice its bound of the exact value (σ S, S the two squared
                        // norms about the mean): the augmentation is right and σ not vast.
                        let sigma = arith.sigma(dimp) as f64;
                        let norms = (padded.rows[q * dimp + dim] as f64
                            + padded.rows[p * dimp + dim] as f64)
                            / (1.0 - sigma);
                        assert!(
                            est >= exact - 2.0 * sigma * norms - 2f64.powi(-100),
                            "{arith:?}, dim {dim}, scale {scale}: {est} for {exact}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn points_beyond_the_estimates_range_are_refused() {
        let x = [0.0f32, 0.0, 2e15, 0.0, 0.0, 1.0];
        let e = PaddedPoints::new(Points::new(&x, 2).unwrap(), KnnArith::F32)
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("--backend cpu"), "{e}");
    }
}
