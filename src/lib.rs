//! scoop: a GPU-first, out-of-core single-cell analysis runtime.
//!
//! Layers, from the disk up:
//! - [`io`]: AnnData `.h5ad` elements (CSR row-range reads, streamed writes, dataframes, `uns`).
//! - [`stream`]: a reader thread prefetching row chunks into a bounded queue.
//! - [`backend`]: the kernel trait with its CPU (rayon) and CUDA implementations.
//! - [`ops`]: algorithms written once against the backend and the stream.
//! - [`workflow`]: the steps (preprocess, ...) joining files to algorithms.
//! - [`mem`]: returning freed heap to the system and per-step peak resident memory.
//! - [`plot`]: a small rasterizer for scanpy-style categorical embedding plots (PNG).
//! - [`cli`]: the `scoop` command line.
#![warn(missing_docs)]

pub mod backend;
pub mod cli;
pub mod error;
pub mod events;
pub mod io;
pub mod mem;
pub mod ops;
pub mod plot;
pub mod progress;
pub mod sim;
pub mod simd;
pub mod stream;
pub mod workflow;

pub use error::{Error, Result};
