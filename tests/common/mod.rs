//! Shared test support: the Python interpreter with anndata, the `scoop` binary, and a canonical
//! JSON dump of AnnData contents (the same format as tests/python/interop.py writes).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Map, Value};

use scoop::io::{
    Categories, ColumnValues, CsrChunk, DataFrame, Element, H5adReader, MatrixReader, NumVec,
};

/// A PNG written by `scoop plot`: its width, height and distinct RGB colours.
pub fn png_colors(path: &Path) -> (u32, u32, std::collections::HashSet<[u8; 3]>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let colors = buf[..info.buffer_size()]
        .chunks(3)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, colors)
}

/// The repository root: `SCOOP_ROOT`, else where the tests were built (test binaries carried to
/// another machine, as `scripts/gpu-check.sh` does, set it).
pub fn root() -> PathBuf {
    std::env::var_os("SCOOP_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// A Python with anndata: `SCOOP_PYTHON`, else `.venv/bin/python`. `None` (with a message) when
/// absent; under CI (`CI` set) its absence fails the test instead of skipping it.
pub fn python() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = std::env::var_os("SCOOP_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([root().join(".venv/bin/python")])
        .collect();
    if let Some(p) = candidates.into_iter().find(|p| has_anndata(p)) {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "CI: no Python with anndata found (set SCOOP_PYTHON or run .ci/run to create .venv)"
        );
    }
    eprintln!("SKIP: no Python with anndata (set SCOOP_PYTHON or create .venv; see README)");
    None
}

/// The Python stacks the interop tests run against, each as (name, interpreter): `current`
/// (`SCOOP_PYTHON`, else `.venv`: anndata 0.13, pandas 3, scanpy 1.12) and `legacy`
/// (`SCOOP_PYTHON_LEGACY`, else `.venv-legacy`: anndata 0.12, pandas 2, scanpy 1.11.5). A stack
/// that is absent is skipped with a message; under CI (`CI` set) its absence fails the test.
pub fn stacks() -> Vec<(&'static str, PathBuf)> {
    let mut found = Vec::new();
    for (name, var, venv) in [
        ("current", "SCOOP_PYTHON", ".venv"),
        ("legacy", "SCOOP_PYTHON_LEGACY", ".venv-legacy"),
    ] {
        let candidates: Vec<PathBuf> = std::env::var_os(var)
            .map(PathBuf::from)
            .into_iter()
            .chain([root().join(venv).join("bin/python")])
            .collect();
        match candidates.into_iter().find(|p| has_anndata(p)) {
            Some(p) => found.push((name, p)),
            None if std::env::var_os("CI").is_some() => {
                panic!("CI: no Python with anndata for the {name} stack (set {var} or run .ci/run)")
            }
            None => eprintln!("SKIP: the {name} Python stack (set {var} or create {venv})"),
        }
    }
    found
}

fn has_anndata(p: &Path) -> bool {
    Command::new(p)
        .args(["-c", "import anndata, h5py, scipy"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// True when `py` can import every module in `modules` (comma-separated).
pub fn py_has(py: &Path, modules: &str) -> bool {
    Command::new(py)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `python tests/python/interop.py ARGS`, panicking with its output on failure.
pub fn interop(py: &Path, args: &[&str]) -> String {
    script(py, "interop.py", args)
}

/// Runs `python tests/python/NAME ARGS` and returns its stdout, panicking with its output on
/// failure.
pub fn script(py: &Path, name: &str, args: &[&str]) -> String {
    let out = Command::new(py)
        .arg(root().join("tests/python").join(name))
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{name} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `python tests/python/NAME make DIR` into a new temporary directory and returns it with
/// the `manifest.json` the script wrote there.
pub fn script_fixtures(py: &Path, name: &str) -> (tempfile::TempDir, Value) {
    let dir = tempfile::tempdir().unwrap();
    script(py, name, &["make", dir.path().to_str().unwrap()]);
    let manifest =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("manifest.json")).unwrap())
            .unwrap();
    (dir, manifest)
}

/// The Python with anndata and hdf5plugin; `None` (a message printed) when hdf5plugin is
/// missing outside CI, a failure under CI.
pub fn plugin_python() -> Option<PathBuf> {
    let py = python()?;
    if py_has(&py, "hdf5plugin") {
        return Some(py);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "CI: {} cannot `import hdf5plugin` (pip install hdf5plugin)",
            py.display()
        );
    }
    eprintln!(
        "SKIP: {} has no hdf5plugin (pip install hdf5plugin)",
        py.display()
    );
    None
}

/// Runs the scoop binary: `SCOOP_BIN`, else the one built with the tests.
pub fn scoop(args: &[&str]) -> Output {
    let bin = std::env::var_os("SCOOP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_scoop")));
    Command::new(bin).args(args).output().expect("run scoop")
}

/// Runs the scoop binary expecting failure (exit code 1); returns its stderr.
pub fn scoop_fails(args: &[&str]) -> String {
    let out = scoop(args);
    assert!(!out.status.success(), "{args:?} should fail");
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn num(x: f64, integer: bool) -> Value {
    if x.is_nan() {
        json!("NaN")
    } else if integer {
        json!(x as i64)
    } else {
        json!(x)
    }
}

fn nums(v: &NumVec) -> Vec<Value> {
    match v {
        NumVec::Bool(b) => b.iter().map(|&x| json!(x)).collect(),
        other => other
            .to_f64()
            .into_iter()
            .map(|x| num(x, other.dtype().is_integer()))
            .collect(),
    }
}

/// Canonical dump of a column.
pub fn column_json(c: &ColumnValues) -> Value {
    match c {
        ColumnValues::Categorical {
            codes,
            categories,
            ordered,
        } => {
            let cats: Vec<Value> = match categories {
                Categories::Strings(s) => s.iter().map(|x| json!(x)).collect(),
                Categories::Num(n) => nums(n),
            };
            let values: Vec<Value> = codes
                .iter()
                .map(|&k| {
                    if k < 0 {
                        Value::Null
                    } else {
                        cats[k as usize].clone()
                    }
                })
                .collect();
            json!({"kind": "categorical", "ordered": ordered, "categories": cats, "values": values})
        }
        ColumnValues::Array(NumVec::Bool(b)) => json!({"kind": "bool", "values": b}),
        ColumnValues::Array(a) => {
            json!({"kind": if a.dtype().is_integer() { "int" } else { "float" }, "values": nums(a)})
        }
        ColumnValues::Strings(s) => json!({"kind": "string", "values": s}),
        ColumnValues::NullableInt { values, mask } => {
            let v: Vec<Value> = nums(values)
                .into_iter()
                .zip(mask)
                .map(|(x, &m)| if m { Value::Null } else { x })
                .collect();
            json!({"kind": "nullable-integer", "values": v})
        }
        ColumnValues::NullableBool { values, mask } => {
            let v: Vec<Value> = values
                .iter()
                .zip(mask)
                .map(|(&x, &m)| if m { Value::Null } else { json!(x) })
                .collect();
            json!({"kind": "nullable-boolean", "values": v})
        }
        ColumnValues::NullableString { values, mask, .. } => {
            let v: Vec<Value> = values
                .iter()
                .zip(mask)
                .map(|(x, &m)| if m { Value::Null } else { json!(x) })
                .collect();
            json!({"kind": "string", "values": v})
        }
    }
}

/// Canonical dump of a dataframe.
pub fn df_json(df: &DataFrame) -> Value {
    let mut cols = Map::new();
    for c in &df.columns {
        cols.insert(c.name.clone(), column_json(&c.values));
    }
    json!({"index": df.index, "columns": cols})
}

/// Dense rows of a CSR matrix.
pub fn csr_dense(c: &CsrChunk) -> Value {
    let rows: Vec<Vec<f64>> = (0..c.n_rows())
        .map(|i| {
            let mut r = vec![0.0; c.n_cols];
            let (idx, val) = c.row(i);
            for (&j, &v) in idx.iter().zip(val) {
                r[j as usize] = v as f64;
            }
            r
        })
        .collect();
    json!(rows)
}

fn nested(values: &[Value], shape: &[usize]) -> Value {
    if shape.len() <= 1 {
        return json!(values);
    }
    let step: usize = shape[1..].iter().product();
    json!((0..shape[0])
        .map(|i| nested(&values[i * step..(i + 1) * step], &shape[1..]))
        .collect::<Vec<_>>())
}

/// Canonical dump of a uns element.
pub fn uns_json(e: &Element) -> Value {
    match e {
        Element::Dict(items) => Value::Object(
            items
                .iter()
                .map(|(k, v)| (k.clone(), uns_json(v)))
                .collect(),
        ),
        Element::Array(a) => json!({"array": nested(&nums(&a.data), &a.shape), "shape": a.shape}),
        Element::StringArray { shape, values } => {
            let v: Vec<Value> = values.iter().map(|s| json!(s)).collect();
            json!({"strings": nested(&v, shape)})
        }
        Element::Scalar(v) => json!({"scalar": nums(v)[0]}),
        Element::String(s) => json!({"string": s}),
        Element::Null => json!({"null": true}),
        other => panic!("no canonical dump for uns element {other:?}"),
    }
}

/// Dense obsm array as nested f64 lists.
pub fn obsm_json(e: &Element) -> Value {
    let Element::Array(a) = e else {
        panic!("obsm entry is not an array")
    };
    let v: Vec<Value> = a.data.to_f64().into_iter().map(|x| json!(x)).collect();
    nested(&v, &a.shape)
}

/// Canonical dump of an in-memory AnnData.
pub fn dump(
    obs: &DataFrame,
    var: &DataFrame,
    x: &CsrChunk,
    obsm: &[(String, Element)],
    obsp: &[(String, CsrChunk)],
    uns: &Element,
) -> Value {
    json!({
        "shape": [obs.len(), var.len()],
        "obs": df_json(obs),
        "var": df_json(var),
        "X": csr_dense(x),
        "obsm": obsm.iter().map(|(k, v)| (k.clone(), obsm_json(v))).collect::<Map<_, _>>(),
        "obsp": obsp.iter().map(|(k, v)| (k.clone(), csr_dense(v))).collect::<Map<_, _>>(),
        "uns": uns_json(uns),
    })
}

/// Reads a whole h5ad through scoop's library and dumps it.
pub fn dump_file(path: &Path) -> Value {
    let f = H5adReader::open(path).expect("open");
    let x = f.x().expect("X");
    let xc = x.read_rows(0..x.shape().0).expect("read X");
    let obsm: Vec<(String, Element)> = f
        .keys("obsm")
        .unwrap()
        .into_iter()
        .map(|k| (k.clone(), f.element("obsm", &k).unwrap()))
        .collect();
    let obsp: Vec<(String, CsrChunk)> = f
        .keys("obsp")
        .unwrap()
        .into_iter()
        .map(|k| match f.element("obsp", &k).unwrap() {
            Element::Csr(c) => (k, c),
            other => panic!("obsp/{k}: {other:?}"),
        })
        .collect();
    let uns = Element::Dict(
        f.keys("uns")
            .unwrap()
            .into_iter()
            .map(|k| (k.clone(), f.element("uns", &k).unwrap()))
            .collect(),
    );
    let mut d = dump(
        &f.obs().unwrap(),
        &f.var().unwrap(),
        &xc,
        &obsm,
        &obsp,
        &uns,
    );
    // layers and raw only where present, as interop.py dumps them.
    let layers: Map<String, Value> = f
        .keys("layers")
        .unwrap()
        .into_iter()
        .map(|k| {
            let g = f.group("layers").unwrap();
            let m = MatrixReader::open(&g, &k).expect("layer");
            let c = m.read_rows(0..m.shape().0).expect("read layer");
            (k, csr_dense(&c))
        })
        .collect();
    if !layers.is_empty() {
        d["layers"] = Value::Object(layers);
    }
    if f.root().link_exists("raw") {
        let raw = f.group("raw").unwrap();
        let m = MatrixReader::open(&raw, "X").expect("raw/X");
        let c = m.read_rows(0..m.shape().0).expect("read raw/X");
        let var = DataFrame::read(&raw, "var").expect("raw/var");
        d["raw"] = json!({"X": csr_dense(&c), "var": df_json(&var)});
    }
    d
}
