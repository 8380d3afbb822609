#!/usr/bin/env bash
# The GPU check, on a machine with a CUDA GPU. Parts:
#   eager     `pit bench` at the paper's sizes, eager (reference, PIT, PIT with host-side regions),
#             with the profiler's table of the PIT step (~100 s);
#   compiled  the same with torch.compile (its first step includes the ~2 min compilation; ~160 s);
#   graphs    the same with torch.compile's reduce-overhead mode (CUDA graphs; never run yet);
#   profile   the eager PIT step under bf16+channels_last / bf16 / fp32 (~70 s);
#   fastpath  the fast path's losses against fp32 (benchmarks/gpu_fast_path_check.py; ~140 s);
# each part's output is printed when the part ends, and the tables again at the end. Record the
# device, the command and the figures in benchmarks/RESULTS.md.
#   bash benchmarks/gpu_check.sh [PYTHON [PART ...]]
# The default, `fastpath eager`, is the issue's check: the fast path's correctness and the bench
# at the paper's sizes, about 4 minutes on an H100. `eager compiled graphs` is about 8 minutes.
set -u
py=${1:-python}
shift || true
parts=${*:-fastpath eager}
out=${OUT:-/tmp/pit-gpu-check}
mkdir -p "$out"
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$py" -c "import torch, platform; print('torch', torch.__version__, 'python', platform.python_version())"
run() {  # NAME SECONDS COMMAND...: output to $out/NAME.txt, shown when done
  local name=$1 limit=$2
  shift 2
  local start=$SECONDS
  timeout "$limit" "$@" > "$out/$name.txt" 2>&1
  echo "== $name: exit $? after $((SECONDS - start)) s ==" >> "$out/$name.txt"
  cat "$out/$name.txt"
}
for part in $parts; do
  case $part in
    eager) run bench_eager 150 "$py" -m pit_engine bench --device cuda --json "$out/bench_eager.json" \
               --profile "$out/profile_eager.txt" ;;
    profile) run profile 150 "$py" benchmarks/gpu_profile_step.py cuda ;;
    fastpath) run fast_path 150 "$py" benchmarks/gpu_fast_path_check.py cuda ;;
    compiled) run bench_compiled 270 "$py" -m pit_engine bench --device cuda --compile \
                  --json "$out/bench_compiled.json" --profile "$out/profile_compiled.txt" ;;
    graphs) run bench_graphs 300 "$py" -m pit_engine bench --device cuda --compile --compile-mode reduce-overhead \
                --json "$out/bench_graphs.json" --profile "$out/profile_graphs.txt" ;;
    *) echo "unknown part '$part' (eager, compiled, graphs, profile, fastpath)" >&2; exit 2 ;;
  esac
done
echo "======== tables ========"
for part in $parts; do
  case $part in
    eager) sed -n '/^measure/,$p' "$out/bench_eager.txt" ;;
    profile) sed -n '1,5p' "$out/profile.txt" ;;
    fastpath) cat "$out/fast_path.txt" ;;
    compiled) sed -n '/^measure/,$p' "$out/bench_compiled.txt" ;;
    graphs) sed -n '/^measure/,$p' "$out/bench_graphs.txt" ;;
  esac
done
