"""The command line shared by the fixture scripts: rewrite the committed fixtures, or (`--check`)
regenerate them in a temporary directory and compare values with the committed ones."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import anndata as ad


def run(
    description: str,
    fixtures: Path,
    generate: Callable[[Path], None],
    compare: Callable[[Path, Path], list[str]],
) -> int:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--check", action="store_true", help="compare a fresh run to the committed one")
    args = ap.parse_args()
    if not args.check:
        if fixtures.exists():
            shutil.rmtree(fixtures)
        generate(fixtures)
        print(f"wrote {fixtures}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        problems = compare(Path(tmp), fixtures)
    for p in problems:
        print("MISMATCH:", p)
    print("fixtures reproduce" if not problems else f"{len(problems)} mismatches")
    return 1 if problems else 0


def paired_files(a: Path, b: Path) -> tuple[list[str], list[tuple[Path, ad.AnnData, ad.AnnData]]]:
    """The checks every fixture tree shares: the same .h5ad files and scenarios.json, and per file
    the same shape and obs names. Returns the problems found and the (name, a's, b's) pairs left
    to compare by value."""
    files_a = sorted(p.relative_to(a) for p in a.rglob("*.h5ad"))
    files_b = sorted(p.relative_to(b) for p in b.rglob("*.h5ad"))
    if files_a != files_b:
        return [f"file lists differ: {files_a} vs {files_b}"], []
    problems, pairs = [], []
    if (a / "scenarios.json").read_text() != (b / "scenarios.json").read_text():
        problems.append("scenarios.json differs")
    for rel in files_a:
        x, y = ad.read_h5ad(a / rel), ad.read_h5ad(b / rel)
        if x.shape != y.shape or not (x.obs_names == y.obs_names).all():
            problems.append(f"{rel}: shape or obs names differ")
        else:
            pairs.append((rel, x, y))
    return problems, pairs
