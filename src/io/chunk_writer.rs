//! Growing 1-D datasets written by direct chunk writes: appended values are buffered until several
//! whole chunks are ready, the chunks are encoded on the rayon pool, and HDF5 only stores the
//! finished bytes (`H5Dwrite_chunk`), in order. Compression therefore costs CPU on every core
//! instead of wall time on the one thread that holds HDF5's lock.
//!
//! The dataset declares the same filter pipeline HDF5 would write with ([`Codec::filters`]), so
//! any HDF5 reader decodes it. The last, partial chunk is padded with zeros to the full chunk size
//! (HDF5 stores edge chunks whole) and written by [`ChunkWriter::finish`]; the dataset's extent is
//! always the number of values appended.

use hdf5::{Dataset, Group, Location};
use rayon::prelude::*;

use super::filters::{encode_chunk, Codec, EncodedChunk};
use super::h5::{child_path, file_of, format_err, H5Context};
use crate::error::{Error, Result};

/// Element types whose values are plain bytes (no padding, every bit pattern written as is).
pub(crate) trait Plain: hdf5::H5Type + Copy + Send + Sync + private::Sealed {}

mod private {
    pub trait Sealed {}
}

macro_rules! plain {
    ($($t:ty),*) => {$(
        impl private::Sealed for $t {}
        impl Plain for $t {}
    )*};
}
plain!(bool, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

/// The bytes of `values` in memory order.
fn as_bytes<T: Plain>(values: &[T]) -> &[u8] {
    // SAFETY: `Plain` types are primitive numbers (or bool) without padding; any initialized value
    // is a valid sequence of `size_of_val(values)` bytes, borrowed for the slice's lifetime.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), size_of_val(values)) }
}

/// A resizable chunked 1-D dataset filled by appending values, its chunks encoded in parallel.
pub(crate) struct ChunkWriter {
    ds: Dataset,
    codec: Codec,
    elem_size: usize,
    chunk_elems: usize,
    /// Values appended but not yet stored, from the start of chunk `chunks_written`.
    pending: Vec<u8>,
    /// Values appended in total.
    len: usize,
    chunks_written: usize,
    /// Whole chunks buffered before a parallel encode.
    batch_chunks: usize,
}

impl ChunkWriter {
    /// Creates an empty dataset of `T` named `name` in `group`, chunked by `chunk` values and
    /// declaring `codec`'s filters.
    pub(crate) fn create<T: Plain>(
        group: &Group,
        name: &str,
        chunk: usize,
        codec: Codec,
    ) -> Result<Self> {
        let chunk = chunk.max(1);
        let ds = group
            .new_dataset::<T>()
            .chunk(chunk)
            .shape(0..)
            .set_filters(&codec.filters())
            .create(name)
            .at(group, name)?;
        let elem_size = size_of::<T>();
        if chunk * elem_size > u32::MAX as usize {
            return Err(format_err(group, name, "chunk of 4 GiB or more"));
        }
        Ok(ChunkWriter {
            ds,
            codec,
            elem_size,
            chunk_elems: chunk,
            pending: Vec::new(),
            len: 0,
            chunks_written: 0,
            batch_chunks: (2 * rayon::current_num_threads()).max(4),
        })
    }

    /// Appends values at the end; `T` must be the type the dataset was created with.
    pub(crate) fn append<T: Plain>(&mut self, values: &[T]) -> Result<()> {
        if size_of::<T>() != self.elem_size {
            return Err(format_err(
                &self.ds,
                "",
                format!(
                    "appending {}-byte values to a dataset of {}-byte values",
                    size_of::<T>(),
                    self.elem_size
                ),
            ));
        }
        self.pending.extend_from_slice(as_bytes(values));
        self.len += values.len();
        if self.pending.len() >= self.batch_chunks * self.chunk_bytes() {
            self.store_whole_chunks()?;
        }
        Ok(())
    }

    /// Stores everything appended, the last partial chunk padded, and sets the final extent.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.store_whole_chunks()?;
        if !self.pending.is_empty() {
            let mut last = std::mem::take(&mut self.pending);
            last.resize(self.chunk_bytes(), 0);
            let encoded = self.encode(&last)?;
            self.set_extent()?;
            self.write_chunk(self.chunks_written, &encoded)?;
            self.chunks_written += 1;
        }
        self.set_extent()
    }

    fn chunk_bytes(&self) -> usize {
        self.chunk_elems * self.elem_size
    }

    /// Encodes the whole chunks in `pending` on the pool and stores them in order.
    fn store_whole_chunks(&mut self) -> Result<()> {
        let cb = self.chunk_bytes();
        let whole = self.pending.len() / cb * cb;
        if whole == 0 {
            return Ok(());
        }
        self.set_extent()?;
        if self.codec == Codec::None {
            for (i, raw) in self.pending[..whole].chunks_exact(cb).enumerate() {
                self.write_raw(self.chunks_written + i, raw, 0)?;
            }
        } else {
            let encoded: Vec<EncodedChunk> = self.pending[..whole]
                .par_chunks_exact(cb)
                .map(|raw| self.encode(raw))
                .collect::<Result<_>>()?;
            for (i, chunk) in encoded.iter().enumerate() {
                self.write_chunk(self.chunks_written + i, chunk)?;
            }
        }
        self.chunks_written += whole / cb;
        self.pending.drain(..whole);
        Ok(())
    }

    fn encode(&self, raw: &[u8]) -> Result<EncodedChunk> {
        encode_chunk(self.codec, raw)
            .map_err(|why| format_err(&self.ds, "", format!("encoding a chunk: {why}")))
    }

    /// Grows the dataset to every value appended (chunk offsets must lie inside the extent).
    fn set_extent(&self) -> Result<()> {
        let loc: &Location = &self.ds;
        self.ds.resize(self.len).at(loc, "")
    }

    fn write_chunk(&self, index: usize, chunk: &EncodedChunk) -> Result<()> {
        self.write_raw(index, &chunk.bytes, chunk.filter_mask)
    }

    /// Stores `bytes` as chunk `index` with `filter_mask`, bypassing HDF5's filters.
    fn write_raw(&self, index: usize, bytes: &[u8], filter_mask: u32) -> Result<()> {
        let offset = [(index * self.chunk_elems) as hdf5_sys::h5::hsize_t];
        // SAFETY: the dataset id is open for the borrow of `self.ds`; `offset` has one entry per
        // dimension (1-D) and lies inside the extent; `bytes` is readable for its length. The
        // call runs under hdf5-metno's lock like its own calls.
        let failed = hdf5::sync::sync(|| {
            // SAFETY: see above.
            let status = unsafe {
                hdf5_sys::h5d::H5Dwrite_chunk(
                    self.ds.id(),
                    hdf5_sys::h5p::H5P_DEFAULT,
                    filter_mask,
                    offset.as_ptr(),
                    bytes.len(),
                    bytes.as_ptr().cast(),
                )
            };
            // The error stack is read under the same lock, before another call replaces it.
            (status < 0).then(hdf5::Error::query)
        });
        if let Some(err) = failed {
            // An OS failure (a full disk, a file size limit) is reported with the OS's reason.
            if let Ok(err) = err {
                if let e @ Error::Io { .. } =
                    Error::hdf5(&file_of(&self.ds), child_path(&self.ds, ""), err)
                {
                    return Err(e);
                }
            }
            return Err(format_err(
                &self.ds,
                "",
                format!("could not write chunk {index}"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(codec: Codec, n: usize, chunk: usize, pieces: usize) {
        crate::io::filters::register();
        let dir = tempfile::tempdir().unwrap();
        let file = hdf5::File::create(dir.path().join("t.h5")).unwrap();
        let values: Vec<f32> = (0..n).map(|i| ((i * 37) % 1000) as f32 * 0.5).collect();
        let mut w = ChunkWriter::create::<f32>(&file, "v", chunk, codec).unwrap();
        for part in values.chunks(n.div_ceil(pieces).max(1)) {
            w.append(part).unwrap();
        }
        assert_eq!(w.len, n);
        w.finish().unwrap();
        let ds = file.dataset("v").unwrap();
        assert_eq!(ds.shape(), vec![n]);
        assert_eq!(ds.read_raw::<f32>().unwrap(), values, "{codec} n={n}");
    }

    #[test]
    fn hdf5_reads_back_what_was_written() {
        for codec in [
            Codec::None,
            Codec::Gzip(1),
            Codec::Gzip(9),
            Codec::Lzf,
            Codec::Zstd(3),
        ] {
            for (n, chunk, pieces) in [
                (0, 64, 1),
                (1, 64, 1),
                (64, 64, 1),
                (1000, 64, 7),
                (100_000, 1024, 13),
            ] {
                round_trip(codec, n, chunk, pieces);
            }
        }
    }

    #[test]
    fn chunks_lzf_cannot_shrink_are_stored_raw_and_read_back() {
        use rand::{Rng, SeedableRng};
        crate::io::filters::register();
        let dir = tempfile::tempdir().unwrap();
        let file = hdf5::File::create(dir.path().join("t.h5")).unwrap();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        let values: Vec<u64> = (0..5_000).map(|_| rng.random()).collect();
        let mut w = ChunkWriter::create::<u64>(&file, "v", 512, Codec::Lzf).unwrap();
        w.append(&values).unwrap();
        w.finish().unwrap();
        let ds = file.dataset("v").unwrap();
        assert_eq!(ds.read_raw::<u64>().unwrap(), values);
        // The nine whole chunks were stored unfiltered (the last, zero-padded one shrinks).
        assert!(ds.storage_size() >= 9 * 512 * 8);
    }

    #[test]
    fn rejects_values_of_another_width() {
        let dir = tempfile::tempdir().unwrap();
        let file = hdf5::File::create(dir.path().join("t.h5")).unwrap();
        let mut w = ChunkWriter::create::<f32>(&file, "v", 16, Codec::Gzip(4)).unwrap();
        let e = w.append(&[1.0f64]).unwrap_err().to_string();
        assert!(e.contains("8-byte values"), "{e}");
    }
}
