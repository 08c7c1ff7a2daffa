//! Library error type: every failure names the file and, where there is one, the element.

use std::path::{Path, PathBuf};

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors raised by scoop's library code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system I/O failure on a path. The message carries the OS's reason, so the
    /// reason is not also reported as a separate cause (a printed chain would say it twice).
    #[error("{path}: {reason}")]
    Io {
        /// The path being read or written.
        path: PathBuf,
        /// The underlying error.
        reason: std::io::Error,
    },
    /// The HDF5 library reported a failure on an element.
    #[error("{path}: {element}: {message}")]
    Hdf5 {
        /// The file.
        path: PathBuf,
        /// The element inside the file (`/X/indices`, `obs`, ...).
        element: String,
        /// What HDF5 said.
        message: String,
    },
    /// The file is readable but does not hold what an h5ad must hold.
    #[error("{path}: {element}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The element inside the file.
        element: String,
        /// What is wrong.
        message: String,
    },
    /// An output exists and `--force` was not given.
    #[error("{0}: output exists (use --force to overwrite)")]
    OutputExists(PathBuf),
    /// A user-supplied argument is invalid.
    #[error("{0}")]
    InvalidArgument(String),
    /// A compute backend is unavailable or failed.
    #[error("backend: {0}")]
    Backend(String),
}

impl Error {
    /// A format error on `element` of `path`.
    pub fn format(path: &Path, element: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.to_path_buf(),
            element: element.into(),
            message: message.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: &Path, reason: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            reason,
        }
    }

    /// An HDF5 error on `element` of `path`, with HDF5's message shortened to one line.
    pub fn hdf5(path: &Path, element: impl Into<String>, err: hdf5::Error) -> Self {
        let text = err.to_string();
        let message = text
            .lines()
            .next()
            .unwrap_or("unknown HDF5 error")
            .trim()
            .to_string();
        Error::Hdf5 {
            path: path.to_path_buf(),
            element: element.into(),
            message,
        }
    }
}
