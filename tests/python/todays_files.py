"""Files users have today, for tests/todays_files.rs.

  todays_files.py pbmc DIR          scanpy's shipped pbmc68k_reduced.h5ad, as shipped and written
                                    back by this stack's anndata (plain, gzip, lzf and, with
                                    hdf5plugin, zstd); prints "NAME PATH" per file
  todays_files.py neighbors IN OUT  sc.pp.neighbors(read_h5ad(IN)) written to OUT
  todays_files.py check-umap FILE [--raw]
                                    FILE loads in anndata (read_h5ad, and read_lazy where the stack
                                    has it) with X, obsp graphs, a finite X_umap, and raw if --raw
  todays_files.py compare-pca OURS THEIRS K
                                    the first K components of X_pca agree up to sign (relative
                                    error 1e-3) and variance_ratio to 1e-4
  todays_files.py plates DIR        two plates as anndata writes them under this stack's defaults
                                    (pandas 3: nullable-string index with duplicates, string
                                    columns with NA, categorical and Int64 with NA; float64 CSR
                                    counts with int64 indices; layers; raw)
  todays_files.py workflow DIR N_TOP MIN_PLATES N_COMPS
                                    scanpy's steps 1-4 on DIR/plate_a.h5ad and DIR/plate_b.h5ad:
                                    DIR/expected_{a,b}.h5ad (filtered, normalized, log1p, the
                                    genes selected), DIR/expected_merged.h5ad (concat_on_disk),
                                    DIR/expected_pca.h5ad (sc.pp.pca)
"""
import shutil
import sys
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

warnings.filterwarnings("ignore")


def pbmc(d: Path):
    shipped = Path(sc.__file__).parent / "datasets" / "10x_pbmc68k_reduced.h5ad"
    shutil.copy(shipped, d / "shipped.h5ad")
    import h5py

    with h5py.File(shipped) as f:  # scanpy < 1.12 ships it in anndata <= 0.6's layout
        old = isinstance(f["obs"], h5py.Dataset)
    print("shipped-old" if old else "shipped", d / "shipped.h5ad")
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


def check_umap(path, raw):
    a = ad.read_h5ad(path)
    assert a.X is not None, "X kept"
    assert (a.raw is not None) == raw, f"raw kept: {a.raw is not None}, expected {raw}"
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


def plates(d: Path):
    rng = np.random.default_rng(11)
    g = 40
    genes = pd.Index([f"ENSG{j:04d}" for j in range(g)], dtype="string")
    for k, (name, n) in enumerate([("plate_a", 70), ("plate_b", 60)]):
        lam = rng.gamma(2.0, 2.0, size=g) * (1 + 3 * (np.arange(g) % 7 == k))
        counts = rng.poisson(lam[None, :] * rng.lognormal(0, 0.4, size=(n, 1)))
        counts[5] = 0  # a cell without counts
        x = sp.csr_matrix(counts.astype(np.float64))
        x.indices = x.indices.astype(np.int64)
        x.indptr = x.indptr.astype(np.int64)
        obs = pd.DataFrame(
            {
                "pass_filter": pd.Categorical(["minimal" if i % 6 == 2 else "full" for i in range(n)]),
                "cell_line": pd.Categorical([None if i % 9 == 4 else f"CVCL_{i % 3}" for i in range(n)]),
                "note": pd.array([None if i % 4 == 1 else f"{name} cell {i}" for i in range(n)], dtype="string"),
                "umis": pd.array([None if i % 8 == 3 else int(counts[i].sum()) for i in range(n)], dtype="Int64"),
            },
            index=pd.Index([f"{name[-1]}{i // 2}" for i in range(n)], dtype="string"),
        )
        var = pd.DataFrame(
            {"gene_symbol": pd.array([None if j == 7 else f"SYM{j}" for j in range(g)], dtype="string")},
            index=genes,
        )
        a = ad.AnnData(X=x, obs=obs, var=var)
        a.layers["counts"] = x.copy()
        a.raw = a.copy()
        keep = a.obs.copy()
        path = d / f"{name}.h5ad"
        a.write_h5ad(path)
        keep_string_obs(path, keep)
        print(path)


def keep_string_obs(path, obs):
    """Writes obs again as write_elem does: write_h5ad turns string columns with repeats or NA into
    categoricals, element writers (concat_on_disk, scoop) keep them strings."""
    import h5py

    with h5py.File(path, "r+") as f:
        del f["obs"]
        ad.io.write_elem(f, "obs", obs)


def workflow(d: Path, n_top: int, min_plates: int, n_comps: int):
    from anndata.experimental import concat_on_disk

    kept = {}
    for p in ("a", "b"):
        a = ad.read_h5ad(d / f"plate_{p}.h5ad")
        a = a[a.obs["pass_filter"] == "full"].copy()
        # The median of the positive totals (scanpy 1.12 and the dask path; 1.11's in-memory CSR
        # path counts the zero-count cell too): what the workflow computes on plates.
        totals = np.asarray(a.X.sum(axis=1)).ravel().astype(np.float32)
        sc.pp.normalize_total(a, target_sum=float(np.median(totals[totals > 0])))
        sc.pp.log1p(a)
        sc.pp.highly_variable_genes(a, flavor="seurat", n_top_genes=n_top)
        kept[p] = a
    votes = sum(a.var["highly_variable"].to_numpy().astype(int) for a in kept.values())
    genes = kept["a"].var_names[votes >= min_plates]
    paths = []
    for p, a in kept.items():
        b = a[:, genes].copy()
        obs = b.obs.copy()
        b.write_h5ad(d / f"expected_{p}.h5ad")
        keep_string_obs(d / f"expected_{p}.h5ad", obs)
        paths.append(d / f"expected_{p}.h5ad")
    concat_on_disk(paths, d / "expected_merged.h5ad", label="plate", keys=["a", "b"])
    m = ad.read_h5ad(d / "expected_merged.h5ad")
    sc.pp.pca(m, n_comps=n_comps)
    m.write_h5ad(d / "expected_pca.h5ad")
    print(len(genes))


def compare_pca(ours, theirs, k):
    a, b = ad.read_h5ad(ours), ad.read_h5ad(theirs)
    problems = []
    ra, rb = (np.asarray(x.uns["pca"]["variance_ratio"], dtype=np.float64) for x in (a, b))
    if not np.allclose(ra, rb, rtol=1e-4, atol=1e-7):
        problems.append(f"variance_ratio {ra} vs {rb}")
    pa, pb = (np.asarray(x.obsm["X_pca"], dtype=np.float64) for x in (a, b))
    if pa.shape != pb.shape:
        problems.append(f"X_pca shape {pa.shape} vs {pb.shape}")
    else:
        for c in range(k):
            sign = 1.0 if pa[:, c] @ pb[:, c] >= 0 else -1.0
            err = np.linalg.norm(pa[:, c] - sign * pb[:, c]) / np.linalg.norm(pb[:, c])
            if not err < 1e-3:
                problems.append(f"X_pca column {c}: relative error {err:.2e}")
    if problems:
        sys.exit("\n".join(problems))
    print("ok")


if __name__ == "__main__":
    if hasattr(ad.settings, "allow_write_nullable_strings"):
        ad.settings.allow_write_nullable_strings = True  # 0.13's default; 0.12 needs the opt-in
    try:
        import hdf5plugin  # noqa: F401  (zstd/blosc files, as a user reading them would)
    except ImportError:
        pass
    cmd = sys.argv[1]
    if cmd == "pbmc":
        pbmc(Path(sys.argv[2]))
    elif cmd == "neighbors":
        neighbors(sys.argv[2], sys.argv[3])
    elif cmd == "check-umap":
        check_umap(sys.argv[2], raw="--raw" in sys.argv[3:])
    elif cmd == "compare-pca":
        compare_pca(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "plates":
        plates(Path(sys.argv[2]))
    elif cmd == "workflow":
        workflow(Path(sys.argv[2]), *map(int, sys.argv[3:6]))
    else:
        sys.exit(f"unknown command {cmd}")
