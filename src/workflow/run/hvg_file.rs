//! `DIR/stats/STEM.hvg`: one plate's whole `highly_variable_genes` table, saved by its statistics
//! step so that `--keep-plates` can write the plate's var columns (as `scoop preprocess` does)
//! without a statistics pass.
//!
//! Layout (little-endian): the magic `SCHVG001`, the flavor's name (u64 length, then UTF-8), the
//! gene count n (u64), the `highly_variable` column (n bytes, 0 or 1), then the statistics as f64
//! columns of n values each: `means`, `dispersions`, `dispersions_norm` for `seurat` and
//! `cell_ranger`; `means`, `variances`, `variances_norm`, `highly_variable_rank` for
//! `seurat_v3`.

use std::path::Path;

use crate::error::{Error, Result};
use crate::ops::hvg::{Flavor, HvgStats, HvgTable};

const MAGIC: &[u8; 8] = b"SCHVG001";

/// Writes `table` to `path` whole or not at all ([`crate::io::output::write_file`]).
pub fn save(path: &Path, table: &HvgTable) -> Result<()> {
    let n = table.len();
    let name = table.flavor.name().as_bytes();
    let mut bytes = Vec::with_capacity(32 + name.len() + n * 33);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(name.len() as u64).to_le_bytes());
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(&(n as u64).to_le_bytes());
    bytes.extend(table.highly_variable.iter().map(|&h| h as u8));
    let mut put = |v: &mut dyn Iterator<Item = f64>| {
        for x in v {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
    };
    match &table.stats {
        HvgStats::Dispersion {
            means,
            dispersions,
            dispersions_norm,
        } => {
            for c in [means, dispersions, dispersions_norm] {
                put(&mut c.iter().copied());
            }
        }
        HvgStats::SeuratV3 {
            means,
            variances,
            variances_norm,
            highly_variable_rank,
        } => {
            for c in [means, variances, variances_norm] {
                put(&mut c.iter().copied());
            }
            put(&mut highly_variable_rank.iter().map(|&r| f64::from(r)));
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    crate::io::output::write_file(path, &bytes)
}

/// Reads a table written by [`save`].
pub fn load(path: &Path) -> Result<HvgTable> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |m: &str| {
        Error::format(
            path,
            "hvg",
            format!("{m}; remove run.json to start the run afresh"),
        )
    };
    let word = |i: usize| {
        bytes
            .get(i..i + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    if bytes.get(..8) != Some(&MAGIC[..]) {
        return Err(bad("not a scoop HVG table"));
    }
    let name_len = word(8).ok_or_else(|| bad("truncated"))? as usize;
    let name = bytes
        .get(16..16usize.saturating_add(name_len))
        .and_then(|b| std::str::from_utf8(b).ok())
        .ok_or_else(|| bad("truncated"))?;
    let flavor: Flavor = name.parse().map_err(|_| bad("unknown flavor"))?;
    let at = 16 + name_len;
    let n = word(at).ok_or_else(|| bad("truncated"))? as usize;
    let columns = if flavor == Flavor::SeuratV3 { 4 } else { 3 };
    let start = at + 8;
    if Some(bytes.len())
        != n.checked_mul(1 + 8 * columns)
            .and_then(|b| b.checked_add(start))
    {
        return Err(bad("truncated or of the wrong size"));
    }
    let highly_variable = bytes[start..start + n].iter().map(|&b| b != 0).collect();
    let column = |c: usize| -> Vec<f64> {
        bytes[start + n + 8 * n * c..start + n + 8 * n * (c + 1)]
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect()
    };
    let stats = if flavor == Flavor::SeuratV3 {
        HvgStats::SeuratV3 {
            means: column(0),
            variances: column(1),
            variances_norm: column(2),
            highly_variable_rank: column(3).into_iter().map(|r| r as f32).collect(),
        }
    } else {
        HvgStats::Dispersion {
            means: column(0),
            dispersions: column(1),
            dispersions_norm: column(2),
        }
    };
    Ok(HvgTable {
        flavor,
        stats,
        highly_variable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_both_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stats").join("p.hvg");
        let dispersion = HvgTable {
            flavor: Flavor::CellRanger,
            stats: HvgStats::Dispersion {
                means: vec![0.5, 1.25, 0.0],
                dispersions: vec![f64::NAN, 2.0, -1.5],
                dispersions_norm: vec![0.1, f64::INFINITY, 3.0],
            },
            highly_variable: vec![false, true, true],
        };
        save(&path, &dispersion).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back.flavor, Flavor::CellRanger);
        assert_eq!(back.highly_variable, dispersion.highly_variable);
        let HvgStats::Dispersion { dispersions, .. } = &back.stats else {
            panic!("{back:?}")
        };
        assert!(dispersions[0].is_nan() && dispersions[2] == -1.5);
        let v3 = HvgTable {
            flavor: Flavor::SeuratV3,
            stats: HvgStats::SeuratV3 {
                means: vec![1.0, 2.0],
                variances: vec![3.0, 4.0],
                variances_norm: vec![5.0, 6.0],
                highly_variable_rank: vec![0.0, f32::NAN],
            },
            highly_variable: vec![true, false],
        };
        save(&path, &v3).unwrap();
        let back = load(&path).unwrap();
        let HvgStats::SeuratV3 {
            highly_variable_rank,
            variances_norm,
            ..
        } = &back.stats
        else {
            panic!("{back:?}")
        };
        assert_eq!(variances_norm, &[5.0, 6.0]);
        assert!(highly_variable_rank[0] == 0.0 && highly_variable_rank[1].is_nan());
        std::fs::write(&path, b"SCHVG001\x09").unwrap();
        assert!(load(&path).is_err());
    }
}
