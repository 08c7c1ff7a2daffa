//! Files written by anndata load in scoop, and files written by scoop load in anndata
//! (`read_h5ad` and `read_elem_lazy`), with identical values, over several encodings.

mod common;

use scoop::io::{
    write_element, Categories, Codec, Column, ColumnValues, CsrChunk, CsrWriteOptions, CsrWriter,
    DataFrame, DenseArray, Element, NumVec, OutputFile, RowIds,
};

#[test]
fn anndata_files_load_in_scoop() {
    for (stack, py) in common::stacks() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let cases = common::interop(&py, &["write", d]);
        let cases: Vec<&str> = cases.lines().collect();
        assert!(
            cases.len() >= 6 && cases.contains(&"pandas3_defaults"),
            "{stack}: expected several encodings, got {cases:?}"
        );
        for case in cases {
            let h5ad = dir.path().join(format!("{case}.h5ad"));
            let ours = dir.path().join(format!("{case}.scoop.json"));
            std::fs::write(&ours, common::dump_file(&h5ad).to_string()).unwrap();
            let theirs = dir.path().join(format!("{case}.json"));
            eprintln!("{stack}: {case}");
            common::interop(
                &py,
                &["compare", theirs.to_str().unwrap(), ours.to_str().unwrap()],
            );
        }
    }
}

fn cat(codes: Vec<i32>, cats: &[&str], ordered: bool) -> ColumnValues {
    ColumnValues::Categorical {
        codes,
        categories: Categories::Strings(cats.iter().map(|s| s.to_string()).collect()),
        ordered,
    }
}

/// A small AnnData with every column encoding scoop writes.
fn sample(
    n: usize,
    g: usize,
) -> (
    DataFrame,
    DataFrame,
    CsrChunk,
    Vec<(String, Element)>,
    Element,
) {
    let mut obs = DataFrame::with_index((0..n).map(|i| format!("cell-{i}")).collect());
    obs.columns = vec![
        Column {
            name: "cell_line".into(),
            values: cat(
                (0..n).map(|i| (i % 3) as i32).collect(),
                &["A549", "HepG2", "K562"],
                false,
            ),
        },
        Column {
            name: "grade".into(),
            values: cat(
                (0..n)
                    .map(|i| if i % 4 == 0 { -1 } else { (i % 2) as i32 })
                    .collect(),
                &["lo", "hi"],
                true,
            ),
        },
        Column {
            name: "name".into(),
            values: ColumnValues::Strings((0..n).map(|i| format!("näme {i}")).collect()),
        },
        Column {
            name: "count".into(),
            values: ColumnValues::Array(NumVec::I64((0..n).map(|i| i as i64 * 7 - 3).collect())),
        },
        Column {
            name: "small".into(),
            values: ColumnValues::Array(NumVec::I32((0..n).map(|i| i as i32).collect())),
        },
        Column {
            name: "frac".into(),
            values: ColumnValues::Array(NumVec::F64(
                (0..n)
                    .map(|i| if i == 1 { f64::NAN } else { i as f64 / 3.0 })
                    .collect(),
            )),
        },
        Column {
            name: "f32".into(),
            values: ColumnValues::Array(NumVec::F32((0..n).map(|i| i as f32 * 0.5).collect())),
        },
        Column {
            name: "flag".into(),
            values: ColumnValues::Array(NumVec::Bool((0..n).map(|i| i % 3 == 0).collect())),
        },
        Column {
            name: "maybe_int".into(),
            values: ColumnValues::NullableInt {
                values: NumVec::I64(
                    (0..n)
                        .map(|i| if i % 5 == 0 { 0 } else { i as i64 })
                        .collect(),
                ),
                mask: (0..n).map(|i| i % 5 == 0).collect(),
            },
        },
        Column {
            name: "maybe_bool".into(),
            values: ColumnValues::NullableBool {
                values: (0..n).map(|i| i % 2 == 1 && i % 7 != 0).collect(),
                mask: (0..n).map(|i| i % 7 == 0).collect(),
            },
        },
    ];
    let mut var = DataFrame::with_index((0..g).map(|j| format!("ENSG{j:05}")).collect());
    var.set_column(
        "gene_symbol",
        ColumnValues::Strings((0..g).map(|j| format!("G{j}")).collect()),
    );
    let mut x = CsrChunk::empty(g);
    x.rows = RowIds::Range(0..n as u64);
    for i in 0..n {
        if i != 2 {
            for j in (i % 3..g).step_by(3 + i % 4) {
                x.indices.push(j as u32);
                x.data.push(((i * 31 + j * 17) % 11) as f32 + 0.5);
            }
        }
        x.indptr.push(x.data.len());
    }
    let obsm = vec![
        (
            "X_pca".to_string(),
            Element::Array(DenseArray::new(
                vec![n, 3],
                NumVec::F32((0..n * 3).map(|k| k as f32 * 0.25 - 2.0).collect()),
            )),
        ),
        (
            "X_umap".to_string(),
            Element::Array(DenseArray::new(
                vec![n, 2],
                NumVec::F64((0..n * 2).map(|k| (k as f64).sin()).collect()),
            )),
        ),
    ];
    let uns = Element::Dict(vec![
        (
            "pca".into(),
            Element::Dict(vec![
                (
                    "variance".into(),
                    Element::Array(DenseArray::new(vec![3], NumVec::F32(vec![3.0, 2.0, 1.0]))),
                ),
                (
                    "params".into(),
                    Element::Dict(vec![
                        (
                            "zero_center".into(),
                            Element::Scalar(NumVec::Bool(vec![true])),
                        ),
                        ("n_comps".into(), Element::Scalar(NumVec::I64(vec![3]))),
                        ("tol".into(), Element::Scalar(NumVec::F64(vec![0.125]))),
                        ("flavor".into(), Element::String("seurat".into())),
                    ]),
                ),
            ]),
        ),
        (
            "colors".into(),
            Element::StringArray {
                shape: vec![2],
                values: vec!["#1f77b4".into(), "#ff7f0e".into()],
            },
        ),
        (
            "grid".into(),
            Element::Array(DenseArray::new(
                vec![2, 3],
                NumVec::I64(vec![1, 2, 3, 4, 5, 6]),
            )),
        ),
    ]);
    (obs, var, x, obsm, uns)
}

fn write_sample(
    path: &std::path::Path,
    opts: CsrWriteOptions,
    chunk_rows: usize,
) -> serde_json::Value {
    let (obs, var, x, obsm, uns) = sample(41, 19);
    let out = OutputFile::create(path, &[], false).unwrap();
    obs.write(out.root(), "obs").unwrap();
    var.write(out.root(), "var").unwrap();
    let mut w = CsrWriter::create(out.root(), "X", var.len(), opts).unwrap();
    let mut start = 0;
    while start < obs.len() {
        let end = (start + chunk_rows).min(obs.len());
        let mut c = CsrChunk::empty(var.len());
        for i in start..end {
            let (idx, val) = x.row(i);
            c.indices.extend_from_slice(idx);
            c.data.extend_from_slice(val);
            c.indptr.push(c.data.len());
        }
        w.append(&c).unwrap();
        start = end;
    }
    assert_eq!(w.finish().unwrap(), (41, x.nnz() as u64));
    let g = out.dict("obsm").unwrap();
    for (k, v) in &obsm {
        write_element(&g, k, v).unwrap();
    }
    let n = obs.len();
    let mut dist = CsrChunk::empty(n);
    for i in 0..n {
        let mut cols = [(i + 1) % n, (i + 5) % n];
        cols.sort_unstable();
        for j in cols {
            dist.indices.push(j as u32);
            dist.data.push((i + j) as f32 * 0.1);
        }
        dist.indptr.push(dist.indices.len());
    }
    let g = out.dict("obsp").unwrap();
    write_element(&g, "distances", &Element::Csr(dist.clone())).unwrap();
    let Element::Dict(items) = &uns else {
        unreachable!()
    };
    let g = out.dict("uns").unwrap();
    for (k, v) in items {
        write_element(&g, k, v).unwrap();
    }
    out.commit().unwrap();
    common::dump(&obs, &var, &x, &obsm, &[("distances".into(), dist)], &uns)
}

#[test]
fn scoop_files_load_in_anndata() {
    for (stack, py) in common::stacks() {
        eprintln!("{stack}: {}", py.display());
        scoop_files_load_in(&py);
    }
}

fn scoop_files_load_in(py: &std::path::Path) {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("plain", CsrWriteOptions::default(), 10),
        (
            "gzip",
            CsrWriteOptions {
                compression: Codec::Gzip(4),
                nnz_hint: None,
            },
            7,
        ),
        // lzf, like gzip, loads in h5py without hdf5plugin.
        (
            "lzf",
            CsrWriteOptions {
                compression: Codec::Lzf,
                nnz_hint: None,
            },
            5,
        ),
        (
            "wide_indptr",
            CsrWriteOptions {
                compression: Codec::None,
                nnz_hint: Some(u64::MAX),
            },
            41,
        ),
    ];
    for (name, opts, chunk_rows) in cases {
        let h5ad = dir.path().join(format!("{name}.h5ad"));
        let expected = write_sample(&h5ad, opts, chunk_rows);
        let exp_path = dir.path().join(format!("{name}.expected.json"));
        std::fs::write(&exp_path, expected.to_string()).unwrap();
        let got = dir.path().join(format!("{name}.anndata.json"));
        common::interop(py, &["dump", h5ad.to_str().unwrap(), got.to_str().unwrap()]);
        common::interop(
            py,
            &["compare", exp_path.to_str().unwrap(), got.to_str().unwrap()],
        );
    }
}

/// `scoop concat` gives what `concat_on_disk` gives on plates whose obs disagree (nullable
/// strings with NA, a categorical in place of strings, category sets that differ, a column some
/// plates lack, int and float scores) and whose genes overlap in part, inner and outer.
#[test]
fn concat_of_disagreeing_plates_matches_concat_on_disk() {
    for (stack, py) in common::stacks() {
        let dir = tempfile::tempdir().unwrap();
        let listed = common::interop(&py, &["write-concat", dir.path().to_str().unwrap()]);
        let inputs: Vec<&str> = listed.lines().collect();
        assert_eq!(inputs.len(), 3, "{stack}: {listed}");
        for join in ["inner", "outer"] {
            let theirs = dir.path().join(format!("anndata_{join}.h5ad"));
            let ours = dir.path().join(format!("scoop_{join}.h5ad"));
            let join_arg = format!("--join={join}");
            let mut args = vec!["concat", &join_arg, theirs.to_str().unwrap()];
            args.extend(&inputs);
            common::interop(&py, &args);
            let mut args = vec![
                "concat",
                "-q",
                "--join",
                join,
                "--out",
                ours.to_str().unwrap(),
            ];
            args.extend(&inputs);
            args.extend(["--chunk-rows", "4"]);
            let out = common::scoop(&args);
            assert!(
                out.status.success(),
                "{stack} {join}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
            common::interop(
                &py,
                &["dump", theirs.to_str().unwrap(), a.to_str().unwrap()],
            );
            common::interop(&py, &["dump", ours.to_str().unwrap(), b.to_str().unwrap()]);
            eprintln!("{stack}: {join}");
            common::interop(&py, &["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
        }
    }
}

/// A file in anndata ≤ 0.7's layout (categoricals as codes referring into `__categories`) fails
/// with one line that names the file and column and says how to rewrite it, leaving no output.
#[test]
fn anndata_07_categoricals_are_one_clear_error() {
    let Some(py) = common::python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let old = common::interop(&py, &["write-old", dir.path().to_str().unwrap()]);
    let old = old.trim();
    let out = dir.path().join("out.h5ad");
    let err = common::scoop_fails(&["concat", old, "--out", out.to_str().unwrap(), "-q"]);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(old)
            && err.contains("/obs/kind")
            && err.contains("anndata ≤ 0.7")
            && err.contains("write_h5ad"),
        "{err}"
    );
    assert!(!out.exists());
}

/// A file anndata writes with every matrix as csc_matrix (gzip; X, a layer, raw/X, an obsm and
/// an obsp entry; a column with its rows unsorted, an empty row and column): `scoop convert`
/// writes each as the csr_matrix scipy's `tocsr` gives, array for array and in its dtype, under
/// small budgets (many column blocks and row bands) and with each codec; obs, var and uns are
/// unchanged; commands that stream rows refuse the CSC input with one line naming `convert`.
/// With `--compression`, CSR matrices are rewritten too (zstd, then gzip: the same arrays).
#[test]
fn csc_files_convert_to_the_csr_anndata_reads() {
    for (stack, py) in common::stacks() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        common::interop(&py, &["write-csc", d.to_str().unwrap()]);
        let csc = d.join("csc.h5ad");
        let expected = d.join("csr.h5ad");
        let refused = common::scoop(&[
            "preprocess",
            "-q",
            csc.to_str().unwrap(),
            "--min-plates",
            "1",
            "--out-dir",
            d.join("pp").to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success(),
            "{stack}: preprocess took a CSC X"
        );
        assert!(
            err.contains("/X: is stored as csc_matrix") && err.contains("scoop convert"),
            "{stack}: {err}"
        );
        assert!(!d.join("pp").exists(), "{stack}: output left behind");
        // `scoop convert ARGS` succeeds; its summary line.
        let convert = |args: &[&str]| -> String {
            let run = common::scoop(&[&["convert"], args].concat());
            assert!(
                run.status.success(),
                "{stack} {args:?}: {}",
                String::from_utf8_lossy(&run.stderr)
            );
            String::from_utf8_lossy(&run.stdout).into_owned()
        };
        // anndata reads every matrix of `path` as the exact arrays of `tocsr()`.
        let check_csr = |path: &std::path::Path| {
            let checked = common::interop(
                &py,
                &[
                    "check-csr",
                    path.to_str().unwrap(),
                    expected.to_str().unwrap(),
                ],
            );
            assert!(checked.contains("5 matrices equal"), "{stack}: {checked}");
        };
        let inspect = |path: &std::path::Path| {
            let out = common::scoop(&["inspect", path.to_str().unwrap()]);
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        for (codec, budget) in [("none", "2000000"), ("gzip", "300"), ("lzf", "57")] {
            let out = d.join(format!("conv_{codec}.h5ad"));
            let said = convert(&[
                "-q",
                csc.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--compression",
                codec,
                "--chunk-values",
                budget,
            ]);
            assert!(
                said.contains("rewrote X, layers/counts, obsm/X_sparse, obsp/graph, raw/X"),
                "{stack} {codec}: {said}"
            );
            check_csr(&out);
            assert!(inspect(&out).contains("X: csr_matrix float32"));
        }
        // --compression rewrites the CSR matrices too: zstd, then back to gzip, which anndata
        // reads without hdf5plugin, equal array for array.
        let (zstd, gzip) = (d.join("zstd.h5ad"), d.join("gzip.h5ad"));
        for (from, to, codec) in [
            (d.join("conv_lzf.h5ad"), &zstd, "zstd"),
            (zstd.clone(), &gzip, "gzip"),
        ] {
            let said = convert(&[
                from.to_str().unwrap(),
                "--out",
                to.to_str().unwrap(),
                "--compression",
                codec,
            ]);
            assert!(
                said.contains("recompressed X, layers/counts, raw/X"),
                "{stack} {codec}: {said}"
            );
            let said = inspect(to);
            assert!(
                said.contains(&format!("compression {codec}")),
                "{stack}: {said}"
            );
        }
        check_csr(&gzip);
        // No staging directory or scratch file is left beside the outputs.
        let left: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{stack}: {left:?}");
    }
}
