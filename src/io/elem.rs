//! Generic AnnData elements (`uns` values, `obsm`/`varm` arrays): read and written recursively.

use hdf5::Group;

use super::array::{DenseArray, NumVec};
use super::chunk::CsrChunk;
use super::csr::MatrixReader;
use super::dataframe::DataFrame;
use super::h5::{self, format_err, H5Context, ValueKind};
use crate::error::Result;

/// One AnnData element held in memory.
#[derive(Clone, Debug, PartialEq)]
pub enum Element {
    /// `dict`: named children, in the file's order.
    Dict(Vec<(String, Element)>),
    /// `array`: dense numeric (or bool) array.
    Array(DenseArray),
    /// `string-array`: strings with a shape.
    StringArray {
        /// Extent of each dimension.
        shape: Vec<usize>,
        /// Values in C order.
        values: Vec<String>,
    },
    /// `numeric-scalar` (bools included).
    Scalar(NumVec),
    /// `string`.
    String(String),
    /// `null`.
    Null,
    /// `dataframe`.
    DataFrame(DataFrame),
    /// `csr_matrix` (small matrices only: read whole).
    Csr(CsrChunk),
}

impl Element {
    /// anndata's encoding-type name of this element.
    pub fn encoding(&self) -> &'static str {
        match self {
            Element::Dict(_) => "dict",
            Element::Array(_) => "array",
            Element::StringArray { .. } => "string-array",
            Element::Scalar(_) => "numeric-scalar",
            Element::String(_) => "string",
            Element::Null => "null",
            Element::DataFrame(_) => "dataframe",
            Element::Csr(_) => "csr_matrix",
        }
    }

    /// Child `key` of a dict.
    pub fn get(&self, key: &str) -> Option<&Element> {
        match self {
            Element::Dict(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Reads element `name` of `parent`, whatever its encoding.
pub fn read_element(parent: &Group, name: &str) -> Result<Element> {
    if !parent.link_exists(name) {
        return Err(format_err(parent, name, "not found"));
    }
    if h5::is_group(parent, name) {
        let g = parent.group(name).at(parent, name)?;
        let enc = h5::attr_str(&g, "encoding-type")?;
        return match enc.as_deref() {
            // A group without encoding attrs is read as a dict, as anndata does for old files.
            Some("dict") | None => {
                let mut items = Vec::new();
                for child in h5::members(&g)? {
                    items.push((child.clone(), read_element(&g, &child)?));
                }
                Ok(Element::Dict(items))
            }
            Some("dataframe") => Ok(Element::DataFrame(DataFrame::read(parent, name)?)),
            Some("csr_matrix") => {
                let r = MatrixReader::open(parent, name)?;
                Ok(Element::Csr(r.read_rows(0..r.shape().0)?))
            }
            Some(other) => Err(format_err(
                parent,
                name,
                format!("unknown encoding-type {other:?}"),
            )),
        };
    }
    let ds = parent.dataset(name).at(parent, name)?;
    let enc = h5::attr_str(&ds, "encoding-type")?;
    let kind = h5::value_kind(&ds, parent, name)?;
    let shape = ds.shape();
    match (enc.as_deref(), kind) {
        (Some("null"), _) => Ok(Element::Null),
        (Some("string"), ValueKind::Str) => {
            let v = h5::read_strings(&ds, None, parent, name)?;
            Ok(Element::String(v.into_iter().next().unwrap_or_default()))
        }
        (Some("numeric-scalar"), ValueKind::Num(_)) => {
            Ok(Element::Scalar(h5::read_num(&ds, None, parent, name)?))
        }
        (None, ValueKind::Num(_)) if shape.is_empty() => {
            Ok(Element::Scalar(h5::read_num(&ds, None, parent, name)?))
        }
        (None, ValueKind::Str) if shape.is_empty() => {
            let v = h5::read_strings(&ds, None, parent, name)?;
            Ok(Element::String(v.into_iter().next().unwrap_or_default()))
        }
        (Some("array") | None, ValueKind::Num(_)) => Ok(Element::Array(DenseArray::new(
            shape,
            h5::read_num(&ds, None, parent, name)?,
        ))),
        (Some("string-array") | None, ValueKind::Str) => Ok(Element::StringArray {
            values: h5::read_strings(&ds, None, parent, name)?,
            shape,
        }),
        (Some(other), _) => Err(format_err(
            parent,
            name,
            format!("unknown encoding-type {other:?}"),
        )),
    }
}

/// Writes `elem` as element `name` of `parent`, with anndata's encoding attributes.
pub fn write_element(parent: &Group, name: &str, elem: &Element) -> Result<()> {
    match elem {
        Element::Dict(items) => {
            let g = parent.create_group(name).at(parent, name)?;
            h5::set_encoding(&g, "dict", "0.1.0")?;
            for (k, v) in items {
                write_element(&g, k, v)?;
            }
            Ok(())
        }
        Element::Array(a) => {
            let ds = h5::write_num(parent, name, &a.data, &a.shape)?;
            h5::set_encoding(&ds, "array", "0.2.0")
        }
        Element::StringArray { shape, values } => {
            let ds = h5::write_strings(parent, name, values, shape)?;
            h5::set_encoding(&ds, "string-array", "0.2.0")
        }
        Element::Scalar(v) => {
            let ds = h5::write_num_scalar(parent, name, v)?;
            h5::set_encoding(&ds, "numeric-scalar", "0.2.0")
        }
        Element::String(s) => {
            let ds = h5::write_strings(parent, name, std::slice::from_ref(s), &[])?;
            h5::set_encoding(&ds, "string", "0.2.0")
        }
        Element::Null => {
            let ds = parent
                .new_dataset::<u8>()
                .shape(())
                .create(name)
                .at(parent, name)?;
            // h5py writes an empty (H5S_NULL) dataset; a scalar placeholder carries the same encoding.
            h5::set_encoding(&ds, "null", "0.1.0")
        }
        Element::DataFrame(df) => df.write(parent, name),
        Element::Csr(c) => super::csr::write_csr(parent, name, c),
    }
}
