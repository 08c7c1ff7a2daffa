//! The parallel chunk reader of X: on files written by anndata, h5py and hdf5plugin with every
//! common filter, chunk size, element type and layout it returns exactly what HDF5 returns;
//! commands give identical outputs on compressed and uncompressed copies of a plate; and
//! damaged files fail with one line naming the file, the element and the chunk.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use scoop::io::{CsrChunk, H5adReader, MatrixReader, ReadPath};
use scoop::stream::{ChunkPool, ChunkStream, RowChunks, RowSelection, StreamOptions};

fn run_py(py: &Path, args: &[&str]) -> String {
    common::script(py, "parallel_read.py", args)
}

struct Fixtures {
    py: PathBuf,
    dir: tempfile::TempDir,
    manifest: Value,
}

impl Fixtures {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.h5ad"))
    }
}

fn fixtures() -> Option<&'static Fixtures> {
    static FIX: OnceLock<Option<Fixtures>> = OnceLock::new();
    FIX.get_or_init(|| {
        let py = common::plugin_python()?;
        let (dir, manifest) = common::script_fixtures(&py, "parallel_read.py");
        Some(Fixtures { py, dir, manifest })
    })
    .as_ref()
}

fn open_x(path: &Path, read: ReadPath) -> MatrixReader {
    let f = H5adReader::open(path).unwrap_or_else(|e| panic!("{e}"));
    MatrixReader::open_with(f.root(), "X", read).unwrap_or_else(|e| panic!("{e}"))
}

/// Every row of `x` in reads of `rows` rows.
fn read_all(x: &MatrixReader, rows: usize) -> Vec<CsrChunk> {
    let n = x.shape().0;
    (0..n)
        .step_by(rows)
        .map(|s| {
            x.read_rows(s..(s + rows).min(n))
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

/// All stored values of `chunks`, in order.
fn values(chunks: &[CsrChunk]) -> Vec<f32> {
    chunks.iter().flat_map(|c| c.data.iter().copied()).collect()
}

#[test]
fn parallel_path_returns_what_hdf5_returns_for_every_variant() {
    let Some(fx) = fixtures() else { return };
    let plain = read_all(&open_x(&fx.path("plain"), ReadPath::Hdf5), 1000);
    let plain_values = values(&plain);
    let variants = fx.manifest["variants"].as_array().unwrap();
    assert!(variants.len() > 20);
    for v in variants {
        let name = v["name"].as_str().unwrap();
        let path = fx.path(name);
        let fast = open_x(&path, ReadPath::Parallel);
        let slow = open_x(&path, ReadPath::Hdf5);
        assert_eq!(
            fast.is_parallel(),
            v["parallel"].as_bool().unwrap(),
            "{name}: parallel path taken"
        );
        assert!(!slow.is_parallel());
        assert_eq!(
            fast.indptr_reads().unwrap().parallel,
            v["indptr_parallel"].as_bool().unwrap(),
            "{name}: parallel path taken for indptr"
        );
        assert!(!slow.indptr_reads().unwrap().parallel);
        // Reads smaller and larger than the chunks, aligned with nothing, and one whole read.
        for rows in [1000, 333, 2500, 4000] {
            let want = read_all(&slow, rows);
            assert!(
                read_all(&fast, rows) == want,
                "{name}: {rows}-row reads differ"
            );
        }
        // Out-of-order reads do not reuse a kept chunk wrongly.
        for r in [2500..3000, 100..200, 2999..3001, 0..1, 3999..4000, 5..5] {
            assert!(
                fast.read_rows(r.clone()).unwrap() == slow.read_rows(r.clone()).unwrap(),
                "{name}: rows {r:?}"
            );
        }
        // Values in their stored dtype (what concat and subset copy).
        if let (MatrixReader::Csr(f), MatrixReader::Csr(s)) = (&fast, &slow) {
            for start in (0..4000).step_by(1500) {
                let r = start..(start + 1500).min(4000);
                let (a, b) = (f.read_rows_typed(r.clone()), s.read_rows_typed(r.clone()));
                assert!(a.unwrap() == b.unwrap(), "{name}: typed rows {r:?}");
            }
        }
        // Streamed, each chunk dropped before the next arrives so that its buffers are refilled
        // with chunks of other sizes, whole and through a row mask: what HDF5 reads.
        let n = slow.shape().0;
        let mask: Vec<bool> = (0..n)
            .map(|i| i % 3 != 1 && !(1000..1500).contains(&i))
            .collect();
        for selection in [RowSelection::All, RowSelection::Mask(Arc::new(mask))] {
            let opts = StreamOptions {
                chunk_rows: 333,
                prefetch: 1,
                ..StreamOptions::default()
            };
            let want: Vec<CsrChunk> = (0..n)
                .step_by(opts.chunk_rows)
                .filter_map(|s| {
                    let e = (s + opts.chunk_rows).min(n);
                    let mut c = slow.read_rows(s..e).unwrap();
                    if let RowSelection::Mask(m) = &selection {
                        if !m[s..e].contains(&true) {
                            return None;
                        }
                        c.retain_rows(&m[s..e]);
                    }
                    Some(c)
                })
                .collect();
            let mut got = 0;
            for (k, chunk) in ChunkStream::open(&path, selection.clone(), opts)
                .unwrap()
                .enumerate()
            {
                let chunk = chunk.unwrap_or_else(|e| panic!("{e}"));
                assert!(*chunk == want[k], "{name}: streamed chunk {k} differs");
                got += 1;
            }
            assert_eq!(got, want.len(), "{name}: streamed chunks");
        }
        if !fast.is_parallel() {
            continue;
        }
        // Against anndata's uncompressed plate: equal, but for chunks never written (zeros).
        let got = read_all(&fast, 1000);
        let mut want = plain_values.clone();
        for z in v["zero_ranges"].as_array().unwrap() {
            let (a, b) = (
                z[0].as_u64().unwrap() as usize,
                z[1].as_u64().unwrap() as usize,
            );
            assert!(want[a..b].iter().any(|&x| x != 0.0));
            want[a..b].fill(0.0);
        }
        assert!(
            values(&got) == want,
            "{name}: values differ from plain.h5ad"
        );
        let idx =
            |c: &[CsrChunk]| -> Vec<u32> { c.iter().flat_map(|c| c.indices.clone()).collect() };
        assert!(
            idx(&got) == idx(&plain),
            "{name}: indices differ from plain.h5ad"
        );
    }
}

#[test]
fn a_pass_reads_each_row_offset_once_and_decodes_each_indptr_chunk_once() {
    let Some(fx) = fixtures() else { return };
    // Chunks of ~40 rows (a values budget of 5,000 at ~120 values per row), cut out of 97
    // candidates: many chunks per stored chunk of indptr, most cut before their last candidate.
    let opts = StreamOptions {
        chunk_rows: 97,
        chunk_values: 5_000,
        prefetch: 1,
    };
    for v in fx.manifest["variants"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let path = fx.path(name);
        let slow = open_x(&path, ReadPath::Hdf5);
        for read in [ReadPath::Parallel, ReadPath::Hdf5] {
            let x = open_x(&path, read);
            let n = x.shape().0;
            let before = x.indptr_reads().unwrap();
            let (mut next, mut chunks) = (0, 0);
            for chunk in RowChunks::new(&x, RowSelection::All, opts, ChunkPool::new(2)).unwrap() {
                let chunk = chunk.unwrap_or_else(|e| panic!("{name}: {e}"));
                let rows = next..next + chunk.n_rows();
                assert!(
                    *chunk == slow.read_rows(rows.clone()).unwrap(),
                    "{name} {read:?}: rows {rows:?} differ"
                );
                assert!(
                    chunk.n_rows() == 1 || chunk.data.len() <= 5_000,
                    "{name}: {rows:?}"
                );
                next = rows.end;
                chunks += 1;
            }
            assert_eq!(next, n, "{name}: rows delivered");
            assert!(chunks > 80, "{name}: {chunks} chunks");
            let after = x.indptr_reads().unwrap();
            assert_eq!(
                after.entries - before.entries,
                n as u64 + 1,
                "{name} {read:?}: indptr entries read in one pass"
            );
            let stored = v["indptr_chunks"].as_u64().unwrap();
            let decoded = after.chunks_decoded - before.chunks_decoded;
            if read == ReadPath::Parallel && after.parallel {
                assert!(
                    decoded <= stored,
                    "{name}: {decoded} indptr chunks decoded, {stored} stored"
                );
            } else {
                assert_eq!(decoded, 0, "{name}: decoded outside the parallel path");
            }
        }
    }
}

/// `dump_file`'s X, obs, var and obsm of an output.
fn outputs(path: &Path) -> Value {
    let d = common::dump_file(path);
    serde_json::json!([d["X"], d["obs"], d["var"], d["obsm"]])
}

#[test]
fn preprocess_and_pca_give_identical_outputs_on_gzip_and_uncompressed_plates() {
    let Some(fx) = fixtures() else { return };
    let out = tempfile::tempdir().unwrap();
    let mut got = Vec::new();
    for (name, read) in [
        ("plain", "parallel"),
        ("gzip", "parallel"),
        ("gzip", "hdf5"),
    ] {
        let dir = out.path().join(format!("{name}_{read}"));
        let input = fx.path(name);
        let pre = common::scoop(&[
            "preprocess",
            input.to_str().unwrap(),
            "--out-dir",
            dir.to_str().unwrap(),
            "--min-plates",
            "1",
            "--n-top-genes",
            "500",
            "--read-path",
            read,
            "--chunk-rows",
            "700",
            "-q",
        ]);
        assert!(
            pre.status.success(),
            "{}",
            String::from_utf8_lossy(&pre.stderr)
        );
        let pre_out = dir.join(format!("{name}_preprocessed.h5ad"));
        let pca_out = dir.join("pca.h5ad");
        let pca = common::scoop(&[
            "pca",
            pre_out.to_str().unwrap(),
            "--n-comps",
            "10",
            "--out",
            pca_out.to_str().unwrap(),
            "--read-path",
            read,
            "-q",
        ]);
        assert!(
            pca.status.success(),
            "{}",
            String::from_utf8_lossy(&pca.stderr)
        );
        got.push((outputs(&pre_out), outputs(&pca_out)));
    }
    assert!(
        got[0].0 == got[1].0,
        "preprocess: gzip and plain outputs differ"
    );
    assert!(got[0].1 == got[1].1, "pca: gzip and plain outputs differ");
    assert!(got[1] == got[2], "the read paths give different outputs");
}

/// Copies fixture `name` to a fresh directory, lets `damage` change it, runs `scoop preprocess`
/// on it and returns its one-line error; checks that nothing was left in the output directory.
fn failing_preprocess(name: &str, damage: impl FnOnce(&Path)) -> String {
    failing_preprocess_with(name, &[], damage)
}

/// [`failing_preprocess`] with `extra` arguments to `scoop preprocess`; in the error returned
/// the input's directory reads `DIR`.
fn failing_preprocess_with(name: &str, extra: &[&str], damage: impl FnOnce(&Path)) -> String {
    let fx = fixtures().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join(format!("{name}.h5ad"));
    std::fs::copy(fx.path(name), &input).unwrap();
    damage(&input);
    let out = dir.path().join("out");
    let res = common::scoop(
        &[
            "preprocess",
            input.to_str().unwrap(),
            "--out-dir",
            out.to_str().unwrap(),
            "--min-plates",
            "1",
            "-q",
        ]
        .iter()
        .chain(extra)
        .copied()
        .collect::<Vec<_>>(),
    );
    assert!(!res.status.success(), "{name}: damaged input was accepted");
    let err = String::from_utf8_lossy(&res.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "{name}: not one line: {err}");
    assert!(
        err.contains(input.to_str().unwrap()),
        "{name}: file not named: {err}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| *n != format!("{name}.h5ad"))
        .chain(
            std::fs::read_dir(&out)
                .into_iter()
                .flatten()
                .map(|e| e.unwrap().file_name().into_string().unwrap()),
        )
        .collect();
    assert!(
        left.iter().all(|n| n == "out"),
        "{name}: left behind {left:?}"
    );
    err.replace(dir.path().to_str().unwrap(), "DIR")
}

fn surgery(what: &str, file: &Path, element: &str, chunk: usize) {
    let fx = fixtures().unwrap();
    run_py(
        &fx.py,
        &[what, file.to_str().unwrap(), element, &chunk.to_string()],
    );
}

#[test]
fn a_corrupt_compressed_chunk_is_one_line_naming_file_element_and_chunk() {
    if fixtures().is_none() {
        return;
    }
    let err = failing_preprocess("gzip", |p| surgery("garble", p, "X/data", 5));
    assert!(err.contains("/X/data: chunk 5 (elements "), "{err}");
    assert!(err.contains("gzip"), "{err}");
    let err = failing_preprocess("zstd", |p| surgery("garble", p, "X/indices", 2));
    assert!(err.contains("/X/indices: chunk 2 (elements "), "{err}");
}

#[test]
fn a_corrupt_indptr_is_one_line_naming_file_and_element_on_both_read_paths() {
    let Some(fx) = fixtures() else { return };
    // Offsets of row 2,100 below row 2,099's, of row 3,000 negative, of row 3,500 past the
    // stored values, in indptr stored contiguous, in anndata's gzip chunks and as int64 in small
    // gzip chunks (read by the parallel path) and as uint64 (read through HDF5).
    let cases = [
        (
            "2100",
            "5",
            "/X/indptr: not non-decreasing within rows 0..4000",
        ),
        ("3000", "-5", "/X/indptr: negative offset -5"),
        (
            "3500",
            "1000000000",
            "/X/indptr: not non-decreasing within rows 0..4000",
        ),
    ];
    for name in [
        "indptr_int32_contiguous",
        "gzip",
        "indptr_int64_gzip_small_chunks",
        "indptr_uint64_gzip",
    ] {
        for (row, value, want) in cases {
            if name.contains("uint64") && value.starts_with('-') {
                continue; // not representable
            }
            let damage = |p: &Path| {
                run_py(&fx.py, &["indptr", p.to_str().unwrap(), row, value]);
            };
            let want = format!("error: DIR/{name}.h5ad: {want}");
            for read in ["parallel", "hdf5"] {
                let err = failing_preprocess_with(name, &["--read-path", read], damage);
                assert_eq!(err, want, "{name}, row {row} = {value}, {read} path");
            }
        }
    }
}

#[test]
fn a_checksum_mismatch_is_one_line_naming_the_chunk() {
    if fixtures().is_none() {
        return;
    }
    let err = failing_preprocess("fletcher32", |p| surgery("flip", p, "X/data", 3));
    assert!(
        err.contains("/X/data: chunk 3 (elements 60000..80000"),
        "{err}"
    );
    assert!(err.contains("fletcher32 checksum mismatch"), "{err}");
}

#[test]
fn a_chunk_past_the_end_of_the_file_is_one_line_naming_the_chunk() {
    let Some(fx) = fixtures() else { return };
    // The chunk index points past the end.
    let err = failing_preprocess("gzip", |p| surgery("misplace", p, "X/indices", 7));
    assert!(err.contains("/X/indices: chunk 7 (elements "), "{err}");
    assert!(err.contains("past the end of the file"), "{err}");
    // The file shrinks under an open reader.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("g.h5ad");
    std::fs::copy(fx.path("gzip"), &copy).unwrap();
    let x = open_x(&copy, ReadPath::Parallel);
    let all = 0..x.shape().0;
    let offsets = x.row_offsets(all.clone()).unwrap();
    let info: Value = serde_json::from_str(&run_py(
        &fx.py,
        &["chunk", copy.to_str().unwrap(), "X/data", "100"],
    ))
    .unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&copy).unwrap();
    f.set_len(info["addr"].as_u64().unwrap() + 10).unwrap();
    // X/indices and X/indptr lie after X/data in anndata's files: with the offsets read, the
    // first chunk of indices is the first one missing; without, the first chunk of indptr.
    let mut chunk = CsrChunk::empty(x.shape().1);
    let err = x
        .read_rows_with_offsets_into(all.clone(), &offsets, &mut chunk)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/X/indices: chunk 0 (elements 0..3755, "),
        "{err}"
    );
    assert!(err.contains("past the end of the file"), "{err}");
    assert_eq!(err.lines().count(), 1);
    let err = x.read_rows(all).unwrap_err().to_string();
    assert!(
        err.contains("/X/indptr: chunk 0 (elements 0..2001, "),
        "{err}"
    );
    assert!(err.contains("past the end of the file"), "{err}");
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn an_unknown_filter_is_one_line_naming_file_and_element() {
    let Some(fx) = fixtures() else { return };
    let err = failing_preprocess("gzip", |p| {
        let code = "import sys, h5py, hdf5plugin\n\
                    with h5py.File(sys.argv[1], 'r+') as f:\n\
                    \x20   d = f['X/data'][()]\n\
                    \x20   del f['X/data']\n\
                    \x20   f.create_dataset('X/data', data=d, **hdf5plugin.LZ4())\n";
        let ok = Command::new(&fx.py)
            .args(["-c", code, p.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(ok.success());
    });
    assert!(err.contains("/X/data"), "{err}");
    assert!(err.contains("32004"), "{err}");
}
