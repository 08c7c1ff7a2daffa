//! `scoop run` against the same workflow run step by step (`preprocess` → `concat --label plate`
//! → `pca` → `subsample`), and its record: pass counts, resume rules, kills.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use scoop::io::{CsrChunk, DataFrame, Element, H5adReader, MatrixReader};
use serde_json::Value;

const PLATES: [&str; 3] = [
    "plate1_filtered.h5ad",
    "plate2_filtered.h5ad",
    "plate3_filtered.h5ad",
];

fn ok(args: &[&str]) -> String {
    let out = common::scoop(args);
    assert!(
        out.status.success(),
        "scoop {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// 3 simulated plates of 2,000 cells x 300 genes in `dir/plates`.
fn plates(dir: &Path) -> Vec<String> {
    let p = dir.join("plates");
    let ps = p.to_str().unwrap();
    ok(&[
        "simulate",
        "--out",
        ps,
        "--plates",
        "3",
        "--cells-per-plate",
        "2000",
        "--genes",
        "300",
        "-q",
    ]);
    PLATES
        .iter()
        .map(|n| p.join(n).to_string_lossy().into_owned())
        .collect()
}

/// The workflow's parameters used throughout.
const PARAMS: [&str; 12] = [
    "--filter",
    "pass_filter=full",
    "--n-top-genes",
    "100",
    "--n-comps",
    "20",
    "--subsample",
    "3000",
    "--seed",
    "1",
    "--color",
    "cell_line,plate",
];

/// `scoop run` with [`PARAMS`], `extra`'s flag-value pairs replacing theirs.
fn run_args<'a>(plates: &'a [String], out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run"];
    args.extend(plates.iter().map(|s| s.as_str()));
    args.extend(["--out-dir", out.to_str().unwrap(), "-q"]);
    for pair in PARAMS.chunks(2) {
        let over = extra.chunks(2).find(|e| e[0] == pair[0]);
        args.extend(over.unwrap_or(pair));
    }
    for pair in extra.chunks(2) {
        if !PARAMS.contains(&pair[0]) {
            args.extend(pair);
        }
    }
    args
}

fn run(plates: &[String], out: &Path, extra: &[&str]) -> String {
    ok(&run_args(plates, out, extra))
}

fn state(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap()
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn x(path: &Path) -> CsrChunk {
    let f = H5adReader::open(path).unwrap();
    let n = f.shape().unwrap().0;
    f.x().unwrap().read_rows(0..n).unwrap()
}

fn obs(path: &Path) -> DataFrame {
    H5adReader::open(path).unwrap().obs().unwrap()
}

fn dense(path: &Path, group: &str, key: &str) -> (Vec<usize>, Vec<f64>) {
    match H5adReader::open(path).unwrap().element(group, key).unwrap() {
        Element::Array(a) => (a.shape.clone(), a.data.to_f64()),
        other => panic!("{}: {group}/{key}: {other:?}", path.display()),
    }
}

fn uns_variance(path: &Path) -> Vec<f64> {
    let e = H5adReader::open(path)
        .unwrap()
        .element("uns", "pca")
        .unwrap();
    match e.get("variance") {
        Some(Element::Array(a)) => a.data.to_f64(),
        other => panic!("uns/pca/variance: {other:?}"),
    }
}

/// Columns of a row-major `rows x k` matrix agree to `tol` relative to each column's norm.
fn assert_columns_close(what: &str, a: &[f64], b: &[f64], k: usize, tol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: sizes");
    for c in 0..k {
        let (mut diff, mut norm) = (0.0f64, 0.0f64);
        for (x, y) in a.iter().skip(c).step_by(k).zip(b.iter().skip(c).step_by(k)) {
            diff += (x - y) * (x - y);
            norm += y * y;
        }
        let rel = diff.sqrt() / norm.sqrt().max(1e-30);
        assert!(
            rel <= tol,
            "{what}: component {c} differs by {rel:e} (relative)"
        );
    }
}

fn assert_same_obs(what: &str, a: &DataFrame, b: &DataFrame) {
    let cols = |d: &DataFrame| d.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    assert_eq!(cols(a), cols(b), "{what}: obs columns");
    assert_eq!(a.index_name, b.index_name, "{what}: obs index name");
    assert_eq!(common::df_json(a), common::df_json(b), "{what}: obs");
    for (ca, cb) in a.columns.iter().zip(&b.columns) {
        assert_eq!(ca.values, cb.values, "{what}: obs column {}", ca.name);
    }
}

#[test]
fn run_equals_the_steps_run_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plates = plates(d);
    let out = d.join("run");
    let table = run(&plates, &out, &[]);
    assert!(table.contains("merge"), "{table}");

    // The same workflow, step by step.
    let pre = preprocess(&plates, &d.join("pre"), &[]);
    let pre_files: Vec<String> = PLATES
        .iter()
        .map(|p| {
            pre.join(p.replace(".h5ad", "_preprocessed.h5ad"))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let merged = d.join("merged.h5ad");
    let mut args = vec!["concat"];
    args.extend(pre_files.iter().map(|s| s.as_str()));
    args.extend([
        "--out",
        merged.to_str().unwrap(),
        "--label",
        "plate",
        "--keys",
        "plate1_filtered,plate2_filtered,plate3_filtered",
        "-q",
    ]);
    ok(&args);
    let pca = d.join("pca.h5ad");
    ok(&[
        "pca",
        merged.to_str().unwrap(),
        "--n-comps",
        "20",
        "--out",
        pca.to_str().unwrap(),
        "-q",
    ]);
    let sub = d.join("sub.h5ad");
    ok(&[
        "subsample",
        pca.to_str().unwrap(),
        "--n",
        "3000",
        "--seed",
        "1",
        "--out",
        sub.to_str().unwrap(),
        "-q",
    ]);

    // Gene selection.
    assert_eq!(
        std::fs::read_to_string(out.join("genes.tsv")).unwrap(),
        std::fs::read_to_string(pre.join("genes.tsv")).unwrap()
    );
    // Merged X, obs and var, exactly.
    let (xa, xb) = (x(&out.join("merged.h5ad")), x(&merged));
    assert_eq!(
        (xa.n_rows(), xa.n_cols),
        (xb.n_rows(), xb.n_cols),
        "merged shape"
    );
    assert!(xa.n_rows() > 5000 && xa.n_cols > 10, "{}", xa.n_cols);
    assert_eq!(xa.indptr, xb.indptr, "merged X indptr");
    assert_eq!(xa.indices, xb.indices, "merged X indices");
    assert_eq!(xa.data, xb.data, "merged X data");
    assert_same_obs("merged", &obs(&out.join("merged.h5ad")), &obs(&merged));
    let var = |p: &Path| H5adReader::open(p).unwrap().var().unwrap();
    assert_eq!(
        common::df_json(&var(&out.join("merged.h5ad"))),
        common::df_json(&var(&merged))
    );

    // PCA: variances, components and X_pca to 1e-6 relative (the gram is summed in another
    // order; the sign rule is the same).
    let (va, vb) = (uns_variance(&out.join("pca.h5ad")), uns_variance(&pca));
    for (a, b) in va.iter().zip(&vb) {
        assert!((a - b).abs() <= 1e-6 * b.abs(), "variance {a} vs {b}");
    }
    let (sa, pa) = dense(&out.join("pca.h5ad"), "obsm", "X_pca");
    let (sb, pb) = dense(&pca, "obsm", "X_pca");
    assert_eq!(sa, sb);
    assert_eq!(sa[1], 20);
    assert_columns_close("X_pca", &pa, &pb, 20, 1e-6);
    let (_, la) = dense(&out.join("pca.h5ad"), "varm", "PCs");
    let (_, lb) = dense(&pca, "varm", "PCs");
    assert_columns_close("PCs", &la, &lb, 20, 1e-6);
    assert_same_obs("pca", &obs(&out.join("pca.h5ad")), &obs(&pca));
    assert!(out.join("X_pca.zarr").is_dir());

    // The subset: the same cells, their coordinates.
    assert_same_obs("subset", &obs(&out.join("subset.h5ad")), &obs(&sub));
    let (ssa, qa) = dense(&out.join("subset.h5ad"), "obsm", "X_pca");
    let (ssb, qb) = dense(&sub, "obsm", "X_pca");
    assert_eq!(ssa, ssb);
    assert_eq!(ssa[0], 3000);
    assert_columns_close("subset X_pca", &qa, &qb, 20, 1e-6);

    // The end of the workflow is there.
    let (su, _) = dense(&out.join("umap.h5ad"), "obsm", "X_umap");
    assert_eq!(su, vec![3000, 2]);
    let (w, h, colors) = common::png_colors(&out.join("umap.png"));
    assert!(w > 100 && h > 100 && colors.len() > 10);

    // As anndata reads them (each Python stack): the merged file whole; pca.h5ad's obs, var and
    // X (its X_pca is compared above; the subset has no X, which the dump needs).
    for (stack, py) in common::stacks() {
        for (name, ours, theirs, only) in [
            ("merged", out.join("merged.h5ad"), merged.clone(), None),
            (
                "pca",
                out.join("pca.h5ad"),
                pca.clone(),
                Some("--only=obs,var,X"),
            ),
        ] {
            let (a, b) = (
                d.join(format!("{name}_run.json")),
                d.join(format!("{name}_steps.json")),
            );
            for (h5ad, json) in [(&ours, &a), (&theirs, &b)] {
                common::interop(
                    &py,
                    &["dump", h5ad.to_str().unwrap(), json.to_str().unwrap()],
                );
            }
            eprintln!("{stack}: {name}");
            let mut args = vec!["compare", a.to_str().unwrap(), b.to_str().unwrap()];
            args.extend(only);
            common::interop(&py, &args);
        }
    }

    // (b) Pass count: each raw plate streamed at most twice, merged X at most once.
    let st = state(&out);
    let mut passes: std::collections::HashMap<String, u64> = Default::default();
    for step in st["steps"].as_array().unwrap() {
        for i in step["inputs"].as_array().unwrap() {
            let p = i["fingerprint"]["path"].as_str().unwrap().to_string();
            *passes.entry(p).or_default() += i["passes"].as_u64().unwrap();
        }
    }
    for p in &plates {
        let abs = std::path::absolute(p).unwrap();
        assert_eq!(passes[abs.to_str().unwrap()], 2, "{p}: {passes:?}");
    }
    let m = std::path::absolute(out.join("merged.h5ad")).unwrap();
    assert_eq!(passes[m.to_str().unwrap()], 1, "{passes:?}");
    assert_eq!(st["backend"].as_str().map(|b| !b.is_empty()), Some(true));
    let merge = st["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "merge")
        .unwrap();
    assert!(merge["values"].as_u64().unwrap() > 0 && merge["seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(merge["outputs"].as_array().unwrap().len(), 2);
    // Every step records its peak resident memory (linux: /proc/self/status's VmHWM, reset per
    // step): at least the process's own pages, far below what this small run could reach.
    for step in st["steps"].as_array().unwrap() {
        let peak = &step["peak_rss_bytes"];
        if cfg!(target_os = "linux") {
            let b = peak.as_u64().unwrap_or_else(|| panic!("{step}"));
            assert!((4 << 20..4 << 30).contains(&b), "{}: {b}", step["name"]);
        } else {
            assert!(step.get("peak_rss_bytes").is_some(), "{step}");
        }
    }
}

#[test]
fn reruns_redo_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let plates = plates(dir.path());
    let out = dir.path().join("run");
    run(&plates, &out, &[]);
    let first = state(&out);
    assert_eq!(names(&first["last_run"]["ran"]).len(), 10);

    // (d) Nothing changed: nothing is redone, no output is rewritten.
    let mtime = |p: &str| std::fs::metadata(out.join(p)).unwrap().modified().unwrap();
    let before: Vec<_> = ["merged.h5ad", "pca.h5ad", "umap.png"]
        .iter()
        .map(|p| mtime(p))
        .collect();
    let table = run(&plates, &out, &[]);
    let again = state(&out);
    assert!(
        names(&again["last_run"]["ran"]).is_empty(),
        "{}",
        again["last_run"]
    );
    assert_eq!(names(&again["last_run"]["skipped"]).len(), 10);
    assert!(
        table.contains("skipped") && table.contains("0 of 10 steps run"),
        "{table}"
    );
    let after: Vec<_> = ["merged.h5ad", "pca.h5ad", "umap.png"]
        .iter()
        .map(|p| mtime(p))
        .collect();
    assert_eq!(before, after);

    // (c) A changed --n-comps reruns PCA and what follows, not the plates' passes.
    run(&plates, &out, &["--n-comps", "10"]);
    let s = state(&out);
    assert_eq!(
        names(&s["last_run"]["ran"]),
        ["pca", "subset", "neighbors", "umap", "plot"]
    );
    let skipped = names(&s["last_run"]["skipped"]);
    assert_eq!(skipped.len(), 5);
    assert!(skipped.contains(&"merge".to_string()));
    let (shape, _) = dense(&out.join("pca.h5ad"), "obsm", "X_pca");
    assert_eq!(shape[1], 10);

    // A changed --color or --figure redoes only the figure; a touched plate redoes its
    // statistics and all that follows (the other plates' statistics stand).
    run(&plates, &out, &["--n-comps", "10", "--color", "plate"]);
    assert_eq!(names(&state(&out)["last_run"]["ran"]), ["plot"]);
    let svg_args = ["--n-comps", "10", "--color", "plate", "--figure", "svg"];
    run(&plates, &out, &svg_args);
    let s = state(&out);
    assert_eq!(names(&s["last_run"]["ran"]), ["plot"]);
    let svg = std::fs::read_to_string(out.join("umap.svg")).unwrap();
    assert!(
        svg.starts_with("<?xml") && svg.contains("<svg") && svg.contains(">plate</text>"),
        "{}",
        &svg[..svg.len().min(400)]
    );
    assert!(
        svg.contains("data:image/png;base64,"),
        "the points are an image"
    );
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(&plates[1])
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    drop(f);
    run(&plates, &out, &["--n-comps", "10", "--color", "plate"]);
    let s = state(&out);
    let ran = names(&s["last_run"]["ran"]);
    assert_eq!(ran[0], "stats:plate2_filtered", "{ran:?}");
    assert_eq!(ran.len(), 8, "{ran:?}");
}

#[test]
fn a_new_subsample_is_drawn_from_pca_h5ad_without_a_projection() {
    let dir = tempfile::tempdir().unwrap();
    let plates = plates(dir.path());
    let out = dir.path().join("run");
    run(&plates, &out, &[]);
    let mtime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let pca_before = mtime(&out.join("pca.h5ad"));

    // Another size and seed: pca (and everything before it) stands; the subset is drawn again.
    let other = ["--subsample", "2000", "--seed", "7"];
    run(&plates, &out, &other);
    let s = state(&out);
    assert_eq!(
        names(&s["last_run"]["ran"]),
        ["subset", "neighbors", "umap", "plot"]
    );
    assert_eq!(mtime(&out.join("pca.h5ad")), pca_before);
    let step = |name: &str| {
        s["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(step("subset")["result"]["from_projection"], false);
    assert_eq!(step("subset")["inputs"][0]["passes"], 1);

    // The same subset as a fresh run with those parameters draws during its projection.
    let fresh = dir.path().join("fresh");
    run(&plates, &fresh, &other);
    assert_eq!(
        state(&fresh)["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == "subset")
            .unwrap()["result"]["from_projection"],
        true
    );
    assert_same_obs(
        "subset",
        &obs(&out.join("subset.h5ad")),
        &obs(&fresh.join("subset.h5ad")),
    );
    let (sa, a) = dense(&out.join("subset.h5ad"), "obsm", "X_pca");
    let (sb, b) = dense(&fresh.join("subset.h5ad"), "obsm", "X_pca");
    assert_eq!(sa, vec![2000, 20]);
    assert_eq!((sa, a), (sb, b));
}

/// The three arrays of `path`'s X, read through `scoop`'s readers.
fn csr(path: &Path) -> (Vec<usize>, Vec<u32>, Vec<f32>) {
    let c = x(path);
    (c.indptr, c.indices, c.data)
}

/// The `X pass:` line of `scoop inspect --stats` (rows, stored values, sum), timing cut off.
fn stats_line(args: &[&str]) -> String {
    let out = ok(args);
    let line = out
        .lines()
        .find(|l| l.starts_with("X pass:"))
        .unwrap_or_else(|| panic!("{out}"));
    line.split(", ").take(3).collect::<Vec<_>>().join(", ")
}

#[test]
fn pca_h5ad_links_its_x_to_merged_h5ad() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plates = plates(d);
    // Compressed, so that the linked X goes through the parallel reader's decoding too.
    let first = d.join("first");
    run(&plates, &first, &["--compression", "gzip"]);
    // The directory moved as a whole: the link resolves beside pca.h5ad.
    let out = d.join("moved");
    std::fs::rename(&first, &out).unwrap();
    let (pca, merged) = (out.join("pca.h5ad"), out.join("merged.h5ad"));
    let (ps, ms) = (pca.to_str().unwrap(), merged.to_str().unwrap());
    let link = H5adReader::open(&pca)
        .unwrap()
        .x_link()
        .expect("X is a link");
    assert_eq!(
        (link.file.as_str(), link.element.as_str()),
        ("merged.h5ad", "/X")
    );
    assert!(H5adReader::open(&merged).unwrap().x_link().is_none());

    // scoop's readers read merged.h5ad's bytes for pca.h5ad's X (the two files lay their
    // elements out differently, so offsets taken in one and read in the other would fail or
    // differ), on both read paths.
    let want = csr(&merged);
    assert!(want.0.len() > 5000 && want.2.len() > 10_000);
    assert!(csr(&pca) == want, "pca.h5ad's X as scoop reads it");
    for path in ["parallel", "hdf5"] {
        assert_eq!(
            stats_line(&["inspect", "--stats", "--read-path", path, ps]),
            stats_line(&["inspect", "--stats", "--read-path", path, ms]),
            "inspect --stats --read-path {path}"
        );
    }
    assert!(
        ok(&["inspect", ps]).contains("; stored in merged.h5ad (/X, external link)"),
        "{}",
        ok(&["inspect", ps])
    );

    // Commands reading pca.h5ad's X give what they give on merged.h5ad, and write
    // self-contained files.
    let res = d.join("res");
    std::fs::create_dir(&res).unwrap();
    let on = |name: &str, input: &str, args: &[&str]| -> PathBuf {
        let o = res.join(name);
        let mut a = vec![args[0], input];
        a.extend(&args[1..]);
        a.extend(["--out", o.to_str().unwrap(), "-q"]);
        ok(&a);
        o
    };
    let sub = ["subsample", "--n", "700", "--seed", "3", "--with-x"];
    let (a, b) = (on("sub_p.h5ad", ps, &sub), on("sub_m.h5ad", ms, &sub));
    assert!(csr(&a) == csr(&b), "subsample --with-x");
    let pc = ["pca", "--n-comps", "5"];
    let (a, b) = (on("pca_p.h5ad", ps, &pc), on("pca_m.h5ad", ms, &pc));
    assert!(csr(&a) == want, "pca's copy of X");
    assert!(H5adReader::open(&a).unwrap().x_link().is_none());
    assert_eq!(dense(&a, "obsm", "X_pca"), dense(&b, "obsm", "X_pca"));
    let nb = ["neighbors", "--use-rep", "X", "--n-neighbors", "5"];
    let (a, b) = (on("nb_p.h5ad", ps, &nb), on("nb_m.h5ad", ms, &nb));
    let graph = |p: &Path| {
        let f = H5adReader::open(p).unwrap();
        let m = MatrixReader::open(&f.group("obsp").unwrap(), "distances").unwrap();
        let c = m.read_rows(0..m.shape().0).unwrap();
        (c.indptr, c.indices, c.data)
    };
    assert!(graph(&a) == graph(&b), "neighbors --use-rep X");
    let cat = res.join("concat.h5ad");
    ok(&[
        "concat",
        ps,
        ms,
        "--label",
        "source",
        "--out",
        cat.to_str().unwrap(),
        "-q",
    ]);
    let (c, m) = (x(&cat), x(&merged));
    assert_eq!(c.n_rows(), 2 * m.n_rows());
    assert!(
        c.indices == [&m.indices[..], &m.indices[..]].concat(),
        "concat: indices"
    );
    assert!(
        c.data == [&m.data[..], &m.data[..]].concat(),
        "concat: values"
    );

    // anndata (each stack) reads it from another working directory.
    let elsewhere = d.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    for (stack, py) in common::stacks() {
        let said = common::script(
            &py,
            "linked_x.py",
            &[out.to_str().unwrap(), elsewhere.to_str().unwrap()],
        );
        assert_eq!(said.trim(), "ok", "{stack}");
    }

    // Separated from merged.h5ad, pca.h5ad says where its X should be.
    let alone = d.join("alone");
    std::fs::create_dir(&alone).unwrap();
    std::fs::copy(&pca, alone.join("pca.h5ad")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_scoop"))
        .args(["inspect", "pca.h5ad"])
        .current_dir(&alone)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: pca.h5ad: /X: an external link to /X in merged.h5ad, which cannot be opened: \
         keep merged.h5ad beside this file (move their directory as a whole)\n"
    );
}

/// A rerun whose merge replaces merged.h5ad removes pca.h5ad (whose X links to it) with the
/// old merged file: killed before the new pca.h5ad is committed, it leaves no pca.h5ad, and
/// resumed, pca.h5ad's X is the new merged file's.
#[test]
fn a_new_merged_h5ad_takes_the_pca_h5ad_linking_to_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let plates = plates(dir.path());
    let out = dir.path().join("run");
    run(&plates, &out, &[]);
    assert!(out.join("pca.h5ad").is_file());
    let gzip = ["--compression", "gzip"];
    run_signalled(&plates, &out, &gzip, libc::SIGKILL, || {
        temp_exists(&out, "pca.h5ad")
    })
    .expect("the run finished before the kill");
    assert!(recorded(&out).contains(&"merge".to_string()));
    assert!(
        !out.join("pca.h5ad").exists(),
        "a pca.h5ad links to the new merged.h5ad"
    );
    run(&plates, &out, &gzip);
    let s = state(&out);
    assert_eq!(
        names(&s["last_run"]["ran"]),
        ["pca", "subset", "neighbors", "umap", "plot"]
    );
    assert!(csr(&out.join("pca.h5ad")) == csr(&out.join("merged.h5ad")));
}

#[test]
fn print_config_reads_back_as_the_defaults() {
    let text = ok(&["run", "--print-config"]);
    assert!(
        text.contains("n_comps") && text.contains("# filter = "),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("run.toml");
    std::fs::write(&cfg, &text).unwrap();
    let read = scoop::workflow::run::RunConfig::read(&cfg).unwrap();
    assert_eq!(read, scoop::workflow::run::RunConfig::default());

    // A config file supplies the parameters; flags override it.
    let plates = plates(dir.path());
    let edited = text
        .replace(
            "# filter = \"pass_filter=full\"",
            "filter = \"pass_filter=full\"",
        )
        .replace("n_top_genes = 2000", "n_top_genes = 100")
        .replace("subsample = 1000000", "subsample = 500")
        .replace("# n_comps = 300", "n_comps = 7");
    std::fs::write(&cfg, edited).unwrap();
    let out = dir.path().join("run");
    let mut args = vec!["run", "--config", cfg.to_str().unwrap()];
    args.extend(plates.iter().map(|s| s.as_str()));
    args.extend(["--out-dir", out.to_str().unwrap(), "--n-comps", "5", "-q"]);
    ok(&args);
    let s = state(&out);
    assert_eq!(s["params"]["n_comps"], 5);
    assert_eq!(s["params"]["subsample"], 500);
    assert_eq!(s["params"]["filter"], "pass_filter=full");
    let (shape, _) = dense(&out.join("subset.h5ad"), "obsm", "X_pca");
    assert_eq!(shape, vec![500, 5]);

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "n_comp = 5\n").unwrap();
    let err = common::scoop_fails(&["run", "--config", bad.to_str().unwrap()]);
    assert!(err.contains("n_comp") && err.contains("bad.toml"), "{err}");
}

/// Starts `scoop run`, sends it `signal` (SIGKILL, SIGINT) once `when` holds, and waits for it;
/// returns its exit status and stderr, or None when it finished first.
fn run_signalled(
    plates: &[String],
    out: &Path,
    extra: &[&str],
    signal: i32,
    when: impl Fn() -> bool,
) -> Option<(std::process::ExitStatus, String)> {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_scoop"));
    let mut args = run_args(plates, out, &[]);
    args.extend(extra);
    let mut child = Command::new(bin)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let mut sent = false;
    while t.elapsed() < Duration::from_secs(60) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if when() {
            // SAFETY: a signal to the child this test started and has not reaped.
            assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
            sent = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    if !sent && child.try_wait().unwrap().is_none() {
        child.kill().unwrap();
        child.wait().unwrap();
        panic!("scoop run neither finished nor reached the signal point");
    }
    let out = child.wait_with_output().unwrap();
    sent.then(|| {
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
}

/// True when `name` is being written: staged in one of `out`'s staging directories
/// (`.scoop-XXXXXXXX/NAME`).
fn temp_exists(out: &Path, name: &str) -> bool {
    std::fs::read_dir(out).is_ok_and(|d| {
        d.flatten().any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(".scoop-") && e.path().join(name).exists()
        })
    })
}

fn recorded(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out.join("run.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .map(|s| names(&s["last_run"]["ran"]))
        .unwrap_or_default()
}

#[test]
fn killed_runs_resume_to_the_same_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let plates = plates(dir.path());
    let whole = dir.path().join("whole");
    run(&plates, &whole, &[]);

    // SIGKILL at three points; Ctrl-C (SIGINT) during pass 2's write.
    for (i, (point, signal)) in [
        ("merged.h5ad", libc::SIGKILL),
        ("pca.h5ad", libc::SIGKILL),
        ("umap.h5ad", libc::SIGKILL),
        ("merged.h5ad", libc::SIGINT),
    ]
    .into_iter()
    .enumerate()
    {
        let out = dir.path().join(format!("killed{i}"));
        let (status, stderr) =
            run_signalled(&plates, &out, &[], signal, || temp_exists(&out, point))
                .unwrap_or_else(|| panic!("{point}: the run finished before the signal"));
        let done_before = recorded(&out);
        if signal == libc::SIGINT {
            // One line that says how to resume, and Ctrl-C's exit status.
            assert_eq!(status.code(), Some(130), "{stderr}");
            let record = std::path::absolute(out.join("run.json")).unwrap();
            assert_eq!(
                stderr,
                format!(
                    "scoop: interrupted; run the same command again to resume (finished steps \
                     are kept in {})\n",
                    record.display()
                )
            );
            assert!(
                done_before.iter().any(|s| s.starts_with("stats:")),
                "{done_before:?}"
            );
        }
        // Nothing half-written under a final name.
        assert!(!out.join(point).exists(), "{point} exists after the kill");
        run(&plates, &out, &[]);
        let s = state(&out);
        for step in &done_before {
            assert!(
                names(&s["last_run"]["skipped"]).contains(step),
                "{point}: {step} finished before the kill and was redone"
            );
        }
        assert!(!temp_exists(&out, point), "a temporary file is left");
        let (xa, xb) = (x(&out.join("merged.h5ad")), x(&whole.join("merged.h5ad")));
        assert_eq!(
            (xa.indptr, xa.indices, xa.data),
            (xb.indptr, xb.indices, xb.data)
        );
        assert_same_obs(
            point,
            &obs(&out.join("subset.h5ad")),
            &obs(&whole.join("subset.h5ad")),
        );
        let (_, a) = dense(&out.join("pca.h5ad"), "obsm", "X_pca");
        let (_, b) = dense(&whole.join("pca.h5ad"), "obsm", "X_pca");
        assert_eq!(a, b, "{point}: X_pca");
        // pca.h5ad's X links to the final merged.h5ad, never to a staged name.
        let link = H5adReader::open(&out.join("pca.h5ad"))
            .unwrap()
            .x_link()
            .unwrap_or_else(|| panic!("{point}: pca.h5ad's X is not a link"));
        assert_eq!(
            (link.file.as_str(), link.element.as_str()),
            ("merged.h5ad", "/X")
        );
        assert!(
            csr(&out.join("pca.h5ad")) == csr(&whole.join("merged.h5ad")),
            "{point}: pca.h5ad's X"
        );
        let (_, a) = dense(&out.join("umap.h5ad"), "obsm", "X_umap");
        let (_, b) = dense(&whole.join("umap.h5ad"), "obsm", "X_umap");
        // UMAP's epochs race as umap-learn's do: the layout's shape, not its values, repeats.
        assert_eq!(a.len(), b.len(), "{point}: X_umap");
        let graph = |p: &Path| {
            let f = H5adReader::open(&p.join("neighbors.h5ad")).unwrap();
            let g = f.group("obsp").unwrap();
            let m = MatrixReader::open(&g, "connectivities").unwrap();
            let c = m.read_rows(0..m.shape().0).unwrap();
            (c.indptr, c.indices, c.data)
        };
        assert!(graph(&out) == graph(&whole), "{point}: neighbors graph");
        assert!(out.join("umap.png").is_file());
    }
}

/// Every line of stderr, parsed as JSON.
fn json_lines(stderr: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn json_log_prints_one_object_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let plates = plates(dir.path());
    let out = dir.path().join("run");
    // Without -q: progress events too.
    let mut args: Vec<&str> = run_args(&plates, &out, &["--log-format", "json"]);
    args.retain(|a| *a != "-q");
    let first = common::scoop(&args);
    assert!(first.status.success());
    let events = json_lines(&first.stderr);
    let of = |kind: &str| -> Vec<&Value> { events.iter().filter(|e| e["event"] == kind).collect() };
    let steps = [
        "stats:plate1_filtered",
        "stats:plate2_filtered",
        "stats:plate3_filtered",
        "select",
        "merge",
        "pca",
        "subset",
        "neighbors",
        "umap",
        "plot",
    ];
    let started: Vec<&str> = of("step_start")
        .iter()
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    assert_eq!(started, steps);
    let finished = of("step_finish");
    assert_eq!(finished.len(), steps.len());
    let merge = finished.iter().find(|e| e["step"] == "merge").unwrap();
    for key in ["seconds", "cells_per_s", "values_per_s"] {
        assert!(merge[key].as_f64().unwrap() > 0.0, "{key}: {merge}");
    }
    assert!(merge["cells"].as_u64().unwrap() > 1000, "{merge}");
    assert!(merge["values"].as_u64().unwrap() > 0, "{merge}");
    assert!(merge["bytes_read"].as_u64().unwrap() > 0, "{merge}");
    assert!(merge["bytes_written"].as_u64().unwrap() > 0, "{merge}");
    assert_eq!(merge["outputs"].as_array().unwrap().len(), 2, "{merge}");
    // A progress event per pass at least (the first cells of each pass), with rate and ETA.
    let progress = of("progress");
    let passes: std::collections::BTreeSet<&str> = progress
        .iter()
        .map(|e| e["pass"].as_str().unwrap())
        .collect();
    assert!(
        passes.contains("merge") && passes.contains("pca project"),
        "{passes:?}"
    );
    for p in &progress {
        assert!(
            p["cells"].as_u64().unwrap() <= p["total"].as_u64().unwrap(),
            "{p}"
        );
        assert!(
            p["cells_per_s"].as_f64().unwrap() >= 0.0 && p["eta_s"].is_number(),
            "{p}"
        );
    }
    let end = of("run_finish");
    assert_eq!(end.len(), 1);
    assert_eq!(end[0]["ran"].as_array().unwrap().len(), 10);
    let outputs: Vec<&str> = end[0]["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    for name in ["merged.h5ad", "pca.h5ad", "subset.h5ad", "umap.png"] {
        assert!(outputs.iter().any(|o| o.ends_with(name)), "{outputs:?}");
    }
    // The result (the table) stays on stdout.
    assert!(String::from_utf8_lossy(&first.stdout).contains("10 of 10 steps run"));

    // Rerun: every step skipped as fresh, no progress.
    let again = common::scoop(&args);
    assert!(again.status.success());
    let events = json_lines(&again.stderr);
    let skipped = events
        .iter()
        .filter(|e| e["event"] == "step_skipped")
        .count();
    assert_eq!(skipped, 10);
    assert!(events
        .iter()
        .all(|e| e["event"] != "progress" && e["event"] != "step_start"));

    // An error is an event too.
    let bad = common::scoop(&[
        "run",
        "--log-format",
        "json",
        "/nonexistent.h5ad",
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert!(!bad.status.success());
    let events = json_lines(&bad.stderr);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event"], "error");
    assert!(
        events[0]["message"]
            .as_str()
            .unwrap()
            .contains("nonexistent"),
        "{}",
        events[0]
    );
}

/// `scoop preprocess` on `plates` with [`PARAMS`]' preprocessing parameters and `extra`; returns
/// its output directory.
fn preprocess(plates: &[String], out: &Path, extra: &[&str]) -> PathBuf {
    let mut args = vec!["preprocess"];
    args.extend(plates.iter().map(|s| s.as_str()));
    args.extend([
        "--out-dir",
        out.to_str().unwrap(),
        "--filter",
        "pass_filter=full",
        "--n-top-genes",
        "100",
        "--min-plates",
        "3",
        "-q",
    ]);
    args.extend(extra);
    ok(&args);
    out.to_path_buf()
}

/// `DIR/plates/STEM_preprocessed.h5ad` of each plate.
fn plate_files(dir: &Path) -> Vec<PathBuf> {
    PLATES
        .iter()
        .map(|p| dir.join(p.replace(".h5ad", "_preprocessed.h5ad")))
        .collect()
}

/// Each of `ours` equals the `preprocess` output of the same name in `pre`: X exactly (values,
/// indices, indptr and its stored dtype), obs, var with the HVG columns ([`assert_same_var`]),
/// uns.
fn assert_plates_equal(ours: &[PathBuf], pre: &Path, hvg_columns: &[&str]) {
    for a in ours {
        let b = pre.join(a.file_name().unwrap());
        let what = a.file_name().unwrap().to_string_lossy().into_owned();
        let (xa, xb) = (x(a), x(&b));
        assert!(
            xa.n_rows() > 1000 && xa.n_cols > 10,
            "{what}: {}",
            xa.n_rows()
        );
        assert_eq!(xa.n_cols, xb.n_cols, "{what}: genes");
        assert_eq!(xa.indptr, xb.indptr, "{what}: X indptr");
        assert_eq!(xa.indices, xb.indices, "{what}: X indices");
        assert_eq!(xa.data, xb.data, "{what}: X data");
        let dtype = |p: &Path| {
            let f = hdf5::File::open(p).unwrap();
            let d = f.dataset("X/indptr").unwrap();
            d.dtype().unwrap().size()
        };
        assert_eq!(dtype(a), dtype(&b), "{what}: indptr dtype");
        assert_same_obs(&what, &obs(a), &obs(&b));
        let var = |p: &Path| H5adReader::open(p).unwrap().var().unwrap();
        let (va, vb) = (var(a), var(&b));
        for c in hvg_columns {
            assert!(va.column(c).is_some(), "{what}: var has no {c}");
        }
        assert_same_var(&what, &va, &vb);
        // The rest of the file, as scoop reads it.
        let rest = |p: &Path| {
            let mut d = common::dump_file(p);
            d.as_object_mut().unwrap().remove("var");
            d
        };
        assert_eq!(rest(a), rest(&b), "{what}: whole file");
        let uns = |p: &Path| H5adReader::open(p).unwrap().keys("uns").unwrap();
        assert_eq!(uns(a), uns(&b), "{what}: uns keys");
        assert!(uns(a).contains(&"hvg".to_string()), "{what}: {:?}", uns(a));
    }
}

/// Two var tables hold the same index and columns and the same values, bit for bit (NaN where
/// the other has NaN): the HVG statistics are sums over fixed row blocks merged in order, the same
/// bits whichever command computes them and on any thread count.
fn assert_same_var(what: &str, a: &DataFrame, b: &DataFrame) {
    use scoop::io::{ColumnValues, NumVec};
    let cols = |d: &DataFrame| d.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    assert_eq!(cols(a), cols(b), "{what}: var columns");
    assert_eq!(a.index, b.index, "{what}: var index");
    for (ca, cb) in a.columns.iter().zip(&b.columns) {
        let bits = |v: &ColumnValues| match v {
            ColumnValues::Array(NumVec::F64(x)) => Some(x.iter().map(|z| z.to_bits()).collect()),
            ColumnValues::Array(NumVec::F32(x)) => Some(
                x.iter()
                    .map(|z| u64::from(z.to_bits()))
                    .collect::<Vec<u64>>(),
            ),
            _ => None,
        };
        match (bits(&ca.values), bits(&cb.values)) {
            (Some(x), Some(y)) => assert!(x == y, "{what}: var {} differs", ca.name),
            _ => assert_eq!(ca.values, cb.values, "{what}: var {}", ca.name),
        }
    }
}

/// Raw X passes per plate, summed over `out`'s run.json records.
fn plate_passes(out: &Path, plates: &[String]) -> Vec<u64> {
    let st = state(out);
    plates
        .iter()
        .map(|p| {
            let abs = std::path::absolute(p).unwrap();
            st["steps"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|s| s["inputs"].as_array().unwrap())
                .filter(|i| i["fingerprint"]["path"] == abs.to_str().unwrap())
                .map(|i| i["passes"].as_u64().unwrap())
                .sum()
        })
        .collect()
}

#[test]
fn keep_plates_writes_what_preprocess_writes_in_the_same_pass() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plates = plates(d);
    let out = d.join("run");
    let mut args = run_args(&plates, &out, &[]);
    args.push("--keep-plates");
    ok(&args);
    let pre = preprocess(&plates, &d.join("pre"), &[]);
    let ours = plate_files(&out.join("plates"));
    assert_plates_equal(
        &ours,
        &pre,
        &[
            "highly_variable",
            "means",
            "dispersions",
            "dispersions_norm",
        ],
    );
    // As anndata reads it: the first plate's file against preprocess's.
    if let Some(py) = common::python() {
        let (a, b) = (d.join("a.json"), d.join("b.json"));
        let theirs = pre.join(ours[0].file_name().unwrap());
        for (h5ad, json) in [(&ours[0], &a), (&theirs, &b)] {
            common::interop(
                &py,
                &["dump", h5ad.to_str().unwrap(), json.to_str().unwrap()],
            );
        }
        common::interop(&py, &["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    }
    // One pass 2: raw plates read twice (statistics, merge), the plate files among merge's
    // outputs.
    assert_eq!(plate_passes(&out, &plates), [2, 2, 2]);
    let st = state(&out);
    let merge = st["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "merge")
        .unwrap();
    assert_eq!(merge["outputs"].as_array().unwrap().len(), 2 + 3, "{merge}");
    assert_eq!(st["params"]["keep_plates"], true);
    // merged.h5ad is the same as without --keep-plates.
    let plain = d.join("plain");
    run(&plates, &plain, &[]);
    let (xa, xb) = (x(&out.join("merged.h5ad")), x(&plain.join("merged.h5ad")));
    assert_eq!(
        (xa.indptr, xa.indices, xa.data),
        (xb.indptr, xb.indices, xb.data)
    );
    assert!(!plain.join("plates").exists());

    // Rerun: nothing is redone.
    ok(&args);
    assert!(names(&state(&out)["last_run"]["ran"]).is_empty());
}

#[test]
fn keep_plates_on_a_finished_run_writes_only_the_plate_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plates = plates(d);
    let out = d.join("run");
    // seurat_v3: the other kind of HVG table.
    let v3 = ["--flavor", "seurat_v3"];
    run(&plates, &out, &v3);
    assert!(!out.join("plates").exists());
    let mtime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let before: Vec<_> = ["merged.h5ad", "gram.bin", "pca.h5ad", "umap.png"]
        .iter()
        .map(|p| mtime(&out.join(p)))
        .collect();

    // Adding --keep-plates: only the merge step runs, writing the plate files from
    // merged.h5ad's rows; merged.h5ad and what follows stand.
    let mut args = run_args(&plates, &out, &v3);
    args.push("--keep-plates");
    ok(&args);
    let s = state(&out);
    assert_eq!(names(&s["last_run"]["ran"]), ["merge"]);
    let after: Vec<_> = ["merged.h5ad", "gram.bin", "pca.h5ad", "umap.png"]
        .iter()
        .map(|p| mtime(&out.join(p)))
        .collect();
    assert_eq!(before, after);
    let pre = preprocess(&plates, &d.join("pre"), &v3);
    let ours = plate_files(&out.join("plates"));
    let v3_columns = [
        "highly_variable",
        "highly_variable_rank",
        "means",
        "variances",
        "variances_norm",
    ];
    assert_plates_equal(&ours, &pre, &v3_columns);
    // The raw plates' X was not read again: seurat_v3's two statistics passes, and the latest
    // merge read merged.h5ad instead.
    assert_eq!(plate_passes(&out, &plates), [2, 2, 2]);
    let merge = s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "merge")
        .unwrap()
        .clone();
    assert_eq!(merge["runs"], 2);
    let merged_abs = std::path::absolute(out.join("merged.h5ad")).unwrap();
    let read_merged = merge["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["fingerprint"]["path"] == merged_abs.to_str().unwrap())
        .unwrap();
    assert_eq!(read_merged["passes"], 1);

    // Without --keep-plates again: nothing runs, the plate files stay.
    run(&plates, &out, &v3);
    assert!(names(&state(&out)["last_run"]["ran"]).is_empty());
    assert!(ours.iter().all(|p| p.is_file()));
    // With it, a plate file gone: only the plate files are written again.
    std::fs::remove_file(&ours[1]).unwrap();
    ok(&args);
    assert_eq!(names(&state(&out)["last_run"]["ran"]), ["merge"]);
    assert_plates_equal(&ours, &pre, &v3_columns);
    // A changed parameter with --keep-plates: one pass 2 writes merged.h5ad and the plate files
    // together; what follows merge reruns.
    let mut args = run_args(
        &plates,
        &out,
        &["--flavor", "seurat_v3", "--compression", "lzf"],
    );
    args.push("--keep-plates");
    ok(&args);
    let s = state(&out);
    let ran = names(&s["last_run"]["ran"]);
    assert_eq!(ran, ["merge", "pca", "subset", "neighbors", "umap", "plot"]);
    assert_eq!(plate_passes(&out, &plates), [3, 3, 3]);
    assert_plates_equal(&ours, &pre, &v3_columns);
}

#[test]
fn a_kill_while_plate_files_are_written_leaves_none_of_the_merge_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let plates = plates(dir.path());
    let out = dir.path().join("run");
    let staged = "plate2_filtered_preprocessed.h5ad";
    run_signalled(&plates, &out, &["--keep-plates"], libc::SIGKILL, || {
        temp_exists(&out.join("plates"), staged)
    })
    .expect("the run finished before the signal");
    let files = plate_files(&out.join("plates"));
    assert!(!out.join("merged.h5ad").exists() && !out.join("gram.bin").exists());
    assert!(
        files.iter().all(|p| !p.exists()),
        "a plate file was committed"
    );
    let mut args = run_args(&plates, &out, &[]);
    args.push("--keep-plates");
    ok(&args);
    let s = state(&out);
    assert_eq!(
        names(&s["last_run"]["ran"])[0],
        "merge",
        "{}",
        s["last_run"]
    );
    assert!(files.iter().all(|p| p.is_file()) && out.join("merged.h5ad").is_file());
    assert!(
        !temp_exists(&out.join("plates"), staged),
        "a temporary file is left"
    );
    assert_eq!(plate_passes(&out, &plates), [2, 2, 2]);
}
