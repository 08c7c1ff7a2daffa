//! The files scoop writes with each `--compression` (from `simulate`, `preprocess` and `concat`)
//! load in anndata on both Python stacks with the same contents as the uncompressed output, and
//! h5py reports the codec's filter and level on X/data and X/indices. zstd is checked where
//! hdf5plugin imports (Python needs it for zstd; gzip and lzf read without it).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Every codec scoop writes, with and without levels.
const CODECS: [&str; 6] = ["none", "gzip", "gzip:9", "lzf", "zstd", "zstd:10"];

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "scoop failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The outputs written with one codec: two simulated plates, plate 1 preprocessed, both concatenated.
struct Written {
    plate: PathBuf,
    preprocessed: PathBuf,
    concat: PathBuf,
}

/// Writes every output with `codec` under `root/<codec>`.
fn write_all(root: &Path, codec: &str) -> Written {
    let d = root.join(codec.replace(':', "_"));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    // 5,000 cells x 300 genes: about 1.2M stored values per plate, so X spans several batches of
    // 2^18-value chunks and ends in a partial one.
    ok(common::scoop(&[
        "simulate",
        "--out",
        &s(&d),
        "--plates",
        "2",
        "--cells-per-plate",
        "5000",
        "--genes",
        "300",
        "--seed",
        "11",
        "--compression",
        codec,
        "-q",
    ]));
    let plates = [1, 2].map(|i| d.join(format!("plate{i}_filtered.h5ad")));
    let pre = d.join("pre");
    ok(common::scoop(&[
        "preprocess",
        &s(&plates[0]),
        "--out-dir",
        &s(&pre),
        "--n-top-genes",
        "100",
        "--min-plates",
        "1",
        "--compression",
        codec,
        "-q",
    ]));
    let concat = d.join("concat.h5ad");
    ok(common::scoop(&[
        "concat",
        &s(&plates[0]),
        &s(&plates[1]),
        "--out",
        &s(&concat),
        "--compression",
        codec,
        "-q",
    ]));
    Written {
        plate: plates[0].clone(),
        preprocessed: pre.join("plate1_filtered_preprocessed.h5ad"),
        concat,
    }
}

/// Checks each (plain, compressed, codec) with `writer.py`, in one run of `py`.
fn check(py: &Path, files: &[(&Path, &Path, &str)]) {
    let mut cmd = Command::new(py);
    cmd.arg(common::root().join("tests/python/writer.py"))
        .arg("check");
    for (plain, comp, codec) in files {
        cmd.arg(plain).arg(comp).arg(codec);
    }
    let out = cmd.output().expect("run python");
    assert!(
        out.status.success(),
        "with {}:\n{}\n{}",
        py.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_codec_loads_in_anndata_with_the_uncompressed_values() {
    let stacks = common::stacks();
    if stacks.is_empty() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let written: Vec<(&str, Written)> = CODECS
        .iter()
        .map(|&c| (c, write_all(root.path(), c)))
        .collect();
    let plain = &written[0].1;
    for (stack, py) in &stacks {
        let plugin = common::py_has(py, "hdf5plugin");
        if !plugin {
            eprintln!("SKIP: zstd on the {stack} stack (no hdf5plugin)");
        }
        let mut files = Vec::new();
        for (codec, w) in &written {
            if codec.starts_with("zstd") && !plugin {
                continue;
            }
            files.push((plain.plate.as_path(), w.plate.as_path(), *codec));
            files.push((
                plain.preprocessed.as_path(),
                w.preprocessed.as_path(),
                *codec,
            ));
            files.push((plain.concat.as_path(), w.concat.as_path(), *codec));
        }
        check(py, &files);
    }
}
