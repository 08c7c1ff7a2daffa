#!/usr/bin/env bash
# Builds, here (no GPU needed), everything a GPU machine without cargo needs to check scoop:
# the scoop binary, every test binary and the kernel bench, stripped and packed into
# gpu-bundle.tar.xz (~18 MB, under the device tool's 64 MiB carry limit). Then, on the device:
#   run(command="scripts/gpu-check.sh", carry=["gpu-bundle.tar.xz"])
set -euo pipefail
cd "$(dirname "$0")/.."
# The kernels must be embedded: NVRTC from $SCOOP_NVRTC_LIB, else from .venv (what .ci/run installs).
if [ -z "${SCOOP_NVRTC_LIB:-}" ] && [ -x .venv/bin/python ]; then
  SCOOP_NVRTC_LIB=$(.venv/bin/python -c "import importlib.util as u, os; s = u.find_spec('nvidia.cuda_nvrtc'); print(os.path.join(list(s.submodule_search_locations)[0], 'lib', 'libnvrtc.so.12') if s else '')")
  export SCOOP_NVRTC_LIB
fi
rm -rf target/gpu-bundle && mkdir -p target/gpu-bundle/tests
cargo build --release
kernels=$(target/release/scoop devices)
kernels=${kernels%%$'\n'*}
case "$kernels" in
  "kernels: 0 PTX"*)
    echo "gpu-bundle: this build embeds no PTX ($kernels); run .ci/run once or set SCOOP_NVRTC_LIB" >&2
    exit 1 ;;
esac
cp target/release/scoop target/gpu-bundle/scoop
list() { python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["name"], m["target"]["kind"][0], m["executable"])'; }
cargo test --release --no-run --message-format=json 2>/dev/null | list | while read -r name kind exe; do
  # The library's unit tests are named scoop too: keep them apart from the binary's.
  cp "$exe" "target/gpu-bundle/tests/${name}-${kind}"
done
cargo bench --bench kernels --no-run --message-format=json 2>/dev/null | list | while read -r name kind exe; do
  cp "$exe" target/gpu-bundle/kernels-bench
done
strip target/gpu-bundle/scoop target/gpu-bundle/kernels-bench target/gpu-bundle/tests/*
# One xz stream with a window wider than a binary: the binaries share most of their code, so
# each compresses against the ones before it (about 18 MB instead of 53 MB with xz's default
# 8 MiB window). Unpacking needs about 260 MB of memory.
tar -C target -cf - gpu-bundle | xz -T1 --lzma2=preset=9,dict=256MiB > gpu-bundle.tar.xz
size=$(stat -c %s gpu-bundle.tar.xz)
ls -la gpu-bundle.tar.xz
if [ "$size" -gt $((60 * 1024 * 1024)) ]; then
  echo "gpu-bundle: $size bytes, near the device tool's 64 MiB carry limit (with the tree)" >&2
  exit 1
fi
