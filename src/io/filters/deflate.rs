//! HDF5's deflate filter (zlib streams) through libdeflate, both ways: one compressor and one
//! decompressor per thread, reused from chunk to chunk.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use libdeflate_sys as sys;

/// A libdeflate decompressor (freed on drop).
struct Decompressor(*mut sys::libdeflate_decompressor);

impl Drop for Decompressor {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: allocated by libdeflate_alloc_decompressor and freed once, here.
            unsafe { sys::libdeflate_free_decompressor(self.0) }
        }
    }
}

/// A libdeflate compressor at one level (freed on drop).
struct Compressor {
    level: u8,
    ptr: *mut sys::libdeflate_compressor,
}

impl Drop for Compressor {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: allocated by libdeflate_alloc_compressor and freed once, here.
            unsafe { sys::libdeflate_free_compressor(self.ptr) }
        }
    }
}

thread_local! {
    // SAFETY (of the FFI call): allocation takes no arguments; a null result is checked at use.
    static DECOMPRESSOR: Decompressor = Decompressor(unsafe { sys::libdeflate_alloc_decompressor() });
    static COMPRESSOR: RefCell<Option<Compressor>> = const { RefCell::new(None) };
}

/// Inflates zlib stream `input` into `dst` (which need not be initialised) and returns the bytes
/// written; libdeflate checks the stream's Adler-32 and never writes past `dst`.
pub(crate) fn inflate(input: &[u8], dst: &mut [MaybeUninit<u8>]) -> Result<usize, String> {
    DECOMPRESSOR.with(|d| {
        if d.0.is_null() {
            return Err("gzip: out of memory for a decompressor".to_string());
        }
        let mut n = 0usize;
        // SAFETY: the decompressor is this thread's own; the input and output pointers are
        // valid for the lengths given and libdeflate writes at most `dst.len()` bytes.
        let rc = unsafe {
            sys::libdeflate_zlib_decompress(
                d.0,
                input.as_ptr().cast(),
                input.len(),
                dst.as_mut_ptr().cast(),
                dst.len(),
                &mut n,
            )
        };
        match rc {
            sys::libdeflate_result_LIBDEFLATE_SUCCESS => Ok(n),
            sys::libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE => Err(format!(
                "gzip: corrupt deflate stream (inflates past {} bytes)",
                dst.len()
            )),
            _ => Err("gzip: corrupt deflate stream".to_string()),
        }
    })
}

/// A zlib stream of `raw` at gzip level `level` (0 to 9), as HDF5's deflate filter stores it.
pub(crate) fn deflate(raw: &[u8], level: u8) -> Result<Vec<u8>, String> {
    if level > 9 {
        return Err(format!("gzip: level {level} outside 0..=9"));
    }
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|c| c.level != level) {
            // SAFETY: allocation with a level libdeflate accepts (0 to 12); null is checked below.
            let ptr = unsafe { sys::libdeflate_alloc_compressor(i32::from(level)) };
            *slot = Some(Compressor { level, ptr });
        }
        let c = slot.as_ref().expect("set above");
        if c.ptr.is_null() {
            return Err("gzip: out of memory for a compressor".to_string());
        }
        // SAFETY: the compressor is this thread's own; a bound query reads nothing else.
        let bound = unsafe { sys::libdeflate_zlib_compress_bound(c.ptr, raw.len()) };
        let mut out: Vec<u8> = Vec::with_capacity(bound);
        // SAFETY: the input is valid for its length and the output for `bound` bytes, which is
        // all libdeflate may write; it returns the bytes written (0: did not fit).
        let n = unsafe {
            sys::libdeflate_zlib_compress(
                c.ptr,
                raw.as_ptr().cast(),
                raw.len(),
                out.as_mut_ptr().cast(),
                bound,
            )
        };
        if n == 0 {
            return Err("gzip: compressed chunk larger than its bound".to_string());
        }
        // SAFETY: libdeflate initialised the first `n <= bound` bytes.
        unsafe { out.set_len(n) };
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_every_level_and_rejects_corruption() {
        let raw: Vec<u8> = (0..65_536u32)
            .flat_map(|i| ((i * 7) % 251).to_le_bytes())
            .collect();
        for level in [0u8, 1, 4, 9] {
            let z = deflate(&raw, level).unwrap();
            assert_eq!(z[0] & 0x0f, 8, "zlib header: deflate method");
            let mut back = vec![MaybeUninit::<u8>::uninit(); raw.len()];
            assert_eq!(inflate(&z, &mut back).unwrap(), raw.len());
            // SAFETY: `inflate` wrote all `raw.len()` bytes.
            let back: Vec<u8> = back
                .into_iter()
                .map(|b| unsafe { b.assume_init() })
                .collect();
            assert_eq!(back, raw);
            let mut short = vec![MaybeUninit::<u8>::uninit(); raw.len() - 1];
            assert!(inflate(&z, &mut short).unwrap_err().contains("past"));
        }
        let mut z = deflate(&raw, 4).unwrap();
        let last = z.len() - 1;
        z[last] ^= 1; // the Adler-32
        let mut back = vec![MaybeUninit::<u8>::uninit(); raw.len()];
        assert!(inflate(&z, &mut back).is_err());
        assert!(deflate(&raw, 10).is_err());
    }
}
