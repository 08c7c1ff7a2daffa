"""Files users have today, for tests/todays_files.rs.

  todays_files.py pbmc DIR          scanpy's shipped pbmc68k_reduced.h5ad, as shipped and written
                                    back by this stack's anndata (plain, gzip, lzf and, with
                                    hdf5plugin, zstd); prints "NAME PATH" per file
  todays_files.py neighbors IN OUT  sc.pp.neighbors(read_h5ad(IN)) written to OUT
  todays_files.py check-umap FILE   FILE loads in anndata (read_h5ad, and read_lazy where the stack
                                    has it) with X, raw, obsp graphs and a finite X_umap
"""
import shutil
import sys
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import scanpy as sc

warnings.filterwarnings("ignore")


def pbmc(d: Path):
    shipped = Path(sc.__file__).parent / "datasets" / "10x_pbmc68k_reduced.h5ad"
    shutil.copy(shipped, d / "shipped.h5ad")
    print("shipped", d / "shipped.h5ad")
    a = ad.read_h5ad(shipped)
    variants = {"plain": None, "gzip": "gzip", "lzf": "lzf"}
    try:
        import hdf5plugin

        variants["zstd"] = hdf5plugin.FILTERS["zstd"]
    except ImportError:
        pass
    for name, compression in variants.items():
        a.write_h5ad(d / f"{name}.h5ad", compression=compression)
        print(name, d / f"{name}.h5ad")


def neighbors(src, out):
    a = ad.read_h5ad(src)
    sc.pp.neighbors(a)
    a.write_h5ad(out)


def check_umap(path):
    a = ad.read_h5ad(path)
    assert a.X is not None, "X kept"
    assert a.raw is not None, "raw kept"
    assert {"distances", "connectivities"} <= set(a.obsp)
    u = np.asarray(a.obsm["X_umap"])
    assert u.shape == (a.n_obs, 2) and np.isfinite(u).all(), u.shape
    if hasattr(ad.experimental, "read_lazy"):
        try:
            import xarray  # noqa: F401
        except ImportError:
            pass
        else:
            lazy = ad.experimental.read_lazy(path)
            assert lazy.shape == a.shape
            assert np.array_equal(np.asarray(lazy.obsm["X_umap"]), u)
    print("ok", a.n_obs, a.n_vars)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "pbmc":
        pbmc(Path(sys.argv[2]))
    elif cmd == "neighbors":
        neighbors(sys.argv[2], sys.argv[3])
    elif cmd == "check-umap":
        check_umap(sys.argv[2])
    else:
        sys.exit(f"unknown command {cmd}")
