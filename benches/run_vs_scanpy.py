"""Times `scoop run` against the Tahoe-100M notebook's steps in scanpy + dask on the same plates.

    python benches/run_vs_scanpy.py --plates 3 --cells 300000 --n-comps 300 --subsample 300000 \\
        --workdir /data/bench --keep
    python benches/run_vs_scanpy.py A.h5ad B.h5ad C.h5ad --n-comps 300   # existing plates

Plates: generated with `scoop simulate --shape tahoe --compression gzip` (62,710 genes, ~1,450
stored values per cell, CSR float32 counts gzip-compressed as the released plates), unless plate
files are given. Both sides then run on the same files with the same parameters (filter
pass_filter == "full", median target sum, seurat HVG with --n-top-genes per plate, genes HVG in
>= --min-plates plates, --n-comps, --subsample, --n-neighbors, --seed).

  scoop   `scoop run PLATES --out-dir DIR` as one process under /usr/bin/time (wall, peak RSS);
          per-step seconds from DIR/run.json.
  scanpy  the notebook's steps, each in its own process under /usr/bin/time (peak RSS per step;
          the side's peak is the largest step's, which is below what one notebook kernel holding
          every step's objects would reach):
    hvg        per plate: X via anndata.experimental.read_elem_lazy (dask, 10k-row chunks),
               filter, sc.pp.normalize_total (median target), sc.pp.log1p,
               sc.pp.highly_variable_genes; genes HVG in >= min_plates plates
    write      per plate again (lazy): filter, normalize, log1p, subset to the selected genes,
               write_h5ad with X still a dask array (written chunk by chunk)
    concat     anndata.experimental.concat_on_disk(label="plate", keys = plate file stems)
    pca        merged X via read_elem_lazy; sc.pp.pca(n_comps, mask_var=None) on the dask
               array (scanpy's own out-of-core covariance PCA for dask + sparse chunks; no
               dask-ml), X_pca.to_zarr (the projection runs here)
    subsample  --subsample random rows (numpy default_rng(seed)) of X_pca read from the zarr
               with dask and of obs; written as subset.h5ad
    neighbors  sc.pp.neighbors(n_neighbors, use_rep="X_pca", random_state=seed)
    umap       sc.tl.umap(random_state=seed)
    plot       sc.pl.umap(color=--color) saved as PNG

Prints the steps' wall times side by side (scoop's passes grouped to match), totals, peak RSS
and ratios, and how the two results agree (selected genes, merged shape and sum of X,
variance ratios, subset size). The plates are read once untimed first, so both sides start with
the page cache warm; each step starts after a `sync`. pynndescent and umap-learn compile their
numba kernels in every new process (~100 s on this loaded 2-core box at small sizes), inside
the neighbors and umap steps' times, as a fresh notebook kernel pays them. Needs the current Python stack (scanpy >= 1.12, anndata >= 0.12, dask, zarr,
umap-learn, pynndescent, matplotlib) and a release build of scoop. Not a test: numbers go in
docs/performance.md with date, machine and commit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------
# scanpy + dask side: one function per step, each run as `python THIS --step NAME ARGS_JSON`.


def _quiet():
    import warnings

    warnings.filterwarnings("ignore")


def _lazy_plate(path: str, filt: tuple[str, str] | None):
    import anndata as ad
    import h5py
    from anndata.experimental import read_elem_lazy

    f = h5py.File(path, "r")
    n_vars = int(f["X"].attrs["shape"][1])
    a = ad.AnnData(X=read_elem_lazy(f["X"], chunks=(10_000, n_vars)),
                   obs=ad.io.read_elem(f["obs"]), var=ad.io.read_elem(f["var"]))
    if filt:
        a = a[(a.obs[filt[0]] == filt[1]).to_numpy()].copy()
    return f, a


def _normalized(p: dict, path: str):
    import scanpy as sc

    filt = tuple(p["filter"].split("=", 1)) if p["filter"] else None
    f, a = _lazy_plate(path, filt)
    sc.pp.normalize_total(a)  # target_sum=None: the median of the cells' totals
    sc.pp.log1p(a)
    return f, a


def step_hvg(p: dict) -> dict:
    import numpy as np
    import scanpy as sc

    hv = []
    for path in p["plates"]:
        f, a = _normalized(p, path)
        sc.pp.highly_variable_genes(a, n_top_genes=p["n_top_genes"], flavor=p["flavor"])
        hv.append(a.var["highly_variable"].to_numpy())
        genes = a.var_names.to_numpy()
        f.close()
    keep = np.sum(hv, axis=0) >= p["min_plates"]
    Path(p["work"], "genes.txt").write_text("\n".join(genes[keep]) + "\n")
    return {"selected": int(keep.sum())}


def step_write(p: dict) -> dict:
    genes = set(Path(p["work"], "genes.txt").read_text().split())
    out = []
    for path in p["plates"]:
        f, a = _normalized(p, path)
        b = a[:, a.var_names.isin(list(genes))].copy()
        dst = Path(p["work"], "plates", Path(path).stem + ".h5ad")
        b.write_h5ad(dst)  # X is still a dask array: anndata writes it chunk by chunk
        out.append(str(dst))
        f.close()
    return {"plates": out}


def step_concat(p: dict) -> dict:
    from anndata.experimental import concat_on_disk

    files = [str(Path(p["work"], "plates", Path(q).stem + ".h5ad")) for q in p["plates"]]
    concat_on_disk(files, str(Path(p["work"], "merged.h5ad")), label="plate",
                   keys=[Path(q).stem for q in p["plates"]])
    return {}


def step_pca(p: dict) -> dict:
    import scanpy as sc

    f, a = _lazy_plate(str(Path(p["work"], "merged.h5ad")), None)
    sc.pp.pca(a, n_comps=p["n_comps"], mask_var=None)
    a.obsm["X_pca"].to_zarr(str(Path(p["work"], "X_pca.zarr")), overwrite=True)
    return {"variance_ratio": [float(v) for v in a.uns["pca"]["variance_ratio"]],
            "method": type(a.X).__module__}


def step_subsample(p: dict) -> dict:
    import anndata as ad
    import dask.array as da
    import h5py
    import numpy as np

    x = da.from_zarr(str(Path(p["work"], "X_pca.zarr")))
    with h5py.File(Path(p["work"], "merged.h5ad"), "r") as f:
        obs = ad.io.read_elem(f["obs"])
    n = x.shape[0]
    rng = np.random.default_rng(p["seed"])
    idx = np.sort(rng.choice(n, p["subsample"], replace=False)) if p["subsample"] < n \
        else np.arange(n)
    a = ad.AnnData(obs=obs.iloc[idx].copy(), obsm={"X_pca": x[idx].compute()})
    a.write_h5ad(Path(p["work"], "subset.h5ad"))
    return {"rows": int(idx.size)}


def step_neighbors(p: dict) -> dict:
    import anndata as ad
    import scanpy as sc

    import scipy.sparse as sp

    # scanpy (1.11.5 and 1.12) calls getnnz on the kNN matrix; pynndescent >= 0.6 returns a
    # csr_array, which recent scipy gives no getnnz.
    if not hasattr(sp.csr_array, "getnnz"):
        sp.csr_array.getnnz = lambda self, axis=None: self._getnnz(axis=axis)
    a = ad.read_h5ad(Path(p["work"], "subset.h5ad"))
    sc.pp.neighbors(a, n_neighbors=p["n_neighbors"], use_rep="X_pca", random_state=p["seed"])
    a.write_h5ad(Path(p["work"], "neighbors.h5ad"))
    return {}


def step_umap(p: dict) -> dict:
    import anndata as ad
    import scanpy as sc

    a = ad.read_h5ad(Path(p["work"], "neighbors.h5ad"))
    sc.tl.umap(a, random_state=p["seed"])
    a.write_h5ad(Path(p["work"], "umap.h5ad"))
    return {}


def step_plot(p: dict) -> dict:
    import anndata as ad
    import matplotlib

    matplotlib.use("Agg")
    import scanpy as sc

    a = ad.read_h5ad(Path(p["work"], "umap.h5ad"))
    fig = sc.pl.umap(a, color=p["color"], show=False, return_fig=True)
    fig.savefig(Path(p["work"], "umap.png"), dpi=100)
    return {}


SCANPY_STEPS = ["hvg", "write", "concat", "pca", "subsample", "neighbors", "umap", "plot"]

# Rows of the comparison: (label, scoop steps from run.json, scanpy steps).
GROUPS = [
    ("pass 1: per-plate stats, HVG, gene selection", ["stats:*", "select"], ["hvg"]),
    ("pass 2: normalize, log1p, subset, merge (+gram)", ["merge"], ["write", "concat"]),
    ("PCA, X_pca (h5ad/zarr), subsample", ["pca"], ["pca", "subsample"]),
    ("neighbors", ["neighbors"], ["neighbors"]),
    ("UMAP", ["umap"], ["umap"]),
    ("plot", ["plot"], ["plot"]),
]


# ---------------------------------------------------------------------------------------------
# driver


def timed(cmd: list[str], log: Path | None = None) -> tuple[float, float, str]:
    """Runs cmd after a sync; returns (wall seconds, peak RSS MiB of the child, stdout)."""
    os.sync()
    t = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if log:
        log.write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd[:4])} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    rss_kib = int(out.stderr.strip().splitlines()[-1])
    return wall, rss_kib / 1024, out.stdout


def simulate(args, work: Path) -> list[str]:
    d = work / "plates"
    have = sorted(d.glob("plate*_filtered.h5ad")) if d.exists() else []

    def cells(path: Path) -> int:
        out = subprocess.run([args.scoop, "inspect", str(path)], capture_output=True, text=True)
        return int(out.stdout.split(" = ")[1].split()[0]) if out.returncode == 0 else -1

    if len(have) != args.plates or args.force_simulate \
            or any(cells(q) != args.cells for q in have):
        print(f"simulating {args.plates} Tahoe-shaped gzip plates x {args.cells} cells ...",
              flush=True)
        t = time.perf_counter()
        subprocess.run([args.scoop, "simulate", "--shape", "tahoe", "--compression", "gzip",
                        "--plates", str(args.plates), "--cells-per-plate", str(args.cells),
                        "--seed", str(args.seed), "--out", str(d), "--force", "-q"], check=True)
        print(f"  {time.perf_counter() - t:.1f} s", flush=True)
    return [str(p) for p in sorted(d.glob("plate*_filtered.h5ad"))]


def run_scoop(args, plates: list[str], work: Path, p: dict) -> dict:
    out = work / "scoop"
    if out.exists():
        shutil.rmtree(out)  # a rerun must not skip finished steps
    cmd = [args.scoop, "run", *plates, "--out-dir", str(out), "--n-top-genes",
           str(p["n_top_genes"]), "--flavor", p["flavor"], "--min-plates", str(p["min_plates"]),
           "--n-comps", str(p["n_comps"]), "--subsample", str(p["subsample"]),
           "--n-neighbors", str(p["n_neighbors"]), "--color", ",".join(p["color"]),
           "--seed", str(p["seed"]), "-q"]
    if p["filter"]:
        cmd += ["--filter", p["filter"]]
    if args.threads:
        cmd[1:1] = ["--threads", str(args.threads)]
    print("scoop:", " ".join(cmd), flush=True)
    wall, rss, _ = timed(cmd, work / "scoop.log")
    rec = json.loads((out / "run.json").read_text())
    steps = {s["name"]: s for s in rec["steps"]}
    return {"wall": wall, "rss": rss, "steps": steps, "out": out}


def run_scanpy(args, plates: list[str], work: Path, p: dict) -> dict:
    sw = work / "scanpy"
    if sw.exists():
        shutil.rmtree(sw)
    (sw / "plates").mkdir(parents=True)
    params = dict(p, plates=plates, work=str(sw))
    steps, results = {}, {}
    for name in args.scanpy_steps:
        arg = json.dumps(params)
        print(f"scanpy: {name} ...", flush=True)
        wall, rss, stdout = timed([args.python, __file__, "--step", name, arg],
                                  sw / f"{name}.log")
        res = json.loads(stdout.strip().splitlines()[-1])
        steps[name] = {"wall": wall, "rss": rss}
        results[name] = res
        print(f"  {wall:.1f} s, {rss:.0f} MiB", flush=True)
    return {"steps": steps, "results": results, "out": sw,
            "wall": sum(s["wall"] for s in steps.values()),
            "rss": max(s["rss"] for s in steps.values())}


def scoop_seconds(steps: dict, names: list[str]) -> float:
    total = 0.0
    for n in names:
        if n.endswith("*"):
            total += sum(s["seconds"] for k, s in steps.items() if k.startswith(n[:-1]))
        elif n in steps:
            total += steps[n]["seconds"]
    return total


def agreement(args, sc_: dict, sp: dict) -> list[str]:
    import h5py
    import numpy as np

    lines = []
    g_scoop = [l.split("\t")[0] for l in (sc_["out"] / "genes.tsv").read_text().splitlines()[1:]]
    g_scanpy = (sp["out"] / "genes.txt").read_text().split()
    common = len(set(g_scoop) & set(g_scanpy))
    lines.append(f"selected genes: scoop {len(g_scoop)}, scanpy {len(g_scanpy)}, "
                 f"in both {common}")

    def shape_sum(path: Path):
        with h5py.File(path, "r") as f:
            x = f["X"]
            shape = tuple(int(v) for v in x.attrs["shape"])
            d = x["data"]
            total = 0.0
            for s in range(0, d.shape[0], 50_000_000):
                total += float(np.sum(d[s:s + 50_000_000], dtype=np.float64))
            plates = ad_plate_counts(f)
        return shape, d.shape[0], total, plates

    def ad_plate_counts(f):
        import anndata as ad

        col = ad.io.read_elem(f["obs"])["plate"]
        return dict(sorted(col.value_counts().items()))

    a = shape_sum(sc_["out"] / "merged.h5ad")
    b = shape_sum(sp["out"] / "merged.h5ad")
    lines.append(f"merged X: scoop {a[0][0]} x {a[0][1]}, {a[1]:,} values, sum {a[2]:.6g}; "
                 f"scanpy {b[0][0]} x {b[0][1]}, {b[1]:,} values, sum {b[2]:.6g}")
    lines.append(f"cells per plate: scoop {a[3]}; scanpy {b[3]}")
    if "pca" in sp["results"]:
        vr_s = sc_["steps"]["pca"]["result"]["variance_ratio"][:5]
        vr_p = sp["results"]["pca"]["variance_ratio"][:5]
        lines.append("variance ratio (first 5): scoop " + " ".join(f"{v:.4f}" for v in vr_s)
                     + "; scanpy " + " ".join(f"{v:.4f}" for v in vr_p))
        lines.append(f"variance ratio summed over {args.n_comps} comps: scoop "
                     f"{sum(sc_['steps']['pca']['result']['variance_ratio']):.4f}, scanpy "
                     f"{sum(sp['results']['pca']['variance_ratio']):.4f}")
    if "subsample" in sp["results"]:
        # `run` records the subset in its own step (in `pca`'s before it was split off).
        sub = sc_["steps"].get("subset", sc_["steps"]["pca"])["result"] or {}
        lines.append(f"subset rows: scoop {sub.get('subset_rows')}, "
                     f"scanpy {sp['results']['subsample']['rows']}")
    return lines


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--step":
        _quiet()
        res = globals()[f"step_{sys.argv[2]}"](json.loads(sys.argv[3]))
        print(json.dumps(res))
        return 0

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="*", help="existing plate .h5ad files (default: simulate)")
    ap.add_argument("--plates", type=int, default=3, help="plates to simulate")
    ap.add_argument("--cells", type=int, default=300_000, help="cells per simulated plate")
    ap.add_argument("--n-comps", type=int, default=300)
    ap.add_argument("--subsample", type=int, default=300_000)
    ap.add_argument("--n-top-genes", type=int, default=2000)
    ap.add_argument("--min-plates", type=int, default=None,
                    help="default: 3, or the number of plates if fewer")
    ap.add_argument("--flavor", default="seurat")
    ap.add_argument("--filter", default="pass_filter=full")
    ap.add_argument("--n-neighbors", type=int, default=15)
    ap.add_argument("--color", default="cell_line,plate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="scoop --threads")
    ap.add_argument("--scoop", default=str(ROOT / "target/release/scoop"))
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--workdir", default=None, help="work here (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep plates and outputs")
    ap.add_argument("--force-simulate", action="store_true",
                    help="simulate again even if the workdir has the plates")
    ap.add_argument("--sides", default="scoop,scanpy", help="comma-separated: scoop, scanpy")
    ap.add_argument("--scanpy-steps", default=",".join(SCANPY_STEPS),
                    help="scanpy steps to run (a prefix of the list, in order)")
    args = ap.parse_args()
    args.scanpy_steps = args.scanpy_steps.split(",")

    work = Path(args.workdir or tempfile.mkdtemp(prefix="scoop-run-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    plates = [str(Path(p).resolve()) for p in args.inputs] or simulate(args, work)
    p = {
        "filter": args.filter, "n_top_genes": args.n_top_genes, "flavor": args.flavor,
        "min_plates": args.min_plates or min(3, len(plates)), "n_comps": args.n_comps,
        "subsample": args.subsample, "n_neighbors": args.n_neighbors,
        "color": args.color.split(","), "seed": args.seed,
    }
    sides = args.sides.split(",")
    for q in plates:  # page cache warm for both sides alike (untimed)
        with open(q, "rb") as fh:
            while fh.read(1 << 24):
                pass
    sc_ = run_scoop(args, plates, work, p) if "scoop" in sides else None
    sp = run_scanpy(args, plates, work, p) if "scanpy" in sides else None

    values = sum(int(subprocess.run([args.scoop, "inspect", q], capture_output=True, text=True,
                                    check=True).stdout.split("nnz ")[1].split()[0])
                 for q in plates)
    print(f"\n{len(plates)} plates, {values:,} stored values; n_comps {p['n_comps']}, "
          f"subsample {p['subsample']}, n_neighbors {p['n_neighbors']}, seed {p['seed']}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; work dir {work}")
    print(f"| step | scoop s | scanpy + dask s | ratio |\n|---|---|---|---|")
    for label, s_names, p_names in GROUPS:
        a = scoop_seconds(sc_["steps"], s_names) if sc_ else float("nan")
        b = sum(sp["steps"][n]["wall"] for n in p_names if n in sp["steps"]) if sp \
            else float("nan")
        if sp and not any(n in sp["steps"] for n in p_names):
            b = float("nan")
        print(f"| {label} | {a:.2f} | {b:.2f} | {b / a if a else float('nan'):.1f}x |")
    a = sc_["wall"] if sc_ else float("nan")
    b = sp["wall"] if sp else float("nan")
    print(f"| **total (wall, incl. process start-up)** | {a:.2f} | {b:.2f} | {b / a:.1f}x |")
    ra = sc_["rss"] if sc_ else float("nan")
    rb = sp["rss"] if sp else float("nan")
    print(f"| **peak RSS MiB** | {ra:.0f} | {rb:.0f} | {rb / ra:.1f}x |")
    if sp:
        print("scanpy steps: " + ", ".join(f"{n} {s['wall']:.1f} s / {s['rss']:.0f} MiB"
                                           for n, s in sp["steps"].items()))
    if sc_:
        print("scoop steps: " + ", ".join(f"{n} {s['seconds']:.1f} s"
                                          for n, s in sc_["steps"].items()))
    if sc_ and sp and "concat" in sp["steps"]:
        print("agreement:")
        for line in agreement(args, sc_, sp):
            print("  " + line)
    if not args.keep and not args.workdir:
        shutil.rmtree(work)
    elif not args.keep:
        for d in ("scoop", "scanpy"):
            shutil.rmtree(work / d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
