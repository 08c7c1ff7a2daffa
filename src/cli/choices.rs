//! The command line's closed choices: clap value enums mirroring the library's option enums, so
//! that no library module derives clap. Each doc comment is the `--help` text of its value.

use crate::backend::BackendKind;
use crate::io::concat::Join;
use crate::io::ReadPath;
use crate::ops::eigen::EigenSolver;
use crate::ops::hvg::Flavor;
use crate::ops::knn::KnnMethod;
use crate::plot::FigureFormat;

/// Which backend the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BackendArg {
    /// CUDA when a usable GPU and kernels are present, else CPU.
    #[default]
    Auto,
    /// rayon on the CPU.
    Cpu,
    /// CUDA GPUs (`--devices`).
    Cuda,
}

impl From<BackendArg> for BackendKind {
    fn from(a: BackendArg) -> Self {
        match a {
            BackendArg::Auto => BackendKind::Auto,
            BackendArg::Cpu => BackendKind::Cpu,
            BackendArg::Cuda => BackendKind::Cuda,
        }
    }
}

/// How matrix values are read from `.h5ad` inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ReadPathArg {
    /// Positioned reads, decompressed on all cores outside HDF5 (HDF5 for storage it cannot map).
    #[default]
    Parallel,
    /// Every byte through HDF5 on one thread (the reference path).
    Hdf5,
}

impl From<ReadPathArg> for ReadPath {
    fn from(a: ReadPathArg) -> Self {
        match a {
            ReadPathArg::Parallel => ReadPath::Parallel,
            ReadPathArg::Hdf5 => ReadPath::Hdf5,
        }
    }
}

/// How the var axis is joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum JoinArg {
    /// Genes present in every input, in the first input's order.
    #[default]
    Inner,
    /// Genes present in any input (sorted, as `pd.Index.union` orders them, unless every input
    /// has the same genes); absent genes are zeros.
    Outer,
}

impl From<JoinArg> for Join {
    fn from(a: JoinArg) -> Self {
        match a {
            JoinArg::Inner => Join::Inner,
            JoinArg::Outer => Join::Outer,
        }
    }
}

/// Which `highly_variable_genes` flavor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FlavorArg {
    /// Dispersion of normalized counts, log-mean bins, z-scored per bin (scanpy's default).
    #[default]
    Seurat,
    /// Dispersion of log-normalized data, percentile bins, median/MAD-normalized per bin.
    #[value(name = "cell_ranger")]
    CellRanger,
    /// Variance of raw counts standardized by a loess fit of log-variance on log-mean.
    #[value(name = "seurat_v3")]
    SeuratV3,
}

impl From<FlavorArg> for Flavor {
    fn from(a: FlavorArg) -> Self {
        match a {
            FlavorArg::Seurat => Flavor::Seurat,
            FlavorArg::CellRanger => Flavor::CellRanger,
            FlavorArg::SeuratV3 => Flavor::SeuratV3,
        }
    }
}

/// How the top eigenpairs are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EigenArg {
    /// `full` up to 3,000 genes, `subspace` above.
    #[default]
    Auto,
    /// Full symmetric eigendecomposition (what scanpy's `scipy.linalg.eigh` does).
    Full,
    /// Subspace iteration for the top k only.
    Subspace,
}

impl From<EigenArg> for EigenSolver {
    fn from(a: EigenArg) -> Self {
        match a {
            EigenArg::Auto => EigenSolver::Auto,
            EigenArg::Full => EigenSolver::Full,
            EigenArg::Subspace => EigenSolver::Subspace,
        }
    }
}

/// How neighbours are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum KnnMethodArg {
    /// Exact up to 8191 points on the CPU (scanpy's brute-force threshold) and on
    /// any GPU; NN-descent above it on the CPU.
    #[default]
    Auto,
    /// Brute force: every pair (GEMM-class work on a GPU, n² on a CPU).
    Exact,
    /// NN-descent (CPU).
    Approx,
}

impl From<KnnMethodArg> for KnnMethod {
    fn from(a: KnnMethodArg) -> Self {
        match a {
            KnnMethodArg::Auto => KnnMethod::Auto,
            KnnMethodArg::Exact => KnnMethod::Exact,
            KnnMethodArg::Approx => KnnMethod::Approx,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    /// The help texts name the library's thresholds, so they cannot drift apart.
    #[test]
    fn auto_helps_name_the_thresholds() {
        let help = |v: Option<clap::builder::PossibleValue>| {
            v.unwrap().get_help().unwrap().to_string().replace(',', "")
        };
        let eigen = help(EigenArg::Auto.to_possible_value());
        assert!(
            eigen.contains(&crate::ops::eigen::AUTO_FULL_MAX_DIM.to_string()),
            "{eigen}"
        );
        let knn = help(KnnMethodArg::Auto.to_possible_value());
        assert!(
            knn.contains(&crate::ops::knn::EXACT_MAX_CPU.to_string()),
            "{knn}"
        );
    }
}

/// How progress and events are reported on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormatArg {
    /// Progress bars (hidden when stderr is not a terminal).
    #[default]
    Text,
    /// One JSON object per line for each event (step start, skip and finish, progress ticks,
    /// the run's end, errors); no bars.
    Json,
}

impl From<LogFormatArg> for crate::events::LogFormat {
    fn from(a: LogFormatArg) -> Self {
        match a {
            LogFormatArg::Text => crate::events::LogFormat::Text,
            LogFormatArg::Json => crate::events::LogFormat::Json,
        }
    }
}

/// The file format of a figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FigureFormatArg {
    /// 8-bit RGB PNG at --dpi.
    Png,
    /// SVG: vector frames, text and legend; the points as an embedded PNG at --dpi.
    Svg,
    /// PDF: vector frames, text (DejaVu Sans embedded) and legend; the points as an embedded
    /// image at --dpi.
    Pdf,
}

impl From<FigureFormatArg> for FigureFormat {
    fn from(a: FigureFormatArg) -> Self {
        match a {
            FigureFormatArg::Png => FigureFormat::Png,
            FigureFormatArg::Svg => FigureFormat::Svg,
            FigureFormatArg::Pdf => FigureFormat::Pdf,
        }
    }
}
