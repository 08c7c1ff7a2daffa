//! Checks of a matrix's stored values before a step computes with them: `preprocess` needs
//! counts (finite and non-negative), `pca` needs finite values. A check scans each chunk's values
//! once, in blocks with no branch per value (so it vectorizes), and locates the first refused
//! value only when a block holds one.

use crate::error::{Error, Result};
use crate::io::CsrChunk;

/// Which stored values a step accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueRule {
    /// Counts: finite and non-negative (`preprocess`: `normalize_total`, `log1p`).
    Counts,
    /// Any finite value, negatives included (`pca` of normalized or scaled data).
    Finite,
}

impl ValueRule {
    /// True when every value of `block` is accepted, or when its only refusals are negative
    /// zeros (`Counts`): the largest of the values' bits, masked, is below infinity's. A `u32`
    /// max reduction, which vectorizes.
    #[inline]
    fn block_ok(self, block: &[f32]) -> bool {
        // Counts: the sign bit makes a negative value's bits larger than infinity's.
        let mask = match self {
            ValueRule::Counts => u32::MAX,
            ValueRule::Finite => 0x7fff_ffff,
        };
        block.iter().fold(0u32, |m, &x| m.max(x.to_bits() & mask)) < f32::INFINITY.to_bits()
    }

    /// True when `x` is accepted.
    #[inline(always)]
    fn accepts(self, x: f32) -> bool {
        match self {
            // NaN fails both comparisons.
            ValueRule::Counts => (0.0..f32::INFINITY).contains(&x),
            ValueRule::Finite => x.abs() < f32::INFINITY,
        }
    }

    /// What the rule asks for, for messages.
    fn needs(self) -> &'static str {
        match self {
            ValueRule::Counts => "counts must be finite and non-negative",
            ValueRule::Finite => "values must be finite",
        }
    }
}

/// Values checked per block before looking for the offender.
const BLOCK: usize = 4096;

/// The first stored value of `chunk` that `rule` refuses, as (local row, column, value).
pub fn first_refused(chunk: &CsrChunk, rule: ValueRule) -> Option<(usize, u32, f32)> {
    let mut offset = 0;
    for block in chunk.data.chunks(BLOCK) {
        if !rule.block_ok(block) {
            if let Some(p) = block.iter().position(|&x| !rule.accepts(x)) {
                let k = offset + p;
                // The row holding value k: the last row starting at or before k.
                let row = chunk.indptr.partition_point(|&q| q <= k).saturating_sub(1);
                let col = chunk.indices.get(k).copied().unwrap_or(u32::MAX);
                return Some((row, col, chunk.data[k]));
            }
        }
        offset += block.len();
    }
    None
}

/// Fails with [`Error::InvalidArgument`] naming the source row and column (0-based) of the first
/// stored value of `chunk` that `rule` refuses; the caller adds the file and element.
pub fn check_chunk(chunk: &CsrChunk, rule: ValueRule) -> Result<()> {
    let Some((row, col, x)) = first_refused(chunk, rule) else {
        return Ok(());
    };
    let what = if x.is_nan() {
        "NaN".to_string()
    } else if x.is_infinite() {
        format!("{}inf", if x < 0.0 { "-" } else { "" })
    } else {
        format!("negative value {x}")
    };
    Err(Error::InvalidArgument(format!(
        "{what} at row {}, column {col} (0-based); {}",
        chunk.rows.get(row),
        rule.needs()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::RowIds;

    fn chunk(data: Vec<f32>) -> CsrChunk {
        // Rows of 3 values each, columns 0, 2, 4; source rows start at 100.
        let n = data.len() / 3;
        CsrChunk {
            rows: RowIds::Range(100..100 + n as u64),
            n_cols: 5,
            indptr: (0..=n).map(|i| 3 * i).collect(),
            indices: (0..n).flat_map(|_| [0u32, 2, 4]).collect(),
            data,
        }
    }

    #[test]
    fn counts_refuse_nan_inf_and_negatives_with_their_place() {
        let mut d = vec![1.0f32; 3 * 5000];
        d[5] = -0.0;
        assert!(check_chunk(&chunk(d.clone()), ValueRule::Counts).is_ok());
        d[3 * 4321 + 2] = -2.0;
        d[3 * 4800 + 1] = f32::NAN;
        let e = check_chunk(&chunk(d.clone()), ValueRule::Counts).unwrap_err();
        assert_eq!(
            e.to_string(),
            "negative value -2 at row 4421, column 4 (0-based); counts must be finite and \
             non-negative"
        );
        assert!(check_chunk(&chunk(d.clone()), ValueRule::Finite)
            .unwrap_err()
            .to_string()
            .starts_with("NaN at row 4900, column 2 "));
        d[3 * 4800 + 1] = f32::NEG_INFINITY;
        assert!(check_chunk(&chunk(d), ValueRule::Finite)
            .unwrap_err()
            .to_string()
            .starts_with("-inf at row 4900, column 2 "));
    }

    #[test]
    fn empty_rows_before_the_offender_do_not_shift_its_row() {
        let c = CsrChunk {
            rows: RowIds::List(vec![3, 8, 9]),
            n_cols: 4,
            indptr: vec![0, 0, 0, 2],
            indices: vec![1, 3],
            data: vec![1.0, f32::INFINITY],
        };
        let (row, col, _) = first_refused(&c, ValueRule::Counts).unwrap();
        assert_eq!((c.rows.get(row), col), (9, 3));
    }
}
