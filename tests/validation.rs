//! Inputs are validated before any work, with one line naming the file, the element and the
//! place: NaN, infinite and negative values in X (preprocess needs counts; pca accepts negatives),
//! duplicated var names (concat, both joins, as anndata.concat refuses them), X's shape against
//! obs and var (every command), and subsample's errors name the file. Each bad file is made by
//! tests/python/bad_inputs.py with anndata and h5py; each failure exits 1 and writes nothing.

mod common;

use std::path::{Path, PathBuf};

use common::scoop;

/// The bad files of tests/python/bad_inputs.py in a temporary directory.
struct Bad {
    _dir: tempfile::TempDir,
    dir: PathBuf,
}

impl Bad {
    fn make() -> Option<Bad> {
        let py = common::python()?;
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(&py)
            .arg(common::root().join("tests/python/bad_inputs.py"))
            .arg(dir.path())
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "bad_inputs.py failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let d = dir.path().to_path_buf();
        Some(Bad { _dir: dir, dir: d })
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_string()
    }

    fn out(&self, name: &str) -> String {
        self.dir
            .join("out")
            .join(name)
            .to_str()
            .unwrap()
            .to_string()
    }
}

/// Runs scoop with `args`, expecting exit 1 and exactly `line` on stderr.
fn fails_with(args: &[&str], line: &str) {
    let out = scoop(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert_eq!(err.trim_end(), format!("error: {line}"), "{args:?}");
}

/// Files under `dir` (none when it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                found.extend(files_under(&p));
            } else {
                found.push(p);
            }
        }
    }
    found
}

fn preprocess(input: &str, out_dir: &str) -> Vec<String> {
    [
        "-q",
        "preprocess",
        input,
        "--out-dir",
        out_dir,
        "--n-top-genes",
        "5",
        "--min-plates",
        "1",
    ]
    .map(String::from)
    .to_vec()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn preprocess_refuses_nan_inf_and_negative_counts_at_their_row_and_column() {
    let Some(b) = Bad::make() else { return };
    for (file, what) in [
        ("nan.h5ad", "NaN at row 3, column 7"),
        ("inf_dense.h5ad", "inf at row 5, column 2"),
        ("negative.h5ad", "negative value -2 at row 4, column 9"),
    ] {
        let (input, out_dir) = (b.file(file), b.out(file));
        fails_with(
            &args(&preprocess(&input, &out_dir)),
            &format!("{input}: /X: {what} (0-based); counts must be finite and non-negative"),
        );
        assert_eq!(files_under(Path::new(&out_dir)), Vec::<PathBuf>::new());
    }
    // The same plate without the bad value goes through.
    let out_dir = b.out("good");
    let out = scoop(&args(&preprocess(&b.file("good.h5ad"), &out_dir)));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pca_refuses_nan_and_inf_before_writing_but_accepts_negatives() {
    let Some(b) = Bad::make() else { return };
    for (file, what) in [
        ("nan.h5ad", "NaN at row 3, column 7"),
        ("inf_dense.h5ad", "inf at row 5, column 2"),
    ] {
        let (input, output) = (b.file(file), b.out(file));
        std::fs::create_dir_all(b.dir.join("out")).unwrap();
        fails_with(
            &["-q", "pca", &input, "--out", &output, "--n-comps", "3"],
            &format!("{input}: /X: {what} (0-based); values must be finite"),
        );
        assert_eq!(files_under(&b.dir.join("out")), Vec::<PathBuf>::new());
    }
    let output = b.out("negative_pca.h5ad");
    let out = scoop(&[
        "-q",
        "pca",
        &b.file("negative.h5ad"),
        "--out",
        &output,
        "--n-comps",
        "3",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(Path::new(&output).is_file());
}

#[test]
fn concat_refuses_duplicated_var_names_in_both_joins() {
    let Some(b) = Bad::make() else { return };
    let (dup, good) = (b.file("dup_var.h5ad"), b.file("good.h5ad"));
    for join in ["inner", "outer"] {
        for inputs in [[&dup, &good], [&good, &dup]] {
            let output = b.out(&format!("concat_{join}.h5ad"));
            std::fs::create_dir_all(b.dir.join("out")).unwrap();
            fails_with(
                &[
                    "-q", "concat", "--join", join, "--out", &output, inputs[0], inputs[1],
                ],
                &format!(
                    "{dup}: /var: var name \"gene12\" occurs at rows 12 and 17; concat needs \
                     unique var names (anndata: adata.var_names_make_unique())"
                ),
            );
            assert_eq!(files_under(&b.dir.join("out")), Vec::<PathBuf>::new());
        }
    }
}

#[test]
fn every_command_checks_x_against_obs_and_var() {
    let Some(b) = Bad::make() else { return };
    for (file, message) in [
        (
            "x_taller.h5ad",
            "/X: has 20 rows but obs has 18; X needs one row per obs entry",
        ),
        (
            "x_wider.h5ad",
            "/X: has 40 columns but var has 30; X needs one column per var entry",
        ),
    ] {
        let input = b.file(file);
        let out_dir = b.out(file);
        let output = b.out(&format!("{file}.out.h5ad"));
        let line = format!("{input}: {message}");
        std::fs::create_dir_all(b.dir.join("out")).unwrap();
        fails_with(&["inspect", &input], &line);
        fails_with(
            &["-q", "pca", &input, "--out", &output, "--n-comps", "3"],
            &line,
        );
        fails_with(
            &["-q", "subsample", &input, "--out", &output, "--n", "5"],
            &line,
        );
        fails_with(
            &[
                "-q",
                "subsample",
                "--with-x",
                &input,
                "--out",
                &output,
                "--n",
                "5",
            ],
            &line,
        );
        fails_with(&["-q", "concat", "--out", &output, &input, &input], &line);
        fails_with(&args(&preprocess(&input, &out_dir)), &line);
        assert_eq!(files_under(&b.dir.join("out")), Vec::<PathBuf>::new());
    }
}

/// A layer or obsm entry that does not fit X fails `concat` and `run` before anything is
/// written, naming the file and the element; the same entries fitting go through.
#[test]
fn concat_and_run_check_layers_and_obsm_against_x_first() {
    let Some(b) = Bad::make() else { return };
    let good = b.file("annotated.h5ad");
    for (file, message) in [
        (
            "layer_narrow.h5ad",
            "/layers/counts: shape (20, 29), but X's is (20, 30)",
        ),
        ("obsm_short.h5ad", "/obsm/X_emb: 18 rows, but X has 20"),
    ] {
        let input = b.file(file);
        let line = format!("{input}: {message}");
        let (output, out_dir) = (b.out(&format!("{file}.out.h5ad")), b.out(file));
        std::fs::create_dir_all(b.dir.join("out")).unwrap();
        fails_with(&["-q", "concat", "--out", &output, &good, &input], &line);
        let run = [
            "-q",
            "run",
            &good,
            &input,
            "--out-dir",
            &out_dir,
            "--n-top-genes",
            "5",
            "--min-plates",
            "1",
            "--color",
            "plate",
        ];
        fails_with(&run, &line);
        assert_eq!(files_under(&b.dir.join("out")), Vec::<PathBuf>::new());
    }
    let output = b.out("annotated.out.h5ad");
    let out = scoop(&["-q", "concat", "--out", &output, &good, &good]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn subsample_errors_name_the_file() {
    let Some(b) = Bad::make() else { return };
    let input = b.file("good.h5ad");
    let output = b.out("sub.h5ad");
    // The output's directory exists: outputs are checked before the input's rows are sampled.
    std::fs::create_dir_all(Path::new(&output).parent().unwrap()).unwrap();
    fails_with(
        &["-q", "subsample", &input, "--out", &output, "--n", "50"],
        &format!(
            "{input}: /obs: --n 50 is more than the 20 cells (use --replace to draw with \
             replacement)"
        ),
    );
    assert!(!Path::new(&output).exists());
}
