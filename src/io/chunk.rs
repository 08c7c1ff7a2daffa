//! The unit of streaming: a block of CSR rows in memory.

use std::ops::Range;

/// Rows in a chunk that starts at the first row of `offsets` and holds at most `max_values`
/// stored values: `offsets` are the `indptr` entries of the candidate rows (the chunk's first
/// row's start to its last candidate's end, so `offsets.len() - 1` rows at most). At least one
/// row (a row alone above the budget is a chunk of its own); none only when there is no
/// candidate.
pub fn rows_within(offsets: &[u64], max_values: u64) -> usize {
    let Some((&first, rest)) = offsets.split_first() else {
        return 0;
    };
    // Offsets never decrease, so the rows that fit are a prefix.
    let fit = rest.partition_point(|&end| end.saturating_sub(first) <= max_values);
    fit.max(1).min(rest.len())
}

/// Which source rows a chunk holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowIds {
    /// A contiguous range of source rows.
    Range(Range<u64>),
    /// Selected source rows, ascending (after a row filter).
    List(Vec<u64>),
}

impl RowIds {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            RowIds::Range(r) => (r.end - r.start) as usize,
            RowIds::List(v) => v.len(),
        }
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Source row of local row `i`.
    pub fn get(&self, i: usize) -> u64 {
        match self {
            RowIds::Range(r) => r.start + i as u64,
            RowIds::List(v) => v[i],
        }
    }
}

/// A block of rows of a sparse matrix in CSR form, f32 values, indptr local to the block.
#[derive(Clone, Debug, PartialEq)]
pub struct CsrChunk {
    /// Source rows these rows came from.
    pub rows: RowIds,
    /// Number of columns of the matrix.
    pub n_cols: usize,
    /// Row offsets into `indices`/`data`, `n_rows + 1` entries starting at 0.
    pub indptr: Vec<usize>,
    /// Column of each stored value.
    pub indices: Vec<u32>,
    /// Stored values.
    pub data: Vec<f32>,
}

impl CsrChunk {
    /// A chunk with no rows.
    pub fn empty(n_cols: usize) -> Self {
        CsrChunk {
            rows: RowIds::Range(0..0),
            n_cols,
            indptr: vec![0],
            indices: Vec::new(),
            data: Vec::new(),
        }
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.indptr.len() - 1
    }

    /// Number of stored values.
    pub fn nnz(&self) -> usize {
        self.data.len()
    }

    /// Column indices and values of local row `i`.
    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[i], self.indptr[i + 1]);
        (&self.indices[a..b], &self.data[a..b])
    }

    /// Keeps only local rows where `keep[i]` is true (their source ids become a list).
    pub fn retain_rows(&mut self, keep: &[bool]) {
        assert_eq!(keep.len(), self.n_rows(), "retain_rows: mask length");
        if keep.iter().all(|&k| k) {
            return;
        }
        let mut ids = Vec::new();
        let mut indptr = vec![0usize];
        let mut w = 0usize;
        for (i, &k) in keep.iter().enumerate() {
            if !k {
                continue;
            }
            let (a, b) = (self.indptr[i], self.indptr[i + 1]);
            self.indices.copy_within(a..b, w);
            self.data.copy_within(a..b, w);
            w += b - a;
            indptr.push(w);
            ids.push(self.rows.get(i));
        }
        self.indices.truncate(w);
        self.data.truncate(w);
        self.indptr = indptr;
        self.rows = RowIds::List(ids);
    }

    /// A new chunk of the local rows `rows`, in that order, repeats allowed.
    pub fn take_rows(&self, rows: &[usize]) -> CsrChunk {
        let mut out = CsrChunk::empty(self.n_cols);
        out.rows = RowIds::List(rows.iter().map(|&i| self.rows.get(i)).collect());
        for &i in rows {
            let (idx, val) = self.row(i);
            out.indices.extend_from_slice(idx);
            out.data.extend_from_slice(val);
            out.indptr.push(out.data.len());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retain_rows_compacts_values_and_ids() {
        let mut c = CsrChunk {
            rows: RowIds::Range(10..13),
            n_cols: 4,
            indptr: vec![0, 2, 2, 3],
            indices: vec![0, 3, 1],
            data: vec![1.0, 2.0, 3.0],
        };
        c.retain_rows(&[false, true, true]);
        assert_eq!(c.indptr, vec![0, 0, 1]);
        assert_eq!(c.indices, vec![1]);
        assert_eq!(c.data, vec![3.0]);
        assert_eq!(c.rows, RowIds::List(vec![11, 12]));
    }
}
