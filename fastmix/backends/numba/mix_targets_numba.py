"""numba kernels of fastmix::mix_targets: (B, C) float32 soft targets (csrc/cpu/mix_targets_cpu.cpp).

With label smoothing eps a class scores on = 1 - eps + eps/C and every other class off = eps/C;
dense targets t become t*on + (1-t)*off. Row i is lam[i] * s(labels[i]) + (1 - lam[i]) *
s(labels[partner[i]]), or s(labels[i]) when sample i is left alone; all in float32, each product
rounded on its own, as fastmix/backends/reference.py does. Rows are independent: blocks of rows
run on several threads (parallel.py).
"""
from __future__ import annotations

from . import cache  # noqa: F401  (first: keys numba's disk cache on all of this package's sources)

import numpy as np
import torch
from numba import njit
from numba.extending import overload

from ..checks import check_mix_targets_args
from .memory import check_cpu
from .parallel import run_split, threads
from .plan import mixed

ROWS_PER_TASK = 16


@njit(nogil=True, cache=True)
def targets_from_indices(labels, partner, lam, kind, on, off, out, i0, i1):
    """Rows [i0, i1) from class indices (B,) (mix_targets_cpu.cpp's targets_from_indices)."""
    num_classes = out.shape[1]
    for i in range(i0, i1):
        row = out[i]
        mine = labels[i]
        if not mixed(partner, kind, i):
            for c in range(num_classes):
                row[c] = off
            row[mine] = on
            continue
        theirs = labels[partner[i]]
        own = lam[i]
        rest = np.float32(1.0) - own
        both_off = off * own + off * rest
        for c in range(num_classes):
            row[c] = both_off
        row[mine] = on * own + off * rest
        row[theirs] = on * own + on * rest if mine == theirs else off * own + on * rest


@njit(nogil=True, cache=True)
def targets_from_dense(labels, partner, lam, kind, on, off, out, i0, i1):
    """Rows [i0, i1) from dense targets (B, C) (mix_targets_cpu.cpp's targets_from_dense)."""
    num_classes = out.shape[1]
    one = np.float32(1.0)
    for i in range(i0, i1):
        row = out[i]
        mine = labels[i]
        if not mixed(partner, kind, i):
            for c in range(num_classes):
                row[c] = mine[c] * on + (one - mine[c]) * off
            continue
        theirs = labels[partner[i]]
        own = lam[i]
        rest = one - own
        for c in range(num_classes):
            a = mine[c] * on + (one - mine[c]) * off
            b = theirs[c] * on + (one - theirs[c]) * off
            row[c] = a * own + b * rest


def _rows(labels, partner, lam, kind, on, off, out, i0, i1):
    """Rows [i0, i1) from class indices (B,) or dense targets (B, C)."""


@overload(_rows)
def _rows_for(labels, partner, lam, kind, on, off, out, i0, i1):
    if labels.ndim == 1:
        return lambda labels, partner, lam, kind, on, off, out, i0, i1: targets_from_indices(
            labels, partner, lam, kind, on, off, out, i0, i1)
    return lambda labels, partner, lam, kind, on, off, out, i0, i1: targets_from_dense(
        labels, partner, lam, kind, on, off, out, i0, i1)


@njit(nogil=True, cache=True)
def targets_rows(labels, partner, lam, kind, on, off, out, i0, i1):
    _rows(labels, partner, lam, kind, on, off, out, i0, i1)


def smoothing_values(num_classes: int, smoothing: float):
    """(on, off) as float32, computed in double first (like the reference's Python floats)."""
    off = smoothing / num_classes
    return np.float32(1.0 - smoothing + off), np.float32(off)


def mix_targets(labels, partner, lam, kind, num_classes, smoothing):
    """torch.ops.fastmix.mix_targets on numba: (B, num_classes) float32 soft targets."""
    check_mix_targets_args(labels, partner, lam, kind, num_classes, smoothing)
    check_cpu(labels, "labels")
    batch = labels.shape[0]
    out = torch.empty((batch, num_classes), dtype=torch.float32)
    if batch == 0:
        return out
    values = labels.detach().to(torch.int64 if labels.dim() == 1 else torch.float32).contiguous()
    p, l, k = (t.detach().contiguous().numpy() for t in (partner, lam, kind))
    on, off = smoothing_values(num_classes, float(smoothing))
    arrays = (values.numpy(), p, l, k, on, off, out.numpy())
    tasks = (batch + ROWS_PER_TASK - 1) // ROWS_PER_TASK
    run_split(lambda t0, t1: targets_rows(*arrays, t0 * ROWS_PER_TASK, min(batch, t1 * ROWS_PER_TASK)), tasks, threads())
    return out
