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

/// `DIR/pca.h5ad`: 5 components of one simulated 300-cell plate, a file to plot.
fn pca_of_one_plate(dir: &Path) -> PathBuf {
    let plate = &simulate(dir, 1, 300)[0];
    let pca = dir.join("pca.h5ad");
    ok(&scoop(&[
        "pca",
        plate.to_str().unwrap(),
        "--n-comps",
        "5",
        "--out",
        pca.to_str().unwrap(),
        "-q",
    ]));
    pca
}

#[test]
fn plot_colors_numeric_columns_on_a_continuous_scale() {
    let dir = tempfile::tempdir().unwrap();
    let pca = pca_of_one_plate(dir.path());
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
    // Not read as 100+ categories (drawn grey): the scale's ends are there, and every colour
    // that is not a grey level of the antialiased text is viridis.
    let viridis: Vec<[u8; 3]> = (0..256).map(scoop::plot::palette::viridis_rgb).collect();
    for c in [viridis[0], viridis[255]] {
        assert!(counts.contains(&c), "viridis {c:?} missing");
    }
    for c in counts.iter().filter(|c| !(c[0] == c[1] && c[1] == c[2])) {
        assert!(viridis.contains(c), "{c:?} is neither viridis nor grey");
    }
}

/// The decoded pixels of a PNG written by `scoop plot`: width, height, RGB bytes.
fn png_pixels(path: &Path) -> (usize, usize, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width as usize, info.height as usize, buf)
}

#[test]
fn plot_writes_png_svg_and_pdf_figures_with_matplotlibs_text() {
    let dir = tempfile::tempdir().unwrap();
    let pca = pca_of_one_plate(dir.path());
    let plot = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "plot",
            pca.to_str().unwrap(),
            "--basis",
            "pca",
            "--color",
            "cell_line,tscp_count",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        scoop(&args)
    };
    let (png, svg, pdf) = (
        dir.path().join("f.png"),
        dir.path().join("f.svg"),
        dir.path().join("f.PDF"),
    );
    ok(&plot(&png, &["--dpi", "150"]));
    ok(&plot(&svg, &[]));
    ok(&plot(&pdf, &["--format", "pdf"]));
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
    // A format that contradicts the extension, or an extension that names none, is refused
    // before anything is written.
    let other = dir.path().join("g.svg");
    fails(
        &plot(&other, &["--format", "pdf"]),
        "does not match the extension .svg",
    );
    let jpg = dir.path().join("g.jpg");
    fails(&plot(&jpg, &[]), "cannot tell the figure format");
    assert!(!other.exists() && !jpg.exists());

    // The title as matplotlib draws it: DejaVu Sans at 12 pt, here at 150 dpi. The title
    // band is above the first frame row (a row more than half black).
    let (w, _, px) = png_pixels(&png);
    let dark = |x: usize, y: usize| px[(y * w + x) * 3] < 128;
    let frame = (0..)
        .find(|&y| (0..w).filter(|&x| dark(x, y)).count() > w / 2)
        .unwrap();
    let rows: Vec<usize> = (0..frame).filter(|&y| (0..w).any(|x| dark(x, y))).collect();
    let cols: Vec<usize> = (0..w).filter(|&x| (0..frame).any(|y| dark(x, y))).collect();
    let (height, width) = (
        rows.last().unwrap() - rows[0] + 1,
        cols.last().unwrap() - cols[0] + 1,
    );
    // 12 pt at 150 dpi: an em of 25 px; `cell_line` rises to the ascender of `l` (0.76 em)
    // and drops to the descender of nothing; its underscore reaches 0.236 em below.
    assert!((20..=28).contains(&height), "title {height} px high");
    let Some(py) = common::python() else {
        return;
    };
    let mpl: serde_json::Value = serde_json::from_str(&common::script(
        &py,
        "figures.py",
        &["mpl", "cell_line", "150"],
    ))
    .unwrap();
    let (mh, mw) = (
        mpl["height"].as_u64().unwrap() as usize,
        mpl["width"].as_u64().unwrap() as usize,
    );
    eprintln!("title {width} x {height} px, matplotlib {mw} x {mh}");
    assert!(
        height.abs_diff(mh) <= 2,
        "title {height} px high, matplotlib {mh}"
    );
    assert!(
        width.abs_diff(mw) <= 2,
        "title {width} px wide, matplotlib {mw}"
    );

    // SVG: XML with the text as text in DejaVu Sans, and the points of each panel as one PNG
    // (decoded by PIL) of the plot area's size (480 px at 100 dpi: 345.6 pt).
    let s: serde_json::Value = serde_json::from_str(&common::script(
        &py,
        "figures.py",
        &["svg", svg.to_str().unwrap()],
    ))
    .unwrap();
    let texts: Vec<&str> = s["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for t in ["cell_line", "tscp_count", "PC1", "PC2"] {
        assert!(texts.contains(&t), "{t} not in {texts:?}");
    }
    assert_eq!(
        s["families"],
        serde_json::json!(["DejaVu Sans, sans-serif"])
    );
    let images = s["images"].as_array().unwrap();
    // Two panels' points and the colorbar's scale.
    assert_eq!(images.len(), 3, "{s}");
    assert_eq!(images[0]["size"], serde_json::json!([480, 480]));
    assert!(images[0]["colors"].as_u64().unwrap() > 2, "points drawn");
    assert!(
        s["circles"].as_u64().unwrap() >= 2,
        "legend markers as vectors"
    );

    // PDF: opened by pypdf in strict mode; one page in points, the text extracted through the
    // embedded font's ToUnicode map, the images decoded.
    let p: serde_json::Value = serde_json::from_str(&common::script(
        &py,
        "figures.py",
        &["pdf", pdf.to_str().unwrap()],
    ))
    .unwrap();
    assert_eq!(p["pages"], 1);
    let size = p["mediabox"].as_array().unwrap();
    let (pw, ph) = (size[2].as_f64().unwrap(), size[3].as_f64().unwrap());
    assert!(pw > 345.6 && ph > 2.0 * 345.6, "page {pw} x {ph} pt");
    let text: Vec<&str> = p["text"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for t in ["cell_line", "tscp_count", "PC1", "PC2"] {
        assert!(text.contains(&t), "{t} not in {text:?}");
    }
    assert_eq!(
        p["fonts"],
        serde_json::json!([{"base": "/DejaVuSans", "subtype": "/Type0", "embedded": true}])
    );
    assert_eq!(p["images"][0], serde_json::json!([480, 480]));
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

#[test]
fn chunk_budgets_change_no_result() {
    let dir = tempfile::tempdir().unwrap();
    let plates = simulate(dir.path(), 2, 400);
    let preprocess = |out: &str, budget: &[&str]| -> PathBuf {
        let out = dir.path().join(out);
        let mut args = vec!["preprocess"];
        args.extend(plates.iter().map(|p| p.to_str().unwrap()));
        args.extend(["--out-dir", out.to_str().unwrap(), "--n-top-genes", "20"]);
        args.extend(["--min-plates", "1", "-q"]);
        args.extend(budget);
        ok(&scoop(&args));
        out
    };
    let whole = preprocess("whole", &[]);
    // Chunks of a few rows cut by the values budget, then by the rows budget.
    let by_values = preprocess("by_values", &["--chunk-values", "150"]);
    let by_rows = preprocess(
        "by_rows",
        &["--chunk-rows", "7", "--chunk-values", "100000"],
    );
    for out in [&by_values, &by_rows] {
        for name in [
            "plate1_filtered_preprocessed.h5ad",
            "plate2_filtered_preprocessed.h5ad",
        ] {
            let (mut a, mut b) = (
                common::dump_file(&whole.join(name)),
                common::dump_file(&out.join(name)),
            );
            // X, obs, uns and the HVG flags are the same bits; the per-gene statistics are sums
            // whose grouping follows the chunks, so they may differ in the last bits.
            let (va, vb) = (a["var"].take(), b["var"].take());
            assert_eq!(a, b, "{name} in {out:?}");
            let columns = va["columns"].as_object().unwrap();
            assert_eq!(columns.len(), vb["columns"].as_object().unwrap().len());
            for (key, ca) in columns {
                let cb = &vb["columns"][key];
                match (ca["values"].as_array(), cb["values"].as_array()) {
                    (Some(xa), Some(xb)) if xa.first().is_some_and(|v| v.is_f64()) => {
                        assert_eq!(xa.len(), xb.len());
                        for (x, y) in xa.iter().zip(xb) {
                            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                            assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0), "{key}: {x} {y}");
                        }
                    }
                    _ => assert_eq!(ca, cb, "var/{key} of {name} in {out:?}"),
                }
            }
        }
        assert_eq!(
            std::fs::read_to_string(whole.join("genes.tsv")).unwrap(),
            std::fs::read_to_string(out.join("genes.tsv")).unwrap()
        );
    }
    fails(
        &scoop(&[
            "preprocess",
            plates[0].to_str().unwrap(),
            "--out-dir",
            dir.path().join("none").to_str().unwrap(),
            "--min-plates",
            "1",
            "--chunk-values",
            "0",
        ]),
        "chunk",
    );
    assert!(!dir.path().join("none").join("genes.tsv").exists());
}
