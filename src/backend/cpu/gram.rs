//! Gram accumulation XᵀX of a CSR chunk on the CPU.
//!
//! The upper triangle is cut into tile pairs (see [`Gram`]); one rayon task owns one tile pair's
//! block and walks every row of the chunk, multiplying the row's values in tile a by those in
//! tile b and scattering the products into the block. The block (512 KiB) stays in L2 while the
//! chunk streams past it, no two tasks write the same memory, and no reduction is needed.

use rayon::prelude::*;

use crate::backend::gram::{Gram, GRAM_TILE};
use crate::error::{Error, Result};
use crate::io::CsrChunk;

/// A chunk laid out for the tile kernel: f64 values, in-tile column offsets, and for every row
/// the position where each tile's entries start.
struct TiledRows {
    values: Vec<f64>,
    local: Vec<u8>,
    /// `n_rows x (n_tiles + 1)`: start of tile t in row r at `starts[r * (n_tiles + 1) + t]`.
    starts: Vec<u32>,
    n_tiles: usize,
}

const _: () = assert!(GRAM_TILE <= 256 && GRAM_TILE.is_power_of_two());

impl TiledRows {
    fn new(chunk: &CsrChunk, n_tiles: usize) -> Result<Self> {
        let d = chunk.n_cols;
        let n = chunk.n_rows();
        let stride = n_tiles + 1;
        // Rows with unsorted or repeated columns are brought to canonical form (sorted, repeats
        // summed), which is what scipy's XᵀX sees.
        let canonical = canonical_rows(chunk)?;
        let (indptr, indices, data) = match &canonical {
            Some(c) => (&c.indptr, &c.indices, &c.data),
            None => (&chunk.indptr, &chunk.indices, &chunk.data),
        };
        let nnz = indices.len();
        if nnz >= u32::MAX as usize {
            return Err(Error::InvalidArgument(format!(
                "gram: a chunk of {nnz} stored values; use fewer rows per chunk"
            )));
        }
        let mut starts = vec![0u32; n * stride];
        starts
            .par_chunks_mut(stride)
            .enumerate()
            .for_each(|(r, s)| {
                let (a, b) = (indptr[r], indptr[r + 1]);
                let row = &indices[a..b];
                let mut p = 0;
                for (t, st) in s.iter_mut().enumerate() {
                    let lo = (t * GRAM_TILE).min(d) as u32;
                    while p < row.len() && row[p] < lo {
                        p += 1;
                    }
                    *st = (a + p) as u32;
                }
            });
        let values = data.par_iter().map(|&v| v as f64).collect();
        let local = indices
            .par_iter()
            .map(|&j| (j as usize % GRAM_TILE) as u8)
            .collect();
        Ok(TiledRows {
            values,
            local,
            starts,
            n_tiles,
        })
    }

    fn n_rows(&self) -> usize {
        self.starts.len() / (self.n_tiles + 1)
    }

    #[inline]
    fn segment(&self, r: usize, t: usize) -> (usize, usize) {
        let base = r * (self.n_tiles + 1) + t;
        (self.starts[base] as usize, self.starts[base + 1] as usize)
    }
}

/// Canonical (sorted, summed repeats) copy of the chunk when some row is not; `None` when the
/// chunk already is. Errors on a column index out of range.
fn canonical_rows(chunk: &CsrChunk) -> Result<Option<CsrChunk>> {
    let d = chunk.n_cols as u32;
    let mut sorted = true;
    for r in 0..chunk.n_rows() {
        let (idx, _) = chunk.row(r);
        if let Some(&j) = idx.iter().find(|&&j| j >= d) {
            return Err(Error::InvalidArgument(format!(
                "gram: column index {j} in a matrix of {d} columns"
            )));
        }
        sorted &= idx.windows(2).all(|w| w[0] < w[1]);
    }
    if sorted {
        return Ok(None);
    }
    let mut out = CsrChunk {
        rows: chunk.rows.clone(),
        n_cols: chunk.n_cols,
        indptr: vec![0],
        indices: Vec::with_capacity(chunk.nnz()),
        data: Vec::with_capacity(chunk.nnz()),
    };
    let mut pairs: Vec<(u32, f32)> = Vec::new();
    for r in 0..chunk.n_rows() {
        let (idx, val) = chunk.row(r);
        pairs.clear();
        pairs.extend(idx.iter().copied().zip(val.iter().copied()));
        pairs.sort_by_key(|p| p.0);
        for &(j, v) in &pairs {
            if out.indices.len() > *out.indptr.last().unwrap_or(&0)
                && out.indices.last() == Some(&j)
            {
                *out.data.last_mut().expect("value beside index") += v;
            } else {
                out.indices.push(j);
                out.data.push(v);
            }
        }
        out.indptr.push(out.indices.len());
    }
    Ok(Some(out))
}

/// One tile pair's block: every row's tile-a values times its tile-b values (j ≥ i on the
/// diagonal block).
fn accumulate_block(rows: &TiledRows, a: usize, b: usize, blk: &mut [f64]) {
    let blk: &mut [f64; GRAM_TILE * GRAM_TILE] =
        blk.try_into().expect("gram block of GRAM_TILE² values");
    let (vals, loc) = (&rows.values[..], &rows.local[..]);
    for r in 0..rows.n_rows() {
        let (sa, ea) = rows.segment(r, a);
        if sa == ea {
            continue;
        }
        if a == b {
            for p in sa..ea {
                let (vi, li) = (vals[p], loc[p] as usize);
                let line = &mut blk[li * GRAM_TILE..(li + 1) * GRAM_TILE];
                for q in p..ea {
                    line[loc[q] as usize % GRAM_TILE] += vi * vals[q];
                }
            }
        } else {
            let (sb, eb) = rows.segment(r, b);
            if sb == eb {
                continue;
            }
            let (vb, lb) = (&vals[sb..eb], &loc[sb..eb]);
            let mut p = sa;
            // Four tile-a entries per sweep: each tile-b value and offset is loaded once for four
            // updates. Their lines are distinct and ascending (columns are sorted and unique).
            while p + 3 < ea {
                let v = [vals[p], vals[p + 1], vals[p + 2], vals[p + 3]];
                let l = [loc[p], loc[p + 1], loc[p + 2], loc[p + 3]].map(|x| x as usize);
                let (l0, rest) = blk.split_at_mut(l[1] * GRAM_TILE);
                let (l1, rest) = rest.split_at_mut((l[2] - l[1]) * GRAM_TILE);
                let (l2, l3) = rest.split_at_mut((l[3] - l[2]) * GRAM_TILE);
                let line0 = &mut l0[l[0] * GRAM_TILE..(l[0] + 1) * GRAM_TILE];
                let line1 = &mut l1[..GRAM_TILE];
                let line2 = &mut l2[..GRAM_TILE];
                let line3 = &mut l3[..GRAM_TILE];
                for (&x, &c) in vb.iter().zip(lb) {
                    let c = c as usize % GRAM_TILE;
                    line0[c] += v[0] * x;
                    line1[c] += v[1] * x;
                    line2[c] += v[2] * x;
                    line3[c] += v[3] * x;
                }
                p += 4;
            }
            while p < ea {
                let (v0, l0) = (vals[p], loc[p] as usize);
                let line0 = &mut blk[l0 * GRAM_TILE..(l0 + 1) * GRAM_TILE];
                for (&x, &c) in vb.iter().zip(lb) {
                    line0[c as usize % GRAM_TILE] += v0 * x;
                }
                p += 1;
            }
        }
    }
}

/// Adds the chunk's XᵀX (upper triangle), column sums and row count to `acc`.
pub(super) fn accumulate(chunk: &CsrChunk, acc: &mut Gram) -> Result<()> {
    if chunk.n_cols != acc.dim() {
        return Err(Error::InvalidArgument(format!(
            "gram: a chunk of {} columns into a gram of {} genes",
            chunk.n_cols,
            acc.dim()
        )));
    }
    let rows = TiledRows::new(chunk, acc.n_tiles())?;
    let pairs = acc.tile_pairs();
    acc.blocks_mut()
        .par_chunks_mut(GRAM_TILE * GRAM_TILE)
        .zip(pairs)
        .with_max_len(1)
        .for_each(|(blk, (a, b))| accumulate_block(&rows, a, b, blk));
    let d = acc.dim();
    // Fixed blocks of values merged in order: the sums' rounding is the same on every run.
    let block = chunk.indices.len().div_ceil(16).max(1 << 16);
    let sums: Vec<Vec<f64>> = chunk
        .indices
        .par_chunks(block)
        .zip(chunk.data.par_chunks(block))
        .map(|(idx, val)| {
            let mut s = vec![0.0f64; d];
            for (&j, &v) in idx.iter().zip(val) {
                s[j as usize] += v as f64;
            }
            s
        })
        .collect();
    for s in &sums {
        acc.sum.iter_mut().zip(s).for_each(|(x, y)| *x += y);
    }
    acc.n_rows += chunk.n_rows() as u64;
    Ok(())
}
