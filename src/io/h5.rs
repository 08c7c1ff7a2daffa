//! Thin helpers over `hdf5-metno`: typed reads and writes with errors that name the file and element.
//!
//! Everything HDF5-specific that the element codecs need lives here, so the rest of `io` speaks in
//! [`NumVec`], strings and attributes.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hdf5::types::{
    FixedAscii, FixedUnicode, FloatSize, IntSize, TypeDescriptor, VarLenAscii, VarLenUnicode,
};
use hdf5::{Container, Dataset, Group, Location};

use super::array::{NumDtype, NumVec};
use super::filters;
use crate::error::{Error, Result};

/// The file path of an HDF5 object, for error messages.
pub(crate) fn file_of(loc: &Location) -> PathBuf {
    PathBuf::from(loc.filename())
}

/// The full element path of `child` under `loc` (`/obs/cell_line`).
pub(crate) fn child_path(loc: &Location, child: &str) -> String {
    let name = valid_utf8(loc.name());
    if name.ends_with('/') {
        format!("{name}{child}")
    } else {
        format!("{name}/{child}")
    }
}

/// Converts an `hdf5::Result` into ours, naming the element.
pub(crate) trait H5Context<T> {
    /// Attaches `element` of the file that `loc` lives in.
    fn at(self, loc: &Location, element: &str) -> Result<T>;
}

impl<T> H5Context<T> for hdf5::Result<T> {
    fn at(self, loc: &Location, element: &str) -> Result<T> {
        self.map_err(|e| Error::hdf5(&file_of(loc), child_path(loc, element), e))
    }
}

/// A format error on `child` of `loc`.
pub(crate) fn format_err(loc: &Location, child: &str, message: impl Into<String>) -> Error {
    Error::format(&file_of(loc), child_path(loc, child), message)
}

/// Opens an HDF5 file for reading, with a clear error for missing and non-HDF5 files. Registers
/// scoop's compression filters first.
pub(crate) fn open_read(path: &Path) -> Result<hdf5::File> {
    filters::register();
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::format(path, "/", "is a directory, not an HDF5 file"));
    }
    if !is_hdf5(path)? {
        return Err(Error::format(
            path,
            "/",
            "not an HDF5 file (no HDF5 signature)",
        ));
    }
    // No HDF5 file lock: scoop never writes its inputs, and a lock taken by another handle on
    // the file (e.g. an exclusive lock leaked into a child process through an inherited
    // descriptor) would otherwise make a plain read fail with "unable to lock file".
    hdf5::FileBuilder::new()
        .with_fapl(|p| p.file_locking(false))
        .open(path)
        .map_err(|e| Error::hdf5(path, "/", e))
}

/// True when the file starts with (or carries at a power-of-two offset) the HDF5 signature.
fn is_hdf5(path: &Path) -> Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    const SIG: &[u8; 8] = b"\x89HDF\r\n\x1a\n";
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut offset = 0u64;
    let mut buf = [0u8; 8];
    while offset + 8 <= len {
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io(path, e))?;
        f.read_exact(&mut buf).map_err(|e| Error::io(path, e))?;
        if &buf == SIG {
            return Ok(true);
        }
        offset = if offset == 0 { 512 } else { offset * 2 };
    }
    Ok(false)
}

/// What a dataset or attribute holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueKind {
    /// Numbers or booleans.
    Num(NumDtype),
    /// Strings, variable or fixed length.
    Str,
}

/// The kind of values `c` holds, or a format error for anything else (compound, references, ...).
pub(crate) fn value_kind(c: &Container, loc: &Location, element: &str) -> Result<ValueKind> {
    let desc = c.dtype().and_then(|t| t.to_descriptor()).at(loc, element)?;
    Ok(match desc {
        TypeDescriptor::Boolean => ValueKind::Num(NumDtype::Bool),
        TypeDescriptor::Integer(s) => ValueKind::Num(match s {
            IntSize::U1 => NumDtype::I8,
            IntSize::U2 => NumDtype::I16,
            IntSize::U4 => NumDtype::I32,
            IntSize::U8 => NumDtype::I64,
        }),
        TypeDescriptor::Unsigned(s) => ValueKind::Num(match s {
            IntSize::U1 => NumDtype::U8,
            IntSize::U2 => NumDtype::U16,
            IntSize::U4 => NumDtype::U32,
            IntSize::U8 => NumDtype::U64,
        }),
        TypeDescriptor::Float(FloatSize::U4) => ValueKind::Num(NumDtype::F32),
        TypeDescriptor::Float(FloatSize::U8) => ValueKind::Num(NumDtype::F64),
        TypeDescriptor::VarLenUnicode
        | TypeDescriptor::VarLenAscii
        | TypeDescriptor::FixedAscii(_)
        | TypeDescriptor::FixedUnicode(_) => ValueKind::Str,
        other => {
            return Err(format_err(
                loc,
                element,
                format!("unsupported HDF5 element type {other}"),
            ))
        }
    })
}

/// Reads all of `c` (`range` = `None`, the only way for attributes) or a 1-D slice of it.
fn read_vec<T: hdf5::H5Type>(c: &Container, range: Option<Range<usize>>) -> hdf5::Result<Vec<T>> {
    match range {
        None => c.read_raw::<T>(),
        Some(r) => c
            .as_reader()
            .read_slice_1d::<T, _>(r)
            .map(|a| a.into_raw_vec_and_offset().0),
    }
}

/// Reads `c` (a dataset, or an attribute when `range` is `None`) as typed numbers.
pub(crate) fn read_num(
    c: &Container,
    range: Option<Range<usize>>,
    loc: &Location,
    element: &str,
) -> Result<NumVec> {
    let ValueKind::Num(dtype) = value_kind(c, loc, element)? else {
        return Err(format_err(loc, element, "expected numbers, found strings"));
    };
    filters::check_decodable(c, loc, element)?;
    macro_rules! rd {
        ($t:ty, $var:ident) => {
            NumVec::$var(read_vec::<$t>(c, range.clone()).at(loc, element)?)
        };
    }
    Ok(match dtype {
        NumDtype::Bool => rd!(bool, Bool),
        NumDtype::I8 => rd!(i8, I8),
        NumDtype::I16 => rd!(i16, I16),
        NumDtype::I32 => rd!(i32, I32),
        NumDtype::I64 => rd!(i64, I64),
        NumDtype::U8 => rd!(u8, U8),
        NumDtype::U16 => rd!(u16, U16),
        NumDtype::U32 => rd!(u32, U32),
        NumDtype::U64 => rd!(u64, U64),
        NumDtype::F32 => rd!(f32, F32),
        NumDtype::F64 => rd!(f64, F64),
    })
}

/// Reads a dataset slice of numbers straight into a caller's buffer of type `T`, converting on the
/// HDF5 side (used by the CSR reader for indices/indptr/data).
pub(crate) fn read_into<T: hdf5::H5Type>(
    ds: &Dataset,
    range: Range<usize>,
    out: &mut Vec<T>,
    loc: &Location,
    element: &str,
) -> Result<()> {
    let arr = ds
        .as_reader()
        .read_slice_1d::<T, _>(range)
        .at(loc, element)?;
    *out = arr.into_raw_vec_and_offset().0;
    Ok(())
}

/// Reads strings from `c` (vlen or fixed length; UTF-8 or ASCII).
pub(crate) fn read_strings(
    c: &Container,
    range: Option<Range<usize>>,
    loc: &Location,
    element: &str,
) -> Result<Vec<String>> {
    let desc = c.dtype().and_then(|t| t.to_descriptor()).at(loc, element)?;
    filters::check_decodable(c, loc, element)?;
    macro_rules! rd {
        ($t:ty) => {
            read_vec::<$t>(c, range.clone())
                .at(loc, element)?
                .iter()
                // Bytes, not `as_str`: a file's strings need not be valid UTF-8.
                .map(|s| String::from_utf8_lossy(s.as_bytes()).into_owned())
                .collect()
        };
    }
    Ok(match desc {
        TypeDescriptor::VarLenUnicode => rd!(VarLenUnicode),
        TypeDescriptor::VarLenAscii => rd!(VarLenAscii),
        TypeDescriptor::FixedAscii(n) if n <= 1024 => rd!(FixedAscii<1024>),
        TypeDescriptor::FixedUnicode(n) if n <= 4096 => rd!(FixedUnicode<4096>),
        other => {
            return Err(format_err(
                loc,
                element,
                format!("expected strings, found {other}"),
            ))
        }
    })
}

/// Converts Rust strings to HDF5 vlen UTF-8 strings (NUL bytes are rejected by HDF5).
pub(crate) fn to_vlen(
    values: &[String],
    loc: &Location,
    element: &str,
) -> Result<Vec<VarLenUnicode>> {
    values
        .iter()
        .map(|s| {
            VarLenUnicode::from_str(s)
                .map_err(|_| format_err(loc, element, format!("string {s:?} contains a NUL byte")))
        })
        .collect()
}

/// Reads a string attribute; `None` when absent.
pub(crate) fn attr_str(loc: &Location, name: &str) -> Result<Option<String>> {
    if !loc.attr_names().at(loc, name)?.iter().any(|n| n == name) {
        return Ok(None);
    }
    let attr = loc.attr(name).at(loc, name)?;
    let elem = format!("@{name}");
    let values = read_strings(&attr, None, loc, &elem)?;
    match values.len() {
        1 => Ok(values.into_iter().next()),
        n => Err(format_err(
            loc,
            &elem,
            format!("expected one string, found {n}"),
        )),
    }
}

/// Reads a string-array attribute (an empty numeric array reads as no strings); `None` when absent.
pub(crate) fn attr_strs(loc: &Location, name: &str) -> Result<Option<Vec<String>>> {
    if !loc.attr_names().at(loc, name)?.iter().any(|n| n == name) {
        return Ok(None);
    }
    let attr = loc.attr(name).at(loc, name)?;
    let elem = format!("@{name}");
    match value_kind(&attr, loc, &elem)? {
        ValueKind::Str => read_strings(&attr, None, loc, &elem).map(Some),
        ValueKind::Num(_) if attr.size() == 0 => Ok(Some(Vec::new())),
        ValueKind::Num(_) => Err(format_err(loc, &elem, "expected strings, found numbers")),
    }
}

/// Reads a numeric attribute as f64 values; `None` when absent.
pub(crate) fn attr_f64s(loc: &Location, name: &str) -> Result<Option<Vec<f64>>> {
    if !loc.attr_names().at(loc, name)?.iter().any(|n| n == name) {
        return Ok(None);
    }
    let attr = loc.attr(name).at(loc, name)?;
    Ok(Some(
        read_num(&attr, None, loc, &format!("@{name}"))?.to_f64(),
    ))
}

/// Writes a scalar vlen UTF-8 string attribute (as h5py/anndata do).
pub(crate) fn set_attr_str(loc: &Location, name: &str, value: &str) -> Result<()> {
    let v = to_vlen(&[value.to_string()], loc, name)?;
    loc.new_attr::<VarLenUnicode>()
        .shape(())
        .create(name)
        .and_then(|a| a.write_scalar(&v[0]))
        .at(loc, &format!("@{name}"))
}

/// Writes a string-array attribute; an empty list is written as float64[0], as anndata does.
pub(crate) fn set_attr_strs(loc: &Location, name: &str, values: &[String]) -> Result<()> {
    let elem = format!("@{name}");
    if values.is_empty() {
        return loc
            .new_attr::<f64>()
            .shape([0])
            .create(name)
            .map(|_| ())
            .at(loc, &elem);
    }
    let v = to_vlen(values, loc, name)?;
    loc.new_attr::<VarLenUnicode>()
        .shape([v.len()])
        .create(name)
        .and_then(|a| a.write_raw(&v))
        .at(loc, &elem)
}

/// Writes an int64 array attribute (`shape`).
pub(crate) fn set_attr_i64s(loc: &Location, name: &str, values: &[i64]) -> Result<()> {
    loc.new_attr::<i64>()
        .shape([values.len()])
        .create(name)
        .and_then(|a| a.write_raw(values))
        .at(loc, &format!("@{name}"))
}

/// Writes a scalar boolean attribute (HDF5 enum over int8, like numpy bools through h5py).
pub(crate) fn set_attr_bool(loc: &Location, name: &str, value: bool) -> Result<()> {
    loc.new_attr::<bool>()
        .shape(())
        .create(name)
        .and_then(|a| a.write_scalar(&value))
        .at(loc, &format!("@{name}"))
}

/// Writes `encoding-type` and `encoding-version`.
pub(crate) fn set_encoding(loc: &Location, kind: &str, version: &str) -> Result<()> {
    set_attr_str(loc, "encoding-type", kind)?;
    set_attr_str(loc, "encoding-version", version)
}

/// Writes a numeric dataset of the given shape, contiguous (as anndata writes plain arrays).
pub(crate) fn write_num(
    group: &Group,
    name: &str,
    values: &NumVec,
    shape: &[usize],
) -> Result<Dataset> {
    macro_rules! wr {
        ($v:expr) => {{
            let arr = ndarray::ArrayView::from_shape(ndarray::IxDyn(shape), $v.as_slice())
                .map_err(|e| format_err(group, name, format!("shape {shape:?}: {e}")))?;
            group
                .new_dataset_builder()
                .with_data(arr)
                .create(name)
                .at(group, name)
        }};
    }
    crate::with_numvec!(values, v => wr!(v))
}

/// Writes a numeric scalar (0-d) dataset.
pub(crate) fn write_num_scalar(group: &Group, name: &str, value: &NumVec) -> Result<Dataset> {
    write_num(group, name, value, &[])
}

/// Writes a 1-D vlen UTF-8 string dataset.
pub(crate) fn write_strings(
    group: &Group,
    name: &str,
    values: &[String],
    shape: &[usize],
) -> Result<Dataset> {
    let v = to_vlen(values, group, name)?;
    let arr = ndarray::ArrayView::from_shape(ndarray::IxDyn(shape), v.as_slice())
        .map_err(|e| format_err(group, name, format!("shape {shape:?}: {e}")))?;
    group
        .new_dataset_builder()
        .with_data(arr)
        .create(name)
        .at(group, name)
}

/// A resizable 1-D dataset grown by appending slices (streamed writes).
pub(crate) struct Appender {
    ds: Dataset,
    len: usize,
    name: String,
}

impl Appender {
    /// Creates an empty resizable chunked dataset of `T` named `name`, uncompressed (compressed
    /// datasets are written by [`super::chunk_writer::ChunkWriter`]).
    pub(crate) fn create<T: hdf5::H5Type>(group: &Group, name: &str, chunk: usize) -> Result<Self> {
        let ds = group
            .new_dataset::<T>()
            .chunk(chunk.max(1))
            .shape(0..)
            .create(name)
            .at(group, name)?;
        Ok(Appender {
            ds,
            len: 0,
            name: name.to_string(),
        })
    }

    /// Appends values at the end.
    pub(crate) fn append<T: hdf5::H5Type>(&mut self, values: &[T]) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        let new_len = self.len + values.len();
        let loc: &Location = &self.ds;
        self.ds.resize(new_len).at(loc, "")?;
        self.ds.write_slice(values, self.len..new_len).at(loc, "")?;
        self.len = new_len;
        Ok(())
    }

    /// Elements written so far.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The dataset's name in its group.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The dataset.
    pub(crate) fn dataset(&self) -> &Dataset {
        &self.ds
    }
}

/// Names of a group's children, in HDF5's (alphabetical) order.
pub(crate) fn members(group: &Group) -> Result<Vec<String>> {
    let names = group.member_names().at(group, "")?;
    Ok(names.into_iter().map(valid_utf8).collect())
}

/// `s` with invalid UTF-8 replaced by U+FFFD: hdf5 builds names from a file's bytes unchecked.
pub(crate) fn valid_utf8(s: String) -> String {
    match String::from_utf8_lossy(s.as_bytes()) {
        std::borrow::Cow::Borrowed(_) => s,
        std::borrow::Cow::Owned(fixed) => fixed,
    }
}

/// True when `name` is a child group of `group`.
pub(crate) fn is_group(group: &Group, name: &str) -> bool {
    group.link_exists(name) && group.group(name).is_ok()
}

/// Where an external link points: the file name as stored in the link (a relative name is
/// resolved against the linking file's directory) and the element path inside that file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalLink {
    /// The target file's name, as stored.
    pub file: String,
    /// The element's path in the target file.
    pub element: String,
}

/// The target of `name` under `group` when it is an HDF5 external link; `None` for any other
/// link, or when there is no such link.
pub(crate) fn external_link(group: &Group, name: &str) -> Option<ExternalLink> {
    use hdf5_sys::h5l::{H5L_info2_t, H5L_type_t, H5Lget_info2, H5Lget_val, H5Lunpack_elink_val};
    use std::ffi::{CStr, CString};
    let c_name = CString::new(name).ok()?;
    // SAFETY: the group id is open for the call, the name is NUL-terminated, the value buffer
    // holds the `val_size` bytes HDF5 reports, and the unpacked strings point into that buffer,
    // which outlives their copies; the calls run under hdf5-metno's global lock.
    hdf5::sync::sync(|| unsafe {
        if hdf5_sys::h5l::H5Lexists(group.id(), c_name.as_ptr(), hdf5_sys::h5p::H5P_DEFAULT) <= 0 {
            return None;
        }
        let mut info = H5L_info2_t::default();
        if H5Lget_info2(
            group.id(),
            c_name.as_ptr(),
            &mut info,
            hdf5_sys::h5p::H5P_DEFAULT,
        ) < 0
            || info.type_ != H5L_type_t::H5L_TYPE_EXTERNAL
        {
            return None;
        }
        let size = *info.u.val_size();
        let mut buf = vec![0u8; size];
        if H5Lget_val(
            group.id(),
            c_name.as_ptr(),
            buf.as_mut_ptr().cast(),
            size,
            hdf5_sys::h5p::H5P_DEFAULT,
        ) < 0
        {
            return None;
        }
        let (mut flags, mut file, mut element) = (0, std::ptr::null(), std::ptr::null());
        if H5Lunpack_elink_val(
            buf.as_ptr().cast(),
            size,
            &mut flags,
            &mut file,
            &mut element,
        ) < 0
            || file.is_null()
            || element.is_null()
        {
            return None;
        }
        Some(ExternalLink {
            file: CStr::from_ptr(file).to_string_lossy().into_owned(),
            element: CStr::from_ptr(element).to_string_lossy().into_owned(),
        })
    })
}

/// Creates `name` under `group` as an HDF5 external link to element `element` of the file
/// named `file` (a relative name resolves against the linking file's directory when read). The
/// target need not exist yet.
pub(crate) fn link_external(group: &Group, name: &str, file: &str, element: &str) -> Result<()> {
    group.link_external(file, element, name).at(group, name)
}

/// Copies element `name` of `src` (a whole group or dataset, attributes included) to `dst` under
/// the same name, inside HDF5 (no decoding): how steps carry over what they do not change.
pub(crate) fn copy_object(src: &Group, name: &str, dst: &Group) -> Result<()> {
    use std::ffi::CString;
    let c_name =
        CString::new(name).map_err(|_| format_err(src, name, "element name holds a NUL byte"))?;
    // SAFETY: both ids are open objects owned by the `Group`s borrowed for the call, the names are
    // NUL-terminated, and the call runs under hdf5-metno's global lock like its own calls.
    let failed = hdf5::sync::sync(|| unsafe {
        let status = hdf5_sys::h5o::H5Ocopy(
            src.id(),
            c_name.as_ptr(),
            dst.id(),
            c_name.as_ptr(),
            hdf5_sys::h5p::H5P_DEFAULT,
            hdf5_sys::h5p::H5P_DEFAULT,
        );
        (status < 0).then(hdf5::Error::query)
    });
    if let Some(err) = failed {
        // A failed write (no space, ...) is the output's error; anything else the element's.
        if let Ok(err) = err {
            if let e @ Error::Io { .. } = Error::hdf5(&file_of(dst), child_path(dst, name), err) {
                return Err(e);
            }
        }
        return Err(format_err(
            src,
            name,
            format!(
                "could not copy it into {}",
                super::output::visible_path(&file_of(dst)).display()
            ),
        ));
    }
    Ok(())
}

/// Flushes and closes an output file written at `path`, closing first every handle still open
/// on it (groups, datasets, ...; their Rust owners then find them invalid and do nothing).
///
/// HDF5 frees a dataset even when its close fails (the flush of its cached data), yet keeps its
/// id, so a later close of that id crashes. Hence the flush comes first, alone: when it fails
/// (a full disk), nothing is closed and the file's handles are left open, so no id is ever
/// closed twice; when it succeeds, nothing is left to write and the closes cannot fail that way.
pub(crate) fn close_output(file: hdf5::File, path: &Path) -> Result<()> {
    use hdf5_sys::h5f::{
        H5Fget_obj_count, H5Fget_obj_ids, H5F_OBJ_ATTR, H5F_OBJ_DATASET, H5F_OBJ_DATATYPE,
        H5F_OBJ_GROUP, H5F_OBJ_LOCAL,
    };
    use hdf5_sys::h5i::{H5Idec_ref, H5Iis_valid};
    if let Err(e) = file.flush() {
        std::mem::forget(file);
        return Err(Error::hdf5(path, "/", e));
    }
    let id = file.id();
    let types = H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR | H5F_OBJ_LOCAL;
    hdf5::sync::sync(|| {
        // SAFETY: `id` is the open file's; the buffer holds as many ids as the count says.
        unsafe {
            let n = H5Fget_obj_count(id, types);
            if n <= 0 {
                return;
            }
            let mut ids = vec![0 as hdf5_sys::h5i::hid_t; n as usize];
            let got = H5Fget_obj_ids(id, types, ids.len(), ids.as_mut_ptr());
            for &oid in &ids[..got.max(0) as usize] {
                while H5Iis_valid(oid) > 0 {
                    if H5Idec_ref(oid) < 0 {
                        break;
                    }
                }
            }
        }
    });
    file.close().map_err(|e| Error::hdf5(path, "/", e))
}
