"""Regenerates the preprocessing parity fixtures with real scanpy.

    python tests/python/make_preprocess_fixtures.py            # rewrite tests/fixtures/preprocess
    python tests/python/make_preprocess_fixtures.py --check    # regenerate in a temp dir, compare

Inputs are small simulated plates (negative-binomial counts, written by anndata), with the edge
cases the Rust tests need: a cell with zero counts, a gene never expressed, integer and float
count dtypes, int64 indptr/indices. For every scenario each plate goes through scanpy as the
out-of-core workflow does: X read lazily with `read_elem_lazy` (dask), the row filter, then
`sc.pp.normalize_total`, `sc.pp.log1p`, `sc.pp.highly_variable_genes`. seurat_v3 runs on the
filtered raw counts in memory (scanpy 1.11's seurat_v3 has no dask path).

Each expected file `<scenario>/<plate>.h5ad` holds scanpy's result on *all* genes (the Rust test
applies the cross-plate selection itself): X = log1p(normalized) of the kept cells, obs, var with
the flavor's columns, and `uns/fixture` with the target sum and parameters.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp
from anndata.experimental import read_elem_lazy
from fixture_main import MOMENT_RTOL, NORM_RTOL, paired_files, run
from scanpy.preprocessing._normalization import _compute_nnz_median

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "preprocess"
N_GENES = 200

# name -> (seed, cells, dtype, int64 index arrays)
PLATES = {
    "plate_a": (11, 260, "int32", False),
    "plate_b": (12, 220, "int32", False),
    "plate_c": (13, 240, "int64", False),
    "plate_f32": (14, 250, "float32", True),
    "plate_f64": (15, 230, "float64", False),
}

# name -> plates, options (as `scoop preprocess` takes them)
SCENARIOS = {
    "seurat_filtered": dict(
        plates=["plate_a", "plate_b", "plate_c"],
        filter=("pass_filter", "full"),
        flavor="seurat",
        n_top_genes=50,
        min_plates=2,
        target_sum=None,
    ),
    "cell_ranger_all": dict(
        plates=["plate_a", "plate_b", "plate_c"],
        filter=None,
        flavor="cell_ranger",
        n_top_genes=40,
        min_plates=2,
        target_sum=None,
    ),
    "seurat_v3_filtered": dict(
        plates=["plate_a", "plate_b", "plate_c"],
        filter=("pass_filter", "full"),
        flavor="seurat_v3",
        n_top_genes=50,
        min_plates=3,
        target_sum=None,
    ),
    "seurat_f32_single": dict(
        plates=["plate_f32"],
        filter=("is_good", "true"),
        flavor="seurat",
        n_top_genes=30,
        min_plates=1,
        target_sum=1e4,
    ),
    "cell_ranger_f64_single": dict(
        plates=["plate_f64"],
        filter=("batch", "2"),
        flavor="cell_ranger",
        n_top_genes=30,
        min_plates=1,
        target_sum=None,
    ),
}


def make_plate(seed: int, n_cells: int, dtype: str, wide_index: bool) -> ad.AnnData:
    """Negative-binomial counts with gene- and cell-level variation (legacy RandomState, whose
    streams numpy keeps stable across versions)."""
    rs = np.random.RandomState(seed)
    gene_mean = np.exp(rs.normal(-1.0, 1.3, N_GENES))
    gene_mean[0] = 0.0  # a gene never expressed
    size = np.exp(rs.normal(0.0, 0.45, n_cells))
    lines = np.array(["line_%d" % (i % 3) for i in range(n_cells)])
    line_effect = np.exp(rs.normal(0.0, 0.6, (3, N_GENES)))
    mu = size[:, None] * gene_mean[None, :] * line_effect[np.arange(n_cells) % 3]
    r = 2.0
    lam = rs.gamma(r, np.maximum(mu, 1e-12) / r)
    counts = rs.poisson(lam).astype(np.float64)
    counts[3, :] = 0.0  # a cell with zero counts (kept by every filter below)
    if dtype.startswith("float"):
        # Float counts, some non-integer (ambient-corrected data looks like this).
        counts = counts * np.where(rs.uniform(size=counts.shape) < 0.1, 0.5, 1.0)
    X = sp.csr_matrix(counts.astype(dtype))
    X.eliminate_zeros()
    if wide_index:
        X.indptr = X.indptr.astype(np.int64)
        X.indices = X.indices.astype(np.int64)
    pass_filter = np.where(rs.uniform(size=n_cells) < 0.8, "full", "partial")
    pass_filter[3] = "full"
    obs = pd.DataFrame(
        {
            "cell_line": pd.Categorical(lines),
            "pass_filter": pd.Categorical(pass_filter),
            "is_good": pass_filter == "full",
            "batch": (np.arange(n_cells) % 3).astype(np.int64),
            "tscp_count": counts.sum(axis=1).astype(np.int64),
        },
        index=[f"cell_{seed}_{i}" for i in range(n_cells)],
    )
    obs.loc[obs.index[3], "batch"] = 2
    var = pd.DataFrame(
        {"gene_symbol": [f"SYM{j}" for j in range(N_GENES)]},
        index=[f"ENSG{j:011d}" for j in range(N_GENES)],
    )
    return ad.AnnData(X=X, obs=obs, var=var)


def filter_mask(obs: pd.DataFrame, flt) -> np.ndarray:
    col, value = flt
    s = obs[col]
    if s.dtype == bool:
        return (s == (value.lower() in ("true", "1"))).to_numpy()
    if pd.api.types.is_numeric_dtype(s):
        return (s == float(value)).to_numpy()
    return (s.astype(str) == value).to_numpy()


def expected(plate_path: Path, sc_opts: dict) -> ad.AnnData:
    with h5py.File(plate_path, "r") as f:
        n_vars = int(f["X"].attrs["shape"][1])
        X = read_elem_lazy(f["X"], chunks=(64, n_vars))
        obs = ad.io.read_elem(f["obs"])
        var = ad.io.read_elem(f["var"])
        adata = ad.AnnData(X=X, obs=obs, var=var)
        if sc_opts["filter"] is not None:
            adata = adata[filter_mask(adata.obs, sc_opts["filter"])].copy()
        flavor = sc_opts["flavor"]
        if flavor == "seurat_v3":
            counts = ad.AnnData(X=adata.X.compute(), var=adata.var.copy())
            sc.pp.highly_variable_genes(
                counts, flavor="seurat_v3", n_top_genes=sc_opts["n_top_genes"]
            )
            hvg_var = counts.var
        # The dask path: the median target excludes zero-count cells (spec §3).
        raw = adata.X.compute()
        if raw.dtype.kind in "iu":
            raw = raw.astype(np.float32)  # as normalize_total converts integer counts
        totals = np.asarray(raw.sum(axis=1)).ravel()
        sc.pp.normalize_total(adata, target_sum=sc_opts["target_sum"])
        sc.pp.log1p(adata)
        if flavor != "seurat_v3":
            sc.pp.highly_variable_genes(
                adata, flavor=flavor, n_top_genes=sc_opts["n_top_genes"]
            )
            hvg_var = adata.var
        adata.X = sp.csr_matrix(adata.X.compute())
    target = (
        float(_compute_nnz_median(totals))
        if sc_opts["target_sum"] is None
        else float(sc_opts["target_sum"])
    )
    keep_cols = ["gene_symbol"] + [
        c
        for c in [
            "highly_variable",
            "highly_variable_rank",
            "means",
            "dispersions",
            "dispersions_norm",
            "variances",
            "variances_norm",
        ]
        if c in hvg_var
    ]
    out = ad.AnnData(X=adata.X, obs=adata.obs, var=hvg_var[keep_cols].copy())
    out.uns["fixture"] = {
        "target_sum": target,
        "flavor": flavor,
        "n_top_genes": sc_opts["n_top_genes"],
        "scanpy": sc.__version__ if hasattr(sc, "__version__") else "",
    }
    return out


def generate(dest: Path) -> None:
    warnings.filterwarnings("ignore")
    inputs = dest / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    for name, (seed, n, dtype, wide) in PLATES.items():
        make_plate(seed, n, dtype, wide).write_h5ad(inputs / f"{name}.h5ad", compression="gzip")
    manifest = {}
    for scen, opts in SCENARIOS.items():
        d = dest / scen
        d.mkdir(parents=True, exist_ok=True)
        for p in opts["plates"]:
            expected(inputs / f"{p}.h5ad", opts).write_h5ad(d / f"{p}.h5ad", compression="gzip")
        manifest[scen] = {
            **opts,
            "filter": None if opts["filter"] is None else "=".join(opts["filter"]),
        }
    (dest / "scenarios.json").write_text(json.dumps(manifest, indent=2) + "\n")


def compare(a: Path, b: Path) -> list[str]:
    """Differences between two fixture trees (values, not bytes)."""
    problems, pairs = paired_files(a, b)
    for rel, x, y in pairs:
        dx = x.X - y.X
        if dx.nnz and abs(dx).max() > 1e-6 * max(abs(y.X).max(), 1):
            problems.append(f"{rel}: X differs by {abs(dx).max()}")
        for c in y.var.columns:
            u, v = x.var[c].to_numpy(), y.var[c].to_numpy()
            if u.dtype.kind == "f":
                rtol = NORM_RTOL if c.endswith("_norm") else MOMENT_RTOL
                if not np.allclose(u, v, rtol=rtol, atol=1e-12, equal_nan=True):
                    problems.append(f"{rel}: var[{c}] differs")
            elif not (u == v).all():
                problems.append(f"{rel}: var[{c}] differs")
        if "fixture" in y.uns and x.uns["fixture"]["target_sum"] != y.uns["fixture"]["target_sum"]:
            problems.append(f"{rel}: target sum differs")
    return problems


if __name__ == "__main__":
    sys.exit(run(__doc__, FIXTURES, generate, compare))
