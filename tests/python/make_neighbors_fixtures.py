"""Regenerates the neighbors/UMAP parity fixtures with real scanpy and umap-learn.

    python tests/python/make_neighbors_fixtures.py            # rewrite tests/fixtures/neighbors
    python tests/python/make_neighbors_fixtures.py --check    # regenerate in a temp dir, compare

The input is a PCA-like representation: cells of a few cell lines as anisotropic Gaussian
clusters in 30 dimensions (variance decaying along the axes, as principal components do), stored
as `obsm['X_pca']` (float32) with `obs['cell_line']` and `obs['plate']`. For every scenario:

- `<scenario>_input.h5ad`: obs + obsm['X_pca'] (what `scoop neighbors` reads);
- `<scenario>_neighbors.h5ad`: after `sc.pp.neighbors(adata, n_neighbors, use_rep='X_pca')`
  (exact path: fewer than 8192 cells), i.e. obsp['distances'], obsp['connectivities'],
  uns['neighbors'];
- `component_layout.json`: umap's `component_layout` (where `multi_component_layout` puts the
  components of a disconnected graph) of 9 components' points, with the points and labels;
- `<scenario>_umap.h5ad`: after `sc.tl.umap(adata, random_state=0)` on that graph:
  obsm['X_umap'] and uns['quality'] = sklearn's trustworthiness(X_pca, X_umap, k=15) and the
  cell-line silhouette of X_umap (scoop's measures are tested against these).

`scenarios.json` holds, per scenario, umap-learn's quality as the numbers scoop's layout is judged
against: trustworthiness and silhouette averaged over `sc.tl.umap(random_state=s)` for s in
0..4. One layout is a poor reference: on the `lines` scenario the silhouette of single seeds
spans 0.813-0.851 (few_neighbors: 0.777-0.850), and the same seed gives 0.8305 on an AMD EPYC
and 0.8134 on an Intel Xeon (umap-learn's numba code rounds differently per CPU).

`--check` compares graphs by value (1e-6), and umap-learn's mean quality to 0.01
(trustworthiness) and 0.03 (silhouette); the stored layout itself is not compared, since its
coordinates depend on numba and the CPU.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
from fixture_main import paired_files, run
from sklearn.manifold import trustworthiness
from sklearn.metrics import silhouette_score

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "neighbors"

# name -> (seed, cells, dims, cell lines, n_neighbors, separation of the lines' centres)
SCENARIOS = {
    "lines": (31, 1500, 30, 6, 15, 2.0),
    "few_neighbors": (32, 400, 12, 3, 6, 2.0),
    # Lines far apart: a graph of 8 components (umap's multi-component layout).
    "islands": (33, 800, 10, 8, 10, 12.0),
}

# umap-learn layouts per scenario whose mean quality is the reference.
UMAP_SEEDS = 5


def make_input(seed: int, n: int, dims: int, n_lines: int, separation: float) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    line = rng.integers(0, n_lines, n)
    scale = 4.0 / np.sqrt(1.0 + np.arange(dims))
    centres = rng.normal(0, 1, (n_lines, dims)) * scale * separation
    # Per-line spread, so the fuzzy set's sigma differs between neighbourhoods.
    spread = 0.6 + 0.4 * rng.random(n_lines)
    x = centres[line] + rng.normal(0, 1, (n, dims)) * scale * spread[line, None]
    obs = pd.DataFrame(
        {
            "cell_line": pd.Categorical([f"CVCL_{1000 + 37 * i}" for i in line]),
            "plate": pd.Categorical(rng.choice(["plate1", "plate2", "plate3"], n)),
        },
        index=[f"cell{i}" for i in range(n)],
    )
    a = ad.AnnData(obs=obs)
    a.obsm["X_pca"] = x.astype(np.float32)
    return a


def generate(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    meta = {}
    for name, (seed, n, dims, n_lines, k, separation) in SCENARIOS.items():
        a = make_input(seed, n, dims, n_lines, separation)
        a.write_h5ad(out / f"{name}_input.h5ad")
        sc.pp.neighbors(a, n_neighbors=k, use_rep="X_pca", random_state=0)
        a.write_h5ad(out / f"{name}_neighbors.h5ad")
        lines = a.obs["cell_line"].cat.codes.to_numpy()
        quality = []
        for seed_umap in reversed(range(UMAP_SEEDS)):  # random_state=0 last: its layout is kept
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sc.tl.umap(a, random_state=seed_umap)
            emb = a.obsm["X_umap"]
            tw = float(trustworthiness(a.obsm["X_pca"], emb, n_neighbors=15))
            sil = float(silhouette_score(emb, lines))
            quality.append((tw, sil))
        tw_mean, sil_mean = np.mean(quality, axis=0)
        # The graph is in <name>_neighbors.h5ad already: keep this file to the layout.
        u = ad.AnnData(obs=a.obs, obsm={"X_pca": a.obsm["X_pca"], "X_umap": emb})
        u.uns["umap"] = a.uns["umap"]
        u.uns["quality"] = {"trustworthiness": tw, "silhouette": sil}
        u.write_h5ad(out / f"{name}_umap.h5ad")
        meta[name] = dict(seed=seed, cells=n, dims=dims, cell_lines=n_lines, n_neighbors=k,
                          separation=separation,
                          umap_learn_trustworthiness=round(float(tw_mean), 4),
                          umap_learn_silhouette=round(float(sil_mean), 4))
        print(f"{name}: umap-learn over {UMAP_SEEDS} seeds: trustworthiness {tw_mean:.4f} "
              f"({min(q[0] for q in quality):.4f}-{max(q[0] for q in quality):.4f}), "
              f"silhouette {sil_mean:.4f} ({min(q[1] for q in quality):.4f}-"
              f"{max(q[1] for q in quality):.4f})")
    (out / "scenarios.json").write_text(json.dumps(meta, indent=1) + "\n")
    (out / "component_layout.json").write_text(json.dumps(component_layout_case()) + "\n")


def component_layout_case() -> dict:
    """umap's placement of a disconnected graph's components (`component_layout`, used when
    there are more than 2·dim of them): 9 components of 12 points in 6 dimensions, centroids a
    unit or so apart (umap's affinity between centroids is exp(-d²)), and the 9 x 2 layout."""
    from umap.spectral import component_layout

    rng = np.random.default_rng(41)
    n_comp, size, width = 9, 12, 6
    centres = np.cumsum(rng.normal(0.0, 0.6, (n_comp, width)), axis=0)
    labels = np.repeat(np.arange(n_comp), size)
    data = centres[labels] + rng.normal(0.0, 0.3, (n_comp * size, width))
    data = data.astype(np.float32)
    layout = component_layout(data, n_comp, labels, 2, np.random.RandomState(0))
    return {"width": width, "dim": 2, "labels": labels.tolist(),
            "data": [float(v) for v in data.ravel()], "layout": layout.ravel().tolist()}


def compare(a: Path, b: Path) -> list[str]:
    ca = json.loads((a / "component_layout.json").read_text())
    cb = json.loads((b / "component_layout.json").read_text())
    if ca["data"] != cb["data"] or ca["labels"] != cb["labels"]:
        problems = ["component_layout.json: inputs differ"]
    elif not np.allclose(ca["layout"], cb["layout"], rtol=1e-6, atol=1e-9):
        problems = ["component_layout.json: layout differs"]
    else:
        problems = []
    more, pairs = paired_files(
        a, b, measured={"umap_learn_trustworthiness": 0.01, "umap_learn_silhouette": 0.03}
    )
    problems += more
    for rel, x, y in pairs:
        for key in x.obsp:
            d = abs(x.obsp[key] - y.obsp[key]).max() if key in y.obsp else np.inf
            if d > 1e-6:
                problems.append(f"{rel}: obsp[{key}] differs by {d}")
        if "X_pca" in x.obsm and not np.array_equal(x.obsm["X_pca"], y.obsm["X_pca"]):
            problems.append(f"{rel}: X_pca differs")
    return problems


if __name__ == "__main__":
    raise SystemExit(run(__doc__.splitlines()[0], FIXTURES, generate, compare))
