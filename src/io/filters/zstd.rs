//! The Zstandard HDF5 filter (id 32015), as hdf5plugin and HDF5Plugin-Zstandard store it.
//!
//! Each chunk is one Zstandard frame of the chunk's bytes. `cd_values[0]` is the compression
//! level (default 3), used only when writing; levels below 1 write at level 1 and levels above
//! the library's maximum at the maximum.

use hdf5_sys::h5z::{H5Z_class2_t, H5Z_CLASS_T_VERS};

use super::{filter_fn, id, ChunkCodec};

/// The level written when the pipeline gives none.
const DEFAULT_LEVEL: i32 = 3;

/// The filter class registered with HDF5.
pub(super) const CLASS: &H5Z_class2_t = &H5Z_class2_t {
    version: H5Z_CLASS_T_VERS as _,
    id: id::ZSTD,
    encoder_present: 1,
    decoder_present: 1,
    name: c"zstd".as_ptr(),
    can_apply: None,
    set_local: None,
    filter: Some(filter_fn::<Zstd>),
};

/// Decompresses one chunk (one or more frames).
pub(super) fn decode(input: &[u8]) -> Result<Vec<u8>, String> {
    // A frame's declared size is trusted for the allocation only up to HDF5's chunk limit.
    if let Ok(Some(size)) = ::zstd::zstd_safe::get_frame_content_size(input) {
        if size > u64::from(u32::MAX) {
            return Err(format!(
                "zstd: frame declares {size} bytes, more than a chunk holds"
            ));
        }
        if let Ok(out) = ::zstd::bulk::decompress(input, size as usize) {
            if out.len() as u64 == size {
                return Ok(out);
            }
        }
    }
    ::zstd::stream::decode_all(input).map_err(|e| format!("zstd: {e}"))
}

/// Compresses one chunk as a single frame at `level` (clamped to the supported range).
pub(super) fn encode(input: &[u8], level: i32) -> Result<Vec<u8>, String> {
    let level = level.clamp(1, ::zstd::zstd_safe::max_c_level());
    ::zstd::bulk::compress(input, level).map_err(|e| format!("zstd: {e}"))
}

/// The filter's codec, for [`filter_fn`].
struct Zstd;

impl ChunkCodec for Zstd {
    fn run(decoding: bool, cd: &[u32], input: &[u8]) -> Result<Vec<u8>, String> {
        if decoding {
            decode(input)
        } else {
            let level = cd.first().map_or(DEFAULT_LEVEL, |&l| l as i32);
            encode(input, level)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_frames_without_a_content_size() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 977).to_le_bytes())
            .collect();
        let packed = encode(&data, 5).unwrap();
        assert!(packed.len() < data.len() / 4);
        assert_eq!(decode(&packed).unwrap(), data);
        // A streamed frame carries no content size.
        let mut streamed = Vec::new();
        {
            let mut enc = ::zstd::stream::Encoder::new(&mut streamed, 3).unwrap();
            enc.include_contentsize(false).unwrap();
            std::io::Write::write_all(&mut enc, &data).unwrap();
            enc.finish().unwrap();
        }
        assert_eq!(decode(&streamed).unwrap(), data);
        assert!(decode(&data[..100]).is_err());
    }
}
