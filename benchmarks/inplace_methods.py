"""FMix in place, batch and elem mode, against one in-place pass over the same batch, side by side.

    python benchmarks/inplace_methods.py [--rounds 11] [--backends cpp,numba]

256x3x224x224 float32 (fastmix.bench.inputs), ``Mixup(seed=0, mixup_alpha=0, fmix_alpha=1)`` in
batch mode (cpp) and elem mode (each backend), called as users call it (``mix(images, labels)``:
sampling, the in-place mix, the soft targets), interleaved with ``floor_pass_`` round by round;
medians and the ratios to the floor. The main bench (``python -m fastmix bench``) has the same rows
among all its others.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import fastmix
from fastmix.bench.baselines import floor_pass_
from fastmix.bench.inputs import make_batch, make_labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--backends", default="cpp,numba")
    args = parser.parse_args()
    torch.set_num_threads(1)
    images, labels = make_batch(256, 224, torch.float32), make_labels(256, 1000)
    fmix = dict(mixup_alpha=0.0, fmix_alpha=1.0)
    rows = {f"{b} fmix elem": fastmix.Mixup(num_classes=1000, seed=0, backend=b, mode="elem", **fmix)
            for b in args.backends.split(",")}
    rows["cpp fmix batch"] = fastmix.Mixup(num_classes=1000, seed=0, backend="cpp", **fmix)
    times = {key: [] for key in list(rows) + ["floor: one in-place pass"]}
    for mix in rows.values():  # warm-up (numba compiles here)
        mix(images, labels)
    for _ in range(args.rounds):
        for key, mix in rows.items():
            start = time.perf_counter()
            mix(images, labels)
            times[key].append(time.perf_counter() - start)
        start = time.perf_counter()
        floor_pass_(images)
        times["floor: one in-place pass"].append(time.perf_counter() - start)
    median = {key: statistics.median(v) * 1e3 for key, v in times.items()}
    floor = median["floor: one in-place pass"]
    for key, ms in median.items():
        print(f"{key:26s} {ms:8.2f} ms  {ms / floor:.2f}x one pass")


if __name__ == "__main__":
    main()
