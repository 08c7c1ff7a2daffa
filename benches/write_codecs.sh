#!/usr/bin/env bash
# Wall time, CPU time and file size of `scoop simulate` writing one plate with each --compression.
# usage: benches/write_codecs.sh DIR [CELLS [GENES [CODECS...]]]
#   SCOOP=path/to/scoop (default target/release/scoop); extra flags in SIM_FLAGS (e.g. --threads 1)
set -euo pipefail
dir=$1; cells=${2:-100000}; genes=${3:-20000}; shift $(( $# < 3 ? $# : 3 ))
codecs=("$@"); [ ${#codecs[@]} -gt 0 ] || codecs=(none gzip lzf zstd)
bin=${SCOOP:-target/release/scoop}
mkdir -p "$dir"
printf '%-8s %9s %9s %9s %14s\n' codec wall_s user_s sys_s bytes
for c in "${codecs[@]}"; do
  out="$dir/${c/:/_}"
  sync
  # shellcheck disable=SC2086
  /usr/bin/time -f '%e %U %S' -o "$dir/time.txt" "$bin" ${SIM_FLAGS:-} -q simulate --out "$out" \
    --plates 1 --cells-per-plate "$cells" --genes "$genes" --compression "$c" --force >/dev/null
  read -r wall user sys < "$dir/time.txt"
  printf '%-8s %9s %9s %9s %14s\n' "$c" "$wall" "$user" "$sys" \
    "$(stat -c %s "$out/plate1_filtered.h5ad")"
done
