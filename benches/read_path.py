"""Times reading X of one anndata-written plate, uncompressed and gzip, through every reader.

    python benches/read_path.py                       # 100k cells x 20k genes, ~1,500 values/cell
    python benches/read_path.py --cells 30000 --workdir /tmp/rp

The plate (CSR float32 counts, obs with `pass_filter`) is generated with numpy and written by
anndata twice: uncompressed (anndata's default) and with compression="gzip". Timed, each in its
own process, the page cache warm (each file is read once untimed first):
  h5py/anndata   sparse_dataset(f["X"]) read in 10,000-row slices
  scoop stats    `scoop inspect --stats` (one streamed pass over X: rows, values, their sum),
                 with --read-path hdf5 and with the parallel path at --threads 1, 2 and all cores
  preprocess     `scoop preprocess` (parallel and hdf5 read paths) against scanpy + dask
                 (compare_scanpy.py's SCANPY_PREPROCESS, imported from there)
Prints a table of seconds and stored values per second, then the ratios the performance targets
name. Needs a Python with anndata, h5py, scanpy and dask, and `cargo build --release`. Not a test:
numbers go in docs/performance.md (dated, with machine and commit).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benches"))
import compare_scanpy  # noqa: E402  (SCANPY_PREPROCESS and the timing helper)

MAKE_PLATE = textwrap.dedent(
    """
    import sys, numpy as np, pandas as pd, scipy.sparse as sp, anndata as ad
    out, cells, genes, per_cell = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    if hasattr(ad.settings, "allow_write_nullable_strings"):
        ad.settings.allow_write_nullable_strings = False
    rng = np.random.default_rng(0)
    means = np.exp(rng.uniform(-4, 3, genes))
    cdf = np.cumsum(means / means.sum())
    counts = rng.poisson(per_cell, cells)
    rows = np.repeat(np.arange(cells), counts)
    cols = np.minimum(np.searchsorted(cdf, rng.random(rows.size)), genes - 1)
    key = rows.astype(np.int64) * genes + cols
    key = np.unique(key)  # sorted by row, then column; repeats merged
    rows, cols = key // genes, (key % genes).astype(np.int32)
    vals = (rng.negative_binomial(2, 2 / (2 + means[cols])) + 1).astype(np.float32)
    indptr = np.zeros(cells + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=cells), out=indptr[1:])
    x = sp.csr_matrix((vals, cols, indptr), shape=(cells, genes))
    obs = pd.DataFrame({"pass_filter": pd.Categorical(
        np.where(rng.random(cells) < 0.95, "full", "minimal"))},
        index=[f"c{i}" for i in range(cells)])
    var = pd.DataFrame(index=[f"g{i}" for i in range(genes)])
    a = ad.AnnData(X=x, obs=obs, var=var)
    a.write_h5ad(f"{out}/plain.h5ad")
    a.write_h5ad(f"{out}/gzip.h5ad", compression="gzip")
    print(x.nnz)
    """
)

H5PY_READ = textwrap.dedent(
    """
    import sys, h5py, anndata as ad
    sd = getattr(ad.io, "sparse_dataset", None) or ad.experimental.sparse_dataset
    with h5py.File(sys.argv[1], "r") as f:
        x = sd(f["X"])
        n, total = x.shape[0], 0.0
        for s in range(0, n, 10_000):
            total += float(x[s:s + 10_000].sum())
    print(total)
    """
)


def timed(cmd: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd[:3])} failed:\n{out.stdout}\n{out.stderr}")
    return wall, out.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", type=int, default=100_000)
    ap.add_argument("--genes", type=int, default=20_000)
    ap.add_argument("--per-cell", type=int, default=1_500, help="mean stored values per cell")
    ap.add_argument("--n-top-genes", type=int, default=2000)
    ap.add_argument("--scoop", default=str(ROOT / "target/release/scoop"))
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--workdir", default=None, help="keep the plates here (default: temp dir)")
    ap.add_argument("--skip-scanpy", action="store_true")
    args = ap.parse_args()

    tmp = None
    if args.workdir:
        work = Path(args.workdir)
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory()
        work = Path(tmp.name)
    if not (work / "gzip.h5ad").exists():
        print("writing the plates with anndata ...", flush=True)
        subprocess.run([args.python, "-c", MAKE_PLATE, str(work), str(args.cells),
                        str(args.genes), str(args.per_cell)], check=True)
    files = {k: work / f"{k}.h5ad" for k in ("plain", "gzip")}
    nnz = None
    cores = os.cpu_count() or 1
    rows: list[tuple[str, str, float]] = []

    def stats(file: Path, extra: list[str]) -> float:
        wall, out = timed([args.scoop, "inspect", str(file), "--stats", *extra])
        nonlocal nnz
        line = [l for l in out.splitlines() if l.startswith("X pass:")][0]
        nnz = int(line.split(" rows, ")[1].split()[0])
        return wall

    for kind, f in files.items():
        stats(f, ["--read-path", "hdf5"])  # warms the page cache
        rows.append((f"h5py/anndata sparse_dataset, 10k rows", kind,
                     timed([args.python, "-c", H5PY_READ, str(f)])[0]))
        rows.append(("scoop stats, hdf5 path", kind, stats(f, ["--read-path", "hdf5"])))
        for t in sorted({1, 2, cores}):
            rows.append((f"scoop stats, parallel, {t} threads", kind,
                         stats(f, ["--threads", str(t)])))
    pre = [args.scoop, "preprocess", "--filter", "pass_filter=full", "--n-top-genes",
           str(args.n_top_genes), "--min-plates", "1", "--force", "-q"]
    for kind, f in files.items():
        rows.append(("scoop preprocess, parallel", kind,
                     timed(pre + [str(f), "--out-dir", str(work / f"pre_{kind}")])[0]))
    rows.append(("scoop preprocess, hdf5 path", "gzip",
                 timed(pre + [str(files["gzip"]), "--out-dir", str(work / "pre_gzip_h5"),
                              "--read-path", "hdf5"])[0]))
    if not args.skip_scanpy:
        out_sc = work / "scanpy_pre"
        out_sc.mkdir(exist_ok=True)
        for kind, f in files.items():
            rows.append(("scanpy + dask preprocess", kind,
                         timed([args.python, "-c", compare_scanpy.SCANPY_PREPROCESS, str(out_sc),
                                str(args.n_top_genes), "1", "seurat", str(f)])[0]))

    sizes = {k: f.stat().st_size / 1e6 for k, f in files.items()}
    print(f"\nplate: {args.cells} cells x {args.genes} genes, {nnz:,} stored values; "
          f"plain {sizes['plain']:.0f} MB, gzip {sizes['gzip']:.0f} MB; {cores} cores")
    print(f"| reader | file | seconds | stored values/s |\n|---|---|---|---|")
    for name, kind, s in rows:
        print(f"| {name} | {kind} | {s:.2f} | {nnz / s:.3g} |")
    t = {(n, k): s for n, k, s in rows}
    allc = f"scoop stats, parallel, {cores} threads"
    print()
    print(f"stats pass, uncompressed: parallel ({cores} threads) vs hdf5 path: "
          f"{t[('scoop stats, hdf5 path', 'plain')] / t[(allc, 'plain')]:.2f}x faster")
    print(f"stats pass, gzip: parallel ({cores} threads) vs hdf5 path: "
          f"{t[('scoop stats, hdf5 path', 'gzip')] / t[(allc, 'gzip')]:.2f}x faster")
    print(f"preprocess: gzip / uncompressed: "
          f"{t[('scoop preprocess, parallel', 'gzip')] / t[('scoop preprocess, parallel', 'plain')]:.2f}x")
    if not args.skip_scanpy:
        for kind in files:
            print(f"preprocess on {kind}: scanpy + dask / scoop: "
                  f"{t[('scanpy + dask preprocess', kind)] / t[('scoop preprocess, parallel', kind)]:.2f}x")
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
