//! Every step keeps what anndata keeps of X, raw and layers: an AnnData with an int64 CSR
//! layer, dense layers (one is CSR in another input, so concat mixes encodings) and raw (more
//! genes than X, a raw.var column) goes through preprocess, concat, pca, subsample --with-x,
//! neighbors and umap, and each output is compared with what anndata gives
//! (`adata[mask][:, genes]`, `adata[rows]`, `anndata.concat`) by tests/python/outputs.py;
//! `--drop-matrices` leaves them out. Blocks of 16 rows make every copy span several blocks.

mod common;

use std::path::{Path, PathBuf};

use common::scoop;

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "scoop failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs tests/python/outputs.py with `args`, panicking with its output on failure.
fn check(py: &Path, args: &[&str]) {
    let out = std::process::Command::new(py)
        .arg(common::root().join("tests/python/outputs.py"))
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "outputs.py {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Inputs {
    _dir: tempfile::TempDir,
    dir: PathBuf,
}

fn inputs(py: &Path) -> Inputs {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    check(py, &["make", s(&d)]);
    Inputs { _dir: dir, dir: d }
}

#[test]
fn preprocess_keeps_layers_raw_and_annotations_on_its_cells_and_genes() {
    let Some(py) = common::python() else { return };
    let t = inputs(&py);
    let (a, b) = (t.dir.join("a.h5ad"), t.dir.join("b.h5ad"));
    let pp = t.dir.join("pp");
    let line = ok(&scoop(&[
        "-q",
        "--chunk-rows",
        "16",
        "preprocess",
        s(&a),
        s(&b),
        "--out-dir",
        s(&pp),
        "--filter",
        "pass_filter=full",
        "--n-top-genes",
        "15",
        "--min-plates",
        "1",
    ]));
    let written = "X, raw, layers/counts, layers/dense, layers/mixed, obsm/X_emb, obsm/X_sparse, \
                   varm/loadings, obsp/graph written";
    assert!(line.contains(written), "{line}");
    for (inp, out) in [(&a, "a_preprocessed.h5ad"), (&b, "b_preprocessed.h5ad")] {
        check(
            &py,
            &[
                "preprocessed",
                s(inp),
                s(&pp.join(out)),
                "pass_filter",
                "full",
            ],
        );
    }
    // The merged plates: layers concatenated as anndata.concat does, raw left out as
    // concat_on_disk does, and said so.
    let merged = t.dir.join("merged.h5ad");
    let (pa, pb) = (
        pp.join("a_preprocessed.h5ad"),
        pp.join("b_preprocessed.h5ad"),
    );
    let line = ok(&scoop(&[
        "-q",
        "--chunk-rows",
        "16",
        "concat",
        s(&pa),
        s(&pb),
        "--out",
        s(&merged),
    ]));
    assert!(line.contains("layers: counts, dense, mixed"), "{line}");
    assert!(line.contains("left out, as concat_on_disk: raw"), "{line}");
    check(&py, &["concat", "inner", s(&merged), s(&pa), s(&pb)]);
}

/// `scoop run` writes into `merged.h5ad` the layers and obsm that `preprocess` then `concat`
/// give (raw left out, and said so in `run.json`), `pca.h5ad` keeps them and `subset.h5ad` has
/// its cells' obsm rows.
#[test]
fn run_carries_layers_and_obsm_as_preprocess_then_concat() {
    let Some(py) = common::python() else { return };
    let t = inputs(&py);
    let (a, b) = (t.dir.join("a.h5ad"), t.dir.join("b.h5ad"));
    let selection = [
        "--filter",
        "pass_filter=full",
        "--n-top-genes",
        "15",
        "--min-plates",
        "1",
    ];
    let pp = t.dir.join("pp");
    let mut args = vec!["-q", "--chunk-rows", "16", "preprocess", s(&a), s(&b)];
    args.extend(["--out-dir", s(&pp)]);
    args.extend(selection);
    ok(&scoop(&args));
    let dir = t.dir.join("run");
    let mut args = vec!["-q", "--chunk-rows", "16", "run", s(&a), s(&b)];
    args.extend(["--out-dir", s(&dir)]);
    args.extend(selection);
    args.extend(["--n-comps", "4", "--subsample", "30", "--n-neighbors", "5"]);
    ok(&scoop(&args));
    // The run's outputs against preprocess' plates, in anndata.
    let check_run = || {
        check(
            &py,
            &[
                "run",
                s(&dir),
                s(&pp.join("a_preprocessed.h5ad")),
                s(&pp.join("b_preprocessed.h5ad")),
            ],
        )
    };
    check_run();
    let read = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
    };
    let state = read();
    let merge = state["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "merge")
        .expect("a merge step");
    let list = |key: &str| merge["result"][key].clone();
    assert_eq!(
        list("layers"),
        serde_json::json!(["counts", "dense", "mixed"])
    );
    assert_eq!(list("obsm"), serde_json::json!(["X_emb", "X_sparse"]));
    assert_eq!(list("left_out"), serde_json::json!(["raw"]));

    // A rerun finds every step fresh; a record from before layers and obsm were carried (the
    // merge's parameters without them) is not, and the merge runs again.
    let ran = |st: &serde_json::Value| -> Vec<String> {
        let names = st["last_run"]["ran"].as_array().unwrap();
        names
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    };
    ok(&scoop(&args));
    assert_eq!(ran(&read()), Vec::<String>::new());
    let mut st = read();
    let merge = st["steps"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["name"] == "merge")
        .unwrap();
    let params = merge["params"].as_object_mut().unwrap();
    assert_eq!(
        params["layers"],
        serde_json::json!(["counts", "dense", "mixed"])
    );
    params.remove("layers");
    params.remove("obsm");
    let old = scoop::workflow::run::state::hash_text(&merge["params"].to_string());
    merge["params_hash"] = serde_json::json!(old);
    std::fs::write(dir.join("run.json"), st.to_string()).unwrap();
    ok(&scoop(&args));
    assert!(
        ran(&read()).contains(&"merge".to_string()),
        "{:?}",
        ran(&read())
    );
    check_run();
}

#[test]
fn concat_joins_layers_over_genes_as_anndata() {
    let Some(py) = common::python() else { return };
    let t = inputs(&py);
    let (a, c) = (t.dir.join("a.h5ad"), t.dir.join("c.h5ad"));
    for join in ["inner", "outer"] {
        let out = t.dir.join(format!("{join}.h5ad"));
        ok(&scoop(&[
            "-q",
            "--chunk-rows",
            "16",
            "concat",
            s(&a),
            s(&c),
            "--join",
            join,
            "--out",
            s(&out),
        ]));
        check(&py, &["concat", join, s(&out), s(&a), s(&c)]);
    }
}

#[test]
fn pca_subsample_neighbors_umap_carry_x_raw_and_layers() {
    let Some(py) = common::python() else { return };
    let t = inputs(&py);
    let a = t.dir.join("a.h5ad");
    let pca = t.dir.join("pca.h5ad");
    let line = ok(&scoop(&[
        "-q",
        "--chunk-rows",
        "16",
        "pca",
        s(&a),
        "--n-comps",
        "5",
        "--out",
        s(&pca),
    ]));
    assert!(
        line.contains("X, raw, layers/counts, layers/dense, layers/mixed written"),
        "{line}"
    );
    check(&py, &["rows", s(&a), s(&pca)]);
    check(&py, &["pca", s(&a), s(&pca)]);

    let sub = t.dir.join("sub.h5ad");
    ok(&scoop(&[
        "-q",
        "--chunk-rows",
        "16",
        "subsample",
        s(&pca),
        "--n",
        "25",
        "--seed",
        "3",
        "--with-x",
        "--out",
        s(&sub),
    ]));
    check(&py, &["rows", s(&pca), s(&sub)]);
    let bare = t.dir.join("bare.h5ad");
    let line = ok(&scoop(&[
        "-q",
        "--chunk-rows",
        "16",
        "subsample",
        s(&pca),
        "--n",
        "25",
        "--out",
        s(&bare),
    ]));
    assert!(
        line.contains("left out (no --with-x): X, raw, layers/counts, layers/dense, layers/mixed"),
        "{line}"
    );
    check(&py, &["dropped", s(&bare)]);

    let nb = t.dir.join("nb.h5ad");
    ok(&scoop(&[
        "-q",
        "--chunk-rows",
        "16",
        "neighbors",
        s(&pca),
        "--use-rep",
        "X_pca",
        "--out",
        s(&nb),
    ]));
    check(&py, &["rows", s(&a), s(&nb)]);
    let um = t.dir.join("um.h5ad");
    ok(&scoop(&[
        "-q",
        "--chunk-rows",
        "16",
        "umap",
        s(&nb),
        "--out",
        s(&um),
    ]));
    check(&py, &["rows", s(&a), s(&um)]);
}

#[test]
fn drop_matrices_leaves_x_raw_and_layers_out_and_says_so() {
    let Some(py) = common::python() else { return };
    let t = inputs(&py);
    let a = t.dir.join("a.h5ad");
    let pca = t.dir.join("pca.h5ad");
    let line = ok(&scoop(&[
        "-q",
        "--chunk-rows",
        "16",
        "pca",
        s(&a),
        "--n-comps",
        "5",
        "--drop-matrices",
        "--out",
        s(&pca),
    ]));
    let said = "left out (--drop-matrices): X, raw, layers/counts, layers/dense, layers/mixed";
    assert!(line.contains(said), "{line}");
    check(&py, &["dropped", s(&pca)]);
    // neighbors and umap on a file that has them, told to drop them.
    let full = t.dir.join("full.h5ad");
    ok(&scoop(&[
        "-q",
        "--chunk-rows",
        "16",
        "pca",
        s(&a),
        "--n-comps",
        "5",
        "--out",
        s(&full),
    ]));
    let nb = t.dir.join("nb.h5ad");
    let line = ok(&scoop(&[
        "-q",
        "--chunk-rows",
        "16",
        "neighbors",
        s(&full),
        "--use-rep",
        "X_pca",
        "--drop-matrices",
        "--out",
        s(&nb),
    ]));
    assert!(line.contains(said), "{line}");
    check(&py, &["dropped", s(&nb)]);
    let nb_full = t.dir.join("nb_full.h5ad");
    ok(&scoop(&[
        "-q",
        "--chunk-rows",
        "16",
        "neighbors",
        s(&full),
        "--use-rep",
        "X_pca",
        "--out",
        s(&nb_full),
    ]));
    let um = t.dir.join("um.h5ad");
    let line = ok(&scoop(&[
        "-q",
        "--chunk-rows",
        "16",
        "umap",
        s(&nb_full),
        "--drop-matrices",
        "--out",
        s(&um),
    ]));
    assert!(line.contains(said), "{line}");
    check(&py, &["dropped", s(&um)]);
}

#[test]
fn inspect_lists_raw_and_layers_with_their_encodings() {
    let Some(py) = common::python() else { return };
    let t = inputs(&py);
    let text = ok(&scoop(&["inspect", s(&t.dir.join("a.h5ad"))]));
    let layers = "    layers: 'counts' (csr_matrix int64), 'dense' (array float64), \
                  'mixed' (array float64)\n";
    assert!(text.contains(layers), "{text}");
    assert!(
        text.contains("    raw: 70 × 52 (csr_matrix float32), var: 'n_cells'\n"),
        "{text}"
    );
}
