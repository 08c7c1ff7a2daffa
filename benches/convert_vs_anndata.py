"""Times rewriting a csc_matrix X as csr_matrix: `scoop convert` against anndata in memory.

    python benches/convert_vs_anndata.py PLATE.h5ad [--workdir DIR] [--runs 2]

PLATE.h5ad is any anndata-written plate with a CSR X (e.g. `benches/read_path.py`'s). Its CSC
copy, gzip-compressed as R exporters and `compression="gzip"` write it, is made once with anndata
(`X.tocsc()`). Then, alternately, each in its own process after a `sync`:
  scoop     `scoop -q convert CSC --out OUT` (out of core: count, scatter to row bands in a scratch
            file, gather; output uncompressed, as anndata's default)
  anndata   `ad.read_h5ad(CSC)`, `X = X.tocsr()`, `write_h5ad(OUT)` (everything in memory)
and prints wall time and peak RSS (`/usr/bin/time`) of each, and the ratios. Both outputs are
checked equal (indptr, indices, data). Not a test: numbers go in docs/performance.md (dated,
with machine and commit). Needs a Python with anndata and `cargo build --release`.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCOOP = ROOT / "target" / "release" / "scoop"

MAKE_CSC = textwrap.dedent(
    """
    import sys, anndata as ad
    a = ad.read_h5ad(sys.argv[1])
    a.X = a.X.tocsc()
    a.write_h5ad(sys.argv[2], compression="gzip")
    """
)

ANNDATA_CONVERT = textwrap.dedent(
    """
    import sys, anndata as ad
    a = ad.read_h5ad(sys.argv[1])
    a.X = a.X.tocsr()
    a.write_h5ad(sys.argv[2])
    """
)

CHECK = textwrap.dedent(
    """
    import sys, h5py, numpy as np
    with h5py.File(sys.argv[1]) as a, h5py.File(sys.argv[2]) as b:
        assert a["X"].attrs["encoding-type"] == b["X"].attrs["encoding-type"] == "csr_matrix"
        for k in ("indptr", "indices", "data"):
            assert np.array_equal(a["X"][k][:], b["X"][k][:]), k
    """
)


def timed(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak MiB) of `cmd` under /usr/bin/time."""
    subprocess.run(["sync"], check=True)
    out = subprocess.run(
        ["/usr/bin/time", "-f", "TIME %e %M", *cmd], capture_output=True, text=True
    )
    if out.returncode != 0:
        sys.exit(f"{cmd[0]} failed:\n{out.stderr}")
    m = re.search(r"TIME ([\d.]+) (\d+)", out.stderr)
    return float(m.group(1)), int(m.group(2)) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("plate", type=Path)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/scoop-convert-bench"))
    ap.add_argument("--runs", type=int, default=2)
    a = ap.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    csc = a.workdir / "csc.h5ad"
    if not csc.exists():
        subprocess.run([sys.executable, "-c", MAKE_CSC, str(a.plate), str(csc)], check=True)
    ours, theirs = a.workdir / "scoop.h5ad", a.workdir / "anndata.h5ad"
    rows = []
    for _ in range(a.runs):
        for side, cmd in [
            ("scoop", [str(SCOOP), "-q", "convert", str(csc), "--out", str(ours), "--force"]),
            ("anndata", [sys.executable, "-c", ANNDATA_CONVERT, str(csc), str(theirs)]),
        ]:
            secs, mib = timed(cmd)
            rows.append((side, secs, mib))
            print(f"{side:8} {secs:8.2f} s {mib:8.0f} MiB", flush=True)
    subprocess.run([sys.executable, "-c", CHECK, str(ours), str(theirs)], check=True)
    best = {s: min((r for r in rows if r[0] == s), key=lambda r: r[1]) for s in ("scoop", "anndata")}
    print(
        f"best: scoop {best['scoop'][1]:.2f} s / {best['scoop'][2]:.0f} MiB, anndata "
        f"{best['anndata'][1]:.2f} s / {best['anndata'][2]:.0f} MiB: "
        f"{best['anndata'][1] / best['scoop'][1]:.1f}x faster, "
        f"{best['anndata'][2] / best['scoop'][2]:.1f}x less memory; outputs equal; "
        f"CSC file {os.path.getsize(csc) / 1e6:.0f} MB"
    )


if __name__ == "__main__":
    main()
