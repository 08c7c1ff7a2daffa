"""What scoop's outputs keep of X, raw and layers, checked against anndata (tests/outputs.rs).

    outputs.py make DIR                         plates a.h5ad, b.h5ad (same genes) and c.h5ad
                                                (other genes, another order) with layers and raw
    outputs.py preprocessed IN OUT COL VALUE    OUT == IN[IN.obs[COL] == VALUE][:, OUT.var_names]
                                                (layers, raw, obsm, varm, obsp, uns)
    outputs.py rows IN OUT                      OUT == IN[OUT.obs_names] (a subset or all rows;
                                                X, layers, raw and IN's obsm)
    outputs.py pca IN OUT                       OUT keeps IN's obsm, varm, obsp and uns entries
    outputs.py concat JOIN OUT IN...            OUT's layers (and obsm, inner join) ==
                                                anndata.concat(INs, join=JOIN)'s; no raw
                                                (concat_on_disk drops it)
    outputs.py dropped OUT                      OUT has no X, no raw, no layers
    outputs.py run DIR IN...                    `scoop run`'s DIR: merged.h5ad's layers and obsm
                                                == anndata.concat(INs)'s (IN: `preprocess`'s
                                                plate files), no raw; pca.h5ad keeps them;
                                                subset.h5ad has its cells' obsm rows

Matrices compare by encoding (sparse or dense), dtype, shape and every value (NaN == NaN).
"""

import sys
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

warnings.filterwarnings("ignore")


def plate(rng, n, genes, raw_genes, seed_name, mixed_sparse=False):
    counts = rng.negative_binomial(2, 0.3, size=(n, len(genes))).astype(np.float32)
    counts[rng.random((n, len(genes))) < 0.5] = 0
    obs = pd.DataFrame(
        {
            "pass_filter": pd.Categorical(
                np.where(rng.random(n) < 0.75, "full", "minimal"), categories=["full", "minimal"]
            ),
            "cell_line": pd.Categorical(rng.choice(["A549", "HepG2", "K562"], n)),
        },
        index=[f"{seed_name}-cell{i}" for i in range(n)],
    )
    var = pd.DataFrame(index=pd.Index(genes))
    a = ad.AnnData(X=sp.csr_matrix(counts), obs=obs, var=var)
    a.layers["counts"] = sp.csr_matrix((counts * 3).astype(np.int64))
    a.layers["dense"] = rng.normal(size=(n, len(genes)))
    # Dense here, CSR in c.h5ad: concatenated, it becomes CSR (as anndata.concat makes it).
    mixed = np.where(rng.random((n, len(genes))) < 0.3, rng.normal(size=(n, len(genes))), 0.0)
    a.layers["mixed"] = sp.csr_matrix(mixed) if mixed_sparse else mixed
    raw_x = rng.negative_binomial(1, 0.5, size=(n, len(raw_genes))).astype(np.float32)
    raw_x[rng.random(raw_x.shape) < 0.6] = 0
    raw = ad.AnnData(
        X=sp.csr_matrix(raw_x),
        obs=pd.DataFrame(index=obs.index),
        var=pd.DataFrame(
            {"n_cells": (raw_x > 0).sum(0).astype(np.int64)}, index=pd.Index(raw_genes)
        ),
    )
    a.raw = raw
    a.obsm["X_emb"] = rng.normal(size=(n, 3))
    a.obsm["X_sparse"] = sp.random(n, 4, density=0.4, format="csr", dtype=np.float32, random_state=2)
    a.varm["loadings"] = rng.normal(size=(len(genes), 2)).astype(np.float32)
    a.obsp["graph"] = sp.random(n, n, density=0.1, format="csr", dtype=np.float32, random_state=1)
    a.uns["note"] = {"plate": seed_name, "n": np.int64(n)}
    return a


def make(d):
    # Plain string-array indexes (the nullable-string encoding is the interop tests' concern).
    if hasattr(ad.settings, "allow_write_nullable_strings"):
        ad.settings.allow_write_nullable_strings = False
    rng = np.random.default_rng(7)
    genes = [f"g{j}" for j in range(40)]
    raw_genes = genes + [f"extra{j}" for j in range(12)]
    plate(rng, 70, genes, raw_genes, "a").write_h5ad(f"{d}/a.h5ad")
    plate(rng, 50, genes, raw_genes, "b").write_h5ad(f"{d}/b.h5ad")
    other = [f"g{j}" for j in range(45, 30, -1)] + [f"g{j}" for j in range(0, 20)]
    c = plate(rng, 30, other, other, "c", mixed_sparse=True)
    c.write_h5ad(f"{d}/c.h5ad")


def same(name, got, want):
    assert sp.issparse(got) == sp.issparse(want), (
        f"{name}: sparse {sp.issparse(got)}, anndata's is sparse {sp.issparse(want)}"
    )
    if sp.issparse(want):
        assert got.format == want.format, f"{name}: {got.format} vs {want.format}"
        got, want = got.toarray(), want.toarray()
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, f"{name}: dtype {got.dtype}, anndata's {want.dtype}"
    assert got.shape == want.shape, f"{name}: shape {got.shape}, anndata's {want.shape}"
    assert np.array_equal(got, want, equal_nan=True), f"{name}: values differ"


def layer_keys(a):
    """The stored layers (anndata 0.13 also lists None, its name for X)."""
    return sorted(k for k in a.layers.keys() if k is not None)


def same_layers(got, want):
    assert layer_keys(got) == layer_keys(want), (
        f"layers {layer_keys(got)}, anndata's {layer_keys(want)}"
    )
    for k in layer_keys(want):
        same(f"layers/{k}", got.layers[k], want.layers[k])


def same_raw(got, want):
    assert (got.raw is None) == (want.raw is None), f"raw present: {got.raw is not None}"
    if want.raw is None:
        return
    same("raw/X", got.raw.X, want.raw.X)
    assert list(got.raw.var_names) == list(want.raw.var_names), "raw var_names differ"
    assert list(got.raw.obs_names) == list(want.raw.obs_names), "raw obs_names differ"
    pd.testing.assert_frame_equal(got.raw.var, want.raw.var, check_index_type=False)


def same_annotations(got, want, skip=()):
    """obsm, varm, obsp, varp entries (but `skip`) and uns['note'] equal anndata's."""
    for m in ["obsm", "varm", "obsp", "varp"]:
        g, w = getattr(got, m), getattr(want, m)
        keys = sorted(k for k in w.keys() if k not in skip)
        assert sorted(k for k in g.keys() if k not in skip) == keys, f"{m}: {list(g.keys())}"
        for k in keys:
            same(f"{m}/{k}", g[k], w[k])
    assert got.uns["note"]["plate"] == want.uns["note"]["plate"], "uns/note"
    assert got.uns["note"]["n"] == want.uns["note"]["n"], "uns/note"


def preprocessed(inp, out, col, value):
    a = ad.read_h5ad(inp)
    o = ad.read_h5ad(out)
    want = a[(a.obs[col] == value).to_numpy()][:, o.var_names].copy()
    assert list(o.obs_names) == list(want.obs_names)
    same_layers(o, want)
    same_raw(o, want)
    assert o.raw.n_vars > o.n_vars, "raw keeps all its genes"
    same_annotations(o, want)
    assert o.uns["hvg"]["flavor"] == "seurat" and "log1p" in o.uns


def pca(inp, out):
    """OUT keeps IN's obsm, varm, obsp entries and uns beside X_pca, PCs, uns/pca."""
    same_annotations(ad.read_h5ad(out), ad.read_h5ad(inp), skip=("X_pca", "PCs"))


def rows(inp, out):
    a = ad.read_h5ad(inp)
    o = ad.read_h5ad(out)
    want = a[list(o.obs_names)].copy()
    assert list(o.var_names) == list(want.var_names)
    same("X", o.X, want.X)
    same_layers(o, want)
    same_raw(o, want)
    for k in want.obsm.keys():
        same(f"obsm/{k}", o.obsm[k], want.obsm[k])


def concat(join, out, inputs):
    o = ad.read_h5ad(out)
    want = ad.concat([ad.read_h5ad(p) for p in inputs], join=join)
    # anndata's outer join sorts the union of genes (pd.Index.union); scoop keeps first-seen
    # order: the genes must agree, and the values are compared gene by gene.
    assert sorted(o.var_names) == sorted(want.var_names), "joined genes differ"
    want = want[:, list(o.var_names)].copy()
    same_layers(o, want)
    assert o.raw is None, "concat_on_disk writes no raw"
    if join == "inner":
        assert sorted(o.obsm.keys()) == sorted(want.obsm.keys()), f"obsm {list(o.obsm)}"
        for k in want.obsm.keys():
            same(f"obsm/{k}", o.obsm[k], want.obsm[k])


def run(d, inputs):
    merged = ad.read_h5ad(f"{d}/merged.h5ad")
    want = ad.concat([ad.read_h5ad(p) for p in inputs])
    assert list(merged.obs_names) == list(want.obs_names), "cells differ"
    assert list(merged.var_names) == list(want.var_names), "genes differ"
    same_layers(merged, want)
    assert merged.raw is None, "concat_on_disk writes no raw"
    assert sorted(merged.obsm.keys()) == sorted(want.obsm.keys()), f"obsm {list(merged.obsm)}"
    for k in want.obsm.keys():
        same(f"obsm/{k}", merged.obsm[k], want.obsm[k])
    pca = ad.read_h5ad(f"{d}/pca.h5ad")
    same_layers(pca, merged)
    for k in merged.obsm.keys():
        same(f"pca.h5ad obsm/{k}", pca.obsm[k], merged.obsm[k])
    sub = ad.read_h5ad(f"{d}/subset.h5ad")
    drawn = pca[list(sub.obs_names)]
    assert sorted(sub.obsm.keys()) == sorted(pca.obsm.keys()), f"subset obsm {list(sub.obsm)}"
    for k in merged.obsm.keys():
        same(f"subset.h5ad obsm/{k}", sub.obsm[k], drawn.obsm[k])


def dropped(out):
    o = ad.read_h5ad(out)
    assert o.X is None, "X written"
    assert o.raw is None, "raw written"
    assert layer_keys(o) == [], f"layers written: {layer_keys(o)}"


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    if cmd == "make":
        make(*args)
    elif cmd == "preprocessed":
        preprocessed(*args)
    elif cmd == "pca":
        pca(*args)
    elif cmd == "rows":
        rows(*args)
    elif cmd == "concat":
        concat(args[0], args[1], args[2:])
    elif cmd == "run":
        run(args[0], args[1:])
    elif cmd == "dropped":
        dropped(*args)
    else:
        sys.exit(f"unknown command {cmd}")
    print("ok")
