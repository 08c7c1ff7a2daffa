//! The streaming core: a reader thread prefetches row chunks of a matrix into a bounded queue and
//! the compute side consumes them. Memory is bounded by the chunk size times the chunks in
//! flight, never by the number of cells.
//!
//! A chunk holds at most [`StreamOptions::chunk_rows`] source rows and at most
//! [`StreamOptions::chunk_values`] stored values (but always at least one row): the reader cuts
//! each chunk at the row where the matrix's `indptr` reaches the values budget
//! ([`rows_within`]), so a dense or wide matrix gets fewer rows per chunk than a sparse one and a
//! chunk's buffers stay near the budget whatever the cells hold.
//!
//! Each row's `indptr` entry is read from the file once per pass: the offsets that cut a chunk
//! are the ones its rows are read with ([`RowChunks`]).
//!
//! A consumed chunk's buffers go back to the stream's [`ChunkPool`] when its [`PooledChunk`] is
//! dropped, and the reader refills them for a later chunk instead of allocating (and faulting in)
//! fresh memory for every chunk.

use std::ops::{Deref, DerefMut, Range};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::error::{Error, Result};
pub use crate::io::chunk::rows_within;
use crate::io::{CsrChunk, H5adReader, MatrixInfo, MatrixReader};

/// Default cap on source rows per chunk.
pub const DEFAULT_CHUNK_ROWS: usize = 10_000;

/// Default cap on stored values per chunk: 2M values are 16 MB of CSR in memory (f32 value and
/// u32 column index each).
pub const DEFAULT_CHUNK_VALUES: u64 = 2_000_000;

/// Which rows of the source to deliver.
#[derive(Clone, Debug, Default)]
pub enum RowSelection {
    /// Every row.
    #[default]
    All,
    /// Rows whose mask entry is true (mask length = source rows).
    Mask(Arc<Vec<bool>>),
}

impl RowSelection {
    /// Number of selected rows out of `n_rows`.
    pub fn count(&self, n_rows: usize) -> usize {
        match self {
            RowSelection::All => n_rows,
            RowSelection::Mask(m) => m.iter().filter(|&&k| k).count(),
        }
    }
}

/// How to stream.
///
/// A stream holds at most `prefetch + 2` chunks at once (queued, being read, being consumed),
/// plus the consumed chunks its [`ChunkPool`] keeps for reuse; each chunk holds at most
/// `chunk_rows` source rows and `chunk_values` stored values (at least one row).
#[derive(Clone, Copy, Debug)]
pub struct StreamOptions {
    /// Most source rows per chunk (`--chunk-rows`).
    pub chunk_rows: usize,
    /// Most stored values per chunk; a single row above it is delivered alone.
    pub chunk_values: u64,
    /// Chunks read ahead of the consumer.
    pub prefetch: usize,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            chunk_rows: DEFAULT_CHUNK_ROWS,
            chunk_values: DEFAULT_CHUNK_VALUES,
            prefetch: 2,
        }
    }
}

/// Buffers of consumed chunks waiting to be refilled by a stream's reader.
///
/// It holds at most `capacity` chunks (a dropped chunk that finds it full is freed), so a stream
/// holds at most `prefetch + 2 + capacity` chunks' buffers. Clones share one pool: streams opened
/// one after another over similar matrices (the passes of one command) can share buffers.
#[derive(Clone, Debug)]
pub struct ChunkPool {
    tx: Sender<CsrChunk>,
    rx: Receiver<CsrChunk>,
}

impl ChunkPool {
    /// A pool holding at most `capacity` chunks (at least one).
    pub fn new(capacity: usize) -> Self {
        let (tx, rx) = bounded(capacity.max(1));
        ChunkPool { tx, rx }
    }

    /// A pool sized for streams read with `opts`: as many chunks as can be in flight at once
    /// (`prefetch` queued, one being read, one being consumed).
    pub fn for_stream(opts: &StreamOptions) -> Self {
        Self::new(opts.prefetch.max(1) + 2)
    }

    /// A chunk to refill, if one is waiting.
    fn take(&self) -> Option<CsrChunk> {
        self.rx.try_recv().ok()
    }

    /// Keeps `chunk`'s buffers for reuse, or frees them when the pool is full.
    fn give(&self, chunk: CsrChunk) {
        let _ = self.tx.try_send(chunk);
    }
}

/// A chunk delivered by a [`ChunkStream`]: derefs to the [`CsrChunk`] and hands its buffers back
/// to the stream's pool when dropped.
#[derive(Debug)]
pub struct PooledChunk {
    chunk: CsrChunk,
    pool: Option<ChunkPool>,
}

impl PooledChunk {
    /// The chunk itself, taken out of the pool's reach (its buffers are not reused).
    pub fn into_inner(mut self) -> CsrChunk {
        self.pool = None;
        std::mem::replace(&mut self.chunk, CsrChunk::empty(0))
    }
}

impl Deref for PooledChunk {
    type Target = CsrChunk;

    fn deref(&self) -> &CsrChunk {
        &self.chunk
    }
}

impl DerefMut for PooledChunk {
    fn deref_mut(&mut self) -> &mut CsrChunk {
        &mut self.chunk
    }
}

impl Drop for PooledChunk {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.give(std::mem::replace(&mut self.chunk, CsrChunk::empty(0)));
        }
    }
}

/// An iterator of row chunks of `X` read on a background thread.
pub struct ChunkStream {
    rx: Option<Receiver<Result<PooledChunk>>>,
    handle: Option<JoinHandle<()>>,
    info: MatrixInfo,
    selected: usize,
}

impl ChunkStream {
    /// Starts streaming `X` of the `.h5ad` at `path`, delivering the rows in `selection`.
    ///
    /// The matrix is opened (and validated) here, so a bad file fails before any thread starts.
    /// Consumed chunks' buffers are reused through a pool of the stream's own.
    pub fn open(path: &Path, selection: RowSelection, opts: StreamOptions) -> Result<Self> {
        Self::open_pooled(path, selection, opts, ChunkPool::for_stream(&opts))
    }

    /// [`Self::open`] refilling the buffers of `pool` (shared with other streams).
    pub fn open_pooled(
        path: &Path,
        selection: RowSelection,
        opts: StreamOptions,
        pool: ChunkPool,
    ) -> Result<Self> {
        let info = H5adReader::open(path)?.x()?.info().clone();
        let n_rows = info.shape.0;
        check_stream(n_rows, &selection, &opts)?;
        let selected = selection.count(n_rows);
        let (tx, rx) = bounded(opts.prefetch.max(1));
        let path: PathBuf = path.to_path_buf();
        let handle = std::thread::Builder::new()
            .name("scoop-reader".into())
            .spawn(move || {
                let reader = match H5adReader::open(&path).and_then(|f| f.x()) {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let chunks = match RowChunks::new(&reader, selection, opts, pool) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                for item in chunks {
                    let failed = item.is_err();
                    if tx.send(item).is_err() || failed {
                        return;
                    }
                }
            })
            .map_err(|e| Error::io(Path::new("<reader thread>"), e))?;
        Ok(ChunkStream {
            rx: Some(rx),
            handle: Some(handle),
            info,
            selected,
        })
    }

    /// The matrix's metadata.
    pub fn info(&self) -> &MatrixInfo {
        &self.info
    }

    /// Rows that will be delivered in total.
    pub fn selected_rows(&self) -> usize {
        self.selected
    }
}

/// Fails unless `selection` (a mask of `n_rows` entries) and `opts` (positive budgets) can
/// stream a matrix of `n_rows` rows.
fn check_stream(n_rows: usize, selection: &RowSelection, opts: &StreamOptions) -> Result<()> {
    if let RowSelection::Mask(m) = selection {
        if m.len() != n_rows {
            return Err(Error::InvalidArgument(format!(
                "row mask has {} entries, X has {n_rows} rows",
                m.len()
            )));
        }
    }
    if opts.chunk_rows == 0 {
        return Err(Error::InvalidArgument(
            "--chunk-rows must be positive".into(),
        ));
    }
    if opts.chunk_values == 0 {
        return Err(Error::InvalidArgument(
            "--chunk-values must be positive".into(),
        ));
    }
    Ok(())
}

/// Row offsets read ahead of a pass, each entry of `indptr` read from the file once.
///
/// A chunk's cut needs the offsets of its candidate rows (up to `chunk_rows` of them), of which
/// the values budget may keep only a few; the rest are the next chunks' candidates. The window
/// keeps them: a refill reads only the entries after the last one held, at least
/// [`READ_AHEAD`] of them, so a pass reads `indptr` in consecutive, disjoint ranges. On the
/// parallel path that is what makes a compressed `indptr` chunk (which holds the offsets of
/// many stream chunks) decode once per pass: the chunk reader keeps the chunk a read ends
/// inside for the read that starts there, and no read goes back to an earlier one. Large reads
/// also keep the calls per pass few; the window holds at most `chunk_rows + READ_AHEAD + 1`
/// entries. A read that fails (a negative offset) fails the chunk that needed it, which may lie
/// before the bad entry.
struct OffsetWindow {
    /// Row whose start `offsets[0]` is.
    first: usize,
    offsets: Vec<u64>,
}

/// Least `indptr` entries a refill of an [`OffsetWindow`] reads.
const READ_AHEAD: usize = 1 << 16;

impl OffsetWindow {
    fn new() -> Self {
        OffsetWindow {
            first: 0,
            offsets: Vec::new(),
        }
    }

    /// The offsets of rows `rows` (`rows.len() + 1` entries, what
    /// [`MatrixReader::row_offsets`] returns), reading from the file only the entries the window
    /// does not hold. Entries before `rows.start` are let go.
    fn get(&mut self, reader: &MatrixReader, rows: Range<usize>) -> Result<&[u64]> {
        let held = self.first..self.first + self.offsets.len();
        if !held.contains(&rows.start) {
            self.first = rows.start;
            self.offsets.clear();
        }
        if self.first + self.offsets.len() <= rows.end {
            self.offsets.drain(..rows.start - self.first);
            self.first = rows.start;
            // Entries `from..to` of indptr: the row offsets of rows `from..to - 1`.
            let from = self.first + self.offsets.len();
            let to = (rows.end + 1)
                .max(from + READ_AHEAD)
                .min(reader.shape().0 + 1);
            self.offsets.extend(reader.row_offsets(from..to - 1)?);
        }
        let at = rows.start - self.first;
        Ok(&self.offsets[at..at + rows.len() + 1])
    }
}

/// The chunks a [`ChunkStream`] delivers, read on the calling thread: chunks of at most
/// `chunk_rows` rows and `chunk_values` stored values ([`rows_within`]), at least one row, each
/// holding the selected rows of its range (chunks with none are skipped).
///
/// Each row's offsets are read once ([`OffsetWindow`]): those that cut a chunk are the ones its
/// rows are read with ([`MatrixReader::read_rows_with_offsets_into`]), which checks them as a
/// read of `indptr` does. Iteration ends after the first error.
pub struct RowChunks<'a> {
    reader: &'a MatrixReader,
    selection: RowSelection,
    opts: StreamOptions,
    pool: ChunkPool,
    next: usize,
    window: OffsetWindow,
}

impl<'a> RowChunks<'a> {
    /// The chunks of `reader`'s rows in `selection`, cut by `opts` (its `prefetch` unused), their
    /// buffers taken from `pool` where it has some. Fails on a mask whose length is not the
    /// matrix's rows, or a budget of zero.
    pub fn new(
        reader: &'a MatrixReader,
        selection: RowSelection,
        opts: StreamOptions,
        pool: ChunkPool,
    ) -> Result<Self> {
        check_stream(reader.shape().0, &selection, &opts)?;
        Ok(RowChunks {
            reader,
            selection,
            opts,
            pool,
            next: 0,
            window: OffsetWindow::new(),
        })
    }

    /// The next chunk's rows, or `None` at the end, or the first error.
    fn next_chunk(&mut self) -> Result<Option<PooledChunk>> {
        let n_rows = self.reader.shape().0;
        while self.next < n_rows {
            let start = self.next;
            let last = (start + self.opts.chunk_rows).min(n_rows);
            let offsets = self.window.get(self.reader, start..last)?;
            let end = start + rows_within(offsets, self.opts.chunk_values);
            self.next = end;
            let offsets = &offsets[..=end - start];
            if let Some(chunk) = read_selected(
                self.reader,
                start..end,
                offsets,
                &self.selection,
                &self.pool,
            )? {
                return Ok(Some(chunk));
            }
        }
        Ok(None)
    }
}

impl Iterator for RowChunks<'_> {
    type Item = Result<PooledChunk>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.next_chunk().transpose();
        if matches!(item, Some(Err(_))) {
            self.next = self.reader.shape().0;
        }
        item
    }
}

/// Reads the selected rows of `rows`, whose offsets are `offsets`, into a chunk from `pool` (or
/// a new one); `None` when no row is selected.
fn read_selected(
    reader: &MatrixReader,
    rows: Range<usize>,
    offsets: &[u64],
    selection: &RowSelection,
    pool: &ChunkPool,
) -> Result<Option<PooledChunk>> {
    let keep = match selection {
        RowSelection::All => None,
        RowSelection::Mask(m) => Some(&m[rows.clone()]),
    };
    if keep.is_some_and(|k| !k.iter().any(|&k| k)) {
        return Ok(None);
    }
    let mut chunk = PooledChunk {
        chunk: pool
            .take()
            .unwrap_or_else(|| CsrChunk::empty(reader.shape().1)),
        pool: Some(pool.clone()),
    };
    reader.read_rows_with_offsets_into(rows, offsets, &mut chunk)?;
    if let Some(keep) = keep {
        chunk.retain_rows(keep);
    }
    Ok(Some(chunk))
}

impl Iterator for ChunkStream {
    type Item = Result<PooledChunk>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rx.as_ref()?.recv().ok()
    }
}

impl Drop for ChunkStream {
    fn drop(&mut self) {
        // Closing the receiver makes the reader's next send fail, so it stops promptly.
        self.rx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Totals of one pass over `X`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PassTotals {
    /// Rows delivered.
    pub rows: u64,
    /// Stored values delivered.
    pub nnz: u64,
    /// Sum of the stored values (f64 accumulation per chunk, in row order).
    pub sum: f64,
}

/// The sum of `v` in f64, over eight interleaved lanes (so it vectorises).
fn sum_f64(v: &[f32]) -> f64 {
    let mut lanes = [0f64; 8];
    let mut it = v.chunks_exact(8);
    for c in it.by_ref() {
        for (l, &x) in lanes.iter_mut().zip(c) {
            *l += f64::from(x);
        }
    }
    let tail: f64 = it.remainder().iter().map(|&x| f64::from(x)).sum();
    lanes.iter().sum::<f64>() + tail
}

/// Streams the selected rows of `X` of the `.h5ad` at `path` once and totals them: the cheapest
/// full read of `X`, which times the read path alone.
pub fn scan_x(path: &Path, selection: RowSelection, opts: StreamOptions) -> Result<PassTotals> {
    use rayon::prelude::*;
    let mut t = PassTotals::default();
    for chunk in ChunkStream::open(path, selection, opts)? {
        let chunk = chunk?;
        t.rows += chunk.n_rows() as u64;
        t.nnz += chunk.data.len() as u64;
        t.sum += chunk
            .data
            .par_chunks(1 << 16)
            .map(sum_f64)
            .collect::<Vec<_>>()
            .iter()
            .sum::<f64>();
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::chunk_writer::ChunkWriter;
    use crate::io::{Codec, ReadPath, RowIds};

    /// A `csr_matrix` `X` of `n` rows holding `i % 7` values each, its indptr int64 in gzip
    /// chunks of 1,000 entries; returns the file's path and the matrix's offsets.
    fn write_matrix(dir: &Path, n: usize) -> (PathBuf, Vec<u64>) {
        crate::io::filters::register();
        let path = dir.join("x.h5ad");
        let file = hdf5::File::create(&path).unwrap();
        let x = file.create_group("X").unwrap();
        crate::io::h5::set_encoding(&x, "csr_matrix", "0.1.0").unwrap();
        let mut offsets = vec![0u64];
        for i in 0..n {
            offsets.push(offsets[i] + (i % 7) as u64);
        }
        let nnz = offsets[n] as usize;
        let indices: Vec<i32> = (0..n).flat_map(|i| 0..(i % 7) as i32).collect();
        let data: Vec<f32> = (0..nnz).map(|k| (k % 13) as f32 + 1.0).collect();
        let ptr: Vec<i64> = offsets.iter().map(|&o| o as i64).collect();
        let mut w = ChunkWriter::create::<i32>(&x, "indices", 1 << 14, Codec::None).unwrap();
        w.append(&indices).unwrap();
        w.finish().unwrap();
        let mut w = ChunkWriter::create::<f32>(&x, "data", 1 << 14, Codec::None).unwrap();
        w.append(&data).unwrap();
        w.finish().unwrap();
        let mut w = ChunkWriter::create::<i64>(&x, "indptr", 1_000, Codec::Gzip(4)).unwrap();
        w.append(&ptr).unwrap();
        w.finish().unwrap();
        crate::io::h5::set_attr_i64s(&x, "shape", &[n as i64, 7]).unwrap();
        (path, offsets)
    }

    #[test]
    fn a_pass_reads_each_offset_once_across_window_refills() {
        let dir = tempfile::tempdir().unwrap();
        // More than three windows of offsets, in 201 gzip chunks.
        let n = 200_000;
        let (path, offsets) = write_matrix(dir.path(), n);
        let file = crate::io::h5::open_read(&path).unwrap();
        let x = MatrixReader::open_with(&file, "X", ReadPath::Parallel).unwrap();
        let slow = MatrixReader::open_with(&file, "X", ReadPath::Hdf5).unwrap();
        let mask: Vec<bool> = (0..n).map(|i| i % 5 != 0 && i % 9_000 > 2_000).collect();
        // Cut by the values budget (~667 rows), by the row cap, and by rows above READ_AHEAD.
        for (chunk_rows, chunk_values) in [(1_000, 2_000), (300, u64::MAX), (100_000, 1 << 40)] {
            let opts = StreamOptions {
                chunk_rows,
                chunk_values,
                prefetch: 1,
            };
            for selection in [
                RowSelection::All,
                RowSelection::Mask(Arc::new(mask.clone())),
            ] {
                let before = x.indptr_reads().unwrap();
                let (mut rows, mut values) = (0, 0);
                let chunks = RowChunks::new(&x, selection.clone(), opts, ChunkPool::new(2));
                for chunk in chunks.unwrap() {
                    let chunk = chunk.unwrap();
                    // The source rows the chunk spans (all of them, or its first to its last
                    // selected row).
                    let r = match &chunk.rows {
                        RowIds::Range(r) => r.start as usize..r.end as usize,
                        RowIds::List(ids) => ids[0] as usize..*ids.last().unwrap() as usize + 1,
                    };
                    assert!(r.len() <= chunk_rows);
                    assert!(r.len() == 1 || offsets[r.end] - offsets[r.start] <= chunk_values);
                    if matches!(chunk.rows, RowIds::Range(_)) {
                        assert!(*chunk == slow.read_rows(r.clone()).unwrap(), "rows {r:?}");
                    }
                    rows += chunk.n_rows();
                    values += chunk.data.len();
                }
                let after = x.indptr_reads().unwrap();
                assert!(after.parallel);
                let want_rows = selection.count(n);
                let want_values: u64 = (0..n)
                    .filter(|&i| matches!(&selection, RowSelection::All) || mask[i])
                    .map(|i| offsets[i + 1] - offsets[i])
                    .sum();
                assert_eq!((rows, values as u64), (want_rows, want_values));
                assert_eq!(after.entries - before.entries, n as u64 + 1);
                assert!(after.chunks_decoded - before.chunks_decoded <= n as u64 / 1_000 + 1);
            }
        }
    }

    /// `indptr` of `rows` rows of `per_row` stored values each.
    fn uniform(rows: usize, per_row: u64) -> Vec<u64> {
        (0..=rows as u64).map(|i| i * per_row).collect()
    }

    #[test]
    fn chunk_rows_follow_the_values_budget() {
        // A Tahoe plate's cells hold ~1,445 stored values: 1,384 rows fit 2M values.
        assert_eq!(rows_within(&uniform(10_000, 1_445), 2_000_000), 1_384);
        assert_eq!(1_384 * 1_445, 1_999_880);
        // The merged matrix (~101 values per cell on the selected genes): the row cap binds.
        assert_eq!(rows_within(&uniform(10_000, 101), 2_000_000), 10_000);
        // Dense 62,710 columns: 31 rows.
        assert_eq!(rows_within(&uniform(10_000, 62_710), 2_000_000), 31);
        // Exactly at the budget.
        assert_eq!(rows_within(&uniform(100, 10), 50), 5);
    }

    #[test]
    fn chunk_rows_cut_where_uneven_rows_reach_the_budget() {
        // Rows of 3, 0, 4, 10 and 1 values from offset 7 on (a chunk mid-matrix).
        let offsets = [7, 10, 10, 14, 24, 25];
        assert_eq!(rows_within(&offsets, 7), 3);
        assert_eq!(rows_within(&offsets, 6), 2);
        assert_eq!(rows_within(&offsets, 17), 4);
        assert_eq!(rows_within(&offsets, 18), 5);
        // A row alone above the budget is a chunk of one row.
        assert_eq!(rows_within(&offsets, 2), 1);
        assert_eq!(rows_within(&offsets[3..], 2), 1);
        // Empty rows take no budget.
        assert_eq!(rows_within(&[5, 5, 5, 5], 1), 3);
        assert_eq!(rows_within(&[5], 1), 0);
        assert_eq!(rows_within(&[], 1), 0);
    }
}
