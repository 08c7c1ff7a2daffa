"""Small h5ad files with one defect each, for tests/validation.rs.

    bad_inputs.py DIR     writes into DIR:
      good.h5ad           20 x 30 counts (CSR float32), obs/var names cell{i} / gene{j}
      nan.h5ad            good, X[3, 7] = NaN (stored in the CSR)
      inf_dense.h5ad      good with a dense X, X[5, 2] = +inf
      negative.h5ad       good, X[4, 9] = -2
      dup_var.h5ad        good, var names gene12 at rows 12 and 17
      x_taller.h5ad       good, obs cut to 18 rows (X keeps 20)
      x_wider.h5ad        good, X's shape attribute says 40 columns (var has 30)
      annotated.h5ad      good with a dense layer `counts` and obsm `X_emb` (20 x 2)
      layer_narrow.h5ad   annotated, layers/counts 20 x 29 (X is 20 x 30)
      obsm_short.h5ad     annotated, obsm/X_emb 18 x 2 (X has 20 rows)
"""

import sys
import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

warnings.filterwarnings("ignore")


def good(n=20, g=30, dense=False):
    rng = np.random.default_rng(0)
    x = rng.negative_binomial(2, 0.3, size=(n, g)).astype(np.float32)
    x[rng.random((n, g)) < 0.4] = 0
    # Every value that tests poke at is stored (non-zero), so CSR keeps it.
    x[3, 7] = x[4, 9] = x[5, 2] = 1.0
    obs = pd.DataFrame(index=[f"cell{i}" for i in range(n)])
    var = pd.DataFrame(index=[f"gene{j}" for j in range(g)])
    return ad.AnnData(X=x if dense else sp.csr_matrix(x), obs=obs, var=var)


def set_value(a, i, j, v):
    x = a.X.toarray() if sp.issparse(a.X) else a.X.copy()
    x[i, j] = v
    a.X = sp.csr_matrix(x) if sp.issparse(a.X) else x


def main(out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    good().write_h5ad(out / "good.h5ad")

    a = good()
    set_value(a, 3, 7, np.nan)
    a.write_h5ad(out / "nan.h5ad")

    a = good(dense=True)
    set_value(a, 5, 2, np.inf)
    a.write_h5ad(out / "inf_dense.h5ad")

    a = good()
    set_value(a, 4, 9, -2.0)
    a.write_h5ad(out / "negative.h5ad")

    a = good()
    names = list(a.var_names)
    names[17] = "gene12"
    a.var_names = names
    a.write_h5ad(out / "dup_var.h5ad")

    a = good()
    a.write_h5ad(out / "x_taller.h5ad")
    with h5py.File(out / "x_taller.h5ad", "r+") as f:
        del f["obs"]
        ad.io.write_elem(f, "obs", a.obs.iloc[:18])

    good().write_h5ad(out / "x_wider.h5ad")
    with h5py.File(out / "x_wider.h5ad", "r+") as f:
        f["X"].attrs["shape"] = np.array([20, 40], dtype=np.int64)


    def annotated():
        a = good()
        a.layers["counts"] = a.X.toarray()
        a.obsm["X_emb"] = np.arange(40, dtype=np.float64).reshape(20, 2)
        return a

    annotated().write_h5ad(out / "annotated.h5ad")
    for name, group, key, shape in [
        ("layer_narrow.h5ad", "layers", "counts", (20, 29)),
        ("obsm_short.h5ad", "obsm", "X_emb", (18, 2)),
    ]:
        annotated().write_h5ad(out / name)
        with h5py.File(out / name, "r+") as f:
            del f[group][key]
            ad.io.write_elem(f[group], key, np.ones(shape, dtype=np.float32))


if __name__ == "__main__":
    main(sys.argv[1])
