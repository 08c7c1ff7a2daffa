//! Decoding of stored chunks outside HDF5: the filter pipeline undone in reverse order, with the
//! same codecs and the same checks as HDF5's filters.

use std::mem::MaybeUninit;

use crate::io::filters::{self, id, FilterSpec};

/// One step of a filter pipeline that scoop undoes itself.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    /// zlib stream (HDF5 deflate).
    Deflate,
    /// Byte shuffle of elements of this many bytes.
    Shuffle(usize),
    /// Fletcher-32 checksum in the last four bytes.
    Fletcher32,
    /// liblzf block.
    Lzf,
    /// One or more Zstandard frames.
    Zstd,
    /// A blosc 1 buffer (carries its own shuffle and codec).
    Blosc,
    /// bitshuffle (alone or with lz4/zstd), with the filter's parameters.
    Bitshuffle(Vec<u32>),
}

/// A dataset's filter pipeline in write order, as decoding steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Pipeline {
    steps: Vec<Step>,
}

/// Headroom over the chunk size that decompressors may fill (a checksum written before
/// compressing adds four bytes).
const SLACK: usize = 64;

impl Pipeline {
    /// The steps for `specs`, or `None` when a filter must go through HDF5 (nbit, scale-offset,
    /// szip and anything else HDF5 knows but scoop does not decode itself).
    pub fn new(specs: &[FilterSpec]) -> Option<Self> {
        let steps = specs
            .iter()
            .map(|s| match s.id {
                id::DEFLATE => Some(Step::Deflate),
                id::SHUFFLE => Some(Step::Shuffle(s.cd_values.first().copied()? as usize)),
                id::FLETCHER32 => Some(Step::Fletcher32),
                id::LZF => Some(Step::Lzf),
                id::ZSTD => Some(Step::Zstd),
                id::BLOSC => Some(Step::Blosc),
                id::BITSHUFFLE => Some(Step::Bitshuffle(s.cd_values.clone())),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Pipeline { steps })
    }

    /// True when no step applies to a chunk stored with filter mask `mask`: its stored bytes are
    /// its elements.
    pub fn is_identity(&self, mask: u32) -> bool {
        (0..self.steps.len()).all(|i| skipped(mask, i))
    }

    /// Decodes one stored chunk into exactly `expected` bytes, undoing the steps not skipped by
    /// `mask` from last to first. The error says what failed, without naming the chunk.
    pub fn decode(&self, stored: Vec<u8>, mask: u32, expected: usize) -> Result<Vec<u8>, String> {
        let cap = expected.saturating_add(SLACK);
        let mut buf = stored;
        for (i, step) in self.steps.iter().enumerate().rev() {
            if skipped(mask, i) {
                continue;
            }
            buf = match step {
                Step::Deflate | Step::Lzf | Step::Zstd | Step::Blosc => {
                    let mut out = Vec::with_capacity(cap);
                    let n = decompress_into(step, &buf, out.spare_capacity_mut())?;
                    // SAFETY: `decompress_into` initialised the first `n` bytes.
                    unsafe { out.set_len(n) };
                    out
                }
                Step::Shuffle(es) => unshuffle(&buf, *es),
                Step::Fletcher32 => {
                    check_fletcher32(&mut buf)?;
                    buf
                }
                Step::Bitshuffle(cd) => {
                    let out = filters::decode_bitshuffle(cd, &buf)?;
                    if out.len() > cap {
                        return Err(format!(
                            "bitshuffle: decodes to {} bytes, more than the chunk's {expected}",
                            out.len()
                        ));
                    }
                    out
                }
            };
        }
        if buf.len() != expected {
            return Err(format!(
                "decodes to {} bytes, the chunk holds {expected}",
                buf.len()
            ));
        }
        Ok(buf)
    }

    /// True when exactly one step applies to a chunk stored with filter mask `mask` and it is a
    /// compressor: [`Self::decode_into`] can decode such a chunk straight into its destination.
    pub fn single_compressor(&self, mask: u32) -> bool {
        let mut active = (0..self.steps.len()).filter(|&i| !skipped(mask, i));
        matches!(
            (active.next().map(|i| &self.steps[i]), active.next()),
            (
                Some(Step::Deflate | Step::Lzf | Step::Zstd | Step::Blosc),
                None
            )
        )
    }

    /// Decodes a chunk for which [`Self::single_compressor`] holds into exactly `dst`.
    pub fn decode_into(
        &self,
        stored: &[u8],
        mask: u32,
        dst: &mut [MaybeUninit<u8>],
    ) -> Result<(), String> {
        let step = (0..self.steps.len())
            .find(|&i| !skipped(mask, i))
            .map(|i| &self.steps[i])
            .ok_or("no filter to undo")?;
        let n = decompress_into(step, stored, dst)?;
        if n != dst.len() {
            return Err(format!(
                "decodes to {n} bytes, the chunk holds {}",
                dst.len()
            ));
        }
        Ok(())
    }
}

/// True when bit `i` of a chunk's filter mask says filter `i` was not applied.
fn skipped(mask: u32, i: usize) -> bool {
    i < 32 && mask & (1 << i) != 0
}

/// Decompresses `input` with compressor `step` into `dst`; returns the bytes written, which
/// never exceed `dst`'s length (a chunk that would is an error).
fn decompress_into(
    step: &Step,
    input: &[u8],
    dst: &mut [MaybeUninit<u8>],
) -> Result<usize, String> {
    match step {
        Step::Deflate => filters::inflate(input, dst),
        Step::Lzf => lzf(input, dst),
        Step::Zstd => zstd(input, dst),
        Step::Blosc => blosc(input, dst),
        _ => Err("not a compressor".into()),
    }
}

/// Undoes HDF5's byte shuffle of `es`-byte elements; trailing bytes that do not fill an element
/// are stored as they are.
fn unshuffle(input: &[u8], es: usize) -> Vec<u8> {
    let n = if es > 1 { input.len() / es } else { 0 };
    if n <= 1 {
        return input.to_vec();
    }
    let mut out = vec![0u8; input.len()];
    for (j, plane) in input[..n * es].chunks_exact(n).enumerate() {
        for (dst, &b) in out[j..].iter_mut().step_by(es).zip(plane) {
            *dst = b;
        }
    }
    out[n * es..].copy_from_slice(&input[n * es..]);
    out
}

/// HDF5's Fletcher-32 over `data`: 16-bit big-endian words summed from zero, an odd last byte
/// as the high half of a word.
pub(super) fn fletcher32(data: &[u8]) -> u32 {
    let (mut sum1, mut sum2) = (0u32, 0u32);
    let even = data.len() & !1;
    // 360 words between reductions: the most that cannot overflow.
    for block in data[..even].chunks(720) {
        for w in block.chunks_exact(2) {
            sum1 += u32::from(w[0]) << 8 | u32::from(w[1]);
            sum2 += sum1;
        }
        sum1 = (sum1 & 0xffff) + (sum1 >> 16);
        sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    }
    if let Some(&last) = data.get(even) {
        sum1 += u32::from(last) << 8;
        sum2 += sum1;
        sum1 = (sum1 & 0xffff) + (sum1 >> 16);
        sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    }
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    sum2 << 16 | sum1
}

/// Checks and strips the trailing checksum, accepting the byte-swapped value of files written
/// by HDF5 before 1.6.3, as HDF5 does.
fn check_fletcher32(buf: &mut Vec<u8>) -> Result<(), String> {
    let Some(body) = buf.len().checked_sub(4) else {
        return Err("fletcher32: chunk shorter than its checksum".into());
    };
    let stored = u32::from_le_bytes(buf[body..].try_into().expect("4 bytes"));
    let sum = fletcher32(&buf[..body]);
    let b = sum.to_ne_bytes();
    let reversed = u32::from_ne_bytes([b[1], b[0], b[3], b[2]]);
    if stored != sum && stored != reversed {
        return Err(format!(
            "fletcher32 checksum mismatch (stored {stored:#010x}, computed {sum:#010x})"
        ));
    }
    buf.truncate(body);
    Ok(())
}

/// Decompresses an lzf block.
fn lzf(input: &[u8], dst: &mut [MaybeUninit<u8>]) -> Result<usize, String> {
    let (Ok(in_len), Ok(out_len)) = (u32::try_from(input.len()), u32::try_from(dst.len())) else {
        return Err("lzf: chunk larger than 4 GiB".into());
    };
    // SAFETY: both pointers are valid for the lengths passed; liblzf never writes past
    // `out_len` and returns 0 on corrupt input or a full output.
    let n = unsafe {
        lzf_sys::lzf_decompress(
            input.as_ptr().cast(),
            in_len,
            dst.as_mut_ptr().cast(),
            out_len,
        )
    };
    if n == 0 {
        return Err("lzf: corrupt block".into());
    }
    Ok(n as usize)
}

/// Decompresses one or more Zstandard frames.
fn zstd(input: &[u8], dst: &mut [MaybeUninit<u8>]) -> Result<usize, String> {
    use ::zstd::zstd_safe::zstd_sys;
    // SAFETY: the pointers are valid for the lengths given; zstd writes at most `dst.len()`
    // bytes and reports an error code instead of overrunning.
    let n = unsafe {
        zstd_sys::ZSTD_decompress(
            dst.as_mut_ptr().cast(),
            dst.len(),
            input.as_ptr().cast(),
            input.len(),
        )
    };
    // SAFETY: a plain query of a return code.
    if unsafe { zstd_sys::ZSTD_isError(n) } != 0 {
        return Err(format!("zstd: {}", ::zstd::zstd_safe::get_error_name(n)));
    }
    Ok(n)
}

/// Decompresses a blosc 1 buffer (blosc undoes its own shuffle).
fn blosc(input: &[u8], dst: &mut [MaybeUninit<u8>]) -> Result<usize, String> {
    let mut nbytes = 0usize;
    // SAFETY: the pointer and length describe `input`; validation reads only the header inside
    // it and guarantees that decompressing `input` reads nothing past its end.
    let valid = unsafe {
        blosc_src::blosc_cbuffer_validate(input.as_ptr().cast(), input.len(), &mut nbytes)
    };
    if valid != 0 {
        return Err("blosc: corrupt buffer header".into());
    }
    if nbytes > dst.len() {
        return Err(format!(
            "blosc: declares {nbytes} bytes, more than the chunk's {}",
            dst.len()
        ));
    }
    // SAFETY: `input` was validated above and `dst` holds at least `nbytes` bytes; the context
    // call takes no global state and writes at most `nbytes`.
    let n = unsafe {
        blosc_src::blosc_decompress_ctx(input.as_ptr().cast(), dst.as_mut_ptr().cast(), nbytes, 1)
    };
    if n < 0 || n as usize != nbytes {
        return Err("blosc: corrupt buffer".into());
    }
    Ok(nbytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fletcher32_matches_hdf5() {
        // Small vectors worked by hand through H5_checksum_fletcher32; the integration tests
        // check real files written by HDF5.
        assert_eq!(fletcher32(&[0, 1]), 0x0001_0001);
        assert_eq!(fletcher32(&[1]), 0x0100_0100);
        let mut buf = vec![7u8; 1001];
        let sum = fletcher32(&buf);
        buf.extend_from_slice(&sum.to_le_bytes());
        check_fletcher32(&mut buf).unwrap();
        assert_eq!(buf.len(), 1001);
        buf.extend_from_slice(&(sum ^ 1).to_le_bytes());
        assert!(check_fletcher32(&mut buf).unwrap_err().contains("mismatch"));
    }

    #[test]
    fn unshuffles_with_a_ragged_tail() {
        // Elements [1,2,3],[4,5,6] shuffled are 1,4,2,5,3,6; then one trailing byte.
        assert_eq!(
            unshuffle(&[1, 4, 2, 5, 3, 6, 9], 3),
            vec![1, 2, 3, 4, 5, 6, 9]
        );
        assert_eq!(unshuffle(&[1, 2, 3], 4), vec![1, 2, 3]);
    }

    #[test]
    fn decode_rejects_wrong_sizes_and_corrupt_streams() {
        let p = Pipeline {
            steps: vec![Step::Deflate],
        };
        assert!(p.decode(vec![1, 2, 3, 4], 0, 8).is_err());
        assert!(p.is_identity(1));
        assert_eq!(p.decode(vec![1, 2], 1, 2).unwrap(), vec![1, 2]);
        assert!(p
            .decode(vec![1, 2], 1, 3)
            .unwrap_err()
            .contains("decodes to 2"));
    }
}
