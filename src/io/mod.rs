//! The file-format layer: AnnData `.h5ad` elements over HDF5. It knows nothing of algorithms.

pub mod array;
pub mod carry;
pub mod chunk;
pub(crate) mod chunk_writer;
pub mod chunks;
pub mod concat;
pub mod csc;
pub mod csr;
pub mod dataframe;
pub mod dense;
pub mod elem;
pub mod filters;
pub(crate) mod h5;
pub mod h5ad;
pub mod inspect;
pub mod matrix_rows;
pub mod output;
pub mod subset;
pub mod zarr;

pub use array::{DenseArray, NumDtype, NumVec};
pub use chunk::{CsrChunk, RowIds};
pub use chunks::{default_read_path, set_default_read_path, ReadPath};
pub use csr::{CsrWriteOptions, CsrWriter, IndptrReads, MatrixEncoding, MatrixInfo, MatrixReader};
pub use dataframe::{
    Categories, Column, ColumnValues, DataFrame, DataFrameReader, DataFrameWriter, StringNa,
};
pub use dense::{DenseRowReader, DenseRowWriter};
pub use elem::{read_element, write_element, Element};
pub use filters::Codec;
pub use h5::ExternalLink;
pub use h5ad::{H5adReader, OutputFile};
pub use matrix_rows::{ColumnMap, ConcatPart, MatrixSink, RowBlock};
pub use output::{OutputOptions, OutputSet};
pub use zarr::ZarrRowWriter;
