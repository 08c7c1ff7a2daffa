//! Accumulators and operands of the PCA kernels: the gram matrix XᵀX with column sums, and the
//! loadings a chunk is projected on.

use crate::error::{Error, Result};

/// Genes per side of a gram tile. A tile of f64 (512 KiB) stays in a core's L2 cache while a
/// chunk's rows are scattered into it.
pub const GRAM_TILE: usize = 256;

/// Σ xᵢxⱼ over rows for every gene pair i ≤ j, and Σ xᵢ per gene, in f64.
///
/// The upper triangle is stored as [`GRAM_TILE`]² blocks, one per tile pair (a, b) with a ≤ b,
/// each contiguous and row-major, so a kernel can own a block and keep it in cache. Entries of a
/// diagonal block below its diagonal, and padding past `dim`, stay zero.
#[derive(Clone, Debug, PartialEq)]
pub struct Gram {
    dim: usize,
    n_tiles: usize,
    /// Rows accumulated.
    pub n_rows: u64,
    /// Σ x per gene.
    pub sum: Vec<f64>,
    blocks: Vec<f64>,
}

impl Gram {
    /// Zeroed accumulators for `dim` genes.
    pub fn new(dim: usize) -> Self {
        let n_tiles = dim.div_ceil(GRAM_TILE);
        let n_pairs = n_tiles * (n_tiles + 1) / 2;
        Gram {
            dim,
            n_tiles,
            n_rows: 0,
            sum: vec![0.0; dim],
            blocks: vec![0.0; n_pairs * GRAM_TILE * GRAM_TILE],
        }
    }

    /// Number of genes.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of gene tiles per side.
    pub fn n_tiles(&self) -> usize {
        self.n_tiles
    }

    /// The tile pairs (a, b), a ≤ b, in block order.
    pub fn tile_pairs(&self) -> Vec<(usize, usize)> {
        (0..self.n_tiles)
            .flat_map(|a| (a..self.n_tiles).map(move |b| (a, b)))
            .collect()
    }

    /// The blocks, [`GRAM_TILE`]² values each, in [`Gram::tile_pairs`] order.
    pub fn blocks_mut(&mut self) -> &mut [f64] {
        &mut self.blocks
    }

    /// The blocks, read-only.
    pub fn blocks(&self) -> &[f64] {
        &self.blocks
    }

    fn block_index(&self, a: usize, b: usize) -> usize {
        // Pairs (a', b') with a' < a come first: Σ_{a'<a} (n − a').
        a * self.n_tiles - a * (a.saturating_sub(1)) / 2 + (b - a)
    }

    /// Σ xᵢxⱼ for genes i and j (either order).
    pub fn get(&self, i: usize, j: usize) -> f64 {
        let (i, j) = if i <= j { (i, j) } else { (j, i) };
        let (a, b) = (i / GRAM_TILE, j / GRAM_TILE);
        let blk = self.block_index(a, b) * GRAM_TILE * GRAM_TILE;
        self.blocks[blk + (i % GRAM_TILE) * GRAM_TILE + j % GRAM_TILE]
    }

    /// Adds another accumulator of the same dimension (a shard's partial result).
    pub fn merge(&mut self, other: &Gram) -> Result<()> {
        if other.dim != self.dim {
            return Err(Error::InvalidArgument(format!(
                "gram of {} genes merged into one of {}",
                other.dim, self.dim
            )));
        }
        self.n_rows += other.n_rows;
        for (a, b) in self.sum.iter_mut().zip(&other.sum) {
            *a += b;
        }
        for (a, b) in self.blocks.iter_mut().zip(&other.blocks) {
            *a += b;
        }
        Ok(())
    }

    /// Adds a dense `dim x dim` row-major matrix whose upper triangle (i ≤ j) holds Σ xᵢxⱼ of
    /// `n_rows` further rows with column sums `sum` (what a device accumulates); entries below
    /// the diagonal are ignored.
    pub fn add_dense_upper(&mut self, n_rows: u64, sum: &[f64], dense: &[f64]) -> Result<()> {
        let d = self.dim;
        if sum.len() != d || dense.len() != d * d {
            return Err(Error::InvalidArgument(format!(
                "gram of {d} genes given {} sums and {} products",
                sum.len(),
                dense.len()
            )));
        }
        self.n_rows += n_rows;
        for (a, b) in self.sum.iter_mut().zip(sum) {
            *a += b;
        }
        for (p, (ta, tb)) in self.tile_pairs().into_iter().enumerate() {
            let blk = &mut self.blocks[p * GRAM_TILE * GRAM_TILE..(p + 1) * GRAM_TILE * GRAM_TILE];
            for li in 0..GRAM_TILE.min(d - ta * GRAM_TILE) {
                let i = ta * GRAM_TILE + li;
                let row = &dense[i * d..(i + 1) * d];
                let first = if ta == tb { li } else { 0 };
                for lj in first..GRAM_TILE.min(d - tb * GRAM_TILE) {
                    blk[li * GRAM_TILE + lj] += row[tb * GRAM_TILE + lj];
                }
            }
        }
        Ok(())
    }

    /// The full symmetric `dim x dim` matrix, row-major.
    pub fn to_dense(&self) -> Vec<f64> {
        let d = self.dim;
        let mut out = vec![0.0; d * d];
        for (p, (a, b)) in self.tile_pairs().into_iter().enumerate() {
            let blk = &self.blocks[p * GRAM_TILE * GRAM_TILE..(p + 1) * GRAM_TILE * GRAM_TILE];
            for li in 0..GRAM_TILE {
                let i = a * GRAM_TILE + li;
                if i >= d {
                    break;
                }
                for lj in 0..GRAM_TILE {
                    let j = b * GRAM_TILE + lj;
                    if j >= d {
                        break;
                    }
                    if a == b && lj < li {
                        continue;
                    }
                    let v = blk[li * GRAM_TILE + lj];
                    out[i * d + j] = v;
                    out[j * d + i] = v;
                }
            }
        }
        out
    }
}

/// What a chunk is projected on: `out[r, c] = Σⱼ x[r, j] · loadings[j, c] − offset[c]`.
///
/// For PCA, `loadings` are the components (genes x k) and `offset` = μ·V, so the result is the
/// centred data's coordinates without densifying the chunk.
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    dim: usize,
    k: usize,
    loadings: Vec<f32>,
    offset: Vec<f32>,
}

impl Projection {
    /// `loadings` is `dim x k` row-major; `offset` has `k` entries.
    pub fn new(dim: usize, k: usize, loadings: Vec<f32>, offset: Vec<f32>) -> Result<Self> {
        if loadings.len() != dim * k || offset.len() != k {
            return Err(Error::InvalidArgument(format!(
                "projection of {dim} genes onto {k} columns needs {} loadings and {k} offsets, \
                 got {} and {}",
                dim * k,
                loadings.len(),
                offset.len()
            )));
        }
        Ok(Projection {
            dim,
            k,
            loadings,
            offset,
        })
    }

    /// Genes (rows of the loadings).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Output columns.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Loadings, `dim x k` row-major.
    pub fn loadings(&self) -> &[f32] {
        &self.loadings
    }

    /// Per-column offset subtracted from every row.
    pub fn offset(&self) -> &[f32] {
        &self.offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_upper_round_trips_through_to_dense() {
        let d = GRAM_TILE + 37;
        let mut dense = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                // Symmetric above the diagonal, junk below it (which must be ignored).
                dense[i * d + j] = if i <= j { (i * 7 + j * 3) as f64 } else { -1.0 };
            }
        }
        let sum: Vec<f64> = (0..d).map(|i| i as f64).collect();
        let mut g = Gram::new(d);
        g.add_dense_upper(5, &sum, &dense).unwrap();
        g.add_dense_upper(1, &sum, &dense).unwrap();
        assert_eq!(g.n_rows, 6);
        assert_eq!(g.sum[d - 1], 2.0 * (d - 1) as f64);
        let full = g.to_dense();
        for i in 0..d {
            for j in 0..d {
                let (a, b) = (i.min(j), i.max(j));
                assert_eq!(full[i * d + j], 2.0 * (a * 7 + b * 3) as f64, "({i}, {j})");
            }
        }
        assert!(g.add_dense_upper(1, &sum, &dense[1..]).is_err());
    }

    #[test]
    fn block_index_follows_tile_pair_order() {
        let g = Gram::new(5 * GRAM_TILE - 3);
        for (p, (a, b)) in g.tile_pairs().into_iter().enumerate() {
            assert_eq!(g.block_index(a, b), p, "pair ({a}, {b})");
        }
    }
}
