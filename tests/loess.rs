//! `scoop::ops::loess` against scikit-misc's LOESS (the fit scanpy's seurat_v3 HVG uses).
//!
//! Fixtures come from `tests/python/make_loess_fixtures.py`. Cases with `"fitted": null`
//! are inputs skmisc's `fit()` refuses; they must be refused here too.

use scoop::ops::loess::{loess_fitted, LoessError};
use serde_json::Value;

fn cases() -> Vec<Value> {
    let root = std::env::var_os("SCOOP_ROOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    let path = root.join("tests/fixtures/loess/cases.json");
    let text = std::fs::read_to_string(path).expect("read loess fixture");
    match serde_json::from_str(&text).expect("parse loess fixture") {
        Value::Array(cases) => cases,
        other => panic!("fixture is not a list: {other}"),
    }
}

fn floats(case: &Value, key: &str) -> Vec<f64> {
    case[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is not a list"))
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect()
}

fn params(case: &Value) -> (String, f64, usize) {
    (
        case["name"].as_str().expect("name").to_string(),
        case["span"].as_f64().expect("span"),
        case["degree"].as_u64().expect("degree") as usize,
    )
}

#[test]
fn matches_skmisc_fitted_values() {
    let mut checked = 0;
    for case in cases().iter().filter(|c| !c["fitted"].is_null()) {
        let (name, span, degree) = params(case);
        let (x, y, expected) = (floats(case, "x"), floats(case, "y"), floats(case, "fitted"));
        let got = loess_fitted(&x, &y, span, degree)
            .unwrap_or_else(|e| panic!("{name}: unexpected error: {e}"));
        assert_eq!(got.len(), expected.len(), "{name}: length");
        let (mut worst_rel, mut worst_abs) = (0.0f64, 0.0f64);
        for (i, (&g, &e)) in got.iter().zip(&expected).enumerate() {
            let abs = (g - e).abs();
            let rel = abs / e.abs().max(f64::MIN_POSITIVE);
            assert!(
                abs <= 1e-10 || rel <= 1e-8,
                "{name}: point {i} (x = {}): got {g}, skmisc {e} (rel {rel:.2e})",
                x[i]
            );
            worst_abs = worst_abs.max(abs);
            if e.abs() >= 1e-6 {
                worst_rel = worst_rel.max(rel);
            }
        }
        println!(
            "{name}: n = {}, max relative error {worst_rel:.2e} (|fitted| >= 1e-6), max absolute error {worst_abs:.2e}",
            x.len()
        );
        checked += 1;
    }
    assert!(
        checked >= 8,
        "only {checked} fixture cases with fitted values"
    );
}

#[test]
fn rejects_what_skmisc_rejects() {
    let mut checked = 0;
    for case in cases().iter().filter(|c| c["fitted"].is_null()) {
        let (name, span, degree) = params(case);
        let (x, y) = (floats(case, "x"), floats(case, "y"));
        let skmisc = case["error"].as_str().unwrap_or("?");
        match loess_fitted(&x, &y, span, degree) {
            Err(e) => println!("{name}: skmisc {skmisc:?}; scoop: {e}"),
            Ok(_) => panic!("{name}: skmisc refuses this input ({skmisc}) but scoop fitted it"),
        }
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} rejected fixture cases");
}

#[test]
fn length_mismatch() {
    let err = loess_fitted(&[1.0, 2.0, 3.0], &[1.0, 2.0], 0.5, 2).unwrap_err();
    assert!(
        matches!(err, LoessError::LengthMismatch { x_len: 3, y_len: 2 }),
        "{err}"
    );
}

#[test]
fn non_finite_input() {
    let x: Vec<f64> = (0..50).map(f64::from).collect();
    let mut y = x.clone();
    y[7] = f64::NAN;
    let err = loess_fitted(&x, &y, 0.5, 2).unwrap_err();
    assert!(
        matches!(
            err,
            LoessError::NonFinite {
                array: "y",
                index: 7,
                ..
            }
        ),
        "{err}"
    );
    let mut x2 = x.clone();
    x2[3] = f64::INFINITY;
    let err = loess_fitted(&x2, &x, 0.5, 2).unwrap_err();
    assert!(
        matches!(
            err,
            LoessError::NonFinite {
                array: "x",
                index: 3,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn invalid_span_and_degree() {
    let x: Vec<f64> = (0..50).map(f64::from).collect();
    for span in [0.0, -0.3, 1.5, f64::NAN] {
        let err = loess_fitted(&x, &x, span, 2).unwrap_err();
        assert!(
            matches!(err, LoessError::InvalidSpan(_)),
            "span {span}: {err}"
        );
    }
    let err = loess_fitted(&x, &x, 0.5, 3).unwrap_err();
    assert!(matches!(err, LoessError::InvalidDegree(3)), "{err}");
}

#[test]
fn span_too_small() {
    // skmisc: "Span too small. Fewer data values than degrees of freedom." (nf = 3, k = 3).
    let x: Vec<f64> = (0..10).map(f64::from).collect();
    let y: Vec<f64> = x.iter().map(|v| v.sin()).collect();
    let err = loess_fitted(&x, &y, 0.3, 2).unwrap_err();
    assert!(
        matches!(
            err,
            LoessError::SpanTooSmall {
                neighbours: 3,
                needed: 4,
                ..
            }
        ),
        "{err}"
    );
    // floor(n * span) == 0.
    let err = loess_fitted(&x, &y, 0.05, 1).unwrap_err();
    assert!(
        matches!(err, LoessError::SpanTooSmall { neighbours: 0, .. }),
        "{err}"
    );
    // Empty and single-point input.
    assert!(matches!(
        loess_fitted(&[], &[], 0.3, 2).unwrap_err(),
        LoessError::SpanTooSmall { .. }
    ));
    assert!(matches!(
        loess_fitted(&[1.0], &[2.0], 1.0, 1).unwrap_err(),
        LoessError::SpanTooSmall { .. }
    ));
}

#[test]
fn constant_x_is_degenerate() {
    // skmisc: "svddc failed in l2fit." after zero-width / all-boundary neighbourhoods.
    let x = vec![2.5; 40];
    let y: Vec<f64> = (0..40).map(f64::from).collect();
    let err = loess_fitted(&x, &y, 0.5, 1).unwrap_err();
    assert!(
        matches!(
            err,
            LoessError::ZeroWidthNeighbourhood { .. } | LoessError::AllOnBoundary { .. }
        ),
        "{err}"
    );
}

#[test]
fn tiny_span_overflows_tree() {
    // skmisc: "k-d tree limited by memory. ncmax= 1000".
    let x: Vec<f64> = (0..1000)
        .map(|i| (f64::from(i) * 0.37).sin() * 3.0)
        .collect();
    let y: Vec<f64> = x.iter().map(|v| v * v).collect();
    let err = loess_fitted(&x, &y, 0.005, 1).unwrap_err();
    assert!(
        matches!(err, LoessError::TreeTooLarge { limit: 1000, .. }),
        "{err}"
    );
}

#[test]
fn reproduces_local_quadratic_and_ignores_order() {
    let x: Vec<f64> = (0..300)
        .map(|i| f64::from((i * 37) % 300) / 10.0 - 15.0)
        .collect();
    let y: Vec<f64> = x.iter().map(|v| 0.25 * v * v - 2.0 * v + 1.0).collect();
    let fitted = loess_fitted(&x, &y, 0.3, 2).unwrap();
    for (f, t) in fitted.iter().zip(&y) {
        assert!((f - t).abs() <= 1e-9 * t.abs().max(1.0), "{f} vs {t}");
    }
}
