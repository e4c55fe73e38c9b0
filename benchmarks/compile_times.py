"""Compile time of each translation unit of fastmix._C, and of the whole build, on this machine.

    python benchmarks/compile_times.py            # per TU one at a time, then the parallel build
    python benchmarks/compile_times.py --jobs 2   # the parallel build with 2 compilers

Builds into a temporary directory with the flags setup.py uses (compilers timed through a small
wrapper), so the checkout's own build is left alone. The per-TU figures come from a build with
MAX_JOBS=1, so that no two compilers share the machine; the wall time of the whole build from a
second build with --jobs compilers (default: one per core), as `pip install` runs it.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRAPPER = """#!/bin/sh
start=$(date +%s.%N)
"$FASTMIX_REAL_CXX" "$@"
rc=$?
end=$(date +%s.%N)
for arg in "$@"; do case "$arg" in *.cpp|*.cu) src="$arg";; esac; done
[ -n "$src" ] && echo "$start $end $src" >> "$FASTMIX_TIMES"
exit $rc
"""


def build(tmp: str, jobs: int, label: str) -> tuple[float, dict[str, float]]:
    times = os.path.join(tmp, f"times-{label}.txt")
    wrapper = os.path.join(tmp, "timed-cxx")
    with open(wrapper, "w") as f:
        f.write(WRAPPER)
    os.chmod(wrapper, 0o755)
    real = os.environ.get("CXX") or shutil.which("c++") or "g++"
    env = dict(os.environ, CC=wrapper, CXX=wrapper, FASTMIX_REAL_CXX=real, FASTMIX_TIMES=times, MAX_JOBS=str(jobs))
    build_dir = os.path.join(tmp, f"build-{label}")
    start = time.perf_counter()
    subprocess.run([sys.executable, "setup.py", "build_ext", "--build-temp", os.path.join(build_dir, "temp"),
                    "--build-lib", os.path.join(build_dir, "lib")], cwd=HERE, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    per_tu = {}
    with open(times) as f:
        for line in f:
            t0, t1, src = line.split(maxsplit=2)
            per_tu[os.path.relpath(src.strip(), HERE)] = float(t1) - float(t0)
    return wall, per_tu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        serial_wall, per_tu = build(tmp, 1, "serial")
        print("translation unit                     compile s (one at a time)")
        for src, seconds in sorted(per_tu.items(), key=lambda kv: -kv[1]):
            print(f"  {src:34s} {seconds:7.1f}")
        print(f"  {'sum':34s} {sum(per_tu.values()):7.1f}   (whole serial build: {serial_wall:.1f} s)")
        wall, _ = build(tmp, args.jobs, "parallel")
        print(f"whole build with {args.jobs} compilers at once: {wall:.1f} s wall")


if __name__ == "__main__":
    main()
