//! HDF5 compression filters: which ones scoop decodes, how a dataset's pipeline reads in words,
//! and the codec scoop writes with.
//!
//! Decoded through the normal HDF5 path, in every element: deflate (gzip), shuffle, fletcher32,
//! nbit and scale-offset (built into HDF5); lzf (32000) and blosc (32001, with its blosclz, lz4,
//! lz4hc, zlib and zstd codecs) registered by `hdf5-metno`; zstd (32015) and bitshuffle (32008,
//! alone or with lz4 or zstd) registered here. [`register`] makes them all known to HDF5 and turns
//! off HDF5's loading of filter plugins from disk, so a filter outside this list is reported by
//! [`check_decodable`] as one clear error instead of a failed search of a build directory.

mod bitshuffle;
mod codec;
pub(crate) mod deflate;
mod encode;
mod zstd;

use std::ffi::{c_char, c_uint, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Once;

use hdf5::Location;
use hdf5_sys::h5::herr_t;
use hdf5_sys::h5i::{hid_t, H5I_type_t};
use hdf5_sys::h5z::{H5Z_class2_t, H5Z_filter_t, H5Z_FILTER_CONFIG_DECODE_ENABLED};

pub use codec::Codec;
pub(crate) use deflate::inflate;
pub(crate) use encode::{encode_chunk, EncodedChunk};

use crate::error::{Error, Result};

/// HDF5's built-in filter ids and the registered ids of the filters scoop names.
pub mod id {
    /// gzip (deflate), built into HDF5.
    pub const DEFLATE: i32 = 1;
    /// Byte shuffle, built into HDF5.
    pub const SHUFFLE: i32 = 2;
    /// Fletcher-32 checksum, built into HDF5.
    pub const FLETCHER32: i32 = 3;
    /// szip (not in scoop's HDF5 build).
    pub const SZIP: i32 = 4;
    /// N-bit packing, built into HDF5.
    pub const NBIT: i32 = 5;
    /// Scale-offset, built into HDF5.
    pub const SCALEOFFSET: i32 = 6;
    /// bzip2 (hdf5plugin; not in scoop).
    pub const BZIP2: i32 = 307;
    /// lzf (h5py's built-in alternative to gzip).
    pub const LZF: i32 = 32000;
    /// blosc 1 (hdf5plugin, PyTables).
    pub const BLOSC: i32 = 32001;
    /// LZ4 (hdf5plugin; not in scoop).
    pub const LZ4: i32 = 32004;
    /// bitshuffle, alone or with LZ4 or zstd (hdf5plugin).
    pub const BITSHUFFLE: i32 = 32008;
    /// Zstandard (hdf5plugin).
    pub const ZSTD: i32 = 32015;
}

/// Names of filter ids HDF5's registry lists, for messages about filters scoop does not have.
const KNOWN_NAMES: &[(i32, &str)] = &[
    (id::DEFLATE, "gzip"),
    (id::SHUFFLE, "shuffle"),
    (id::FLETCHER32, "fletcher32"),
    (id::SZIP, "szip"),
    (id::NBIT, "nbit"),
    (id::SCALEOFFSET, "scaleoffset"),
    (id::BZIP2, "bzip2"),
    (id::LZF, "lzf"),
    (id::BLOSC, "blosc"),
    (id::LZ4, "lz4"),
    (id::BITSHUFFLE, "bitshuffle"),
    (32013, "zfp"),
    (id::ZSTD, "zstd"),
    (32017, "sz"),
    (32018, "fcidecomp"),
    (32024, "sz3"),
    (32026, "blosc2"),
    (32028, "sperr"),
    (32029, "htj2k"),
];

/// Blosc's compressor codes (`cd_values[6]`), with whether scoop's blosc decodes them.
const BLOSC_CODECS: &[(u32, &str, bool)] = &[
    (0, "blosclz", true),
    (1, "lz4", true),
    (2, "lz4hc", true),
    (3, "snappy", false),
    (4, "zlib", true),
    (5, "zstd", true),
];

// HDF5's plugin control, declared with its C signature (a mask passed by value).
extern "C" {
    fn H5PLset_loading_state(plugin_control_mask: c_uint) -> herr_t;
}

/// Registers every filter scoop decodes with HDF5 and disables loading filter plugins from disk.
///
/// Idempotent and cheap after the first call; scoop calls it before it opens or creates a file.
/// Runs under `hdf5-metno`'s lock, after the library's own initialisation (which registers lzf
/// and blosc).
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        hdf5::sync::sync(|| {
            // SAFETY: plain HDF5 calls under the library lock; the class structs are 'static and
            // HDF5 copies them.
            unsafe {
                H5PLset_loading_state(0);
                for class in [zstd::CLASS, bitshuffle::CLASS] {
                    hdf5_sys::h5z::H5Zregister((class as *const H5Z_class2_t).cast());
                }
            }
        });
    });
}

/// One filter of a dataset's pipeline, as the file stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterSpec {
    /// Registered filter id (1 = deflate, 32015 = zstd, ...).
    pub id: i32,
    /// The filter's parameters (`cd_values`).
    pub cd_values: Vec<u32>,
    /// The name the writer stored with the filter (may be empty).
    pub name: String,
}

impl FilterSpec {
    /// A short name for the filter: its usual name for known ids, else the stored name.
    pub fn short_name(&self) -> String {
        if let Some((_, n)) = KNOWN_NAMES.iter().find(|(i, _)| *i == self.id) {
            return (*n).to_string();
        }
        match self.name.split_whitespace().next() {
            Some(n) => n.trim_end_matches([';', ',', ':']).to_string(),
            None => "unnamed".to_string(),
        }
    }

    /// Why scoop cannot decode this filter, or `None` when it can.
    fn unsupported(&self) -> Option<String> {
        // SAFETY: plain HDF5 queries under the library lock.
        let decodable = hdf5::sync::sync(|| unsafe {
            if hdf5_sys::h5z::H5Zfilter_avail(self.id) <= 0 {
                return false;
            }
            let mut flags: c_uint = 0;
            hdf5_sys::h5z::H5Zget_filter_info(self.id, &mut flags) >= 0
                && flags & H5Z_FILTER_CONFIG_DECODE_ENABLED != 0
        });
        if !decodable {
            return Some(format!("HDF5 filter {} ({})", self.id, self.short_name()));
        }
        match self.id {
            id::BLOSC => {
                let code = self.cd_values.get(6).copied().unwrap_or(0);
                match BLOSC_CODECS.iter().find(|(c, _, _)| *c == code) {
                    Some((_, _, true)) => None,
                    Some((_, name, false)) => Some(format!("HDF5 filter 32001 (blosc {name})")),
                    None => Some(format!("HDF5 filter 32001 (blosc compressor {code})")),
                }
            }
            id::BITSHUFFLE => match self.cd_values.get(4).copied().unwrap_or(0) {
                0 | bitshuffle::LZ4 | bitshuffle::ZSTD => None,
                other => Some(format!("HDF5 filter 32008 (bitshuffle compressor {other})")),
            },
            _ => None,
        }
    }

    /// The filter in words ("gzip level 4", "blosc zstd level 5 + bitshuffle"), and whether it
    /// compresses (as opposed to a transform or checksum applied beside a compressor).
    fn words(&self) -> (String, bool) {
        let cd = |i: usize| self.cd_values.get(i).copied();
        match self.id {
            id::DEFLATE => (format!("gzip level {}", cd(0).unwrap_or(0)), true),
            id::SHUFFLE => ("shuffle".into(), false),
            id::FLETCHER32 => ("fletcher32".into(), false),
            id::SZIP => ("szip".into(), true),
            id::NBIT => ("nbit".into(), true),
            id::SCALEOFFSET => ("scaleoffset".into(), true),
            id::LZF => ("lzf".into(), true),
            id::BLOSC => {
                let code = cd(6).unwrap_or(0);
                let codec = BLOSC_CODECS
                    .iter()
                    .find(|(c, _, _)| *c == code)
                    .map_or_else(|| format!("compressor {code}"), |(_, n, _)| n.to_string());
                let shuffle = match cd(5).unwrap_or(1) {
                    0 => "",
                    2 => " + bitshuffle",
                    _ => " + shuffle",
                };
                let level = cd(4).unwrap_or(5);
                (format!("blosc {codec} level {level}{shuffle}"), true)
            }
            id::BITSHUFFLE => match cd(4).unwrap_or(0) {
                bitshuffle::LZ4 => ("bitshuffle lz4".into(), true),
                bitshuffle::ZSTD => {
                    let level = cd(5).map_or(3, |l| l as i32);
                    (format!("bitshuffle zstd level {level}"), true)
                }
                _ => ("bitshuffle".into(), false),
            },
            id::ZSTD => {
                let level = cd(0).map_or(3, |l| l as i32);
                (format!("zstd level {level}"), true)
            }
            other => (format!("filter {other} ({})", self.short_name()), true),
        }
    }
}

/// The filter pipeline of the dataset `ds_id`, in the order the writer applied it.
fn pipeline_of(ds_id: hid_t) -> Option<Vec<FilterSpec>> {
    // SAFETY: HDF5 calls under the library lock on an open dataset id; the property list opened
    // here is closed before returning, and the buffers passed are as long as the sizes given.
    hdf5::sync::sync(|| unsafe {
        let dcpl = hdf5_sys::h5d::H5Dget_create_plist(ds_id);
        if dcpl < 0 {
            return None;
        }
        let n = hdf5_sys::h5p::H5Pget_nfilters(dcpl);
        let mut out = Vec::with_capacity(n.max(0) as usize);
        for i in 0..n.max(0) {
            let mut flags: c_uint = 0;
            let mut cd = [0 as c_uint; 32];
            let mut n_cd = cd.len();
            let mut name = [0 as c_char; 257];
            let mut config: c_uint = 0;
            let fid: H5Z_filter_t = hdf5_sys::h5p::H5Pget_filter2(
                dcpl,
                i as c_uint,
                &mut flags,
                &mut n_cd,
                cd.as_mut_ptr(),
                name.len(),
                name.as_mut_ptr(),
                &mut config,
            );
            if fid < 0 {
                hdf5_sys::h5p::H5Pclose(dcpl);
                return None;
            }
            name[name.len() - 1] = 0;
            out.push(FilterSpec {
                id: fid,
                cd_values: cd[..n_cd.min(cd.len())].to_vec(),
                name: CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned(),
            });
        }
        hdf5_sys::h5p::H5Pclose(dcpl);
        Some(out)
    })
}

/// True when `id` names an HDF5 dataset (not an attribute).
fn is_dataset(id: hid_t) -> bool {
    // SAFETY: an identifier query under the library lock.
    hdf5::sync::sync(|| unsafe { hdf5_sys::h5i::H5Iget_type(id) }) == H5I_type_t::H5I_DATASET
}

/// The filter pipeline of dataset `ds`.
pub fn pipeline(ds: &hdf5::Dataset) -> Result<Vec<FilterSpec>> {
    pipeline_of(ds.id()).ok_or_else(|| {
        Error::format(
            Path::new(&ds.filename()),
            ds.name(),
            "could not read its filter pipeline",
        )
    })
}

/// A pipeline in words, compressors first: "gzip level 4 + shuffle", "zstd level 5",
/// "blosc zstd level 5 + bitshuffle", "bitshuffle lz4", "fletcher32"; `None` when unfiltered.
pub fn describe(pipeline: &[FilterSpec]) -> Option<String> {
    if pipeline.is_empty() {
        return None;
    }
    let words: Vec<(String, bool)> = pipeline.iter().map(FilterSpec::words).collect();
    let ordered: Vec<&str> = words
        .iter()
        .filter(|w| w.1)
        .chain(words.iter().filter(|w| !w.1))
        .map(|w| w.0.as_str())
        .collect();
    Some(ordered.join(" + "))
}

/// Fails with one line naming the file, the element and the filter when the dataset or attribute
/// `c` (element `element` of `loc`) is stored through a filter scoop cannot decode; reads no data.
pub(crate) fn check_decodable(c: &hdf5::Container, loc: &Location, element: &str) -> Result<()> {
    if !is_dataset(c.id()) {
        return Ok(());
    }
    let path = super::h5::child_path(loc, element);
    let file = super::h5::file_of(loc);
    let specs = pipeline_of(c.id())
        .ok_or_else(|| Error::format(&file, &path, "could not read its filter pipeline"))?;
    for spec in &specs {
        if let Some(what) = spec.unsupported() {
            return Err(Error::format(
                &file,
                &path,
                format!(
                    "stored with {what}, which scoop cannot decode; convert the file once with \
                     `h5repack -f NONE {} OUT.h5ad`, or read it in Python after \
                     `import hdf5plugin` and write it again with anndata (uncompressed, gzip or \
                     lzf)",
                    file.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Runs a filter body for HDF5: hands it the direction, parameters and input bytes, and on
/// success replaces HDF5's buffer with the output. Returns the output length, or 0 (HDF5's
/// failure value) when the body fails or panics.
///
/// # Safety
/// The arguments must be those HDF5 passes to an `H5Z_func_t`: `*buf` a `malloc`ed buffer
/// holding at least `nbytes` bytes, `cd_values` (when not null) `cd_nelmts` values.
pub(crate) unsafe fn run_filter(
    flags: c_uint,
    cd_nelmts: usize,
    cd_values: *const c_uint,
    nbytes: usize,
    buf_size: *mut usize,
    buf: *mut *mut std::ffi::c_void,
    body: impl FnOnce(bool, &[u32], &[u8]) -> std::result::Result<Vec<u8>, String>,
) -> usize {
    let cd: &[u32] = if cd_values.is_null() || cd_nelmts == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(cd_values, cd_nelmts)
    };
    let input: &[u8] = if nbytes == 0 {
        &[]
    } else {
        std::slice::from_raw_parts((*buf).cast::<u8>(), nbytes)
    };
    let decode = flags & hdf5_sys::h5z::H5Z_FLAG_REVERSE != 0;
    let out = match catch_unwind(AssertUnwindSafe(|| body(decode, cd, input))) {
        Ok(Ok(out)) if !out.is_empty() => out,
        _ => return 0,
    };
    let new = libc::malloc(out.len());
    if new.is_null() {
        return 0;
    }
    std::ptr::copy_nonoverlapping(out.as_ptr(), new.cast::<u8>(), out.len());
    libc::free(*buf);
    *buf = new;
    *buf_size = out.len();
    out.len()
}

/// Decodes one bitshuffle chunk (filter 32008) given the filter's parameters, as HDF5 would;
/// for readers that decode chunks outside HDF5.
pub(crate) fn decode_bitshuffle(cd: &[u32], input: &[u8]) -> std::result::Result<Vec<u8>, String> {
    bitshuffle::decode(cd, input)
}

/// One filter's chunk codec, as HDF5 runs it through [`filter_fn`].
pub(crate) trait ChunkCodec {
    /// Decodes (`decoding`) or encodes one chunk, given the filter's client data `cd`.
    fn run(decoding: bool, cd: &[u32], input: &[u8]) -> std::result::Result<Vec<u8>, String>;
}

/// The `H5Z_func_t` of codec `C`: [`run_filter`] over [`ChunkCodec::run`].
pub(crate) unsafe extern "C" fn filter_fn<C: ChunkCodec>(
    flags: c_uint,
    cd_nelmts: usize,
    cd_values: *const c_uint,
    nbytes: usize,
    buf_size: *mut usize,
    buf: *mut *mut std::ffi::c_void,
) -> usize {
    // SAFETY: HDF5 calls this as an H5Z_func_t, which is `run_filter`'s contract.
    unsafe { run_filter(flags, cd_nelmts, cd_values, nbytes, buf_size, buf, C::run) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: i32, cd: &[u32]) -> FilterSpec {
        FilterSpec {
            id,
            cd_values: cd.to_vec(),
            name: String::new(),
        }
    }

    #[test]
    fn describes_pipelines_compressor_first() {
        let d = |p: &[FilterSpec]| describe(p).unwrap();
        assert_eq!(d(&[spec(2, &[4]), spec(1, &[4])]), "gzip level 4 + shuffle");
        assert_eq!(d(&[spec(32000, &[4, 261, 4096])]), "lzf");
        assert_eq!(d(&[spec(32015, &[5])]), "zstd level 5");
        assert_eq!(
            d(&[spec(32001, &[2, 2, 4, 4096, 5, 2, 5])]),
            "blosc zstd level 5 + bitshuffle"
        );
        assert_eq!(
            d(&[spec(32001, &[2, 2, 4, 4096, 5, 1, 1])]),
            "blosc lz4 level 5 + shuffle"
        );
        assert_eq!(d(&[spec(32008, &[0, 4, 4, 0, 2])]), "bitshuffle lz4");
        assert_eq!(
            d(&[spec(32008, &[0, 4, 4, 0, 3, 7])]),
            "bitshuffle zstd level 7"
        );
        assert_eq!(
            d(&[spec(3, &[]), spec(1, &[6])]),
            "gzip level 6 + fletcher32"
        );
        assert_eq!(d(&[spec(3, &[])]), "fletcher32");
        assert_eq!(d(&[spec(32004, &[0])]), "filter 32004 (lz4)");
        assert_eq!(describe(&[]), None);
    }

    #[test]
    fn short_name_falls_back_to_the_stored_name() {
        let s = FilterSpec {
            id: 40000,
            cd_values: vec![],
            name: "myfilter; see https://example.org".into(),
        };
        assert_eq!(s.short_name(), "myfilter");
        assert_eq!(spec(40001, &[]).short_name(), "unnamed");
    }

    #[test]
    fn registered_filters_decode_and_unknown_ones_do_not() {
        register();
        for s in [
            spec(1, &[4]),
            spec(2, &[]),
            spec(3, &[]),
            spec(32000, &[]),
            spec(32001, &[2, 2, 4, 0, 5, 1, 5]),
            spec(32001, &[2, 2, 4, 0, 5, 2, 4]),
            spec(32008, &[0, 4, 4, 0, 3, 3]),
            spec(32015, &[3]),
        ] {
            assert_eq!(s.unsupported(), None, "{s:?}");
        }
        assert_eq!(
            spec(32004, &[]).unsupported().as_deref(),
            Some("HDF5 filter 32004 (lz4)")
        );
        assert_eq!(
            spec(307, &[9]).unsupported().as_deref(),
            Some("HDF5 filter 307 (bzip2)")
        );
        assert_eq!(
            spec(32001, &[2, 2, 4, 0, 5, 1, 3]).unsupported().as_deref(),
            Some("HDF5 filter 32001 (blosc snappy)")
        );
    }
}
