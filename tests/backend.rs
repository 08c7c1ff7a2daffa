//! The CPU backend's kernels against direct dense computation, and the chunk stream's contract
//! (every selected row exactly once, in order, whatever the chunk size).

mod common;

use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use scoop::backend::{
    log1p_f32, Backend, CpuBackend, GeneSubset, GeneSums, Gram, Projection, ValueMap, GRAM_TILE,
};
use scoop::io::{CsrChunk, RowIds};
use scoop::stream::{ChunkStream, RowSelection, StreamOptions};

fn random_chunk(rows: usize, cols: usize, density: f64, seed: u64) -> (CsrChunk, Vec<Vec<f32>>) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut dense = vec![vec![0f32; cols]; rows];
    let mut c = CsrChunk::empty(cols);
    c.rows = RowIds::Range(0..rows as u64);
    for (i, row) in dense.iter_mut().enumerate() {
        if i % 7 != 3 {
            for (j, v) in row.iter_mut().enumerate() {
                if rng.random::<f64>() < density {
                    *v = rng.random_range(1..50) as f32 * 0.5;
                    c.indices.push(j as u32);
                    c.data.push(*v);
                }
            }
        }
        c.indptr.push(c.data.len());
    }
    (c, dense)
}

#[test]
fn row_totals_and_gene_sums_match_dense_reference() {
    let (c, dense) = random_chunk(1_500, 97, 0.1, 5);
    let b = CpuBackend::new();
    let mask: Vec<bool> = (0..c.n_rows()).map(|i| i % 3 != 0).collect();
    let scale: Vec<f64> = (0..c.n_rows())
        .map(|i| 1.0 / (1.0 + (i % 13) as f64))
        .collect();

    let mut totals = vec![-1.0; c.n_rows()];
    b.row_totals(&c, Some(&mask), &mut totals).unwrap();
    for (i, row) in dense.iter().enumerate() {
        let want: f64 = if mask[i] {
            row.iter().map(|&v| v as f64).sum()
        } else {
            0.0
        };
        assert_eq!(totals[i], want, "row {i}");
    }

    let mut acc = GeneSums::new(97);
    // Two calls accumulate: the second adds the same chunk again.
    b.gene_moments(&c, Some(&mask), ValueMap::Scaled(&scale), &mut acc)
        .unwrap();
    b.gene_moments(&c, Some(&mask), ValueMap::Scaled(&scale), &mut acc)
        .unwrap();
    let kept = mask.iter().filter(|&&k| k).count() as u64;
    assert_eq!(acc.n_rows, 2 * kept);
    for j in 0..97 {
        let (mut s, mut q, mut n) = (0f64, 0f64, 0u64);
        for (i, row) in dense.iter().enumerate() {
            if mask[i] {
                let x = row[j] as f64 * scale[i];
                s += x;
                q += x * x;
                n += (row[j] != 0.0) as u64;
            }
        }
        assert!(
            (acc.sum[j] - 2.0 * s).abs() <= 1e-10 * s.abs().max(1.0),
            "sum {j}"
        );
        assert!(
            (acc.sumsq[j] - 2.0 * q).abs() <= 1e-10 * q.abs().max(1.0),
            "sumsq {j}"
        );
        assert_eq!(acc.nnz[j], 2 * n, "nnz {j}");
    }
    let var = acc.variances(1);
    let mean = acc.means();
    assert!(var
        .iter()
        .zip(&mean)
        .all(|(v, m)| v.is_finite() && m.is_finite() && *v >= -1e-12));
}

/// Every value map against the same formula applied to the dense matrix.
#[test]
fn gene_moments_value_maps_match_dense_reference() {
    let (c, dense) = random_chunk(1_200, 61, 0.15, 9);
    let b = CpuBackend::new();
    let div: Vec<f32> = (0..c.n_rows()).map(|i| 0.25 + (i % 11) as f32).collect();
    let clip: Vec<f64> = (0..61).map(|j| 2.0 + (j % 5) as f64 * 3.0).collect();
    type Reference = Box<dyn Fn(f32, usize, usize) -> f64>;
    let d2 = div.clone();
    let c2 = clip.clone();
    let cases: Vec<(ValueMap, Reference)> = vec![
        (ValueMap::Raw, Box::new(|x, _, _| x as f64)),
        (
            ValueMap::LogNormalized(&div),
            Box::new(move |x, i, _| ((x / d2[i]) as f64).ln_1p()),
        ),
        (
            ValueMap::Clipped(&clip),
            Box::new(move |x, _, j| (x as f64).min(c2[j])),
        ),
    ];
    for (k, (map, f)) in cases.into_iter().enumerate() {
        let mut acc = GeneSums::new(61);
        b.gene_moments(&c, None, map, &mut acc).unwrap();
        assert_eq!(acc.n_rows, 1_200);
        for j in 0..61 {
            let (mut s, mut q) = (0f64, 0f64);
            for (i, row) in dense.iter().enumerate() {
                if row[j] != 0.0 {
                    let v = f(row[j], i, j);
                    s += v;
                    q += v * v;
                }
            }
            // f32 log1p against f64 log1p: a few ulps of f32.
            let tol = if k == 1 { 1e-6 } else { 1e-12 };
            assert!(
                (acc.sum[j] - s).abs() <= tol * s.abs().max(1.0),
                "case {k} sum {j}"
            );
            assert!(
                (acc.sumsq[j] - q).abs() <= tol * q.abs().max(1.0),
                "case {k} sumsq {j}"
            );
        }
    }
}

#[test]
fn normalize_log1p_subsets_and_transforms() {
    let (c, dense) = random_chunk(700, 40, 0.2, 3);
    let div: Vec<f32> = (0..c.n_rows()).map(|i| 0.5 + (i % 9) as f32).collect();
    let keep: Vec<bool> = (0..40).map(|j| j % 3 != 1).collect();
    let genes = GeneSubset::from_mask(&keep);
    let out = CpuBackend::new().normalize_log1p(&c, &div, &genes).unwrap();
    assert_eq!(out.n_cols, genes.n_new());
    assert_eq!(out.n_rows(), 700);
    assert_eq!(out.rows, c.rows);
    for (i, row) in dense.iter().enumerate() {
        let (idx, val) = out.row(i);
        let want: Vec<(u32, f32)> = genes
            .kept()
            .iter()
            .enumerate()
            .filter(|(_, &old)| row[old as usize] != 0.0)
            .map(|(new, &old)| (new as u32, log1p_f32(row[old as usize] / div[i])))
            .collect();
        let got: Vec<(u32, f32)> = idx.iter().copied().zip(val.iter().copied()).collect();
        assert_eq!(got, want, "row {i}");
    }
    assert!(CpuBackend::new()
        .normalize_log1p(&c, &div[1..], &genes)
        .is_err());
}

/// The fast log1p is within one f32 ulp of the exact value everywhere that matters.
#[test]
fn log1p_f32_is_faithful() {
    let mut x = 1e-12f32;
    while x < 1e7 {
        for v in [x, -x.min(0.9)] {
            let exact = (v as f64).ln_1p();
            let got = log1p_f32(v) as f64;
            let ulp = (exact as f32).abs() * f32::EPSILON;
            assert!(
                (got - exact).abs() <= ulp as f64,
                "log1p({v}) = {got}, exact {exact}"
            );
        }
        x *= 1.0137;
    }
}

#[test]
fn kernels_reject_mismatched_row_arguments() {
    let (c, _) = random_chunk(10, 5, 0.5, 1);
    let mut out = vec![0.0; 10];
    let cpu = CpuBackend::new();
    assert!(cpu.row_totals(&c, Some(&[true; 9]), &mut out).is_err());
    // Errors the CUDA twin returns too, where the CPU twin used to panic.
    let err = cpu.row_totals(&c, None, &mut out[..9]).unwrap_err();
    assert!(err.to_string().contains("9 outputs for 10 rows"), "{err}");
    let mut narrow = GeneSums::new(4);
    let err = cpu
        .gene_moments(&c, None, ValueMap::Raw, &mut narrow)
        .unwrap_err();
    assert!(
        err.to_string().contains("4 columns for a chunk of 5"),
        "{err}"
    );
}

#[test]
fn stream_delivers_selected_rows_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = common::scoop(&[
        "simulate",
        "--out",
        d,
        "--plates",
        "1",
        "--cells-per-plate",
        "1000",
        "--genes",
        "40",
        "-q",
    ]);
    assert!(out.status.success());
    let path = dir.path().join("plate1_filtered.h5ad");
    let f = scoop::io::H5adReader::open(&path).unwrap();
    let whole = f.x().unwrap().read_rows(0..1000).unwrap();
    let mask: Vec<bool> = (0..1000).map(|i| (i / 50) % 3 == 1 || i == 999).collect();
    let max = StreamOptions::default().chunk_values;
    for (chunk_rows, chunk_values) in [(1, max), (64, max), (333, max), (5000, max), (5000, 97)] {
        let opts = StreamOptions {
            chunk_rows,
            chunk_values,
            prefetch: 2,
        };
        let stream =
            ChunkStream::open(&path, RowSelection::Mask(Arc::new(mask.clone())), opts).unwrap();
        assert_eq!(stream.selected_rows(), mask.iter().filter(|&&k| k).count());
        let mut seen = Vec::new();
        for chunk in stream {
            let chunk = chunk.unwrap();
            assert!(chunk.n_rows() <= chunk_rows);
            assert!(chunk.nnz() as u64 <= chunk_values || chunk.n_rows() == 1);
            for i in 0..chunk.n_rows() {
                let src = chunk.rows.get(i) as usize;
                assert_eq!(
                    chunk.row(i),
                    whole.row(src),
                    "row {src} with chunk_rows {chunk_rows}"
                );
                seen.push(src);
            }
        }
        let want: Vec<usize> = (0..1000).filter(|&i| mask[i]).collect();
        assert_eq!(seen, want);
    }
    // A values budget cuts every chunk where the next row would pass it (or after one row).
    let budget = 97u64;
    let opts = StreamOptions {
        chunk_rows: 5000,
        chunk_values: budget,
        prefetch: 2,
    };
    let row_nnz = |i: usize| (whole.indptr[i + 1] - whole.indptr[i]) as u64;
    let (mut next, mut chunks) = (0usize, 0u64);
    for chunk in ChunkStream::open(&path, RowSelection::All, opts).unwrap() {
        let chunk = chunk.unwrap();
        assert_eq!(chunk.rows.get(0) as usize, next);
        let nnz = chunk.nnz() as u64;
        assert!(nnz <= budget || chunk.n_rows() == 1, "{nnz} values");
        next += chunk.n_rows();
        if next < 1000 {
            assert!(
                nnz + row_nnz(next) > budget,
                "chunk ending at {next} could take a row"
            );
        }
        chunks += 1;
    }
    assert_eq!(next, 1000);
    assert!(
        chunks >= (whole.nnz() as u64).div_ceil(budget) && chunks > 5,
        "{chunks} chunks"
    );
    // Dropping a stream early stops its reader thread (no hang).
    let mut s = ChunkStream::open(
        &path,
        RowSelection::All,
        StreamOptions {
            chunk_rows: 10,
            prefetch: 1,
            ..StreamOptions::default()
        },
    )
    .unwrap();
    assert!(s.next().is_some());
    drop(s);
}

/// Gene moments and the gram's column sums come out bit for bit the same on any thread count:
/// the reductions merge fixed blocks in order, so a rerun (or a machine with more cores) gives the
/// same HVG statistics and PCA.
#[test]
fn reductions_are_bitwise_the_same_on_any_thread_count() {
    let (c, _) = random_chunk(6_000, 60, 0.5, 31);
    let scale: Vec<f64> = (0..c.n_rows())
        .map(|i| 1.0 / (3.0 + (i % 17) as f64))
        .collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let b = CpuBackend::new();
            let mut acc = GeneSums::new(60);
            b.gene_moments(&c, None, ValueMap::Scaled(&scale), &mut acc)
                .unwrap();
            let mut gram = Gram::new(60);
            b.gram(&c, &mut gram).unwrap();
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            (bits(&acc.sum), bits(&acc.sumsq), bits(&gram.sum))
        })
    };
    assert!(
        c.data.len() > 2 << 16,
        "the gram's sums span several blocks"
    );
    let one = run(1);
    for threads in [2, 3, 8, 8] {
        assert_eq!(run(threads), one, "{threads} threads");
    }
}

/// XᵀX, column sums and row count against the dense reference, over a dimension that is not a
/// multiple of the tile (so edge tiles are partial), accumulated over two chunks.
#[test]
fn gram_matches_dense_reference() {
    let d = 2 * GRAM_TILE + 37;
    let (c1, dense1) = random_chunk(700, d, 0.08, 21);
    let (c2, dense2) = random_chunk(333, d, 0.3, 22);
    let b = CpuBackend::new();
    let mut acc = Gram::new(d);
    b.gram(&c1, &mut acc).unwrap();
    b.gram(&c2, &mut acc).unwrap();
    assert_eq!(acc.n_rows, 1_033);
    let rows: Vec<&Vec<f32>> = dense1.iter().chain(&dense2).collect();
    let g = acc.to_dense();
    for i in 0..d {
        let s: f64 = rows.iter().map(|r| r[i] as f64).sum();
        assert!((acc.sum[i] - s).abs() <= 1e-12 * s.max(1.0), "sum {i}");
        for j in 0..d {
            let want: f64 = rows.iter().map(|r| r[i] as f64 * r[j] as f64).sum();
            assert!(
                (g[i * d + j] - want).abs() <= 1e-12 * want.max(1.0),
                "G[{i}, {j}] = {} vs {want}",
                g[i * d + j]
            );
            assert_eq!(acc.get(i, j), g[i * d + j]);
        }
    }
    // Shards merge to the same result.
    let (mut a1, mut a2) = (Gram::new(d), Gram::new(d));
    b.gram(&c1, &mut a1).unwrap();
    b.gram(&c2, &mut a2).unwrap();
    a1.merge(&a2).unwrap();
    assert_eq!(a1.n_rows, acc.n_rows);
    let m = a1.to_dense();
    assert!(m
        .iter()
        .zip(&g)
        .all(|(x, y)| (x - y).abs() <= 1e-12 * y.abs().max(1.0)));
    assert!(a1.merge(&Gram::new(d + 1)).is_err());
}

/// Rows with unsorted and repeated columns count as their canonical form (repeats summed), as
/// scipy's XᵀX does; an out-of-range column is an error.
#[test]
fn gram_canonicalizes_unsorted_and_repeated_columns() {
    let mut c = CsrChunk::empty(300);
    c.rows = RowIds::Range(0..2);
    // Row 0: columns 290, 5, 140, 5 (repeat); row 1: 7, 3.
    c.indices = vec![290, 5, 140, 5, 7, 3];
    c.data = vec![1.0, 2.0, 3.0, 0.5, 4.0, 5.0];
    c.indptr = vec![0, 4, 6];
    let mut acc = Gram::new(300);
    CpuBackend::new().gram(&c, &mut acc).unwrap();
    assert_eq!(acc.get(5, 5), 2.5 * 2.5);
    assert_eq!(acc.get(5, 290), 2.5);
    assert_eq!(acc.get(140, 290), 3.0);
    assert_eq!(acc.get(3, 7), 20.0);
    assert_eq!(acc.get(3, 5), 0.0);
    assert_eq!(acc.sum[5], 2.5);
    c.indices[0] = 300;
    assert!(CpuBackend::new().gram(&c, &mut Gram::new(300)).is_err());
}

/// X·V − offset against the dense product, for k that is not a multiple of the SIMD width.
#[test]
fn projection_matches_dense_reference() {
    let (d, k) = (83, 13);
    let (c, dense) = random_chunk(300, d, 0.2, 31);
    let mut rng = SmallRng::seed_from_u64(32);
    let v: Vec<f32> = (0..d * k).map(|_| rng.random_range(-1.0..1.0)).collect();
    let offset: Vec<f32> = (0..k).map(|i| i as f32 * 0.25).collect();
    let proj = Projection::new(d, k, v.clone(), offset.clone()).unwrap();
    let mut out = vec![f32::NAN; c.n_rows() * k];
    CpuBackend::new().project(&c, &proj, &mut out).unwrap();
    for (r, row) in dense.iter().enumerate() {
        for col in 0..k {
            let want: f64 = (0..d)
                .map(|j| row[j] as f64 * v[j * k + col] as f64)
                .sum::<f64>()
                - offset[col] as f64;
            let got = out[r * k + col] as f64;
            assert!(
                (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                "({r}, {col})"
            );
        }
    }
    assert!(Projection::new(d, k, v, vec![0.0; k + 1]).is_err());
    assert!(CpuBackend::new().project(&c, &proj, &mut out[1..]).is_err());
}

/// Kernel variants are typed options (`KernelChoice`), read from the environment only at the
/// CLI's edge: no file under src/backend, src/ops or src/io reads an environment variable or
/// mentions clap (the command line mirrors their enums), and imports point down the layers.
#[test]
fn the_library_reads_no_environment_and_imports_point_down() {
    fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                rust_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let root = common::root();
    let mut checked = 0;
    for (dir, forbidden) in [
        (
            "src/backend",
            &[
                "env::var",
                "clap",
                "crate::ops",
                "crate::workflow",
                "crate::cli",
            ][..],
        ),
        (
            "src/ops",
            &["env::var", "clap", "crate::workflow", "crate::cli"][..],
        ),
        (
            "src/io",
            &[
                "env::var",
                "clap",
                "crate::ops",
                "crate::backend",
                "crate::workflow",
            ][..],
        ),
    ] {
        let mut files = Vec::new();
        rust_files(&root.join(dir), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for word in forbidden {
                assert!(!text.contains(word), "{} mentions {word}", f.display());
            }
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} files checked");
}
