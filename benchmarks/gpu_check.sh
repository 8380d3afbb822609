#!/usr/bin/env bash
# The GPU check, in one call on a machine with a CUDA GPU (about 5 minutes):
#   1. the fast path's losses against fp32 (benchmarks/gpu_fast_path_check.py);
#   2. `pit bench` at the paper's sizes, eager, then compiled;
# and the tables last. Record the device, the command and the figures in benchmarks/RESULTS.md.
#   bash benchmarks/gpu_check.sh [PYTHON]
set -u
py=${1:-python}
out=${OUT:-/tmp/pit-gpu-check}
mkdir -p "$out"
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
timeout 150 "$py" benchmarks/gpu_fast_path_check.py 2>&1 | tee "$out/fast_path.txt"
timeout 120 "$py" -m pit_engine bench --device cuda --json "$out/bench_eager.json" > "$out/bench_eager.txt" 2>&1
timeout 240 "$py" -m pit_engine bench --device cuda --compile --json "$out/bench_compiled.json" \
    > "$out/bench_compiled.txt" 2>&1
echo "== fast path vs fp32 =="; cat "$out/fast_path.txt"
echo "== pit bench, eager =="; cat "$out/bench_eager.txt"
echo "== pit bench, compiled =="; cat "$out/bench_compiled.txt"
