"""Times scoop against scanpy + dask on the same generated plates and prints the ratios.

    python benches/compare_scanpy.py --cells-per-plate 200000 --plates 3 --genes 2000
    python benches/compare_scanpy.py --steps pca --merged MERGED.h5ad --n-comps 300

Steps timed (each in its own process, so peak RSS is per step):
  preprocess  scoop: `scoop preprocess --filter pass_filter=full`
              scanpy: per plate, X via read_elem_lazy (dask, 10k-row chunks), filter,
              normalize_total, log1p, highly_variable_genes(n_top_genes); genes HVG in
              >= min-plates plates; each plate written on them (X computed, write_h5ad).
  pca         on the merged file (`--merged`, else scoop's preprocessed plates concatenated,
              untimed): scoop: `scoop pca --n-comps K --zarr`;
              scanpy: X via read_elem_lazy (dask, 10k-row chunks), sc.pp.pca(n_comps=K,
              mask_var=None) (the covariance route), X_pca.to_zarr (the projection runs here).
  neighbors   on `--pca-input` (an .h5ad with obsm['X_pca'] and obs['cell_line'], e.g. `scoop
              pca` output), subsampled to `--cells` cells by scoop (untimed), 15 neighbours on
              all components: scoop `neighbors` (NN-descent above 8191 cells) vs sc.pp.neighbors
              (pynndescent above 8191 cells), then recall@15 of both against exact neighbours of
              2,000 random cells.
  umap        scoop `umap` on scoop's graph vs sc.tl.umap(random_state=0) on scanpy's graph;
              cell-line silhouette and trustworthiness (k = 15, against X_pca) of both on
              10,000 random cells.
Needs a Python with scanpy, anndata, dask (tests/python/requirements.txt) and a release build
of scoop (cargo build --release). Not a test: numbers go in docs/performance.md (dated, with machine and commit).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCANPY_PREPROCESS = textwrap.dedent(
    """
    import sys, warnings, h5py, numpy as np, pandas as pd, anndata as ad, scanpy as sc
    from anndata.experimental import read_elem_lazy
    warnings.filterwarnings("ignore")
    out_dir, n_top, min_plates, flavor, *plates = sys.argv[1:]
    n_top, min_plates = int(n_top), int(min_plates)
    files, adatas, hv = [], [], []
    for p in plates:
        f = h5py.File(p, "r")
        files.append(f)
        n_vars = int(f["X"].attrs["shape"][1])
        a = ad.AnnData(X=read_elem_lazy(f["X"], chunks=(10_000, n_vars)),
                       obs=ad.io.read_elem(f["obs"]), var=ad.io.read_elem(f["var"]))
        a = a[a.obs["pass_filter"] == "full"].copy()
        sc.pp.normalize_total(a)
        sc.pp.log1p(a)
        sc.pp.highly_variable_genes(a, n_top_genes=n_top, flavor=flavor)
        adatas.append(a)
        hv.append(a.var["highly_variable"].to_numpy())
    keep = np.sum(hv, axis=0) >= min_plates
    for p, a in zip(plates, adatas):
        b = a[:, keep].copy()
        b.X = b.X.compute()
        b.write_h5ad(f"{out_dir}/{p.split('/')[-1][:-5]}_scanpy.h5ad")
    print(int(keep.sum()))
    """
)

SCANPY_PCA = textwrap.dedent(
    """
    import sys, warnings, h5py, anndata as ad, scanpy as sc
    from anndata.experimental import read_elem_lazy
    warnings.filterwarnings("ignore")
    path, n_comps, zarr_out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    f = h5py.File(path, "r")
    n_vars = int(f["X"].attrs["shape"][1])
    a = ad.AnnData(X=read_elem_lazy(f["X"], chunks=(10_000, n_vars)),
                   obs=ad.io.read_elem(f["obs"]), var=ad.io.read_elem(f["var"]))
    sc.pp.pca(a, n_comps=n_comps, mask_var=None)
    a.obsm["X_pca"].to_zarr(zarr_out, overwrite=True)
    print(" ".join(f"{v:.4f}" for v in a.uns["pca"]["variance_ratio"][:3]))
    """
)


SCANPY_NEIGHBORS = textwrap.dedent(
    """
    import sys, warnings, anndata as ad, scanpy as sc, scipy.sparse as sp
    warnings.filterwarnings("ignore")
    # scanpy 1.11.5 calls getnnz on the kNN matrix; pynndescent >= 0.6 returns a csr_array,
    # which recent scipy gives no getnnz.
    if not hasattr(sp.csr_array, "getnnz"):
        sp.csr_array.getnnz = lambda self, axis=None: self._getnnz(axis=axis)
    src, out = sys.argv[1:]
    a = ad.read_h5ad(src)
    sc.pp.neighbors(a, n_neighbors=15, use_rep="X_pca", random_state=0)
    a.write_h5ad(out)
    """
)

SCANPY_UMAP = textwrap.dedent(
    """
    import sys, warnings, anndata as ad, scanpy as sc
    warnings.filterwarnings("ignore")
    src, out = sys.argv[1:]
    a = ad.read_h5ad(src)
    sc.tl.umap(a, random_state=0)
    a.write_h5ad(out)
    """
)

# Recall@15 of both graphs against exact neighbours of a random sample, and the cell-line
# silhouette and trustworthiness of both layouts on a random sample.
JUDGE = textwrap.dedent(
    """
    import sys, numpy as np, anndata as ad
    from sklearn.neighbors import NearestNeighbors
    from sklearn.metrics import silhouette_score
    from sklearn.manifold import trustworthiness
    kind, ours, theirs = sys.argv[1:]
    a, b = ad.read_h5ad(ours), ad.read_h5ad(theirs)
    rng = np.random.default_rng(0)
    if kind == "neighbors":
        x = a.obsm["X_pca"]
        sample = rng.choice(x.shape[0], 2000, replace=False)
        nn = NearestNeighbors(n_neighbors=15).fit(x).kneighbors(x[sample], return_distance=False)
        out = []
        for f in (a, b):
            d = f.obsp["distances"].tocsr()
            hit = sum(len(set(d[i].indices) & set(nn[t][1:])) for t, i in enumerate(sample))
            out.append(hit / (14 * len(sample)))
        print("recall@15 scoop %.4f, scanpy %.4f" % tuple(out))
    else:
        sample = rng.choice(a.n_obs, min(10000, a.n_obs), replace=False)
        lab = a.obs["cell_line"].cat.codes.to_numpy()[sample]
        s = [silhouette_score(f.obsm["X_umap"][sample], lab) for f in (a, b)]
        x = np.asarray(a.obsm["X_pca"])[sample]
        t = [trustworthiness(x, f.obsm["X_umap"][sample], n_neighbors=15) for f in (a, b)]
        print("silhouette scoop %.4f, scanpy %.4f; trustworthiness@15 scoop %.4f, scanpy %.4f"
              % (*s, *t))
    """
)


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """Runs cmd; returns (wall seconds, peak RSS MiB of the child, stdout)."""
    os.sync()  # earlier steps' dirty pages are flushed now, not during this step
    t = time.perf_counter()
    # Each step runs under /usr/bin/time so the RSS is that process's own peak.
    out = subprocess.run(
        ["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, text=True
    )
    wall = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"{cmd[0]} failed:\n{out.stdout}\n{out.stderr}")
    rss_kib = int(out.stderr.strip().splitlines()[-1])
    return wall, rss_kib / 1024, out.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells-per-plate", type=int, default=100_000)
    ap.add_argument("--plates", type=int, default=3)
    ap.add_argument("--genes", type=int, default=2000)
    ap.add_argument("--n-top-genes", type=int, default=500)
    ap.add_argument("--min-plates", type=int, default=3)
    ap.add_argument("--flavor", default="seurat")
    ap.add_argument("--scoop", default=str(ROOT / "target/release/scoop"))
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--workdir", default=None, help="keep data here (default: a temp dir)")
    ap.add_argument("--steps", default="preprocess,pca",
                    help="comma-separated: preprocess, pca, neighbors, umap")
    ap.add_argument("--pca-input", default=None, help="neighbors/umap input (with obsm X_pca)")
    ap.add_argument("--cells", type=int, default=200_000, help="neighbors/umap cells")
    ap.add_argument("--merged", default=None, help="PCA input (default: scoop's plates merged)")
    ap.add_argument("--n-comps", type=int, default=300)
    args = ap.parse_args()
    steps = args.steps.split(",")

    work = Path(args.workdir or tempfile.mkdtemp(prefix="scoop-bench-"))
    rows = []
    if "preprocess" in steps:
        cells = preprocess_step(args, work, rows)
    if "pca" in steps:
        cells = pca_step(args, work, rows)
    if "neighbors" in steps or "umap" in steps:
        layout_steps(args, work, rows, steps)

    print(f"{os.cpu_count()} CPUs, work dir {work}")
    print(f"{'step':<12}{'scoop s':>10}{'scoop MiB':>11}{'scanpy s':>10}{'scanpy MiB':>12}"
          f"{'speed-up':>10}{'RSS ratio':>11}")
    for step, ws, rs, wp, rp, note in rows:
        print(f"{step:<12}{ws:>10.2f}{rs:>11.0f}{wp:>10.2f}{rp:>12.0f}{wp / ws:>9.1f}x"
              f"{rp / rs:>10.1f}x   {note}")
    return 0


def pca_step(args, work: Path, rows: list) -> int:
    merged = Path(args.merged) if args.merged else work / "merged.h5ad"
    if not merged.exists():
        pre = sorted(str(p) for p in (work / "scoop_pre").glob("*.h5ad"))
        subprocess.run([args.scoop, "concat", *pre, "--out", str(merged), "--label", "plate",
                        "-q"], check=True)
    w_s, r_s, out = timed(
        [args.scoop, "pca", str(merged), "--n-comps", str(args.n_comps), "--out",
         str(work / "pca_scoop.h5ad"), "--zarr", str(work / "pca_scoop.zarr"), "--force", "-q"]
    )
    w_p, r_p, stdout = timed(
        [args.python, "-c", SCANPY_PCA, str(merged), str(args.n_comps),
         str(work / "pca_scanpy.zarr")]
    )
    info = subprocess.run([args.scoop, "inspect", str(merged)], capture_output=True, text=True,
                          check=True).stdout
    shape = info.splitlines()[0].split("=")[-1].strip()
    lines = out.strip().splitlines()
    rows.append(("pca", w_s, r_s, w_p, r_p,
                 f"{shape}, k={args.n_comps}; scoop: {lines[1] if len(lines) > 1 else ''}; "
                 f"variance ratio scoop {lines[0].split(':')[-1].strip()} / scanpy "
                 f"{stdout.strip()}"))
    return int(shape.split("×")[0])


def layout_steps(args, work: Path, rows: list, steps: list[str]) -> None:
    sub = work / f"sub{args.cells}.h5ad"
    if not sub.exists():
        subprocess.run([args.scoop, "subsample", args.pca_input, "--n", str(args.cells), "--out",
                        str(sub), "-q"], check=True)
    nb_s, nb_p = work / f"nb{args.cells}_scoop.h5ad", work / f"nb{args.cells}_scanpy.h5ad"
    if "neighbors" in steps:
        w_s, r_s, out = timed([args.scoop, "neighbors", str(sub), "--out", str(nb_s), "--force",
                               "-q"])
        w_p, r_p, _ = timed([args.python, "-c", SCANPY_NEIGHBORS, str(sub), str(nb_p)])
        judge = subprocess.run([args.python, "-c", JUDGE, "neighbors", str(nb_s), str(nb_p)],
                               capture_output=True, text=True, check=True).stdout.strip()
        rows.append(("neighbors", w_s, r_s, w_p, r_p,
                     f"{args.cells} cells; {judge}; scoop: {out.strip()}"))
    if "umap" in steps:
        um_s, um_p = work / f"um{args.cells}_scoop.h5ad", work / f"um{args.cells}_scanpy.h5ad"
        w_s, r_s, out = timed([args.scoop, "umap", str(nb_s), "--out", str(um_s), "--force",
                               "-q"])
        w_p, r_p, _ = timed([args.python, "-c", SCANPY_UMAP, str(nb_p), str(um_p)])
        judge = subprocess.run([args.python, "-c", JUDGE, "umap", str(um_s), str(um_p)],
                               capture_output=True, text=True, check=True).stdout.strip()
        rows.append(("umap", w_s, r_s, w_p, r_p, f"{args.cells} cells; {judge}; scoop: "
                     f"{out.strip()}"))


def preprocess_step(args, work: Path, rows: list) -> int:
    plates_dir = work / "plates"
    if not plates_dir.exists():
        subprocess.run(
            [args.scoop, "simulate", "--out", str(plates_dir), "--plates", str(args.plates),
             "--cells-per-plate", str(args.cells_per_plate), "--genes", str(args.genes), "-q"],
            check=True,
        )
    plates = sorted(str(p) for p in plates_dir.glob("*.h5ad"))
    cells = args.plates * args.cells_per_plate

    out_scoop = work / "scoop_pre"
    w_s, r_s, _ = timed(
        [args.scoop, "preprocess", *plates, "--out-dir", str(out_scoop), "--filter",
         "pass_filter=full", "--n-top-genes", str(args.n_top_genes), "--min-plates",
         str(args.min_plates), "--flavor", args.flavor, "--force", "-q"]
    )
    report = json.loads((out_scoop / "preprocess.json").read_text())
    out_sc = work / "scanpy_pre"
    out_sc.mkdir(exist_ok=True)
    w_p, r_p, stdout = timed(
        [args.python, "-c", SCANPY_PREPROCESS, str(out_sc), str(args.n_top_genes),
         str(args.min_plates), args.flavor, *plates]
    )
    rows.append(("preprocess", w_s, r_s, w_p, r_p,
                 f"{args.plates} plates x {args.cells_per_plate} cells x {args.genes} genes; "
                 f"genes selected: scoop {report['selected_genes']}, scanpy {stdout.strip()}; "
                 f"scoop {cells / w_s:,.0f} cells/s, scanpy {cells / w_p:,.0f} cells/s"))
    return cells


if __name__ == "__main__":
    sys.exit(main())
