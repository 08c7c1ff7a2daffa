//! CUDA parity suite: every CUDA kernel against its CPU twin on random chunks (sparsity from
//! empty to dense, empty rows, unsorted and repeated columns, masks), with one worker and with
//! two workers sharing device 0 (`--devices 0,0`), and `preprocess` / `pca` end to end with
//! `--backend cpu` against `--backend cuda`.
//!
//! Where no CUDA device opens (or the build embeds no PTX) every test is reported as ignored, with
//! one line saying why; `SCOOP_REQUIRE_GPU` makes that a failure instead, and
//! `SCOOP_CUDA_TEST_STANDIN` runs the suite's logic with the CPU standing in. The harness is
//! libtest-mimic (`harness = false`), so the skips show in the summary, not as passes.
//! Run only this suite: `cargo test --release --test cuda -- --nocapture`.

mod common;

use std::path::Path;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use scoop::backend::cuda::CudaBackend;
use scoop::backend::{
    Backend, CpuBackend, CudaKnn, CudaLayout, EdgeList, GeneSubset, GeneSums, Gram, KernelChoice,
    LayoutParams, Points, Projection, SparseOperator, SparseRows, TallMatrix, ValueMap,
};
use scoop::io::{CsrChunk, Element, H5adReader, RowIds};

/// Set to run the suite's own logic with the CPU backend standing in for the GPU (a check of the
/// tests themselves on a machine without one).
const STANDIN: &str = "SCOOP_CUDA_TEST_STANDIN";

fn standin() -> bool {
    std::env::var_os(STANDIN).is_some()
}

/// The CUDA backends to test (one worker; two workers on device 0), or `None` after saying why.
fn gpus(test: &str) -> Option<Vec<Box<dyn Backend>>> {
    gpus_with(test, KernelChoice::default())
}

/// [`gpus`] running the kernel variants `kernels` names.
fn gpus_with(test: &str, kernels: KernelChoice) -> Option<Vec<Box<dyn Backend>>> {
    if standin() {
        eprintln!("{test}: the CPU stands in for the GPU ({STANDIN} is set)");
        return Some(vec![Box::new(CpuBackend::with_kernels(kernels))]);
    }
    match CudaBackend::open_with(&[0], kernels) {
        Ok(one) => match CudaBackend::open_with(&[0, 0], kernels) {
            Ok(two) => Some(vec![Box::new(one), Box::new(two)]),
            Err(e) => panic!("{test}: device 0 opened once but not twice: {e}"),
        },
        Err(e) if std::env::var_os("SCOOP_REQUIRE_GPU").is_some() => {
            panic!("{test}: SCOOP_REQUIRE_GPU is set but CUDA did not open: {e}")
        }
        Err(e) => {
            eprintln!("{test}: skipped, no CUDA device ({e})");
            None
        }
    }
}

/// A random chunk: `density` of the cells set, every 7th row empty, values of counts-like
/// magnitude. With `messy`, some rows have unsorted and repeated columns.
fn chunk(rows: usize, cols: usize, density: f64, messy: bool, seed: u64) -> CsrChunk {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut c = CsrChunk::empty(cols);
    c.rows = RowIds::Range(0..rows as u64);
    for i in 0..rows {
        if i % 7 != 3 {
            let start = c.indices.len();
            for j in 0..cols {
                if rng.random::<f64>() < density {
                    c.indices.push(j as u32);
                    c.data.push(rng.random_range(1..60) as f32 * 0.5);
                }
            }
            if messy && i % 5 == 0 && c.indices.len() > start + 1 {
                c.indices[start..].reverse();
                let j = c.indices[start];
                c.indices.push(j);
                c.data.push(1.5);
            }
        }
        c.indptr.push(c.data.len());
    }
    c
}

/// The chunks every kernel runs on: (name, chunk).
fn chunks() -> Vec<(&'static str, CsrChunk)> {
    vec![
        ("empty rows only", chunk(40, 30, 0.0, false, 1)),
        ("sparse", chunk(5_000, 300, 0.02, false, 2)),
        ("dense", chunk(3_000, 150, 0.9, false, 3)),
        ("few rows, many genes", chunk(9, 2_500, 0.3, false, 4)),
        ("unsorted + repeated", chunk(2_100, 130, 0.2, true, 5)),
    ]
}

fn close(a: f64, b: f64, rel: f64, abs: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()) + abs
}

fn row_totals_match_cpu() {
    let Some(gpus) = gpus("row_totals_match_cpu") else {
        return;
    };
    let cpu = CpuBackend::new();
    for (name, c) in chunks() {
        let mask: Vec<bool> = (0..c.n_rows()).map(|i| i % 4 != 1).collect();
        for m in [None, Some(&mask[..])] {
            let mut want = vec![0.0; c.n_rows()];
            cpu.row_totals(&c, m, &mut want).unwrap();
            for g in &gpus {
                let mut got = vec![-1.0; c.n_rows()];
                g.row_totals(&c, m, &mut got).unwrap();
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        close(*a, *b, 1e-12, 0.0),
                        "{name} {} row {i}: {a} vs {b}",
                        g.name()
                    );
                }
            }
        }
    }
}

fn gene_moments_match_cpu_for_every_value_map() {
    let Some(gpus) = gpus("gene_moments_match_cpu_for_every_value_map") else {
        return;
    };
    let cpu = CpuBackend::new();
    for (name, c) in chunks() {
        let n = c.n_rows();
        let mask: Vec<bool> = (0..n).map(|i| i % 3 != 0).collect();
        let scale: Vec<f64> = (0..n).map(|i| 1.0 / (3.0 + (i % 11) as f64)).collect();
        let div: Vec<f32> = (0..n).map(|i| 0.7 + (i % 5) as f32 * 0.9).collect();
        let clip: Vec<f64> = (0..c.n_cols).map(|j| 2.0 + (j % 9) as f64).collect();
        let maps = [
            ValueMap::Raw,
            ValueMap::Scaled(&scale),
            ValueMap::LogNormalized(&div),
            ValueMap::Clipped(&clip),
        ];
        for map in maps {
            for m in [None, Some(&mask[..])] {
                let mut want = GeneSums::new(c.n_cols);
                cpu.gene_moments(&c, m, map, &mut want).unwrap();
                for g in &gpus {
                    let mut got = GeneSums::new(c.n_cols);
                    // Accumulates: twice the chunk is twice the sums.
                    g.gene_moments(&c, m, map, &mut got).unwrap();
                    g.gene_moments(&c, m, map, &mut got).unwrap();
                    let what = format!("{name} {map:?} mask {} on {}", m.is_some(), g.name());
                    assert_eq!(got.n_rows, 2 * want.n_rows, "{what}");
                    for j in 0..c.n_cols {
                        assert_eq!(got.nnz[j], 2 * want.nnz[j], "{what} nnz {j}");
                        assert!(
                            close(got.sum[j], 2.0 * want.sum[j], 1e-10, 1e-12),
                            "{what} sum {j}"
                        );
                        assert!(
                            close(got.sumsq[j], 2.0 * want.sumsq[j], 1e-10, 1e-12),
                            "{what} sumsq {j}"
                        );
                    }
                }
            }
        }
    }
}

fn normalize_log1p_matches_cpu() {
    let Some(gpus) = gpus("normalize_log1p_matches_cpu") else {
        return;
    };
    let cpu = CpuBackend::new();
    for (name, c) in chunks() {
        let div: Vec<f32> = (0..c.n_rows())
            .map(|i| 0.3 + (i % 17) as f32 * 2.1)
            .collect();
        let keep: Vec<bool> = (0..c.n_cols).map(|j| j % 3 != 2).collect();
        for genes in [GeneSubset::all(c.n_cols), GeneSubset::from_mask(&keep)] {
            let want = cpu.normalize_log1p(&c, &div, &genes).unwrap();
            for g in &gpus {
                let got = g.normalize_log1p(&c, &div, &genes).unwrap();
                let what = format!("{name}, {} genes kept, on {}", genes.n_new(), g.name());
                assert_eq!(got.n_cols, want.n_cols, "{what}");
                assert_eq!(got.indptr, want.indptr, "{what}");
                assert_eq!(got.indices, want.indices, "{what}");
                for (k, (a, b)) in got.data.iter().zip(&want.data).enumerate() {
                    // Within 2 ulp: GPU log1pf and glibc's may differ by one below 1e-3.
                    assert!(
                        close(*a as f64, *b as f64, 2.5e-7, 1e-30),
                        "{what} value {k}: {a} vs {b}"
                    );
                }
            }
        }
    }
}

fn gram_matches_cpu_and_accumulates_on_the_device() {
    let Some(gpus) = gpus("gram_matches_cpu_and_accumulates_on_the_device") else {
        return;
    };
    let cpu = CpuBackend::new();
    for (name, c) in chunks() {
        let mut want = Gram::new(c.n_cols);
        cpu.gram(&c, &mut want).unwrap();
        let other = chunk(777, c.n_cols, 0.1, false, 99);
        cpu.gram(&other, &mut want).unwrap();
        let want_dense = want.to_dense();
        let scale = want_dense.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for g in &gpus {
            // Per-call kernel and a device-resident accumulation over two chunks.
            let mut per_call = Gram::new(c.n_cols);
            g.gram(&c, &mut per_call).unwrap();
            g.gram(&other, &mut per_call).unwrap();
            let mut acc = g.gram_accumulator(c.n_cols).unwrap();
            acc.add(&c).unwrap();
            acc.add(&other).unwrap();
            let resident = acc.finish().unwrap();
            for (how, got) in [("per call", &per_call), ("resident", &resident)] {
                let what = format!("{name} {how} on {}", g.name());
                assert_eq!(got.n_rows, want.n_rows, "{what}");
                for (j, (a, b)) in got.sum.iter().zip(&want.sum).enumerate() {
                    assert!(close(*a, *b, 1e-12, 1e-12), "{what} sum {j}");
                }
                for (e, (a, b)) in got.to_dense().iter().zip(&want_dense).enumerate() {
                    assert!(
                        close(*a, *b, 1e-12, 1e-13 * scale),
                        "{what} entry {e}: {a} vs {b}"
                    );
                }
            }
        }
    }
}

fn projection_matches_f64_reference() {
    let Some(gpus) = gpus("projection_matches_f64_reference") else {
        return;
    };
    let mut rng = SmallRng::seed_from_u64(7);
    for (name, c) in chunks() {
        for k in [1, 50, 300] {
            let loadings: Vec<f32> = (0..c.n_cols * k)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let offset: Vec<f32> = (0..k).map(|_| rng.random_range(-3.0..3.0)).collect();
            let proj = Projection::new(c.n_cols, k, loadings.clone(), offset.clone()).unwrap();
            for g in &gpus {
                let mut got = vec![f32::NAN; c.n_rows() * k];
                g.project(&c, &proj, &mut got).unwrap();
                for r in 0..c.n_rows() {
                    let (idx, val) = c.row(r);
                    for col in 0..k {
                        let (mut want, mut mag) = (-(offset[col] as f64), offset[col].abs() as f64);
                        for (&j, &x) in idx.iter().zip(val) {
                            let t = x as f64 * loadings[j as usize * k + col] as f64;
                            want += t;
                            mag += t.abs();
                        }
                        let v = got[r * k + col] as f64;
                        assert!(
                            (v - want).abs() <= 1e-5 * mag + 1e-6,
                            "{name} k {k} on {}: row {r} col {col}: {v} vs {want}",
                            g.name()
                        );
                    }
                }
            }
        }
    }
}

fn spmv_matches_f64_reference() {
    let gpus = match (CudaBackend::open(&[0]), CudaBackend::open(&[0, 0])) {
        (Ok(a), Ok(b)) => [a, b],
        (Err(e), _) | (_, Err(e)) => {
            assert!(
                std::env::var_os("SCOOP_REQUIRE_GPU").is_none(),
                "SCOOP_REQUIRE_GPU is set but CUDA did not open: {e}"
            );
            eprintln!("spmv_matches_f64_reference: skipped, no CUDA device ({e})");
            return;
        }
    };
    for (name, c) in chunks() {
        let x: Vec<f64> = (0..c.n_cols)
            .map(|j| ((j * 37) % 19) as f64 - 9.0)
            .collect();
        for g in &gpus {
            let mut y = vec![f64::NAN; c.n_rows()];
            g.spmv(&c, &x, &mut y).unwrap();
            for (r, &got) in y.iter().enumerate() {
                let (idx, val) = c.row(r);
                let want: f64 = idx
                    .iter()
                    .zip(val)
                    .map(|(&j, &v)| v as f64 * x[j as usize])
                    .sum();
                assert!(
                    close(got, want, 1e-12, 1e-12),
                    "{name} row {r} on {}",
                    g.name()
                );
            }
        }
    }
}

/// A random square sparse matrix of `n` rows as CSR: every 13th row empty, up to 60 stored
/// values a row, some columns repeated, values of both signs.
fn sparse_matrix(n: usize, seed: u64) -> (Vec<usize>, Vec<u32>, Vec<f32>) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let (mut indptr, mut indices, mut data) = (vec![0usize], Vec::new(), Vec::new());
    for i in 0..n {
        if i % 13 != 4 {
            for _ in 0..rng.random_range(1..60) {
                indices.push(rng.random_range(0..n as u32));
                data.push(rng.random_range(-3.0f32..3.0));
            }
        }
        indptr.push(indices.len());
    }
    (indptr, indices, data)
}

/// A backend's sparse operator (an inherent method of each backend, off the `Backend` trait).
trait OperatorTwin {
    fn label(&self) -> String;
    fn sparse_operator<'a>(
        &'a self,
        a: SparseRows<'a>,
        scale: &'a [f64],
    ) -> scoop::Result<Box<dyn SparseOperator + 'a>>;
}

/// Implements [`OperatorTwin`] through the backend's own inherent methods.
macro_rules! operator_twin {
    ($backend:ty) => {
        impl OperatorTwin for $backend {
            fn label(&self) -> String {
                Backend::name(self)
            }
            fn sparse_operator<'a>(
                &'a self,
                a: SparseRows<'a>,
                scale: &'a [f64],
            ) -> scoop::Result<Box<dyn SparseOperator + 'a>> {
                <$backend>::sparse_operator(self, a, scale)
            }
        }
    };
}

operator_twin!(CpuBackend);
operator_twin!(CudaBackend);

/// [`gpus`] for the sparse operator: the same devices (or stand-in), as [`OperatorTwin`]s.
fn operator_twins(test: &str) -> Option<Vec<Box<dyn OperatorTwin>>> {
    gpus(test)?;
    if standin() {
        return Some(vec![Box::new(CpuBackend::new())]);
    }
    let open = |d: &[usize]| CudaBackend::open(d).expect("opened before");
    Some(vec![Box::new(open(&[0])), Box::new(open(&[0, 0]))])
}

fn sparse_operator_equals_cpu_bit_for_bit() {
    let Some(gpus) = operator_twins("sparse_operator_equals_cpu_bit_for_bit") else {
        return;
    };
    let cpu = CpuBackend::new();
    let mut rng = SmallRng::seed_from_u64(11);
    for n in [1usize, 7, 5000, 70_001] {
        let (indptr, indices, data) = sparse_matrix(n, n as u64);
        let a = SparseRows::new(&indptr, &indices, &data).unwrap();
        let scale: Vec<f64> = (0..n).map(|_| rng.random_range(0.01..10.0)).collect();
        let mut want_op = cpu.sparse_operator(a, &scale).unwrap();
        for g in &gpus {
            let mut op = g.sparse_operator(a, &scale).unwrap();
            assert_eq!(op.n(), n);
            // Widths up and down again: the device buffers are reused and regrown.
            for k in [4usize, 1, 2, 3, 5, 6, 8, 9, 17, 4] {
                let rows: Vec<f32> = (0..n * k).map(|_| rng.random_range(-1.0..1.0)).collect();
                let (mut want, mut got) = (vec![f64::NAN; n * k], vec![f64::NAN; n * k]);
                want_op.apply(&rows, k, &mut want).unwrap();
                op.apply(&rows, k, &mut got).unwrap();
                if let Some(t) = (0..n * k).find(|&t| want[t].to_bits() != got[t].to_bits()) {
                    panic!(
                        "n = {n}, k = {k}, row {} column {}: {} on {}, {} on the CPU",
                        t / k,
                        t % k,
                        got[t],
                        g.label(),
                        want[t]
                    );
                }
            }
            let mut out = vec![0.0; n * 2];
            assert!(op.apply(&vec![0.0; n], 2, &mut out).is_err());
        }
    }
}

fn tall_matrix_equals_cpu_bit_for_bit() {
    let Some(gpus) = gpus("tall_matrix_equals_cpu_bit_for_bit") else {
        return;
    };
    let cpu = CpuBackend::new();
    // Row counts below one chunk of 16, below one task, and over several with a ragged end.
    for n in [7usize, 4096 + 5, 3 * 4096 + 808] {
        let (indptr, indices, data) = sparse_matrix(n, 3 + n as u64);
        let a = SparseRows::new(&indptr, &indices, &data).unwrap();
        let mut rng = SmallRng::seed_from_u64(n as u64);
        let scale: Vec<f64> = (0..n).map(|_| rng.random_range(0.05..3.0)).collect();
        let init: Vec<f64> = (0..n * 14)
            .map(|_| rng.random_range(-1.0..1.0) * 10f64.powi(rng.random_range(-3..3)))
            .collect();
        let coef = |rng: &mut SmallRng, len: usize| -> Vec<f64> {
            (0..len).map(|_| rng.random_range(-2.0..2.0)).collect()
        };
        for g in &gpus {
            let mut want = cpu.tall_matrix(a, &scale, 14).unwrap();
            let mut got = g.tall_matrix(a, &scale, 14).unwrap();
            assert_eq!((got.nrows(), got.ncols()), (n, 14));
            // Not the host's fallback, which would compare the CPU with itself.
            assert_eq!(
                got.on_device(),
                !standin(),
                "n = {n}: where {} holds it",
                g.name()
            );
            want.set_cols(0, &init).unwrap();
            got.set_cols(0, &init).unwrap();
            let same = |step: &str, want: &dyn TallMatrix, got: &dyn TallMatrix| {
                let (w, o) = (want.cols(0..14).unwrap(), got.cols(0..14).unwrap());
                if let Some(t) = (0..w.len()).find(|&t| w[t].to_bits() != o[t].to_bits()) {
                    panic!(
                        "n = {n}, after {step}: column {} row {}: {} on {}, {} on the CPU",
                        t / n,
                        t % n,
                        o[t],
                        g.name(),
                        w[t]
                    );
                }
            };
            same("set_cols", want.as_ref(), got.as_ref());
            let bits = |v: Vec<f64>| v.into_iter().map(f64::to_bits).collect::<Vec<_>>();
            for (a, b) in [(0..1, 0..1), (0..9, 9..13), (2..3, 5..6), (4..14, 0..4)] {
                assert_eq!(
                    bits(got.t_mul(a.clone(), b.clone()).unwrap()),
                    bits(want.t_mul(a.clone(), b.clone()).unwrap()),
                    "n = {n}: t_mul {a:?} x {b:?} on {}",
                    g.name()
                );
            }
            let c = coef(&mut rng, 9 * 4);
            let (tw, tg) = (
                want.sub_t_mul(9..13, 0..9, &c).unwrap(),
                got.sub_t_mul(9..13, 0..9, &c).unwrap(),
            );
            assert_eq!(bits(tg), bits(tw), "n = {n}: sub_t_mul on {}", g.name());
            same("sub_t_mul", want.as_ref(), got.as_ref());
            let c = coef(&mut rng, 9 * 4);
            want.sub_mul(9..13, 0..9, &c).unwrap();
            got.sub_mul(9..13, 0..9, &c).unwrap();
            same("sub_mul", want.as_ref(), got.as_ref());
            let c = coef(&mut rng, 1);
            want.sub_mul(13..14, 12..13, &c).unwrap();
            got.sub_mul(13..14, 12..13, &c).unwrap();
            same("sub_mul of one column", want.as_ref(), got.as_ref());
            let v = coef(&mut rng, 8 * 3);
            want.mul(10..13, 1..9, &v).unwrap();
            got.mul(10..13, 1..9, &v).unwrap();
            same("mul", want.as_ref(), got.as_ref());
            let s = got.t_mul(11..12, 11..12).unwrap()[0].sqrt();
            want.div_col(11, s).unwrap();
            got.div_col(11, s).unwrap();
            want.copy_col(3, 11).unwrap();
            got.copy_col(3, 11).unwrap();
            same("div_col and copy_col", want.as_ref(), got.as_ref());
            let c = coef(&mut rng, 5);
            want.sub_diag(9..14, 2..7, &c).unwrap();
            got.sub_diag(9..14, 2..7, &c).unwrap();
            same("sub_diag", want.as_ref(), got.as_ref());
            // The destination before the source, as the filter's rotating slots have it too.
            let c = coef(&mut rng, 4);
            want.sub_diag(0..4, 10..14, &c).unwrap();
            got.sub_diag(0..4, 10..14, &c).unwrap();
            same("sub_diag, destination first", want.as_ref(), got.as_ref());
            let v = coef(&mut rng, 5 * 2);
            want.mul(0..2, 4..9, &v).unwrap();
            got.mul(0..2, 4..9, &v).unwrap();
            same("mul, destination first", want.as_ref(), got.as_ref());
            for (x, a) in [
                (9..13, 1..5),
                (0..1, 13..14),
                (4..7, 10..13),
                (0..5, 9..14),
                (7..14, 0..7),
            ] {
                want.apply(x.clone(), a.clone()).unwrap();
                got.apply(x.clone(), a.clone()).unwrap();
                same("apply", want.as_ref(), got.as_ref());
            }
            assert!(got.sub_mul(0..3, 2..5, &[0.0; 9]).is_err());
            assert!(got.apply(0..2, 2..5).is_err());
            assert!(got.t_mul(0..15, 0..1).is_err());
        }
    }
}

fn spectral_vectors_on_cuda_equal_cpu() {
    let Some(gpus) = gpus("spectral_vectors_on_cuda_equal_cpu") else {
        return;
    };
    // A connected graph past the size where the products go to the backend: a ring of
    // vertices, each joined to its next 6 with random weights, plus random chords.
    let n = scoop::ops::spectral::DEVICE_MIN + 4321;
    let mut rng = SmallRng::seed_from_u64(5);
    let mut rows: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n];
    let join = |rows: &mut Vec<Vec<(u32, f32)>>, i: usize, j: usize, w: f32| {
        rows[i].push((j as u32, w));
        rows[j].push((i as u32, w));
    };
    for i in 0..n {
        for d in 1..=6 {
            join(&mut rows, i, (i + d) % n, rng.random_range(0.2..1.0));
        }
        if i % 50 == 0 {
            let j = rng.random_range(0..n);
            if j != i {
                join(&mut rows, i, j, 0.3);
            }
        }
    }
    let graph = scoop::ops::fuzzy::Graph::from_rows(rows);
    let (want, want_report) =
        scoop::ops::spectral::laplacian_eigenvectors(&graph, 2, 9, &CpuBackend::new()).unwrap();
    for g in &gpus {
        let (got, report) =
            scoop::ops::spectral::laplacian_eigenvectors(&graph, 2, 9, g.as_ref()).unwrap();
        assert_eq!(
            (report.rounds, report.products),
            (want_report.rounds, want_report.products),
            "{}",
            g.name()
        );
        assert_eq!(got.len(), want.len());
        for (c, (x, y)) in got.iter().zip(&want).enumerate() {
            assert!(
                x.iter().zip(y).all(|(a, b)| a.to_bits() == b.to_bits()),
                "eigenvector {c} on {} differs from the CPU's",
                g.name()
            );
        }
    }
}

/// Random points in `clusters` Gaussian blobs.
fn blobs(n: usize, dim: usize, clusters: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let centers: Vec<f32> = (0..clusters * dim)
        .map(|_| rng.random_range(-8.0..8.0))
        .collect();
    let mut x = Vec::with_capacity(n * dim);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % clusters;
        labels.push(c as u32);
        for d in 0..dim {
            x.push(centers[c * dim + d] + rng.random_range(-1.0f32..1.0));
        }
    }
    (x, labels)
}

/// Points of `blobs` with every third of the first 150 rows set to zero and rows 200..260 copies
/// of row 199 (ties at distance 0 beyond one tile's 32 queued candidates a query, broken by
/// index), then scaled and shifted (`x · scale + offset`).
fn with_duplicates(n: usize, dim: usize, seed: u64, scale: f32, offset: f32) -> Vec<f32> {
    let (mut x, _) = blobs(n, dim, 6, seed);
    for r in (0..150.min(n)).step_by(3) {
        x[r * dim..(r + 1) * dim].fill(0.0);
    }
    for r in 200..260.min(n) {
        x.copy_within(199 * dim..200 * dim, r * dim);
    }
    x.iter_mut().for_each(|v| *v = *v * scale + offset);
    x
}

/// The kNN kernels to test: on sm_80 and newer every device must load the tensor-core kernels
/// (so one that fails to load fails the test), resident and streamed, and the f32 one; on older
/// devices the default (f32) and f32 asked for.
fn knn_kernels() -> Vec<CudaKnn> {
    let all_tc = scoop::backend::cuda::devices()
        .is_ok_and(|d| !d.is_empty() && d.iter().all(|d| d.compute_capability.0 >= 8));
    if all_tc && !standin() {
        vec![CudaKnn::Tf32, CudaKnn::Tf32Stream, CudaKnn::F32]
    } else {
        vec![CudaKnn::Auto, CudaKnn::F32]
    }
}

fn knn_exact_matches_cpu() {
    if gpus("knn_exact_matches_cpu").is_none() {
        return;
    }
    let cpu = CpuBackend::new();
    let cases = [
        (3_000, 50, 15, 0..3_000, None, 1.0, 0.0),
        (700, 7, 30, 100..650, None, 1.0, 0.0),
        (20, 3, 20, 0..20, None, 1.0, 0.0),
        (1_000, 8, 15, 0..1_000, None, 1.0, 0.0),
        (600, 300, 10, 0..600, None, 1.0, 0.0),
        (400, 1, 2, 0..400, None, 1.0, 0.0),
        (1_500, 16, 40, 0..1_500, None, 1.0, 0.0),
        // Lists of 32 entries (a warp's lanes each hold one as the deferred merge inserts) and
        // of 33 (one lane inserts).
        (1_200, 12, 33, 0..1_200, None, 1.0, 0.0),
        (1_200, 12, 34, 0..1_200, None, 1.0, 0.0),
        // Launches of 256 queries, each but the first starting mid-range.
        (2_000, 24, 15, 50..1_950, Some(256), 1.0, 0.0),
        // Far from the origin (the estimate works on the points less their mean), and near
        // f32's overflow and underflow.
        (1_000, 20, 15, 0..1_000, None, 1.0, 1e4),
        (1_000, 20, 15, 0..1_000, None, 2f32.powi(40), 0.0),
        (1_000, 20, 15, 0..1_000, None, 2f32.powi(-70), 0.0),
    ];
    let inputs: Vec<(Vec<f32>, Vec<u32>, Vec<f32>)> = cases
        .iter()
        .map(|(n, dim, k, queries, _, scale, offset)| {
            let x = with_duplicates(*n, *dim, (*n + *dim) as u64, *scale, *offset);
            let m = queries.len() * k;
            let (mut wi, mut wd) = (vec![0u32; m], vec![0f32; m]);
            cpu.knn_exact(
                Points::new(&x, *dim).unwrap(),
                queries.clone(),
                *k,
                &mut wi,
                &mut wd,
            )
            .unwrap();
            (x, wi, wd)
        })
        .collect();
    // Every kernel (TF32 tensor cores, the default on sm_80 and newer, with resident queries
    // where they fit, up to 54 dimensions, and streamed tiles; f32 CUDA cores), each tile merged
    // at once and queued (merged when a queue reaches 1, 12 or all 32 of its slots: every tile
    // with a pair, every few, when a queue overflows), and launches of every size asked for.
    for arith in knn_kernels() {
        for flush in [0, 1, 12, 32] {
            for batch in [None, Some(256)] {
                let kernels = KernelChoice {
                    cuda_knn: arith,
                    cuda_knn_flush: flush,
                    cuda_knn_batch: batch,
                    ..KernelChoice::default()
                };
                let gpus = gpus_with("knn_exact_matches_cpu", kernels).expect("opened before");
                for ((n, dim, k, queries, _, _, _), (x, wi, wd)) in cases
                    .iter()
                    .zip(&inputs)
                    .filter(|(case, _)| case.4 == batch)
                {
                    let (n, dim, k) = (*n, *dim, *k);
                    let pts = Points::new(x, dim).unwrap();
                    let m = queries.len() * k;
                    for g in &gpus {
                        let (mut gi, mut gd) = (vec![0u32; m], vec![0f32; m]);
                        g.knn_exact(pts, queries.clone(), k, &mut gi, &mut gd)
                            .unwrap();
                        // Every distance kept is recomputed as the CPU does (f64, same order)
                        // and ties go by index: the same lists, bit for bit.
                        for q in 0..queries.len() {
                            let r = q * k..(q + 1) * k;
                            assert_eq!(gi[q * k] as usize, queries.start + q, "self first");
                            assert_eq!(
                                (&gi[r.clone()], &gd[r.clone()]),
                                (&wi[r.clone()], &wd[r]),
                                "n {n}, dim {dim}, k {k} on {} ({arith:?} kernel, flush at \
                                 {flush}): query {}",
                                g.name(),
                                queries.start + q
                            );
                        }
                    }
                }
            }
        }
    }
}

fn layout_of_one_edge_equals_cpu_and_clusters_separate() {
    let test = "layout_of_one_edge_equals_cpu_and_clusters_separate";
    if gpus(test).is_none() {
        return;
    }
    let gpus_for = |layout: CudaLayout| {
        let kernels = KernelChoice {
            cuda_layout: layout,
            ..KernelChoice::default()
        };
        gpus_with(test, kernels).expect("opened before")
    };
    let cpu = CpuBackend::new();
    let params = LayoutParams {
        a: 1.577,
        b: 0.895,
        gamma: 1.0,
        negative_sample_rate: 5.0,
        n_epochs: 50,
        seed: 11,
    };
    // One edge among 40 points: no two updates race, so the device must reproduce the CPU.
    let mut rng = SmallRng::seed_from_u64(3);
    let start: Vec<f32> = (0..40 * 2).map(|_| rng.random_range(-10.0..10.0)).collect();
    let one = EdgeList {
        head: vec![3],
        tail: vec![17],
        epochs_per_sample: vec![1.0],
    };
    // 4–5 negative samples an epoch, and 18–19: two full batches of eight and a partial one
    // for the kernel that loads eight at once.
    for rate in [5.0, 19.0] {
        let params = LayoutParams {
            negative_sample_rate: rate,
            ..params
        };
        let mut want = start.clone();
        cpu.optimize_layout(&mut want, 2, &one, &params, &|_| {})
            .unwrap();
        assert_ne!(want, start, "the CPU layout moved nothing");
        // Every device kernel: the 2-D instance (the default), its twin that loads eight
        // negative samples at once, and the any-dimension one.
        for kernel in [CudaLayout::Auto, CudaLayout::Batched, CudaLayout::Generic] {
            for g in &gpus_for(kernel) {
                let mut got = start.clone();
                g.optimize_layout(&mut got, 2, &one, &params, &|_| {})
                    .unwrap();
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        close(*a as f64, *b as f64, 1e-4, 1e-5),
                        "{kernel:?} kernel, {rate} negative samples an edge, coordinate {i}: \
                         {a} vs {b}"
                    );
                }
            }
        }
    }

    // A kNN graph of 4 blobs laid out from random starts: the blobs separate on the device as
    // on the CPU (Hogwild races make the two differ in detail).
    let (x, labels) = blobs(2_000, 10, 4, 8);
    let pts = Points::new(&x, 10).unwrap();
    let k = 10;
    let (mut idx, mut dist) = (vec![0u32; 2_000 * k], vec![0f32; 2_000 * k]);
    cpu.knn_exact(pts, 0..2_000, k, &mut idx, &mut dist)
        .unwrap();
    let mut edges = EdgeList::default();
    for (e, &j) in idx.iter().enumerate() {
        if e % k != 0 {
            edges.head.push((e / k) as u32);
            edges.tail.push(j);
            edges.epochs_per_sample.push(1.0);
        }
    }
    let params = LayoutParams {
        n_epochs: 200,
        ..params
    };
    let start: Vec<f32> = (0..2_000 * 2)
        .map(|_| rng.random_range(-10.0..10.0))
        .collect();
    let sil = |emb: &[f32]| scoop::ops::quality::silhouette(Points::new(emb, 2).unwrap(), &labels);
    let mut on_cpu = start.clone();
    cpu.optimize_layout(&mut on_cpu, 2, &edges, &params, &|_| {})
        .unwrap();
    // The default 2-D kernel and its batched twin, with real races among the updates.
    for kernel in [CudaLayout::Auto, CudaLayout::Batched] {
        for g in &gpus_for(kernel) {
            let mut got = start.clone();
            let epochs = std::sync::atomic::AtomicUsize::new(0);
            g.optimize_layout(&mut got, 2, &edges, &params, &|_| {
                epochs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })
            .unwrap();
            assert_eq!(epochs.into_inner(), 200);
            let (s_gpu, s_cpu) = (sil(&got), sil(&on_cpu));
            assert!(
                s_gpu > 0.5 && (s_gpu - s_cpu).abs() < 0.1,
                "silhouette {s_gpu} on {} ({kernel:?} kernel) vs {s_cpu}",
                g.name()
            );
        }
    }
}

fn bad_arguments_are_errors_not_device_faults() {
    let Some(gpus) = gpus("bad_arguments_are_errors_not_device_faults") else {
        return;
    };
    let mut c = chunk(10, 5, 0.5, false, 1);
    c.indices[0] = 9; // outside the 5 columns
    for g in &gpus {
        let e = g.gram(&c, &mut Gram::new(5)).unwrap_err().to_string();
        assert!(e.contains("column index 9"), "{e}");
        let mut out = vec![0.0; 10];
        assert!(g.row_totals(&c, Some(&[true; 3]), &mut out).is_err());
        let x = vec![0f32; 12];
        let (mut i, mut d) = (vec![0u32; 12], vec![0f32; 12]);
        assert!(g
            .knn_exact(Points::new(&x, 3).unwrap(), 0..4, 5, &mut i, &mut d)
            .is_err());
        // Coordinates beyond what the f32 estimates hold: an error naming the way out (the
        // CPU, standing in, computes them).
        if !standin() {
            let far = [0.0, 0.0, 0.0, 3e20, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
            let e = g
                .knn_exact(
                    Points::new(&far, 3).unwrap(),
                    0..4,
                    2,
                    &mut i[..8],
                    &mut d[..8],
                )
                .unwrap_err()
                .to_string();
            assert!(e.contains("--backend cpu"), "{e}");
        }
    }
}

// ---- end to end: the commands on --backend cpu and --backend cuda ----

fn run(args: &[&str]) {
    let o = common::scoop(args);
    assert!(
        o.status.success(),
        "scoop {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn read_x(path: &Path) -> CsrChunk {
    let f = H5adReader::open(path).unwrap();
    let x = f.x().unwrap();
    x.read_rows(0..x.info().shape.0).unwrap()
}

fn read_dense(path: &Path, group: &str, key: &str) -> Vec<f64> {
    let f = H5adReader::open(path).unwrap();
    match f.element(group, key).unwrap() {
        Element::Array(a) => a.data.to_f64(),
        other => panic!("{group}/{key}: not an array: {other:?}"),
    }
}

fn preprocess_and_pca_on_cuda_equal_cpu() {
    if gpus("preprocess_and_pca_on_cuda_equal_cpu").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raw = d.join("raw");
    run(&[
        "-q",
        "simulate",
        "--out",
        raw.to_str().unwrap(),
        "--plates",
        "3",
        "--cells-per-plate",
        "4000",
        "--genes",
        "400",
        "--seed",
        "5",
    ]);
    let mut plates: Vec<_> = std::fs::read_dir(&raw)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "h5ad"))
        .collect();
    plates.sort();
    let plates: Vec<&str> = plates.iter().map(|p| p.to_str().unwrap()).collect();
    let backends: [(&str, &[&str]); 3] = if standin() {
        [
            ("cpu", &["--backend", "cpu"]),
            ("cuda", &["--backend", "cpu", "--threads", "1"]),
            ("cuda00", &["--backend", "cpu"]),
        ]
    } else {
        [
            ("cpu", &["--backend", "cpu"]),
            ("cuda", &["--backend", "cuda"]),
            ("cuda00", &["--backend", "cuda", "--devices", "0,0"]),
        ]
    };
    for (tag, flags) in backends {
        let out = d.join(format!("pre_{tag}"));
        let mut args = vec!["-q", "preprocess", "--out-dir", out.to_str().unwrap()];
        args.extend_from_slice(&[
            "--filter",
            "pass_filter=full",
            "--n-top-genes",
            "100",
            "--chunk-rows",
            "1500",
        ]);
        args.extend_from_slice(flags);
        args.extend_from_slice(&plates);
        run(&args);
        let mut pre: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "h5ad"))
            .collect();
        pre.sort();
        let merged = d.join(format!("merged_{tag}.h5ad"));
        let mut args = vec![
            "-q",
            "concat",
            "--out",
            merged.to_str().unwrap(),
            "--label",
            "plate",
        ];
        let pre: Vec<&str> = pre.iter().map(|p| p.to_str().unwrap()).collect();
        args.extend_from_slice(&pre);
        run(&args);
        let pca = d.join(format!("pca_{tag}.h5ad"));
        let mut args = vec![
            "-q",
            "pca",
            merged.to_str().unwrap(),
            "--n-comps",
            "20",
            "--out",
        ];
        args.push(pca.to_str().unwrap());
        args.extend_from_slice(&["--chunk-rows", "1700"]);
        args.extend_from_slice(flags);
        run(&args);
    }
    let (x_cpu, genes_cpu) = (
        read_x(&d.join("merged_cpu.h5ad")),
        std::fs::read_to_string(d.join("pre_cpu/genes.tsv")).unwrap(),
    );
    let var_cpu = read_dense(&d.join("pca_cpu.h5ad"), "uns/pca", "variance");
    let pcs_cpu = read_dense(&d.join("pca_cpu.h5ad"), "obsm", "X_pca");
    for tag in ["cuda", "cuda00"] {
        assert_eq!(
            std::fs::read_to_string(d.join(format!("pre_{tag}/genes.tsv"))).unwrap(),
            genes_cpu,
            "{tag}: the genes kept"
        );
        let x = read_x(&d.join(format!("merged_{tag}.h5ad")));
        assert_eq!(x.indptr, x_cpu.indptr, "{tag}");
        assert_eq!(x.indices, x_cpu.indices, "{tag}");
        for (k, (a, b)) in x.data.iter().zip(&x_cpu.data).enumerate() {
            assert!(
                close(*a as f64, *b as f64, 2.5e-7, 1e-30),
                "{tag} X value {k}: {a} vs {b}"
            );
        }
        let var = read_dense(&d.join(format!("pca_{tag}.h5ad")), "uns/pca", "variance");
        for (i, (a, b)) in var.iter().zip(&var_cpu).enumerate() {
            assert!(close(*a, *b, 1e-9, 0.0), "{tag} variance {i}: {a} vs {b}");
        }
        // Same sign rule on both sides, so coordinates compare directly.
        let pcs = read_dense(&d.join(format!("pca_{tag}.h5ad")), "obsm", "X_pca");
        let scale = pcs_cpu.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (i, (a, b)) in pcs.iter().zip(&pcs_cpu).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 * scale,
                "{tag} X_pca entry {i}: {a} vs {b}"
            );
        }
    }
}

/// Why the GPU tests cannot run here, or `None` when they can (a device opens, the CPU stands in,
/// or `SCOOP_REQUIRE_GPU` asks for a failure rather than a skip).
fn no_device() -> Option<String> {
    if standin() || std::env::var_os("SCOOP_REQUIRE_GPU").is_some() {
        return None;
    }
    CudaBackend::open(&[0]).err().map(|e| e.to_string())
}

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let tests: [(&str, fn()); 13] = [
        ("row_totals_match_cpu", row_totals_match_cpu),
        (
            "gene_moments_match_cpu_for_every_value_map",
            gene_moments_match_cpu_for_every_value_map,
        ),
        ("normalize_log1p_matches_cpu", normalize_log1p_matches_cpu),
        (
            "gram_matches_cpu_and_accumulates_on_the_device",
            gram_matches_cpu_and_accumulates_on_the_device,
        ),
        (
            "projection_matches_f64_reference",
            projection_matches_f64_reference,
        ),
        ("spmv_matches_f64_reference", spmv_matches_f64_reference),
        (
            "sparse_operator_equals_cpu_bit_for_bit",
            sparse_operator_equals_cpu_bit_for_bit,
        ),
        (
            "tall_matrix_equals_cpu_bit_for_bit",
            tall_matrix_equals_cpu_bit_for_bit,
        ),
        (
            "spectral_vectors_on_cuda_equal_cpu",
            spectral_vectors_on_cuda_equal_cpu,
        ),
        ("knn_exact_matches_cpu", knn_exact_matches_cpu),
        (
            "layout_of_one_edge_equals_cpu_and_clusters_separate",
            layout_of_one_edge_equals_cpu_and_clusters_separate,
        ),
        (
            "bad_arguments_are_errors_not_device_faults",
            bad_arguments_are_errors_not_device_faults,
        ),
        (
            "preprocess_and_pca_on_cuda_equal_cpu",
            preprocess_and_pca_on_cuda_equal_cpu,
        ),
    ];
    let skip = no_device();
    if let Some(why) = &skip {
        eprintln!(
            "cuda: {} GPU tests ignored: no CUDA device ({why})",
            tests.len()
        );
    }
    let trials = tests
        .into_iter()
        .map(|(name, test)| {
            libtest_mimic::Trial::test(name, move || {
                test();
                Ok(())
            })
            .with_ignored_flag(skip.is_some())
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
