//! The compression scoop writes with: `none | gzip[:LEVEL] | lzf | zstd[:LEVEL]`.

use std::fmt;
use std::str::FromStr;

use hdf5::filters::Filter;

use super::id;
use crate::error::Error;

/// How written datasets are compressed.
///
/// gzip and lzf are read by h5py (and so anndata) as installed; zstd needs `import hdf5plugin`
/// in the reading Python.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Codec {
    /// Uncompressed (anndata's default).
    #[default]
    None,
    /// gzip (deflate) at a level from 0 to 9.
    Gzip(u8),
    /// lzf (h5py's fast codec), no level.
    Lzf,
    /// Zstandard (hdf5plugin's filter 32015) at a level from 1 to 22.
    Zstd(i32),
}

impl Codec {
    /// gzip's level when none is given (h5py's default).
    pub const GZIP_DEFAULT: u8 = 4;
    /// Zstandard's level when none is given (zstd's and hdf5plugin's default).
    pub const ZSTD_DEFAULT: i32 = 3;

    /// The HDF5 filter pipeline that writes this codec.
    pub fn filters(self) -> Vec<Filter> {
        match self {
            Codec::None => Vec::new(),
            Codec::Gzip(level) => vec![Filter::deflate(level)],
            Codec::Lzf => vec![Filter::lzf()],
            Codec::Zstd(level) => vec![Filter::user(id::ZSTD, &[level as u32])],
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Codec::None => write!(f, "none"),
            Codec::Gzip(level) => write!(f, "gzip:{level}"),
            Codec::Lzf => write!(f, "lzf"),
            Codec::Zstd(level) => write!(f, "zstd:{level}"),
        }
    }
}

impl FromStr for Codec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| {
            Error::InvalidArgument(format!(
                "compression {s:?}: {why} (expected none, gzip[:0-9], lzf or zstd[:1-22])"
            ))
        };
        let (name, level) = match s.split_once(':') {
            Some((n, l)) => (n, Some(l)),
            None => (s, None),
        };
        let level_in = |lo: i32, hi: i32| -> Result<Option<i32>, Error> {
            level
                .map(|l| match l.parse::<i32>() {
                    Ok(v) if (lo..=hi).contains(&v) => Ok(v),
                    _ => Err(bad(&format!("level {l:?} outside {lo}..={hi}"))),
                })
                .transpose()
        };
        match name.to_ascii_lowercase().as_str() {
            "none" if level.is_none() => Ok(Codec::None),
            "gzip" => Ok(Codec::Gzip(
                level_in(0, 9)?.map_or(Self::GZIP_DEFAULT, |l| l as u8),
            )),
            "lzf" if level.is_none() => Ok(Codec::Lzf),
            "zstd" => Ok(Codec::Zstd(level_in(1, 22)?.unwrap_or(Self::ZSTD_DEFAULT))),
            "none" | "lzf" => Err(bad("takes no level")),
            _ => Err(bad("unknown codec")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let p = |s: &str| s.parse::<Codec>();
        assert_eq!(p("none").unwrap(), Codec::None);
        assert_eq!(p("gzip").unwrap(), Codec::Gzip(4));
        assert_eq!(p("gzip:9").unwrap(), Codec::Gzip(9));
        assert_eq!(p("GZIP:0").unwrap(), Codec::Gzip(0));
        assert_eq!(p("lzf").unwrap(), Codec::Lzf);
        assert_eq!(p("zstd").unwrap(), Codec::Zstd(3));
        assert_eq!(p("zstd:22").unwrap(), Codec::Zstd(22));
        for bad in [
            "gzip:10", "gzip:x", "zstd:0", "zstd:23", "lzf:1", "none:1", "bzip2", "",
        ] {
            let e = p(bad).unwrap_err().to_string();
            assert!(e.contains("expected none, gzip"), "{bad}: {e}");
        }
        for c in [Codec::None, Codec::Gzip(6), Codec::Lzf, Codec::Zstd(7)] {
            assert_eq!(p(&c.to_string()).unwrap(), c);
        }
    }
}
