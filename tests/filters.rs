//! Compressed h5ad files: every common HDF5 compression filter reads through scoop in every
//! element (files written by h5py + hdf5plugin, compared with their uncompressed twin), the files
//! scoop writes with `--compression gzip|lzf|zstd` load in anndata, a filter scoop lacks is one
//! clear error, and `scoop inspect` names X's filters in words.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use scoop::io::{DenseRowReader, H5adReader, MatrixReader};

/// Rows per read, as scoop streams by default.
const ROWS: usize = 10_000;

fn run_py(py: &Path, args: &[&str]) -> String {
    common::script(py, "filters.py", args)
}

/// The fixture directory written once by `filters.py make`, and its manifest.
struct Fixtures {
    dir: tempfile::TempDir,
    manifest: Value,
}

impl Fixtures {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.h5ad"))
    }

    fn list(&self, key: &str) -> &Vec<Value> {
        self.manifest[key].as_array().expect("manifest list")
    }
}

fn fixtures() -> Option<&'static Fixtures> {
    static FIX: OnceLock<Option<Fixtures>> = OnceLock::new();
    FIX.get_or_init(|| {
        let py = common::plugin_python()?;
        let (dir, manifest) = common::script_fixtures(&py, "filters.py");
        Some(Fixtures { dir, manifest })
    })
    .as_ref()
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "scoop failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Everything scoop reads of a file: X in 10,000-row reads, obs, var, and obsm/X_pca if present.
#[derive(Debug, PartialEq)]
struct Contents {
    x: Vec<scoop::io::CsrChunk>,
    obs: Value,
    var: Value,
    obsm: Option<Vec<f32>>,
}

fn contents(path: &Path) -> Contents {
    let f = H5adReader::open(path).unwrap_or_else(|e| panic!("{e}"));
    let x: MatrixReader = f.x().unwrap_or_else(|e| panic!("{e}"));
    let n = x.shape().0;
    let chunks = (0..n)
        .step_by(ROWS)
        .map(|s| {
            x.read_rows(s..(s + ROWS).min(n))
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let obsm = f
        .keys("obsm")
        .unwrap()
        .contains(&"X_pca".to_string())
        .then(|| {
            let r = DenseRowReader::open(&f.group("obsm").unwrap(), "X_pca").unwrap();
            r.read_all(r.shape().1, 4096).unwrap()
        });
    Contents {
        x: chunks,
        obs: common::df_json(&f.obs().unwrap_or_else(|e| panic!("{e}"))),
        var: common::df_json(&f.var().unwrap_or_else(|e| panic!("{e}"))),
        obsm,
    }
}

#[test]
fn every_filter_reads_exactly_like_the_uncompressed_twin() {
    let Some(fx) = fixtures() else { return };
    let plain = contents(&fx.path("plain"));
    let dense = contents(&fx.path("dense_plain"));
    assert_eq!(plain.x.iter().map(|c| c.n_rows()).sum::<usize>(), 25_000);
    assert!(plain.obsm.is_some());
    for v in fx.list("variants") {
        let name = v["name"].as_str().unwrap();
        let twin = if v["base"] == "plain" { &plain } else { &dense };
        let got = contents(&fx.path(name));
        assert!(got == *twin, "{name} reads differently from {}", v["base"]);
    }
}

#[test]
fn files_carried_through_scoop_keep_their_values() {
    // subsample of every cell copies var inside HDF5 (strings decoded and encoded again through
    // the file's filters) and rewrites obs, obsm and X: the output reads like the input.
    let Some(fx) = fixtures() else { return };
    let plain = contents(&fx.path("plain"));
    let out = tempfile::tempdir().unwrap();
    for name in ["bitshuffle_zstd", "blosc_zstd_bitshuffle", "lzf", "zstd"] {
        let dst = out.path().join(format!("{name}.h5ad"));
        ok(&common::scoop(&[
            "subsample",
            fx.path(name).to_str().unwrap(),
            "--n",
            "25000",
            "--with-x",
            "--out",
            dst.to_str().unwrap(),
            "-q",
        ]));
        assert!(contents(&dst) == plain, "{name}: subsample output differs");
    }
}

#[test]
fn inspect_names_the_filters_of_x() {
    let Some(fx) = fixtures() else { return };
    for v in fx.list("variants") {
        let name = v["name"].as_str().unwrap();
        let words = v["x_words"].as_str().unwrap();
        let text = ok(&common::scoop(&[
            "inspect",
            fx.path(name).to_str().unwrap(),
        ]));
        let line = text.lines().find(|l| l.starts_with("X: ")).unwrap();
        assert!(
            line.ends_with(&format!(", compression {words}")),
            "{name}: {line:?} should end with compression {words:?}"
        );
    }
}

#[test]
fn a_filter_scoop_lacks_is_one_error_line() {
    let Some(fx) = fixtures() else { return };
    let unknown = fx.list("unknown");
    assert!(unknown.len() >= 2);
    let out = tempfile::tempdir().unwrap();
    for u in unknown {
        let name = u["name"].as_str().unwrap();
        let element = u["element"].as_str().unwrap();
        let path = fx.path(name);
        let p = path.to_str().unwrap();
        let dst = out.path().join(format!("{name}.h5ad"));
        // concat reads X, obs and var whole.
        let run = common::scoop(&["concat", p, "--out", dst.to_str().unwrap(), "-q"]);
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{name}: concat should fail");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{name}: one error line expected, got {err}");
        let line = lines[0];
        let id = format!(
            "HDF5 filter {} ({})",
            u["id"],
            u["filter"].as_str().unwrap()
        );
        for needle in [p, element, &id, "h5repack -f NONE", "anndata"] {
            assert!(line.contains(needle), "{name}: {line:?} lacks {needle:?}");
        }
        assert!(
            !line.contains("/plugin"),
            "{name}: {line:?} names a plugin path"
        );
        assert!(!dst.exists());
        // The library reports the same error before reading any value of the element.
        let f = H5adReader::open(&path).unwrap();
        let lib_err = match element {
            "/X/data" => f.x().err().map(|e| e.to_string()),
            "/obs/n_counts" => f.obs().err().map(|e| e.to_string()),
            _ => f.var().err().map(|e| e.to_string()),
        }
        .unwrap_or_else(|| panic!("{name}: the library read {element}"));
        assert!(lib_err.contains(&id), "{name}: {lib_err}");
    }
}

/// `scoop simulate` with `codec` into `dir`; the single plate's path.
fn simulate(dir: &Path, codec: &str) -> PathBuf {
    ok(&common::scoop(&[
        "simulate",
        "--out",
        dir.to_str().unwrap(),
        "--plates",
        "2",
        "--cells-per-plate",
        "3000",
        "--genes",
        "300",
        "--seed",
        "5",
        "--compression",
        codec,
        "-q",
    ]));
    dir.join("plate1_filtered.h5ad")
}

#[test]
fn files_scoop_compresses_load_in_anndata() {
    let Some(py) = common::python() else { return };
    let root = tempfile::tempdir().unwrap();
    let sim = |codec: &str| {
        let d = root.path().join(codec.replace(':', "_"));
        std::fs::create_dir(&d).unwrap();
        simulate(&d, codec)
    };
    let plain = sim("none");
    let plain_s = plain.to_str().unwrap();
    let expected = contents(&plain);
    // gzip and lzf load in any h5py, without hdf5plugin.
    for (codec, words) in [
        ("gzip", "gzip level 4"),
        ("gzip:9", "gzip level 9"),
        ("lzf", "lzf"),
    ] {
        let comp = sim(codec);
        run_py(
            &py,
            &[
                "check-written",
                plain_s,
                comp.to_str().unwrap(),
                codec,
                "--no-plugin",
            ],
        );
        assert!(
            contents(&comp) == expected,
            "{codec}: scoop reads its own file differently"
        );
        let text = ok(&common::scoop(&["inspect", comp.to_str().unwrap()]));
        assert!(
            text.contains(&format!(", compression {words}\n")),
            "{codec}: {text}"
        );
    }
    let Some(py) = common::plugin_python() else {
        return;
    };
    let comp = sim("zstd:9");
    run_py(
        &py,
        &["check-written", plain_s, comp.to_str().unwrap(), "zstd:9"],
    );
    assert!(contents(&comp) == expected);
    let text = ok(&common::scoop(&["inspect", comp.to_str().unwrap()]));
    assert!(text.contains(", compression zstd level 9\n"), "{text}");
    // concat writes X through the codec too.
    let cat = |codec: &str| {
        let dir = plain.parent().unwrap();
        let out = root
            .path()
            .join(format!("concat_{}.h5ad", codec.replace(':', "_")));
        ok(&common::scoop(&[
            "concat",
            dir.join("plate1_filtered.h5ad").to_str().unwrap(),
            dir.join("plate2_filtered.h5ad").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--compression",
            codec,
            "-q",
        ]));
        out
    };
    let (cat_plain, cat_zstd) = (cat("none"), cat("zstd"));
    run_py(
        &py,
        &[
            "check-written",
            cat_plain.to_str().unwrap(),
            cat_zstd.to_str().unwrap(),
            "zstd",
        ],
    );
}

#[test]
fn bad_compression_values_are_refused() {
    for (args, needle) in [
        (
            &["simulate", "--out", "x", "--compression", "zstd:30"][..],
            "zstd[:1-22]",
        ),
        (
            &[
                "concat",
                "a.h5ad",
                "--out",
                "b.h5ad",
                "--compression",
                "bzip2",
            ],
            "unknown codec",
        ),
    ] {
        let out = common::scoop(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
