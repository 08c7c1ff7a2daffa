//! Workflow steps: each joins the file layer ([`crate::io`]) to the algorithms ([`crate::ops`])
//! for one subcommand, and owns its outputs (temporary names, `--force`, reports).

pub mod neighbors;
pub mod pca;
pub mod plot;
pub mod preprocess;
pub mod subsample;
pub mod umap;

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::{H5adReader, OutputFile};

/// Refuses to write over the input (inputs are never modified).
pub(crate) fn refuse_input_as_output(input: &Path, output: &Path) -> Result<()> {
    if let (Ok(a), Ok(b)) = (input.canonicalize(), output.canonicalize()) {
        if a == b {
            return Err(Error::InvalidArgument(format!(
                "output {} is the input; inputs are never modified",
                output.display()
            )));
        }
    }
    Ok(())
}

/// Runs `compute` while another thread creates the output `output` and carries the input's
/// annotations over into it (`obs`, `var`, and the mappings less `skip`, as
/// [`OutputFile::carry_over`]): the copy, most of a step's writing, overlaps the computation,
/// which a GPU finishes in about the time the copy takes. HDF5 calls from the two threads are
/// serialized by hdf5's process-wide lock. The output is dropped (its temporary file removed)
/// when either side fails.
pub(crate) fn compute_while_copying<T>(
    reader: &H5adReader,
    output: &Path,
    force: bool,
    skip: &[&str],
    compute: impl FnOnce() -> Result<T>,
) -> Result<(OutputFile, T)> {
    std::thread::scope(|s| {
        let copy = s.spawn(|| -> Result<OutputFile> {
            let out = OutputFile::create(output, force)?;
            out.carry_over(
                reader,
                &["obs", "var"],
                &["obsm", "varm", "obsp", "varp", "uns"],
                skip,
            )?;
            Ok(out)
        });
        let value = compute();
        let out = copy
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Ok((out?, value?))
    })
}
