//! Stored element bytes to the types scoop computes with, converting as HDF5 converts.

use std::mem::MaybeUninit;

use super::index::{Kind, StoredType};

/// An element type the chunk reader fills.
///
/// # Safety
/// Every bit pattern of `Self`'s size must be a valid `Self` (the reader fills outputs in place
/// with file bytes when [`Element::native`] matches the stored type).
pub(crate) unsafe trait Element: Copy + Default + Send + Sync + 'static {
    /// The stored type whose little-endian bytes are read in place as `Self`, if any.
    fn native(stored: StoredType) -> bool;
    /// From a float, as HDF5 converts it.
    fn from_f64(v: f64) -> Self;
    /// From a signed integer, as HDF5 converts it.
    fn from_i64(v: i64) -> Self;
    /// From an unsigned integer, as HDF5 converts it.
    fn from_u64(v: u64) -> Self;
}

// SAFETY: every 32-bit pattern is an f32.
unsafe impl Element for f32 {
    fn native(stored: StoredType) -> bool {
        cfg!(target_endian = "little")
            && stored
                == StoredType {
                    kind: Kind::Float,
                    size: 4,
                    big_endian: false,
                }
    }

    fn from_f64(v: f64) -> Self {
        // HDF5 sends values beyond f32's range to infinity (not to the largest finite value).
        if v > f64::from(f32::MAX) {
            f32::INFINITY
        } else if v < f64::from(f32::MIN) {
            f32::NEG_INFINITY
        } else {
            v as f32
        }
    }

    fn from_i64(v: i64) -> Self {
        v as f32
    }

    fn from_u64(v: u64) -> Self {
        v as f32
    }
}

/// Column indices: values in `0..2^31` convert exactly; any other value (negative, too large,
/// or a float) becomes some value at or above 2^31, which a reader checking columns against a
/// width below 2^31 rejects.
// SAFETY: every 32-bit pattern is a u32.
unsafe impl Element for u32 {
    fn native(stored: StoredType) -> bool {
        // int32 and uint32 both: a negative int32 reads as a value at or above 2^31.
        cfg!(target_endian = "little")
            && stored.size == 4
            && !stored.big_endian
            && stored.kind != Kind::Float
    }

    fn from_f64(_: f64) -> Self {
        u32::MAX
    }

    fn from_i64(v: i64) -> Self {
        u32::try_from(v).unwrap_or(u32::MAX)
    }

    fn from_u64(v: u64) -> Self {
        u32::try_from(v).unwrap_or(u32::MAX)
    }
}

/// Plain numeric types read as themselves (typed reads of a dataset in its own dtype): the
/// stored type equals `Self` up to byte order, so the one conversion used is exact; the others
/// are `as` casts.
macro_rules! same_type_element {
    ($($t:ty => $kind:ident),* $(,)?) => {$(
        // SAFETY: every bit pattern of a primitive integer or float is a valid value.
        unsafe impl Element for $t {
            fn native(stored: StoredType) -> bool {
                cfg!(target_endian = "little")
                    && stored
                        == StoredType {
                            kind: Kind::$kind,
                            size: std::mem::size_of::<$t>(),
                            big_endian: false,
                        }
            }

            fn from_f64(v: f64) -> Self {
                v as $t
            }

            fn from_i64(v: i64) -> Self {
                v as $t
            }

            fn from_u64(v: u64) -> Self {
                v as $t
            }
        }
    )*};
}

same_type_element!(
    i8 => Signed, i16 => Signed, i32 => Signed, i64 => Signed,
    u8 => Unsigned, u16 => Unsigned, u64 => Unsigned, f64 => Float,
);

/// The bytes of `out`, to be filled in place with a native stored type.
pub(super) fn bytes_mut<T: Element>(out: &mut [MaybeUninit<T>]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: the byte view covers exactly `out`'s memory, borrows it mutably for its lifetime
    // and, being uninitialised bytes, asserts nothing about their contents; `Element` makes any
    // bytes written through it a valid `T`.
    unsafe {
        std::slice::from_raw_parts_mut(
            out.as_mut_ptr().cast::<MaybeUninit<u8>>(),
            std::mem::size_of_val(out),
        )
    }
}

/// Writes `T::default()` (zero) into every element of `out`.
pub(super) fn zero<T: Element>(out: &mut [MaybeUninit<T>]) {
    for o in out {
        o.write(T::default());
    }
}

/// Converts whole stored elements `bytes` (`out.len()` of them) into `out`, writing every
/// element.
pub(super) fn convert<T: Element>(bytes: &[u8], stored: StoredType, out: &mut [MaybeUninit<T>]) {
    assert_eq!(bytes.len(), out.len() * stored.size);
    if T::native(stored) {
        // SAFETY: `bytes` holds exactly `out`'s byte length (checked above) and cannot overlap
        // the exclusively borrowed `out`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                out.as_mut_ptr().cast::<u8>(),
                bytes.len(),
            )
        };
        return;
    }
    macro_rules! each {
        ($t:ty, $conv:ident, $wide:ty) => {{
            const N: usize = std::mem::size_of::<$t>();
            let read: fn([u8; N]) -> $t = if stored.big_endian {
                <$t>::from_be_bytes
            } else {
                <$t>::from_le_bytes
            };
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(N)) {
                o.write(T::$conv(read(b.try_into().expect("element bytes")) as $wide));
            }
        }};
    }
    match (stored.kind, stored.size) {
        (Kind::Float, 4) => each!(f32, from_f64, f64),
        (Kind::Float, _) => each!(f64, from_f64, f64),
        (Kind::Signed, 1) => each!(i8, from_i64, i64),
        (Kind::Signed, 2) => each!(i16, from_i64, i64),
        (Kind::Signed, 4) => each!(i32, from_i64, i64),
        (Kind::Signed, _) => each!(i64, from_i64, i64),
        (Kind::Unsigned, 1) => each!(u8, from_u64, u64),
        (Kind::Unsigned, 2) => each!(u16, from_u64, u64),
        (Kind::Unsigned, 4) => each!(u32, from_u64, u64),
        (Kind::Unsigned, _) => each!(u64, from_u64, u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(kind: Kind, size: usize, big_endian: bool) -> StoredType {
        StoredType {
            kind,
            size,
            big_endian,
        }
    }

    fn conv<T: Element>(bytes: &[u8], stored: StoredType, out: &mut [T]) {
        let mut tmp = vec![MaybeUninit::<T>::uninit(); out.len()];
        convert(bytes, stored, &mut tmp);
        for (o, t) in out.iter_mut().zip(tmp) {
            // SAFETY: `convert` writes every element.
            *o = unsafe { t.assume_init() };
        }
    }

    #[test]
    fn converts_as_hdf5() {
        let mut f = [0f32; 3];
        let src: Vec<u8> = [1.5f64, 1e300, -1e300]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        conv(&src, st(Kind::Float, 8, true), &mut f);
        assert_eq!(f, [1.5, f32::INFINITY, f32::NEG_INFINITY]);
        let mut c = [0u32; 3];
        let src: Vec<u8> = [5i64, -1, 1 << 40]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        conv(&src, st(Kind::Signed, 8, false), &mut c);
        assert_eq!(c, [5, u32::MAX, u32::MAX]);
        let src: Vec<u8> = [7i32, -1].iter().flat_map(|v| v.to_le_bytes()).collect();
        conv(&src, st(Kind::Signed, 4, false), &mut c[..2]);
        assert!(c[0] == 7 && c[1] >= 1 << 31);
        let src: Vec<u8> = [3u16, 65535].iter().flat_map(|v| v.to_be_bytes()).collect();
        conv(&src, st(Kind::Unsigned, 2, true), &mut f[..2]);
        assert_eq!(&f[..2], &[3.0, 65535.0]);
    }
}
