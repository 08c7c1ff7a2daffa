//! AnnData dataframes (`obs`, `var`): columns as anndata encodes them, read by row range and
//! written by appending row blocks, so a dataframe never has to be whole in memory.

use std::ops::Range;

use hdf5::Group;

use super::array::{NumDtype, NumVec};
use super::h5::{self, format_err, Appender, H5Context, ValueKind};
use crate::error::{Error, Result};

/// Categories of a categorical column.
#[derive(Clone, Debug, PartialEq)]
pub enum Categories {
    /// String categories (the usual case).
    Strings(Vec<String>),
    /// Numeric categories.
    Num(NumVec),
}

impl Categories {
    /// Number of categories.
    pub fn len(&self) -> usize {
        match self {
            Categories::Strings(v) => v.len(),
            Categories::Num(v) => v.len(),
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Category `i` as text.
    pub fn label(&self, i: usize) -> String {
        match self {
            Categories::Strings(v) => v[i].clone(),
            Categories::Num(v) => v.display(i),
        }
    }
}

/// The values of one column for a block of rows.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnValues {
    /// `array`: numbers or booleans.
    Array(NumVec),
    /// `string-array`.
    Strings(Vec<String>),
    /// `categorical`: codes (−1 = missing) into `categories`.
    Categorical {
        /// Code of each row; −1 is NaN.
        codes: Vec<i32>,
        /// The categories.
        categories: Categories,
        /// Whether the categories are ordered.
        ordered: bool,
    },
    /// `nullable-integer`.
    NullableInt {
        /// Values (0 where masked).
        values: NumVec,
        /// True where the value is missing.
        mask: Vec<bool>,
    },
    /// `nullable-boolean`.
    NullableBool {
        /// Values (false where masked).
        values: Vec<bool>,
        /// True where the value is missing.
        mask: Vec<bool>,
    },
    /// `nullable-string-array` (anndata ≥ 0.12; pandas 3's default for strings).
    NullableString {
        /// Values ("" where masked).
        values: Vec<String>,
        /// True where the value is missing.
        mask: Vec<bool>,
        /// How pandas spells the missing value (the element's `na-value`).
        na: StringNa,
    },
}

/// The missing value of a `nullable-string-array`, as its `na-value` attribute names it: pandas'
/// `pd.NA` (`StringDtype()`, the attribute's default) or NaN (pandas 3's default `str` dtype).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StringNa {
    /// `pd.NA` (`na-value = "NA"`).
    #[default]
    Na,
    /// `NaN` (`na-value = "NaN"`).
    NaN,
}

impl StringNa {
    /// The attribute's text.
    pub fn attr(self) -> &'static str {
        match self {
            StringNa::Na => "NA",
            StringNa::NaN => "NaN",
        }
    }
}

impl ColumnValues {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            ColumnValues::Array(v) => v.len(),
            ColumnValues::Strings(v) => v.len(),
            ColumnValues::Categorical { codes, .. } => codes.len(),
            ColumnValues::NullableInt { mask, .. }
            | ColumnValues::NullableBool { mask, .. }
            | ColumnValues::NullableString { mask, .. } => mask.len(),
        }
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// anndata's encoding-type name.
    pub fn encoding(&self) -> &'static str {
        match self {
            ColumnValues::Array(_) => "array",
            ColumnValues::Strings(_) => "string-array",
            ColumnValues::Categorical { .. } => "categorical",
            ColumnValues::NullableInt { .. } => "nullable-integer",
            ColumnValues::NullableBool { .. } => "nullable-boolean",
            ColumnValues::NullableString { .. } => "nullable-string-array",
        }
    }

    /// The rows at `rows`, in that order.
    pub fn take(&self, rows: &[usize]) -> ColumnValues {
        let pick = |m: &Vec<bool>| rows.iter().map(|&r| m[r]).collect::<Vec<bool>>();
        match self {
            ColumnValues::Array(v) => ColumnValues::Array(v.take(rows)),
            ColumnValues::Strings(v) => {
                ColumnValues::Strings(rows.iter().map(|&r| v[r].clone()).collect())
            }
            ColumnValues::Categorical {
                codes,
                categories,
                ordered,
            } => ColumnValues::Categorical {
                codes: rows.iter().map(|&r| codes[r]).collect(),
                categories: categories.clone(),
                ordered: *ordered,
            },
            ColumnValues::NullableInt { values, mask } => ColumnValues::NullableInt {
                values: values.take(rows),
                mask: pick(mask),
            },
            ColumnValues::NullableBool { values, mask } => ColumnValues::NullableBool {
                values: pick(values),
                mask: pick(mask),
            },
            ColumnValues::NullableString { values, mask, na } => ColumnValues::NullableString {
                values: rows.iter().map(|&r| values[r].clone()).collect(),
                mask: pick(mask),
                na: *na,
            },
        }
    }

    /// Row `i` as text ("NaN"/"`<NA>`" for missing values), as pandas would print it.
    pub fn display(&self, i: usize) -> String {
        match self {
            ColumnValues::Array(v) => v.display(i),
            ColumnValues::Strings(v) => v[i].clone(),
            ColumnValues::Categorical {
                codes, categories, ..
            } => {
                if codes[i] < 0 {
                    "NaN".into()
                } else {
                    categories.label(codes[i] as usize)
                }
            }
            ColumnValues::NullableInt { values, mask } => {
                if mask[i] {
                    "<NA>".into()
                } else {
                    values.display(i)
                }
            }
            ColumnValues::NullableBool { values, mask } => {
                if mask[i] {
                    "<NA>".into()
                } else {
                    values[i].to_string()
                }
            }
            ColumnValues::NullableString { values, mask, na } => {
                if mask[i] {
                    match na {
                        StringNa::Na => "<NA>".into(),
                        StringNa::NaN => "NaN".into(),
                    }
                } else {
                    values[i].clone()
                }
            }
        }
    }
}

/// A named column.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Its values.
    pub values: ColumnValues,
}

/// An AnnData dataframe (or a block of its rows).
#[derive(Clone, Debug, PartialEq)]
pub struct DataFrame {
    /// Name of the index dataset (`_index` unless the index was named).
    pub index_name: String,
    /// Row names.
    pub index: Vec<String>,
    /// Columns in `column-order`.
    pub columns: Vec<Column>,
}

impl DataFrame {
    /// A dataframe with only an index.
    pub fn with_index(index: Vec<String>) -> Self {
        DataFrame {
            index_name: "_index".into(),
            index,
            columns: Vec::new(),
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnValues> {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.values)
    }

    /// Adds (or replaces) a column.
    pub fn set_column(&mut self, name: &str, values: ColumnValues) {
        assert_eq!(values.len(), self.len(), "column {name}: length");
        match self.columns.iter_mut().find(|c| c.name == name) {
            Some(c) => c.values = values,
            None => self.columns.push(Column {
                name: name.into(),
                values,
            }),
        }
    }

    /// The rows at `rows`, in that order.
    pub fn take(&self, rows: &[usize]) -> DataFrame {
        DataFrame {
            index_name: self.index_name.clone(),
            index: rows.iter().map(|&r| self.index[r].clone()).collect(),
            columns: self
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    values: c.values.take(rows),
                })
                .collect(),
        }
    }

    /// Drops the categories no row uses from every categorical column, renumbering the codes
    /// (what anndata does when it copies a subset, e.g. `adata[:, genes].copy()`).
    pub fn remove_unused_categories(&mut self) {
        for c in &mut self.columns {
            if let ColumnValues::Categorical {
                codes, categories, ..
            } = &mut c.values
            {
                let mut used = vec![false; categories.len()];
                for &k in codes.iter().filter(|&&k| k >= 0) {
                    used[k as usize] = true;
                }
                if used.iter().all(|&u| u) {
                    continue;
                }
                let kept: Vec<usize> = (0..used.len()).filter(|&i| used[i]).collect();
                let mut new_code = vec![-1i32; used.len()];
                for (new, &old) in kept.iter().enumerate() {
                    new_code[old] = new as i32;
                }
                for k in codes.iter_mut().filter(|k| **k >= 0) {
                    *k = new_code[*k as usize];
                }
                *categories = match categories {
                    Categories::Strings(s) => {
                        Categories::Strings(kept.iter().map(|&i| s[i].clone()).collect())
                    }
                    Categories::Num(v) => Categories::Num(v.take(&kept)),
                };
            }
        }
    }

    /// Reads the whole dataframe stored at `name` in `parent`.
    pub fn read(parent: &Group, name: &str) -> Result<DataFrame> {
        let r = DataFrameReader::open(parent, name)?;
        r.read_rows(0..r.len())
    }

    /// Writes the dataframe as element `name` of `parent`.
    pub fn write(&self, parent: &Group, name: &str) -> Result<()> {
        let mut w = DataFrameWriter::create(parent, name, self)?;
        w.append(self)?;
        Ok(())
    }
}

/// Reads a stored dataframe by row ranges.
pub struct DataFrameReader {
    group: Group,
    index_name: String,
    columns: Vec<String>,
    len: usize,
}

impl DataFrameReader {
    /// Opens dataframe `name` of `parent`, checking its encoding and column lengths.
    pub fn open(parent: &Group, name: &str) -> Result<Self> {
        if !parent.link_exists(name) {
            return Err(format_err(parent, name, "not found"));
        }
        if !h5::is_group(parent, name) {
            return Err(format_err(
                parent,
                name,
                "a dataframe in anndata ≤ 0.6's layout (one compound dataset), which scoop does \
                 not read; write the file again with a current anndata \
                 (anndata.read_h5ad(IN).write_h5ad(OUT))",
            ));
        }
        let group = parent.group(name).at(parent, name)?;
        match h5::attr_str(&group, "encoding-type")?.as_deref() {
            Some("dataframe") => {}
            Some(other) => {
                return Err(format_err(
                    parent,
                    name,
                    format!("unknown encoding-type {other:?} (expected dataframe)"),
                ))
            }
            None => {
                return Err(format_err(
                    parent,
                    name,
                    "no encoding-type: not an AnnData dataframe",
                ))
            }
        }
        let index_name = h5::attr_str(&group, "_index")?
            .ok_or_else(|| format_err(&group, "@_index", "missing"))?;
        let columns = h5::attr_strs(&group, "column-order")?.unwrap_or_default();
        if !group.link_exists(&index_name) {
            return Err(format_err(&group, &index_name, "index dataset missing"));
        }
        let len = element_len(&group, &index_name)?;
        let r = DataFrameReader {
            group,
            index_name,
            columns,
            len,
        };
        for c in &r.columns {
            let n = r.column_len(c)?;
            if n != len {
                return Err(format_err(
                    &r.group,
                    c,
                    format!("has {n} rows, index has {len}"),
                ));
            }
        }
        Ok(r)
    }

    fn column_len(&self, name: &str) -> Result<usize> {
        if !self.group.link_exists(name) {
            return Err(format_err(
                &self.group,
                name,
                "listed in column-order but missing",
            ));
        }
        element_len(&self.group, name)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Column names in order.
    pub fn column_names(&self) -> &[String] {
        &self.columns
    }

    /// Reads rows `rows` of the index and every column.
    pub fn read_rows(&self, rows: Range<usize>) -> Result<DataFrame> {
        let index = read_index(&self.group, &self.index_name, rows.clone())?;
        let mut columns = Vec::with_capacity(self.columns.len());
        for name in &self.columns {
            columns.push(Column {
                name: name.clone(),
                values: self.read_column(name, rows.clone())?,
            });
        }
        Ok(DataFrame {
            index_name: self.index_name.clone(),
            index,
            columns,
        })
    }

    /// Reads rows `rows` of column `name`.
    pub fn read_column(&self, name: &str, rows: Range<usize>) -> Result<ColumnValues> {
        read_column(&self.group, name, rows)
    }
}

/// Rows of a column or index element: a dataset's length, or its group's `codes`/`values`.
fn element_len(group: &Group, name: &str) -> Result<usize> {
    if h5::is_group(group, name) {
        let g = group.group(name).at(group, name)?;
        let child = if g.link_exists("codes") {
            "codes"
        } else {
            "values"
        };
        Ok(g.dataset(child).at(&g, child)?.size())
    } else {
        Ok(group.dataset(name).at(group, name)?.size())
    }
}

/// Reads rows of the index as text: a `string-array` dataset (anndata < 0.13, or pandas 2), a
/// `nullable-string-array` group (anndata 0.13 under pandas 3; missing entries read as the ""
/// anndata stores for them), or numbers and categories as pandas prints them.
fn read_index(group: &Group, name: &str, rows: Range<usize>) -> Result<Vec<String>> {
    Ok(match read_column(group, name, rows)? {
        ColumnValues::Strings(s) | ColumnValues::NullableString { values: s, .. } => s,
        other => (0..other.len()).map(|i| other.display(i)).collect(),
    })
}

fn read_bools(g: &Group, name: &str, rows: Range<usize>) -> Result<Vec<bool>> {
    let ds = g.dataset(name).at(g, name)?;
    match h5::read_num(&ds, Some(rows), g, name)? {
        NumVec::Bool(b) => Ok(b),
        other => Err(format_err(
            g,
            name,
            format!("expected an HDF5 bool mask, found {}", other.dtype().name()),
        )),
    }
}

fn read_column(group: &Group, name: &str, rows: Range<usize>) -> Result<ColumnValues> {
    if !h5::is_group(group, name) {
        let ds = group.dataset(name).at(group, name)?;
        if ds
            .attr_names()
            .at(group, name)?
            .iter()
            .any(|a| a == "categories")
        {
            return Err(format_err(
                group,
                name,
                "categorical in anndata ≤ 0.7's layout (codes with a reference into \
                 __categories), which scoop does not read; write the file again with a current \
                 anndata (anndata.read_h5ad(IN).write_h5ad(OUT))",
            ));
        }
        let enc = h5::attr_str(&ds, "encoding-type")?;
        return match (enc.as_deref(), h5::value_kind(&ds, group, name)?) {
            (Some("array") | None, ValueKind::Num(_)) => Ok(ColumnValues::Array(h5::read_num(
                &ds,
                Some(rows),
                group,
                name,
            )?)),
            (Some("string-array") | None, ValueKind::Str) => Ok(ColumnValues::Strings(
                h5::read_strings(&ds, Some(rows), group, name)?,
            )),
            (Some(e), _) => Err(format_err(
                group,
                name,
                format!("unknown or mismatched encoding-type {e:?} for a column"),
            )),
        };
    }
    let g = group.group(name).at(group, name)?;
    let enc = h5::attr_str(&g, "encoding-type")?;
    match enc.as_deref() {
        Some("categorical") => {
            let ordered = h5::attr_f64s(&g, "ordered")?.is_some_and(|v| v.first() == Some(&1.0));
            let codes_ds = g.dataset("codes").at(&g, "codes")?;
            let codes_nv = h5::read_num(&codes_ds, Some(rows), &g, "codes")?;
            if !codes_nv.dtype().is_integer() {
                return Err(format_err(&g, "codes", "must be integers"));
            }
            let codes: Vec<i32> = codes_nv.to_f64().into_iter().map(|c| c as i32).collect();
            let cat_ds = g.dataset("categories").at(&g, "categories")?;
            let categories = match h5::value_kind(&cat_ds, &g, "categories")? {
                ValueKind::Str => {
                    Categories::Strings(h5::read_strings(&cat_ds, None, &g, "categories")?)
                }
                ValueKind::Num(_) => {
                    Categories::Num(h5::read_num(&cat_ds, None, &g, "categories")?)
                }
            };
            if let Some(bad) = codes
                .iter()
                .find(|&&c| c < -1 || c >= categories.len() as i32)
            {
                return Err(format_err(
                    &g,
                    "codes",
                    format!("code {bad} outside -1..{}", categories.len()),
                ));
            }
            Ok(ColumnValues::Categorical {
                codes,
                categories,
                ordered,
            })
        }
        Some("nullable-integer") => {
            let ds = g.dataset("values").at(&g, "values")?;
            let values = h5::read_num(&ds, Some(rows.clone()), &g, "values")?;
            let mask = read_bools(&g, "mask", rows)?;
            Ok(ColumnValues::NullableInt { values, mask })
        }
        Some("nullable-boolean") => {
            let values = read_bools(&g, "values", rows.clone())?;
            let mask = read_bools(&g, "mask", rows)?;
            Ok(ColumnValues::NullableBool { values, mask })
        }
        Some("nullable-string-array") => {
            let ds = g.dataset("values").at(&g, "values")?;
            let values = h5::read_strings(&ds, Some(rows.clone()), &g, "values")?;
            let mask = read_bools(&g, "mask", rows)?;
            let na = match h5::attr_str(&g, "na-value")?.as_deref() {
                None | Some("NA") => StringNa::Na,
                Some("NaN") => StringNa::NaN,
                Some(other) => {
                    return Err(format_err(
                        &g,
                        "@na-value",
                        format!("unknown na-value {other:?} (expected \"NA\" or \"NaN\")"),
                    ))
                }
            };
            Ok(ColumnValues::NullableString { values, mask, na })
        }
        Some(other) => Err(format_err(
            group,
            name,
            format!("unknown encoding-type {other:?} for a column"),
        )),
        None => Err(format_err(
            group,
            name,
            "column group without encoding-type",
        )),
    }
}

/// Smallest signed integer dtype that holds codes for `n` categories (pandas' rule).
fn code_dtype(n: usize) -> NumDtype {
    if n < i8::MAX as usize {
        NumDtype::I8
    } else if n < i16::MAX as usize {
        NumDtype::I16
    } else {
        NumDtype::I32
    }
}

enum ColumnSink {
    Num(Appender, NumDtype),
    Str(Appender),
    Cat(Appender, NumDtype),
    NullNum(Appender, Appender, NumDtype),
    NullBool(Appender, Appender),
    NullStr(Appender, Appender, StringNa),
}

const DF_CHUNK: usize = 1 << 16;

fn mark_arrays(a: &[&Appender]) -> Result<()> {
    a.iter()
        .try_for_each(|a| h5::set_encoding(a.dataset(), "array", "0.2.0"))
}

fn create_num(g: &Group, name: &str, dtype: NumDtype) -> Result<Appender> {
    match dtype {
        NumDtype::Bool => Appender::create::<bool>(g, name, DF_CHUNK),
        NumDtype::I8 => Appender::create::<i8>(g, name, DF_CHUNK),
        NumDtype::I16 => Appender::create::<i16>(g, name, DF_CHUNK),
        NumDtype::I32 => Appender::create::<i32>(g, name, DF_CHUNK),
        NumDtype::I64 => Appender::create::<i64>(g, name, DF_CHUNK),
        NumDtype::U8 => Appender::create::<u8>(g, name, DF_CHUNK),
        NumDtype::U16 => Appender::create::<u16>(g, name, DF_CHUNK),
        NumDtype::U32 => Appender::create::<u32>(g, name, DF_CHUNK),
        NumDtype::U64 => Appender::create::<u64>(g, name, DF_CHUNK),
        NumDtype::F32 => Appender::create::<f32>(g, name, DF_CHUNK),
        NumDtype::F64 => Appender::create::<f64>(g, name, DF_CHUNK),
    }
}

fn append_num(a: &mut Appender, v: &NumVec) -> Result<()> {
    crate::with_numvec!(v, x => a.append(x.as_slice()))
}

fn append_strs(a: &mut Appender, v: &[String]) -> Result<()> {
    let vl = h5::to_vlen(v, a.dataset(), "")?;
    a.append(&vl)
}

fn codes_as(codes: &[i32], dtype: NumDtype) -> NumVec {
    match dtype {
        NumDtype::I8 => NumVec::I8(codes.iter().map(|&c| c as i8).collect()),
        NumDtype::I16 => NumVec::I16(codes.iter().map(|&c| c as i16).collect()),
        _ => NumVec::I32(codes.to_vec()),
    }
}

/// Writes a dataframe by appending row blocks; the first block fixes the schema (column kinds,
/// dtypes and categories), and every later block must match it.
pub struct DataFrameWriter {
    group: Group,
    index: Appender,
    sinks: Vec<(String, ColumnSink)>,
    schema: DataFrame,
}

impl DataFrameWriter {
    /// Creates dataframe `name` in `parent` with the columns (and categories) of `schema`.
    pub fn create(parent: &Group, name: &str, schema: &DataFrame) -> Result<Self> {
        let group = parent.create_group(name).at(parent, name)?;
        h5::set_encoding(&group, "dataframe", "0.2.0")?;
        h5::set_attr_str(&group, "_index", &schema.index_name)?;
        let names: Vec<String> = schema.columns.iter().map(|c| c.name.clone()).collect();
        h5::set_attr_strs(&group, "column-order", &names)?;
        let index =
            Appender::create::<hdf5::types::VarLenUnicode>(&group, &schema.index_name, DF_CHUNK)?;
        h5::set_encoding(index.dataset(), "string-array", "0.2.0")?;
        let mut sinks = Vec::new();
        for c in &schema.columns {
            if c.name == schema.index_name {
                return Err(Error::InvalidArgument(format!(
                    "column {:?} has the index's name",
                    c.name
                )));
            }
            let n = c.name.as_str();
            let sink = match &c.values {
                ColumnValues::Array(v) => {
                    let a = create_num(&group, n, v.dtype())?;
                    h5::set_encoding(a.dataset(), "array", "0.2.0")?;
                    ColumnSink::Num(a, v.dtype())
                }
                ColumnValues::Strings(_) => {
                    let a = Appender::create::<hdf5::types::VarLenUnicode>(&group, n, DF_CHUNK)?;
                    h5::set_encoding(a.dataset(), "string-array", "0.2.0")?;
                    ColumnSink::Str(a)
                }
                ColumnValues::Categorical {
                    categories,
                    ordered,
                    ..
                } => {
                    let g = group.create_group(n).at(&group, n)?;
                    h5::set_encoding(&g, "categorical", "0.2.0")?;
                    h5::set_attr_bool(&g, "ordered", *ordered)?;
                    let ds = match categories {
                        Categories::Strings(s) => {
                            h5::write_strings(&g, "categories", s, &[s.len()])?
                        }
                        Categories::Num(v) => h5::write_num(&g, "categories", v, &[v.len()])?,
                    };
                    let enc = if matches!(categories, Categories::Strings(_)) {
                        "string-array"
                    } else {
                        "array"
                    };
                    h5::set_encoding(&ds, enc, "0.2.0")?;
                    let dt = code_dtype(categories.len());
                    let a = create_num(&g, "codes", dt)?;
                    h5::set_encoding(a.dataset(), "array", "0.2.0")?;
                    ColumnSink::Cat(a, dt)
                }
                ColumnValues::NullableInt { values, .. } => {
                    let g = group.create_group(n).at(&group, n)?;
                    h5::set_encoding(&g, "nullable-integer", "0.1.0")?;
                    let v = create_num(&g, "values", values.dtype())?;
                    let m = create_num(&g, "mask", NumDtype::Bool)?;
                    mark_arrays(&[&v, &m])?;
                    ColumnSink::NullNum(v, m, values.dtype())
                }
                ColumnValues::NullableBool { .. } => {
                    let g = group.create_group(n).at(&group, n)?;
                    h5::set_encoding(&g, "nullable-boolean", "0.1.0")?;
                    let v = create_num(&g, "values", NumDtype::Bool)?;
                    let m = create_num(&g, "mask", NumDtype::Bool)?;
                    mark_arrays(&[&v, &m])?;
                    ColumnSink::NullBool(v, m)
                }
                ColumnValues::NullableString { na, .. } => {
                    let g = group.create_group(n).at(&group, n)?;
                    h5::set_encoding(&g, "nullable-string-array", "0.1.0")?;
                    h5::set_attr_str(&g, "na-value", na.attr())?;
                    let v = Appender::create::<hdf5::types::VarLenUnicode>(&g, "values", DF_CHUNK)?;
                    let m = create_num(&g, "mask", NumDtype::Bool)?;
                    h5::set_encoding(v.dataset(), "string-array", "0.2.0")?;
                    mark_arrays(&[&m])?;
                    ColumnSink::NullStr(v, m, *na)
                }
            };
            sinks.push((c.name.clone(), sink));
        }
        let schema = schema.take(&[]);
        Ok(DataFrameWriter {
            group,
            index,
            sinks,
            schema,
        })
    }

    /// Appends a block of rows with the same columns, dtypes and categories as the schema.
    pub fn append(&mut self, block: &DataFrame) -> Result<()> {
        let mismatch = |what: &str| {
            Error::InvalidArgument(format!(
                "dataframe {}: appended block differs from schema: {what}",
                self.group.name()
            ))
        };
        if block.columns.len() != self.sinks.len() {
            return Err(mismatch("column count"));
        }
        append_strs(&mut self.index, &block.index)?;
        for ((name, sink), (col, proto)) in self
            .sinks
            .iter_mut()
            .zip(block.columns.iter().zip(&self.schema.columns))
        {
            if &col.name != name || col.values.len() != block.len() {
                return Err(mismatch(name));
            }
            match (sink, &col.values) {
                (ColumnSink::Num(a, dt), ColumnValues::Array(v)) if v.dtype() == *dt => {
                    append_num(a, v)?
                }
                (ColumnSink::Str(a), ColumnValues::Strings(v)) => append_strs(a, v)?,
                (
                    ColumnSink::Cat(a, dt),
                    ColumnValues::Categorical {
                        codes, categories, ..
                    },
                ) => {
                    let ColumnValues::Categorical {
                        categories: want, ..
                    } = &proto.values
                    else {
                        return Err(mismatch(name));
                    };
                    if categories != want {
                        return Err(mismatch(&format!("{name} categories")));
                    }
                    append_num(a, &codes_as(codes, *dt))?
                }
                (ColumnSink::NullNum(v, m, dt), ColumnValues::NullableInt { values, mask })
                    if values.dtype() == *dt =>
                {
                    append_num(v, values)?;
                    m.append(mask)?
                }
                (ColumnSink::NullBool(v, m), ColumnValues::NullableBool { values, mask }) => {
                    v.append(values)?;
                    m.append(mask)?
                }
                (
                    ColumnSink::NullStr(v, m, want),
                    ColumnValues::NullableString { values, mask, na },
                ) if na == want => {
                    append_strs(v, values)?;
                    m.append(mask)?
                }
                _ => return Err(mismatch(name)),
            }
        }
        Ok(())
    }

    /// Rows written so far.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no rows were written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
