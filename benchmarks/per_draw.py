"""Per-call cost of fastmix.Mixup over a sequence of fresh draws, against one in-place pass.

    python benchmarks/per_draw.py [--draws 20] [--repeats 7] [--threads 1,2] [--dtypes float32,uint8]

For each draw of ``Mixup(seed=0, ...)`` in turn, a user's whole call ``mix(images, labels)``
(sampling, the in-place mix, the soft targets) is timed ``--repeats`` times, each right after one
in-place pass over the same batch (``images.mul_(1)``, the floor), the random stream rewound
before each repeat so the same draw is measured; the figure is the median of call / floor. Prints
the per-draw table for CutMix (mean box area, ratio, and the issue's bound 0.2 + 1.2 x area) and
the median and worst ratio of every mode, per backend, thread count and dtype.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import fastmix
from fastmix.bench.inputs import DTYPES, make_batch, make_labels

MODES = {
    "mixup batch": dict(mixup_alpha=0.8),
    "cutmix batch": dict(mixup_alpha=0.0, cutmix_alpha=1.0),
    "elem switching": dict(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem"),
    "pair switching": dict(mixup_alpha=0.8, cutmix_alpha=1.0, mode="pair"),
}


def floor_pass(images: torch.Tensor) -> None:
    images.mul_(1)


def per_draw_ratios(images, labels, backend, knobs, draws, repeats):
    """[(mean box area, median call/floor)] for the first `draws` draws."""
    mix = fastmix.Mixup(num_classes=1000, seed=0, label_smoothing=0.1, backend=backend, **knobs)
    mix(images, labels)  # warm-up (and the first draw of a throwaway stream)
    mix = fastmix.Mixup(num_classes=1000, seed=0, label_smoothing=0.1, backend=backend, **knobs)
    out = []
    for _ in range(draws):
        state = mix.generator.bit_generator.state
        ratios = []
        for _ in range(repeats):
            mix.generator.bit_generator.state = state
            t = time.perf_counter(); floor_pass(images); floor = time.perf_counter() - t
            t = time.perf_counter(); mix(images, labels); call = time.perf_counter() - t
            ratios.append(call / floor)
        p = mix.last_params
        pasted = p.kind == fastmix.MixKind.PASTE
        box = p.box.double()
        area = ((box[:, 1] - box[:, 0]) * (box[:, 3] - box[:, 2]) / (images.shape[-2] * images.shape[-1]))
        out.append((float((area * pasted).mean()), statistics.median(ratios)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--dtypes", default="float32,uint8")
    parser.add_argument("--backends", default=",".join(b for b in ("cpp", "numba") if fastmix.available_backends()[b] is None))
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    labels = make_labels(args.batch_size, 1000)
    print(f"B={args.batch_size} 3x224x224, {args.draws} draws x {args.repeats} repeats, median call/floor per draw")
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        for dtype in args.dtypes.split(","):
            images = make_batch(args.batch_size, 224, DTYPES[dtype])
            for backend in args.backends.split(","):
                print(f"\n== {threads} thread(s), {dtype}, {backend}")
                for mode, knobs in MODES.items():
                    rows = per_draw_ratios(images, labels, backend, knobs, args.draws, args.repeats)
                    ratios = [r for _, r in rows]
                    line = f"{mode:16s} median {statistics.median(ratios):5.2f}  worst {max(ratios):5.2f}"
                    if mode == "cutmix batch":
                        over = [(a, r) for a, r in rows if r > 0.2 + 1.2 * a]
                        line += f"  draws over 0.2 + 1.2 x area: {len(over)} of {len(rows)}"
                        print(line)
                        print("  area  " + " ".join(f"{a:5.2f}" for a, _ in rows))
                        print("  ratio " + " ".join(f"{r:5.2f}" for _, r in rows))
                        print("  bound " + " ".join(f"{0.2 + 1.2 * a:5.2f}" for a, _ in rows))
                    else:
                        print(line)


if __name__ == "__main__":
    main()
