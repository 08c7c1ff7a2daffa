//! Chunk encoders for direct chunk writes: the bytes HDF5's own filter pipeline would store for a
//! chunk written with a [`Codec`], produced outside HDF5 so that chunks encode in parallel.
//!
//! Each encoder writes the stream format of the filter the dataset declares, so any HDF5 reader
//! (h5py, anndata, hdf5plugin for zstd) decodes the chunks: deflate (id 1) stores a zlib stream,
//! lzf (32000) a raw liblzf block, zstd (32015) one Zstandard frame with its content size.

use std::ffi::{c_uint, c_void};

use super::deflate::deflate;
use super::Codec;

/// One encoded chunk: the bytes to store and the filter mask to store them with (bit `i` set =
/// filter `i` of the pipeline skipped, as HDF5 records an optional filter that did not apply).
#[derive(Debug)]
pub(crate) struct EncodedChunk {
    /// The stored bytes.
    pub bytes: Vec<u8>,
    /// HDF5's filter mask for the chunk.
    pub filter_mask: u32,
}

/// Encodes the raw bytes of one whole chunk (edge chunks padded to the full chunk size) as the
/// dataset's pipeline for `codec` stores them. [`Codec::None`] returns the bytes unchanged.
pub(crate) fn encode_chunk(codec: Codec, raw: &[u8]) -> Result<EncodedChunk, String> {
    let bytes = match codec {
        Codec::None => raw.to_vec(),
        Codec::Gzip(level) => deflate(raw, level)?,
        Codec::Lzf => {
            return Ok(match lzf(raw)? {
                Some(bytes) => EncodedChunk {
                    bytes,
                    filter_mask: 0,
                },
                // As HDF5 does when the optional lzf filter cannot shrink a chunk: store it raw
                // with the filter marked as skipped.
                None => EncodedChunk {
                    bytes: raw.to_vec(),
                    filter_mask: 1,
                },
            });
        }
        Codec::Zstd(level) => super::zstd::encode(raw, level)?,
    };
    Ok(EncodedChunk {
        bytes,
        filter_mask: 0,
    })
}

/// `raw` compressed by liblzf, or `None` when it does not shrink (HDF5's lzf filter then stores
/// the chunk unfiltered).
fn lzf(raw: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let len = c_uint::try_from(raw.len())
        .map_err(|_| format!("lzf: a chunk of {} bytes is over 4 GiB", raw.len()))?;
    if len == 0 {
        return Ok(None);
    }
    let mut out = vec![0u8; raw.len()];
    // SAFETY: both pointers cover `len` bytes; liblzf writes at most `out_len` bytes and returns 0
    // when the output does not fit.
    let n = unsafe {
        lzf_sys::lzf_compress(
            raw.as_ptr().cast::<c_void>(),
            len,
            out.as_mut_ptr().cast::<c_void>(),
            len,
        )
    };
    if n == 0 {
        return Ok(None);
    }
    out.truncate(n as usize);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..65_536u32)
            .flat_map(|i| ((i * 7) % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn deflate_writes_zlib_streams() {
        let raw = sample();
        for level in [0u8, 1, 4, 9] {
            let c = encode_chunk(Codec::Gzip(level), &raw).unwrap();
            assert_eq!(c.filter_mask, 0);
            assert_eq!(c.bytes[0] & 0x0f, 8, "zlib header: deflate method");
            let mut back = vec![std::mem::MaybeUninit::uninit(); raw.len()];
            assert_eq!(
                super::super::inflate(&c.bytes, &mut back).unwrap(),
                raw.len()
            );
        }
    }

    #[test]
    fn lzf_round_trips_and_skips_incompressible_chunks() {
        let raw = sample();
        let c = encode_chunk(Codec::Lzf, &raw).unwrap();
        assert_eq!(c.filter_mask, 0);
        assert!(c.bytes.len() < raw.len());
        let mut back = vec![0u8; raw.len()];
        // SAFETY: buffers as long as the lengths given.
        let n = unsafe {
            lzf_sys::lzf_decompress(
                c.bytes.as_ptr().cast(),
                c.bytes.len() as c_uint,
                back.as_mut_ptr().cast(),
                back.len() as c_uint,
            )
        };
        assert_eq!(n as usize, raw.len());
        assert_eq!(back, raw);
        let mut noise = vec![0u8; 4096];
        rand::RngCore::fill_bytes(
            &mut <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(7),
            &mut noise,
        );
        let c = encode_chunk(Codec::Lzf, &noise).unwrap();
        assert_eq!(c.filter_mask, 1);
        assert!(c.bytes == noise, "an incompressible chunk is stored as is");
    }

    #[test]
    fn zstd_and_none() {
        let raw = sample();
        let c = encode_chunk(Codec::Zstd(5), &raw).unwrap();
        assert_eq!(super::super::zstd::decode(&c.bytes).unwrap(), raw);
        assert_eq!(encode_chunk(Codec::None, &raw).unwrap().bytes, raw);
    }
}
