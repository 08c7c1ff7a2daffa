//! Kernel benchmarks: each Backend kernel on a synthetic CSR chunk, with byte throughput.
//! `cargo bench --bench kernels`. CUDA twins are benchmarked here once the CUDA backend launches
//! kernels; on this build only the CPU backend runs.

use divan::counter::BytesCount;
use divan::Bencher;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use scoop::backend::{Backend, CpuBackend, GeneSums};
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

#[divan::bench(args = SHAPES)]
fn cpu_gene_sums(b: Bencher, shape: (usize, usize, usize)) {
    let c = chunk(shape.0, shape.1, shape.2);
    let scale: Vec<f64> = (0..c.n_rows()).map(|i| 1.0 / (1.0 + i as f64)).collect();
    b.counter(bytes(&c)).bench_local(|| {
        let mut acc = GeneSums::new(c.n_cols);
        CpuBackend::new()
            .gene_sums(&c, None, Some(&scale), &mut acc)
            .unwrap();
        acc
    });
}
