//! The compute backends. [`Backend`]'s methods are the numeric kernels; `cpu` (rayon) and `cuda`
//! implement the same trait, and algorithms are written once against it.

pub mod cpu;
pub mod cuda;

use crate::error::{Error, Result};
use crate::io::CsrChunk;

pub use cpu::CpuBackend;

/// Per-gene (per-column) accumulators over many chunks, in f64.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneSums {
    /// Rows accumulated.
    pub n_rows: u64,
    /// Σ x per column.
    pub sum: Vec<f64>,
    /// Σ x² per column.
    pub sumsq: Vec<f64>,
    /// Rows with a stored non-zero value per column.
    pub nnz: Vec<u64>,
}

impl GeneSums {
    /// Zeroed accumulators for `n_cols` columns.
    pub fn new(n_cols: usize) -> Self {
        GeneSums {
            n_rows: 0,
            sum: vec![0.0; n_cols],
            sumsq: vec![0.0; n_cols],
            nnz: vec![0; n_cols],
        }
    }

    /// Adds another accumulator (e.g. a shard's partial result).
    pub fn merge(&mut self, other: &GeneSums) {
        assert_eq!(
            self.sum.len(),
            other.sum.len(),
            "GeneSums::merge: column count"
        );
        self.n_rows += other.n_rows;
        for (a, b) in self.sum.iter_mut().zip(&other.sum) {
            *a += b;
        }
        for (a, b) in self.sumsq.iter_mut().zip(&other.sumsq) {
            *a += b;
        }
        for (a, b) in self.nnz.iter_mut().zip(&other.nnz) {
            *a += b;
        }
    }

    /// Per-column means.
    pub fn means(&self) -> Vec<f64> {
        let n = self.n_rows.max(1) as f64;
        self.sum.iter().map(|s| s / n).collect()
    }

    /// Per-column variances with `ddof` (0 = population, 1 = sample).
    pub fn variances(&self, ddof: u64) -> Vec<f64> {
        let n = self.n_rows as f64;
        let denom = self.n_rows.saturating_sub(ddof).max(1) as f64;
        self.sum
            .iter()
            .zip(&self.sumsq)
            .map(|(s, q)| {
                let mean = s / n;
                (q / n - mean * mean) * n / denom
            })
            .collect()
    }
}

/// The numeric kernels. Every method has a CPU implementation and (where built) a CUDA twin.
pub trait Backend: Send + Sync {
    /// Short name (`cpu`, `cuda:0`).
    fn name(&self) -> String;

    /// Per-row sums of stored values into `out` (length = rows). With `mask`, rows whose entry
    /// is false are skipped and get 0.
    fn row_totals(&self, chunk: &CsrChunk, mask: Option<&[bool]>, out: &mut [f64]) -> Result<()>;

    /// Adds per-column Σx, Σx² and non-zero counts of the chunk's rows to `acc`. With `mask`,
    /// rows whose entry is false are skipped; with `row_scale`, each row's values are multiplied
    /// by its scale first (x_ij · s_i), which is how normalized moments come from raw counts.
    fn gene_sums(
        &self,
        chunk: &CsrChunk,
        mask: Option<&[bool]>,
        row_scale: Option<&[f64]>,
        acc: &mut GeneSums,
    ) -> Result<()>;
}

/// Checks the optional per-row arguments of a kernel against the chunk.
pub(crate) fn check_row_args(
    chunk: &CsrChunk,
    mask: Option<&[bool]>,
    scale: Option<&[f64]>,
) -> Result<()> {
    let n = chunk.n_rows();
    if mask.is_some_and(|m| m.len() != n) || scale.is_some_and(|s| s.len() != n) {
        return Err(Error::InvalidArgument(format!(
            "kernel argument length does not match {n} rows"
        )));
    }
    Ok(())
}

/// Which backend the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BackendKind {
    /// CUDA when a usable GPU and kernels are present, else CPU.
    #[default]
    Auto,
    /// rayon on the CPU.
    Cpu,
    /// CUDA GPUs (`--devices`).
    Cuda,
}

/// Options that choose and size a backend.
#[derive(Clone, Debug, Default)]
pub struct BackendOptions {
    /// Requested kind.
    pub kind: BackendKind,
    /// CUDA device ordinals (repeat one to run two workers on it).
    pub devices: Vec<usize>,
    /// Suppress the info line printed when `auto` falls back to CPU.
    pub quiet: bool,
}

/// Builds the backend the options ask for.
pub fn select(opts: &BackendOptions) -> Result<Box<dyn Backend>> {
    match opts.kind {
        BackendKind::Cpu => Ok(Box::new(CpuBackend::new())),
        BackendKind::Cuda => cuda::open(&opts.devices),
        BackendKind::Auto => match cuda::open(&opts.devices) {
            Ok(b) => Ok(b),
            Err(e) => {
                if !opts.quiet {
                    eprintln!("info: using the CPU backend ({e})");
                }
                Ok(Box::new(CpuBackend::new()))
            }
        },
    }
}
