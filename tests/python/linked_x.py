"""`scoop run`'s pca.h5ad, whose X is an HDF5 external link to merged.h5ad (tests/run.rs).

    linked_x.py DIR CWD     from working directory CWD (not DIR): h5py sees DIR/pca.h5ad's X as
                            an ExternalLink to "/X" in "merged.h5ad"; anndata reads pca.h5ad (in
                            memory and backed="r") with X equal to merged.h5ad's, obs and var
                            equal to merged.h5ad's, and obsm["X_pca"] equal to DIR/X_pca.zarr.

Prints "ok" when every check holds; fails with an AssertionError naming the check otherwise.
"""

import os
import sys
import warnings

import anndata as ad
import h5py
import numpy as np
import scipy.sparse as sp
import zarr

warnings.filterwarnings("ignore")


def same_csr(what, a, b):
    assert sp.issparse(a) and sp.issparse(b), f"{what}: not sparse ({type(a)}, {type(b)})"
    a, b = sp.csr_matrix(a), sp.csr_matrix(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} vs {b.dtype}"
    assert np.array_equal(a.indptr, b.indptr), f"{what}: indptr"
    assert np.array_equal(a.indices, b.indices), f"{what}: indices"
    assert np.array_equal(a.data, b.data), f"{what}: data"


def main(out, cwd):
    out = os.path.abspath(out)
    os.chdir(cwd)
    assert not os.path.exists("merged.h5ad"), "the working directory must not hold merged.h5ad"
    pca, merged = os.path.join(out, "pca.h5ad"), os.path.join(out, "merged.h5ad")
    with h5py.File(pca, "r") as f:
        link = f.get("X", getlink=True)
        assert isinstance(link, h5py.ExternalLink), f"X is a {type(link).__name__}"
        assert (link.filename, link.path) == ("merged.h5ad", "/X"), (link.filename, link.path)
        assert f["X"].file.filename == merged, f["X"].file.filename
    m = ad.read_h5ad(merged)
    zx = zarr.open(os.path.join(out, "X_pca.zarr"), mode="r")[:]
    a = ad.read_h5ad(pca)
    same_csr("in memory: X", a.X, m.X)
    assert a.obs.equals(m.obs), "obs"
    assert a.var.equals(m.var), "var"
    x_pca = a.obsm["X_pca"]
    assert x_pca.dtype == zx.dtype and x_pca.shape == zx.shape, (x_pca.shape, zx.shape)
    assert np.array_equal(x_pca, zx), "X_pca differs from X_pca.zarr"
    b = ad.read_h5ad(pca, backed="r")
    same_csr("backed: X", b.X[:], m.X)
    same_csr("backed: X rows 3..40", b.X[3:40], m.X[3:40])
    assert np.array_equal(b.obsm["X_pca"], zx), "backed: X_pca"
    b.file.close()
    print("ok")


if __name__ == "__main__":
    main(*sys.argv[1:])
