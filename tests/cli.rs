//! The `scoop` command line: simulate/concat/inspect end to end, concat parity with anndata's
//! concat_on_disk, global options in either position, and bad input failing cleanly.

mod common;

use std::path::{Path, PathBuf};

use common::scoop;

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "scoop failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A failed run: non-zero exit and one `error:` line on stderr naming `needle`.
fn fails(out: &std::process::Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("info:")).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {err}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(needle),
        "error line {:?} lacks {needle:?}",
        lines[0]
    );
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn simulate(dir: &Path, plates: usize, cells: usize) -> Vec<PathBuf> {
    let d = dir.to_str().unwrap();
    ok(&scoop(&[
        "simulate",
        "--out",
        d,
        "--plates",
        &plates.to_string(),
        "--cells-per-plate",
        &cells.to_string(),
        "--genes",
        "60",
        "--seed",
        "3",
        "-q",
    ]));
    (1..=plates)
        .map(|i| dir.join(format!("plate{i}_filtered.h5ad")))
        .collect()
}

#[test]
fn simulate_is_deterministic_and_inspect_describes_it() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let pa = simulate(a.path(), 1, 300);
    // Different chunking and thread count must not change the data.
    ok(&scoop(&[
        "--chunk-rows",
        "17",
        "--threads",
        "1",
        "simulate",
        "--out",
        b.path().to_str().unwrap(),
        "--plates",
        "1",
        "--cells-per-plate",
        "300",
        "--genes",
        "60",
        "--seed",
        "3",
        "-q",
    ]));
    let pb = b.path().join("plate1_filtered.h5ad");
    assert_eq!(common::dump_file(&pa[0]), common::dump_file(&pb));
    let text = ok(&scoop(&["inspect", pa[0].to_str().unwrap()]));
    assert!(
        text.starts_with("AnnData object with n_obs × n_vars = 300 × 60"),
        "{text}"
    );
    assert!(
        text.contains("'cell_line'")
            && text.contains("'pass_filter'")
            && text.contains("X: csr_matrix float32"),
        "{text}"
    );
}

#[test]
fn concat_matches_anndata_concat_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let plates = simulate(dir.path(), 3, 150);
    let ours = dir.path().join("merged.h5ad");
    let mut args = vec!["concat".to_string()];
    args.extend(plates.iter().map(|p| p.to_str().unwrap().to_string()));
    args.extend([
        "--out".into(),
        ours.to_str().unwrap().into(),
        "--label".into(),
        "plate".into(),
        "--chunk-rows".into(),
        "40".into(),
        "-q".into(),
    ]);
    let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    ok(&scoop(&argv));
    let text = ok(&scoop(&["inspect", ours.to_str().unwrap()]));
    assert!(text.contains("n_obs × n_vars = 450 × 60"), "{text}");
    let Some(py) = common::python() else { return };
    let theirs = dir.path().join("anndata_merged.h5ad");
    let mut pargs = vec!["concat", theirs.to_str().unwrap()];
    pargs.extend(plates.iter().map(|p| p.to_str().unwrap()));
    common::interop(&py, &pargs);
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    common::interop(
        &py,
        &["dump", theirs.to_str().unwrap(), a.to_str().unwrap()],
    );
    common::interop(&py, &["dump", ours.to_str().unwrap(), b.to_str().unwrap()]);
    common::interop(&py, &["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
}

#[test]
fn global_options_work_before_and_after_the_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let p = simulate(dir.path(), 1, 50);
    let f = p[0].to_str().unwrap();
    let o1 = dir.path().join("o1.h5ad");
    let o2 = dir.path().join("o2.h5ad");
    ok(&scoop(&[
        "--backend",
        "cpu",
        "--chunk-rows",
        "7",
        "-q",
        "concat",
        f,
        "--out",
        o1.to_str().unwrap(),
    ]));
    ok(&scoop(&[
        "concat",
        f,
        "--out",
        o2.to_str().unwrap(),
        "--backend",
        "cpu",
        "--chunk-rows",
        "9",
        "-q",
        "--threads",
        "1",
    ]));
    assert_eq!(common::dump_file(&o1), common::dump_file(&o2));
    // `--backend cuda` runs the whole demo where a device opens, and fails naming CUDA where
    // none does (CI): never a silent fallback to the CPU.
    let demo = scoop(&[
        "--backend",
        "cuda",
        "-q",
        "demo",
        "--dir",
        dir.path().join("d").to_str().unwrap(),
        "--cells-per-plate",
        "50",
        "--genes",
        "30",
    ]);
    match scoop::backend::cuda::CudaBackend::open(&[0]) {
        Ok(_) => {
            ok(&demo);
            assert!(dir.path().join("d/run/umap.png").is_file());
        }
        Err(_) => fails(&demo, "CUDA"),
    }
}

#[test]
fn bad_input_fails_with_one_clear_line_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = simulate(d, 1, 40).remove(0);
    let out = d.join("out.h5ad");
    let o = out.to_str().unwrap();

    // Missing file.
    fails(
        &scoop(&["concat", d.join("nope.h5ad").to_str().unwrap(), "--out", o]),
        "nope.h5ad",
    );
    // Not HDF5.
    let text = d.join("text.h5ad");
    std::fs::write(&text, "cell,gene\n1,2\n").unwrap();
    fails(
        &scoop(&["inspect", text.to_str().unwrap()]),
        "not an HDF5 file",
    );

    // Variants of a good file, broken in one element each.
    let variant = |name: &str, edit: &dyn Fn(&hdf5::File)| -> PathBuf {
        let p = d.join(name);
        std::fs::copy(&good, &p).unwrap();
        let f = hdf5::File::open_rw(&p).unwrap();
        edit(&f);
        p
    };
    let no_x = variant("no_x.h5ad", &|f| f.unlink("X").unwrap());
    fails(
        &scoop(&["concat", no_x.to_str().unwrap(), "--out", o]),
        "/X: missing",
    );
    let set_enc = |g: &hdf5::Group, v: &str| {
        g.delete_attr("encoding-type").unwrap();
        g.new_attr::<hdf5::types::VarLenUnicode>()
            .shape(())
            .create("encoding-type")
            .unwrap()
            .write_scalar(&v.parse::<hdf5::types::VarLenUnicode>().unwrap())
            .unwrap();
    };
    let csc = variant("csc.h5ad", &|f| {
        set_enc(&f.group("X").unwrap(), "csc_matrix")
    });
    fails(
        &scoop(&["concat", csc.to_str().unwrap(), "--out", o]),
        "csc_matrix",
    );
    let unknown = variant("unknown.h5ad", &|f| {
        set_enc(&f.group("X").unwrap(), "blocked_matrix")
    });
    fails(
        &scoop(&["concat", unknown.to_str().unwrap(), "--out", o]),
        "unknown encoding-type \"blocked_matrix\"",
    );
    let truncated = variant("truncated.h5ad", &|f| {
        let x = f.group("X").unwrap();
        let idx: Vec<i32> = x.dataset("indices").unwrap().read_raw().unwrap();
        x.unlink("indices").unwrap();
        x.new_dataset_builder()
            .with_data(&idx[..idx.len() / 2])
            .create("indices")
            .unwrap();
    });
    fails(
        &scoop(&["concat", truncated.to_str().unwrap(), "--out", o]),
        "/X/indices: truncated",
    );
    let bad_obs = variant("bad_obs.h5ad", &|f| {
        set_enc(&f.group("obs").unwrap(), "mystery")
    });
    fails(
        &scoop(&["concat", bad_obs.to_str().unwrap(), "--out", o]),
        "unknown encoding-type \"mystery\"",
    );
    assert!(!out.exists());

    // An existing output is not overwritten without --force, and is left as it was.
    std::fs::write(&out, "keep me").unwrap();
    fails(
        &scoop(&["concat", good.to_str().unwrap(), "--out", o]),
        "--force",
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");
    ok(&scoop(&[
        "concat",
        good.to_str().unwrap(),
        "--out",
        o,
        "--force",
        "-q",
    ]));
    assert!(common::dump_file(&out)["shape"] == serde_json::json!([40, 60]));

    // No temporary files or staging directories anywhere.
    assert!(
        files_in(d)
            .iter()
            .all(|n| !n.contains("scoop-tmp") && !n.starts_with(".scoop-")),
        "{:?}",
        files_in(d)
    );
}

#[test]
fn demo_runs_the_workflow_on_small_simulated_plates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    let out = scoop(&[
        "-q",
        "--backend",
        "cpu",
        "demo",
        "--dir",
        d.to_str().unwrap(),
        "--cells-per-plate",
        "400",
        "--genes",
        "300",
        "--n-top-genes",
        "80",
        "--n-comps",
        "20",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The read paths' rates, the command it runs, and the run's table of steps.
    assert!(stdout.contains("through HDF5 alone"), "{stdout}");
    assert!(stdout.contains("scoop run "), "{stdout}");
    assert!(stdout.contains("10 of 10 steps run"), "{stdout}");
    let d = d.join("run");
    for name in [
        "merged.h5ad",
        "subset.h5ad",
        "umap.h5ad",
        "umap.png",
        "run.json",
    ] {
        assert!(
            stdout.contains(&*d.join(name).to_string_lossy()),
            "{name}: {stdout}"
        );
    }
    let pca = scoop::io::H5adReader::open(&d.join("pca.h5ad")).unwrap();
    let n_obs = pca.obs().unwrap().len();
    assert!(n_obs > 0 && pca.obs().unwrap().column("plate").is_some());
    match pca.element("obsm", "X_pca").unwrap() {
        scoop::io::Element::Array(a) => assert_eq!(a.shape, vec![n_obs, 20]),
        other => panic!("X_pca: {other:?}"),
    }
    assert!(d.join("X_pca.zarr/.zarray").is_file());
}

#[test]
fn plot_colors_numeric_columns_on_a_continuous_scale() {
    let dir = tempfile::tempdir().unwrap();
    let plate = &simulate(dir.path(), 1, 300)[0];
    let pca = dir.path().join("pca.h5ad");
    ok(&scoop(&[
        "pca",
        plate.to_str().unwrap(),
        "--n-comps",
        "5",
        "--out",
        pca.to_str().unwrap(),
        "-q",
    ]));
    // The colours of a plot of `keys` on the PCA.
    let plot = |keys: &str, name: &str| {
        let png = dir.path().join(name);
        ok(&scoop(&[
            "plot",
            pca.to_str().unwrap(),
            "--basis",
            "pca",
            "--color",
            keys,
            "--out",
            png.to_str().unwrap(),
        ]));
        common::png_colors(&png).2
    };
    let colors = plot("tscp_count,pcnt_mito,pass_filter", "p.png");
    // Integer and float columns: viridis from its first colour (the smallest value, the
    // colorbar's bottom) to its last (the largest, its top), as scanpy draws a numeric column.
    for c in [[0x44, 0x01, 0x54], [0xfd, 0xe7, 0x25]] {
        assert!(colors.contains(&c), "viridis {c:?} missing");
    }
    // The string column still colors by category (tab10).
    assert!(colors.contains(&[0x1f, 0x77, 0xb4]));
    // A numeric panel alone: no categorical colours, and not grey (100+ categories).
    let counts = plot("tscp_count", "counts.png");
    assert!(
        !counts.contains(&[0x1f, 0x77, 0xb4]),
        "tab10 blue in a numeric panel"
    );
    assert!(
        !counts.contains(&[0x80, 0x80, 0x80]),
        "grey: read as 100+ categories"
    );
}

/// docs/cli.md is the reference `--help` prints, command by command: it cannot drift.
/// `SCOOP_BLESS=1` rewrites it from the current definitions.
#[test]
fn docs_cli_md_is_the_help_text() {
    let path = common::root().join("docs/cli.md");
    let want = scoop::cli::reference_markdown();
    if std::env::var_os("SCOOP_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/cli.md differs from the --help text; rewrite it with \
         SCOOP_BLESS=1 cargo test --release --test cli docs_cli_md"
    );
    for cmd in [
        "preprocess",
        "concat",
        "pca",
        "neighbors",
        "umap",
        "plot",
        "inspect",
    ] {
        assert!(have.contains(&format!("## scoop {cmd}")), "{cmd} missing");
    }
}
