#!/usr/bin/env bash
# Every check that needs a GPU, in one call of at most 8 minutes (device time is short):
#
#     bash benchmarks/gpu_check.sh [core|rest|all]     # default all; $OUT defaults to /tmp/fastmix-gpu
#
#   all   machine, build, loaded, cuda-tests, sanitizer-probe, sanitizer, figures, bench-suite
#   core  the same without the timings (figures, bench-suite)
#   rest  a second call, where device time is left: the whole suite (CPU and CUDA tests), in parallel
#
# Steps, each under its own time limit (seconds; docs/cuda_notes.md says how they were sized):
#   machine          10  GPU, driver, torch, nvcc, compute-sanitizer, ninja, cores
#   build           120  setup.py build_ext --inplace with ninja, one job per core, for this card's
#                        arch (200 where ninja is missing: nvcc then runs file after file); skipped
#                        when fastmix._C already has CUDA kernels for this torch and was built from
#                        these sources (stamp under build/)
#   loaded           15  python -m fastmix backends --require cpp,cuda: when the cuda backend did
#                        not load, the run stops here and fails, saying why
#   cuda-tests      150  every test that needs the GPU (tests/test_cuda.py and the CUDA tests of
#                        other files), --maxfail so one call reports every failure, -rfEs
#   sanitizer-probe  25  compute-sanitizer memcheck on a trivial kernel (clean, then a planted
#                        out-of-bounds write); if it cannot run on this card, that is reported as
#                        "unsupported", and fastmix's run under it is not attempted
#   sanitizer        60  memcheck on a narrow, named selection of the CUDA tests
#   figures          50  python -m fastmix bench --device cuda, bfloat16 then float32 (25 each)
#   bench-suite      35  benchmarks/test_bench_cuda.py at full size
#                   ---
#                   465  (all); the whole run also stops at FASTMIX_GPU_CHECK_BUDGET (470 s): a
#                        step gets at most what is left, and one with nothing left is NOT RUN
# A test run passes only when pytest passed AND its junit XML shows that tests of the CUDA files
# ran and none was skipped for want of the cuda backend (benchmarks/gpu_check_tools.py junit).
#
# $OUT receives two files: gpu_check.tar.gz (every log, the junit XMLs, the JSON figures, the
# summary) and summary.txt, rewritten after every step, so a call cut short still returns them.
# The summary is printed last. Exit status: 0 every step passed; 1 a step failed (or the cuda
# backend did not load); 3 every step that ran passed but compute-sanitizer could not run here.
#
# Knobs: PYTHON (default python3), FASTMIX_GPU_CHECK_BUDGET (seconds, default 470),
# FASTMIX_GPU_CHECK_BUILD=0 (never build: test the script without touching the build),
# FASTMIX_GPU_CHECK_CONTINUE=1 (run the later steps even when the cuda backend did not load: to
# test this script where no GPU is; each of them then fails), TORCH_CUDA_ARCH_LIST (default: the card's).
set -uo pipefail
part=${1:-all}
case "$part" in core|rest|all) ;; *) echo "usage: $0 [core|rest|all]" >&2; exit 2 ;; esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
OUT=${OUT:-/tmp/fastmix-gpu}
mkdir -p "$OUT" || exit 2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fastmix-gpu-check.XXXXXX") || exit 2
PROBE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fastmix-sanitizer-probe.XXXXXX") || exit 2
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # the in-place build is imported from the tree
PY=${PYTHON:-python3}
TOOLS="$ROOT/benchmarks/gpu_check_tools.py"
BUDGET=${FASTMIX_GPU_CHECK_BUDGET:-470}
RESERVE=5  # seconds kept for the last summary and archive
deadline=$((SECONDS + BUDGET))
STAMP="$ROOT/build/gpu_check.stamp"
summary="$WORK/summary.txt"
steps="$WORK/steps.txt"
details="$WORK/details.txt"
: > "$steps"
: > "$details"
failed=()
unsupported=""
started=$(date '+%F %T')

write_summary() {  # the short text: machine, each step, the digests, the figures, the verdict
  {
    echo "fastmix benchmarks/gpu_check.sh $part, started $started, $SECONDS s of the $BUDGET s budget used${1:+ ($1)}"
    [ -s "$WORK/machine.log" ] && sed -n '1,3p' "$WORK/machine.log"
    echo "steps (status, seconds, limit):"
    cat "$steps"
    [ -s "$details" ] && cat "$details"
    if ls "$WORK"/figures-*.log > /dev/null 2>&1; then
      echo "figures (python -m fastmix bench --device cuda):"
      grep -h "of the floor's speed" "$WORK"/figures-*.log 2> /dev/null | sed 's/^/  /' \
        || echo "  none printed (see figures-*.log in the archive)"
    fi
    if [ ${#failed[@]} -gt 0 ]; then
      echo "RESULT: FAIL (${failed[*]})${skipped_after_load_failure:+; not run: $skipped_after_load_failure}"
    elif [ -n "$unsupported" ]; then
      echo "RESULT: PASS, but compute-sanitizer could not run here: $unsupported"
    elif [ -n "${1:-}" ]; then
      echo "RESULT: INCOMPLETE ($1)"
    else
      echo "RESULT: PASS"
    fi
  } > "$summary"
}

pack() {  # the archive and the summary into $OUT, replacing the last ones (a rename, so never half-written)
  write_summary "${1:-}"
  tar -czf "$OUT/.gpu_check.tar.gz.partial" -C "$WORK" . 2> /dev/null \
    && mv -f "$OUT/.gpu_check.tar.gz.partial" "$OUT/gpu_check.tar.gz"
  cp "$summary" "$OUT/.summary.txt.partial" && mv -f "$OUT/.summary.txt.partial" "$OUT/summary.txt"
}

record() {  # record NAME STATUS SECONDS LIMIT [NOTE]
  printf '  %-16s %-12s %4s s  (limit %s s)%s\n' "$1" "$2" "$3" "$4" "${5:+  $5}" >> "$steps"
  case "$2" in PASS|SKIPPED|UNSUPPORTED) ;; *) failed+=("$1") ;; esac
  echo "== $(date +%T) $1: $2 in $3 s${5:+: $5}"
  pack "running"
}

run_step() {  # run_step NAME LIMIT COMMAND...: the command (or a function of this script) under
              # min(LIMIT, what the budget has left), its output in $WORK/NAME.log; sets STEP_*
  local name=$1 limit=$2 start=$SECONDS rc left
  shift 2
  left=$((deadline - SECONDS - RESERVE))
  if [ "$left" -lt 5 ]; then
    STEP_STATUS="NOT RUN"
    record "$name" "NOT RUN" 0 "$limit" "no time left of the $BUDGET s budget"
    return 125
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "== $(date +%T) $name (limit $limit s): $*"
  if declare -F "$1" > /dev/null; then  # timeout runs programs: a function goes with what it reads
    set -- bash -c "$(declare -p PY ROOT PROBE_DIR SANITIZER 2> /dev/null); $(declare -f "$1"); $1"
  fi
  timeout --kill-after=5 "$limit" "$@" > "$WORK/$name.log" 2>&1
  rc=$?
  STEP_RC=$rc
  STEP_SECONDS=$((SECONDS - start))
  STEP_LIMIT=$limit
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    STEP_STATUS="TIMEOUT"
  elif [ $rc -eq 0 ]; then
    STEP_STATUS="PASS"
  else
    STEP_STATUS="FAIL rc=$rc"
  fi
  return $rc
}

step() {  # step NAME LIMIT COMMAND...: run_step, then record its status
  run_step "$@"
  local rc=$?
  [ $rc -eq 125 ] && return $rc
  tail -n 3 "$WORK/$1.log" | sed 's/^/   | /'
  record "$1" "$STEP_STATUS" "$STEP_SECONDS" "$STEP_LIMIT"
  return $rc
}

pytest_step() {  # pytest_step NAME LIMIT [--cuda-file F]... -- PYTEST ARGS...: pytest, judged by its junit XML
  local name=$1 limit=$2 cuda_files=() rc verdict
  shift 2
  while [ "$1" = "--cuda-file" ]; do cuda_files+=(--cuda-file "$2"); shift 2; done
  [ "$1" = "--" ] && shift
  run_step "$name" "$limit" "$@" --junitxml="$WORK/junit-$name.xml"
  rc=$?
  [ $rc -eq 125 ] && return $rc
  grep -E "^(FAILED|ERROR|SKIPPED) |^=+ .*(passed|failed|error|skipped)" "$WORK/$name.log" | tail -n 3 | sed 's/^/   | /'
  "$PY" "$TOOLS" junit "$WORK/junit-$name.xml" --log "$WORK/$name.log" --label "$name" "${cuda_files[@]}" \
    >> "$details" 2>&1
  verdict=$?
  if [ "$STEP_STATUS" = PASS ] && [ $verdict -ne 0 ]; then
    STEP_STATUS="FAIL (junit)"
  fi
  record "$name" "$STEP_STATUS" "$STEP_SECONDS" "$STEP_LIMIT"
  [ "$STEP_STATUS" = PASS ]
}

skipped_after_load_failure=""
not_run() {  # not_run REASON NAME LIMIT...: the steps that the failed "loaded" step makes pointless
  local reason=$1
  shift
  while [ $# -gt 0 ]; do
    printf '  %-16s %-12s %4s s  (limit %s s)  %s\n' "$1" "NOT RUN" 0 "$2" "$reason" >> "$steps"
    skipped_after_load_failure+="${skipped_after_load_failure:+ }$1"
    shift 2
  done
}

finish() {
  rm -rf "$PROBE_DIR"
  pack "$@"
  echo "== summary ($OUT/summary.txt; everything in $OUT/gpu_check.tar.gz)"
  cat "$summary"
  rm -rf "$WORK"
  if [ ${#failed[@]} -gt 0 ]; then exit 1; fi
  if [ -n "$unsupported" ]; then exit 3; fi
  exit 0
}
trap 'failed+=("killed"); finish "stopped by a signal"' TERM INT HUP

# -- machine ------------------------------------------------------------------------------------------
machine_info() {
  if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.free,clocks.sm,clocks.mem --format=csv,noheader 2>&1
  else
    echo "no nvidia-smi"
  fi
  "$PY" -c "import platform, torch; print('python', platform.python_version(), '| torch', torch.__version__, '| CUDA', torch.version.cuda, '|', torch.cuda.get_device_name() + ' sm_%d%d' % torch.cuda.get_device_capability() if torch.cuda.is_available() else 'no GPU visible to torch')"
  local sanitizer
  sanitizer=$(compute-sanitizer --version 2> /dev/null | grep -o 'Version [0-9.]*' | head -n 1)
  echo "cores $(nproc) | nvcc $(nvcc --version 2> /dev/null | grep -o 'release [0-9.]*' || echo 'not found')" \
    "| ninja $(ninja --version 2> /dev/null || echo 'not found') | compute-sanitizer ${sanitizer:-not found}" \
    "| pytest-timeout $("$PY" -c 'import pytest_timeout' 2> /dev/null && echo yes || echo no)" \
    "| pytest-xdist $("$PY" -c 'import xdist' 2> /dev/null && echo yes || echo no)"
}
step machine 10 machine_info

# -- build ----------------------------------------------------------------------------------------------
arch=${TORCH_CUDA_ARCH_LIST:-$("$PY" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())" 2>/dev/null || echo 9.0)}
export TORCH_CUDA_ARCH_LIST=$arch FASTMIX_CUDA=${FASTMIX_CUDA:-1}
if [ "${FASTMIX_GPU_CHECK_BUILD:-1}" = 0 ]; then
  record build SKIPPED 0 120 "FASTMIX_GPU_CHECK_BUILD=0"
elif why=$("$PY" "$TOOLS" build-current "$STAMP" 2>&1); then
  record build SKIPPED 0 120 "$why"
else
  echo "== build needed: $why"
  ninja_dir=$("$PY" -c "import ninja, os; print(ninja.BIN_DIR)" 2> /dev/null) && export PATH="$PATH:$ninja_dir"
  build_limit=120
  command -v ninja > /dev/null || { build_limit=200; echo "build: no ninja, nvcc runs file after file (limit 200 s)" >> "$details"; }
  step build "$build_limit" env MAX_JOBS="$(nproc)" "$PY" setup.py build_ext --inplace
  [ "$STEP_STATUS" = PASS ] && "$PY" "$TOOLS" write-stamp "$STAMP"
  { echo "build: TORCH_CUDA_ARCH_LIST=$arch MAX_JOBS=$(nproc); seconds per compiled file (ninja's log):"
    "$PY" "$TOOLS" build-times "$ROOT/build" | sed 's/^/  /'; } >> "$details"
  pack "running"
fi

# -- loaded -----------------------------------------------------------------------------------------------
step loaded 15 "$PY" -m fastmix backends --require cpp,cuda
grep -h -m 2 -E "^(torch |fastmix._C: )" "$WORK/loaded.log" | sed 's/^/loaded: /' >> "$details"
if [ "$STEP_STATUS" != PASS ]; then
  reason=$(grep -m 1 "^required backend 'cuda'" "$WORK/loaded.log" | sed "s/^required backend 'cuda' is not available: //")
  [ -n "$reason" ] || reason=$(grep -m 1 -v '^ *$' "$WORK/loaded.log" | tail -n 1)
  echo "cuda backend not loaded: ${reason:-see loaded.log}" | tee -a "$details"
  if [ "${FASTMIX_GPU_CHECK_CONTINUE:-0}" != 1 ]; then
    case "$part" in
      rest) not_run "cuda backend not loaded" whole-suite 360 ;;
      core) not_run "cuda backend not loaded" cuda-tests 150 sanitizer-probe 25 sanitizer 60 ;;
      all) not_run "cuda backend not loaded" cuda-tests 150 sanitizer-probe 25 sanitizer 60 \
             figures-bfloat16 25 figures-float32 25 bench-suite 35 ;;
    esac
    finish
  fi
fi

PYTEST=("$PY" -m pytest -p no:cacheprovider -rfEs)
"$PY" -c "import pytest_timeout" 2> /dev/null && PER_TEST_TIMEOUT=(--timeout=90 --timeout-method=thread) || PER_TEST_TIMEOUT=()

if [ "$part" = rest ]; then
  # The whole suite, CPU and CUDA, on every core but two; test_cuda_compile.py's nvcc compile check
  # is left out (the build above compiled the same sources with the real toolchain).
  xdist=()
  "$PY" -c "import xdist" 2> /dev/null && xdist=(-n "$(( $(nproc) > 4 ? $(nproc) - 2 : 2 ))")
  pytest_step whole-suite 360 --cuda-file tests/test_cuda.py -- "${PYTEST[@]}" -q --maxfail=50 "${xdist[@]}" \
    "${PER_TEST_TIMEOUT[@]}" --benchmark-disable --ignore=tests/test_cuda_compile.py tests benchmarks
  finish
fi

# -- cuda-tests: every test that needs the GPU ---------------------------------------------------------------
CUDA_TESTS=(
  tests/test_cuda.py
  tests/test_bench_device.py
  tests/test_backends.py
  tests/test_errors_knobs.py::test_cuda_backend_is_refused_where_it_cannot_run_and_for_cpu_tensors
)
pytest_step cuda-tests 150 --cuda-file tests/test_cuda.py --cuda-file tests/test_bench_device.py -- \
  "${PYTEST[@]}" -v --maxfail=30 "${PER_TEST_TIMEOUT[@]}" "${CUDA_TESTS[@]}"

# -- compute-sanitizer: first whether it runs here at all, then fastmix's kernels under memcheck --------------
# memcheck sees out-of-bounds accesses only between separate allocations, so torch's caching
# allocator (which packs tensors into shared blocks) is turned off for it.
SANITIZER_TESTS=(
  "tests/test_cuda.py::test_mix_any_partner_map[7-uint8]"           # partner maps with cycles, plan in shared memory
  "tests/test_cuda.py::test_mix_any_partner_map[1500-float32]"      # ... the plan's scratch in global memory
  "tests/test_cuda.py::test_mix_misaligned_and_many_dims"           # misaligned views, 17 dims
  "tests/test_cuda.py::test_mix_into_matches_reference[False-False-float32-float16-True]"  # misaligned out among the cases
  "tests/test_cuda.py::test_blend_rounds_half_to_even"              # uint8 rounding
  "tests/test_cuda.py::test_segmentation_masks_on_the_gpu_match_the_reference[elem-uint8-others]"  # masks, FMix, ResizeMix
  "tests/test_cuda.py::test_segmentation_masks_on_the_gpu_match_the_reference[pair-int64-timm]"
  "tests/test_cuda.py::test_resizes_match_reference[float32-hwc_permuted-op]"  # resizes read heads anywhere
  "tests/test_cuda.py::test_mix_into_resizes_match_reference[True-uint8-float32-True]"    # ... and inputs anywhere
  "tests/test_cuda.py::test_mix_into_matches_reference[False-True-uint8-bfloat16-True]"    # the collate's path:
  "tests/test_cuda.py::test_mix_into_reads_channels_last_images_as_hwc"                    # uint8 HWC -> bfloat16
  "tests/test_cuda.py::test_targets_match_reference[0.1-indices]"
  "tests/test_cuda.py::test_half_nan_pixels_give_the_bits_of_the_cpu_backends[float16-contiguous]"
  "tests/test_cuda.py::test_targets_and_mix_into_for_more_samples_than_the_grid_has_rows"
)
SANITIZER=(compute-sanitizer --tool memcheck --error-exitcode 9 --print-limit 20 --report-api-errors no)

sanitizer_probe() {  # exit 0: memcheck runs here and catches a planted error; else says why not
  command -v compute-sanitizer > /dev/null || { echo "compute-sanitizer not found"; return 1; }
  local sm
  sm=$("$PY" -c "import torch; print('%d%d' % torch.cuda.get_device_capability())") || { echo "no GPU visible"; return 1; }
  nvcc -arch="sm_$sm" -o "$PROBE_DIR/probe" "$ROOT/benchmarks/sanitizer_probe.cu" || { echo "nvcc could not build the probe"; return 1; }
  "${SANITIZER[@]}" "$PROBE_DIR/probe" clean || { echo "memcheck failed on a clean trivial kernel"; return 1; }
  "${SANITIZER[@]}" "$PROBE_DIR/probe" oob
  [ $? -eq 9 ] || { echo "memcheck did not report a planted out-of-bounds write"; return 1; }
  echo "compute-sanitizer memcheck works here"
}
run_step sanitizer-probe 25 sanitizer_probe
if [ "$STEP_STATUS" = "NOT RUN" ]; then
  record sanitizer "NOT RUN" 0 60 "no time left of the $BUDGET s budget"
elif [ "$STEP_STATUS" = PASS ]; then
  record sanitizer-probe PASS "$STEP_SECONDS" "$STEP_LIMIT"
  pytest_step sanitizer 60 --cuda-file tests/test_cuda.py -- env PYTORCH_NO_CUDA_MEMORY_CACHING=1 \
    "${SANITIZER[@]}" "${PYTEST[@]}" -v --maxfail=10 "${SANITIZER_TESTS[@]}"
  grep -h "ERROR SUMMARY" "$WORK/sanitizer.log" | tail -n 1 | sed 's/^/sanitizer (fastmix): /' >> "$details"
else
  why=$(tail -n 1 "$WORK/sanitizer-probe.log")
  [ "$STEP_STATUS" = TIMEOUT ] && why="the probe timed out"
  unsupported="$why (see sanitizer-probe.log)"
  grep -m 3 -i -E "not supported|error" "$WORK/sanitizer-probe.log" | sed 's/^/  probe: /' >> "$details"
  record sanitizer-probe UNSUPPORTED "$STEP_SECONDS" "$STEP_LIMIT" "$why"
  record sanitizer UNSUPPORTED 0 60 "not run: compute-sanitizer does not work here ($why); not a fastmix failure"
fi

if [ "$part" = all ]; then
  # -- figures: 256x3x224x224, medians of CUDA-event-timed rounds, interleaved, inputs rotated past the L2 --------
  for dtype in bfloat16 float32; do
    step "figures-$dtype" 25 "$PY" -m fastmix bench --device cuda --dtype "$dtype" --rounds 41 \
      --json "$WORK/bench_cuda_$dtype.json"
  done
  # -- the pytest-benchmark CUDA groups at full size -----------------------------------------------------------
  pytest_step bench-suite 35 --cuda-file benchmarks/test_bench_cuda.py -- "${PYTEST[@]}" -v --maxfail=10 \
    benchmarks/test_bench_cuda.py --benchmark-group-by=group --benchmark-columns=median,iqr,rounds \
    --benchmark-max-time=0.2 --benchmark-min-rounds=5 --benchmark-json="$WORK/bench_suite.json"
fi
finish
