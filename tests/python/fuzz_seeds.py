"""Small valid h5ad files, one per encoding scoop reads, as seeds for examples/fuzz_readers.rs.

    fuzz_seeds.py DIR   writes DIR/seed_*.h5ad (a few kB each): CSR and dense X, float32,
                        float64 and int64 values, gzip and lzf chunks, categorical obs columns,
                        nullable strings, integers and booleans, obsm, varm, obsp, layers, raw
                        and a nested uns; a gzip csc_matrix X (`scoop convert`).
"""

import sys
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

warnings.filterwarnings("ignore")
ad.settings.allow_write_nullable_strings = True


def base(rng, n=8, g=6, dtype=np.float32):
    x = rng.poisson(1.5, size=(n, g)).astype(dtype)
    obs = pd.DataFrame(
        {
            "plate": pd.Categorical(rng.choice(["p1", "p2"], n)),
            "dose": rng.normal(size=n),
        },
        index=[f"c{i}" for i in range(n)],
    )
    var = pd.DataFrame({"n": np.arange(g, dtype=np.int64)}, index=[f"g{j}" for j in range(g)])
    return ad.AnnData(X=sp.csr_matrix(x), obs=obs, var=var)


def main(out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)

    base(rng).write_h5ad(out / "seed_csr.h5ad")

    a = base(rng, dtype=np.float64)
    a.X = a.X.toarray()
    a.write_h5ad(out / "seed_dense.h5ad")

    base(rng).write_h5ad(out / "seed_gzip.h5ad", compression="gzip")
    a = base(rng)
    a.X = a.X.toarray()
    a.write_h5ad(out / "seed_lzf_dense.h5ad", compression="lzf")

    a = base(rng, dtype=np.int64)
    n = a.n_obs
    a.obs["name"] = pd.array([f"s{i}" if i % 3 else None for i in range(n)], dtype="string")
    a.obs["count"] = pd.array([i if i % 2 else None for i in range(n)], dtype="Int64")
    a.obs["flag"] = pd.array([bool(i % 2) if i % 4 else None for i in range(n)], dtype="boolean")
    a.obs["label"] = [f"l{i % 3}" for i in range(n)]
    a.write_h5ad(out / "seed_nullable.h5ad")

    a = base(rng)
    a.obsm["X_pca"] = rng.normal(size=(a.n_obs, 3)).astype(np.float32)
    a.varm["PCs"] = rng.normal(size=(a.n_vars, 3))
    a.obsp["distances"] = sp.random(a.n_obs, a.n_obs, density=0.3, format="csr", random_state=2)
    a.layers["counts"] = a.X.astype(np.int32)
    a.layers["dense"] = rng.normal(size=a.shape)
    a.raw = a.copy()
    a.uns["pca"] = {"variance": np.arange(3.0), "params": {"zero_center": True}}
    a.uns["title"] = "seed"
    a.write_h5ad(out / "seed_full.h5ad")

    a = base(rng, n=12)
    a.X = a.X.tocsc()
    a.write_h5ad(out / "seed_csc_gzip.h5ad", compression="gzip")


if __name__ == "__main__":
    main(sys.argv[1])
