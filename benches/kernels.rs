//! Kernel benchmarks: each Backend kernel on synthetic data, on the CPU and (where a GPU and
//! the embedded PTX are found) on CUDA, with byte or item throughput.
//! `cargo bench --bench kernels`; on a GPU machine without cargo, run the bench binary the
//! bundle of `scripts/gpu-bundle.sh` carries (see docs/gpu.md).
//!
//! The GPU numbers include the host↔device copies of each call (chunks arrive from the host in
//! the streaming pipeline), except `gram_resident`, whose accumulator stays on the device.

use std::sync::OnceLock;

use divan::counter::{BytesCount, ItemsCount};
use divan::Bencher;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use scoop::backend::cuda::CudaBackend;
use scoop::backend::{
    Backend, CpuBackend, EdgeList, GeneSubset, GeneSums, Gram, LayoutParams, Points, Projection,
    SparseRows, TallMatrix, ValueMap,
};
use scoop::io::{CsrChunk, RowIds};

/// Where a benchmark runs.
#[derive(Clone, Copy, Debug)]
enum On {
    Cpu,
    Cuda,
}

/// The CUDA backend on device 0, opened once (`None`, said once, without a GPU).
fn cuda() -> Option<&'static CudaBackend> {
    static CUDA: OnceLock<Option<CudaBackend>> = OnceLock::new();
    CUDA.get_or_init(|| match CudaBackend::open(&[0]) {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("kernels bench: CUDA benchmarks skipped ({e})");
            None
        }
    })
    .as_ref()
}

fn backend(on: On) -> &'static dyn Backend {
    static CPU: CpuBackend = CpuBackend::new();
    match on {
        On::Cpu => &CPU,
        On::Cuda => cuda().expect("CUDA case listed without a device"),
    }
}

/// A benchmark case: the backend and a shape.
#[derive(Clone, Copy, Debug)]
struct Case<S> {
    on: On,
    shape: S,
}

/// Every shape on the CPU, and on CUDA where it is available.
fn cases<S: Copy>(shapes: &[S]) -> Vec<Case<S>> {
    cases_on(shapes, shapes)
}

/// `cpu` shapes on the CPU, and `gpu` shapes on CUDA where it is available.
fn cases_on<S: Copy>(cpu: &[S], gpu: &[S]) -> Vec<Case<S>> {
    let mut out: Vec<Case<S>> = cpu
        .iter()
        .map(|&shape| Case { on: On::Cpu, shape })
        .collect();
    if cuda().is_some() {
        out.extend(gpu.iter().map(|&shape| Case {
            on: On::Cuda,
            shape,
        }));
    }
    out
}

fn main() {
    divan::main();
}

/// A chunk of `rows` x `cols` with `per_row` stored values per row (sorted, distinct columns),
/// made once per shape and shared by every benchmark of it (the CPU's and the GPU's).
fn chunk(rows: usize, cols: usize, per_row: usize) -> &'static CsrChunk {
    type Made = std::collections::HashMap<(usize, usize, usize), &'static CsrChunk>;
    static MADE: OnceLock<std::sync::Mutex<Made>> = OnceLock::new();
    let mut made = MADE.get_or_init(Default::default).lock().unwrap();
    made.entry((rows, cols, per_row)).or_insert_with(|| {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut c = CsrChunk::empty(cols);
        c.rows = RowIds::Range(0..rows as u64);
        for _ in 0..rows {
            let mut row: Vec<u32> = rand::seq::index::sample(&mut rng, cols, per_row)
                .into_iter()
                .map(|j| j as u32)
                .collect();
            row.sort_unstable();
            c.indices.extend_from_slice(&row);
            c.data
                .extend(row.iter().map(|_| rng.random_range(1..20) as f32));
            c.indptr.push(c.data.len());
        }
        Box::leak(Box::new(c))
    })
}

const SHAPES: [(usize, usize, usize); 2] = [(10_000, 2_000, 200), (10_000, 62_000, 1_500)];

fn bytes(c: &CsrChunk) -> BytesCount {
    BytesCount::new(c.nnz() * 8 + c.indptr.len() * 8)
}

#[divan::bench(args = cases(&SHAPES))]
fn row_totals(b: Bencher, case: Case<(usize, usize, usize)>) {
    let (shape, be) = (case.shape, backend(case.on));
    let c = chunk(shape.0, shape.1, shape.2);
    let mut out = vec![0.0; c.n_rows()];
    b.counter(bytes(c))
        .bench_local(|| be.row_totals(c, None, &mut out).unwrap());
}

/// Normalized moments fused with the totals pass (x / total, f64).
#[divan::bench(args = cases(&SHAPES))]
fn gene_moments_scaled(b: Bencher, case: Case<(usize, usize, usize)>) {
    let (shape, be) = (case.shape, backend(case.on));
    let c = chunk(shape.0, shape.1, shape.2);
    let scale: Vec<f64> = (0..c.n_rows()).map(|i| 1.0 / (1.0 + i as f64)).collect();
    b.counter(bytes(c)).bench_local(|| {
        let mut acc = GeneSums::new(c.n_cols);
        be.gene_moments(c, None, ValueMap::Scaled(&scale), &mut acc)
            .unwrap();
        acc
    });
}

/// Moments of log1p(x / d) (cell_ranger's statistics).
#[divan::bench(args = cases(&SHAPES))]
fn gene_moments_log(b: Bencher, case: Case<(usize, usize, usize)>) {
    let (shape, be) = (case.shape, backend(case.on));
    let c = chunk(shape.0, shape.1, shape.2);
    let div: Vec<f32> = (0..c.n_rows()).map(|i| 0.5 + (i % 7) as f32).collect();
    b.counter(bytes(c)).bench_local(|| {
        let mut acc = GeneSums::new(c.n_cols);
        be.gene_moments(c, None, ValueMap::LogNormalized(&div), &mut acc)
            .unwrap();
        acc
    });
}

/// normalize_total + log1p + keep every 30th gene (the write pass).
#[divan::bench(args = cases(&SHAPES))]
fn normalize_log1p(b: Bencher, case: Case<(usize, usize, usize)>) {
    let (shape, be) = (case.shape, backend(case.on));
    let c = chunk(shape.0, shape.1, shape.2);
    let div: Vec<f32> = (0..c.n_rows()).map(|i| 0.5 + (i % 7) as f32).collect();
    let keep: Vec<bool> = (0..c.n_cols).map(|j| j % 30 == 0).collect();
    let genes = GeneSubset::from_mask(&keep);
    b.counter(bytes(c))
        .bench_local(|| be.normalize_log1p(c, &div, &genes).unwrap());
}

/// Gram shapes: (rows, genes, stored per row). The first is `scoop run`'s merged matrix on
/// Tahoe-shaped plates (2,000 genes, ~101 stored per row); the second a preprocessed reference
/// plate's density (110k x 787 with 16.7M stored values: 152 per row).
const GRAM_SHAPES: [(usize, usize, usize); 4] = [
    (10_000, 2_000, 100),
    (10_000, 787, 152),
    (10_000, 2_000, 200),
    (10_000, 2_000, 700),
];

/// Symmetric pair-updates of a chunk: Σ m(m+1)/2 over rows with m stored values.
fn pair_updates(c: &CsrChunk) -> ItemsCount {
    let pairs: usize = (0..c.n_rows())
        .map(|i| {
            let m = c.indptr[i + 1] - c.indptr[i];
            m * (m + 1) / 2
        })
        .sum();
    ItemsCount::new(pairs)
}

/// XᵀX + column sums of a chunk into f64 tiles (items = symmetric pair-updates).
#[divan::bench(args = cases(&GRAM_SHAPES))]
fn gram(b: Bencher, case: Case<(usize, usize, usize)>) {
    let (shape, be) = (case.shape, backend(case.on));
    let c = chunk(shape.0, shape.1, shape.2);
    let mut acc = Gram::new(c.n_cols);
    b.counter(pair_updates(c))
        .bench_local(|| be.gram(c, &mut acc).unwrap());
}

/// Gram accumulation as PCA runs it: chunks added to one accumulator (device-resident on CUDA),
/// finished once outside the timing.
#[divan::bench(args = cases(&GRAM_SHAPES))]
fn gram_resident(b: Bencher, case: Case<(usize, usize, usize)>) {
    let (shape, be) = (case.shape, backend(case.on));
    let c = chunk(shape.0, shape.1, shape.2);
    let mut acc = be.gram_accumulator(c.n_cols).unwrap();
    b.counter(pair_updates(c))
        .bench_local(|| acc.add(c).unwrap());
    acc.finish().unwrap();
}

/// X · V − μV onto 300 components (items = rows).
#[divan::bench(args = cases(&[(10_000, 2_000, 200), (10_000, 2_000, 700)]))]
fn project_300(b: Bencher, case: Case<(usize, usize, usize)>) {
    let (shape, be) = (case.shape, backend(case.on));
    let c = chunk(shape.0, shape.1, shape.2);
    let k = 300;
    let loadings: Vec<f32> = (0..c.n_cols * k)
        .map(|i| ((i % 97) as f32 - 48.0) / 97.0)
        .collect();
    let proj = Projection::new(c.n_cols, k, loadings, vec![0.5; k]).unwrap();
    let mut out = vec![0.0f32; c.n_rows() * k];
    b.counter(ItemsCount::new(c.n_rows()))
        .bench_local(|| be.project(c, &proj, &mut out).unwrap());
}

/// Gaussian blobs of `n` points in `dim` dimensions.
fn blobs(n: usize, dim: usize) -> Vec<f32> {
    let mut rng = SmallRng::seed_from_u64(2);
    let centers: Vec<f32> = (0..20 * dim).map(|_| rng.random_range(-5.0..5.0)).collect();
    (0..n * dim)
        .map(|e| centers[(e / dim % 20) * dim + e % dim] + rng.random_range(-1.0f32..1.0))
        .collect()
}

/// Exact 15-NN of every point among (n points, 50 dims); items = distances computed.
/// (50k points on the CPU would take minutes per iteration; the larger cases are the GPU's.)
#[divan::bench(args = cases_on(&[5_000usize], &[5_000, 50_000, 200_000]), sample_count = 20)]
fn knn_exact_15(b: Bencher, case: Case<usize>) {
    let (n, be) = (case.shape, backend(case.on));
    let x = blobs(n, 50);
    let pts = Points::new(&x, 50).unwrap();
    let (mut idx, mut dist) = (vec![0u32; n * 15], vec![0f32; n * 15]);
    b.counter(ItemsCount::new(n * n))
        .bench_local(|| be.knn_exact(pts, 0..n, 15, &mut idx, &mut dist).unwrap());
}

/// Ten UMAP epochs over a 15-NN-like random graph of n points (items = edge samples).
#[divan::bench(args = cases(&[100_000usize]))]
fn layout_10_epochs(b: Bencher, case: Case<usize>) {
    let (n, be) = (case.shape, backend(case.on));
    let mut rng = SmallRng::seed_from_u64(4);
    let m = n * 15;
    let edges = EdgeList {
        head: (0..m).map(|e| (e / 15) as u32).collect(),
        tail: (0..m).map(|_| rng.random_range(0..n as u32)).collect(),
        epochs_per_sample: (0..m).map(|_| rng.random_range(1.0f32..4.0)).collect(),
    };
    let params = LayoutParams {
        a: 1.577,
        b: 0.895,
        gamma: 1.0,
        negative_sample_rate: 5.0,
        n_epochs: 10,
        seed: 0,
    };
    let mut emb: Vec<f32> = (0..n * 2).map(|_| rng.random_range(-10.0..10.0)).collect();
    let samples: f64 = edges
        .epochs_per_sample
        .iter()
        .map(|&e| 10.0 / e as f64)
        .sum();
    b.counter(ItemsCount::new(samples as usize))
        .bench_local(|| {
            be.optimize_layout(&mut emb, 2, &edges, &params, &|_| {})
                .unwrap()
        });
}

/// A product of a 1M-row graph of 24 stored values a row (the shape of UMAP's symmetrized
/// 15-NN graph at a million cells) with a block of 8 columns, as the spectral initialization's
/// filter applies it (items = stored values; the GPU numbers include the block's copies both
/// ways, not the graph's one upload).
#[divan::bench(args = cases(&[1_000_000usize]), sample_count = 20)]
fn sparse_apply_8(b: Bencher, case: Case<usize>) {
    let n = case.shape;
    let mut rng = SmallRng::seed_from_u64(6);
    let per_row = 24;
    let indptr: Vec<usize> = (0..=n).map(|i| i * per_row).collect();
    let indices: Vec<u32> = (0..n * per_row)
        .map(|_| rng.random_range(0..n as u32))
        .collect();
    let data: Vec<f32> = (0..n * per_row)
        .map(|_| rng.random_range(0.0..1.0))
        .collect();
    let scale = vec![0.2f64; n];
    let a = SparseRows::new(&indptr, &indices, &data).unwrap();
    let mut op = match case.on {
        On::Cpu => CpuBackend::new().sparse_operator(a, &scale),
        On::Cuda => cuda()
            .expect("CUDA case listed without a device")
            .sparse_operator(a, &scale),
    }
    .unwrap();
    let k = 8;
    let rows: Vec<f32> = (0..n * k).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut out = vec![0f64; n * k];
    b.counter(ItemsCount::new(n * per_row))
        .bench_local(|| op.apply(&rows, k, &mut out).unwrap());
}

/// A tall matrix of `ncols` random columns over the empty graph `indptr` (rows of no values),
/// where `be` computes.
fn random_tall<'a>(
    be: &'a dyn Backend,
    indptr: &'a [usize],
    scale: &'a [f64],
    ncols: usize,
) -> Box<dyn TallMatrix + 'a> {
    let a = SparseRows::new(indptr, &[], &[]).unwrap();
    let mut t = be.tall_matrix(a, scale, ncols).unwrap();
    let mut rng = SmallRng::seed_from_u64(8);
    let x: Vec<f64> = (0..scale.len() * ncols)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    t.set_cols(0, &x).unwrap();
    t
}

/// The eigensolver's gram of a block at a million rows: `Yᵀ Y` for 8 columns, as its
/// orthonormalization and Rayleigh–Ritz take it (items = values read), with the matrix where the
/// backend computes (the GPU number counts the partial products' download).
#[divan::bench(args = cases(&[1_000_000usize]), sample_count = 10)]
fn tall_t_mul_8x8(b: Bencher, case: Case<usize>) {
    let (indptr, scale) = (vec![0usize; case.shape + 1], vec![1f64; case.shape]);
    let mut t = random_tall(backend(case.on), &indptr, &scale, 16);
    b.counter(ItemsCount::new(case.shape * 8))
        .bench_local(|| t.t_mul(0..8, 0..8).unwrap());
}

/// The filter's shift at a million rows: `X −= Z diag(c)` for blocks of 8 columns (items =
/// values updated).
#[divan::bench(args = cases(&[1_000_000usize]), sample_count = 10)]
fn tall_sub_diag_8(b: Bencher, case: Case<usize>) {
    let (indptr, scale) = (vec![0usize; case.shape + 1], vec![1f64; case.shape]);
    let mut t = random_tall(backend(case.on), &indptr, &scale, 16);
    let c = vec![1e-9; 8];
    b.counter(ItemsCount::new(case.shape * 8))
        .bench_local(|| t.sub_diag(8..16, 0..8, &c).unwrap());
}
