//! `run.toml`: every parameter of `scoop run` as plain values, with the defaults that
//! `scoop run --print-config` prints as a commented file a user can edit.
//!
//! A [`RunConfig`] holds text and numbers only; [`RunConfig::params`] parses and checks them into
//! the typed [`RunParams`] the workflow takes. Command-line flags override the file's values
//! (the CLI merges them into a `RunConfig` before resolving).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::Codec;
use crate::ops::filter::CellFilter;
use crate::ops::hvg::Flavor;
use crate::ops::normalize::TargetSum;
use crate::ops::preprocess::PreprocessParams;
use crate::plot::FigureFormat;
use crate::stream::{DEFAULT_CHUNK_ROWS, DEFAULT_CHUNK_VALUES};

/// Components when `n_comps` is not given (lowered to the data's rank bound).
pub const DEFAULT_N_COMPS: usize = 300;
/// Plates a gene must be highly variable in when `min_plates` is not given (lowered to the
/// number of plates).
pub const DEFAULT_MIN_PLATES: usize = 3;

/// The contents of a `run.toml`; a missing key takes its default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Plate `.h5ad` files (raw counts, same genes); the command line's plates replace them.
    pub plates: Vec<PathBuf>,
    /// Output directory.
    pub out_dir: Option<PathBuf>,
    /// Keep only cells where an obs column equals a value (`COLUMN=VALUE`).
    pub filter: Option<String>,
    /// `normalize_total`'s target: `auto` (median of positive totals) or a number.
    pub target_sum: String,
    /// Highly variable genes per plate.
    pub n_top_genes: usize,
    /// `highly_variable_genes` flavor: `seurat`, `cell_ranger` or `seurat_v3`.
    pub flavor: String,
    /// Plates a gene must be highly variable in (default: 3, or the number of plates if fewer).
    pub min_plates: Option<usize>,
    /// Principal components (default: 300, or min(cells, selected genes) if fewer).
    pub n_comps: Option<usize>,
    /// Cells drawn for neighbors, UMAP and the plot (all cells if fewer).
    pub subsample: usize,
    /// Neighbours per cell, the cell itself included.
    pub n_neighbors: usize,
    /// obs columns the UMAP figure is colored by (`plate` is the label `run` adds).
    pub color: Vec<String>,
    /// Format of the UMAP figure: `png`, `svg` or `pdf` (`DIR/umap.EXT`).
    pub figure: String,
    /// Compression of the merged X (and of the plate files' X).
    pub compression: String,
    /// Also write each plate's `scoop preprocess` file, `DIR/plates/STEM_preprocessed.h5ad`,
    /// from pass 2's rows.
    pub keep_plates: bool,
    /// Seed of the subsample, the neighbor search and UMAP.
    pub seed: u64,
    /// Compute backend: `auto`, `cpu` or `cuda`.
    pub backend: String,
    /// CUDA devices.
    pub devices: Vec<usize>,
    /// CPU threads (default: all cores).
    pub threads: Option<usize>,
    /// Most rows per streamed chunk.
    pub chunk_rows: usize,
    /// Most stored values per streamed chunk.
    pub chunk_values: u64,
    /// No progress bars.
    pub quiet: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        let p = PreprocessParams::default();
        RunConfig {
            plates: Vec::new(),
            out_dir: None,
            filter: None,
            target_sum: p.target_sum.to_string(),
            n_top_genes: p.n_top_genes,
            flavor: p.flavor.name().into(),
            min_plates: None,
            n_comps: None,
            subsample: 1_000_000,
            n_neighbors: 15,
            color: vec!["cell_line".into(), "plate".into()],
            figure: FigureFormat::Png.to_string(),
            compression: Codec::None.to_string(),
            keep_plates: false,
            seed: 0,
            backend: "auto".into(),
            devices: Vec::new(),
            threads: None,
            chunk_rows: DEFAULT_CHUNK_ROWS,
            chunk_values: DEFAULT_CHUNK_VALUES,
            quiet: false,
        }
    }
}

/// The workflow's parameters, parsed and checked (what the steps take).
#[derive(Clone, Debug)]
pub struct RunParams {
    /// Cell filter.
    pub filter: Option<CellFilter>,
    /// normalize/HVG parameters.
    pub preprocess: PreprocessParams,
    /// Plates a gene must be highly variable in; `None` = [`DEFAULT_MIN_PLATES`] lowered to the
    /// number of plates.
    pub min_plates: Option<usize>,
    /// Components; `None` = [`DEFAULT_N_COMPS`] lowered to min(cells, genes).
    pub n_comps: Option<usize>,
    /// Cells drawn (lowered to the cell count).
    pub subsample: usize,
    /// Neighbours per cell.
    pub n_neighbors: usize,
    /// obs columns of the figure.
    pub color: Vec<String>,
    /// Format of the UMAP figure.
    pub figure: FigureFormat,
    /// Compression of the merged X.
    pub compression: Codec,
    /// Seed of the subsample, the neighbor search and UMAP.
    pub seed: u64,
}

impl RunConfig {
    /// Reads a `run.toml`; unknown keys are errors (a misspelt key must not pass silently).
    pub fn read(path: &Path) -> Result<RunConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text).map_err(|m| Error::format(path, "config", m))
    }

    /// Parses TOML text; the error is the parser's message.
    pub fn parse(text: &str) -> std::result::Result<RunConfig, String> {
        toml::from_str(text).map_err(|e| e.message().to_string())
    }

    /// The typed parameters; each error names the key.
    pub fn params(&self) -> Result<RunParams> {
        let bad = |key: &str, e: Error| Error::InvalidArgument(format!("{key}: {e}"));
        let target_sum: TargetSum = self.target_sum.parse().map_err(|e| bad("target_sum", e))?;
        let flavor: Flavor = self.flavor.parse().map_err(|e| bad("flavor", e))?;
        let filter = match self.filter.as_deref() {
            None | Some("") => None,
            Some(f) => Some(f.parse::<CellFilter>().map_err(|e| bad("filter", e))?),
        };
        let compression: Codec = self
            .compression
            .parse()
            .map_err(|e| bad("compression", e))?;
        let figure: FigureFormat = self
            .figure
            .parse()
            .map_err(|e: String| Error::InvalidArgument(format!("figure: {e}")))?;
        let positive = |key: &str, v: usize| {
            if v == 0 {
                Err(Error::InvalidArgument(format!("{key} must be at least 1")))
            } else {
                Ok(v)
            }
        };
        positive("n_top_genes", self.n_top_genes)?;
        positive("subsample", self.subsample)?;
        positive("n_neighbors", self.n_neighbors)?;
        positive("chunk_rows", self.chunk_rows)?;
        positive("chunk_values", self.chunk_values as usize)?;
        if let Some(m) = self.min_plates {
            positive("min_plates", m)?;
        }
        if let Some(k) = self.n_comps {
            positive("n_comps", k)?;
        }
        if self.color.is_empty() {
            return Err(Error::InvalidArgument(
                "color: name at least one obs column".into(),
            ));
        }
        Ok(RunParams {
            filter,
            preprocess: PreprocessParams {
                target_sum,
                flavor,
                n_top_genes: self.n_top_genes,
                ..PreprocessParams::default()
            },
            min_plates: self.min_plates,
            n_comps: self.n_comps,
            subsample: self.subsample,
            n_neighbors: self.n_neighbors,
            color: self.color.clone(),
            figure,
            compression,
            seed: self.seed,
        })
    }

    /// The configuration as a commented TOML file: every key with its meaning; keys without a
    /// value (`out_dir`, `filter`, `min_plates`, `n_comps`, `threads`) are commented out with an
    /// example. Reading the text back gives `self`.
    pub fn commented_toml(&self) -> String {
        fn v<T: Serialize>(x: &T) -> String {
            toml::Value::try_from(x)
                .map(|v| v.to_string())
                .unwrap_or_default()
        }
        fn entry(out: &mut String, help: &str, key: &str, value: Option<String>, example: &str) {
            for line in help.lines() {
                out.push_str(&format!("# {line}\n"));
            }
            match value {
                Some(val) => out.push_str(&format!("{key} = {val}\n\n")),
                None => out.push_str(&format!("# {key} = {example}\n\n")),
            }
        }
        let mut s = String::from(
            "# scoop run configuration: `scoop run --config run.toml` (flags override it).\n\n",
        );
        let paths = |p: &[PathBuf]| {
            v(&p.iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect::<Vec<_>>())
        };
        entry(
            &mut s,
            "Plate .h5ad files (raw counts, same genes); plates on the command line replace them.",
            "plates",
            Some(paths(&self.plates)),
            "",
        );
        entry(
            &mut s,
            "Output directory (merged.h5ad, pca.h5ad, X_pca.zarr, subset.h5ad, umap.png, run.json).",
            "out_dir",
            self.out_dir
                .as_ref()
                .map(|p| v(&p.to_string_lossy().into_owned())),
            "\"run\"",
        );
        entry(
            &mut s,
            "Keep only cells where an obs column equals a value (default: every cell).",
            "filter",
            self.filter.as_ref().map(v),
            "\"pass_filter=full\"",
        );
        entry(
            &mut s,
            "normalize_total target: \"auto\" (median of positive per-cell totals) or a number.",
            "target_sum",
            Some(v(&self.target_sum)),
            "",
        );
        entry(
            &mut s,
            "Highly variable genes per plate.",
            "n_top_genes",
            Some(v(&self.n_top_genes)),
            "",
        );
        entry(
            &mut s,
            "highly_variable_genes flavor: \"seurat\", \"cell_ranger\" or \"seurat_v3\".",
            "flavor",
            Some(v(&self.flavor)),
            "",
        );
        entry(
            &mut s,
            &format!(
                "Keep genes highly variable in at least this many plates \
                 (default: {DEFAULT_MIN_PLATES}, or the number of plates if fewer)."
            ),
            "min_plates",
            self.min_plates.map(|m| v(&m)),
            &DEFAULT_MIN_PLATES.to_string(),
        );
        entry(
            &mut s,
            &format!(
                "Principal components (default: {DEFAULT_N_COMPS}, or min(cells, selected genes) \
                 if fewer)."
            ),
            "n_comps",
            self.n_comps.map(|k| v(&k)),
            &DEFAULT_N_COMPS.to_string(),
        );
        entry(
            &mut s,
            "Cells drawn for neighbors, UMAP and the plot (all cells if fewer).",
            "subsample",
            Some(v(&self.subsample)),
            "",
        );
        entry(
            &mut s,
            "Neighbours per cell, the cell itself included.",
            "n_neighbors",
            Some(v(&self.n_neighbors)),
            "",
        );
        entry(
            &mut s,
            "obs columns umap.png is colored by, one panel each (\"plate\" is the plate label).",
            "color",
            Some(v(&self.color)),
            "",
        );
        entry(
            &mut s,
            "Format of the UMAP figure, DIR/umap.EXT: \"png\", \"svg\" or \"pdf\" (vector frames \
             and text, the points rasterized).",
            "figure",
            Some(v(&self.figure)),
            "",
        );
        entry(
            &mut s,
            "Compression of merged.h5ad's X (and the plate files'): \"none\", \"gzip[:LEVEL]\", \
             \"lzf\" or \"zstd[:LEVEL]\".",
            "compression",
            Some(v(&self.compression)),
            "",
        );
        entry(
            &mut s,
            "Also write each plate as `scoop preprocess` does, DIR/plates/STEM_preprocessed.h5ad, \
             from the same pass as merged.h5ad.",
            "keep_plates",
            Some(v(&self.keep_plates)),
            "",
        );
        entry(
            &mut s,
            "Seed of the subsample, the neighbor search and UMAP.",
            "seed",
            Some(v(&self.seed)),
            "",
        );
        entry(
            &mut s,
            "Compute backend: \"auto\", \"cpu\" or \"cuda\".",
            "backend",
            Some(v(&self.backend)),
            "",
        );
        entry(
            &mut s,
            "CUDA devices to shard chunks over.",
            "devices",
            Some(v(&self.devices)),
            "",
        );
        entry(
            &mut s,
            "CPU threads (default: all cores).",
            "threads",
            self.threads.map(|t| v(&t)),
            "16",
        );
        entry(
            &mut s,
            "Most rows per streamed chunk.",
            "chunk_rows",
            Some(v(&self.chunk_rows)),
            "",
        );
        entry(
            &mut s,
            "Most stored values per streamed chunk (about 8 bytes each in memory).",
            "chunk_values",
            Some(v(&self.chunk_values)),
            "",
        );
        entry(
            &mut s,
            "No progress bars.",
            "quiet",
            Some(v(&self.quiet)),
            "",
        );
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_defaults_read_back_as_the_defaults() {
        let d = RunConfig::default();
        let text = d.commented_toml();
        assert_eq!(RunConfig::parse(&text).unwrap(), d);
        assert!(text.contains("# filter = \"pass_filter=full\""), "{text}");
        d.params().unwrap();
    }

    #[test]
    fn set_values_read_back() {
        let c = RunConfig {
            plates: vec!["a.h5ad".into(), "b.h5ad".into()],
            out_dir: Some("out".into()),
            filter: Some("pass_filter=full".into()),
            min_plates: Some(2),
            n_comps: Some(50),
            threads: Some(4),
            color: vec!["plate".into()],
            keep_plates: true,
            ..RunConfig::default()
        };
        assert_eq!(RunConfig::parse(&c.commented_toml()).unwrap(), c);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let e = RunConfig::parse("n_comp = 3\n").unwrap_err();
        assert!(e.contains("n_comp"), "{e}");
        let c = RunConfig::parse("flavor = \"seurat3\"\n").unwrap();
        let e = c.params().unwrap_err().to_string();
        assert!(e.starts_with("flavor:"), "{e}");
    }
}
