//! Algorithms, written once against [`crate::backend::Backend`] and the chunk stream. They know
//! nothing of HDF5.

pub mod eigen;
pub mod filter;
pub mod fuzzy;
pub mod hvg;
pub mod knn;
pub mod loess;
pub mod normalize;
pub mod pairs;
pub mod pca;
pub mod preprocess;
pub mod quality;
pub mod spectral;
pub mod umap;
pub mod values;
