//! The storage map of a 1-D dataset, taken once under HDF5's lock: where its bytes lie in the
//! file, how its chunks are filtered and what type its elements have on disk.

use std::ffi::c_void;
use std::os::raw::{c_int, c_uint};

use hdf5::Dataset;
use hdf5_sys::h5::{haddr_t, hsize_t, HADDR_UNDEF};
use hdf5_sys::h5d::{H5D_fill_value_t, H5D_layout_t};
use hdf5_sys::h5i::hid_t;

/// The numeric type of a dataset's elements as stored in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StoredType {
    /// What the bytes encode.
    pub kind: Kind,
    /// Bytes per element: 1, 2, 4 or 8 (floats: 4 or 8).
    pub size: usize,
    /// Most significant byte first.
    pub big_endian: bool,
}

/// The value class of a [`StoredType`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Two's-complement integer.
    Signed,
    /// Unsigned integer.
    Unsigned,
    /// IEEE 754 binary32 or binary64.
    Float,
}

/// Where one chunk's stored bytes lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ChunkLoc {
    /// Absolute byte offset in the file (HDF5 adds the userblock).
    pub addr: u64,
    /// Stored (filtered) size in bytes.
    pub size: u64,
    /// Bit `i` set: filter `i` of the pipeline was skipped for this chunk.
    pub mask: u32,
}

/// How a dataset's elements are laid out in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Layout {
    /// One unfiltered extent starting at this byte offset; `None` when never written (every
    /// element reads as zero).
    Contiguous(Option<u64>),
    /// Fixed-size chunks of `chunk_len` elements; chunk `i` covers elements
    /// `i * chunk_len .. (i + 1) * chunk_len` and is absent from `chunks` when never written
    /// (zeros).
    Chunked {
        /// Elements per chunk (every chunk, the last included, is stored whole).
        chunk_len: usize,
        /// The allocated chunks.
        chunks: ChunkMap,
    },
}

/// The allocated chunks of a dataset, by chunk number: as many entries as the file stores
/// chunks (so a corrupt extent of 2^60 elements costs nothing), found by binary search.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ChunkMap {
    /// (chunk number, location), ascending by number, numbers unique.
    entries: Vec<(u64, ChunkLoc)>,
}

impl ChunkMap {
    /// Where chunk `i` is stored; `None` when it was never written.
    pub fn get(&self, i: usize) -> Option<ChunkLoc> {
        let i = i as u64;
        self.entries
            .binary_search_by_key(&i, |e| e.0)
            .ok()
            .map(|k| self.entries[k].1)
    }
}

/// A dataset's storage map.
#[derive(Clone, Debug)]
pub(super) struct Index {
    /// Elements in the dataset.
    pub len: usize,
    /// Element type on disk.
    pub stored: StoredType,
    /// Placement of the bytes.
    pub layout: Layout,
}

/// Takes the storage map of `ds`, or `None` when its bytes must go through HDF5: not 1-D,
/// compact, external or virtual storage, a non-zero or undefined fill value, partial edge chunks
/// stored unfiltered, elements other than plain integers and IEEE floats, or a file opened for
/// writing (whose latest bytes may still sit in HDF5's caches).
pub(super) fn take(ds: &Dataset) -> Option<Index> {
    let shape = ds.shape();
    if shape.len() != 1 {
        return None;
    }
    let len = shape[0];
    let id = ds.id();
    // SAFETY: HDF5 calls on an open dataset id under the library lock; every id opened here is
    // closed before returning, and every out-pointer points at a live local of the right type.
    hdf5::sync::sync(|| unsafe {
        if !read_only(id) {
            return None;
        }
        let stored = stored_type(id)?;
        let dcpl = hdf5_sys::h5d::H5Dget_create_plist(id);
        if dcpl < 0 {
            return None;
        }
        let layout = layout(id, dcpl, len, stored.size);
        hdf5_sys::h5p::H5Pclose(dcpl);
        Some(Index {
            len,
            stored,
            layout: layout?,
        })
    })
}

/// True when the file holding `id` was opened read-only.
unsafe fn read_only(id: hid_t) -> bool {
    let fid = hdf5_sys::h5i::H5Iget_file_id(id);
    if fid < 0 {
        return false;
    }
    let mut intent: c_uint = 0;
    let ok = hdf5_sys::h5f::H5Fget_intent(fid, &mut intent) >= 0;
    hdf5_sys::h5f::H5Fclose(fid);
    ok && intent & hdf5_sys::h5f::H5F_ACC_RDWR == 0
}

/// The element type of dataset `id`, when it is a plain integer or an IEEE float.
unsafe fn stored_type(id: hid_t) -> Option<StoredType> {
    let tid = hdf5_sys::h5d::H5Dget_type(id);
    if tid < 0 {
        return None;
    }
    let t = describe_type(tid);
    hdf5_sys::h5t::H5Tclose(tid);
    t
}

unsafe fn describe_type(tid: hid_t) -> Option<StoredType> {
    use hdf5_sys::h5t::*;
    let size = H5Tget_size(tid);
    let big_endian = match H5Tget_order(tid) {
        H5T_order_t::H5T_ORDER_LE => false,
        H5T_order_t::H5T_ORDER_BE => true,
        _ => return None,
    };
    if H5Tget_offset(tid) != 0 || H5Tget_precision(tid) != size * 8 {
        return None;
    }
    let kind = match H5Tget_class(tid) {
        H5T_class_t::H5T_INTEGER if matches!(size, 1 | 2 | 4 | 8) => match H5Tget_sign(tid) {
            H5T_sign_t::H5T_SGN_2 => Kind::Signed,
            H5T_sign_t::H5T_SGN_NONE => Kind::Unsigned,
            _ => return None,
        },
        H5T_class_t::H5T_FLOAT => {
            // Only the IEEE layouts: sign bit on top, then exponent, then mantissa.
            let (ebits, mbits, bias) = match size {
                4 => (8, 23, 127),
                8 => (11, 52, 1023),
                _ => return None,
            };
            let (mut spos, mut epos, mut esize, mut mpos, mut msize) = (0, 0, 0, 0, 0);
            if H5Tget_fields(tid, &mut spos, &mut epos, &mut esize, &mut mpos, &mut msize) < 0
                || (spos, epos, esize, mpos, msize) != (size * 8 - 1, mbits, ebits, 0, mbits)
                || H5Tget_ebias(tid) != bias
                || H5Tget_norm(tid) != H5T_norm_t::H5T_NORM_IMPLIED
            {
                return None;
            }
            Kind::Float
        }
        _ => return None,
    };
    Some(StoredType {
        kind,
        size,
        big_endian,
    })
}

/// True when unwritten storage reads as all-zero bytes.
unsafe fn zero_fill(id: hid_t, dcpl: hid_t, elem_size: usize) -> bool {
    let mut status = H5D_fill_value_t::H5D_FILL_VALUE_ERROR;
    if hdf5_sys::h5p::H5Pfill_value_defined(dcpl, &mut status) < 0 {
        return false;
    }
    match status {
        H5D_fill_value_t::H5D_FILL_VALUE_DEFAULT => true,
        H5D_fill_value_t::H5D_FILL_VALUE_USER_DEFINED => {
            let tid = hdf5_sys::h5d::H5Dget_type(id);
            if tid < 0 {
                return false;
            }
            let mut buf = [0u8; 8];
            let ok = hdf5_sys::h5t::H5Tget_size(tid) == elem_size
                && elem_size <= buf.len()
                && hdf5_sys::h5p::H5Pget_fill_value(dcpl, tid, buf.as_mut_ptr().cast()) >= 0;
            hdf5_sys::h5t::H5Tclose(tid);
            ok && buf.iter().all(|&b| b == 0)
        }
        _ => false,
    }
}

unsafe fn layout(id: hid_t, dcpl: hid_t, len: usize, elem_size: usize) -> Option<Layout> {
    use hdf5_sys::h5p::*;
    if H5Pget_external_count(dcpl) != 0 || !zero_fill(id, dcpl, elem_size) {
        return None;
    }
    match H5Pget_layout(dcpl) {
        H5D_layout_t::H5D_CONTIGUOUS => {
            if H5Pget_nfilters(dcpl) != 0 {
                return None;
            }
            let addr: haddr_t = hdf5_sys::h5d::H5Dget_offset(id);
            Some(Layout::Contiguous((addr != HADDR_UNDEF).then_some(addr)))
        }
        H5D_layout_t::H5D_CHUNKED => {
            let mut dims: [hsize_t; 1] = [0];
            if H5Pget_chunk(dcpl, 1, dims.as_mut_ptr()) != 1 || dims[0] == 0 {
                return None;
            }
            let mut opts: c_uint = 0;
            if H5Pget_chunk_opts(dcpl, &mut opts) < 0
                || opts & hdf5_sys::h5d::H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS != 0
            {
                return None;
            }
            let chunk_len = usize::try_from(dims[0]).ok()?;
            chunk_len.checked_mul(elem_size)?;
            let mut walk = Walk {
                chunk_len: chunk_len as u64,
                n_chunks: len.div_ceil(chunk_len) as u64,
                chunks: Vec::new(),
                bad: false,
            };
            let rc = hdf5_sys::h5d::H5Dchunk_iter(
                id,
                hdf5_sys::h5p::H5P_DEFAULT,
                Some(visit),
                (&mut walk as *mut Walk).cast(),
            );
            walk.chunks.sort_unstable_by_key(|e| e.0);
            if rc < 0 || walk.bad || walk.chunks.windows(2).any(|w| w[0].0 == w[1].0) {
                return None;
            }
            Some(Layout::Chunked {
                chunk_len,
                chunks: ChunkMap {
                    entries: walk.chunks,
                },
            })
        }
        _ => None,
    }
}

/// The state [`visit`] fills while HDF5 walks the allocated chunks.
struct Walk {
    chunk_len: u64,
    /// Chunks of the extent.
    n_chunks: u64,
    /// (chunk number, location) of each allocated chunk, in HDF5's order.
    chunks: Vec<(u64, ChunkLoc)>,
    /// A chunk HDF5 listed that does not fit the extent.
    bad: bool,
}

/// `H5D_chunk_iter_op_t`: records one allocated chunk.
unsafe extern "C" fn visit(
    offset: *const hsize_t,
    filter_mask: c_uint,
    addr: haddr_t,
    size: hsize_t,
    op_data: *mut c_void,
) -> c_int {
    // SAFETY: `op_data` is the `Walk` passed to H5Dchunk_iter, and `offset` holds one
    // coordinate per dimension (one here).
    let walk = unsafe { &mut *op_data.cast::<Walk>() };
    let start = unsafe { *offset };
    let i = start / walk.chunk_len;
    if start % walk.chunk_len == 0 && i < walk.n_chunks && addr != HADDR_UNDEF {
        walk.chunks.push((
            i,
            ChunkLoc {
                addr,
                size,
                mask: filter_mask,
            },
        ));
    } else {
        walk.bad = true;
    }
    0
}
