//! `scoop pca` against scanpy 1.11's `sc.pp.pca` on dask-backed sparse input (fixtures from
//! tests/python/make_pca_fixtures.py), the Zarr copy read back by zarr-python and dask, and the
//! error paths.

mod common;

use common::scoop_fails as fails;

use std::path::{Path, PathBuf};

use scoop::io::{Element, H5adReader};
use serde_json::Value;

fn fixtures() -> PathBuf {
    common::root().join("tests/fixtures/pca")
}

fn scenario(name: &str) -> (String, usize) {
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("scenarios.json")).unwrap())
            .unwrap();
    let spec = &s[name];
    (
        spec["input"].as_str().unwrap().to_string(),
        spec["n_comps"].as_u64().unwrap() as usize,
    )
}

/// A dense 2-D or 1-D array element as (shape, f64 values).
fn array(f: &H5adReader, group: &str, key: &str) -> (Vec<usize>, Vec<f64>) {
    match f.element(group, key).unwrap() {
        Element::Array(a) => (a.shape.clone(), a.data.to_f64()),
        other => panic!("{group}/{key}: not an array: {other:?}"),
    }
}

fn uns_pca(f: &H5adReader, key: &str) -> Vec<f64> {
    match f.element("uns", "pca").unwrap().get(key) {
        Some(Element::Array(a)) => a.data.to_f64(),
        other => panic!("uns/pca/{key}: {other:?}"),
    }
}

fn column(m: &[f64], n_cols: usize, c: usize) -> Vec<f64> {
    m.iter().skip(c).step_by(n_cols).copied().collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn run_pca(input: &Path, out: &Path, n_comps: usize, extra: &[&str]) {
    let n = n_comps.to_string();
    let mut args = vec![
        "-q",
        "pca",
        input.to_str().unwrap(),
        "--n-comps",
        &n,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = common::scoop(&args);
    assert!(
        o.status.success(),
        "scoop {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Compares scoop's output with scanpy's on the top `top` components.
fn check_parity(name: &str, top: usize, extra: &[&str]) {
    let (input, k) = scenario(name);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pca.h5ad");
    run_pca(
        &fixtures().join(format!("inputs/{input}.h5ad")),
        &out,
        k,
        extra,
    );
    let want = H5adReader::open(&fixtures().join(format!("{name}.h5ad"))).unwrap();
    let got = H5adReader::open(&out).unwrap();
    assert_eq!(
        got.obs().unwrap().index,
        want.obs().unwrap().index,
        "obs names"
    );
    assert_eq!(
        got.var().unwrap().index,
        want.var().unwrap().index,
        "var names"
    );
    // X is the input's, copied unchanged (as scanpy's output holds it).
    let input_x = H5adReader::open(&fixtures().join(format!("inputs/{input}.h5ad")))
        .unwrap()
        .x()
        .unwrap();
    let got_x = got.x().unwrap();
    assert_eq!(got_x.info().dtype, input_x.info().dtype, "X dtype");
    assert_eq!(
        got_x.read_rows(0..got_x.shape().0).unwrap(),
        input_x.read_rows(0..input_x.shape().0).unwrap(),
        "X is the input's"
    );

    let (wv, gv) = (uns_pca(&want, "variance"), uns_pca(&got, "variance"));
    let (wr, gr) = (
        uns_pca(&want, "variance_ratio"),
        uns_pca(&got, "variance_ratio"),
    );
    assert_eq!(gv.len(), k);
    assert_eq!(gr.len(), k);
    for i in 0..top {
        let rv = (gv[i] - wv[i]).abs() / wv[i].abs();
        let rr = (gr[i] - wr[i]).abs() / wr[i].abs();
        assert!(rv < 1e-4, "{name}: variance {i}: {} vs {}", gv[i], wv[i]);
        assert!(
            rr < 1e-4,
            "{name}: variance_ratio {i}: {} vs {}",
            gr[i],
            wr[i]
        );
    }
    assert!(gv.windows(2).all(|w| w[0] >= w[1]), "descending variances");

    let (ws, wpcs) = array(&want, "varm", "PCs");
    let (gs, gpcs) = array(&got, "varm", "PCs");
    assert_eq!(gs, ws, "varm/PCs shape");
    let (wxs, wx) = array(&want, "obsm", "X_pca");
    let (gxs, gx) = array(&got, "obsm", "X_pca");
    assert_eq!(gxs, wxs, "obsm/X_pca shape");
    for c in 0..top {
        let (a, b) = (column(&gpcs, k, c), column(&wpcs, k, c));
        let cos = dot(&a, &b) / (dot(&a, &a) * dot(&b, &b)).sqrt();
        assert!(
            cos.abs() > 0.9999,
            "{name}: component {c}: |cos| = {}",
            cos.abs()
        );
        // scoop's sign convention: the entry of largest magnitude is positive.
        let big = a
            .iter()
            .fold(0.0f64, |m, &x| if x.abs() > m.abs() { x } else { m });
        assert!(big > 0.0, "{name}: component {c} sign convention");
        let sign = cos.signum();
        let (xa, xb) = (column(&gx, k, c), column(&wx, k, c));
        let diff: f64 = xa
            .iter()
            .zip(&xb)
            .map(|(p, q)| (p - sign * q).powi(2))
            .sum();
        let rel = (diff / dot(&xb, &xb)).sqrt();
        assert!(
            rel < 1e-3,
            "{name}: X_pca column {c}: relative error {rel:.2e}"
        );
    }
    match got.element("uns", "pca").unwrap().get("params") {
        Some(p @ Element::Dict(_)) => {
            assert!(matches!(p.get("mask_var"), Some(Element::Null)));
            assert!(p.get("zero_center").is_some() && p.get("use_highly_variable").is_some());
        }
        other => panic!("uns/pca/params: {other:?}"),
    }
}

#[test]
fn merged_matrix_matches_scanpy() {
    // Chunks of 97 rows: many partial chunks, none aligned to scanpy's dask chunks.
    check_parity("merged_60", 50, &["--chunk-rows", "97"]);
}

#[test]
fn subspace_solver_matches_scanpy() {
    check_parity("merged_60", 50, &["--eigen", "subspace"]);
}

#[test]
fn n_comps_equal_to_min_dimension_matches_scanpy() {
    // 30 cells x 45 genes (float64, int64 indices), n_comps = 30: rank ≤ 29, so the last
    // eigenvalues are ~0 and their vectors arbitrary; compare the top 25.
    check_parity("small_full_rank", 25, &["--chunk-rows", "7"]);
}

#[test]
fn zarr_copy_reads_back_in_zarr_and_dask() {
    let Some(py) = common::python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pca.h5ad");
    let zarr = dir.path().join("X_pca.zarr");
    // 2,400 rows in chunks of 500: the last chunk is partial (400 rows).
    run_pca(
        &fixtures().join("inputs/merged.h5ad"),
        &out,
        20,
        &["--zarr", zarr.to_str().unwrap(), "--chunk-rows", "500"],
    );
    let script = r#"
import sys, anndata as ad, numpy as np, zarr, dask.array as da
h5, zp = sys.argv[1], sys.argv[2]
x = ad.read_h5ad(h5).obsm["X_pca"]
z = zarr.open(zp, mode="r")
assert z.shape == x.shape and z.chunks == (500, x.shape[1]), (z.shape, z.chunks)
assert z.dtype == np.float32
assert np.array_equal(z[:], x)
d = da.from_zarr(zp)
assert d.chunks[0] == (500, 500, 500, 500, 400), d.chunks
assert np.array_equal(d.compute(), x)
print("ok", x.shape)
"#;
    let o = std::process::Command::new(&py)
        .args(["-c", script, out.to_str().unwrap(), zarr.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "zarr/dask read-back failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("ok (2400, 20)"));
}

#[test]
fn bad_requests_are_clear_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixtures().join("inputs/small_f64.h5ad");
    let input = input.to_str().unwrap();
    let out = dir.path().join("o.h5ad");
    let o = out.to_str().unwrap();
    let zarr = dir.path().join("o.zarr");
    let z = zarr.to_str().unwrap();

    let e = fails(&[
        "-q",
        "pca",
        input,
        "--n-comps",
        "31",
        "--out",
        o,
        "--zarr",
        z,
    ]);
    assert!(
        e.contains("small_f64.h5ad") && e.contains("min(n_cells = 30, n_genes = 45) = 30"),
        "{e}"
    );
    let e = fails(&["-q", "pca", input, "--n-comps", "0", "--out", o]);
    assert!(e.contains("--n-comps 0"), "{e}");
    let e = fails(&["-q", "pca", "/nonexistent/x.h5ad", "--out", o]);
    assert!(e.contains("/nonexistent/x.h5ad"), "{e}");
    let e = fails(&["-q", "pca", input, "--n-comps", "5", "--out", input]);
    assert!(e.contains("is the input"), "{e}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "nothing written: {left:?}");

    // An existing output is kept without --force, replaced with it.
    std::fs::write(&out, b"keep me").unwrap();
    let e = fails(&["-q", "pca", input, "--n-comps", "5", "--out", o]);
    assert!(e.contains("o.h5ad") && e.contains("--force"), "{e}");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    std::fs::remove_file(&out).unwrap();
    std::fs::create_dir(&zarr).unwrap();
    std::fs::write(zarr.join("old"), b"old").unwrap();
    let with_zarr = [
        "-q",
        "pca",
        input,
        "--n-comps",
        "5",
        "--out",
        o,
        "--zarr",
        z,
    ];
    let e = fails(&with_zarr);
    assert!(e.contains("o.zarr") && e.contains("--force"), "{e}");
    assert!(!out.exists() && zarr.join("old").is_file());
    let ok = common::scoop(&[&with_zarr[..], &["--force"]].concat());
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        array(&H5adReader::open(&out).unwrap(), "obsm", "X_pca").0,
        vec![30, 5]
    );
    assert!(zarr.join(".zarray").is_file() && !zarr.join("old").exists());
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["o.h5ad", "o.zarr"], "no temporaries left");
}
