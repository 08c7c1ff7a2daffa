//! `csc_matrix` elements rewritten as `csr_matrix`, in memory bounded by budgets rather than by
//! the matrix: the out-of-core transpose behind `scoop convert`.
//!
//! scoop streams rows; a CSC matrix (as R exports often are) stores columns. The transpose reads
//! the CSC twice and writes one scratch file:
//!
//! 1. **Count.** Every column's row indices (no values) are read, block by block, through the
//!    same parallel chunk reader as X's rows, and each row's stored entries are counted.
//! 2. **Scatter.** Rows are cut into *bands*: consecutive rows holding at most
//!    [`TransposeOptions::band_values`] entries (a longer row is a band of its own). The columns
//!    are read again in ascending order, values too, and every entry goes, as a record (row in
//!    its band, column, value in its stored bytes), to its band's region of the scratch file,
//!    through a small buffer per band. Columns come in ascending order, so each row's records are
//!    in ascending column order within its band.
//! 3. **Gather.** Band by band, the records are read back and placed by a stable counting sort
//!    on the row: the band's rows, in CSR with sorted columns, are appended to the output.
//!
//! Memory: two 4-byte words per row (counts, then band numbers), one block of columns, one band
//! of records and its CSR (bands also end at [`BAND_ROWS`] rows), and the band buffers (at
//! most [`SCATTER_BUFFERS`] bytes in all: bands are made large enough for that).
//! Scratch disk: (8 + the value's size) bytes per stored entry. Values keep their dtype and bits;
//! repeated (row, column) entries stay repeated, as scipy's `tocsr` keeps them.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use hdf5::Group;
use rayon::prelude::*;

use super::array::{NumDtype, NumVec};
use super::chunk::rows_within;
use super::chunks::ReadPath;
#[cfg(doc)]
use super::csr::MatrixInfo;
use super::csr::{CsrReader, CsrWriteOptions, CsrWriter};
use super::filters::Codec;
use super::h5::{self, format_err, H5Context};
use crate::error::{Error, Result};

/// Bytes of band buffers in all during the scatter.
pub const SCATTER_BUFFERS: usize = 64 << 20;

/// Most rows per band: a band's CSR offsets cost 16 bytes per row while it is gathered, so a run
/// of empty rows must not make one band of them all.
pub const BAND_ROWS: usize = 1 << 16;

/// Budgets and output settings of a transpose.
#[derive(Clone, Copy, Debug)]
pub struct TransposeOptions {
    /// Compression of the output's `data` and `indices`.
    pub compression: Codec,
    /// Most stored entries read per block of columns (a longer column is a block of its own).
    pub block_values: usize,
    /// Most stored entries per band of rows gathered at once (a longer row is a band of its own).
    pub band_values: usize,
    /// How the CSC's datasets are read.
    pub read_path: ReadPath,
}

/// What a transpose wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transposed {
    /// (rows, columns) of the matrix.
    pub shape: (usize, usize),
    /// Stored entries.
    pub nnz: u64,
}

/// True when `parent/name` is a group whose `encoding-type` is `csc_matrix`.
pub fn is_csc(parent: &Group, name: &str) -> Result<bool> {
    if !h5::is_group(parent, name) {
        return Ok(false);
    }
    let g = parent.group(name).at(parent, name)?;
    Ok(h5::attr_str(&g, "encoding-type")?.as_deref() == Some("csc_matrix"))
}

/// Writes the `csc_matrix` group `src/name` as a `csr_matrix` group `dst/name` with the same
/// shape, values and dtype, through the scratch file `scratch` (created, and removed before
/// returning). `progress` is called with entries done, three times over in all (the total is
/// [`MatrixInfo::of`]'s `nnz`).
pub fn csc_to_csr(
    src: &Group,
    name: &str,
    dst: &Group,
    scratch: &Path,
    opts: &TransposeOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Transposed> {
    let g = src.group(name).at(src, name)?;
    let cols = CsrReader::open_columns(g.clone(), opts.read_path)?;
    let (n_cols, n_rows) = cols.info().shape;
    if n_cols > i32::MAX as usize {
        return Err(format_err(
            src,
            name,
            format!("has {n_cols} columns; CSR column indices are int32 (at most 2^31 - 1)"),
        ));
    }
    if n_rows > u32::MAX as usize {
        return Err(format_err(
            &g,
            "@shape",
            format!("declares {n_rows} rows; scoop convert handles at most 2^32 - 1"),
        ));
    }
    let ptr = cols.offsets_of(&(0..n_cols))?;
    if ptr.windows(2).any(|w| w[1] < w[0]) {
        return Err(format_err(&g, "indptr", "not non-decreasing"));
    }
    let nnz = ptr[n_cols];
    let blocks = spans_by_values(&ptr, opts.block_values.max(1));

    // 1. Count each row's entries.
    let mut counts: Vec<AtomicU32> = Vec::new();
    counts.try_reserve_exact(n_rows).map_err(|_| {
        format_err(
            &g,
            "@shape",
            format!("declares {n_rows} rows: no memory for a count per row"),
        )
    })?;
    counts.extend((0..n_rows).map(|_| AtomicU32::new(0)));
    for block in &blocks {
        let (_, rows, _) = cols.read_structure(block.clone())?;
        rows.par_chunks(1 << 16).for_each(|part| {
            for &r in part {
                counts[r as usize].fetch_add(1, Ordering::Relaxed);
            }
        });
        progress(rows.len() as u64);
    }
    let counts: Vec<u32> = counts.into_iter().map(AtomicU32::into_inner).collect();
    // A row of 2^32 or more entries (repeats) wraps its count.
    if counts.par_iter().map(|&c| c as u64).sum::<u64>() != nnz {
        return Err(format_err(
            &g,
            "indices",
            "a row holds 2^32 or more entries; scoop convert cannot place them",
        ));
    }
    // Bands of at least nnz·4 KiB / SCATTER_BUFFERS entries keep the scatter's buffers (4 KiB
    // or more each) within SCATTER_BUFFERS.
    let band_values = opts
        .band_values
        .max(1)
        .max((nnz as usize).saturating_mul(4 << 10) / SCATTER_BUFFERS + 1);
    let (bands, band_of) = plan_bands(counts, band_values, BAND_ROWS);

    let dtype = cols.info().dtype;
    let mut writer = CsrWriter::create_typed(
        dst,
        name,
        n_cols,
        dtype,
        CsrWriteOptions {
            compression: opts.compression,
            nnz_hint: Some(nnz),
        },
    )?;
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(scratch)
        .map_err(|e| Error::io(scratch, e))?;
    let scratch_file = Scratch {
        file,
        path: scratch,
    };
    macro_rules! by_dtype {
        ($($d:ident => $t:ty),*) => {
            match dtype {
                $(NumDtype::$d => transpose_values::<$t>(
                    &cols, &blocks, &bands, &band_of, &scratch_file, &mut writer, progress,
                ),)*
                NumDtype::Bool => Err(format_err(&g, "data", "must hold numbers")),
            }
        };
    }
    let done = by_dtype!(I8 => i8, I16 => i16, I32 => i32, I64 => i64, U8 => u8, U16 => u16,
                         U32 => u32, U64 => u64, F32 => f32, F64 => f64);
    drop(scratch_file);
    let _ = std::fs::remove_file(scratch);
    done?;
    let (rows, written) = writer.finish()?;
    debug_assert_eq!((rows, written), (n_rows, nnz));
    Ok(Transposed {
        shape: (n_rows, n_cols),
        nnz,
    })
}

/// Consecutive ranges of `0..ptr.len() - 1` holding at most `budget` entries each by the
/// (non-decreasing) offsets `ptr`, an item holding more being a range of its own: cut as the
/// stream cuts row chunks ([`rows_within`]).
fn spans_by_values(ptr: &[u64], budget: usize) -> Vec<Range<usize>> {
    let n = ptr.len().saturating_sub(1);
    let mut spans = Vec::new();
    let mut start = 0;
    while start < n {
        let end = start + rows_within(&ptr[start..], budget as u64);
        spans.push(start..end);
        start = end;
    }
    spans
}

/// A band of rows and where its records lie in the scratch file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Band {
    rows: Range<usize>,
    nnz: u64,
    /// First record's index in the scratch file.
    first: u64,
}

/// Cuts the rows into bands of at most `budget` entries and `max_rows` rows by their `counts`;
/// returns the bands and each row's band number (the counts' memory, reused).
fn plan_bands(mut counts: Vec<u32>, budget: usize, max_rows: usize) -> (Vec<Band>, Vec<u32>) {
    let mut bands = Vec::new();
    let (mut start, mut nnz, mut first) = (0usize, 0u64, 0u64);
    for (r, slot) in counts.iter_mut().enumerate() {
        let c = *slot as u64;
        if r > start && (nnz + c > budget as u64 || r - start >= max_rows) {
            bands.push(Band {
                rows: start..r,
                nnz,
                first,
            });
            first += nnz;
            (start, nnz) = (r, 0);
        }
        nnz += c;
        *slot = bands.len() as u32;
    }
    if start < counts.len() {
        bands.push(Band {
            rows: start..counts.len(),
            nnz,
            first,
        });
    }
    (bands, counts)
}

/// The scratch file, with its path for errors.
struct Scratch<'a> {
    file: File,
    path: &'a Path,
}

/// A value type of a matrix, moved through the scratch file as its little-endian bytes.
trait Value: Copy + Default + Send + Sync + 'static {
    const SIZE: usize;
    fn put(self, out: &mut Vec<u8>);
    fn get(bytes: &[u8]) -> Self;
    fn slice(v: &NumVec) -> Option<&[Self]>;
    fn wrap(v: Vec<Self>) -> NumVec;
}

macro_rules! value {
    ($($t:ty => $var:ident),*) => {$(
        impl Value for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            #[inline]
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            #[inline]
            fn get(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("SIZE bytes"))
            }
            fn slice(v: &NumVec) -> Option<&[Self]> {
                match v {
                    NumVec::$var(x) => Some(x),
                    _ => None,
                }
            }
            fn wrap(v: Vec<Self>) -> NumVec {
                NumVec::$var(v)
            }
        }
    )*};
}

value!(i8 => I8, i16 => I16, i32 => I32, i64 => I64, u8 => U8, u16 => U16, u32 => U32,
       u64 => U64, f32 => F32, f64 => F64);

/// A band's rows in CSR: local indptr, column indices, values.
type BandRows<T> = (Vec<usize>, Vec<u32>, Vec<T>);

/// Passes 2 and 3 for values of type `T`. Each overlaps its reads with its other work: a thread
/// reads (and the pool decodes) the next block of columns while this one scatters the last, and
/// a thread gathers the next band while this one appends the last to `writer`.
fn transpose_values<T: Value>(
    cols: &CsrReader,
    blocks: &[Range<usize>],
    bands: &[Band],
    band_of: &[u32],
    scratch: &Scratch<'_>,
    writer: &mut CsrWriter,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<()> {
    let record = 8 + T::SIZE;
    let io_err = |e| Error::io(scratch.path, e);

    // 2. Scatter every entry to its band's region.
    let cap = (SCATTER_BUFFERS / bands.len().max(1)).clamp(4 << 10, 1 << 20) / record * record;
    let mut buffers: Vec<Vec<u8>> = vec![Vec::new(); bands.len()];
    let mut written = vec![0u64; bands.len()];
    let flush = |b: usize, buf: &mut Vec<u8>, written: &mut [u64]| -> Result<()> {
        let at = (bands[b].first + written[b]) * record as u64;
        scratch.file.write_all_at(buf, at).map_err(io_err)?;
        written[b] += (buf.len() / record) as u64;
        buf.clear();
        Ok(())
    };
    std::thread::scope(|s| -> Result<()> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        s.spawn(move || {
            for block in blocks {
                let read = cols.read_rows_typed(block.clone());
                let failed = read.is_err();
                if tx.send((block.clone(), read)).is_err() || failed {
                    return;
                }
            }
        });
        for (block, read) in rx {
            let (ptr, rows, values) = read?;
            let values = T::slice(&values)
                .ok_or_else(|| format_err(cols.group(), "data", "read in another dtype"))?;
            for (k, j) in block.enumerate() {
                for p in ptr[k]..ptr[k + 1] {
                    let r = rows[p] as usize;
                    let b = band_of[r] as usize;
                    let buf = &mut buffers[b];
                    if buf.capacity() == 0 {
                        buf.reserve_exact(cap);
                    }
                    buf.extend_from_slice(&((r - bands[b].rows.start) as u32).to_le_bytes());
                    buf.extend_from_slice(&(j as u32).to_le_bytes());
                    values[p].put(buf);
                    if buf.len() >= cap {
                        flush(b, buf, &mut written)?;
                    }
                }
            }
            progress(rows.len() as u64);
        }
        Ok(())
    })?;
    for (b, buf) in buffers.iter_mut().enumerate() {
        if !buf.is_empty() {
            flush(b, buf, &mut written)?;
        }
        *buf = Vec::new();
    }
    drop(buffers);
    if written.iter().zip(bands).any(|(&w, band)| w != band.nnz) {
        return Err(format_err(
            cols.group(),
            "indices",
            "changed between two reads of the columns",
        ));
    }

    // 3. Gather each band into CSR rows.
    std::thread::scope(|s| -> Result<()> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        s.spawn(move || {
            let mut bytes = Vec::new();
            for band in bands {
                let rows = gather_band::<T>(scratch, band, record, &mut bytes);
                let failed = rows.is_err();
                if tx.send((band.nnz, rows)).is_err() || failed {
                    return;
                }
            }
        });
        for (nnz, rows) in rx {
            let (indptr, indices, values) = rows?;
            writer.append_typed(&indptr, &indices, &T::wrap(values))?;
            progress(nnz);
        }
        Ok(())
    })
}

/// Reads `band`'s records from the scratch file (through `bytes`) and places them by a stable
/// counting sort on the row.
fn gather_band<T: Value>(
    scratch: &Scratch<'_>,
    band: &Band,
    record: usize,
    bytes: &mut Vec<u8>,
) -> Result<BandRows<T>> {
    let n = band.nnz as usize;
    bytes.resize(n * record, 0);
    scratch
        .file
        .read_exact_at(bytes, band.first * record as u64)
        .map_err(|e| Error::io(scratch.path, e))?;
    let n_rows = band.rows.len();
    let row_of = |rec: &[u8]| u32::from_le_bytes(rec[..4].try_into().expect("4 bytes")) as usize;
    let mut indptr = vec![0usize; n_rows + 1];
    for rec in bytes.chunks_exact(record) {
        indptr[row_of(rec) + 1] += 1;
    }
    for r in 0..n_rows {
        indptr[r + 1] += indptr[r];
    }
    let mut next = indptr[..n_rows].to_vec();
    let mut indices = vec![0u32; n];
    let mut values = vec![T::default(); n];
    for rec in bytes.chunks_exact(record) {
        let r = row_of(rec);
        let at = next[r];
        next[r] += 1;
        indices[at] = u32::from_le_bytes(rec[4..8].try_into().expect("4 bytes"));
        values[at] = T::get(&rec[8..]);
    }
    Ok((indptr, indices, values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MatrixReader;

    /// Writes a `csc_matrix` group `m` of `shape` from its arrays (int64 indices, f64 values).
    fn write_csc(file: &hdf5::File, shape: (usize, usize), ptr: &[i64], rows: &[i64], v: &[f64]) {
        let g = file.create_group("m").unwrap();
        h5::set_encoding(&g, "csc_matrix", "0.1.0").unwrap();
        h5::set_attr_i64s(&g, "shape", &[shape.0 as i64, shape.1 as i64]).unwrap();
        for (name, data) in [("indptr", ptr), ("indices", rows)] {
            let b = g.new_dataset_builder().with_data(data);
            b.create(name).unwrap();
        }
        g.new_dataset_builder().with_data(v).create("data").unwrap();
    }

    /// Transposes `m` of a fresh file under the budgets and reads the result back as CSR rows.
    fn transpose(
        shape: (usize, usize),
        ptr: &[i64],
        rows: &[i64],
        v: &[f64],
        budget: usize,
    ) -> Result<(Vec<usize>, Vec<u32>, NumVec)> {
        let dir = tempfile::tempdir().unwrap();
        let file = hdf5::File::create(dir.path().join("t.h5")).unwrap();
        write_csc(&file, shape, ptr, rows, v);
        let out = file.create_group("out").unwrap();
        let opts = TransposeOptions {
            compression: Codec::None,
            block_values: budget,
            band_values: budget,
            read_path: ReadPath::Parallel,
        };
        let scratch = dir.path().join("scratch");
        let done = csc_to_csr(&file, "m", &out, &scratch, &opts, &|_| {});
        assert!(!scratch.exists(), "scratch file left behind");
        let t = done?;
        assert_eq!(t.shape, shape);
        let MatrixReader::Csr(r) = MatrixReader::open(&out, "m")? else {
            panic!("not CSR");
        };
        assert_eq!(r.info().shape, shape);
        r.read_rows_typed(0..shape.0)
    }

    #[test]
    fn the_transpose_is_scipys_tocsr_under_any_budget() {
        // 4 rows x 5 columns; column 1 has its rows unsorted and row 2 twice; row 3 and column
        // 3 are empty.
        let ptr = [0i64, 2, 6, 7, 7, 9];
        let rows = [0i64, 2, 2, 0, 2, 1, 1, 0, 2];
        let v = [1.0, 2.0, 3.0, 4.0, 5.5, 6.0, 7.0, 8.0, f64::NAN];
        // By rows: row 0: (0,1) (1,4) (4,8); row 1: (1,6) (2,7); row 2: (0,2) (1,3) (1,5.5)
        // (4,NaN); row 3: none.
        let want_ptr = vec![0usize, 3, 5, 9, 9];
        let want_cols = vec![0u32, 1, 4, 1, 2, 0, 1, 1, 4];
        let want_v = [1.0, 4.0, 8.0, 6.0, 7.0, 2.0, 3.0, 5.5, f64::NAN];
        for budget in [1, 2, 3, 4, 100] {
            let (p, c, got) = transpose((4, 5), &ptr, &rows, &v, budget).unwrap();
            assert_eq!(
                (p, c),
                (want_ptr.clone(), want_cols.clone()),
                "budget {budget}"
            );
            let NumVec::F64(got) = got else {
                panic!("dtype changed");
            };
            let bits = |x: &[f64]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want_v), "budget {budget}");
        }
        let (p, c, got) = transpose((3, 0), &[0], &[], &[], 4).unwrap();
        assert_eq!((p, c, got.len()), (vec![0, 0, 0, 0], vec![], 0));
    }

    #[test]
    fn malformed_structure_is_one_error_naming_the_element() {
        let err = |shape, ptr: &[i64], rows: &[i64], v: &[f64]| {
            transpose(shape, ptr, rows, v, 10).unwrap_err().to_string()
        };
        let e = err((2, 3), &[0, 2, 1, 2], &[0, 1], &[1.0, 2.0]);
        assert!(
            e.contains("/m/indptr") && e.contains("non-decreasing"),
            "{e}"
        );
        let e = err((1 << 40, 2), &[0, 0, 0], &[], &[]);
        assert!(
            e.contains("/m/@shape") && e.contains("at most 2^32 - 1"),
            "{e}"
        );
    }

    #[test]
    fn a_row_index_out_of_range_is_named() {
        let err = transpose((2, 2), &[0, 1, 2], &[0, 2], &[1.0, 2.0], 10)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/m/indices") && err.contains("row index 2 outside 0..2 in columns"),
            "{err}"
        );
    }

    #[test]
    fn spans_keep_to_the_budget_and_give_long_items_their_own() {
        let ptr = [0u64, 3, 3, 10, 11, 12];
        assert_eq!(spans_by_values(&ptr, 3), vec![0..2, 2..3, 3..5]);
        assert_eq!(spans_by_values(&ptr, 100), vec![0..5]);
        assert_eq!(spans_by_values(&[0], 5), Vec::<Range<usize>>::new());
    }

    #[test]
    fn bands_cover_every_row_and_number_them() {
        let (bands, of) = plan_bands(vec![2, 0, 5, 1, 1, 0], 3, 100);
        assert_eq!(
            bands,
            vec![
                Band {
                    rows: 0..2,
                    nnz: 2,
                    first: 0
                },
                Band {
                    rows: 2..3,
                    nnz: 5,
                    first: 2
                },
                Band {
                    rows: 3..6,
                    nnz: 2,
                    first: 7
                },
            ]
        );
        assert_eq!(of, vec![0, 0, 1, 2, 2, 2]);
        let (bands, of) = plan_bands(vec![0; 5], 3, 2);
        assert_eq!(
            bands.iter().map(|b| b.rows.clone()).collect::<Vec<_>>(),
            [0..2, 2..4, 4..5]
        );
        assert_eq!(of, vec![0, 0, 1, 1, 2]);
    }
}
