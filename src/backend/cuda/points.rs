//! The point kernels on the device: exact kNN (a worker's share of the queries against all
//! points) and UMAP's layout epochs.

use std::ops::Range;

use cudarc::driver::LaunchConfig;

use super::worker::{launch, Worker};
use crate::backend::cpu::splitmix64;
use crate::backend::points::{EdgeClocks, EdgeList, LayoutParams, Points};
use crate::error::Result;

/// Queries per block of kernels/knn.cu (`KNN_Q`) and its threads per block.
const KNN_QUERIES_PER_BLOCK: usize = 64;
const KNN_THREADS: usize = 256;

/// Queries per launch: bounds the per-thread candidate lists (`blocks x 256 x (k - 1)` entries).
const KNN_QUERIES_PER_LAUNCH: usize = 1 << 16;

/// Exact kNN of `queries` among `points`, `k` slots per query (the query first).
pub(super) fn knn_exact(
    w: &Worker,
    points: Points<'_>,
    queries: Range<usize>,
    k: usize,
    idx: &mut [u32],
    dist: &mut [f32],
) -> Result<()> {
    if queries.is_empty() {
        return Ok(());
    }
    let dev_points = w.upload(points.data())?;
    let (n, dim) = (points.len() as u64, points.dim() as u32);
    let m = k - 1;
    let batch = KNN_QUERIES_PER_LAUNCH.min(queries.len());
    let max_blocks = batch.div_ceil(KNN_QUERIES_PER_BLOCK);
    let scratch_len = max_blocks * KNN_THREADS * m;
    let scratch_d = w.zeros::<f32>(scratch_len)?;
    let scratch_i = w.zeros::<u32>(scratch_len)?;
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
            &n,
            &dim,
            &q0,
            &nq64,
            &k32,
            &scratch_d,
            &scratch_i,
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
