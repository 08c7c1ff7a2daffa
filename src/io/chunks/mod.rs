//! Parallel reads of 1-D datasets straight from the file, outside HDF5's lock.
//!
//! At open, under the lock, [`ChunkReader::open`] takes the dataset's storage map once (one
//! extent for contiguous storage; address, stored size and filter mask of every allocated
//! chunk otherwise), its filter pipeline and its element type. A read of an element range then
//! fetches the overlapping bytes with positioned reads of a plain file handle and decodes and
//! converts them on the rayon pool, straight into the output. Chunks never written read as zeros
//! (the reader is only used where the fill value is zero). The chunk a read ends inside is kept
//! decoded, so a chunk straddling two consecutive reads is decoded once.
//!
//! HDF5's own path stays the reference: datasets this reader cannot map (see
//! [`ChunkReader::open`]) are read through HDF5, and [`ReadPath::Hdf5`] reads everything so.

mod convert;
mod decode;
mod index;

use std::cell::RefCell;
use std::fs::File;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use hdf5::Dataset;
use rayon::prelude::*;

pub(crate) use convert::Element;
use convert::{bytes_mut, convert, zero};
use decode::Pipeline;
use index::{ChunkLoc, ChunkMap, Index, Layout};

use super::filters;
use crate::error::{Error, Result};

/// How matrix values are read from `.h5ad` files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadPath {
    /// Positioned reads and decoding on all cores, outside HDF5 (HDF5 for what it cannot map).
    #[default]
    Parallel,
    /// Every byte through HDF5, on the calling thread (the reference).
    Hdf5,
}

static DEFAULT_PATH: AtomicU8 = AtomicU8::new(0);

/// Sets the read path readers opened from now on use when none is given (the command line sets
/// it once, from `--read-path`).
pub fn set_default_read_path(path: ReadPath) {
    DEFAULT_PATH.store(path as u8, Ordering::Relaxed);
}

/// The read path readers use when none is given ([`ReadPath::Parallel`] unless set).
pub fn default_read_path() -> ReadPath {
    match DEFAULT_PATH.load(Ordering::Relaxed) {
        0 => ReadPath::Parallel,
        _ => ReadPath::Hdf5,
    }
}

/// Elements per positioned read of contiguous storage (one task on the pool).
const PIECE: usize = 1 << 20;

/// Largest stored chunk accepted (HDF5 chunks are below 4 GiB).
const MAX_STORED: u64 = u32::MAX as u64;

/// A decoded chunk kept for the next read: (chunk number, its bytes).
type Kept = Option<(usize, Arc<Vec<u8>>)>;

/// Reads element ranges of one 1-D dataset without HDF5.
pub(crate) struct ChunkReader {
    file: File,
    path: PathBuf,
    element: String,
    index: Index,
    pipeline: Pipeline,
    kept: Mutex<Kept>,
    /// Stored chunks decoded so far.
    decoded: AtomicU64,
}

impl ChunkReader {
    /// Maps dataset `ds` for parallel reads; `Ok(None)` when it must be read through HDF5
    /// (storage other than contiguous or chunked in the file itself, a non-zero fill value,
    /// element types other than plain integers and IEEE floats, filters other than deflate,
    /// shuffle, fletcher32, lzf, zstd, blosc and bitshuffle, or a file opened for writing).
    pub(crate) fn open(ds: &Dataset) -> Result<Option<Self>> {
        let Some(index) = index::take(ds) else {
            return Ok(None);
        };
        let path = PathBuf::from(ds.filename());
        let element = ds.name();
        let Some(pipeline) = Pipeline::new(&filters::pipeline(ds)?) else {
            return Ok(None);
        };
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Some(ChunkReader {
            file,
            path,
            element,
            index,
            pipeline,
            kept: Mutex::new(None),
            decoded: AtomicU64::new(0),
        }))
    }

    /// Stored chunks this reader has decoded (run through a filter pipeline) since it was
    /// opened; a chunk decoded twice counts twice. Unfiltered bytes count none.
    pub(crate) fn chunks_decoded(&self) -> u64 {
        self.decoded.load(Ordering::Relaxed)
    }

    /// Elements `range` converted to `T` as HDF5 converts them.
    pub(crate) fn read<T: Element>(&self, range: Range<usize>) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.read_into(range, &mut out)?;
        Ok(out)
    }

    /// [`Self::read`] into `out`, replacing its contents and reusing its allocation: refilling
    /// the buffers of a consumed chunk touches no fresh pages. On error `out` is left empty.
    pub(crate) fn read_into<T: Element>(
        &self,
        range: Range<usize>,
        out: &mut Vec<T>,
    ) -> Result<()> {
        out.clear();
        if range.start > range.end || range.end > self.index.len {
            return Err(Error::format(
                &self.path,
                &self.element,
                format!("element range {range:?} outside 0..{}", self.index.len),
            ));
        }
        out.reserve(range.len());
        let dst = &mut out.spare_capacity_mut()[..range.len()];
        match &self.index.layout {
            Layout::Contiguous(None) => zero(dst),
            Layout::Contiguous(Some(addr)) => {
                let es = self.index.stored.size as u64;
                dst.par_chunks_mut(PIECE)
                    .enumerate()
                    .try_for_each(|(k, part)| {
                        let first = (range.start + k * PIECE) as u64;
                        self.read_stored(addr + first * es, part).map_err(|why| {
                            let end = first + part.len() as u64;
                            self.err(format!("elements {first}..{end}: {why}"))
                        })
                    })?;
            }
            Layout::Chunked { chunk_len, chunks } => {
                self.read_chunked(range.clone(), *chunk_len, chunks, dst)?
            }
        }
        // SAFETY: every branch above wrote all `range.len()` elements or returned an error.
        unsafe { out.set_len(range.len()) };
        Ok(())
    }

    fn read_chunked<T: Element>(
        &self,
        range: Range<usize>,
        chunk_len: usize,
        chunks: &ChunkMap,
        out: &mut [MaybeUninit<T>],
    ) -> Result<()> {
        if range.is_empty() {
            return Ok(());
        }
        let (first, last) = (range.start / chunk_len, (range.end - 1) / chunk_len);
        let mut parts = Vec::with_capacity(last - first + 1);
        let mut rest = out;
        for ci in first..=last {
            let lo = range.start.max(ci * chunk_len);
            let hi = range.end.min((ci + 1) * chunk_len);
            let (part, tail) = rest.split_at_mut(hi - lo);
            parts.push((ci, lo - ci * chunk_len, part));
            rest = tail;
        }
        // The last chunk is kept when the read ends inside it.
        let keep_last = range.end < ((last + 1) * chunk_len).min(self.index.len);
        let kept = self.kept.lock().map(|k| k.clone()).unwrap_or(None);
        let es = self.index.stored.size;
        let new_kept = parts
            .into_par_iter()
            .map(|(ci, skip, part)| -> Result<Kept> {
                let Some(loc) = chunks.get(ci) else {
                    zero(part); // never written
                    return Ok(None);
                };
                let at = |why: String| {
                    let (lo, hi) = (ci * chunk_len, ((ci + 1) * chunk_len).min(self.index.len));
                    self.err(format!(
                        "chunk {ci} (elements {lo}..{hi}, {} bytes at offset {}): {why}",
                        loc.size, loc.addr
                    ))
                };
                let expected = chunk_len * es;
                if self.pipeline.is_identity(loc.mask) {
                    if loc.size != expected as u64 {
                        return Err(at(format!(
                            "unfiltered chunk stored as {} bytes instead of {expected}",
                            loc.size
                        )));
                    }
                    return self
                        .read_stored(loc.addr + (skip * es) as u64, part)
                        .map(|()| None)
                        .map_err(at);
                }
                let whole = skip == 0 && part.len() == chunk_len;
                if whole
                    && T::native(self.index.stored)
                    && self.pipeline.single_compressor(loc.mask)
                {
                    self.decoded.fetch_add(1, Ordering::Relaxed);
                    self.with_stored(loc, |stored| {
                        self.pipeline.decode_into(stored, loc.mask, bytes_mut(part))
                    })
                    .map_err(at)?;
                    return Ok(None);
                }
                let bytes = match &kept {
                    Some((k, b)) if *k == ci => Arc::clone(b),
                    _ => Arc::new(self.decode_chunk(loc, expected).map_err(at)?),
                };
                convert(
                    &bytes[skip * es..(skip + part.len()) * es],
                    self.index.stored,
                    part,
                );
                Ok((keep_last && ci == last).then_some((ci, bytes)))
            })
            .try_reduce(|| None, |a, b| Ok(a.or(b)))?;
        if let Ok(mut k) = self.kept.lock() {
            *k = new_kept;
        }
        Ok(())
    }

    /// Reads `out.len()` stored elements starting at byte `offset` into `out`, writing every
    /// element.
    fn read_stored<T: Element>(
        &self,
        offset: u64,
        out: &mut [MaybeUninit<T>],
    ) -> Result<(), String> {
        if T::native(self.index.stored) {
            return self.pread(offset, bytes_mut(out));
        }
        let mut buf = Vec::with_capacity(out.len() * self.index.stored.size);
        self.pread(offset, buf.spare_capacity_mut())?;
        // SAFETY: `pread` filled the whole spare capacity or failed.
        unsafe { buf.set_len(buf.capacity()) };
        convert(&buf, self.index.stored, out);
        Ok(())
    }

    /// The stored bytes of one chunk.
    fn read_chunk(&self, loc: ChunkLoc) -> Result<Vec<u8>, String> {
        if loc.size > MAX_STORED {
            return Err(format!("stored size {} is not a chunk's", loc.size));
        }
        let mut stored = Vec::with_capacity(loc.size as usize);
        self.pread(
            loc.addr,
            &mut stored.spare_capacity_mut()[..loc.size as usize],
        )?;
        // SAFETY: `pread` filled these `loc.size` bytes or failed.
        unsafe { stored.set_len(loc.size as usize) };
        Ok(stored)
    }

    /// Calls `f` with the stored bytes of one chunk, read into this thread's scratch buffer
    /// (which keeps the capacity of the largest stored chunk this thread has read).
    fn with_stored<R>(
        &self,
        loc: ChunkLoc,
        f: impl FnOnce(&[u8]) -> Result<R, String>,
    ) -> Result<R, String> {
        thread_local! {
            static STORED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        if loc.size > MAX_STORED {
            return Err(format!("stored size {} is not a chunk's", loc.size));
        }
        let size = loc.size as usize;
        STORED.with(|cell| {
            // `f` decodes without re-entering the pool, so the buffer is never borrowed twice.
            let mut stored = cell.borrow_mut();
            stored.clear();
            stored.reserve(size);
            self.pread(loc.addr, &mut stored.spare_capacity_mut()[..size])?;
            // SAFETY: `pread` filled these `size` bytes or failed.
            unsafe { stored.set_len(size) };
            f(&stored)
        })
    }

    /// Reads and decodes one stored chunk into its `expected` bytes.
    fn decode_chunk(&self, loc: ChunkLoc, expected: usize) -> Result<Vec<u8>, String> {
        self.decoded.fetch_add(1, Ordering::Relaxed);
        let stored = self.read_chunk(loc)?;
        self.pipeline.decode(stored, loc.mask, expected)
    }

    /// Fills `buf` from byte `offset` of the file (positioned reads, retried until full).
    fn pread(&self, offset: u64, buf: &mut [MaybeUninit<u8>]) -> Result<(), String> {
        let end = offset.saturating_add(buf.len() as u64);
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let Ok(at) = libc::off_t::try_from(at) else {
                return Err(format!(
                    "bytes {offset}..{end}: offset beyond what the OS reads"
                ));
            };
            // SAFETY: the destination is the unfilled rest of `buf`, valid for that many bytes;
            // the kernel writes at most that many.
            let n = unsafe {
                libc::pread(
                    self.file.as_raw_fd(),
                    buf[done..].as_mut_ptr().cast(),
                    buf.len() - done,
                    at,
                )
            };
            match n {
                0 => {
                    let size = self.file.metadata().map_or(0, |m| m.len());
                    return Err(format!(
                        "bytes {offset}..{end} lie past the end of the file ({size} bytes)"
                    ));
                }
                n if n < 0 => {
                    let e = std::io::Error::last_os_error();
                    if e.kind() != std::io::ErrorKind::Interrupted {
                        return Err(format!("reading bytes {offset}..{end}: {e}"));
                    }
                }
                n => done += n as usize,
            }
        }
        Ok(())
    }

    fn err(&self, message: String) -> Error {
        Error::format(&self.path, &self.element, message)
    }
}
