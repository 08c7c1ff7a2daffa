#!/usr/bin/env bash
# Runs on a GPU machine, from the repository root, with the bundle scripts/gpu-bundle.sh built:
#   scripts/gpu-check.sh            parity suite (must not skip), every other test binary on
#                                   --backend auto (= CUDA there), device ceilings, kernel benches
#   scripts/gpu-check.sh profile CELLS
#                                   Nsight Compute reports of the kNN and layout kernels' variants on
#                                   CELLS simulated cells x 50 PCs (where ncu reads counters)
#   scripts/gpu-check.sh e2e CELLS  simulate CELLS cells x 8,000 genes in 4 plates, then preprocess + concat +
#                                   pca on --backend cpu, cuda and --devices 0,0, timed
#   scripts/gpu-check.sh graph CELLS
#                                   simulated X_pca (CELLS x 50, benches/make_points.py), then neighbors +
#                                   umap on --backend cuda, timed; recall@15 of the graph against cupy
#                                   brute force on 2,000 cells and the cell-line silhouette of X_umap;
#                                   GRAPH_CPU=1 times --backend cpu on the same file too; the kNN
#                                   merge variants (KNN_FLUSH queue lengths, KNN_K other k) too
#   scripts/gpu-check.sh workflow CELLS
#                                   3 Tahoe-shaped gzip plates of CELLS cells: one streamed pass over a
#                                   plate at 1, 2, 4, 8 and all threads and through HDF5 (issue 26: 1e9
#                                   values/s on 16 cores), then `scoop run` on each of WORKFLOW_BACKENDS
#                                   (default "cuda cpu") and on the CPU with glibc's default arenas
#                                   (SCOOP_MALLOC_ARENA_MAX=0; scoop's default is one), each step's
#                                   seconds and peak RSS from run.json
# Logs go to $OUT (the device tool brings them back) when set.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/scoop-gpu-check}
mkdir -p "$out"
if [ -f gpu-bundle.tar.xz ]; then tar -C target -xJf gpu-bundle.tar.xz 2>/dev/null || { mkdir -p target && tar -C target -xJf gpu-bundle.tar.xz; }; fi
b=target/gpu-bundle
export SCOOP_BIN="$PWD/$b/scoop" SCOOP_ROOT="$PWD"
status=0

t() {
  local s; s=$(date +%s.%N)
  "$@" || status=1
  echo "$(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s: $*" | tee -a "$out/${log:-e2e}.log"
}

if [ "${1:-}" = "workflow" ]; then
  cells=${2:-200000}
  work=${WORK:-/tmp/scoop-workflow}
  log=workflow
  rm -rf "$work" && mkdir -p "$work"
  t "$SCOOP_BIN" -q simulate --shape tahoe --compression gzip --plates 3 \
    --cells-per-plate "$cells" --out "$work/plates"
  plates=("$work"/plates/*.h5ad)
  cat "${plates[@]}" > /dev/null
  for th in 1 2 4 8 "$(nproc)"; do
    t bash -o pipefail -c "'$SCOOP_BIN' -q inspect --stats --threads $th '${plates[0]}' 2>&1 | tee -a '$out/workflow.log'"
  done
  t bash -o pipefail -c "'$SCOOP_BIN' -q inspect --stats --read-path hdf5 '${plates[0]}' 2>&1 | tee -a '$out/workflow.log'"
  runs=()
  for be in ${WORKFLOW_BACKENDS-cuda cpu}; do
    runs+=("$be:$be:1")
  done
  runs+=("cpu_arenas:cpu:0")
  for r in "${runs[@]}"; do
    IFS=: read -r name be arenas <<< "$r"
    t bash -o pipefail -c "SCOOP_MALLOC_ARENA_MAX=$arenas '$SCOOP_BIN' run ${plates[*]} --out-dir '$work/run_$name' --backend $be --filter pass_filter=full --n-comps 300 --subsample 200000 2>&1 | tail -n 16 | tee -a '$out/workflow.log'"
  done
  python3 - "$work" "${runs[@]}" <<'PY' | tee -a "$out/workflow.log"
import json, sys
work, runs = sys.argv[1], [r.split(":")[0] for r in sys.argv[2:]]
for name in runs:
    try:
        steps = json.load(open(f"{work}/run_{name}/run.json"))["steps"]
    except OSError as e:
        print(f"{name}: no run.json ({e})")
        continue
    total = sum(s["seconds"] for s in steps)
    peak = max((s.get("peak_rss_bytes") or 0) for s in steps) / 2**20
    print(f"{name}: {total:.1f} s in steps, peak {peak:.0f} MiB; " + ", ".join(
        f"{s['name']} {s['seconds']:.1f} s/{(s.get('peak_rss_bytes') or 0) / 2**20:.0f} MiB"
        for s in steps))
PY
  exit $status
fi

if [ "${1:-}" = "graph" ]; then
  cells=${2:-1000000}
  work=${WORK:-/tmp/scoop-graph}
  log=graph
  rm -rf "$work" && mkdir -p "$work"
  t python3 benches/make_points.py --cells "$cells" --dims 50 --out "$work/points.h5ad"
  backends=cuda
  [ -n "${GRAPH_CPU:-}" ] && backends="cuda cpu"
  for be in $backends; do
    # (scoop's summary lines, with the step's phases timed, go to the log too)
    t bash -o pipefail -c "'$SCOOP_BIN' neighbors '$work/points.h5ad' --out '$work/nb_$be.h5ad' --backend $be 2>&1 | tee -a '$out/graph.log'"
    t bash -o pipefail -c "'$SCOOP_BIN' umap '$work/nb_$be.h5ad' --out '$work/um_$be.h5ad' --backend $be 2>&1 | tee -a '$out/graph.log'"
  done
  # The other kNN kernels (the default on sm_80+ is TF32 with resident queries): the streaming
  # TF32 one and the f32 CUDA-core one, their times, and the same graph.
  for kern in tf32-stream f32; do
    t bash -o pipefail -c "SCOOP_CUDA_KNN=$kern '$SCOOP_BIN' neighbors '$work/points.h5ad' --out '$work/nb_cuda_$kern.h5ad' --backend cuda 2>&1 | tee -a '$out/graph.log'"
  done
  # UMAP's epochs with eight negative samples' points loaded at once (SCOOP_CUDA_LAYOUT=batched).
  t bash -o pipefail -c "SCOOP_CUDA_LAYOUT=batched '$SCOOP_BIN' umap '$work/nb_cuda.h5ad' --out '$work/um_cuda_batched.h5ad' --backend cuda 2>&1 | tee -a '$out/graph.log'"
  # The deferred, warp-parallel merge at several queue lengths (SCOOP_CUDA_KNN_FLUSH; KNN_FLUSH
  # picks them), on the default kernel and, at 16, the streaming one.
  flushes=${KNN_FLUSH-1 8 16 32}
  for fl in $flushes; do
    t bash -o pipefail -c "SCOOP_CUDA_KNN_FLUSH=$fl '$SCOOP_BIN' neighbors '$work/points.h5ad' --out '$work/nb_cuda_flush$fl.h5ad' --backend cuda 2>&1 | tee -a '$out/graph.log'"
  done
  [ -n "$flushes" ] && t bash -o pipefail -c "SCOOP_CUDA_KNN=tf32-stream SCOOP_CUDA_KNN_FLUSH=16 '$SCOOP_BIN' neighbors '$work/points.h5ad' --out '$work/nb_cuda_stream_flush16.h5ad' --backend cuda 2>&1 | tee -a '$out/graph.log'"
  # The merge's share of the time: other neighbour counts (KNN_K, e.g. "5 30"), both merges.
  for kk in ${KNN_K-}; do
    for fl in 0 16; do
      t bash -o pipefail -c "SCOOP_CUDA_KNN_FLUSH=$fl '$SCOOP_BIN' neighbors '$work/points.h5ad' --out '$work/nb_k${kk}_flush$fl.h5ad' --n-neighbors $kk --backend cuda 2>&1 | tee -a '$out/graph.log'"
    done
  done
  python3 - "$work" $backends <<'PY' | tee -a "$out/graph.log"
import sys, h5py, numpy as np, cupy as cp
from sklearn.metrics import silhouette_score
w, backends = sys.argv[1], sys.argv[2:]
x = h5py.File(f"{w}/points.h5ad")["obsm/X_pca"][:]
lines = h5py.File(f"{w}/points.h5ad")["obs/cell_line/codes"][:]
rng = np.random.default_rng(0)
q = np.sort(rng.choice(len(x), 2000, replace=False))
xd = cp.asarray(x, dtype=cp.float64)
norms = (xd ** 2).sum(1)
truth = []
for s in range(0, len(q), 200):
    b = cp.asarray(q[s:s + 200])
    d2 = norms[b][:, None] + norms[None, :] - 2 * xd[b] @ xd.T
    d2[cp.arange(len(b)), b] = cp.inf
    truth.append(cp.asnumpy(cp.argsort(d2, axis=1)[:, :14]))
truth = np.concatenate(truth)
a = h5py.File(f"{w}/nb_cuda.h5ad")
import glob, os
others = [f"{w}/nb_cuda_{kern}.h5ad" for kern in ["tf32-stream", "f32"]]
others += sorted(glob.glob(f"{w}/nb_cuda_*flush*.h5ad"))
for path in others:
    kern = os.path.basename(path)[len("nb_cuda_"):-len(".h5ad")]
    b = h5py.File(path)
    same = all(np.array_equal(a[f"obsp/distances/{k}"][:], b[f"obsp/distances/{k}"][:]) for k in ["indices", "data"])
    print(f"default and {kern} kNN kernels give the same graph: {same}")
emb = h5py.File(f"{w}/um_cuda_batched.h5ad")["obsm/X_umap"][:]
s = rng.choice(len(x), 10_000, replace=False)
print(f"cuda, batched layout kernel: cell-line silhouette {silhouette_score(emb[s], lines[s]):.3f}")
for be in backends:
    f = h5py.File(f"{w}/nb_{be}.h5ad")
    ptr, idx = f["obsp/distances/indptr"][:], f["obsp/distances/indices"][:]
    hit = sum(len(set(idx[ptr[i]:ptr[i + 1]]) & set(truth[r])) for r, i in enumerate(q))
    emb = h5py.File(f"{w}/um_{be}.h5ad")["obsm/X_umap"][:]
    s = rng.choice(len(x), 10_000, replace=False)
    print(f"{be}: recall@15 {hit / truth.size:.4f}, cell-line silhouette {silhouette_score(emb[s], lines[s]):.3f}")
PY
  exit $status
fi

if [ "${1:-}" = "profile" ]; then
  # Nsight Compute on the kNN kernels (merging every tile, and queueing to 16) and the layout
  # epoch kernels (one epoch each) of CELLS simulated cells x 50 PCs; the reports go to
  # $OUT/profile.log. ncu needs hardware counters (Firecracker machines; not gVisor).
  cells=${2:-200000}
  work=${WORK:-/tmp/scoop-profile}
  log=profile
  rm -rf "$work" && mkdir -p "$work"
  ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
  if [ -z "$ncu" ]; then echo "profile: no ncu on this machine" | tee -a "$out/profile.log"; exit 1; fi
  t python3 benches/make_points.py --cells "$cells" --dims 50 --out "$work/points.h5ad"
  sections="--section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section InstructionStats --section Occupancy --section LaunchStats"
  for fl in 0 16; do
    echo "== ncu: knn, SCOOP_CUDA_KNN_FLUSH=$fl" >> "$out/profile.log"
    # shellcheck disable=SC2086
    SCOOP_CUDA_KNN_FLUSH=$fl timeout 300 "$ncu" --clock-control none --kernel-name regex:knn_exact --launch-count 1 $sections \
      "$SCOOP_BIN" -q neighbors "$work/points.h5ad" --out "$work/nb_$fl.h5ad" --backend cuda >> "$out/profile.log" 2>&1 || status=1
  done
  for lay in "" batched; do
    echo "== ncu: layout epoch 100, SCOOP_CUDA_LAYOUT=$lay" >> "$out/profile.log"
    # shellcheck disable=SC2086
    SCOOP_CUDA_LAYOUT=$lay timeout 300 "$ncu" --clock-control none --kernel-name regex:layout_epoch --launch-skip 100 --launch-count 1 $sections \
      "$SCOOP_BIN" -q umap "$work/nb_0.h5ad" --out "$work/um_$lay.h5ad" --backend cuda >> "$out/profile.log" 2>&1 || status=1
  done
  grep -E "^==|Duration|Compute \(SM\) Throughput|Memory Throughput|Registers Per|Achieved Occupancy|Issue Slots Busy|No Eligible|Warp Cycles Per Issued" "$out/profile.log" | tail -80
  exit $status
fi

if [ "${1:-}" = "e2e" ]; then
  cells=${2:-2000000}
  work=${WORK:-/tmp/scoop-e2e}
  rm -rf "$work" && mkdir -p "$work"
  per=$((cells / 4))
  t "$SCOOP_BIN" -q simulate --out "$work/raw" --plates 4 --cells-per-plate "$per" --genes 8000
  for be in "cpu:--backend cpu" "cuda:--backend cuda" "cuda00:--backend cuda --devices 0,0"; do
    tag=${be%%:*}; flags=${be#*:}
    # shellcheck disable=SC2086
    t "$SCOOP_BIN" -q preprocess "$work"/raw/*.h5ad --out-dir "$work/pre_$tag" --filter pass_filter=full --n-top-genes 2000 --min-plates 2 $flags
    t "$SCOOP_BIN" -q concat "$work/pre_$tag"/*.h5ad --out "$work/merged_$tag.h5ad" --label plate
    # shellcheck disable=SC2086
    t "$SCOOP_BIN" -q pca "$work/merged_$tag.h5ad" --n-comps 300 --out "$work/pca_$tag.h5ad" $flags
  done
  python3 - "$work" <<'PY' | tee -a "$out/e2e.log"
import sys, h5py, numpy as np
w = sys.argv[1]
ref = h5py.File(f"{w}/pca_cpu.h5ad")
v0, x0 = ref["uns/pca/variance"][:], ref["obsm/X_pca"][:]
for tag in ["cuda", "cuda00"]:
    f = h5py.File(f"{w}/pca_{tag}.h5ad")
    v, x = f["uns/pca/variance"][:], f["obsm/X_pca"][:]
    print(f"{tag}: max rel variance diff {np.max(np.abs(v - v0) / v0):.2e}, "
          f"max |X_pca diff| / max |X_pca| {np.max(np.abs(x - x0)) / np.max(np.abs(x0)):.2e} "
          f"(first 50 comps {np.max(np.abs(x[:, :50] - x0[:, :50])) / np.max(np.abs(x0)):.2e})")
PY
  exit $status
fi

{
  nvidia-smi -L
  "$SCOOP_BIN" devices
} 2>&1 | tee "$out/devices.log"
echo "== CUDA parity suite"
SCOOP_REQUIRE_GPU=1 "$b/tests/cuda-test" --nocapture --test-threads 1 2>&1 | tee "$out/cuda-test.log" | tail -30
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
for t in "$b"/tests/*; do
  case "$t" in */cuda-test) continue ;; esac
  echo "== $(basename "$t") (--backend auto)"
  "$t" 2>&1 | tee "$out/$(basename "$t").log" | grep -E "^test result|FAILED|panicked" | head -20
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
echo "== device ceilings"
python3 benches/gpu_ceilings.py 2>&1 | tee "$out/ceilings.log"
echo "== kernel benches"
"$b/kernels-bench" --bench --max-time "${BENCH_MAX_TIME:-2}" 2>&1 | tee "$out/bench.log" | tail -80
exit $status
