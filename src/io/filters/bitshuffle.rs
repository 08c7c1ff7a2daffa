//! The bitshuffle HDF5 filter (id 32008), alone or followed by LZ4 or Zstandard, in the on-disk
//! format of the reference implementation (kiyo-masui/bitshuffle, shipped by hdf5plugin).
//!
//! Parameters as stored (`cd_values`): `[major, minor, element size, block size, compressor,
//! zstd level]`; the writer passes the last three (all optional) and the filter's `set_local`
//! prepends the first three. Block size is in elements, 0 for the default (8192 bytes' worth,
//! rounded down to a multiple of 8, at least 128); compressor 0 = none, 2 = LZ4, 3 = Zstandard.
//!
//! A chunk of `n` elements is cut into blocks of the block size, then one last block of the
//! remainder rounded down to a multiple of 8 elements; the last `n % 8` elements are stored
//! as they are. Within a block of `m` elements the bits are transposed: the output holds
//! `8 x element size` rows of `m / 8` bytes, row `8 j + k` collecting bit `k` (least significant
//! first) of byte `j` of every element, element `8 g + i` at bit `i` of the row's byte `g`.
//!
//! Without a compressor the transposed blocks follow each other, then the raw remainder. With one
//! the chunk starts with a 12-byte header, the chunk's byte count (u64, big-endian) and the block
//! size in bytes (u32, big-endian); each block is then its compressed length (u32, big-endian) and
//! the LZ4 block or Zstandard frame of its transposed bytes; the raw remainder comes last.

use std::ffi::c_uint;

use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5z::{H5Z_class2_t, H5Z_CLASS_T_VERS};

use super::{filter_fn, id, ChunkCodec};

/// Compressor code for LZ4.
pub(super) const LZ4: u32 = 2;
/// Compressor code for Zstandard.
pub(super) const ZSTD: u32 = 3;

/// Format version written into the parameters.
const VERSION: (u32, u32) = (0, 4);
/// Block sizes are multiples of this many elements.
const BLOCK_MULTIPLE: usize = 8;
/// The default block holds about this many bytes.
const TARGET_BLOCK_BYTES: usize = 8192;
/// The default block holds at least this many elements.
const MIN_DEFAULT_BLOCK: usize = 128;
/// The Zstandard level when the parameters give none.
const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// The filter class registered with HDF5.
pub(super) const CLASS: &H5Z_class2_t = &H5Z_class2_t {
    version: H5Z_CLASS_T_VERS as _,
    id: id::BITSHUFFLE,
    encoder_present: 1,
    decoder_present: 1,
    name: c"bitshuffle".as_ptr(),
    can_apply: None,
    set_local: Some(set_local),
    filter: Some(filter_fn::<Bitshuffle>),
};

/// What follows the transpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compressor {
    None,
    Lz4,
    Zstd(i32),
}

/// The stored parameters of one dataset.
#[derive(Clone, Copy, Debug)]
struct Params {
    elem_size: usize,
    /// Block size in elements; 0 for the default.
    block: usize,
    compressor: Compressor,
}

impl Params {
    fn parse(cd: &[u32]) -> Result<Self, String> {
        if cd.len() < 3 || cd[2] == 0 {
            return Err(format!("bitshuffle: bad parameters {cd:?}"));
        }
        let compressor = match cd.get(4).copied().unwrap_or(0) {
            0 => Compressor::None,
            LZ4 => Compressor::Lz4,
            ZSTD => Compressor::Zstd(cd.get(5).map_or(DEFAULT_ZSTD_LEVEL, |&l| l as i32)),
            other => return Err(format!("bitshuffle: unknown compressor {other}")),
        };
        Ok(Params {
            elem_size: cd[2] as usize,
            block: cd.get(3).copied().unwrap_or(0) as usize,
            compressor,
        })
    }

    /// The block size in elements, the default resolved.
    fn block_elems(&self) -> usize {
        resolve_block(self.block, self.elem_size)
    }
}

/// `block` elements, or the default block for `elem_size`-byte elements when `block` is 0.
fn resolve_block(block: usize, elem_size: usize) -> usize {
    if block != 0 {
        return block;
    }
    let b = TARGET_BLOCK_BYTES / elem_size / BLOCK_MULTIPLE * BLOCK_MULTIPLE;
    b.max(MIN_DEFAULT_BLOCK)
}

/// Element counts of the transposed blocks of `n` elements (the raw `n % 8` excluded).
fn blocks(n: usize, block: usize) -> impl Iterator<Item = usize> {
    let last = n % block / BLOCK_MULTIPLE * BLOCK_MULTIPLE;
    std::iter::repeat_n(block, n / block).chain((last > 0).then_some(last))
}

/// Transposes an 8 x 8 bit matrix held one row per byte: bit `c` of byte `r` moves to bit `r`
/// of byte `c`.
fn transpose8(mut x: u64) -> u64 {
    // Three rounds of swapping the off-diagonal 1x1, 2x2 and 4x4 blocks.
    let t = (x ^ (x >> 7)) & 0x00AA_00AA_00AA_00AA;
    x ^= t ^ (t << 7);
    let t = (x ^ (x >> 14)) & 0x0000_CCCC_0000_CCCC;
    x ^= t ^ (t << 14);
    let t = (x ^ (x >> 28)) & 0x0000_0000_F0F0_F0F0;
    x ^= t ^ (t << 28);
    x
}

/// Bit-transposes `m` elements (a multiple of 8) of `es` bytes from `src` into `dst`.
fn shuffle_block(src: &[u8], dst: &mut [u8], m: usize, es: usize) {
    let row = m / 8;
    for (g, group) in src[..m * es].chunks_exact(8 * es).enumerate() {
        for j in 0..es {
            let x = u64::from_le_bytes(std::array::from_fn(|i| group[i * es + j]));
            let t = transpose8(x).to_le_bytes();
            for (k, &b) in t.iter().enumerate() {
                dst[(8 * j + k) * row + g] = b;
            }
        }
    }
}

/// Inverts [`shuffle_block`].
fn unshuffle_block(src: &[u8], dst: &mut [u8], m: usize, es: usize) {
    let row = m / 8;
    for (g, group) in dst[..m * es].chunks_exact_mut(8 * es).enumerate() {
        for j in 0..es {
            let x = u64::from_le_bytes(std::array::from_fn(|k| src[(8 * j + k) * row + g]));
            let t = transpose8(x).to_le_bytes();
            for (i, &b) in t.iter().enumerate() {
                group[i * es + j] = b;
            }
        }
    }
}

/// Reads a big-endian u32 at `pos`.
fn be_u32(input: &[u8], pos: usize) -> Result<u32, String> {
    input
        .get(pos..pos + 4)
        .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
        .ok_or_else(|| "bitshuffle: truncated chunk".to_string())
}

/// Decodes one chunk.
pub(super) fn decode(cd: &[u32], input: &[u8]) -> Result<Vec<u8>, String> {
    let p = Params::parse(cd)?;
    let es = p.elem_size;
    let truncated = || "bitshuffle: truncated chunk".to_string();
    if p.compressor == Compressor::None {
        if !input.len().is_multiple_of(es) {
            return Err("bitshuffle: chunk is not whole elements".into());
        }
        let n = input.len() / es;
        let mut out = vec![0u8; input.len()];
        let mut off = 0;
        for m in blocks(n, p.block_elems()) {
            let len = m * es;
            unshuffle_block(&input[off..off + len], &mut out[off..off + len], m, es);
            off += len;
        }
        out[off..].copy_from_slice(&input[off..]);
        return Ok(out);
    }
    let header = input.get(..12).ok_or_else(truncated)?;
    let total = u64::from_be_bytes(header[..8].try_into().expect("8 bytes"));
    if total > u64::from(u32::MAX) || !(total as usize).is_multiple_of(es) {
        return Err(format!("bitshuffle: bad chunk size {total}"));
    }
    let total = total as usize;
    let block = resolve_block(be_u32(header, 8)? as usize / es, es);
    if !block.is_multiple_of(BLOCK_MULTIPLE) {
        return Err(format!("bitshuffle: bad block size {block}"));
    }
    let mut out = vec![0u8; total];
    let mut tmp = Vec::new();
    let (mut pos, mut off) = (12, 0);
    for m in blocks(total / es, block) {
        let len = m * es;
        let clen = be_u32(input, pos)? as usize;
        let packed = input.get(pos + 4..pos + 4 + clen).ok_or_else(truncated)?;
        pos += 4 + clen;
        tmp.resize(len, 0);
        let got = match p.compressor {
            Compressor::Lz4 => lz4_flex::block::decompress_into(packed, &mut tmp)
                .map_err(|e| format!("bitshuffle lz4: {e}"))?,
            _ => ::zstd::bulk::decompress_to_buffer(packed, &mut tmp[..])
                .map_err(|e| format!("bitshuffle zstd: {e}"))?,
        };
        if got != len {
            return Err("bitshuffle: block decodes to the wrong size".into());
        }
        unshuffle_block(&tmp, &mut out[off..off + len], m, es);
        off += len;
    }
    let rest = total - off;
    let raw = input.get(pos..pos + rest).ok_or_else(truncated)?;
    out[off..].copy_from_slice(raw);
    Ok(out)
}

/// Encodes one chunk.
fn encode(cd: &[u32], input: &[u8]) -> Result<Vec<u8>, String> {
    let p = Params::parse(cd)?;
    let es = p.elem_size;
    if !input.len().is_multiple_of(es) {
        return Err("bitshuffle: chunk is not whole elements".into());
    }
    let n = input.len() / es;
    let block = p.block_elems();
    if !block.is_multiple_of(BLOCK_MULTIPLE) {
        return Err(format!("bitshuffle: bad block size {block}"));
    }
    if p.compressor == Compressor::None {
        let mut out = vec![0u8; input.len()];
        let mut off = 0;
        for m in blocks(n, block) {
            let len = m * es;
            shuffle_block(&input[off..off + len], &mut out[off..off + len], m, es);
            off += len;
        }
        out[off..].copy_from_slice(&input[off..]);
        return Ok(out);
    }
    let block_bytes = u32::try_from(block * es).map_err(|_| "bitshuffle: block too large")?;
    let mut out = Vec::with_capacity(input.len() / 2 + 64);
    out.extend_from_slice(&(input.len() as u64).to_be_bytes());
    out.extend_from_slice(&block_bytes.to_be_bytes());
    let mut tmp = Vec::new();
    let mut off = 0;
    for m in blocks(n, block) {
        let len = m * es;
        tmp.resize(len, 0);
        shuffle_block(&input[off..off + len], &mut tmp, m, es);
        let packed = match p.compressor {
            Compressor::Lz4 => lz4_flex::block::compress(&tmp),
            Compressor::Zstd(level) => super::zstd::encode(&tmp, level)?,
            Compressor::None => unreachable!("handled above"),
        };
        let clen = u32::try_from(packed.len()).map_err(|_| "bitshuffle: block too large")?;
        out.extend_from_slice(&clen.to_be_bytes());
        out.extend_from_slice(&packed);
        off += len;
    }
    out.extend_from_slice(&input[off..]);
    Ok(out)
}

/// Fills in the parameters HDF5 does not know at creation: version and element size, ahead of
/// the writer's block size, compressor and level.
extern "C" fn set_local(dcpl: hid_t, dtype: hid_t, _space: hid_t) -> hdf5_sys::h5::herr_t {
    let mut flags: c_uint = 0;
    let mut given = [0 as c_uint; 8];
    let mut n_given = given.len();
    // SAFETY: HDF5 calls this with valid property list and type ids; the buffers are as long as
    // the sizes passed.
    unsafe {
        if hdf5_sys::h5p::H5Pget_filter_by_id2(
            dcpl,
            id::BITSHUFFLE,
            &mut flags,
            &mut n_given,
            given.as_mut_ptr(),
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        ) < 0
        {
            return -1;
        }
        let elem_size = hdf5_sys::h5t::H5Tget_size(dtype);
        if elem_size == 0 {
            return -1;
        }
        let mut cd = vec![VERSION.0, VERSION.1, elem_size as c_uint];
        cd.extend_from_slice(&given[..n_given.min(3)]);
        if Params::parse(&cd).is_err()
            || !(cd.get(3).copied().unwrap_or(0) as usize).is_multiple_of(BLOCK_MULTIPLE)
        {
            return -1;
        }
        if hdf5_sys::h5p::H5Pmodify_filter(dcpl, id::BITSHUFFLE, flags, cd.len(), cd.as_ptr()) < 0 {
            return -1;
        }
    }
    1
}

/// The filter's codec, for [`filter_fn`].
struct Bitshuffle;

impl ChunkCodec for Bitshuffle {
    fn run(decoding: bool, cd: &[u32], input: &[u8]) -> Result<Vec<u8>, String> {
        if decoding {
            decode(cd, input)
        } else {
            encode(cd, input)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit `k` of byte `j` of element `e`, the definition the transpose follows.
    fn naive_shuffle(src: &[u8], m: usize, es: usize) -> Vec<u8> {
        let row = m / 8;
        let mut out = vec![0u8; m * es];
        for e in 0..m {
            for j in 0..es {
                for k in 0..8 {
                    let bit = (src[e * es + j] >> k) & 1;
                    out[(8 * j + k) * row + e / 8] |= bit << (e % 8);
                }
            }
        }
        out
    }

    fn data(n: usize, es: usize) -> Vec<u8> {
        (0..n * es)
            .map(|i| ((i * 2654435761) >> 7) as u8 & if i % 3 == 0 { 0x0f } else { 0xff })
            .collect()
    }

    #[test]
    fn transpose8_moves_bit_c_of_byte_r_to_bit_r_of_byte_c() {
        for r in 0..8 {
            for c in 0..8 {
                let x = 1u64 << (8 * r + c);
                assert_eq!(transpose8(x), 1u64 << (8 * c + r));
            }
        }
    }

    #[test]
    fn block_transpose_matches_the_definition_and_inverts() {
        for es in [1, 2, 4, 8, 16] {
            for m in [8, 16, 136] {
                let src = data(m, es);
                let mut t = vec![0u8; m * es];
                shuffle_block(&src, &mut t, m, es);
                assert_eq!(t, naive_shuffle(&src, m, es), "es {es} m {m}");
                let mut back = vec![0u8; m * es];
                unshuffle_block(&t, &mut back, m, es);
                assert_eq!(back, src);
            }
        }
    }

    #[test]
    fn default_block_sizes() {
        assert_eq!(resolve_block(0, 4), 2048);
        assert_eq!(resolve_block(0, 8), 1024);
        assert_eq!(resolve_block(0, 1), 8192);
        assert_eq!(resolve_block(0, 128), 128);
        assert_eq!(resolve_block(0, 3), 2728);
        assert_eq!(blocks(5003, 2048).collect::<Vec<_>>(), [2048, 2048, 904]);
        assert_eq!(blocks(7, 2048).count(), 0);
    }

    #[test]
    fn chunks_round_trip_with_every_compressor_and_leftover() {
        for comp in [vec![0, 0], vec![0, LZ4], vec![0, ZSTD, 5], vec![64, LZ4]] {
            for es in [1, 4, 8] {
                for n in [0, 5, 8, 2051, 5003] {
                    let cd: Vec<u32> = [0, 4, es as u32].into_iter().chain(comp.clone()).collect();
                    let src = data(n, es);
                    let packed = encode(&cd, &src).unwrap();
                    assert_eq!(decode(&cd, &packed).unwrap(), src, "{cd:?} n {n}");
                }
            }
        }
    }

    #[test]
    fn compressed_chunk_layout() {
        // 20 f32 elements with LZ4 and an 8-element block: two full blocks, no partial block,
        // 4 raw elements.
        let cd = [0, 4, 4, 8, LZ4];
        let src = data(20, 4);
        let packed = encode(&cd, &src).unwrap();
        assert_eq!(&packed[..8], &80u64.to_be_bytes());
        assert_eq!(&packed[8..12], &32u32.to_be_bytes());
        assert_eq!(&packed[packed.len() - 16..], &src[64..]);
        let first = u32::from_be_bytes(packed[12..16].try_into().unwrap()) as usize;
        let block = lz4_flex::block::decompress(&packed[16..16 + first], 32).unwrap();
        assert_eq!(block, naive_shuffle(&src[..32], 8, 4));
        assert!(decode(&cd, &packed[..packed.len() - 1]).is_err());
    }
}
