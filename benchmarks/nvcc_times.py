"""nvcc's time per CUDA file of fastmix._C, for one or more source trees side by side.

    python benchmarks/nvcc_times.py                           # this checkout, 3 rounds
    python benchmarks/nvcc_times.py --rounds 4 /tmp/before .  # two trees, interleaved round by round
    python benchmarks/nvcc_times.py --files mix_into_cuda.cu /tmp/before .

Compiles each tree's csrc/cuda/*.cu (compile only, one compiler at a time) with the flags the
extension's build gives them (tests/test_cuda_compile.py's, for sm_90 as there) and prints the CPU
seconds nvcc and its children took, then the median per tree and file. The trees are interleaved
within a round, so that a shared machine's slow minute falls on every tree alike; compare medians
of the same run, never figures of two runs. A tree is any directory with csrc/ (a `git worktree
add` of another commit, say). Needs nvcc and torch's headers, as the compile test does.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from tests.test_cuda_compile import CMAKE_MACROS_SHIM, NVCC, _extension_nvcc_flags  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="*", default=[str(HERE)], help="source trees (default: this checkout)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", nargs="*", help="names under csrc/cuda (default: every .cu)")
    args = parser.parse_args()
    if NVCC is None:
        print("nvcc not found (PATH or CUDA_HOME)", file=sys.stderr)
        return 2
    from torch.utils.cpp_extension import include_paths

    work = Path(tempfile.mkdtemp(prefix="fastmix-nvcc-"))
    shim = work / "include" / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h"  # what a CPU torch lacks
    shim.parent.mkdir(parents=True)
    shim.write_text(CMAKE_MACROS_SHIM)
    includes = [f"-I{work / 'include'}"] + [f"-I{p}" for p in include_paths()]
    trees = [Path(t).resolve() for t in args.trees]
    names = args.files or sorted(p.name for p in (trees[0] / "csrc" / "cuda").glob("*.cu"))
    seconds: dict = {}
    for round_ in range(args.rounds):
        for name in names:
            for tree in trees:
                command = [NVCC, *includes, *_extension_nvcc_flags(), "-c", str(tree / "csrc" / "cuda" / name),
                           "-o", str(work / f"{name}.o")]
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                done = subprocess.run(command, capture_output=True, text=True)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                if done.returncode:
                    print(done.stderr[-3000:], file=sys.stderr)
                    return 1
                seconds.setdefault((str(tree), name), []).append(cpu)
                print(f"round {round_ + 1}  {tree}  {name:22s} {cpu:6.1f} s  (load {os.getloadavg()[0]:.1f})", flush=True)
    print("\nmedian CPU s per file")
    for (tree, name), values in seconds.items():
        print(f"  {tree}  {name:22s} {statistics.median(values):6.1f}   ({', '.join(f'{v:.1f}' for v in values)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
