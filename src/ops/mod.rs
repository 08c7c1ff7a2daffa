//! Algorithms, written once against [`crate::backend::Backend`] and the chunk stream. They know
//! nothing of HDF5.

pub mod filter;
pub mod qc;
pub mod loess;
pub mod hvg;
pub mod normalize;
pub mod preprocess;
