"""The command line shared by the fixture scripts: rewrite the committed fixtures, or (`--check`)
regenerate them in a temporary directory and compare values with the committed ones."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Callable


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
