#!/usr/bin/env bash
# Every check that needs a GPU, in one call (device time is short): build the extension with its
# CUDA kernels, run the CUDA tests, time the GPU figures, run the kernel tests under
# compute-sanitizer memcheck, then the whole suite and the CUDA benchmark suite.
#
#     bash benchmarks/gpu_check.sh [core|rest|all]   # logs and JSON under $OUT (default /tmp/fastmix-gpu)
#
# core: build, CUDA tests, figures, sanitizer; rest: the whole suite and the benchmark suite
# (building first only if the extension there has no CUDA kernels yet); all: both. Each part
# should fit one 10-minute device call; run `rest` right after `core` while the machine is warm.
# Steps run in order of importance, each under its own time limit; a failed step does not stop
# the later ones (only a failed build does). The last lines printed are the summary: each step's
# exit code and seconds, then the figures.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/fastmix-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
PY=${PYTHON:-python3}
part=${1:-all}
case "$part" in core|rest|all) ;; *) echo "usage: $0 [core|rest|all]" >&2; exit 2 ;; esac
summary="$OUT/summary.txt"
: > "$summary"
failed=0

step() {  # step NAME SECONDS COMMAND...: run it with a limit, log to $OUT/NAME.log, record rc and time
  local name=$1 limit=$2 start=$SECONDS rc
  shift 2
  echo "== $(date +%T) $name: $*"
  timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  tail -n 4 "$OUT/$name.log"
  echo "$name: rc=$rc in $((SECONDS - start)) s$([ $rc -eq 124 ] && echo " (timed out at $limit s)")" | tee -a "$summary"
  [ $rc -eq 0 ] || failed=1
  return $rc
}

{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv || echo "no nvidia-smi"
  "$PY" -c "import torch, platform; print('python', platform.python_version(), 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU visible')"
  nproc
} 2>&1 | tee "$OUT/machine.txt"

# The build: the CUDA sources for the card in this machine only (sm_90 on Hopper).
has_cuda_kernels() { "$PY" -c "import sys, fastmix; sys.exit(fastmix.available_backends()['cuda'] is not None)" 2> /dev/null; }
if [ "$part" != rest ] || ! has_cuda_kernels; then
  arch=$("$PY" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())" 2>/dev/null || echo 9.0)
  step build 420 env MAX_JOBS="$(nproc)" TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-$arch}" \
    FASTMIX_CUDA="${FASTMIX_CUDA:-1}" "$PY" -m pip install --no-build-isolation --no-deps -v -e . \
    || { cat "$summary"; exit 1; }
fi
step backends 60 "$PY" -m fastmix backends

if [ "$part" != rest ]; then
  # Parity with the reference (fresh random inputs, poisoned outputs), streams, graphs, compile, opcheck.
  step cuda-tests 300 "$PY" -m pytest -q -x -p no:cacheprovider tests/test_cuda.py tests/test_bench_device.py

  # The figures: 256x3x224x224, medians of CUDA-event-timed rounds, interleaved, inputs rotated past the L2.
  for dtype in bfloat16 float32; do
    step "figures-$dtype" 180 "$PY" -m fastmix bench --device cuda --dtype "$dtype" --rounds 41 \
      --json "$OUT/bench_cuda_$dtype.json"
  done

  # Memory errors in the kernels: memcheck sees out-of-bounds accesses only between separate
  # allocations, so torch's caching allocator (which packs tensors into shared blocks) is turned off;
  # graph capture needs that allocator, so its test stays out.
  if command -v compute-sanitizer > /dev/null; then
    step sanitizer 300 env PYTORCH_NO_CUDA_MEMORY_CACHING=1 compute-sanitizer --tool memcheck --error-exitcode 9 \
      --print-limit 20 "$PY" -m pytest -q -x -p no:cacheprovider tests/test_cuda.py \
      -k "not imagenet and not graph and not compile"
  else
    echo "sanitizer: compute-sanitizer not found" | tee -a "$summary"
    failed=1
  fi
fi

if [ "$part" != core ]; then
  # The whole suite (CPU and CUDA), then the pytest-benchmark CUDA groups at full size.
  xdist=$("$PY" -c "import xdist" 2>/dev/null && echo "-n 8")
  step all-tests 420 "$PY" -m pytest -q -p no:cacheprovider $xdist tests benchmarks --benchmark-disable
  step bench-suite 240 "$PY" -m pytest -q -p no:cacheprovider benchmarks/test_bench_cuda.py \
    --benchmark-group-by=group --benchmark-columns=median,iqr,rounds --benchmark-json "$OUT/bench_suite.json"
fi

echo "== summary"
cat "$OUT/machine.txt" "$summary"
grep -h "of the floor's speed" "$OUT"/figures-*.log 2> /dev/null
exit $failed  # 0 only when every step passed
