//! Cell filters on an obs column (`COLUMN=VALUE`), evaluated to a row mask before streaming.

use crate::error::{Error, Result};
use crate::io::{ColumnValues, DataFrame, NumVec};

/// A parsed `COLUMN=VALUE` filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellFilter {
    /// obs column.
    pub column: String,
    /// Value kept (compared as text for strings/categories, parsed for numbers and bools).
    pub value: String,
}

impl std::str::FromStr for CellFilter {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.split_once('=') {
            Some((c, v)) if !c.is_empty() => Ok(CellFilter {
                column: c.to_string(),
                value: v.to_string(),
            }),
            _ => Err(Error::InvalidArgument(format!(
                "filter {s:?}: expected COLUMN=VALUE"
            ))),
        }
    }
}

impl CellFilter {
    /// The rows of `obs` where the column equals the value; errors list what does exist.
    pub fn mask(&self, obs: &DataFrame) -> Result<Vec<bool>> {
        let Some(col) = obs.column(&self.column) else {
            let names: Vec<&str> = obs.columns.iter().map(|c| c.name.as_str()).collect();
            return Err(Error::InvalidArgument(format!(
                "filter: obs has no column {:?}; columns are: {}",
                self.column,
                names.join(", ")
            )));
        };
        self.mask_column(col)
    }

    /// The rows where `col` (this filter's column, already read) equals the value; errors list
    /// the categories that do exist.
    pub fn mask_column(&self, col: &ColumnValues) -> Result<Vec<bool>> {
        let v = &self.value;
        let mask: Vec<bool> = match col {
            ColumnValues::Categorical {
                codes, categories, ..
            } => {
                let labels: Vec<String> =
                    (0..categories.len()).map(|i| categories.label(i)).collect();
                let Some(code) = labels.iter().position(|l| l == v) else {
                    return Err(Error::InvalidArgument(format!(
                        "filter: column {:?} has no category {v:?}; categories are: {}",
                        self.column,
                        labels.join(", ")
                    )));
                };
                codes.iter().map(|&c| c == code as i32).collect()
            }
            ColumnValues::Strings(s) => s.iter().map(|x| x == v).collect(),
            ColumnValues::NullableString { values, mask, .. } => values
                .iter()
                .zip(mask)
                .map(|(x, &m)| !m && x == v)
                .collect(),
            ColumnValues::Array(NumVec::Bool(b)) | ColumnValues::NullableBool { values: b, .. } => {
                let want = parse_bool(v)?;
                let na = match col {
                    ColumnValues::NullableBool { mask, .. } => mask.clone(),
                    _ => vec![false; b.len()],
                };
                b.iter().zip(na).map(|(&x, m)| !m && x == want).collect()
            }
            ColumnValues::Array(a) | ColumnValues::NullableInt { values: a, .. } => {
                let want: f64 = v.parse().map_err(|_| {
                    Error::InvalidArgument(format!(
                        "filter: column {:?} is numeric; {v:?} is not a number",
                        self.column
                    ))
                })?;
                let na = match col {
                    ColumnValues::NullableInt { mask, .. } => mask.clone(),
                    _ => vec![false; a.len()],
                };
                a.to_f64()
                    .into_iter()
                    .zip(na)
                    .map(|(x, m)| !m && x == want)
                    .collect()
            }
        };
        if !mask.iter().any(|&k| k) {
            return Err(Error::InvalidArgument(format!(
                "filter {}={v}: no cell matches",
                self.column
            )));
        }
        Ok(mask)
    }
}

fn parse_bool(v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Error::InvalidArgument(format!(
            "filter: {v:?} is not a boolean (true/false)"
        ))),
    }
}
