//! Kernel benchmarks: each Backend kernel on a synthetic CSR chunk, with byte throughput.
//! `cargo bench --bench kernels`. CUDA twins are benchmarked here once the CUDA backend launches
//! kernels; on this build only the CPU backend runs.

use divan::counter::{BytesCount, ItemsCount};
use divan::Bencher;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use scoop::backend::{Backend, CpuBackend, GeneSubset, GeneSums, Gram, Projection, ValueMap};
use scoop::io::{CsrChunk, RowIds};

fn main() {
    divan::main();
}

/// A chunk of `rows` x `cols` with `per_row` stored values per row (sorted, distinct columns).
fn chunk(rows: usize, cols: usize, per_row: usize) -> CsrChunk {
    let mut rng = SmallRng::seed_from_u64(1);
    let mut c = CsrChunk::empty(cols);
    c.rows = RowIds::Range(0..rows as u64);
    let mut row: Vec<u32> = Vec::with_capacity(per_row);
    for _ in 0..rows {
        row.clear();
        while row.len() < per_row {
            row.push(rng.random_range(0..cols as u32));
            row.sort_unstable();
            row.dedup();
        }
        c.indices.extend_from_slice(&row);
        c.data
            .extend(row.iter().map(|_| rng.random_range(1..20) as f32));
        c.indptr.push(c.data.len());
    }
    c
}

const SHAPES: [(usize, usize, usize); 2] = [(10_000, 2_000, 200), (10_000, 62_000, 1_500)];

fn bytes(c: &CsrChunk) -> BytesCount {
    BytesCount::new(c.nnz() * 8 + c.indptr.len() * 8)
}

#[divan::bench(args = SHAPES)]
fn cpu_row_totals(b: Bencher, shape: (usize, usize, usize)) {
    let c = chunk(shape.0, shape.1, shape.2);
    let mut out = vec![0.0; c.n_rows()];
    b.counter(bytes(&c))
        .bench_local(|| CpuBackend::new().row_totals(&c, None, &mut out).unwrap());
}

/// Normalized moments fused with the totals pass (x / total, f64).
#[divan::bench(args = SHAPES)]
fn cpu_gene_moments_scaled(b: Bencher, shape: (usize, usize, usize)) {
    let c = chunk(shape.0, shape.1, shape.2);
    let scale: Vec<f64> = (0..c.n_rows()).map(|i| 1.0 / (1.0 + i as f64)).collect();
    b.counter(bytes(&c)).bench_local(|| {
        let mut acc = GeneSums::new(c.n_cols);
        CpuBackend::new()
            .gene_moments(&c, None, ValueMap::Scaled(&scale), &mut acc)
            .unwrap();
        acc
    });
}

/// Moments of log1p(x / d) (cell_ranger's statistics).
#[divan::bench(args = SHAPES)]
fn cpu_gene_moments_log(b: Bencher, shape: (usize, usize, usize)) {
    let c = chunk(shape.0, shape.1, shape.2);
    let div: Vec<f32> = (0..c.n_rows()).map(|i| 0.5 + (i % 7) as f32).collect();
    b.counter(bytes(&c)).bench_local(|| {
        let mut acc = GeneSums::new(c.n_cols);
        CpuBackend::new()
            .gene_moments(&c, None, ValueMap::LogNormalized(&div), &mut acc)
            .unwrap();
        acc
    });
}

/// normalize_total + log1p + keep every 30th gene (the write pass).
#[divan::bench(args = SHAPES)]
fn cpu_normalize_log1p(b: Bencher, shape: (usize, usize, usize)) {
    let c = chunk(shape.0, shape.1, shape.2);
    let div: Vec<f32> = (0..c.n_rows()).map(|i| 0.5 + (i % 7) as f32).collect();
    let keep: Vec<bool> = (0..c.n_cols).map(|j| j % 30 == 0).collect();
    let genes = GeneSubset::from_mask(&keep);
    b.counter(bytes(&c))
        .bench_local(|| CpuBackend::new().normalize_log1p(&c, &div, &genes).unwrap());
}

/// Gram shapes: (rows, genes, stored per row). The first is the reference density
/// (110k x 787 with 16.7M stored values: 152 per row).
const GRAM_SHAPES: [(usize, usize, usize); 3] = [
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
#[divan::bench(args = GRAM_SHAPES)]
fn cpu_gram(b: Bencher, shape: (usize, usize, usize)) {
    let c = chunk(shape.0, shape.1, shape.2);
    let mut acc = Gram::new(c.n_cols);
    b.counter(pair_updates(&c))
        .bench_local(|| CpuBackend::new().gram(&c, &mut acc).unwrap());
}

/// X · V − μV onto 300 components (items = rows).
#[divan::bench(args = [(10_000, 2_000, 200), (10_000, 2_000, 700)])]
fn cpu_project_300(b: Bencher, shape: (usize, usize, usize)) {
    let c = chunk(shape.0, shape.1, shape.2);
    let k = 300;
    let loadings: Vec<f32> = (0..c.n_cols * k)
        .map(|i| ((i % 97) as f32 - 48.0) / 97.0)
        .collect();
    let proj = Projection::new(c.n_cols, k, loadings, vec![0.5; k]).unwrap();
    let mut out = vec![0.0f32; c.n_rows() * k];
    b.counter(ItemsCount::new(c.n_rows()))
        .bench_local(|| CpuBackend::new().project(&c, &proj, &mut out).unwrap());
}
