//! Workflow steps: each joins the file layer ([`crate::io`]) to the algorithms ([`crate::ops`])
//! for one subcommand, and owns its outputs (temporary names, `--force`, reports).

pub mod convert;
pub mod neighbors;
pub mod pca;
pub mod plot;
pub mod preprocess;
mod report;
pub mod run;
pub mod subsample;
pub mod umap;

use std::path::Path;

use crate::error::Result;
use crate::io::{H5adReader, OutputFile, OutputOptions, OutputSet};

/// The one-output set of a step reading `input` and writing `output`: checked (not the input,
/// absent unless `force`, directory writable) before the step does any work.
pub(crate) fn single_output(input: &Path, output: &Path, force: bool) -> Result<OutputSet> {
    OutputSet::create(&[output], &OutputOptions::new(force).inputs([input]))
}

/// The matrices of an AnnData file (`X`, `raw`, each `layers/KEY`), and what a step did with
/// them: carried into its output, or left out (by `--drop-matrices`, or without `--with-x`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Matrices {
    /// The input's matrices, as `X`, `raw`, `layers/KEY`.
    pub present: Vec<String>,
    /// Why they were left out of the output (the option, e.g. `--drop-matrices`); `None` when
    /// they were written.
    pub left_out_by: Option<&'static str>,
}

impl Matrices {
    /// The matrices `reader`'s file holds.
    pub fn of(reader: &H5adReader, left_out_by: Option<&'static str>) -> Result<Self> {
        let mut present = Vec::new();
        for name in ["X", "raw"] {
            if reader.root().link_exists(name) {
                present.push(name.to_string());
            }
        }
        present.extend(
            reader
                .keys("layers")?
                .into_iter()
                .map(|k| format!("layers/{k}")),
        );
        Ok(Matrices {
            present,
            left_out_by,
        })
    }

    /// The matrices `reader`'s file holds, left out when `drop` (by `--drop-matrices`).
    pub fn unless_dropped(reader: &H5adReader, drop: bool) -> Result<Self> {
        Self::of(reader, drop.then_some("--drop-matrices"))
    }
}

/// Runs `compute` while another thread creates the output `output` and carries the input's
/// annotations over into it (`obs`, `var`, and the mappings less `skip`, as
/// [`OutputFile::carry_over`]), with `X`, `raw` and `layers` unless `drop_matrices`: the copy,
/// most of a step's writing, overlaps the computation, which a GPU finishes in about the time
/// the copy takes. HDF5 calls from the two threads are serialized by hdf5's process-wide lock.
/// The output is dropped (its staged file removed with `set`) when either side fails. The copy
/// hands its freed memory back to the system when it ends.
pub(crate) fn compute_while_copying<T>(
    reader: &H5adReader,
    set: &OutputSet,
    output: &Path,
    skip: &[&str],
    drop_matrices: bool,
    compute: impl FnOnce() -> Result<T>,
) -> Result<(OutputFile, T)> {
    std::thread::scope(|s| {
        let copy = s.spawn(|| -> Result<OutputFile> {
            let out = OutputFile::create_in(set, output)?;
            let (whole, mappings): (&[&str], &[&str]) = if drop_matrices {
                (&["obs", "var"], &["obsm", "varm", "obsp", "varp", "uns"])
            } else {
                (
                    &["obs", "var", "X", "raw"],
                    &["obsm", "varm", "obsp", "varp", "layers", "uns"],
                )
            };
            out.carry_over(reader, whole, mappings, skip)?;
            // HDF5's copy buffers are freed now; their pages would otherwise stay resident
            // (the allocator keeps freed memory) under the computation's peak.
            crate::mem::release_free_memory();
            Ok(out)
        });
        let value = compute();
        let out = copy
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Ok((out?, value?))
    })
}
