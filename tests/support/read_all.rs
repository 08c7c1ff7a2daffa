//! The h5ad reader entry points a command runs on an input, in one function: what
//! `examples/fuzz_readers.rs` runs on each mutant and `tests/fuzz_regressions.rs` on each input
//! the fuzzer kept. Contents that are not a valid h5ad must come back as an error, never as a
//! panic or a crash.

use std::path::Path;

use scoop::io::{csc, inspect, read_element, H5adReader, MatrixReader};
use scoop::stream::{ChunkStream, RowSelection, StreamOptions};

/// Rows per chunk: small, so multi-chunk code paths run on small files.
const CHUNK_ROWS: usize = 5;

/// Runs every reader on `path`: `scoop inspect`'s description; obs and var whole and by rows;
/// a streaming pass over X (as preprocess and pca start), or for a `csc_matrix` X the transpose
/// `scoop convert` runs (tiny budgets, into a scratch file); every obsm, varm, obsp, layers and
/// uns element; raw's X rows. Returns the first error.
pub fn read_all(path: &Path) -> scoop::Result<()> {
    inspect::describe(path)?;
    let f = H5adReader::open(path)?;
    f.obs()?;
    f.var()?;
    for df in [f.obs_reader()?, f.var_reader()?] {
        for c in df.column_names().to_vec() {
            df.read_column(&c, 0..df.len().min(3))?;
        }
        df.read_rows(0..df.len())?;
    }
    if csc::is_csc(f.root(), "X")? {
        let dir = tempfile::tempdir().map_err(|e| scoop::Error::io(path, e))?;
        let out = hdf5::File::create(dir.path().join("out.h5"))
            .map_err(|e| scoop::Error::InvalidArgument(e.to_string()))?;
        let opts = csc::TransposeOptions {
            compression: scoop::io::Codec::None,
            block_values: 7,
            band_values: 5,
            read_path: scoop::io::ReadPath::Parallel,
        };
        csc::csc_to_csr(
            f.root(),
            "X",
            &out,
            &dir.path().join("scratch"),
            &opts,
            &|_| {},
        )?;
    } else if f.has_x() {
        let opts = StreamOptions {
            chunk_rows: CHUNK_ROWS,
            prefetch: 1,
            ..StreamOptions::default()
        };
        for chunk in ChunkStream::open(path, RowSelection::All, opts)? {
            chunk?;
        }
    }
    for group in ["obsm", "varm", "obsp", "varp", "layers", "uns"] {
        for key in f.keys(group)? {
            f.element(group, &key)?;
            if group != "uns" {
                let g = f.group(group)?;
                if let Ok(m) = MatrixReader::open(&g, &key) {
                    let n = m.shape().0;
                    m.read_rows(0..n.min(CHUNK_ROWS))?;
                }
            }
        }
    }
    if f.root().link_exists("raw") {
        let raw = f.group("raw")?;
        read_element(&raw, "var")?;
        let x = MatrixReader::open(&raw, "X")?;
        let n = x.shape().0;
        x.read_rows(0..n)?;
    }
    Ok(())
}
