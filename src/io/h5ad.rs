//! Whole `.h5ad` files: a reader over the top-level elements and an output file that appears
//! under its final name only when complete (through an [`OutputSet`]).

use std::path::{Path, PathBuf};

use hdf5::Group;

use super::csr::MatrixReader;
use super::dataframe::{DataFrame, DataFrameReader};
use super::elem::{read_element, Element};
use super::h5::{self, format_err, ExternalLink, H5Context};
use super::output::{OutputOptions, OutputSet};
use crate::error::{Error, Result};

/// The `dict` groups of an AnnData file besides `obs`, `var`, `X`.
pub const MAPPING_KEYS: [&str; 6] = ["obsm", "varm", "obsp", "varp", "layers", "uns"];

/// An open `.h5ad` file, read-only.
pub struct H5adReader {
    path: PathBuf,
    file: hdf5::File,
}

impl H5adReader {
    /// Opens `path`, checking that it is HDF5 and has `obs` and `var` dataframes, and, when it has
    /// an `X`, that X's declared shape is (obs rows, var rows) (see [`Self::check_x_shape`]).
    pub fn open(path: &Path) -> Result<Self> {
        let file = h5::open_read(path)?;
        let r = H5adReader {
            path: path.to_path_buf(),
            file,
        };
        for df in ["obs", "var"] {
            if !r.file.link_exists(df) {
                return Err(Error::format(
                    path,
                    format!("/{df}"),
                    "missing: not an AnnData file",
                ));
            }
        }
        r.check_linked_x()?;
        r.check_x_shape()?;
        Ok(r)
    }

    /// Fails with a format error on `/X` when X is an external link whose target cannot be
    /// opened (its file moved or removed), naming the file it links to.
    fn check_linked_x(&self) -> Result<()> {
        let Some(link) = self.x_link() else {
            return Ok(());
        };
        if h5::is_group(&self.file, "X") || self.file.dataset("X").is_ok() {
            return Ok(());
        }
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty());
        let beside = dir.map_or_else(|| PathBuf::from(&link.file), |d| d.join(&link.file));
        Err(Error::format(
            &self.path,
            "/X",
            format!(
                "an external link to {} in {}, which cannot be opened: keep {} beside this \
                 file (move their directory as a whole)",
                link.element,
                beside.display(),
                link.file
            ),
        ))
    }

    /// Where X lives when it is an HDF5 external link to another file (as in `scoop run`'s
    /// `pca.h5ad`); `None` when X is stored in this file or absent.
    pub fn x_link(&self) -> Option<ExternalLink> {
        h5::external_link(&self.file, "X")
    }

    /// X's (rows, columns) as its metadata declares them: a sparse group's `shape` attribute, a
    /// dense dataset's dimensions. `None` (or an error) when there is no X or its shape is not
    /// two non-negative integers: opening X then says why.
    fn declared_x_shape(&self) -> Result<Option<(usize, usize)>> {
        if !self.has_x() {
            return Ok(None);
        }
        let dims: Vec<f64> = if h5::is_group(&self.file, "X") {
            let g = self.file.group("X").at(&self.file, "X")?;
            h5::attr_f64s(&g, "shape")?.unwrap_or_default()
        } else {
            let ds = self.file.dataset("X").at(&self.file, "X")?;
            ds.shape().into_iter().map(|n| n as f64).collect()
        };
        Ok(match dims[..] {
            [r, c] if [r, c].iter().all(|&n| n >= 0.0 && n.fract() == 0.0) => {
                Some((r as usize, c as usize))
            }
            _ => None,
        })
    }

    /// Fails with a format error on `/X` naming both counts when X has another number of rows
    /// than obs or of columns than var (anndata cannot read such a file).
    pub fn check_x_shape(&self) -> Result<()> {
        let Ok(Some((rows, cols))) = self.declared_x_shape() else {
            return Ok(());
        };
        let (n_obs, n_vars) = self.shape()?;
        if rows != n_obs {
            return Err(Error::format(
                &self.path,
                "/X",
                format!("has {rows} rows but obs has {n_obs}; X needs one row per obs entry"),
            ));
        }
        if cols != n_vars {
            return Err(Error::format(
                &self.path,
                "/X",
                format!(
                    "has {cols} columns but var has {n_vars}; X needs one column per var entry"
                ),
            ));
        }
        Ok(())
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root group.
    pub fn root(&self) -> &Group {
        &self.file
    }

    /// True when the file has an `X`.
    pub fn has_x(&self) -> bool {
        self.file.link_exists("X")
    }

    /// The matrix `X` (CSR or dense), opened for row-range reads.
    pub fn x(&self) -> Result<MatrixReader> {
        if !self.has_x() {
            return Err(Error::format(
                &self.path,
                "/X",
                "missing: this file has no X matrix",
            ));
        }
        MatrixReader::open(&self.file, "X")
    }

    /// `obs`, opened for row-range reads.
    pub fn obs_reader(&self) -> Result<DataFrameReader> {
        DataFrameReader::open(&self.file, "obs")
    }

    /// `var`, opened for row-range reads.
    pub fn var_reader(&self) -> Result<DataFrameReader> {
        DataFrameReader::open(&self.file, "var")
    }

    /// The whole `obs` dataframe.
    pub fn obs(&self) -> Result<DataFrame> {
        DataFrame::read(&self.file, "obs")
    }

    /// The whole `var` dataframe.
    pub fn var(&self) -> Result<DataFrame> {
        DataFrame::read(&self.file, "var")
    }

    /// (n_obs, n_vars) from the obs and var indexes.
    pub fn shape(&self) -> Result<(usize, usize)> {
        Ok((self.obs_reader()?.len(), self.var_reader()?.len()))
    }

    /// Names of the root's members (`obs`, `var`, `X`, `obsm`, ...), in HDF5's order.
    pub fn root_members(&self) -> Result<Vec<String>> {
        h5::members(&self.file)
    }

    /// Keys of mapping group `group` (`obsm`, `uns`, ...); empty when the group is absent.
    pub fn keys(&self, group: &str) -> Result<Vec<String>> {
        if !h5::is_group(&self.file, group) {
            return Ok(Vec::new());
        }
        let g = self.file.group(group).at(&self.file, group)?;
        h5::members(&g)
    }

    /// Opens the root's group `name` (`obsm`, `obsp`, ...).
    pub fn group(&self, name: &str) -> Result<Group> {
        self.file.group(name).at(&self.file, name)
    }

    /// Reads element `key` of mapping group `group` (e.g. `obsm`, `X_pca`).
    pub fn element(&self, group: &str, key: &str) -> Result<Element> {
        if !h5::is_group(&self.file, group) {
            return Err(format_err(&self.file, group, "missing"));
        }
        let g = self.file.group(group).at(&self.file, group)?;
        read_element(&g, key)
    }
}

/// An `.h5ad` output written at its staged path in an [`OutputSet`] and made visible by the
/// set's commit. [`OutputFile::create`] makes a one-file set that [`OutputFile::commit`]
/// commits; [`OutputFile::create_in`] writes one output of a larger set, committed by the set
/// after [`OutputFile::close`].
///
/// Closing flushes the file first; when that fails (a full disk), no handle of the file is
/// closed again, since HDF5 frees a dataset whose close failed and a second close of it would
/// crash: the handles are left open and the staged file is removed with its set.
pub struct OutputFile {
    target: PathBuf,
    staged: PathBuf,
    file: Option<hdf5::File>,
    set: Option<OutputSet>,
}

impl OutputFile {
    /// Starts writing `target` as an AnnData file (root attrs `anndata`/`0.1.0`), a set of its
    /// own: checked as [`OutputSet::create`] checks, against `inputs`.
    pub fn create(target: &Path, inputs: &[&Path], force: bool) -> Result<Self> {
        let set = OutputSet::create(&[target], &OutputOptions::new(force).inputs(inputs))?;
        let mut out = Self::create_in(&set, target)?;
        out.set = Some(set);
        Ok(out)
    }

    /// Starts writing `target`, one of `set`'s outputs, at its staged path.
    pub fn create_in(set: &OutputSet, target: &Path) -> Result<Self> {
        super::filters::register();
        let staged = set.staged(target).to_path_buf();
        // Weak close (HDF5's default): closing the file never closes other handles, so a handle
        // whose close failed is never closed again; `close` closes them itself once flushed. No
        // HDF5 file lock: nobody opens the staged file, and HDF5's descriptor (opened without
        // O_CLOEXEC) would carry the lock into any child process spawned meanwhile, locking
        // readers out of the finished file.
        let file = hdf5::FileBuilder::new()
            .with_fapl(|p| p.file_locking(false))
            .create(&staged)
            .map_err(|e| Error::hdf5(&staged, "/", e))?;
        h5::set_encoding(&file, "anndata", "0.1.0")?;
        Ok(OutputFile {
            target: target.to_path_buf(),
            staged,
            file: Some(file),
            set: None,
        })
    }

    /// The root group.
    pub fn root(&self) -> &Group {
        self.file.as_ref().expect("output file open until commit")
    }

    /// The final path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Creates an (empty) `dict` group `name` under the root and returns it.
    pub fn dict(&self, name: &str) -> Result<Group> {
        let g = self.root().create_group(name).at(self.root(), name)?;
        h5::set_encoding(&g, "dict", "0.1.0")?;
        Ok(g)
    }

    /// Opens the group `name` already written under the root (e.g. by [`Self::carry_over`]).
    pub fn group(&self, name: &str) -> Result<Group> {
        self.root().group(name).at(self.root(), name)
    }

    /// Creates the mapping groups not yet present, as anndata writes them (empty `dict`s).
    pub fn fill_missing_mappings(&self) -> Result<()> {
        for key in MAPPING_KEYS {
            if !self.root().link_exists(key) {
                self.dict(key)?;
            }
        }
        Ok(())
    }

    /// Copies elements of `src` unchanged (inside HDF5, no decoding): each of `whole` (`obs`,
    /// `var`, ...) entire, and each member of the mapping groups `mappings` (`obsm`, `uns`, ...)
    /// except the `skip` paths (`uns/neighbors`). Mapping groups `src` lacks are created empty.
    pub fn carry_over(
        &self,
        src: &H5adReader,
        whole: &[&str],
        mappings: &[&str],
        skip: &[&str],
    ) -> Result<()> {
        let root = src.root();
        for name in whole {
            if root.link_exists(name) {
                h5::copy_object(root, name, self.root())?;
            }
        }
        for group in mappings {
            let dst = self.dict(group)?;
            if !h5::is_group(root, group) {
                continue;
            }
            let g = root.group(group).at(root, group)?;
            for key in h5::members(&g)? {
                if !skip.contains(&format!("{group}/{key}").as_str()) {
                    h5::copy_object(&g, &key, &dst)?;
                }
            }
        }
        Ok(())
    }

    /// Creates the group `name` as `src` has it (its encoding attributes) and copies every
    /// member but those in `except` (inside HDF5, no decoding): e.g. `raw` less an `X` the caller
    /// writes itself.
    pub fn carry_group_except(&self, src: &H5adReader, name: &str, except: &[&str]) -> Result<()> {
        let from = src.group(name)?;
        let to = self.root().create_group(name).at(self.root(), name)?;
        if let (Some(kind), Some(version)) = (
            h5::attr_str(&from, "encoding-type")?,
            h5::attr_str(&from, "encoding-version")?,
        ) {
            h5::set_encoding(&to, &kind, &version)?;
        }
        for key in h5::members(&from)? {
            if !except.contains(&key.as_str()) {
                h5::copy_object(&from, &key, &to)?;
            }
        }
        Ok(())
    }

    /// Writes `name` under the root as an HDF5 external link to element `element` of the file
    /// named `file`, instead of a copy: a relative `file` is resolved against the directory the
    /// output is read from, so the two files must stay side by side. Readers (HDF5, h5py,
    /// anndata, scoop) follow the link; the target need not exist until then.
    pub fn link_external(&self, name: &str, file: &str, element: &str) -> Result<()> {
        h5::link_external(self.root(), name, file, element)
    }

    /// Completes the file (missing mappings added), flushes and closes it at its staged path
    /// (with every handle still open on it); its set commits it.
    pub fn close(mut self) -> Result<()> {
        self.fill_missing_mappings()?;
        let file = self.file.take().expect("open until close");
        h5::close_output(file, &self.staged)
    }

    /// Closes the file and commits its own set ([`OutputFile::create`]), moving it onto the
    /// target; returns the target.
    pub fn commit(mut self) -> Result<PathBuf> {
        let set = self
            .set
            .take()
            .expect("commit is for files created with `create`");
        let target = self.target.clone();
        self.close()?;
        set.commit()?;
        Ok(target)
    }
}
