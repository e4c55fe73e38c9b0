"""The uint8 collate with FMix and with ResizeMix against the same collate with Mixup, side by side.

    python benchmarks/collate_methods.py [--rounds 15] [--backends cpp,numba]

256 numpy HWC uint8 samples of 224x224 (fastmix.bench.inputs), ``MixupCollate(Mixup(seed=0, ...))``
in batch mode with Mixup (mixup_alpha=0.8), with FMix (fmix_alpha=1.0; batch and elem mode) and with ResizeMix
(resizemix_alpha=1.0, bilinear and nearest): every row is called once per round in turn (interleaved, fresh
draws from each Mixup's stream, sampling included), and the medians and the ratios to Mixup are
printed per backend, with each setting's draw alone (``Mixup.sample``) and its share of the row. The main bench
(``python -m fastmix bench``) times the same rows among all its others; this one leaves out the
rows between them, whose memory traffic moves the ratio from run to run.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import fastmix
from fastmix.bench.inputs import make_samples

SETTINGS = {"mixup": dict(mixup_alpha=0.8), "fmix batch": dict(mixup_alpha=0.0, fmix_alpha=1.0),
            "fmix elem": dict(mixup_alpha=0.0, fmix_alpha=1.0, mode="elem"),
            "resizemix batch": dict(mixup_alpha=0.0, resizemix_alpha=1.0),
            "resizemix nearest": dict(mixup_alpha=0.0, resizemix_alpha=1.0, resizemix_interpolation="nearest")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--backends", default="cpp,numba")
    args = parser.parse_args()
    torch.set_num_threads(1)
    samples = make_samples(256, 224, 1000)
    rows = {(b, name): fastmix.MixupCollate(fastmix.Mixup(num_classes=1000, seed=0, backend=b, **knobs))
            for b in args.backends.split(",") for name, knobs in SETTINGS.items()}
    samplers = {name: fastmix.Mixup(num_classes=1000, seed=0, **knobs) for name, knobs in SETTINGS.items()}
    times = {key: [] for key in rows}
    draws = {name: [] for name in samplers}
    for collate in rows.values():  # warm-up (numba compiles here)
        collate(samples)
    for _ in range(args.rounds):
        for key, collate in rows.items():
            start = time.perf_counter()
            collate(samples)
            times[key].append(time.perf_counter() - start)
        for name, mix in samplers.items():  # the draw alone, the part of each row that is sampling
            start = time.perf_counter()
            mix.sample(256, 224, 224)
            draws[name].append(time.perf_counter() - start)
    median = {key: statistics.median(v) * 1e3 for key, v in times.items()}
    draw = {name: statistics.median(v) * 1e3 for name, v in draws.items()}
    for (backend, name), ms in median.items():
        print(f"{backend:6s} {name:17s} {ms:8.2f} ms   (its draw {draw[name]:.3f} ms: {draw[name] / ms:.1%})")
    for backend in args.backends.split(","):
        for name in list(SETTINGS)[1:]:
            print(f"{backend:6s} {name} / mixup collate = {median[(backend, name)] / median[(backend, 'mixup')]:.2f}")


if __name__ == "__main__":
    main()
