//! `scoop neighbors`, `umap`, `subsample` and `plot` against scanpy 1.11 / umap-learn
//! (fixtures from tests/python/make_neighbors_fixtures.py): exact kNN and connectivities equal
//! to scanpy's, UMAP quality within reach of umap-learn's on the same graph, files scanpy reads,
//! and the error paths.

mod common;

use common::scoop_fails as fails;

use std::path::{Path, PathBuf};

use scoop::backend::Points;
use scoop::io::{CsrChunk, DenseRowReader, Element, H5adReader, MatrixReader};
use scoop::ops::fuzzy::connectivities;
use scoop::ops::knn::Knn;
use scoop::ops::quality::{silhouette, trustworthiness};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    common::root().join("tests/fixtures/neighbors").join(name)
}

fn scenario(name: &str) -> Value {
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("scenarios.json")).unwrap()).unwrap();
    s[name].clone()
}

fn graph(path: &Path, key: &str) -> CsrChunk {
    let f = H5adReader::open(path).unwrap();
    let m = MatrixReader::open(&f.root().group("obsp").unwrap(), key).unwrap();
    let n = m.shape().0;
    m.read_rows(0..n).unwrap()
}

fn obsm(path: &Path, key: &str) -> (Vec<f32>, usize) {
    let f = H5adReader::open(path).unwrap();
    let r = DenseRowReader::open(&f.root().group("obsm").unwrap(), key).unwrap();
    let d = r.shape().1;
    (r.read_all(d, 4096).unwrap(), d)
}

fn cell_lines(path: &Path) -> Vec<u32> {
    let f = H5adReader::open(path).unwrap();
    let obs = f.obs_reader().unwrap();
    match obs.read_column("cell_line", 0..obs.len()).unwrap() {
        scoop::io::ColumnValues::Categorical { codes, .. } => {
            codes.iter().map(|&c| c as u32).collect()
        }
        other => panic!("cell_line: {other:?}"),
    }
}

/// Row i's (column, value) pairs sorted by column.
fn sorted_row(c: &CsrChunk, i: usize) -> Vec<(u32, f32)> {
    let (idx, val) = c.row(i);
    let mut r: Vec<(u32, f32)> = idx.iter().copied().zip(val.iter().copied()).collect();
    r.sort_by_key(|e| e.0);
    r
}

/// What `py -c script file` prints (trimmed); fails the test if the script fails.
fn python_says(py: &Path, script: &str, file: &Path) -> String {
    let out = std::process::Command::new(py)
        .args(["-c", script, file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn assert_graphs_close(ours: &CsrChunk, theirs: &CsrChunk, tol: f32, what: &str) {
    assert_eq!(ours.n_rows(), theirs.n_rows(), "{what}: rows");
    assert_eq!(ours.n_cols, theirs.n_cols, "{what}: columns");
    let mut worst = 0f32;
    for i in 0..ours.n_rows() {
        let (a, b) = (sorted_row(ours, i), sorted_row(theirs, i));
        let ca: Vec<u32> = a.iter().map(|e| e.0).collect();
        let cb: Vec<u32> = b.iter().map(|e| e.0).collect();
        assert_eq!(ca, cb, "{what}: row {i} columns");
        for (x, y) in a.iter().zip(&b) {
            worst = worst.max((x.1 - y.1).abs() / y.1.abs().max(1.0));
        }
    }
    assert!(
        worst <= tol,
        "{what}: largest difference {worst:e} > {tol:e}"
    );
}

fn run_neighbors(name: &str, dir: &Path, extra: &[&str]) -> PathBuf {
    let k = scenario(name)["n_neighbors"].as_u64().unwrap().to_string();
    let out = dir.join(format!("{name}_nb.h5ad"));
    let input = fixture(&format!("{name}_input.h5ad"));
    let mut args = vec![
        "neighbors",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--n-neighbors",
        &k,
        "-q",
        "--backend",
        "cpu",
    ];
    args.extend_from_slice(extra);
    let o = common::scoop(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

#[test]
fn exact_neighbors_and_connectivities_equal_scanpys() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["lines", "few_neighbors"] {
        for method in ["auto", "exact"] {
            let ours = run_neighbors(name, dir.path(), &["--method", method, "--force"]);
            let theirs = fixture(&format!("{name}_neighbors.h5ad"));
            // sklearn brute force: the same neighbours at the same distances.
            assert_graphs_close(
                &graph(&ours, "distances"),
                &graph(&theirs, "distances"),
                1e-5,
                "distances",
            );
            assert_graphs_close(
                &graph(&ours, "connectivities"),
                &graph(&theirs, "connectivities"),
                1e-5,
                "connectivities",
            );
            let f = H5adReader::open(&ours).unwrap();
            let Element::Dict(nb) = f.element("uns", "neighbors").unwrap() else {
                panic!("uns/neighbors is not a dict")
            };
            assert_eq!(
                nb.iter()
                    .find(|(k, _)| k == "connectivities_key")
                    .map(|e| &e.1),
                Some(&Element::String("connectivities".into()))
            );
            // Annotations carried over.
            assert_eq!(
                f.obs().unwrap(),
                H5adReader::open(&theirs).unwrap().obs().unwrap()
            );
            assert!(f.keys("obsm").unwrap().contains(&"X_pca".to_string()));
        }
    }
}

#[test]
fn connectivities_from_scanpys_distances_equal_scanpys() {
    for name in ["lines", "few_neighbors"] {
        let k = scenario(name)["n_neighbors"].as_u64().unwrap() as usize;
        let theirs = fixture(&format!("{name}_neighbors.h5ad"));
        let d = graph(&theirs, "distances");
        let n = d.n_rows();
        // scanpy's kNN: the cell itself first, then its k−1 neighbours by distance.
        let mut indices = Vec::with_capacity(n * k);
        let mut distances = Vec::with_capacity(n * k);
        for i in 0..n {
            let (idx, val) = d.row(i);
            let mut r: Vec<(f32, u32)> = val.iter().copied().zip(idx.iter().copied()).collect();
            r.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert_eq!(r.len(), k - 1);
            indices.push(i as u32);
            distances.push(0.0);
            for (dist, j) in r {
                indices.push(j);
                distances.push(dist);
            }
        }
        let g = connectivities(&Knn {
            k,
            indices,
            distances,
        });
        let ours = CsrChunk {
            rows: scoop::io::RowIds::Range(0..n as u64),
            n_cols: n,
            indptr: g.indptr,
            indices: g.indices,
            data: g.data,
        };
        assert_graphs_close(&ours, &graph(&theirs, "connectivities"), 1e-5, name);
    }
}

#[test]
fn approximate_neighbors_recall_the_exact_ones() {
    let dir = tempfile::tempdir().unwrap();
    let ours = run_neighbors("lines", dir.path(), &["--method", "approx"]);
    let approx = graph(&ours, "distances");
    let exact = graph(&fixture("lines_neighbors.h5ad"), "distances");
    let (mut hit, mut all) = (0, 0);
    for i in 0..exact.n_rows() {
        let found = approx.row(i).0;
        for j in exact.row(i).0 {
            all += 1;
            hit += found.contains(j) as usize;
        }
    }
    let recall = hit as f64 / all as f64;
    assert!(recall >= 0.95, "recall@15 {recall}");
}

#[test]
fn quality_measures_equal_sklearns() {
    for name in ["lines", "few_neighbors"] {
        let path = fixture(&format!("{name}_umap.h5ad"));
        let (pca, d) = obsm(&path, "X_pca");
        let (emb, _) = obsm(&path, "X_umap");
        let f = H5adReader::open(&path).unwrap();
        let q = |key: &str| match f.element("uns", "quality").unwrap().get(key) {
            Some(Element::Scalar(v)) => v.to_f64()[0],
            other => panic!("uns/quality/{key}: {other:?}"),
        };
        let tw = trustworthiness(
            Points::new(&pca, d).unwrap(),
            Points::new(&emb, 2).unwrap(),
            15,
        );
        let sil = silhouette(Points::new(&emb, 2).unwrap(), &cell_lines(&path));
        assert!(
            (tw - q("trustworthiness")).abs() < 1e-6,
            "{name}: trustworthiness {tw} vs {}",
            q("trustworthiness")
        );
        assert!(
            (sil - q("silhouette")).abs() < 1e-5,
            "{name}: silhouette {sil} vs {}",
            q("silhouette")
        );
    }
}

#[test]
fn umap_on_scanpys_graph_is_as_good_as_umap_learns() {
    let dir = tempfile::tempdir().unwrap();
    // islands: 8 lines far apart, a graph of 8 components (umap's multi-component layout).
    for name in ["lines", "few_neighbors", "islands"] {
        let out = dir.path().join(format!("{name}_umap.h5ad"));
        let input = fixture(&format!("{name}_neighbors.h5ad"));
        let o = common::scoop(&[
            "umap",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--backend",
            "cpu",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let said = String::from_utf8_lossy(&o.stdout);
        if name == "islands" {
            // Placed by umap's component layout of their centroids in X_pca (scanpy's use_rep).
            assert!(
                said.contains("8 components placed by their centroids"),
                "{said}"
            );
        }
        let (pca, d) = obsm(&input, "X_pca");
        let (emb, dim) = obsm(&out, "X_umap");
        assert_eq!((emb.len(), dim), (pca.len() / d * 2, 2));
        let tw = trustworthiness(
            Points::new(&pca, d).unwrap(),
            Points::new(&emb, 2).unwrap(),
            15,
        );
        let sil = silhouette(Points::new(&emb, 2).unwrap(), &cell_lines(&input));
        let s = scenario(name);
        let (tw_ref, sil_ref) = (
            s["umap_learn_trustworthiness"].as_f64().unwrap(),
            s["umap_learn_silhouette"].as_f64().unwrap(),
        );
        eprintln!("{name}: trustworthiness {tw:.4} (umap-learn {tw_ref}), silhouette {sil:.4} (umap-learn {sil_ref})");
        assert!(
            tw >= tw_ref - 0.02,
            "{name}: trustworthiness {tw} vs umap-learn {tw_ref}"
        );
        assert!(
            sil >= sil_ref - 0.05,
            "{name}: silhouette {sil} vs umap-learn {sil_ref}"
        );
        let f = H5adReader::open(&out).unwrap();
        match f
            .element("uns", "umap")
            .unwrap()
            .get("params")
            .and_then(|p| p.get("a"))
        {
            Some(Element::Scalar(a)) => assert!((a.to_f64()[0] - 0.5830300203968329).abs() < 1e-5),
            other => panic!("uns/umap/params/a: {other:?}"),
        }
        // The graph and annotations are carried over.
        assert_eq!(
            graph(&out, "connectivities").data,
            graph(&input, "connectivities").data
        );
    }
}

/// The `uns` entry `key`'s string item `item`.
fn uns_string(path: &Path, key: &str, item: &str) -> Option<String> {
    match H5adReader::open(path)
        .unwrap()
        .element("uns", key)
        .unwrap()
        .get(item)
    {
        Some(Element::String(v)) => Some(v.clone()),
        _ => None,
    }
}

/// Each column's smallest and largest value of an n x dim layout.
fn column_ranges(emb: &[f32], dim: usize) -> Vec<(f32, f32)> {
    (0..dim)
        .map(|d| {
            emb.iter()
                .skip(d)
                .step_by(dim)
                .fold((f32::INFINITY, f32::NEG_INFINITY), |r, &v| {
                    (r.0.min(v), r.1.max(v))
                })
        })
        .collect()
}

#[test]
fn graphs_and_layouts_go_under_the_keys_scanpy_adds() {
    let dir = tempfile::tempdir().unwrap();
    let plain = run_neighbors("lines", dir.path(), &["--force"]);
    let keyed = dir.path().join("keyed.h5ad");
    let input = fixture("lines_input.h5ad");
    let o = common::scoop(&[
        "neighbors",
        input.to_str().unwrap(),
        "--out",
        keyed.to_str().unwrap(),
        "--n-neighbors",
        &scenario("lines")["n_neighbors"]
            .as_u64()
            .unwrap()
            .to_string(),
        "--key-added",
        "g2",
        "-q",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The same graph under scanpy's key_added names, and nothing under the default ones.
    for what in ["distances", "connectivities"] {
        assert_eq!(
            graph(&keyed, &format!("g2_{what}")),
            graph(&plain, what),
            "{what}"
        );
        assert_eq!(
            uns_string(&keyed, "g2", &format!("{what}_key")).as_deref(),
            Some(format!("g2_{what}").as_str())
        );
    }
    let f = H5adReader::open(&keyed).unwrap();
    assert!(!f
        .keys("obsp")
        .unwrap()
        .contains(&"connectivities".to_string()));
    assert!(!f.keys("uns").unwrap().contains(&"neighbors".to_string()));
    drop(f);

    // UMAP of that graph (found through --neighbors-key), under its own key, with the seed
    // named in uns as scanpy names a seed other than 0.
    let um = dir.path().join("um.h5ad");
    let umap = |input: &Path, out: &Path, extra: &[&str]| {
        let mut args = vec![
            "umap",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--neighbors-key",
            "g2",
            "--n-epochs",
            "60",
            "--backend",
            "cpu",
            "--force",
        ];
        args.extend_from_slice(extra);
        let o = common::scoop(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    umap(&keyed, &um, &["--key-added", "um2", "--seed", "3"]);
    let f = H5adReader::open(&um).unwrap();
    assert!(f.keys("obsm").unwrap().contains(&"um2".to_string()));
    assert!(!f.keys("obsm").unwrap().contains(&"X_umap".to_string()));
    match f
        .element("uns", "um2")
        .unwrap()
        .get("params")
        .and_then(|p| p.get("random_state"))
    {
        Some(Element::Scalar(v)) => assert_eq!(v.to_f64(), vec![3.0]),
        other => panic!("uns/um2/params/random_state: {other:?}"),
    }
    drop(f);
    let (pca, d) = obsm(&input, "X_pca");
    let labels = cell_lines(&input);
    let quality = |emb: &[f32]| {
        let tw = trustworthiness(
            Points::new(&pca, d).unwrap(),
            Points::new(emb, 2).unwrap(),
            15,
        );
        (tw, silhouette(Points::new(emb, 2).unwrap(), &labels))
    };
    let (spectral, _) = obsm(&um, "um2");
    let (tw_spectral, sil_spectral) = quality(&spectral);

    // A random start: every coordinate rescaled to [0, 10] first, as umap does; a different
    // layout, still a good one after 60 epochs on these well-separated lines.
    let random = dir.path().join("random.h5ad");
    let said = umap(&keyed, &random, &["--init-pos", "random"]);
    assert!(said.contains("random init"), "{said}");
    let (emb, _) = obsm(&random, "X_umap");
    assert_ne!(emb, spectral);
    let (tw, sil) = quality(&emb);
    eprintln!("random start: trustworthiness {tw:.4} silhouette {sil:.4}; spectral {tw_spectral:.4} {sil_spectral:.4}");
    assert!(
        tw >= tw_spectral - 0.05 && sil >= sil_spectral - 0.15,
        "{tw} {sil}"
    );

    // Starting from the spectral layout (an obsm key): the layout moves on from it, so it
    // stays close to it, far closer than the random start's result is.
    let given = dir.path().join("given.h5ad");
    let said = umap(&um, &given, &["--init-pos", "um2"]);
    assert!(said.contains("init from obsm/um2"), "{said}");
    let (emb, _) = obsm(&given, "X_umap");
    let mean_shift = |a: &[f32], b: &[f32]| {
        a.chunks(2)
            .zip(b.chunks(2))
            .map(|(p, q)| ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt() as f64)
            .sum::<f64>()
            / (a.len() / 2) as f64
    };
    // Both layouts on umap's [0, 10] scale before their epochs; compare after rescaling.
    let rescaled = |e: &[f32]| -> Vec<f32> {
        let r = column_ranges(e, 2);
        e.iter()
            .enumerate()
            .map(|(i, &v)| 10.0 * (v - r[i % 2].0) / (r[i % 2].1 - r[i % 2].0))
            .collect()
    };
    let (from_given, from_random) = (
        mean_shift(&rescaled(&emb), &rescaled(&spectral)),
        mean_shift(&rescaled(&obsm(&random, "X_umap").0), &rescaled(&spectral)),
    );
    eprintln!("mean shift from the start: given {from_given:.3}, random {from_random:.3}");
    assert!(
        from_given < from_random / 3.0,
        "{from_given} vs {from_random}"
    );

    // Plotted by the key itself, as scanpy's basis lookup finds obsm keys without X_.
    let png = dir.path().join("um2.png");
    let o = common::scoop(&[
        "plot",
        um.to_str().unwrap(),
        "--basis",
        "um2",
        "--color",
        "cell_line",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(png.exists());

    // Keys and starts that cannot be: refused, naming the flag, nothing written.
    let bad = dir.path().join("bad.h5ad");
    let (k, b) = (keyed.to_str().unwrap(), bad.to_str().unwrap());
    let err = fails(&[
        "neighbors",
        input.to_str().unwrap(),
        "--out",
        b,
        "--key-added",
        "a/b",
    ]);
    assert!(err.contains("--key-added"), "{err}");
    // `scoop umap IN --out bad.h5ad --neighbors-key g2 EXTRA…` fails; its message.
    let umap_fails = |input: &str, extra: &[&str]| {
        let mut args = vec!["umap", input, "--out", b, "--neighbors-key", "g2"];
        args.extend_from_slice(extra);
        fails(&args)
    };
    let err = umap_fails(k, &["--init-pos", "X_tsne"]);
    assert!(
        err.contains("/obsm/X_tsne") && err.contains("--init-pos"),
        "{err}"
    );
    let err = umap_fails(
        um.to_str().unwrap(),
        &["--init-pos", "um2", "--n-components", "3"],
    );
    assert!(
        err.contains("/obsm/um2") && err.contains("at least 3 columns"),
        "{err}"
    );
    let err = umap_fails(k, &["--gamma", "-1"]);
    assert!(err.contains("--gamma -1"), "{err}");
    let err = fails(&["umap", k, "--out", b, "--negative-sample-rate", "0"]);
    assert!(err.contains("--negative-sample-rate 0"), "{err}");
    assert!(!bad.exists());

    // anndata finds everything where scanpy's key_added puts it.
    let Some(py) = common::python() else { return };
    let script = r#"
import sys, anndata as ad, numpy as np, scipy.sparse as sp
a = ad.read_h5ad(sys.argv[1])
nb = a.uns["g2"]
assert sp.issparse(a.obsp[nb["connectivities_key"]]) and sp.issparse(a.obsp[nb["distances_key"]])
assert a.obsm["um2"].shape == (a.n_obs, 2) and a.obsm["um2"].dtype == np.float32
assert a.uns["um2"]["params"]["random_state"] == 3
print("ok")
"#;
    assert_eq!(python_says(&py, script, &um), "ok");
}

#[test]
fn small_panels_search_x_itself_as_scanpy_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    // 40 genes (at most 50: scanpy's default representation is X itself) of 400 cells.
    let o = common::scoop(&[
        "simulate",
        "--out",
        d,
        "--plates",
        "1",
        "--cells-per-plate",
        "400",
        "--genes",
        "40",
        "--seed",
        "5",
        "-q",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let input = dir.path().join("plate1_filtered.h5ad");
    let out = dir.path().join("nb.h5ad");
    let o = common::scoop(&[
        "neighbors",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--n-neighbors",
        "10",
        "--n-pcs",
        "5",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains("x 40 dims of X"), "{said}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("--n-pcs does not apply to X"));
    // The exact neighbours of X's dense rows, by brute force here.
    let f = H5adReader::open(&input).unwrap();
    let x = f.x().unwrap();
    let (n, genes) = x.shape();
    let chunk = x.read_rows(0..n).unwrap();
    let mut dense = vec![0f64; n * genes];
    for i in 0..n {
        let (cols, vals) = chunk.row(i);
        for (&c, &v) in cols.iter().zip(vals) {
            dense[i * genes + c as usize] += v as f64;
        }
    }
    let dist = graph(&out, "distances");
    for i in 0..n {
        let mut all: Vec<(f64, u32)> = (0..n)
            .filter(|&j| j != i)
            .map(|j| {
                let d2: f64 = (0..genes)
                    .map(|g| (dense[i * genes + g] - dense[j * genes + g]).powi(2))
                    .sum();
                (d2.sqrt(), j as u32)
            })
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let (cols, vals) = dist.row(i);
        assert_eq!(cols.len(), 9, "row {i}");
        for ((&c, &v), want) in cols.iter().zip(vals).zip(&all) {
            // Each neighbour at its own distance, and the k−1 nearest distances in order (ties
            // at equal distance may come in either order).
            let own = all.iter().find(|e| e.1 == c).unwrap().0;
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * b.max(1.0);
            assert!(
                close(v as f64, own) && close(v as f64, want.0),
                "row {i}: {c} {v} vs {want:?}"
            );
        }
    }
    // As scanpy writes it: use_rep only when given (it was not), n_pcs as given.
    let params = H5adReader::open(&out)
        .unwrap()
        .element("uns", "neighbors")
        .unwrap()
        .get("params")
        .cloned()
        .unwrap();
    assert!(params.get("use_rep").is_none());
    assert!(params.get("n_pcs").is_some());
    // An X too wide to read dense is refused, naming it.
    let err = fails(&[
        "neighbors",
        fixture("lines_input.h5ad").to_str().unwrap(),
        "--out",
        dir.path().join("x.h5ad").to_str().unwrap(),
        "--use-rep",
        "X",
    ]);
    assert!(err.contains("/X"), "{err}");
}

#[test]
fn subsample_draws_distinct_rows_in_order_and_carries_obsm() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("lines_input.h5ad");
    let out = dir.path().join("sub.h5ad");
    let o = common::scoop(&[
        "subsample",
        input.to_str().unwrap(),
        "--n",
        "500",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (full, d) = obsm(&input, "X_pca");
    let (sub, d2) = obsm(&out, "X_pca");
    assert_eq!((d, sub.len()), (d2, 500 * d));
    let f_in = H5adReader::open(&input).unwrap().obs().unwrap();
    let f_out = H5adReader::open(&out).unwrap().obs().unwrap();
    // Rows are distinct input cells in the input's order, with their own obsm rows.
    let pos: Vec<usize> = f_out
        .index
        .iter()
        .map(|name| {
            f_in.index
                .iter()
                .position(|n| n == name)
                .expect("a known cell")
        })
        .collect();
    assert!(
        pos.windows(2).all(|w| w[0] < w[1]),
        "rows ascending and distinct"
    );
    for (r, &i) in pos.iter().enumerate() {
        assert_eq!(&sub[r * d..(r + 1) * d], &full[i * d..(i + 1) * d]);
    }
    // The same seed draws the same cells; another seed others.
    let again = dir.path().join("again.h5ad");
    common::scoop(&[
        "subsample",
        input.to_str().unwrap(),
        "--n",
        "500",
        "--seed",
        "3",
        "--out",
        again.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(
        H5adReader::open(&again).unwrap().obs().unwrap().index,
        f_out.index
    );
    // With replacement the sample may repeat cells; without it, asking for more than n fails.
    let rep = dir.path().join("rep.h5ad");
    let o = common::scoop(&[
        "subsample",
        input.to_str().unwrap(),
        "--n",
        "3000",
        "--replace",
        "--out",
        rep.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(H5adReader::open(&rep).unwrap().shape().unwrap().0, 3000);
    let err = fails(&[
        "subsample",
        input.to_str().unwrap(),
        "--n",
        "3000",
        "--out",
        dir.path().join("x.h5ad").to_str().unwrap(),
    ]);
    assert!(err.contains("more than the 1500 cells"), "{err}");
    assert!(!dir.path().join("x.h5ad").exists());
}

#[test]
fn plot_draws_each_category_in_scanpys_colors() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("lines_umap.h5ad");
    let png = dir.path().join("umap.png");
    let o = common::scoop(&[
        "plot",
        input.to_str().unwrap(),
        "--color",
        "cell_line,plate",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (width, height, pixels) = common::png_colors(&png);
    // Six cell lines and three plates: matplotlib's tab10, in category order.
    for hex in ["1f77b4", "ff7f0e", "2ca02c", "d62728", "9467bd", "8c564b"] {
        let c = [0, 2, 4].map(|o| u8::from_str_radix(&hex[o..o + 2], 16).unwrap());
        assert!(pixels.contains(&c), "color #{hex} missing");
    }
    assert!(height > width, "two panels stacked");
    // Asking for a column that is not there names it.
    let err = fails(&[
        "plot",
        input.to_str().unwrap(),
        "--color",
        "drug",
        "--out",
        dir.path().join("b.png").to_str().unwrap(),
    ]);
    assert!(
        err.contains("/obs/drug") && err.contains("no such obs column"),
        "{err}"
    );
    assert!(!dir.path().join("b.png").exists());
    let err = fails(&[
        "plot",
        input.to_str().unwrap(),
        "--color",
        "cell_line",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(err.contains("output exists"), "{err}");
}

#[test]
fn fewer_cells_than_neighbours_search_scanpys_smaller_neighbourhood() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("lines_input.h5ad");
    let (sub, nb, um) = (
        dir.path().join("sub.h5ad"),
        dir.path().join("nb.h5ad"),
        dir.path().join("um.h5ad"),
    );
    let (s, n, u) = (
        sub.to_str().unwrap(),
        nb.to_str().unwrap(),
        um.to_str().unwrap(),
    );
    let i = input.to_str().unwrap();
    let ok = |args: &[&str]| {
        let o = common::scoop(args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    ok(&["subsample", i, "--n", "9", "--out", s, "-q"]);
    // 9 cells, 15 neighbours asked: scanpy searches 1 + 9 / 2 = 5 and says so.
    let warning = ok(&["neighbors", s, "--out", n, "-q", "--backend", "cpu"]);
    assert!(warning.contains("using 5"), "{warning}");
    let (x, d) = obsm(&sub, "X_pca");
    let dist = graph(&nb, "distances");
    for q in 0..9 {
        let mut by_distance: Vec<(f32, u32)> = (0..9u32)
            .filter(|&p| p as usize != q)
            .map(|p| {
                let (a, b) = (&x[q * d..][..d], &x[p as usize * d..][..d]);
                let d2: f32 = a.iter().zip(b).map(|(u, v)| (u - v) * (u - v)).sum();
                (d2.sqrt(), p)
            })
            .collect();
        by_distance.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut want: Vec<u32> = by_distance[..4].iter().map(|e| e.1).collect();
        want.sort_unstable();
        let got: Vec<u32> = sorted_row(&dist, q).iter().map(|e| e.0).collect();
        assert_eq!(got, want, "cell {q}: its 4 nearest others");
    }
    let params = H5adReader::open(&nb)
        .unwrap()
        .element("uns", "neighbors")
        .unwrap()
        .get("params")
        .and_then(|p| p.get("n_neighbors"))
        .cloned();
    assert!(
        matches!(&params, Some(Element::Scalar(scoop::io::NumVec::I64(v))) if v == &[5]),
        "uns/neighbors/params/n_neighbors: {params:?}"
    );
    ok(&["umap", n, "--out", u, "-q", "--backend", "cpu"]);
    let (emb, dim) = obsm(&um, "X_umap");
    assert_eq!((emb.len(), dim), (18, 2));
    assert!(emb.iter().all(|v| v.is_finite()));
}

#[test]
fn bad_requests_fail_clearly_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("lines_input.h5ad");
    let out = dir.path().join("o.h5ad");
    let (i, o) = (input.to_str().unwrap(), out.to_str().unwrap());
    let err = fails(&["neighbors", i, "--out", o, "--use-rep", "X_umap"]);
    assert!(
        err.contains("/obsm/X_umap") && err.contains("not found"),
        "{err}"
    );
    let err = fails(&["neighbors", i, "--out", o, "--n-pcs", "31"]);
    assert!(
        err.contains("--n-pcs 31") && err.contains("30 columns"),
        "{err}"
    );
    let err = fails(&["neighbors", i, "--out", o, "--n-neighbors", "1"]);
    assert!(err.contains("--n-neighbors 1"), "{err}");
    let err = fails(&["umap", i, "--out", o]);
    assert!(
        err.contains("/obsp/connectivities") && err.contains("scoop neighbors"),
        "{err}"
    );
    // A negative number is a value to check, not an unknown flag.
    let err = fails(&["umap", i, "--out", o, "--min-dist", "-1"]);
    assert!(err.contains("--min-dist -1"), "{err}");
    let err = fails(&["neighbors", i, "--out", i]);
    assert!(
        err.contains("output exists") || err.contains("is the input"),
        "{err}"
    );
    let missing = dir.path().join("missing.h5ad");
    let err = fails(&["umap", missing.to_str().unwrap(), "--out", o]);
    assert!(err.contains("missing.h5ad"), "{err}");
    // The OS's reason is said once, not once by the error and again by its printed cause.
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temporary files left"
    );
}

#[test]
fn scanpy_reads_scoops_graph_and_layout() {
    let Some(py) = common::python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let nb = run_neighbors("few_neighbors", dir.path(), &[]);
    let um = dir.path().join("um.h5ad");
    let o = common::scoop(&[
        "umap",
        nb.to_str().unwrap(),
        "--out",
        um.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success());
    let script = r#"
import sys, anndata as ad, numpy as np, scipy.sparse as sp
a = ad.read_h5ad(sys.argv[1])
assert sp.issparse(a.obsp["connectivities"]) and sp.issparse(a.obsp["distances"])
c = a.obsp["connectivities"]
assert abs(c - c.T).max() < 1e-6, "connectivities symmetric"
assert a.uns["neighbors"]["params"]["n_neighbors"] == 6
assert a.uns["neighbors"]["connectivities_key"] == "connectivities"
assert a.obsm["X_umap"].shape == (a.n_obs, 2) and a.obsm["X_umap"].dtype == np.float32
assert set(a.uns["umap"]["params"]) == {"a", "b"}
print("ok", a.n_obs)
"#;
    assert_eq!(python_says(&py, script, &um), "ok 400");
}
