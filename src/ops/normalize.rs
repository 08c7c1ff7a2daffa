//! `normalize_total` with scanpy's arithmetic: per-cell totals as f32, the target sum (median of
//! the positive totals, or a given value), and the per-cell divisors `total / target`.
//!
//! scanpy computes on float32 (`counts_per_cell / target_sum`, then `x / divisor`); so does this
//! module, so normalized values match scanpy's to the last bit or two.

use std::collections::HashMap;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The `--target-sum` option: scanpy's default (median of the positive per-cell totals) or a
/// fixed value such as 1e4 or 1e6 (CPM).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum TargetSum {
    /// Median of the per-cell totals of cells with a positive total (the dask/1.12 rule).
    #[default]
    Median,
    /// A fixed target.
    Fixed(f64),
}

impl FromStr for TargetSum {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if s.eq_ignore_ascii_case("auto") || s.eq_ignore_ascii_case("median") {
            return Ok(TargetSum::Median);
        }
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Ok(TargetSum::Fixed(v)),
            _ => Err(Error::InvalidArgument(format!(
                "target sum {s:?}: expected `auto` or a positive number"
            ))),
        }
    }
}

impl std::fmt::Display for TargetSum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetSum::Median => f.write_str("auto"),
            TargetSum::Fixed(v) => write!(f, "{v}"),
        }
    }
}

/// A cell's total as scanpy holds it (float32).
#[inline]
pub fn cell_total(sum: f64) -> f32 {
    sum as f32
}

/// The divisor of a cell's values: `total / target` in f32, with 0 replaced by 1 (scanpy's
/// `allow_divide_by_zero=False`).
#[inline]
pub fn divisor(total: f32, target: f32) -> f32 {
    let s = total / target;
    if s == 0.0 {
        1.0
    } else {
        s
    }
}

/// Counts of per-cell totals, for an exact median without keeping one value per cell.
///
/// Memory grows with the number of *distinct* totals: for count data (integers) that is at most
/// the largest total, whatever the number of cells.
#[derive(Clone, Debug, Default)]
pub struct TotalsCounter {
    counts: HashMap<u32, u64>,
    cells: u64,
    zero_cells: u64,
    sum: f64,
}

impl TotalsCounter {
    /// An empty counter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one cell's total.
    pub fn add(&mut self, total: f32) {
        self.cells += 1;
        self.sum += total as f64;
        if total > 0.0 {
            *self.counts.entry(total.to_bits()).or_insert(0) += 1;
        } else {
            self.zero_cells += 1;
        }
    }

    /// Adds another counter's cells.
    pub fn merge(&mut self, other: &TotalsCounter) {
        self.cells += other.cells;
        self.zero_cells += other.zero_cells;
        self.sum += other.sum;
        for (&k, &n) in &other.counts {
            *self.counts.entry(k).or_insert(0) += n;
        }
    }

    /// Cells recorded.
    pub fn cells(&self) -> u64 {
        self.cells
    }

    /// Cells whose total is zero (or negative).
    pub fn zero_cells(&self) -> u64 {
        self.zero_cells
    }

    /// Mean total over all cells.
    pub fn mean(&self) -> f64 {
        self.sum / self.cells.max(1) as f64
    }

    /// Median of the positive totals as numpy computes it on float32 (mean of the two middle
    /// values for an even count, in f32); `None` when no cell has a positive total.
    pub fn median_positive(&self) -> Option<f32> {
        let n: u64 = self.counts.values().sum();
        if n == 0 {
            return None;
        }
        // Positive floats order like their bit patterns.
        let mut keys: Vec<(u32, u64)> = self.counts.iter().map(|(&k, &c)| (k, c)).collect();
        keys.sort_unstable_by_key(|&(k, _)| k);
        let at = |rank: u64| -> f32 {
            let mut seen = 0;
            for &(k, c) in &keys {
                seen += c;
                if rank < seen {
                    return f32::from_bits(k);
                }
            }
            unreachable!("rank below the count")
        };
        Some(if n % 2 == 1 {
            at(n / 2)
        } else {
            (at(n / 2 - 1) + at(n / 2)) / 2.0
        })
    }

    /// The target sum `rule` gives for these cells.
    pub fn target(&self, rule: TargetSum) -> Option<f32> {
        match rule {
            TargetSum::Median => self.median_positive(),
            TargetSum::Fixed(v) => Some(v as f32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_excludes_zero_totals_like_the_dask_path() {
        // spec §3: totals [0, 2, 4, 10] give 4 on a dask array.
        let mut c = TotalsCounter::new();
        for t in [0.0, 2.0, 4.0, 10.0] {
            c.add(t);
        }
        assert_eq!(c.median_positive(), Some(4.0));
        assert_eq!(c.zero_cells(), 1);
        c.add(5.0);
        assert_eq!(c.median_positive(), Some(4.5));
        let mut d = TotalsCounter::new();
        d.add(0.0);
        assert_eq!(d.median_positive(), None);
        d.merge(&c);
        assert_eq!(d.median_positive(), Some(4.5));
        assert_eq!(d.cells(), 6);
    }

    #[test]
    fn median_matches_sorting_with_repeats() {
        let mut c = TotalsCounter::new();
        let mut all = Vec::new();
        for i in 0..1001u32 {
            let t = ((i * 7919) % 97) as f32 + 0.5;
            c.add(t);
            all.push(t);
        }
        all.sort_by(f32::total_cmp);
        assert_eq!(c.median_positive(), Some(all[500]));
    }

    #[test]
    fn divisor_replaces_zero_by_one() {
        assert_eq!(divisor(0.0, 3.0), 1.0);
        assert_eq!(divisor(6.0, 3.0), 2.0);
        assert_eq!("auto".parse::<TargetSum>().unwrap(), TargetSum::Median);
        assert_eq!("1e4".parse::<TargetSum>().unwrap(), TargetSum::Fixed(1e4));
        assert!("-1".parse::<TargetSum>().is_err());
        assert!("x".parse::<TargetSum>().is_err());
    }
}
