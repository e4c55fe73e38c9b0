"""The numba backend against the C++ kernels and the naive torch arithmetic, on one thread.

    python benchmarks/numba_vs_cpp.py [--batch 256] [--size 224] [--rounds 11]

Two figures, each the median of interleaved rounds (every implementation once per round, so
machine noise hits all alike), after a warm-up round (which also compiles or loads the kernels):

* in-place Mixup of a float32 batch B x 3 x S x S (batch mode: every sample blended with its flip):
  fastmix numba and cpp, and timm's flip formula (fastmix.bench.baselines.naive_mixup_flip_);
* the uint8 collate of B HWC S x S x 3 numpy samples (Mixup, batch mode): fastmix.MixupCollate
  on numba and cpp, and default_collate + permute + float blend with the flipped batch + round +
  cast back (fastmix.bench.baselines.naive_collate_uint8).

Prints the medians and the ratios numba / cpp (target <= 1.5) and naive / numba (target >= 4).
"""
from __future__ import annotations

import argparse
import platform
from typing import Callable, Dict

import torch

import fastmix
from fastmix.bench import baselines
from fastmix.bench.inputs import make_batch, make_samples
from fastmix.bench.timing import interleaved_medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    status = fastmix.available_backends()
    for needed in ("cpp", "numba"):
        if status[needed] is not None:
            raise SystemExit(f"the {needed} backend is not available: {status[needed]}")
    import numba

    torch.set_num_threads(1)
    numba.set_num_threads(1)
    batch, size = args.batch, args.size
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, numba {numba.__version__}, "
          f"1 thread, {args.rounds} rounds, median")

    images = make_batch(batch, size, torch.float32)
    params = fastmix.Mixup(mixup_alpha=0.8, num_classes=1000, seed=0).sample(batch, size, size)
    lam = float(params.lam[0])
    apply = interleaved_medians({
        "cpp": lambda: fastmix.mix_(images, params, "cpp"),
        "numba": lambda: fastmix.mix_(images, params, "numba"),
        "naive": lambda: baselines.naive_mixup_flip_(images, lam),
    }, args.rounds)

    samples = make_samples(batch, size, 1000)
    collates = {b: fastmix.MixupCollate(fastmix.Mixup(mixup_alpha=0.8, num_classes=1000, seed=0, backend=b))
                for b in ("cpp", "numba")}
    collate = interleaved_medians({
        "cpp": lambda: collates["cpp"](samples),
        "numba": lambda: collates["numba"](samples),
        "naive": lambda: baselines.naive_collate_uint8(samples, 0.7),
    }, args.rounds)

    for name, m in [(f"in-place Mixup, float32 {batch}x3x{size}x{size}", apply),
                    (f"collate uint8, {batch} HWC {size}x{size}x3 samples", collate)]:
        print(f"\n{name}")
        for impl in ("cpp", "numba", "naive"):
            print(f"  {impl:6s} {m[impl] * 1e3:9.2f} ms")
        print(f"  numba / cpp    = {m['numba'] / m['cpp']:.2f}  (target <= 1.5)")
        print(f"  naive / numba  = {m['naive'] / m['numba']:.2f}  (target >= 4)")


if __name__ == "__main__":
    main()
