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
