//! Row subsets of stored dataframes, streamed by blocks: what `adata[mask]` writes for `obs`
//! (rows in order, unused categories of categorical columns dropped, as anndata does when a view
//! is copied).

use hdf5::Group;

use super::dataframe::{Categories, ColumnValues, DataFrame, DataFrameReader, DataFrameWriter};
use crate::error::{Error, Result};

/// Per categorical column: old code → new code (−1 = dropped) and the kept categories.
struct CategoryRemap {
    column: String,
    new_code: Vec<i32>,
    categories: Categories,
}

fn used_categories(
    reader: &DataFrameReader,
    keep: &[bool],
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
            if !keep[start..end].iter().any(|&k| k) {
                continue;
            }
            let ColumnValues::Categorical { codes, .. } = reader.read_column(name, start..end)?
            else {
                unreachable!("column kind is fixed")
            };
            for (&c, &k) in codes.iter().zip(&keep[start..end]) {
                if k && c >= 0 {
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

fn apply_remaps(block: &mut DataFrame, remaps: &[CategoryRemap]) {
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
    let n = reader.len();
    if keep.len() != n {
        return Err(Error::InvalidArgument(format!(
            "row mask has {} entries, the dataframe has {n} rows",
            keep.len()
        )));
    }
    let block_rows = block_rows.max(1);
    let remaps = used_categories(reader, keep, block_rows)?;
    let mut schema = reader.read_rows(0..0)?;
    apply_remaps(&mut schema, &remaps);
    let mut writer = DataFrameWriter::create(parent, name, &schema)?;
    for start in (0..n).step_by(block_rows) {
        let end = (start + block_rows).min(n);
        let rows: Vec<usize> = (0..end - start).filter(|&i| keep[start + i]).collect();
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
