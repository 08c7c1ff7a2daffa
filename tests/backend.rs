//! The CPU backend's kernels against direct dense computation, and the chunk stream's contract
//! (every selected row exactly once, in order, whatever the chunk size).

mod common;

use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use scoop::backend::{Backend, CpuBackend, GeneSums};
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
    b.gene_sums(&c, Some(&mask), Some(&scale), &mut acc)
        .unwrap();
    b.gene_sums(&c, Some(&mask), Some(&scale), &mut acc)
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

#[test]
fn kernels_reject_mismatched_row_arguments() {
    let (c, _) = random_chunk(10, 5, 0.5, 1);
    let mut out = vec![0.0; 10];
    assert!(CpuBackend::new()
        .row_totals(&c, Some(&[true; 9]), &mut out)
        .is_err());
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
    for chunk_rows in [1, 64, 333, 5000] {
        let opts = StreamOptions {
            chunk_rows,
            prefetch: 2,
        };
        let stream =
            ChunkStream::open(&path, RowSelection::Mask(Arc::new(mask.clone())), opts).unwrap();
        assert_eq!(stream.selected_rows(), mask.iter().filter(|&&k| k).count());
        let mut seen = Vec::new();
        for chunk in stream {
            let chunk = chunk.unwrap();
            assert!(chunk.n_rows() <= chunk_rows);
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
    // Dropping a stream early stops its reader thread (no hang).
    let mut s = ChunkStream::open(
        &path,
        RowSelection::All,
        StreamOptions {
            chunk_rows: 10,
            prefetch: 1,
        },
    )
    .unwrap();
    assert!(s.next().is_some());
    drop(s);
}
