//! Workflow steps: each joins the file layer ([`crate::io`]) to the algorithms ([`crate::ops`])
//! for one subcommand, and owns its outputs (temporary names, `--force`, reports).

pub mod pca;
pub mod preprocess;
