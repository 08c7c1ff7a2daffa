"""Writes an .h5ad of simulated PCA coordinates for the neighbors + UMAP benchmarks, with h5py alone
(the GPU machine has no anndata): obsm/X_pca (cells x dims, f32, variances decaying as PCA's do),
obs/cell_line (categorical), an empty var. Cells come from `--lines` cell lines, each a mixture of
8 sub-populations, so the kNN graph has local structure and the lines separate in a UMAP.

    python3 benches/make_points.py --cells 1000000 --dims 50 --out points.h5ad
"""

from __future__ import annotations

import argparse

import h5py
import numpy as np


def attrs(obj, kind: str, version: str = "0.2.0", **extra) -> None:
    obj.attrs["encoding-type"] = kind
    obj.attrs["encoding-version"] = version
    for k, v in extra.items():
        if isinstance(v, list):
            # A list of names, as anndata writes it (an empty one as an f64 array).
            if v:
                obj.attrs.create(k, np.array(v, dtype=object), dtype=h5py.string_dtype())
            else:
                obj.attrs[k] = np.array([], dtype=np.float64)
        else:
            obj.attrs[k] = v


def strings(group, name: str, values) -> None:
    d = group.create_dataset(name, data=np.array(values, dtype=object), dtype=h5py.string_dtype())
    attrs(d, "string-array")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=1_000_000)
    ap.add_argument("--dims", type=int, default=50)
    ap.add_argument("--lines", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    scale = (8.0 * 0.93 ** np.arange(a.dims)).astype(np.float32)
    centres = rng.normal(size=(a.lines, a.dims)).astype(np.float32) * (0.6 * scale)
    subs = rng.normal(size=(a.lines * 8, a.dims)).astype(np.float32) * (0.4 * scale)
    line = rng.integers(0, a.lines, a.cells).astype(np.int8)
    with h5py.File(a.out, "w") as f:
        attrs(f, "anndata", "0.1.0")
        obs = f.create_group("obs")
        attrs(obs, "dataframe", _index="_index", **{"column-order": ["cell_line"]})
        strings(obs, "_index", [f"cell{i}" for i in range(a.cells)])
        cl = obs.create_group("cell_line")
        attrs(cl, "categorical", ordered=False)
        strings(cl, "categories", [f"line{i}" for i in range(a.lines)])
        attrs(cl.create_dataset("codes", data=line), "array")
        var = f.create_group("var")
        attrs(var, "dataframe", _index="_index", **{"column-order": []})
        strings(var, "_index", [])
        for g in ["obsm", "obsp", "varm", "varp", "layers", "uns"]:
            attrs(f.create_group(g), "dict", "0.1.0")
        x = f["obsm"].create_dataset("X_pca", shape=(a.cells, a.dims), dtype=np.float32)
        attrs(x, "array")
        step = 100_000
        for s in range(0, a.cells, step):
            e = min(s + step, a.cells)
            ln = line[s:e].astype(np.int64)
            sub = ln * 8 + rng.integers(0, 8, e - s)
            noise = rng.normal(size=(e - s, a.dims)).astype(np.float32) * (0.4 * scale)
            x[s:e] = centres[ln] + subs[sub] + noise


if __name__ == "__main__":
    main()
