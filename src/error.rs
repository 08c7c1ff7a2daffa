//! Library error type: every failure names the file and, where there is one, the element.

use std::path::{Path, PathBuf};

use crate::io::output::visible_path;

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
            path: visible_path(path),
            element: element.into(),
            message: message.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: &Path, reason: std::io::Error) -> Self {
        Error::Io {
            path: visible_path(path),
            reason,
        }
    }

    /// An HDF5 error on `element` of `path`, with HDF5's message shortened to one line without
    /// its volatile details (times, addresses, descriptors). A failed system call (HDF5 names its
    /// `errno`) becomes an [`Error::Io`] on `path` with the OS's reason.
    pub fn hdf5(path: &Path, element: impl Into<String>, err: hdf5::Error) -> Self {
        let text = err.to_string();
        if let Some(errno) = os_errno(&text) {
            return Error::io(path, std::io::Error::from_raw_os_error(errno));
        }
        let line = text.lines().next().unwrap_or("unknown HDF5 error").trim();
        // HDF5 appends `key = value, ...` details after the last `:` before the first ` = `.
        let message = match line.find(" = ") {
            Some(eq) => line[..eq]
                .rfind(':')
                .map_or(line, |colon| &line[..colon])
                .to_string(),
            None => line.to_string(),
        };
        Error::Hdf5 {
            path: visible_path(path),
            element: element.into(),
            message,
        }
    }
}

/// The `errno = N` an HDF5 message reports for a failed system call.
fn os_errno(text: &str) -> Option<i32> {
    let rest = &text[text.find("errno = ")? + "errno = ".len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok().filter(|&n| n > 0)
}
