#!/usr/bin/env bash
# Assembles the PTX that build.rs embedded for sm_90 with ptxas and prints registers and spills per
# kernel. ptxas comes from $PTXAS, the PATH, or the nvidia-cuda-nvcc-cu12 pip package in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
ptxas=${PTXAS:-$(command -v ptxas || true)}
if [ -z "$ptxas" ] && [ -x .venv/bin/python ]; then
  ptxas=$(.venv/bin/python -c "import importlib.util as u, os; s=u.find_spec('nvidia.cuda_nvcc'); print(os.path.join(list(s.submodule_search_locations)[0], 'bin', 'ptxas') if s else '')")
fi
if [ -z "$ptxas" ] || [ ! -x "$ptxas" ]; then
  echo "ptxas-report: no ptxas found (pip install nvidia-cuda-nvcc-cu12)"; exit 0
fi
# The folder of the newest PTX file (build.rs rewrites the files in place, which leaves the
# folder's own time as it was).
newest=$(ls -t target/*/build/scoop-*/out/*.ptx 2>/dev/null | head -1 || true)
out=${newest%/*}
if [ -z "$out" ]; then
  echo "ptxas-report: no PTX was built (see the build warning)"; exit 0
fi
for ptx in "$out"/*.ptx; do
  echo "== $(basename "$ptx") (sm_90)"
  "$ptxas" -arch=sm_90 -v "$ptx" -o /dev/null 2>&1 | awk '
    /Compiling entry function/ { match($0, /'"'"'[^'"'"']+'"'"'/); fn = substr($0, RSTART+1, RLENGTH-2) }
    /spill stores/ { spills = $0; sub(/^ +/, "", spills) }
    /Used [0-9]+ registers/ { match($0, /Used [0-9]+ registers/); printf "  %-24s %s; %s\n", fn, substr($0, RSTART, RLENGTH), spills }'
done
