//! Files users have today: scanpy's shipped `pbmc68k_reduced.h5ad`, as shipped and written back
//! by each Python stack's anndata (plain, gzip, lzf, zstd), through `inspect`, `neighbors` (the
//! graph scanpy computes on the same file), `umap` (an output both anndata versions load) and
//! `plot` (in the file's own `uns` colors).

mod common;

use std::path::Path;

use scoop::io::{CsrChunk, H5adReader, MatrixReader};

fn graph(path: &Path, key: &str) -> CsrChunk {
    let f = H5adReader::open(path).unwrap();
    let m = MatrixReader::open(&f.root().group("obsp").unwrap(), key).unwrap();
    m.read_rows(0..m.shape().0).unwrap()
}

/// Largest relative difference between two graphs with the same pattern (row by row, sorted).
fn graph_diff(ours: &CsrChunk, theirs: &CsrChunk, what: &str) -> f32 {
    assert_eq!(ours.n_rows(), theirs.n_rows(), "{what}: rows");
    let mut worst = 0f32;
    for i in 0..ours.n_rows() {
        let sorted = |c: &CsrChunk| {
            let (idx, val) = c.row(i);
            let mut r: Vec<(u32, f32)> = idx.iter().copied().zip(val.iter().copied()).collect();
            r.sort_by_key(|e| e.0);
            r
        };
        let (a, b) = (sorted(ours), sorted(theirs));
        let cols = |r: &[(u32, f32)]| r.iter().map(|e| e.0).collect::<Vec<_>>();
        assert_eq!(cols(&a), cols(&b), "{what}: row {i} columns");
        for (x, y) in a.iter().zip(&b) {
            worst = worst.max((x.1 - y.1).abs() / y.1.abs().max(1.0));
        }
    }
    worst
}

fn run(py: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(py)
        .arg(common::root().join("tests/python/todays_files.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "todays_files.py {args:?}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn scoop_ok(args: &[&str]) -> String {
    let out = common::scoop(args);
    assert!(
        out.status.success(),
        "scoop {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn pbmc68k_reduced_goes_through_inspect_neighbors_umap_plot() {
    for (stack, py) in common::stacks() {
        if !common::py_has(&py, "scanpy") {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI: {stack} stack lacks scanpy"
            );
            eprintln!("SKIP: no scanpy in the {stack} stack");
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let listed = run(&py, &["pbmc", d.to_str().unwrap()]);
        let mut files: Vec<(&str, &str)> =
            listed.lines().filter_map(|l| l.split_once(' ')).collect();
        let shipped = files[0].1;
        // scanpy < 1.12 ships the file in anndata ≤ 0.6's layout: one clear error, then the
        // copies anndata writes back go through.
        let old_layout = files[0].0 == "shipped-old";
        if old_layout {
            let err = common::scoop_fails(&["inspect", shipped]);
            assert!(
                err.trim().lines().count() == 1
                    && err.contains("/obs")
                    && err.contains("anndata ≤ 0.6")
                    && err.contains("write_h5ad"),
                "{stack}: {err}"
            );
            files.remove(0);
        }
        let names: Vec<&str> = files.iter().map(|f| f.0).collect();
        // (zstd needs hdf5plugin, which both CI stacks install)
        if common::py_has(&py, "hdf5plugin") || std::env::var_os("CI").is_some() {
            let all = ["shipped", "plain", "gzip", "lzf", "zstd"];
            let want = if old_layout { &all[1..] } else { &all[..] };
            assert_eq!(names, want, "{stack}: variants written");
        }
        // scanpy's graph on the file as shipped (the values do not depend on compression).
        let theirs = d.join("scanpy_neighbors.h5ad");
        run(&py, &["neighbors", shipped, theirs.to_str().unwrap()]);
        let (their_d, their_c) = (
            graph(&theirs, "distances"),
            graph(&theirs, "connectivities"),
        );
        for (name, path) in &files {
            let what = format!("{stack}/{name}");
            let text = scoop_ok(&["inspect", path]);
            assert!(
                text.starts_with("AnnData object with n_obs × n_vars = 700 × 765")
                    && text.contains("'bulk_labels'")
                    && text.contains("X_pca"),
                "{what}: {text}"
            );
            let nb = d.join(format!("{name}_nb.h5ad"));
            let um = d.join(format!("{name}_um.h5ad"));
            let png = d.join(format!("{name}.png"));
            scoop_ok(&["neighbors", path, "--out", nb.to_str().unwrap(), "-q"]);
            let dd = graph_diff(&graph(&nb, "distances"), &their_d, &what);
            let dc = graph_diff(&graph(&nb, "connectivities"), &their_c, &what);
            assert!(
                dd <= 1e-5 && dc <= 1e-5,
                "{what}: distances {dd:e}, connectivities {dc:e}"
            );
            scoop_ok(&[
                "umap",
                nb.to_str().unwrap(),
                "--out",
                um.to_str().unwrap(),
                "-q",
            ]);
            for (other, opy) in common::stacks() {
                let said = run(&opy, &["check-umap", um.to_str().unwrap(), "--raw"]);
                assert_eq!(
                    said.trim(),
                    "ok 700 765",
                    "{what} read by the {other} stack"
                );
            }
            scoop_ok(&[
                "plot",
                um.to_str().unwrap(),
                "--color",
                "bulk_labels,louvain",
                "--out",
                png.to_str().unwrap(),
                "-q",
            ]);
            let (w, h, colors) = common::png_colors(&png);
            assert!(h > w, "{what}: two panels");
            // The file's own louvain colors (uns/louvain_colors, not matplotlib's defaults).
            assert!(colors.contains(&[0x02, 0x3f, 0xa5]), "{what}: uns colors");
        }
    }
}

/// Compares dumps of two files (anndata's reading of each) on the dotted parts listed.
fn same_parts(py: &Path, dir: &Path, ours: &Path, theirs: &Path, parts: &str) {
    let (a, b) = (dir.join("ours.json"), dir.join("theirs.json"));
    common::interop(py, &["dump", ours.to_str().unwrap(), a.to_str().unwrap()]);
    common::interop(py, &["dump", theirs.to_str().unwrap(), b.to_str().unwrap()]);
    let only = format!("--only={parts}");
    common::interop(
        py,
        &["compare", a.to_str().unwrap(), b.to_str().unwrap(), &only],
    );
}

/// Plates as today's anndata writes them (pandas 3 defaults on the current stack: a nullable-
/// string index with duplicated names, strings with NA, categorical and Int64 with NA, float64
/// counts with int64 indices, layers, raw) go through steps 1-5 and come out as scanpy and
/// anndata make them: preprocess as normalize_total/log1p/highly_variable_genes on the kept cells
/// (layers and raw subset as anndata subsets them), concat as concat_on_disk, pca as sc.pp.pca,
/// a subsample of every cell as the input itself, and a UMAP both anndata versions load.
#[test]
fn todays_plates_go_through_the_whole_workflow() {
    for (stack, py) in common::stacks() {
        if !common::py_has(&py, "scanpy") {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI: {stack} stack lacks scanpy"
            );
            continue;
        }
        eprintln!("{stack}: {}", py.display());
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ds = |name: &str| d.join(name).to_str().unwrap().to_string();
        run(&py, &["plates", d.to_str().unwrap()]);
        let n_genes = run(&py, &["workflow", d.to_str().unwrap(), "20", "2", "4"]);
        assert_eq!(n_genes.trim(), "10", "{stack}: genes scanpy selects");

        scoop_ok(&[
            "preprocess",
            &ds("plate_a.h5ad"),
            &ds("plate_b.h5ad"),
            "--out-dir",
            &ds("pre"),
            "--filter",
            "pass_filter=full",
            "--n-top-genes",
            "20",
            "--min-plates",
            "2",
            "-q",
        ]);
        for p in ["a", "b"] {
            same_parts(
                &py,
                d,
                &d.join(format!("pre/plate_{p}_preprocessed.h5ad")),
                &d.join(format!("expected_{p}.h5ad")),
                "shape,obs,X,layers,raw,var.index,var.columns.gene_symbol,\
                 var.columns.highly_variable",
            );
        }

        let merged = ds("merged.h5ad");
        scoop_ok(&[
            "concat",
            &ds("pre/plate_a_preprocessed.h5ad"),
            &ds("pre/plate_b_preprocessed.h5ad"),
            "--keys",
            "a,b",
            "--out",
            &merged,
            "-q",
        ]);
        same_parts(
            &py,
            d,
            Path::new(&merged),
            &d.join("expected_merged.h5ad"),
            "shape,obs,X,layers,raw,var",
        );

        let pca = ds("pca.h5ad");
        scoop_ok(&["pca", &merged, "--n-comps", "4", "--out", &pca, "-q"]);
        assert_eq!(
            run(&py, &["compare-pca", &pca, &ds("expected_pca.h5ad"), "3"]).trim(),
            "ok"
        );

        let sub = ds("sub.h5ad");
        scoop_ok(&[
            "subsample",
            &pca,
            "--n",
            "108",
            "--with-x",
            "--out",
            &sub,
            "-q",
        ]);
        same_parts(
            &py,
            d,
            Path::new(&sub),
            Path::new(&pca),
            "shape,obs,X,obsm,layers",
        );

        let (nb, um) = (ds("nb.h5ad"), ds("um.h5ad"));
        scoop_ok(&["neighbors", &sub, "--out", &nb, "--n-neighbors", "10", "-q"]);
        scoop_ok(&["umap", &nb, "--out", &um, "-q"]);
        for (other, opy) in common::stacks() {
            let said = run(&opy, &["check-umap", &um]);
            assert_eq!(
                said.trim(),
                "ok 108 10",
                "{stack} umap read by the {other} stack"
            );
        }
        let png = ds("umap.png");
        scoop_ok(&[
            "plot",
            &um,
            "--color",
            "cell_line,plate",
            "--out",
            &png,
            "-q",
        ]);
        assert!(common::png_colors(Path::new(&png)).2.len() > 4);
    }
}
