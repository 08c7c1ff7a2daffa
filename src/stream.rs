//! The streaming core: a reader thread prefetches row chunks of a matrix into a bounded queue and
//! the compute side consumes them. Memory is bounded by `chunk_rows x queue depth`, never by the
//! number of cells.
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
use crate::io::{CsrChunk, H5adReader, MatrixInfo};

/// Default rows per chunk.
pub const DEFAULT_CHUNK_ROWS: usize = 10_000;

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
#[derive(Clone, Copy, Debug)]
pub struct StreamOptions {
    /// Source rows per chunk.
    pub chunk_rows: usize,
    /// Chunks read ahead of the consumer.
    pub prefetch: usize,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            chunk_rows: DEFAULT_CHUNK_ROWS,
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
        if let RowSelection::Mask(m) = &selection {
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
                let mut start = 0;
                while start < n_rows {
                    let end = (start + opts.chunk_rows).min(n_rows);
                    let item = read_selected(&reader, start..end, &selection, &pool);
                    start = end;
                    let item = match item {
                        Ok(Some(c)) => Ok(c),
                        Ok(None) => continue,
                        Err(e) => Err(e),
                    };
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

/// Reads the selected rows of `rows` into a chunk from `pool` (or a new one); `None` when no row
/// is selected.
fn read_selected(
    reader: &crate::io::MatrixReader,
    rows: Range<usize>,
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
    reader.read_rows_into(rows, &mut chunk)?;
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
