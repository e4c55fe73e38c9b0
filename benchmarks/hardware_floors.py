"""What this machine allows without fastmix, against the floor fastmix is held to.

    python benchmarks/hardware_floors.py [--draws 20] [--repeats 7]

Builds benchmarks/hardware_floors.cpp (g++ -O3 -march=native -ffp-contract=off) as a shared
library: the simplest C++ loops for a Mixup blend of swapped pairs (float32; uint8 with the exact
float32 rounding) and a CutMix box swap, its rows prefetched in walk order. Each is timed in this
process beside fastmix's kernel (``fastmix.mix_``, the same pairs, lambda and box), each right
after one in-place pass over the same 256x3x224x224 batch (``images.mul_(1)``, the floor of
benchmarks/per_draw.py), one thread; medians of ``--repeats``. The boxes are those of the draws
per_draw.py measures (``Mixup(seed=0, mixup_alpha=0, cutmix_alpha=1)``), printed beside the
issue's bound 0.2 + 1.2 x area. Where plain C++ is over a bound, no kernel is under it here.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import statistics
import subprocess
import tempfile
import time

import torch

import fastmix
from fastmix.bench.inputs import make_batch

HERE = os.path.dirname(os.path.abspath(__file__))
B, SIDE = 256, 224


def build_plain(tmp: str) -> ctypes.CDLL:
    compiler = shutil.which("g++")
    if compiler is None:
        raise SystemExit("g++ is needed to build benchmarks/hardware_floors.cpp")
    library = os.path.join(tmp, "hardware_floors.so")
    subprocess.run([compiler, "-O3", "-march=native", "-ffp-contract=off", "-std=c++17", "-shared", "-fPIC",
                    os.path.join(HERE, "hardware_floors.cpp"), "-o", library], check=True)
    plain = ctypes.CDLL(library)
    plain.plain_blend_pairs_f32.argtypes = plain.plain_blend_pairs_u8.argtypes = [ctypes.c_void_p, ctypes.c_float,
                                                                                  ctypes.c_float]
    plain.plain_swap_boxes.argtypes = [ctypes.c_void_p] + [ctypes.c_int64] * 4
    return plain


def flip_params(kind: int, lam: float, box=(0, 0, 0, 0)) -> fastmix.MixParams:
    """Pairs (i, B-1-i), every sample of one kind, lambda and box (what the plain loops do)."""
    lams = torch.full((B,), lam)
    lams[B // 2:] = 1 - lam if kind == fastmix.MixKind.BLEND else lam
    return fastmix.MixParams(partner=torch.arange(B - 1, -1, -1), lam=lams,
                             kind=torch.full((B,), int(kind), dtype=torch.uint8), box=torch.tensor(box).repeat(B, 1))


def ratios(images: torch.Tensor, ops, repeats: int):
    """Median of op / floor per op, the ops interleaved, each right after a floor pass."""
    times = [[] for _ in ops]
    for op in ops:
        op()
    for _ in range(repeats):
        for k, op in enumerate(ops):
            t = time.perf_counter(); images.mul_(1); floor = time.perf_counter() - t
            t = time.perf_counter(); op(); times[k].append((time.perf_counter() - t) / floor)
    return [statistics.median(r) for r in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    mix = fastmix.Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, num_classes=1000, seed=0)
    boxes = [tuple(int(v) for v in mix.sample(B, SIDE, SIDE).box[0]) for _ in range(args.draws)]
    with tempfile.TemporaryDirectory() as tmp:
        plain = build_plain(tmp)
        print(f"op / one in-place pass, {B}x3x{SIDE}x{SIDE}, 1 thread, medians of {args.repeats}: plain C++ | fastmix")
        images = make_batch(B, SIDE, torch.float32)
        blend = flip_params(fastmix.MixKind.BLEND, 0.7)
        c, f = ratios(images, [lambda: plain.plain_blend_pairs_f32(images.data_ptr(), 0.7, 0.3),
                               lambda: fastmix.mix_(images, blend)], args.repeats)
        print(f"blend of swapped pairs, float32   {c:5.2f} | {f:5.2f}")
        bytes_ = make_batch(B, SIDE, torch.uint8)
        c, f = ratios(bytes_, [lambda: plain.plain_blend_pairs_u8(bytes_.data_ptr(), 0.7, 0.3),
                               lambda: fastmix.mix_(bytes_, blend)], args.repeats)
        print(f"blend of swapped pairs, uint8     {c:5.2f} | {f:5.2f}")
        del bytes_
        print(f"{'CutMix box (y0 y1 x0 x1)':24s} {'h':>4s} {'w':>4s} {'area':>5s} {'bound':>6s} {'C++':>5s} {'fastmix':>8s}")
        over = [0, 0]
        for box in boxes:
            y0, y1, x0, x1 = box
            area = (y1 - y0) * (x1 - x0) / SIDE / SIDE
            paste = flip_params(fastmix.MixKind.PASTE, 1 - area, box)
            c, f = ratios(images, [lambda: plain.plain_swap_boxes(images.data_ptr(), *box),
                                   lambda: fastmix.mix_(images, paste)], args.repeats)
            bound = 0.2 + 1.2 * area
            over[0] += c > bound
            over[1] += f > bound
            print(f"{str(box):24s} {y1 - y0:4d} {x1 - x0:4d} {area:5.2f} {bound:6.2f} {c:5.2f} {f:8.2f}")
        print(f"over 0.2 + 1.2 x area: plain C++ {over[0]} of {len(boxes)}, fastmix {over[1]} of {len(boxes)}")


if __name__ == "__main__":
    main()
