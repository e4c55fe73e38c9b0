"""FMix's draw (``Mixup.sample(256, 224, 224)``, batch and elem mode) with its cut levels found by
the bucketed selection of fastmix._C against the same draw with np.sort (elem) and np.argpartition
(batch), the formulations it replaced, alternated in one process.

    python benchmarks/fmix_draws.py [--rounds 15]

Each round times every row alone (median of 5 calls) and once right after an elem-mode collate of
256 uint8 samples, whose 38 MB leave the draw's caches cold as a DataLoader worker's next batch
finds them. Elem mode's masks are the same bit for bit in both rows (tests/test_order_statistics.py);
batch mode's differ only at a tie across the cut, which the selection keeps the sample's own.
"""
from __future__ import annotations

import argparse
import statistics
import time
from contextlib import contextmanager

import numpy as np
import torch

import fastmix
import fastmix.sampling.order_statistics as order_statistics
import fastmix.sampling.sample as sample
from fastmix.bench.inputs import make_samples
from fastmix.sampling.fmix import low_frequency_images, own_pixel_counts


def pixel_masks_by_argpartition(lam, height, width, decay_power, rng):
    """Batch mode's masks as they were drawn before the selection: the ``num`` brightest pixels
    of each image by np.argpartition (the same masks but at ties)."""
    n, pixels = lam.shape[0], height * width
    images = low_frequency_images(n, height, width, decay_power, rng).reshape(n, pixels)
    own = own_pixel_counts(lam, pixels, rng)
    pixel_mask = np.ones((n, pixels), dtype=np.uint8)
    for i in range(n):
        if own[i] >= pixels:
            pixel_mask[i] = 0
        elif own[i] > 0:
            pixel_mask[i, np.argpartition(images[i], pixels - own[i])[pixels - own[i]:]] = 0
    return pixel_mask.reshape(n, height, width), own / pixels


@contextmanager
def by_sort():
    """The draw without the extension's selection: np.sort's levels, argpartition's batch masks."""
    load, masks = order_statistics.load_extension, sample.fmix_pixel_masks
    order_statistics.load_extension, sample.fmix_pixel_masks = (lambda: None), pixel_masks_by_argpartition
    try:
        yield
    finally:
        order_statistics.load_extension, sample.fmix_pixel_masks = load, masks


@contextmanager
def by_selection():
    yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    samples = make_samples(256, 224, 1000)
    collate = fastmix.MixupCollate(fastmix.Mixup(num_classes=1000, seed=0, mixup_alpha=0.0, fmix_alpha=1.0,
                                                 mode="elem"))
    mixes = {mode: fastmix.Mixup(num_classes=1000, seed=0, mixup_alpha=0.0, fmix_alpha=1.0, mode=mode)
             for mode in ("batch", "elem")}
    ways = {"np.sort/argpartition": by_sort, "selection": by_selection}
    times: dict[tuple[str, str, str], list[float]] = {}
    collate(samples)
    for _ in range(args.rounds):
        for way, context in ways.items():
            with context():
                for mode, mix in mixes.items():
                    alone = []
                    for _ in range(5):
                        start = time.perf_counter()
                        mix.sample(256, 224, 224)
                        alone.append(time.perf_counter() - start)
                    times.setdefault((mode, way, "alone"), []).append(statistics.median(alone))
                    collate(samples)
                    start = time.perf_counter()
                    mix.sample(256, 224, 224)
                    times.setdefault((mode, way, "after a collate"), []).append(time.perf_counter() - start)
    for mode in mixes:
        for where in ("alone", "after a collate"):
            before, after = (statistics.median(times[(mode, way, where)]) * 1e3 for way in ways)
            print(f"{mode:5s} {where:16s} np.sort/argpartition {before:.3f} ms   selection {after:.3f} ms"
                  f"   ({after / before:.2f}x)")


if __name__ == "__main__":
    main()
