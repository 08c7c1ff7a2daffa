//! CSR matrices in h5ad: row-range reads of `X` (CSR or dense), and streamed CSR writes.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

use hdf5::{Dataset, Group};
use rayon::prelude::*;

use super::array::{NumDtype, NumVec};
use super::chunk::{CsrChunk, RowIds};
use super::chunk_writer::ChunkWriter;
use super::chunks::{default_read_path, ChunkReader, ReadPath};
use super::filters::{self, Codec};
use super::h5::{self, format_err, Appender, H5Context, ValueKind};
use crate::error::{Error, Result};

/// How `X` (or any matrix element) is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatrixEncoding {
    /// `csr_matrix` group.
    Csr,
    /// Dense 2-D dataset (`array`).
    Dense,
    /// `csc_matrix` group: described ([`MatrixInfo::of`]) but not streamed by rows; `scoop
    /// convert` rewrites it as CSR ([`crate::io::csc`]).
    Csc,
}

/// What a matrix element holds, read from metadata alone (no values).
#[derive(Clone, Debug)]
pub struct MatrixInfo {
    /// Storage encoding.
    pub encoding: MatrixEncoding,
    /// (rows, columns).
    pub shape: (usize, usize),
    /// Element type of the stored values.
    pub dtype: NumDtype,
    /// Stored entries (CSR: `len(data)`; dense: rows x columns).
    pub nnz: u64,
    /// Index type of `indices`/`indptr` (CSR only).
    pub index_dtypes: Option<(NumDtype, NumDtype)>,
    /// HDF5 chunk shape of the values dataset, if chunked.
    pub chunks: Option<Vec<usize>>,
    /// The values dataset's filter pipeline in words ("gzip level 4 + shuffle", "zstd level 5");
    /// `None` when unfiltered.
    pub compression: Option<String>,
}

impl MatrixInfo {
    /// What the matrix element `parent/name` holds, from its metadata and `indptr`'s ends: CSR,
    /// dense or CSC (which [`MatrixReader::open`] refuses).
    pub fn of(parent: &Group, name: &str) -> Result<MatrixInfo> {
        if super::csc::is_csc(parent, name)? {
            let g = parent.group(name).at(parent, name)?;
            let cols = CsrReader::open_columns(g, ReadPath::Hdf5)?;
            let n = cols.info.shape.0;
            let mut info = cols.info.clone();
            info.encoding = MatrixEncoding::Csc;
            info.shape = (info.shape.1, info.shape.0);
            info.nnz = cols.offsets_of(&(n..n))?[0];
            return Ok(info);
        }
        Ok(MatrixReader::open(parent, name)?.info().clone())
    }
}

/// Reads row ranges of a matrix element (`X`, a layer, an `obsp` entry) as [`CsrChunk`]s.
pub enum MatrixReader {
    /// CSR group.
    Csr(CsrReader),
    /// Dense 2-D dataset.
    Dense(DenseReader),
}

impl MatrixReader {
    /// Opens the matrix stored at `name` in `parent`, checking its encoding and shape; values
    /// are read by the process's default [`ReadPath`].
    pub fn open(parent: &Group, name: &str) -> Result<Self> {
        Self::open_with(parent, name, default_read_path())
    }

    /// [`Self::open`] reading values by `path`.
    pub fn open_with(parent: &Group, name: &str, path: ReadPath) -> Result<Self> {
        if !parent.link_exists(name) {
            return Err(format_err(parent, name, "not found"));
        }
        if h5::is_group(parent, name) {
            let g = parent.group(name).at(parent, name)?;
            let enc = h5::attr_str(&g, "encoding-type")?;
            match enc.as_deref() {
                Some("csr_matrix") => Ok(MatrixReader::Csr(CsrReader::open_with(g, path)?)),
                Some("csc_matrix") => Err(format_err(
                    parent,
                    name,
                    "is stored as csc_matrix; scoop streams rows and needs csr_matrix: \
                     `scoop convert FILE --out NEW.h5ad` writes a copy with every csc_matrix \
                     rewritten as csr_matrix, in bounded memory",
                )),
                Some(other) => Err(format_err(
                    parent,
                    name,
                    format!("unknown encoding-type {other:?} for a matrix (expected csr_matrix or array)"),
                )),
                None => Err(format_err(parent, name, "group without encoding-type: not an AnnData matrix")),
            }
        } else {
            let ds = parent.dataset(name).at(parent, name)?;
            Ok(MatrixReader::Dense(DenseReader::open(ds, parent, name)?))
        }
    }

    /// Metadata of the matrix.
    pub fn info(&self) -> &MatrixInfo {
        match self {
            MatrixReader::Csr(r) => &r.info,
            MatrixReader::Dense(r) => &r.info,
        }
    }

    /// True when the values and column indices are read by [`ReadPath::Parallel`]'s positioned
    /// reads (a CSR matrix whose `data` and `indices` that path can map).
    pub fn is_parallel(&self) -> bool {
        matches!(self, MatrixReader::Csr(r) if r.fast_data.is_some() && r.fast_indices.is_some())
    }

    /// (rows, columns).
    pub fn shape(&self) -> (usize, usize) {
        self.info().shape
    }

    /// Reads rows `rows` as a CSR chunk of f32 values.
    pub fn read_rows(&self, rows: Range<usize>) -> Result<CsrChunk> {
        let mut chunk = CsrChunk::empty(self.shape().1);
        self.read_rows_into(rows, &mut chunk)?;
        Ok(chunk)
    }

    /// [`Self::read_rows`] into `chunk`, replacing its contents and reusing its buffers where the
    /// values are read by [`ReadPath::Parallel`] (refilling a consumed chunk then allocates and
    /// touches no fresh memory).
    pub fn read_rows_into(&self, rows: Range<usize>, chunk: &mut CsrChunk) -> Result<()> {
        match self {
            MatrixReader::Csr(r) => r.read_rows_into(rows, chunk),
            MatrixReader::Dense(r) => {
                *chunk = r.read_rows(rows)?;
                Ok(())
            }
        }
    }

    /// [`Self::read_rows_into`] with the rows' offsets already read: `offsets` must be what
    /// [`Self::row_offsets`] returns for `rows` (`rows.len() + 1` entries), and `indptr` is not
    /// read again. The offsets get the checks a read of `indptr` gets (non-decreasing, within
    /// the stored values; negative offsets are refused when `indptr` is read), so a corrupt
    /// `indptr` fails with the same line whichever way its offsets came.
    pub fn read_rows_with_offsets_into(
        &self,
        rows: Range<usize>,
        offsets: &[u64],
        chunk: &mut CsrChunk,
    ) -> Result<()> {
        match self {
            MatrixReader::Csr(r) => r.read_rows_with_offsets_into(rows, offsets, chunk),
            MatrixReader::Dense(r) => {
                check_offsets_len(&rows, offsets)?;
                *chunk = r.read_rows(rows)?;
                Ok(())
            }
        }
    }

    /// Where each of rows `rows` starts and ends among the stored values: `rows.len() + 1`
    /// offsets, the first at row `rows.start` (CSR: `indptr[rows.start..=rows.end]`; dense:
    /// multiples of the column count).
    pub fn row_offsets(&self, rows: Range<usize>) -> Result<Vec<u64>> {
        match self {
            MatrixReader::Csr(r) => r.offsets_of(&rows),
            MatrixReader::Dense(r) => {
                let w = r.info.shape.1 as u64;
                Ok((rows.start..=rows.end).map(|i| i as u64 * w).collect())
            }
        }
    }

    /// Stored entries in rows `rows` (exact for CSR; rows x columns for dense).
    pub fn nnz_in(&self, rows: Range<usize>) -> Result<u64> {
        match self {
            MatrixReader::Csr(r) => {
                let p = r.read_indptr(rows.start..rows.end + 1)?;
                Ok(p[p.len() - 1] - p[0])
            }
            MatrixReader::Dense(r) => Ok((rows.len() * r.info.shape.1) as u64),
        }
    }

    /// What has been read of `indptr` since the matrix was opened; `None` for a dense matrix.
    pub fn indptr_reads(&self) -> Option<IndptrReads> {
        match self {
            MatrixReader::Csr(r) => Some(r.indptr_reads()),
            MatrixReader::Dense(_) => None,
        }
    }
}

/// What a [`CsrReader`] has read of its `indptr` (counted since it was opened, the reads of
/// its first and last entry at open included): lets a caller check that a pass reads each
/// row's offsets once and decodes each stored chunk of `indptr` once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndptrReads {
    /// True when `indptr` is read by positioned reads outside HDF5 ([`ReadPath::Parallel`]
    /// where its storage allows, as for `data` and `indices`).
    pub parallel: bool,
    /// Entries read from the file (an entry read twice counts twice).
    pub entries: u64,
    /// Stored chunks decoded by the parallel path (always 0 through HDF5 or when `indptr` is
    /// unfiltered).
    pub chunks_decoded: u64,
}

/// Checks that `offsets` has one entry per row of `rows` and one more.
fn check_offsets_len(rows: &Range<usize>, offsets: &[u64]) -> Result<()> {
    if offsets.len() != rows.len() + 1 {
        return Err(Error::InvalidArgument(format!(
            "{} row offsets for rows {rows:?}, which need {}",
            offsets.len(),
            rows.len() + 1
        )));
    }
    Ok(())
}

/// Reader of a `csr_matrix` group.
pub struct CsrReader {
    group: Group,
    data: Dataset,
    indices: Dataset,
    indptr: Dataset,
    info: MatrixInfo,
    /// Parallel readers of `data`, `indices` and `indptr`, where the read path and the storage
    /// allow.
    fast_data: Option<Box<ChunkReader>>,
    fast_indices: Option<Box<ChunkReader>>,
    fast_indptr: Option<Box<ChunkReader>>,
    /// Entries of `indptr` read so far.
    indptr_entries: AtomicU64,
    /// Reading a `csc_matrix` group by columns ([`Self::open_columns`]): its "rows" are the
    /// matrix's columns and its "columns" the matrix's rows (errors say so).
    by_columns: bool,
}

/// Opens numeric dataset `name` of `group`, checking that scoop can decode its filters.
fn dataset_num(group: &Group, name: &str) -> Result<(Dataset, NumDtype)> {
    if !group.link_exists(name) {
        return Err(format_err(group, name, "missing"));
    }
    let ds = group.dataset(name).at(group, name)?;
    match h5::value_kind(&ds, group, name)? {
        ValueKind::Num(NumDtype::Bool) | ValueKind::Str => {
            Err(format_err(group, name, "must hold numbers"))
        }
        ValueKind::Num(t) => {
            filters::check_decodable(&ds, group, name)?;
            Ok((ds, t))
        }
    }
}

/// The filter pipeline of `ds` in words.
fn describe_filters(ds: &Dataset) -> Result<Option<String>> {
    Ok(filters::describe(&filters::pipeline(ds)?))
}

impl CsrReader {
    /// Opens a `csr_matrix` group and checks its shape and datasets against each other; values
    /// are read by the process's default [`ReadPath`].
    pub fn open(group: Group) -> Result<Self> {
        Self::open_with(group, default_read_path())
    }

    /// [`Self::open`] reading `data`, `indices` and `indptr` by `path` (datasets the parallel
    /// path cannot map go through HDF5, and so does an `indptr` of a type other than int32 or
    /// int64).
    pub fn open_with(group: Group, path: ReadPath) -> Result<Self> {
        Self::open_view(group, path, false)
    }

    /// Opens a `csc_matrix` group as the CSR matrix of its transpose, by `path`: a "row" of the
    /// reader is a column of the matrix (its stored row indices and values), so column ranges
    /// stream as row ranges do. The `shape` the reader reports is (columns, rows).
    pub(crate) fn open_columns(group: Group, path: ReadPath) -> Result<Self> {
        Self::open_view(group, path, true)
    }

    fn open_view(group: Group, path: ReadPath, by_columns: bool) -> Result<Self> {
        let shape = h5::attr_f64s(&group, "shape")?
            .ok_or_else(|| format_err(&group, "@shape", "missing"))?;
        if shape.len() != 2 || shape.iter().any(|&s| s < 0.0 || s.fract() != 0.0) {
            return Err(format_err(
                &group,
                "@shape",
                format!("expected two non-negative integers, found {shape:?}"),
            ));
        }
        let (n_rows, n_cols) = if by_columns {
            (shape[1] as usize, shape[0] as usize)
        } else {
            (shape[0] as usize, shape[1] as usize)
        };
        let (data, dtype) = dataset_num(&group, "data")?;
        let (indices, ind_t) = dataset_num(&group, "indices")?;
        let (indptr, ptr_t) = dataset_num(&group, "indptr")?;
        for (ds, name, t) in [(&indices, "indices", ind_t), (&indptr, "indptr", ptr_t)] {
            if !t.is_integer() {
                return Err(format_err(
                    &group,
                    name,
                    format!("must be integers, found {}", t.name()),
                ));
            }
            if ds.ndim() != 1 {
                return Err(format_err(&group, name, "must be 1-D"));
            }
        }
        if indptr.size() != n_rows + 1 {
            return Err(format_err(
                &group,
                "indptr",
                format!(
                    "has {} entries; shape {:?} needs {}",
                    indptr.size(),
                    (shape[0] as usize, shape[1] as usize),
                    n_rows + 1
                ),
            ));
        }
        let info = MatrixInfo {
            encoding: MatrixEncoding::Csr,
            shape: (n_rows, n_cols),
            dtype,
            nnz: data.size() as u64,
            index_dtypes: Some((ind_t, ptr_t)),
            chunks: data.chunk(),
            compression: describe_filters(&data)?,
        };
        // Column indices take the parallel path only where every valid column fits below 2^31
        // (its contract for out-of-range values).
        let parallel = path == ReadPath::Parallel;
        let fast_data = if parallel {
            ChunkReader::open(&data)?.map(Box::new)
        } else {
            None
        };
        let fast_indices = if parallel && n_cols <= i32::MAX as usize {
            ChunkReader::open(&indices)?.map(Box::new)
        } else {
            None
        };
        // Offsets are read as int64: int32 and int64 convert exactly (uint64 does not).
        let fast_indptr = if parallel && matches!(ptr_t, NumDtype::I32 | NumDtype::I64) {
            ChunkReader::open(&indptr)?.map(Box::new)
        } else {
            None
        };
        let reader = CsrReader {
            group,
            data,
            indices,
            indptr,
            info,
            fast_data,
            fast_indices,
            fast_indptr,
            indptr_entries: AtomicU64::new(0),
            by_columns,
        };
        let ends = reader.read_indptr(n_rows..n_rows + 1)?;
        let first = reader.read_indptr(0..1)?;
        let nnz = ends[0];
        if first[0] != 0 {
            return Err(format_err(
                &reader.group,
                "indptr",
                format!("starts at {} instead of 0", first[0]),
            ));
        }
        for (ds, name) in [(&reader.indices, "indices"), (&reader.data, "data")] {
            if (ds.size() as u64) < nnz {
                return Err(format_err(
                    &reader.group,
                    name,
                    format!(
                        "truncated: holds {} entries but indptr ends at {nnz}",
                        ds.size()
                    ),
                ));
            }
        }
        Ok(reader)
    }

    /// Reads `indptr[range]` as u64, rejecting negative offsets.
    fn read_indptr(&self, range: Range<usize>) -> Result<Vec<u64>> {
        let mut raw: Vec<i64> = Vec::new();
        match &self.fast_indptr {
            Some(fast) => fast.read_into(range, &mut raw)?,
            None => h5::read_into(&self.indptr, range, &mut raw, &self.group, "indptr")?,
        }
        self.indptr_entries
            .fetch_add(raw.len() as u64, Ordering::Relaxed);
        raw.into_iter()
            .map(|v| {
                u64::try_from(v)
                    .map_err(|_| format_err(&self.group, "indptr", format!("negative offset {v}")))
            })
            .collect()
    }

    /// Shape, dtype and storage of the matrix (as the reader sees it: a `csc_matrix` read by
    /// columns reports (columns, rows)).
    pub fn info(&self) -> &MatrixInfo {
        &self.info
    }

    /// The matrix's group, for errors naming its elements.
    pub(crate) fn group(&self) -> &Group {
        &self.group
    }

    /// What has been read of `indptr` since open.
    pub fn indptr_reads(&self) -> IndptrReads {
        IndptrReads {
            parallel: self.fast_indptr.is_some(),
            entries: self.indptr_entries.load(Ordering::Relaxed),
            chunks_decoded: self.fast_indptr.as_ref().map_or(0, |f| f.chunks_decoded()),
        }
    }

    /// Fails unless `rows` lies within the matrix's rows.
    fn check_rows(&self, rows: &Range<usize>) -> Result<()> {
        let n_rows = self.info.shape.0;
        if rows.end > n_rows || rows.start > rows.end {
            let (major, _) = self.axes();
            return Err(format_err(
                &self.group,
                "",
                format!("{major} range {rows:?} outside 0..{n_rows}"),
            ));
        }
        Ok(())
    }

    /// What the reader's rows and column indices are, for messages: ("rows", "column"), or
    /// ("columns", "row") for a `csc_matrix` read by columns.
    fn axes(&self) -> (&'static str, &'static str) {
        if self.by_columns {
            ("columns", "row")
        } else {
            ("rows", "column")
        }
    }

    /// `indptr[rows.start..=rows.end]`, after checking `rows`.
    pub(crate) fn offsets_of(&self, rows: &Range<usize>) -> Result<Vec<u64>> {
        self.check_rows(rows)?;
        self.read_indptr(rows.start..rows.end + 1)
    }

    /// Reads rows `rows`: one read of indptr, then one of indices and data.
    pub fn read_rows(&self, rows: Range<usize>) -> Result<CsrChunk> {
        let mut chunk = CsrChunk::empty(self.info.shape.1);
        self.read_rows_into(rows, &mut chunk)?;
        Ok(chunk)
    }

    /// [`Self::read_rows`] into `chunk`, replacing its contents and reusing its buffers.
    pub fn read_rows_into(&self, rows: Range<usize>, chunk: &mut CsrChunk) -> Result<()> {
        let offsets = self.offsets_of(&rows)?;
        self.read_rows_with_offsets_into(rows, &offsets, chunk)
    }

    /// [`Self::read_rows_into`] with `indptr[rows.start..=rows.end]` already read
    /// (see [`MatrixReader::read_rows_with_offsets_into`]).
    pub fn read_rows_with_offsets_into(
        &self,
        rows: Range<usize>,
        offsets: &[u64],
        chunk: &mut CsrChunk,
    ) -> Result<()> {
        chunk.rows = RowIds::Range(rows.start as u64..rows.end as u64);
        chunk.n_cols = self.info.shape.1;
        let span =
            self.read_structure_into(rows, offsets, &mut chunk.indptr, &mut chunk.indices)?;
        if let Some(fast) = &self.fast_data {
            fast.read_into(span, &mut chunk.data)?;
        } else if span.is_empty() {
            chunk.data.clear();
        } else {
            h5::read_into(&self.data, span, &mut chunk.data, &self.group, "data")?;
        }
        Ok(())
    }

    /// Reads rows `rows` with their values in the stored dtype: (indptr local to the rows,
    /// column indices, values).
    pub fn read_rows_typed(&self, rows: Range<usize>) -> Result<(Vec<usize>, Vec<u32>, NumVec)> {
        let (indptr, indices, span) = self.read_structure(rows)?;
        let data = match &self.fast_data {
            Some(fast) => match self.info.dtype {
                NumDtype::I8 => NumVec::I8(fast.read(span)?),
                NumDtype::I16 => NumVec::I16(fast.read(span)?),
                NumDtype::I32 => NumVec::I32(fast.read(span)?),
                NumDtype::I64 => NumVec::I64(fast.read(span)?),
                NumDtype::U8 => NumVec::U8(fast.read(span)?),
                NumDtype::U16 => NumVec::U16(fast.read(span)?),
                NumDtype::U32 => NumVec::U32(fast.read(span)?),
                NumDtype::U64 => NumVec::U64(fast.read(span)?),
                NumDtype::F32 => NumVec::F32(fast.read(span)?),
                NumDtype::F64 => NumVec::F64(fast.read(span)?),
                NumDtype::Bool => h5::read_num(&self.data, Some(span), &self.group, "data")?,
            },
            None if span.is_empty() => NumVec::empty(self.info.dtype),
            None => h5::read_num(&self.data, Some(span), &self.group, "data")?,
        };
        Ok((indptr, indices, data))
    }

    /// The local indptr and checked column indices of rows `rows`, and their span of `data`.
    pub(crate) fn read_structure(
        &self,
        rows: Range<usize>,
    ) -> Result<(Vec<usize>, Vec<u32>, Range<usize>)> {
        let offsets = self.offsets_of(&rows)?;
        let (mut indptr, mut indices) = (Vec::new(), Vec::new());
        let span = self.read_structure_into(rows, &offsets, &mut indptr, &mut indices)?;
        Ok((indptr, indices, span))
    }

    /// [`Self::read_structure`] from the rows' offsets `ptr` (`indptr[rows.start..=rows.end]`,
    /// checked here: non-decreasing and within the stored values) into `indptr` and `indices`
    /// (their allocations reused); returns the span of `data`.
    fn read_structure_into(
        &self,
        rows: Range<usize>,
        ptr: &[u64],
        indptr: &mut Vec<usize>,
        indices: &mut Vec<u32>,
    ) -> Result<Range<usize>> {
        let n_cols = self.info.shape.1;
        self.check_rows(&rows)?;
        check_offsets_len(&rows, ptr)?;
        let (lo, hi) = (ptr[0], ptr[ptr.len() - 1]);
        if ptr.windows(2).any(|w| w[1] < w[0]) || hi > self.info.nnz {
            return Err(format_err(
                &self.group,
                "indptr",
                format!("not non-decreasing within {} {rows:?}", self.axes().0),
            ));
        }
        let span = lo as usize..hi as usize;
        indptr.clear();
        indptr.extend(ptr.iter().map(|&p| (p - lo) as usize));
        if let Some(fast) = &self.fast_indices {
            fast.read_into(span.clone(), indices)?;
            let width = n_cols as u32; // n_cols <= i32::MAX on this path
            let fits = indices
                .par_chunks(1 << 16)
                .all(|c| c.iter().fold(0u32, |m, &x| m.max(x)) < width);
            if fits {
                return Ok(span);
            }
            // A bad column: HDF5's read below names it as stored.
        }
        indices.clear();
        if !span.is_empty() {
            let bad = |c: i64| {
                let (major, minor) = self.axes();
                format_err(
                    &self.group,
                    "indices",
                    format!("{minor} index {c} outside 0..{n_cols} in {major} {rows:?}"),
                )
            };
            // Read indices in their stored width (no HDF5 conversion for int32/uint32), then check
            // every column once.
            match self.info.index_dtypes.map(|t| t.0) {
                Some(
                    NumDtype::I32
                    | NumDtype::U32
                    | NumDtype::I16
                    | NumDtype::U16
                    | NumDtype::I8
                    | NumDtype::U8,
                ) => {
                    let mut idx: Vec<i32> = Vec::new();
                    h5::read_into(
                        &self.indices,
                        span.clone(),
                        &mut idx,
                        &self.group,
                        "indices",
                    )?;
                    if let Some(&c) = idx.iter().find(|&&c| c < 0 || c as usize >= n_cols) {
                        return Err(bad(c as i64));
                    }
                    indices.extend(idx.into_iter().map(|c| c as u32));
                }
                _ => {
                    let mut idx64: Vec<i64> = Vec::new();
                    h5::read_into(
                        &self.indices,
                        span.clone(),
                        &mut idx64,
                        &self.group,
                        "indices",
                    )?;
                    if let Some(&c) = idx64.iter().find(|&&c| c < 0 || c as usize >= n_cols) {
                        return Err(bad(c));
                    }
                    indices.extend(idx64.into_iter().map(|c| c as u32));
                }
            }
        }
        Ok(span)
    }
}

/// Reader of a dense 2-D `X`, converted to CSR chunks (zeros dropped).
pub struct DenseReader {
    ds: Dataset,
    parent: Group,
    name: String,
    info: MatrixInfo,
}

impl DenseReader {
    fn open(ds: Dataset, parent: &Group, name: &str) -> Result<Self> {
        let kind = h5::value_kind(&ds, parent, name)?;
        let ValueKind::Num(dtype) = kind else {
            return Err(format_err(parent, name, "dense matrix must hold numbers"));
        };
        let shape = ds.shape();
        if shape.len() != 2 {
            return Err(format_err(
                parent,
                name,
                format!("expected a 2-D matrix, found shape {shape:?}"),
            ));
        }
        filters::check_decodable(&ds, parent, name)?;
        let info = MatrixInfo {
            encoding: MatrixEncoding::Dense,
            shape: (shape[0], shape[1]),
            dtype,
            nnz: (shape[0] * shape[1]) as u64,
            index_dtypes: None,
            chunks: ds.chunk(),
            compression: describe_filters(&ds)?,
        };
        Ok(DenseReader {
            ds,
            parent: parent.clone(),
            name: name.to_string(),
            info,
        })
    }

    /// Rows `rows`, every column, row-major, in the stored dtype.
    pub fn read_rows_typed(&self, rows: Range<usize>) -> Result<NumVec> {
        let (n_rows, n_cols) = self.info.shape;
        if rows.end > n_rows || rows.start > rows.end {
            return Err(format_err(
                &self.parent,
                &self.name,
                format!("row range {rows:?} outside 0..{n_rows}"),
            ));
        }
        if rows.is_empty() || n_cols == 0 {
            return Ok(NumVec::empty(self.info.dtype));
        }
        macro_rules! rd {
            ($t:ty, $var:ident) => {
                NumVec::$var(
                    self.ds
                        .as_reader()
                        .read_slice_2d::<$t, _>((rows.clone(), 0..n_cols))
                        .at(&self.parent, &self.name)?
                        .into_raw_vec_and_offset()
                        .0,
                )
            };
        }
        Ok(match self.info.dtype {
            NumDtype::Bool => rd!(bool, Bool),
            NumDtype::I8 => rd!(i8, I8),
            NumDtype::I16 => rd!(i16, I16),
            NumDtype::I32 => rd!(i32, I32),
            NumDtype::I64 => rd!(i64, I64),
            NumDtype::U8 => rd!(u8, U8),
            NumDtype::U16 => rd!(u16, U16),
            NumDtype::U32 => rd!(u32, U32),
            NumDtype::U64 => rd!(u64, U64),
            NumDtype::F32 => rd!(f32, F32),
            NumDtype::F64 => rd!(f64, F64),
        })
    }

    fn read_rows(&self, rows: Range<usize>) -> Result<CsrChunk> {
        let n_cols = self.info.shape.1;
        let block = self
            .ds
            .as_reader()
            .read_slice_2d::<f32, _>((rows.clone(), 0..n_cols))
            .at(&self.parent, &self.name)?;
        let mut chunk = CsrChunk::empty(n_cols);
        chunk.rows = RowIds::Range(rows.start as u64..rows.end as u64);
        for row in block.rows() {
            for (j, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    chunk.indices.push(j as u32);
                    chunk.data.push(v);
                }
            }
            chunk.indptr.push(chunk.data.len());
        }
        Ok(chunk)
    }
}

/// Options for writing a CSR matrix.
#[derive(Clone, Copy, Debug, Default)]
pub struct CsrWriteOptions {
    /// Compression of data and indices ([`Codec::None`], anndata's default, by default). Their
    /// chunks are encoded on the rayon pool and stored by direct chunk writes.
    pub compression: Codec,
    /// Total stored entries when known up front (or an estimate): at 2^31 - 1 or more, indptr is
    /// int64 from the start instead of rewritten from int32 when the entries pass that bound.
    pub nnz_hint: Option<u64>,
}

const I32_LIMIT: u64 = i32::MAX as u64; // anndata switches to int64 indptr at nnz >= 2^31 - 1
const DATA_CHUNK: usize = 1 << 18;
const INDPTR_CHUNK: usize = 1 << 16;

enum IndptrSink {
    I32(Appender),
    I64(Appender),
}

/// Streams a CSR matrix into a `csr_matrix` group chunk by chunk.
///
/// Nothing is complete until [`CsrWriter::finish`]: the last chunks of `data` and `indices` are
/// stored there.
pub struct CsrWriter {
    group: Group,
    // Boxed: a writer is moved between threads and held in enums of sinks.
    data: Box<ChunkWriter>,
    indices: Box<ChunkWriter>,
    indptr: IndptrSink,
    n_cols: usize,
    n_rows: usize,
    nnz: u64,
}

impl CsrWriter {
    /// Creates group `name` under `parent` for a matrix with `n_cols` columns of f32 values.
    pub fn create(
        parent: &Group,
        name: &str,
        n_cols: usize,
        opts: CsrWriteOptions,
    ) -> Result<Self> {
        Self::create_typed(parent, name, n_cols, NumDtype::F32, opts)
    }

    /// Creates group `name` under `parent` for a matrix with `n_cols` columns whose values are
    /// stored as `dtype` (appended with [`Self::append_typed`]).
    pub fn create_typed(
        parent: &Group,
        name: &str,
        n_cols: usize,
        dtype: NumDtype,
        opts: CsrWriteOptions,
    ) -> Result<Self> {
        let group = parent.create_group(name).at(parent, name)?;
        h5::set_encoding(&group, "csr_matrix", "0.1.0")?;
        let data = crate::with_num_type!(dtype, T => ChunkWriter::create::<T>(&group, "data", DATA_CHUNK, opts.compression))?;
        let indices = ChunkWriter::create::<i32>(&group, "indices", DATA_CHUNK, opts.compression)?;
        let (data, indices) = (Box::new(data), Box::new(indices));
        let wide = opts.nnz_hint.is_some_and(|n| n >= I32_LIMIT);
        let mut indptr = if wide {
            IndptrSink::I64(Appender::create::<i64>(&group, "indptr", INDPTR_CHUNK)?)
        } else {
            IndptrSink::I32(Appender::create::<i32>(&group, "indptr", INDPTR_CHUNK)?)
        };
        match &mut indptr {
            IndptrSink::I32(a) => a.append(&[0i32])?,
            IndptrSink::I64(a) => a.append(&[0i64])?,
        }
        Ok(CsrWriter {
            group,
            data,
            indices,
            indptr,
            n_cols,
            n_rows: 0,
            nnz: 0,
        })
    }

    /// Appends the rows of `chunk` (a writer made by [`Self::create`]).
    pub fn append(&mut self, chunk: &CsrChunk) -> Result<()> {
        if chunk.n_cols != self.n_cols {
            return Err(Error::InvalidArgument(format!(
                "CSR writer: chunk has {} columns, matrix has {}",
                chunk.n_cols, self.n_cols
            )));
        }
        self.append_structure(&chunk.indptr, &chunk.indices)?;
        self.data.append(&chunk.data)
    }

    /// Appends rows given as their local indptr (starting at 0), column indices and values; the
    /// values must have the dtype the writer was created with.
    pub fn append_typed(&mut self, indptr: &[usize], indices: &[u32], data: &NumVec) -> Result<()> {
        if indices.len() != data.len() || indptr.last().copied().unwrap_or(0) != data.len() {
            return Err(Error::InvalidArgument(format!(
                "CSR writer: {} indices and {} values for an indptr ending at {:?}",
                indices.len(),
                data.len(),
                indptr.last()
            )));
        }
        if let Some(&c) = indices.iter().find(|&&c| c as usize >= self.n_cols) {
            return Err(Error::InvalidArgument(format!(
                "CSR writer: column {c} in a matrix of {} columns",
                self.n_cols
            )));
        }
        self.append_structure(indptr, indices)?;
        crate::with_numvec!(data, v => self.data.append(v))
    }

    /// Appends indptr and indices; the caller appends the values.
    fn append_structure(&mut self, indptr: &[usize], indices: &[u32]) -> Result<()> {
        let n_rows = indptr.len().saturating_sub(1);
        let new_nnz = self.nnz + indices.len() as u64;
        if new_nnz >= I32_LIMIT {
            self.widen_indptr()?;
        }
        let base = self.nnz;
        let ends = indptr.get(1..).unwrap_or(&[]);
        match &mut self.indptr {
            IndptrSink::I32(a) => {
                let v: Vec<i32> = ends.iter().map(|&p| (base + p as u64) as i32).collect();
                a.append(&v)?
            }
            IndptrSink::I64(a) => {
                let v: Vec<i64> = ends.iter().map(|&p| (base + p as u64) as i64).collect();
                a.append(&v)?
            }
        }
        let idx: Vec<i32> = indices.iter().map(|&c| c as i32).collect();
        self.indices.append(&idx)?;
        self.n_rows += n_rows;
        self.nnz = new_nnz;
        Ok(())
    }

    /// Rewrites an int32 indptr as int64 (once, in bounded pieces) when nnz outgrows int32.
    fn widen_indptr(&mut self) -> Result<()> {
        let IndptrSink::I32(old) = &self.indptr else {
            return Ok(());
        };
        let mut wide = Appender::create::<i64>(&self.group, "indptr_wide", INDPTR_CHUNK)?;
        let len = old.len();
        let mut start = 0;
        while start < len {
            let end = (start + (1 << 22)).min(len);
            let mut part: Vec<i64> = Vec::new();
            h5::read_into(
                old.dataset(),
                start..end,
                &mut part,
                &self.group,
                old.name(),
            )?;
            wide.append(&part)?;
            start = end;
        }
        self.group.unlink("indptr").at(&self.group, "indptr")?;
        self.group
            .relink("indptr_wide", "indptr")
            .at(&self.group, "indptr")?;
        self.indptr = IndptrSink::I64(wide);
        Ok(())
    }

    /// Stores the last chunks, writes the `shape` attribute and returns (rows, nnz).
    pub fn finish(self) -> Result<(usize, u64)> {
        self.data.finish()?;
        self.indices.finish()?;
        h5::set_attr_i64s(
            &self.group,
            "shape",
            &[self.n_rows as i64, self.n_cols as i64],
        )?;
        Ok((self.n_rows, self.nnz))
    }

    /// Rows written so far.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }
}

/// Writes a whole in-memory CSR chunk as an uncompressed `csr_matrix` element (small matrices,
/// obsp).
pub fn write_csr(parent: &Group, name: &str, chunk: &CsrChunk) -> Result<()> {
    let mut w = CsrWriter::create(
        parent,
        name,
        chunk.n_cols,
        CsrWriteOptions {
            compression: Codec::None,
            nnz_hint: Some(chunk.nnz() as u64),
        },
    )?;
    w.append(chunk)?;
    w.finish().map(|_| ())
}
