//! `scoop preprocess` against fixtures produced by real scanpy 1.11 through the dask path
//! (tests/python/make_preprocess_fixtures.py), plus its edge cases and errors.

mod common;

use common::scoop_fails as fails;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use scoop::io::{ColumnValues, CsrChunk, DataFrame, Element, H5adReader, NumVec};
use serde_json::Value;

fn fixtures() -> PathBuf {
    common::root().join("tests/fixtures/preprocess")
}

struct Loaded {
    obs: DataFrame,
    var: DataFrame,
    x: CsrChunk,
}

fn load(path: &Path) -> Loaded {
    let f = H5adReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (n, _) = f.shape().unwrap();
    Loaded {
        obs: f.obs().unwrap(),
        var: f.var().unwrap(),
        x: f.x().unwrap().read_rows(0..n).unwrap(),
    }
}

fn floats(df: &DataFrame, name: &str) -> Vec<f64> {
    match df.column(name) {
        Some(ColumnValues::Array(v)) => v.to_f64(),
        other => panic!("column {name}: {other:?}"),
    }
}

fn bools(df: &DataFrame, name: &str) -> Vec<bool> {
    match df.column(name) {
        Some(ColumnValues::Array(NumVec::Bool(v))) => v.clone(),
        other => panic!("column {name}: {other:?}"),
    }
}

fn fixture_target(path: &Path) -> f64 {
    let f = H5adReader::open(path).unwrap();
    match f.element("uns", "fixture").unwrap().get("target_sum") {
        Some(Element::Scalar(v)) => v.to_f64()[0],
        other => panic!("target_sum: {other:?}"),
    }
}

/// Relative difference with a floor on the denominator (log-scale values cross zero).
fn rel(a: f64, b: f64, floor: f64) -> f64 {
    if a.is_nan() && b.is_nan() {
        return 0.0;
    }
    (a - b).abs() / b.abs().max(floor)
}

fn run_scenario(name: &str, spec: &Value) {
    let out = tempfile::tempdir().unwrap();
    let plates: Vec<String> = spec["plates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    let flavor = spec["flavor"].as_str().unwrap();
    let n_top = spec["n_top_genes"].as_u64().unwrap().to_string();
    let min_plates = spec["min_plates"].as_u64().unwrap();
    let inputs: Vec<String> = plates
        .iter()
        .map(|p| {
            fixtures()
                .join(format!("inputs/{p}.h5ad"))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut args: Vec<String> = vec!["preprocess".into()];
    args.extend(inputs);
    args.extend(
        [
            "--out-dir",
            out.path().to_str().unwrap(),
            "--flavor",
            flavor,
            "--n-top-genes",
            &n_top,
            "--min-plates",
            &min_plates.to_string(),
            "--chunk-rows",
            "37",
            "-q",
        ]
        .map(String::from),
    );
    if let Some(f) = spec["filter"].as_str() {
        args.extend(["--filter".to_string(), f.to_string()]);
    }
    if let Some(t) = spec["target_sum"].as_f64() {
        args.extend(["--target-sum".to_string(), t.to_string()]);
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let res = common::scoop(&argv);
    assert!(
        res.status.success(),
        "{name}: scoop failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("preprocess.json")).unwrap())
            .unwrap();

    // Expected selection from scanpy's per-plate highly_variable columns.
    let expected: Vec<Loaded> = plates
        .iter()
        .map(|p| load(&fixtures().join(format!("{name}/{p}.h5ad"))))
        .collect();
    let n_genes = expected[0].var.len();
    let mut count = vec![0u64; n_genes];
    for e in &expected {
        for (c, h) in count.iter_mut().zip(bools(&e.var, "highly_variable")) {
            *c += h as u64;
        }
    }
    let want_genes: Vec<&String> = expected[0]
        .var
        .index
        .iter()
        .zip(&count)
        .filter(|(_, &c)| c >= min_plates)
        .map(|(g, _)| g)
        .collect();
    let tsv = std::fs::read_to_string(out.path().join("genes.tsv")).unwrap();
    let got_genes: Vec<String> = tsv
        .lines()
        .skip(1)
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
    let v3 = flavor == "seurat_v3";
    // seurat_v3 may differ at loess ties: at most 0.5% of genes (at least one).
    let tolerated = if v3 { (n_genes / 200).max(1) } else { 0 };
    let differing = want_genes.len().abs_diff(got_genes.len())
        + want_genes.iter().filter(|g| !got_genes.contains(g)).count();
    assert!(
        differing <= tolerated,
        "{name}: selected genes differ from scanpy's in {differing} genes"
    );

    for (k, (plate, exp)) in plates.iter().zip(&expected).enumerate() {
        let ctx = format!("{name}/{plate}");
        let got = load(&out.path().join(format!("{plate}_preprocessed.h5ad")));
        // Cells: the filter keeps scanpy's rows in order.
        assert_eq!(got.obs.index, exp.obs.index, "{ctx}: kept cells");
        assert_eq!(
            got.obs.columns.iter().map(|c| &c.name).collect::<Vec<_>>(),
            exp.obs.columns.iter().map(|c| &c.name).collect::<Vec<_>>(),
            "{ctx}: obs columns"
        );
        // Target sum.
        let t = report["plates"][k]["target_sum"].as_f64().unwrap();
        let want_t = fixture_target(&fixtures().join(format!("{name}/{plate}.h5ad")));
        assert!(
            rel(t, want_t, 1e-30) < 1e-6,
            "{ctx}: target {t} vs {want_t}"
        );
        assert_eq!(
            report["plates"][k]["cells_kept"].as_u64().unwrap() as usize,
            exp.obs.len()
        );

        // var: per-gene statistics on the written genes.
        let pos: HashMap<&str, usize> = exp
            .var
            .index
            .iter()
            .enumerate()
            .map(|(i, g)| (g.as_str(), i))
            .collect();
        let rows: Vec<usize> = got.var.index.iter().map(|g| pos[g.as_str()]).collect();
        let stat_cols: &[(&str, f64, f64)] = if v3 {
            &[
                ("means", 1e-5, 1e-30),
                ("variances", 1e-5, 1e-30),
                ("variances_norm", 1e-5, 1e-30),
            ]
        } else {
            // seurat's dispersions are logarithms that cross 0 (dispersion 1), where relative
            // error is undefined: compare relative to max(|v|, 0.1), i.e. 1e-6 absolute there.
            // scanpy's own float32 values scatter by ~1e-7 absolute around the exact ones.
            &[
                ("means", 1e-5, 1e-30),
                ("dispersions", 1e-5, 1e-1),
                ("dispersions_norm", 1e-4, 1.0),
            ]
        };
        for &(col, tol, floor) in stat_cols {
            let (a, b) = (floats(&got.var, col), floats(&exp.var, col));
            let worst = rows
                .iter()
                .enumerate()
                .map(|(i, &j)| rel(a[i], b[j], floor))
                .fold(0.0, f64::max);
            eprintln!("{ctx}: var[{col}] max rel diff {worst:.2e}");
            assert!(worst <= tol, "{ctx}: var[{col}] differs by {worst:e} (rel)");
        }
        let hv_got = bools(&got.var, "highly_variable");
        let hv_exp = bools(&exp.var, "highly_variable");
        let hv_diff = rows
            .iter()
            .enumerate()
            .filter(|(i, &j)| hv_got[*i] != hv_exp[j])
            .count();
        assert!(
            hv_diff <= tolerated,
            "{ctx}: highly_variable differs in {hv_diff} genes"
        );

        // X: same stored entries, values within 1e-6 relative.
        assert_eq!(got.x.n_rows(), exp.x.n_rows(), "{ctx}: rows");
        let mut worst = 0f64;
        for i in 0..exp.x.n_rows() {
            let (ei, ev) = exp.x.row(i);
            let want: Vec<(u32, f32)> = ei
                .iter()
                .zip(ev)
                .filter_map(|(&j, &v)| {
                    got.var
                        .index
                        .iter()
                        .position(|g| *g == exp.var.index[j as usize])
                        .map(|new| (new as u32, v))
                })
                .collect();
            let (gi, gv) = got.x.row(i);
            assert_eq!(
                gi,
                want.iter().map(|w| w.0).collect::<Vec<_>>(),
                "{ctx}: row {i} columns"
            );
            for (&a, &(_, b)) in gv.iter().zip(&want) {
                worst = worst.max(rel(a as f64, b as f64, 1e-30));
            }
        }
        eprintln!("{ctx}: X max rel diff {worst:.2e}, highly_variable differs in {hv_diff}");
        assert!(worst <= 1e-6, "{ctx}: X differs by {worst:e} (rel)");
    }
}

fn scenarios() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(fixtures().join("scenarios.json")).unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

#[test]
fn seurat_with_filter_matches_scanpy() {
    run_scenario("seurat_filtered", &scenarios()["seurat_filtered"]);
}

#[test]
fn cell_ranger_without_filter_matches_scanpy() {
    run_scenario("cell_ranger_all", &scenarios()["cell_ranger_all"]);
}

#[test]
fn seurat_v3_matches_scanpy() {
    run_scenario("seurat_v3_filtered", &scenarios()["seurat_v3_filtered"]);
}

/// float32 counts with int64 indptr/indices, a fixed target sum, a bool filter, one plate.
#[test]
fn float_counts_int64_indptr_single_plate_match_scanpy() {
    run_scenario("seurat_f32_single", &scenarios()["seurat_f32_single"]);
}

/// float64 counts, a numeric filter, cell_ranger, one plate.
#[test]
fn float64_counts_numeric_filter_match_scanpy() {
    run_scenario(
        "cell_ranger_f64_single",
        &scenarios()["cell_ranger_f64_single"],
    );
}

/// The committed fixtures are what the committed scripts produce with real scanpy and skmisc.
/// The fixture scripts regenerate the committed fixtures under both Python stacks, within the
/// float32 bounds today's numpy/dask/scanpy releases need (tests/python/fixture_main.py).
#[test]
fn fixture_script_reproduces_fixtures() {
    for (stack, py) in common::stacks() {
        if !common::py_has(&py, "scanpy, skmisc") {
            if std::env::var_os("CI").is_some() {
                panic!("CI: the {stack} Python stack lacks scanpy/scikit-misc (tests/python/requirements*.txt)");
            }
            eprintln!("SKIP: no scanpy + scikit-misc in {}", py.display());
            continue;
        }
        for script in [
            "make_preprocess_fixtures.py",
            "make_loess_fixtures.py",
            "make_pca_fixtures.py",
            "make_neighbors_fixtures.py",
        ] {
            let out = std::process::Command::new(&py)
                .arg(common::root().join("tests/python").join(script))
                .arg("--check")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{stack}: {script}: fixtures do not reproduce:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

fn input(p: &str) -> String {
    fixtures()
        .join(format!("inputs/{p}.h5ad"))
        .to_string_lossy()
        .into_owned()
}

#[test]
fn bad_filters_and_options_are_clear_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("out");
    let ds = d.to_str().unwrap();
    let a = input("plate_a");
    // Each bad filter fails naming the plate, with what does exist.
    for (filter, needles) in [
        // A column that does not exist: the message lists the columns.
        ("nope=1", &["pass_filter", "nope"][..]),
        // A value no cell has: every cell filtered out, and the categories are listed.
        ("pass_filter=none", &["full", "partial"][..]),
        // A value that exists in a numeric column but no cell of the plate has.
        ("batch=7", &["no cell matches"][..]),
    ] {
        let e = fails(&[
            "preprocess",
            &a,
            "--out-dir",
            ds,
            "--filter",
            filter,
            "-q",
            "--min-plates",
            "1",
        ]);
        assert!(e.contains("plate_a.h5ad"), "{filter}: {e}");
        for n in needles {
            assert!(e.contains(n), "{filter}: {e} lacks {n:?}");
        }
    }
    // --min-plates larger than the number of plates.
    let e = fails(&["preprocess", &a, "--out-dir", ds, "-q"]);
    assert!(e.contains("--min-plates 3"), "{e}");
    // Nothing was written.
    let written: Vec<_> = std::fs::read_dir(&d)
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(written.is_empty(), "{written:?}");

    // An existing output is not overwritten without --force.
    let ok = common::scoop(&[
        "preprocess",
        &a,
        "--out-dir",
        ds,
        "--min-plates",
        "1",
        "--n-top-genes",
        "20",
        "-q",
    ]);
    assert!(ok.status.success());
    let e = fails(&["preprocess", &a, "--out-dir", ds, "--min-plates", "1", "-q"]);
    assert!(e.contains("--force"), "{e}");
    let ok = common::scoop(&[
        "preprocess",
        &a,
        "--out-dir",
        ds,
        "--min-plates",
        "1",
        "--n-top-genes",
        "20",
        "--force",
        "-q",
    ]);
    assert!(ok.status.success());
}

/// A zero-count cell is kept (divisor 1, all zeros), a never-expressed gene is never selected
/// and gets scanpy's statistics; the target sum ignores the zero cell.
#[test]
fn zero_count_cell_and_unexpressed_gene() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().to_str().unwrap();
    let ok = common::scoop(&[
        "preprocess",
        &input("plate_a"),
        "--out-dir",
        ds,
        "--min-plates",
        "1",
        "--n-top-genes",
        "199",
        "-q",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("preprocess.json")).unwrap())
            .unwrap();
    assert_eq!(report["plates"][0]["zero_count_cells"], 1);
    let got = load(&dir.path().join("plate_a_preprocessed.h5ad"));
    // Gene 0 is never expressed: NaN dispersion, never highly variable, so not written.
    assert!(!got.var.index.contains(&"ENSG00000000000".to_string()));
    assert_eq!(got.var.len(), 199);
    // Cell 3 has zero counts: present, empty row.
    let i = got.obs.index.iter().position(|c| c == "cell_11_3").unwrap();
    assert_eq!(got.x.row(i).0.len(), 0);
}
