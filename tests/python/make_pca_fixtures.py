"""Regenerates the PCA parity fixtures with real scanpy.

    python tests/python/make_pca_fixtures.py            # rewrite tests/fixtures/pca
    python tests/python/make_pca_fixtures.py --check    # regenerate in a temp dir, compare

Inputs are small "merged, preprocessed" matrices (negative-binomial counts with cell-line
structure, normalize_total + log1p by scanpy, written by anndata as CSR). For every scenario the
input goes through scanpy as the out-of-core workflow does: X read lazily with `read_elem_lazy`
(dask, CSR row chunks), then `sc.pp.pca(adata, n_comps, mask_var=None)`, which for sparse dask
input is the covariance route (`PCAEighDask`). The expected file `<scenario>.h5ad` holds obs, var
and scanpy's `obsm['X_pca']`, `varm['PCs']` and `uns['pca']` (X dropped).

scanpy accumulates the gram in X's dtype (float32 here) where scoop uses float64; the script
prints how far scanpy's variances are from a float64 reference so the test tolerances can be
judged against scanpy's own error.
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
from fixture_main import COMPONENT_RTOL, paired_files, run

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "pca"

# name -> (seed, cells, genes, cell lines, X dtype, int64 index arrays)
INPUTS = {
    "merged": (21, 2400, 300, 6, "float32", False),
    "small_f64": (22, 30, 45, 3, "float64", True),
}

# name -> input, n_comps, dask chunk rows
SCENARIOS = {
    "merged_60": dict(input="merged", n_comps=60, chunk_rows=700),
    # n_comps = min(n_cells, n_genes): the largest request that is allowed.
    "small_full_rank": dict(input="small_f64", n_comps=30, chunk_rows=8),
}


def make_input(seed: int, n_cells: int, n_genes: int, n_lines: int, dtype: str, wide: bool):
    rng = np.random.default_rng(seed)
    line = rng.integers(0, n_lines, n_cells)
    base = rng.gamma(0.6, 1.0, n_genes) * 0.8
    # Each cell line shifts a random fifth of the genes up or down.
    effect = np.exp(rng.normal(0, 0.9, (n_lines, n_genes)) * (rng.random((n_lines, n_genes)) < 0.2))
    depth = rng.lognormal(0.0, 0.35, n_cells)
    mu = base[None, :] * effect[line] * depth[:, None]
    r = 2.0
    counts = rng.negative_binomial(r, r / (r + mu)).astype(np.float32)
    a = ad.AnnData(
        X=sp.csr_matrix(counts),
        obs=pd.DataFrame(
            {
                "cell_line": pd.Categorical([f"line_{i}" for i in line]),
                "plate": pd.Categorical([f"plate{1 + i % 3}" for i in range(n_cells)]),
            },
            index=[f"cell_{i}" for i in range(n_cells)],
        ),
        var=pd.DataFrame(index=[f"gene_{j}" for j in range(n_genes)]),
    )
    sc.pp.normalize_total(a)
    sc.pp.log1p(a)
    x = a.X.astype(dtype)
    if wide:
        x.indptr = x.indptr.astype(np.int64)
        x.indices = x.indices.astype(np.int64)
    a.X = x
    del a.uns["log1p"]
    return a


def expected(path: Path, n_comps: int, chunk_rows: int) -> ad.AnnData:
    with h5py.File(path, "r") as f:
        n_vars = int(f["X"].attrs["shape"][1])
        a = ad.AnnData(
            X=read_elem_lazy(f["X"], chunks=(chunk_rows, n_vars)),
            obs=ad.io.read_elem(f["obs"]),
            var=ad.io.read_elem(f["var"]),
        )
        sc.pp.pca(a, n_comps=n_comps, mask_var=None)
        x_pca = np.asarray(a.obsm["X_pca"].compute())
        dense = ad.io.read_elem(f["X"]).toarray().astype(np.float64)
    out = ad.AnnData(obs=a.obs, var=a.var)
    out.obsm["X_pca"] = x_pca
    out.varm["PCs"] = np.asarray(a.varm["PCs"])
    out.uns["pca"] = {
        "params": dict(a.uns["pca"]["params"]),
        "variance": np.asarray(a.uns["pca"]["variance"]),
        "variance_ratio": np.asarray(a.uns["pca"]["variance_ratio"]),
    }
    # scanpy's own error: its variances against a float64 covariance of the same data.
    c = np.cov(dense, rowvar=False, ddof=0)
    ref = np.linalg.eigvalsh(c)[::-1][:n_comps]
    top = min(50, n_comps)
    rel = np.abs(out.uns["pca"]["variance"][:top] - ref[:top]) / np.abs(ref[:top]).max()
    print(f"{path.name} n_comps={n_comps}: scanpy variance vs float64, top {top}: "
          f"max |diff| / lambda_1 = {rel.max():.2e}")
    return out


def generate(dest: Path) -> None:
    warnings.filterwarnings("ignore")
    inputs = dest / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    for name, spec in INPUTS.items():
        make_input(*spec).write_h5ad(inputs / f"{name}.h5ad", compression="gzip")
    for scen, opts in SCENARIOS.items():
        expected(inputs / f"{opts['input']}.h5ad", opts["n_comps"], opts["chunk_rows"]).write_h5ad(
            dest / f"{scen}.h5ad", compression="gzip"
        )
    (dest / "scenarios.json").write_text(json.dumps(SCENARIOS, indent=2) + "\n")


def compare_components(rel, x: ad.AnnData, y: ad.AnnData) -> list[str]:
    """Components as the parity test reads them: each column of `varm['PCs']` and
    `obsm['X_pca']` up to its sign, within `COMPONENT_RTOL` (today's releases move the
    components of near-degenerate pairs by up to 2e-4; see fixture_main.py). LAPACK's eigh picks signs by
    the CPU's code path, and scanpy's float32 gram sums in BLAS's order, so neither signs nor the
    last bits reproduce across machines. Components with variance below 1e-12 · λ1 (the null
    space of a rank-deficient input, arbitrary vectors) are skipped."""
    problems = []
    var = np.asarray(y.uns["pca"]["variance"], dtype=np.float64)
    keep = var > 1e-12 * var[0]
    for key, a, b in (("varm[PCs]", x.varm["PCs"], y.varm["PCs"]),
                      ("obsm[X_pca]", x.obsm["X_pca"], y.obsm["X_pca"])):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            problems.append(f"{rel}: {key} shape {a.shape} vs {b.shape}")
            continue
        for c in np.flatnonzero(keep):
            sign = 1.0 if a[:, c] @ b[:, c] >= 0 else -1.0
            err = np.linalg.norm(a[:, c] - sign * b[:, c]) / np.linalg.norm(b[:, c])
            if not err < COMPONENT_RTOL:
                problems.append(f"{rel}: {key} column {c} differs (relative error {err:.2e})")
    return problems


def compare(a: Path, b: Path) -> list[str]:
    """Differences between two fixture trees (values, not bytes)."""
    problems, pairs = paired_files(a, b)
    for rel, x, y in pairs:
        if x.X is not None:
            d = x.X - y.X
            if d.nnz and abs(d).max() > 1e-6:
                problems.append(f"{rel}: X differs by {abs(d).max()}")
        if "pca" in y.uns:
            problems += compare_components(rel, x, y)
        for key in ("variance", "variance_ratio"):
            if "pca" in y.uns and not np.allclose(
                x.uns["pca"][key], y.uns["pca"][key], rtol=1e-5, atol=1e-9
            ):
                problems.append(f"{rel}: uns[pca][{key}] differs")
    return problems


if __name__ == "__main__":
    sys.exit(run(__doc__, FIXTURES, generate, compare))
