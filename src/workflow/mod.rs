//! Workflow steps: each joins the file layer ([`crate::io`]) to the algorithms ([`crate::ops`])
//! for one subcommand, and owns its outputs (temporary names, `--force`, reports).

pub mod neighbors;
pub mod pca;
pub mod plot;
pub mod preprocess;
pub mod subsample;
pub mod umap;
