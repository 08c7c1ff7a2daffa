//! `concat_on_disk` semantics, streamed: obs rows and X chunks are copied file by file, chunk by
//! chunk; only indexes, categories and one chunk are ever in memory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::array::{NumDtype, NumVec};
use super::carry::Carried;
use super::chunk::CsrChunk;
use super::csr::{CsrWriteOptions, CsrWriter};
use super::dataframe::{Categories, Column, ColumnValues, DataFrame, DataFrameWriter, StringNa};
use super::h5ad::{H5adReader, OutputFile};
use super::matrix_rows::ColumnMap;
use super::output::{OutputOptions, OutputSet};
use crate::error::{Error, Result};

/// How the var axis is joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Join {
    /// Genes present in every input, in the first input's order.
    #[default]
    Inner,
    /// Genes present in any input (sorted, as `pd.Index.union` orders them, unless every input
    /// has the same genes); absent genes are zeros.
    Outer,
}

/// Options of [`concat()`].
#[derive(Clone, Debug)]
pub struct ConcatOptions {
    /// obs column that records each cell's source.
    pub label: String,
    /// One key per input (default: file stems).
    pub keys: Option<Vec<String>>,
    /// var join.
    pub join: Join,
    /// Source rows per chunk.
    pub chunk_rows: usize,
    /// Compression of X.
    pub compression: super::Codec,
    /// Overwrite an existing output.
    pub force: bool,
}

/// What [`concat()`] wrote.
#[derive(Clone, Debug)]
pub struct ConcatSummary {
    /// Output path.
    pub path: PathBuf,
    /// Cells.
    pub n_obs: usize,
    /// Genes.
    pub n_vars: usize,
    /// Stored values copied.
    pub nnz: u64,
    /// Layers written (those every input has).
    pub layers: Vec<String>,
    /// What the inputs hold that is not written: layers some inputs lack, and `raw` (as
    /// `concat_on_disk`).
    pub left_out: Vec<String>,
}

/// Natural-order comparison key (digits compare as numbers), as `natsort.natsorted` orders.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(s: &str) -> Vec<(bool, String)> {
        let mut out: Vec<(bool, String)> = Vec::new();
        for ch in s.chars() {
            let d = ch.is_ascii_digit();
            match out.last_mut() {
                Some((pd, buf)) if *pd == d => buf.push(ch),
                _ => out.push((d, ch.to_string())),
            }
        }
        out
    }
    let (pa, pb) = (parts(a), parts(b));
    for ((da, sa), (db, sb)) in pa.iter().zip(&pb) {
        let ord = match (da, db) {
            (true, true) => {
                let (ta, tb) = (sa.trim_start_matches('0'), sb.trim_start_matches('0'));
                ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb))
            }
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            (false, false) => sa.cmp(sb),
        };
        if ord.is_ne() {
            return ord;
        }
    }
    pa.len().cmp(&pb.len()).then_with(|| a.cmp(b))
}

/// The output kind of one obs column, decided from every input's schema.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    Array(NumDtype),
    Categorical {
        categories: Vec<String>,
        ordered: bool,
    },
    NullableBool,
    NullableInt(NumDtype),
    Strings,
    NullableString(StringNa),
}

fn cat_labels(c: &Categories) -> Vec<String> {
    (0..c.len()).map(|i| c.label(i)).collect()
}

/// The kind anndata's `concat_on_disk` gives a column (its `unify_dtypes`, then `pd.concat`):
/// categoricals unify to the natural-sorted union of their categories, or the first input's order
/// when it has them all (ordered ones only when all agree, else they become strings); strings mixed with categoricals, nullable strings or missing
/// rows become nullable strings; numbers widen to float64 when their dtypes differ or rows are
/// missing. `per_file` is `None` where an input lacks the column (outer joins only).
pub(crate) fn plan_column(name: &str, per_file: &[Option<ColumnValues>]) -> Result<Target> {
    let present: Vec<&ColumnValues> = per_file.iter().flatten().collect();
    let all = present.len() == per_file.len();
    let bad = || {
        Error::InvalidArgument(format!(
            "obs column {name:?} has incompatible types across inputs"
        ))
    };
    let is_text = |v: &&ColumnValues| {
        matches!(
            v,
            ColumnValues::Categorical { .. }
                | ColumnValues::Strings(_)
                | ColumnValues::NullableString { .. }
        )
    };
    match present[0] {
        ColumnValues::Categorical { .. }
        | ColumnValues::Strings(_)
        | ColumnValues::NullableString { .. } => {
            if !present.iter().all(is_text) {
                return Err(bad());
            }
            let cats: Vec<(Vec<String>, bool)> = present
                .iter()
                .filter_map(|v| match v {
                    ColumnValues::Categorical {
                        categories,
                        ordered,
                        ..
                    } => Some((cat_labels(categories), *ordered)),
                    _ => None,
                })
                .collect();
            if cats.len() == present.len() {
                if !cats.iter().any(|(_, o)| *o) {
                    let mut union: Vec<String> =
                        cats.iter().flat_map(|(c, _)| c.iter().cloned()).collect();
                    union.sort_by(|a, b| natural_cmp(a, b));
                    union.dedup();
                    // Each input is cast to the natural-sorted union, but pandas calls unordered
                    // categoricals with the same set of categories equal, so an input that
                    // already has them all keeps its order, and pd.concat takes the first's.
                    let first = &cats[0].0;
                    let mut first_set = first.clone();
                    first_set.sort_by(|a, b| natural_cmp(a, b));
                    first_set.dedup();
                    let categories = if first_set == union {
                        first.clone()
                    } else {
                        union
                    };
                    return Ok(Target::Categorical {
                        categories,
                        ordered: false,
                    });
                }
                let filled: Vec<&(Vec<String>, bool)> =
                    cats.iter().filter(|(c, _)| !c.is_empty()).collect();
                if filled.iter().all(|(c, o)| *o && *c == filled[0].0) {
                    return Ok(Target::Categorical {
                        categories: filled.first().map(|(c, _)| c.clone()).unwrap_or_default(),
                        ordered: true,
                    });
                }
            }
            if all && present.iter().all(|v| matches!(v, ColumnValues::Strings(_))) {
                return Ok(Target::Strings);
            }
            let na = present
                .iter()
                .find_map(|v| match v {
                    ColumnValues::NullableString { na, .. } => Some(*na),
                    _ => None,
                })
                .unwrap_or(StringNa::NaN);
            Ok(Target::NullableString(na))
        }
        ColumnValues::Array(first) => {
            let dtypes: Vec<NumDtype> = present
                .iter()
                .map(|v| match v {
                    ColumnValues::Array(a) => Ok(a.dtype()),
                    _ => Err(bad()),
                })
                .collect::<Result<_>>()?;
            let same = dtypes.iter().all(|&d| d == first.dtype());
            if first.dtype() == NumDtype::Bool {
                if !dtypes.iter().all(|&d| d == NumDtype::Bool) {
                    return Err(bad());
                }
                return Ok(if all {
                    Target::Array(NumDtype::Bool)
                } else {
                    Target::NullableBool
                });
            }
            if dtypes.contains(&NumDtype::Bool) {
                return Err(bad());
            }
            Ok(if all && same {
                Target::Array(first.dtype())
            } else {
                Target::Array(NumDtype::F64)
            })
        }
        ColumnValues::NullableBool { .. } => {
            if present
                .iter()
                .all(|v| matches!(v, ColumnValues::NullableBool { .. }))
            {
                Ok(Target::NullableBool)
            } else {
                Err(bad())
            }
        }
        ColumnValues::NullableInt { values, .. } => {
            if present.iter().all(|v| {
                matches!(v, ColumnValues::NullableInt { values: x, .. } if x.dtype() == values.dtype())
            }) {
                Ok(Target::NullableInt(values.dtype()))
            } else {
                Err(bad())
            }
        }
    }
}

/// Converts one input block of a column to the target kind (`None` = column absent in this input).
pub(crate) fn convert(target: &Target, values: Option<&ColumnValues>, n: usize) -> ColumnValues {
    match (target, values) {
        (Target::Array(NumDtype::F64), Some(ColumnValues::Array(a))) => {
            ColumnValues::Array(NumVec::F64(a.to_f64()))
        }
        (Target::Array(NumDtype::F64), None) => ColumnValues::Array(NumVec::F64(vec![f64::NAN; n])),
        (Target::Array(_), Some(v)) => v.clone(),
        (Target::NullableBool, Some(ColumnValues::Array(NumVec::Bool(b)))) => {
            ColumnValues::NullableBool {
                values: b.clone(),
                mask: vec![false; n],
            }
        }
        (Target::NullableBool, Some(v @ ColumnValues::NullableBool { .. })) => v.clone(),
        (Target::NullableBool, None) => ColumnValues::NullableBool {
            values: vec![false; n],
            mask: vec![true; n],
        },
        (Target::NullableInt(_), Some(v)) => v.clone(),
        (Target::NullableInt(dt), None) => {
            let mut values = NumVec::empty(*dt);
            values.extend_from(&NumVec::I64(vec![0; n]).to_typed(*dt));
            ColumnValues::NullableInt {
                values,
                mask: vec![true; n],
            }
        }
        (Target::Strings, Some(v)) => v.clone(),
        (Target::NullableString(na), v) => {
            let (values, mask) = match v {
                None => (vec![String::new(); n], vec![true; n]),
                Some(ColumnValues::Strings(s)) => (s.clone(), vec![false; n]),
                Some(ColumnValues::NullableString { values, mask, .. }) => {
                    (values.clone(), mask.clone())
                }
                Some(ColumnValues::Categorical {
                    codes, categories, ..
                }) => codes
                    .iter()
                    .map(|&c| {
                        if c < 0 {
                            (String::new(), true)
                        } else {
                            (categories.label(c as usize), false)
                        }
                    })
                    .unzip(),
                Some(_) => unreachable!("planned as strings"),
            };
            ColumnValues::NullableString {
                values,
                mask,
                na: *na,
            }
        }
        (
            Target::Categorical {
                categories,
                ordered,
            },
            v,
        ) => {
            let pos: HashMap<&str, i32> = categories
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), i as i32))
                .collect();
            let codes = match v {
                None => vec![-1; n],
                Some(ColumnValues::Categorical {
                    codes,
                    categories: src,
                    ..
                }) => {
                    let map: Vec<i32> =
                        (0..src.len()).map(|i| pos[src.label(i).as_str()]).collect();
                    codes
                        .iter()
                        .map(|&c| if c < 0 { -1 } else { map[c as usize] })
                        .collect()
                }
                Some(ColumnValues::Strings(s)) => s.iter().map(|x| pos[x.as_str()]).collect(),
                Some(_) => unreachable!("planned as categorical"),
            };
            ColumnValues::Categorical {
                codes,
                categories: Categories::Strings(categories.clone()),
                ordered: *ordered,
            }
        }
        (t, v) => unreachable!("concat: no conversion from {v:?} to {t:?}"),
    }
}

impl NumVec {
    /// The values converted to `dtype` (numeric casts as numpy's `astype`).
    pub fn to_typed(&self, dtype: NumDtype) -> NumVec {
        let f = self.to_f64();
        match dtype {
            NumDtype::Bool => NumVec::Bool(f.iter().map(|&x| x != 0.0).collect()),
            NumDtype::I8 => NumVec::I8(f.iter().map(|&x| x as i8).collect()),
            NumDtype::I16 => NumVec::I16(f.iter().map(|&x| x as i16).collect()),
            NumDtype::I32 => NumVec::I32(f.iter().map(|&x| x as i32).collect()),
            NumDtype::I64 => NumVec::I64(f.iter().map(|&x| x as i64).collect()),
            NumDtype::U8 => NumVec::U8(f.iter().map(|&x| x as u8).collect()),
            NumDtype::U16 => NumVec::U16(f.iter().map(|&x| x as u16).collect()),
            NumDtype::U32 => NumVec::U32(f.iter().map(|&x| x as u32).collect()),
            NumDtype::U64 => NumVec::U64(f.iter().map(|&x| x as u64).collect()),
            NumDtype::F32 => NumVec::F32(f.iter().map(|&x| x as f32).collect()),
            NumDtype::F64 => NumVec::F64(f),
        }
    }
}

/// Concatenates `inputs` along cells into `out`, streaming X and obs.
pub fn concat(
    inputs: &[PathBuf],
    out: &Path,
    opts: &ConcatOptions,
    quiet: bool,
) -> Result<ConcatSummary> {
    if inputs.is_empty() {
        return Err(Error::InvalidArgument(
            "concat needs at least one input".into(),
        ));
    }
    let set = OutputSet::create(&[out], &OutputOptions::new(opts.force).inputs(inputs))?;
    let keys: Vec<String> = match &opts.keys {
        Some(k) if k.len() != inputs.len() => {
            return Err(Error::InvalidArgument(format!(
                "--keys has {} names for {} inputs",
                k.len(),
                inputs.len()
            )))
        }
        Some(k) => k.clone(),
        None => inputs
            .iter()
            .map(|p| {
                p.file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect(),
    };
    let files: Vec<H5adReader> = inputs
        .iter()
        .map(|p| H5adReader::open(p))
        .collect::<Result<_>>()?;
    // Opening checked each X's shape against its obs and var.
    let xs = files.iter().map(|f| f.x()).collect::<Result<Vec<_>>>()?;

    // var: join gene names.
    let var_names: Vec<Vec<String>> = files
        .iter()
        .map(|f| {
            let r = f.var_reader()?;
            r.read_rows(0..r.len()).map(|d| d.index)
        })
        .collect::<Result<_>>()?;
    for (f, names) in files.iter().zip(&var_names) {
        refuse_duplicates(f.path(), names)?;
    }
    let genes: Vec<String> = match opts.join {
        Join::Inner => {
            let mut keep: Vec<String> = var_names[0].clone();
            for other in &var_names[1..] {
                let set: std::collections::HashSet<&str> =
                    other.iter().map(|s| s.as_str()).collect();
                keep.retain(|g| set.contains(g.as_str()));
            }
            keep
        }
        Join::Outer => outer_union(&var_names),
    };
    let gene_pos: HashMap<&str, u32> = genes
        .iter()
        .enumerate()
        .map(|(i, g)| (g.as_str(), i as u32))
        .collect();
    let col_maps: Vec<Vec<Option<u32>>> = var_names
        .iter()
        .map(|names| {
            names
                .iter()
                .map(|g| gene_pos.get(g.as_str()).copied())
                .collect()
        })
        .collect();
    let identity = col_maps
        .iter()
        .all(|m| m.iter().enumerate().all(|(i, c)| *c == Some(i as u32)));

    // obs: plan the union of columns from one-row samples of each input's schema.
    let obs_readers = files
        .iter()
        .map(|f| f.obs_reader())
        .collect::<Result<Vec<_>>>()?;
    // Columns as pandas joins them: inner keeps those of every input in the first one's order,
    // outer all of them in first-seen order.
    let mut col_names: Vec<String> = Vec::new();
    for r in &obs_readers {
        for c in r.column_names() {
            if !col_names.contains(c) {
                col_names.push(c.clone());
            }
        }
    }
    if opts.join == Join::Inner {
        col_names.retain(|c| obs_readers.iter().all(|r| r.column_names().contains(c)));
    }
    if col_names.contains(&opts.label) {
        return Err(Error::InvalidArgument(format!(
            "obs already has a column named {:?}; pick another --label",
            opts.label
        )));
    }
    let mut targets = Vec::new();
    for name in &col_names {
        let samples: Vec<Option<ColumnValues>> = obs_readers
            .iter()
            .map(|r| {
                if r.column_names().contains(name) {
                    r.read_column(name, 0..0).map(Some)
                } else {
                    Ok(None)
                }
            })
            .collect::<Result<_>>()?;
        targets.push(plan_column(name, &samples)?);
    }
    let index_name = "_index".to_string();

    // Layers and obsm: keys present in every input, checked before X is written.
    let x_shapes: Vec<(usize, usize)> = xs.iter().map(|x| x.shape()).collect();
    let carried = Carried::plan(&files, &x_shapes, false)?;

    let n_total: usize = xs.iter().map(|x| x.shape().0).sum();
    let nnz_total: u64 = xs.iter().map(|x| x.info().nnz).sum();
    let output = OutputFile::create_in(&set, out)?;
    DataFrame::with_index(genes.clone()).write(output.root(), "var")?;
    let mut xw = CsrWriter::create(
        output.root(),
        "X",
        genes.len(),
        CsrWriteOptions {
            compression: opts.compression,
            nnz_hint: identity.then_some(nnz_total),
        },
    )?;
    let mut obs_writer: Option<DataFrameWriter> = None;
    let progress = crate::progress::Progress::new("concat", n_total as u64, quiet);
    let key_cats = Categories::Strings(keys.clone());
    for (fi, (x, obs)) in xs.iter().zip(&obs_readers).enumerate() {
        let n = x.shape().0;
        let mut start = 0;
        loop {
            let end = (start + opts.chunk_rows.max(1)).min(n);
            let mut chunk = x.read_rows(start..end)?;
            if !identity {
                remap_columns(&mut chunk, &col_maps[fi], genes.len());
            }
            xw.append(&chunk)?;
            let block = obs.read_rows(start..end)?;
            let mut out_block = DataFrame {
                index_name: index_name.clone(),
                index: block.index.clone(),
                columns: Vec::new(),
            };
            for (name, t) in col_names.iter().zip(&targets) {
                let v = convert(t, block.column(name), end - start);
                out_block.columns.push(Column {
                    name: name.clone(),
                    values: v,
                });
            }
            out_block.columns.push(Column {
                name: opts.label.clone(),
                values: ColumnValues::Categorical {
                    codes: vec![fi as i32; end - start],
                    categories: key_cats.clone(),
                    ordered: false,
                },
            });
            if obs_writer.is_none() {
                obs_writer = Some(DataFrameWriter::create(output.root(), "obs", &out_block)?);
            }
            obs_writer.as_mut().expect("created").append(&out_block)?;
            progress.inc((end - start) as u64);
            if end >= n {
                break;
            }
            start = end;
        }
    }
    progress.finish();
    let (n_obs, nnz) = xw.finish()?;
    let maps: Vec<ColumnMap> = col_maps
        .iter()
        .map(|m| ColumnMap::new(m.clone(), genes.len()))
        .collect();
    carried.write(
        &files,
        &vec![None; files.len()],
        &maps,
        &output,
        opts.chunk_rows,
        opts.compression,
    )?;
    output.close()?;
    set.commit()?;
    Ok(ConcatSummary {
        path: out.to_path_buf(),
        n_obs,
        n_vars: genes.len(),
        nnz,
        layers: carried.layers,
        left_out: carried.left_out,
    })
}

/// Refuses var names that occur twice in one input: a column could not be placed by name in
/// the joined var (anndata.concat refuses them too: "Reindexing only valid with uniquely valued
/// Index objects").
fn refuse_duplicates(path: &Path, names: &[String]) -> Result<()> {
    let mut first: HashMap<&str, usize> = HashMap::with_capacity(names.len());
    for (j, name) in names.iter().enumerate() {
        if let Some(i) = first.insert(name.as_str(), j) {
            return Err(Error::format(
                path,
                "/var",
                format!(
                    "var name {name:?} occurs at rows {i} and {j}; concat needs unique var \
                     names (anndata: adata.var_names_make_unique())"
                ),
            ));
        }
    }
    Ok(())
}

/// The gene union as anndata's `merge_indices` forms it, `pd.Index.union` pairwise: an index
/// joined with an equal (or empty) one keeps its order, otherwise the union is sorted.
fn outer_union(names: &[Vec<String>]) -> Vec<String> {
    let mut acc = names[0].clone();
    for next in &names[1..] {
        if *next == acc || next.is_empty() {
            continue;
        }
        if acc.is_empty() {
            acc = next.clone();
            continue;
        }
        acc.extend(next.iter().cloned());
        acc.sort_unstable();
        acc.dedup();
    }
    acc
}

/// Maps a chunk's columns into the joined var space, dropping unmapped ones and re-sorting rows.
fn remap_columns(chunk: &mut CsrChunk, map: &[Option<u32>], n_cols: usize) {
    let mut indptr = vec![0usize];
    let mut indices = Vec::with_capacity(chunk.indices.len());
    let mut data = Vec::with_capacity(chunk.data.len());
    let mut row: Vec<(u32, f32)> = Vec::new();
    for i in 0..chunk.n_rows() {
        let (idx, val) = chunk.row(i);
        row.clear();
        row.extend(
            idx.iter()
                .zip(val)
                .filter_map(|(&j, &v)| map[j as usize].map(|c| (c, v))),
        );
        row.sort_unstable_by_key(|&(c, _)| c);
        for &(c, v) in &row {
            indices.push(c);
            data.push(v);
        }
        indptr.push(indices.len());
    }
    chunk.indptr = indptr;
    chunk.indices = indices;
    chunk.data = data;
    chunk.n_cols = n_cols;
}

#[cfg(test)]
mod tests {
    use super::natural_cmp;

    #[test]
    fn natural_order_compares_numbers_numerically() {
        let mut v = vec!["smp_10", "smp_9", "smp_100", "a2", "a10"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, vec!["a2", "a10", "smp_9", "smp_10", "smp_100"]);
    }
}
