//! More than 2^31 stored values in one h5ad without 17 GB on disk: h5py writes X with chunked
//! `data`/`indices` of 2^31 + 10^6 values and int64 indptr, real values only in the first and last
//! rows; the chunks between stay unallocated and read as zeros. One streaming pass over every row
//! must give the first and last rows' totals, zeros elsewhere, and every stored value.

mod common;

use std::process::Command;

use serde_json::Value;

use scoop::io::{H5adReader, NumDtype};
use scoop::stream::{ChunkStream, RowSelection, StreamOptions};

/// Stored values: past int32's range by a million.
const NNZ: u64 = (1 << 31) + 1_000_000;
const ROWS: usize = 32_770;
const COLS: usize = 2_000;
/// Values per HDF5 chunk of data/indices.
const CHUNK: u64 = 1 << 20;

#[test]
fn a_stream_over_more_than_2_pow_31_values_gives_the_row_totals() {
    let Some(py) = common::python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.h5ad");
    let out = Command::new(&py)
        .arg(common::root().join("tests/python/big_file.py"))
        .args(["make", path.to_str().unwrap()])
        .args([ROWS as u64, COLS as u64, NNZ, CHUNK].map(|v| v.to_string()))
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "big_file.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expect: Value = serde_json::from_slice(&out.stdout).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 16 << 20, "the file takes {size} bytes");
    assert_eq!(expect["allocated_chunks"], 2, "{expect}");

    let x = H5adReader::open(&path).unwrap().x().unwrap();
    let info = x.info();
    assert_eq!(info.nnz, NNZ);
    assert_eq!(info.shape, (ROWS, COLS));
    assert_eq!(info.index_dtypes.map(|t| t.1), Some(NumDtype::I64));

    let t = std::time::Instant::now();
    let opts = StreamOptions {
        chunk_rows: 256,
        prefetch: 2,
        ..StreamOptions::default()
    };
    let mut totals = Vec::with_capacity(ROWS);
    let (mut first_cols, mut last_cols) = (Vec::new(), Vec::new());
    let mut stored = 0u64;
    let mut nonzero_cols_in_middle = 0u64;
    for chunk in ChunkStream::open(&path, RowSelection::All, opts).unwrap() {
        let c = chunk.unwrap();
        stored += c.data.len() as u64;
        for w in c.indptr.windows(2) {
            let row = totals.len();
            let (cols, vals) = (&c.indices[w[0]..w[1]], &c.data[w[0]..w[1]]);
            totals.push(vals.iter().map(|&v| f64::from(v)).sum::<f64>());
            match row {
                0 => first_cols = cols.to_vec(),
                _ if row == ROWS - 1 => last_cols = cols.to_vec(),
                _ => nonzero_cols_in_middle += cols.iter().filter(|&&j| j != 0).count() as u64,
            }
        }
    }
    eprintln!(
        "streamed {NNZ} stored values in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(totals.len(), ROWS);
    assert_eq!(stored, NNZ);
    assert_eq!(totals[0], expect["first_total"].as_f64().unwrap());
    assert_eq!(totals[ROWS - 1], expect["last_total"].as_f64().unwrap());
    assert!(totals[0] > 0.0 && totals[ROWS - 1] > 0.0);
    assert!(totals[1..ROWS - 1].iter().all(|&t| t == 0.0));
    assert_eq!(nonzero_cols_in_middle, 0);
    let cols = |v: &Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap() as u32)
            .collect()
    };
    assert_eq!(first_cols, cols(&expect["first_cols"]));
    assert_eq!(last_cols, cols(&expect["last_cols"]));
}
