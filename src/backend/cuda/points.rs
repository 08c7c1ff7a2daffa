//! The point kernels on the device: exact kNN (a worker's share of the queries against all
//! points) and UMAP's layout epochs.

use std::ops::Range;

use cudarc::driver::LaunchConfig;
use rayon::prelude::*;

use super::worker::{launch, Worker};
use crate::backend::cpu::splitmix64;
use crate::backend::points::{EdgeClocks, EdgeList, LayoutParams, Points};
use crate::error::Result;

/// Queries per block of kernels/knn.cu (`KT_Q`), its threads per block (`KT_THREADS`) and the
/// dimensions of one shared-memory pass (`KT_DK`; the points go up padded to a multiple of it).
const KNN_QUERIES_PER_BLOCK: usize = 128;
const KNN_THREADS: usize = 256;
const KNN_DIMS_PER_PASS: usize = 8;

/// Most queries per launch: gives a device of 132 SMs several waves of blocks.
const KNN_QUERIES_PER_LAUNCH: usize = 1 << 18;

/// Bytes the per-query lists of one launch may take (`queries x (k - 1)` f64 + u32 entries: 44 MB
/// at k = 15 and 2^18 queries; large k get fewer queries per launch).
const KNN_LIST_BYTES: usize = 1 << 30;

/// Queries per launch for `k` neighbours: [`KNN_QUERIES_PER_LAUNCH`] within [`KNN_LIST_BYTES`], a
/// multiple of the block's queries; `SCOOP_CUDA_KNN_BATCH` (a test hook) lowers it.
fn knn_batch(k: usize) -> usize {
    let by_memory = KNN_LIST_BYTES / (12 * (k - 1).max(1));
    let hook = std::env::var("SCOOP_CUDA_KNN_BATCH")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    let b = KNN_QUERIES_PER_LAUNCH.min(by_memory).min(hook);
    (b / KNN_QUERIES_PER_BLOCK).max(1) * KNN_QUERIES_PER_BLOCK
}

/// The points as kernels/knn.cu reads them: rows padded with zeros to a multiple of
/// [`KNN_DIMS_PER_PASS`] dimensions, and each row's squared norm (summed in f64, rounded once).
/// Made once per search and shared by the workers.
pub(super) struct PaddedPoints {
    data: Vec<f32>,
    norms: Vec<f32>,
    dim: usize,
    dimp: usize,
}

impl PaddedPoints {
    pub(super) fn new(points: Points<'_>) -> Self {
        let dim = points.dim();
        let dimp = dim.div_ceil(KNN_DIMS_PER_PASS).max(1) * KNN_DIMS_PER_PASS;
        let mut data = vec![0f32; points.len() * dimp];
        let mut norms = vec![0f32; points.len()];
        data.par_chunks_mut(dimp)
            .zip(norms.par_iter_mut())
            .enumerate()
            .for_each(|(p, (row, norm))| {
                let x = points.row(p);
                row[..dim].copy_from_slice(x);
                *norm = x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() as f32;
            });
        PaddedPoints {
            data,
            norms,
            dim,
            dimp,
        }
    }

    /// Bound on the relative error of the kernel's f32 estimate `‖q‖² + ‖p‖² − 2 q·p` (times
    /// `‖q‖² + ‖p‖²`): about `dimp + 6` units of f32 rounding; taken 8 times larger, as it only
    /// decides which pairs get their exact distance computed.
    fn slack(&self) -> f32 {
        (8 * (self.dimp + 6)) as f32 * f32::EPSILON / 2.0
    }
}

/// Exact kNN of `queries` among `points`, `k` slots per query (the query first).
pub(super) fn knn_exact(
    w: &Worker,
    points: &PaddedPoints,
    queries: Range<usize>,
    k: usize,
    idx: &mut [u32],
    dist: &mut [f32],
) -> Result<()> {
    if queries.is_empty() {
        return Ok(());
    }
    let dev_points = w.upload(&points.data)?;
    let dev_norms = w.upload(&points.norms)?;
    let n = points.norms.len() as u64;
    let (dim, dimp) = (points.dim as u32, points.dimp as u32);
    let slack = points.slack();
    let m = k - 1;
    let batch = knn_batch(k).min(queries.len());
    let list_d = w.zeros::<f64>(batch * m)?;
    let list_i = w.zeros::<u32>(batch * m)?;
    let out_i = w.zeros::<u32>(batch * k)?;
    let out_d = w.zeros::<f32>(batch * k)?;
    let k32 = k as u32;
    for b0 in (0..queries.len()).step_by(batch) {
        let nq = batch.min(queries.len() - b0);
        let q0 = (queries.start + b0) as u64;
        let nq64 = nq as u64;
        let cfg = LaunchConfig {
            grid_dim: (nq.div_ceil(KNN_QUERIES_PER_BLOCK) as u32, 1, 1),
            block_dim: (KNN_THREADS as u32, 1, 1),
            shared_mem_bytes: 0,
        };
        launch!(
            w,
            knn_exact,
            cfg,
            &dev_points,
            &dev_norms,
            &n,
            &dim,
            &dimp,
            &q0,
            &nq64,
            &k32,
            &slack,
            &list_d,
            &list_i,
            &out_i,
            &out_d
        )?;
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
    for epoch in 0..params.n_epochs {
        let alpha = 1.0 - epoch as f32 / params.n_epochs as f32;
        let e = epoch as f32;
        // The CPU twin's per-epoch seed (backend/cpu/layout.rs).
        let seed = splitmix64(params.seed ^ (epoch as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        launch!(
            w,
            layout_epoch,
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
