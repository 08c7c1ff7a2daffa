//! Row subsets of stored dataframes, streamed by blocks: what `adata[mask]` writes for `obs`
//! (rows in order, unused categories of categorical columns dropped, as anndata does when a view
//! is copied).

use hdf5::Group;

use super::dataframe::{Categories, ColumnValues, DataFrame, DataFrameReader, DataFrameWriter};
use crate::error::{Error, Result};

/// Per categorical column: old code → new code (−1 = dropped) and the kept categories.
pub(crate) struct CategoryRemap {
    column: String,
    new_code: Vec<i32>,
    categories: Categories,
}

/// Which rows of a stored table to write.
#[derive(Clone, Copy, Debug)]
pub enum RowPick<'a> {
    /// Rows whose entry is true, in order.
    Mask(&'a [bool]),
    /// These rows, ascending, repeats allowed (each occurrence is written).
    Sorted(&'a [usize]),
}

impl RowPick<'_> {
    /// Offsets (relative to `start`) of the picked rows inside `start..end`, with repeats.
    pub fn rows_in(&self, start: usize, end: usize) -> Vec<usize> {
        match self {
            RowPick::Mask(m) => (start..end).filter(|&i| m[i]).map(|i| i - start).collect(),
            RowPick::Sorted(r) => {
                let a = r.partition_point(|&i| i < start);
                let b = r.partition_point(|&i| i < end);
                r[a..b].iter().map(|&i| i - start).collect()
            }
        }
    }

    /// Checks the pick against a table of `n` rows.
    pub fn check(&self, n: usize) -> Result<()> {
        match self {
            RowPick::Mask(m) if m.len() != n => Err(Error::InvalidArgument(format!(
                "row mask has {} entries, the table has {n} rows",
                m.len()
            ))),
            RowPick::Sorted(r) if r.windows(2).any(|w| w[0] > w[1]) => Err(Error::InvalidArgument(
                "picked rows are not in ascending order".into(),
            )),
            RowPick::Sorted(r) if r.last().is_some_and(|&i| i >= n) => {
                Err(Error::InvalidArgument(format!(
                    "picked row {} of a table of {n} rows",
                    r.last().copied().unwrap_or(0)
                )))
            }
            _ => Ok(()),
        }
    }
}

pub(crate) fn used_categories(
    reader: &DataFrameReader,
    pick: RowPick<'_>,
    block_rows: usize,
) -> Result<Vec<CategoryRemap>> {
    let n = reader.len();
    let mut remaps = Vec::new();
    for name in reader.column_names() {
        let ColumnValues::Categorical { categories, .. } = reader.read_column(name, 0..0)? else {
            continue;
        };
        let mut used = vec![false; categories.len()];
        for start in (0..n).step_by(block_rows) {
            let end = (start + block_rows).min(n);
            let rows = pick.rows_in(start, end);
            if rows.is_empty() {
                continue;
            }
            let ColumnValues::Categorical { codes, .. } = reader.read_column(name, start..end)?
            else {
                unreachable!("column kind is fixed")
            };
            for r in rows {
                let c = codes[r];
                if c >= 0 {
                    used[c as usize] = true;
                }
            }
        }
        let kept: Vec<usize> = (0..used.len()).filter(|&i| used[i]).collect();
        let mut new_code = vec![-1i32; used.len()];
        for (new, &old) in kept.iter().enumerate() {
            new_code[old] = new as i32;
        }
        let categories = match &categories {
            Categories::Strings(s) => {
                Categories::Strings(kept.iter().map(|&i| s[i].clone()).collect())
            }
            Categories::Num(v) => Categories::Num(v.take(&kept)),
        };
        remaps.push(CategoryRemap {
            column: name.clone(),
            new_code,
            categories,
        });
    }
    Ok(remaps)
}

pub(crate) fn apply_remaps(block: &mut DataFrame, remaps: &[CategoryRemap]) {
    for r in remaps {
        let col = block
            .columns
            .iter_mut()
            .find(|c| c.name == r.column)
            .expect("remapped column exists");
        if let ColumnValues::Categorical {
            codes, categories, ..
        } = &mut col.values
        {
            for c in codes.iter_mut() {
                if *c >= 0 {
                    *c = r.new_code[*c as usize];
                }
            }
            *categories = r.categories.clone();
        }
    }
}

/// Writes the rows of `reader`'s dataframe where `keep` is true as dataframe `name` of `parent`,
/// reading `block_rows` rows at a time. Returns the rows written.
pub fn write_dataframe_rows(
    reader: &DataFrameReader,
    keep: &[bool],
    parent: &Group,
    name: &str,
    block_rows: usize,
) -> Result<usize> {
    write_dataframe_pick(reader, RowPick::Mask(keep), parent, name, block_rows)
}

/// Writes the rows `pick` names of `reader`'s dataframe as dataframe `name` of `parent` (unused
/// categories dropped), reading `block_rows` rows at a time. Returns the rows written.
pub fn write_dataframe_pick(
    reader: &DataFrameReader,
    pick: RowPick<'_>,
    parent: &Group,
    name: &str,
    block_rows: usize,
) -> Result<usize> {
    let n = reader.len();
    pick.check(n)?;
    let block_rows = block_rows.max(1);
    let remaps = used_categories(reader, pick, block_rows)?;
    let mut schema = reader.read_rows(0..0)?;
    apply_remaps(&mut schema, &remaps);
    let mut writer = DataFrameWriter::create(parent, name, &schema)?;
    for start in (0..n).step_by(block_rows) {
        let end = (start + block_rows).min(n);
        let rows = pick.rows_in(start, end);
        if rows.is_empty() {
            continue;
        }
        let mut block = reader.read_rows(start..end)?.take(&rows);
        apply_remaps(&mut block, &remaps);
        writer.append(&block)?;
    }
    Ok(writer.len())
}

/// Copies `reader`'s dataframe whole (categories as they are) as dataframe `name` of `parent`,
/// reading `block_rows` rows at a time. Returns the rows written.
pub fn copy_dataframe(
    reader: &DataFrameReader,
    parent: &Group,
    name: &str,
    block_rows: usize,
) -> Result<usize> {
    let n = reader.len();
    let block_rows = block_rows.max(1);
    let mut writer = DataFrameWriter::create(parent, name, &reader.read_rows(0..0)?)?;
    for start in (0..n).step_by(block_rows) {
        writer.append(&reader.read_rows(start..(start + block_rows).min(n))?)?;
    }
    Ok(writer.len())
}
