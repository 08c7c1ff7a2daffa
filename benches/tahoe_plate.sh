#!/usr/bin/env bash
# One Tahoe-shaped gzip plate through preprocess -> concat -> pca: wall time, peak RSS and stored
# values per second of each step.
# usage: benches/tahoe_plate.sh DIR [CELLS [N_COMPS]]     (defaults: 1000000 cells, 300 comps)
#   SCOOP=path/to/scoop (default target/release/scoop); FLAGS: global flags for every step
#   (e.g. "--threads 1" or "--backend cuda"); PCA_FLAGS (default --drop-matrices, which leaves
#   the unchanged copy of X out of pca.h5ad to save disk); KEEP=1 keeps the outputs.
# The plate (`scoop simulate --shape tahoe --compression gzip`: 62,710 genes, ~1,450 stored values
# per cell; 1M cells is ~1.45e9 values, ~3.4 GB) is kept in DIR/plate and reused by reruns.
# Steps, each after a sync with the page cache as the previous step left it:
#   preprocess  --filter pass_filter=full --min-plates 1 (two passes over the raw plate)
#   concat      the preprocessed plate with itself (--keys a,b): a real two-input concat (obs
#               merged under the `plate` label, the second input's rows offset) with no second
#               plate to simulate and preprocess; the merged file has 2x CELLS cells
#   pca         --n-comps N_COMPS --zarr on the merged file (a gram pass and a projection pass)
# values/s is the stored values the step reads per pass divided by its wall time (preprocess and
# pca read their input twice, so both passes count). Not a test: numbers go in
# docs/performance.md with date, machine and commit.
set -euo pipefail
dir=$1; cells=${2:-1000000}; ncomps=${3:-300}
bin=${SCOOP:-target/release/scoop}
flags=${FLAGS:-}
pca_flags=${PCA_FLAGS:---drop-matrices}
mkdir -p "$dir"

nnz() { "$bin" inspect "$1" | sed -n 's/.*nnz \([0-9]*\).*/\1/p' | head -1; }

# Rough disk need per cell: plate ~3.4 kB (2.3 bytes per stored value), preprocessed and merged
# X ~2 kB, X_pca in pca.h5ad and the zarr 2 x 2 x 1.2 kB at 300 comps (the merged file has 2x
# CELLS cells).
need=$(( cells * (6 + ncomps * 16 / 1000) / 1000 ))
free=$(df -Pm "$dir" | awk 'NR==2 {print $4}')
echo "disk: ~${need} MB needed, ${free} MB free in $dir"
[ "$free" -gt "$need" ] || { echo "not enough free disk in $dir" >&2; exit 1; }

declare -a rows
step() {  # step LABEL VALUES PASSES CMD...
  local label=$1 values=$2 passes=$3; shift 3
  sync
  # shellcheck disable=SC2086
  /usr/bin/time -f '%e %M' -o "$dir/time.txt" "$@" >"$dir/$label.log" 2>&1 ||
    { echo "$label failed:" >&2; tail -20 "$dir/$label.log" >&2; exit 1; }
  local wall rss
  read -r wall rss < "$dir/time.txt"
  rows+=("$(awk -v l="$label" -v w="$wall" -v r="$rss" -v v="$values" -v p="$passes" \
    'BEGIN { printf "| %s | %.2f | %.0f | %d x %.3g | %.3g |", l, w, r / 1024, p, v, p * v / w }')")
  echo "${rows[-1]}"  # progress; the table is printed again at the end
}

plate="$dir/plate/plate1_filtered.h5ad"
if [ ! -f "$plate" ] || [ "$(nnz "$plate" | wc -c)" -le 1 ] ||
   [ "$("$bin" inspect "$plate" | head -1 | sed 's/.*= \([0-9]*\) .*/\1/')" != "$cells" ]; then
  echo "simulating one Tahoe-shaped gzip plate of $cells cells ..."
  # shellcheck disable=SC2086
  /usr/bin/time -f '%e %M' -o "$dir/time.txt" "$bin" $flags simulate --shape tahoe \
    --compression gzip --plates 1 --cells-per-plate "$cells" --out "$dir/plate" --force -q
  read -r wall rss < "$dir/time.txt"
  echo "simulate: $wall s, peak RSS $(( rss / 1024 )) MiB"
fi
raw=$(nnz "$plate")
echo "plate: $cells cells, $raw stored values, $(stat -c %s "$plate") bytes"
rm -rf "$dir/pre" "$dir/merged.h5ad" "$dir/pca.h5ad" "$dir/X_pca.zarr"
# shellcheck disable=SC2086
step preprocess "$raw" 2 "$bin" $flags preprocess "$plate" --out-dir "$dir/pre" \
  --filter pass_filter=full --min-plates 1 --force -q
pre=$(ls "$dir"/pre/*.h5ad)
pre_nnz=$(nnz "$pre")
# shellcheck disable=SC2086
step concat "$(( 2 * pre_nnz ))" 1 "$bin" $flags concat "$pre" "$pre" --keys a,b --label plate \
  --out "$dir/merged.h5ad" --force -q
# shellcheck disable=SC2086
step pca "$(nnz "$dir/merged.h5ad")" 2 "$bin" $flags pca "$dir/merged.h5ad" --n-comps "$ncomps" \
  --out "$dir/pca.h5ad" --zarr "$dir/X_pca.zarr" $pca_flags --force -q
echo
echo "plate: $cells cells x 62710 genes, $raw stored values (gzip, $(stat -c %s "$plate") bytes);" \
  "preprocessed: $("$bin" inspect "$pre" | head -1 | sed 's/.*= //'), $pre_nnz values;" \
  "merged: $(( 2 * pre_nnz )) values; $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
echo "| step | wall s | peak RSS MiB | values read | values/s |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
[ "${KEEP:-0}" = 1 ] || rm -rf "$dir/pre" "$dir/merged.h5ad" "$dir/pca.h5ad" "$dir/X_pca.zarr"
