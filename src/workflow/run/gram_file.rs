//! `DIR/gram.bin`: the PCA gram accumulated in pass 2, kept so that a rerun with other PCA
//! parameters starts from it instead of rereading the plates.
//!
//! Layout (little-endian): the magic `SCGRAM01`, dim (u64), rows (u64), the column sums (dim
//! f64), then the gram's tile blocks (f64, in [`Gram::blocks`] order).

use std::path::Path;

use crate::backend::Gram;
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"SCGRAM01";

/// Writes `gram` to `path` through a temporary sibling and a rename.
pub fn save(path: &Path, gram: &Gram) -> Result<()> {
    // `path` is a staged output: its set makes it visible.
    let mut bytes = Vec::with_capacity(24 + 8 * (gram.sum.len() + gram.blocks().len()));
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(gram.dim() as u64).to_le_bytes());
    bytes.extend_from_slice(&gram.n_rows.to_le_bytes());
    for v in gram.sum.iter().chain(gram.blocks()) {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

/// Reads a gram written by [`save`].
pub fn load(path: &Path) -> Result<Gram> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |m: &str| Error::format(path, "gram", m.to_string());
    if bytes.len() < 24 || &bytes[..8] != MAGIC {
        return Err(bad("not a scoop gram file"));
    }
    let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    let dim = usize::try_from(word(8)).map_err(|_| bad("dimension too large"))?;
    let mut gram = Gram::new(dim);
    gram.n_rows = word(16);
    let n_blocks = gram.blocks().len();
    if bytes.len() != 24 + 8 * (dim + n_blocks) {
        return Err(bad("truncated or of the wrong size"));
    }
    let mut values = bytes[24..]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")));
    for s in gram.sum.iter_mut() {
        *s = values.next().expect("length checked");
    }
    for b in gram.blocks_mut() {
        *b = values.next().expect("length checked");
    }
    Ok(gram)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gram.bin");
        let mut g = Gram::new(300);
        g.n_rows = 17;
        g.sum
            .iter_mut()
            .enumerate()
            .for_each(|(i, s)| *s = i as f64);
        g.blocks_mut()
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = i as f64 * 0.5);
        save(&path, &g).unwrap();
        assert_eq!(load(&path).unwrap(), g);
        std::fs::write(&path, b"SCGRAM01short").unwrap();
        assert!(load(&path).is_err());
    }
}
