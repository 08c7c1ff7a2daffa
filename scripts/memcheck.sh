#!/usr/bin/env bash
# Peak RSS and throughput of simulate and concat at two cell counts (bounded memory check).
# usage: scripts/memcheck.sh DIR CELLS_PER_PLATE [GENES]
set -euo pipefail
dir=$1; cells=$2; genes=${3:-2000}
bin=${SCOOP:-target/release/scoop}
mkdir -p "$dir"
run() { /usr/bin/time -v "$@" 2> "$dir/time.log" | tail -1; grep -E "Maximum resident|Elapsed" "$dir/time.log" | sed 's/^\s*/  /'; }
echo "== simulate 2 plates x $cells cells x $genes genes"
run "$bin" simulate --out "$dir" --plates 2 --cells-per-plate "$cells" --genes "$genes" -q --force
echo "== concat"
run "$bin" concat "$dir"/plate1_filtered.h5ad "$dir"/plate2_filtered.h5ad --out "$dir/merged.h5ad" -q --force
