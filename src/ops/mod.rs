//! Algorithms, written once against [`crate::backend::Backend`] and the chunk stream. They know
//! nothing of HDF5.

pub mod filter;
pub mod qc;
