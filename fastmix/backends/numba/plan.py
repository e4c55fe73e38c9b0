"""The order of in-place writes for any partner map: csrc/mix_plan.h's, and a port of it.

Sample i is rewritten from itself and sample partner[i]; in place, every sample must be read as a
partner before it is overwritten. The partner map is a functional graph: trees (samples nobody else
reads, written first, leaves inwards) hanging off cycles. Swapped pairs (a flip) are one fused step;
longer cycles save their first sample to a small per-chunk buffer. A plan is an (n, 3) int64 array
of steps (op, a, b).

:func:`inplace_plan` takes the plan from fastmix._C (torch.ops.fastmix.inplace_plan: the one
implementation, which the cpp and cuda backends use too) when the extension is loaded; the port
below (make_inplace_plan) builds it only where it is not, which is when numba is the fallback.
"""
from __future__ import annotations

from . import cache  # noqa: F401  (first: keys numba's disk cache on all of this package's sources)

import numpy as np
import torch
from numba import njit

from ..extension import load_extension

# Constants are numpy scalars, not Python ints: numba types an int constant passed to a jitted
# function as a literal and compiles that function once per value.

# kinds, as fastmix.MixKind (the dtype of params.kind)
NONE, BLEND, PASTE, MASK = np.uint8(0), np.uint8(1), np.uint8(2), np.uint8(3)
RESIZE, RESIZE_NEAREST = np.uint8(4), np.uint8(5)

# plan steps
SAVE = np.int64(0)  # buffer <- x[a]
APPLY = np.int64(1)  # x[a] <- mix(x[a], x[b]); x[b] is still original
APPLY_FROM_BUFFER = np.int64(2)  # x[a] <- mix(x[a], buffer), the saved original of its partner
PAIR = np.int64(3)  # x[a] <- mix(x[a], x[b]) and x[b] <- mix(x[b], x[a]), both from originals
NO_SAMPLE = np.int64(-1)


@njit(nogil=True, cache=True)
def mixed(partner, kind, i):
    """Whether sample i is changed by the mix: its kind is not NONE and its partner is another
    sample (csrc/mix_plan.h's mixed; fastmix.backends.mix_kind.mixed for the whole batch)."""
    return kind[i] != NONE and partner[i] != i


@njit(nogil=True, cache=True)
def make_inplace_plan(partner, kind):
    """The steps that apply a partner map in place (partner values already in [0, B))."""
    batch = partner.shape[0]
    plan = np.empty((2 * batch + 1, 3), dtype=np.int64)
    n = 0
    # readers[j]: mixed samples that still have to read sample j before j may be overwritten.
    readers = np.zeros(batch, dtype=np.int64)
    for i in range(batch):
        if mixed(partner, kind, i):
            readers[partner[i]] += 1
    done = np.zeros(batch, dtype=np.bool_)
    ready = np.empty(batch, dtype=np.int64)
    top = 0
    for i in range(batch):
        if not mixed(partner, kind, i):
            done[i] = True
        elif readers[i] == 0:
            ready[top] = i
            top += 1
    # Trees: write a sample once nobody needs its original any more.
    while top > 0:
        top -= 1
        i = ready[top]
        plan[n, 0], plan[n, 1], plan[n, 2] = APPLY, i, partner[i]
        n += 1
        done[i] = True
        j = partner[i]
        if not done[j]:
            readers[j] -= 1
            if readers[j] == 0:
                ready[top] = j
                top += 1
    # What is left are disjoint cycles of mixed samples.
    for start in range(batch):
        if done[start]:
            continue
        nxt = partner[start]
        if partner[nxt] == start:
            plan[n, 0], plan[n, 1], plan[n, 2] = PAIR, start, nxt
            n += 1
            done[start] = True
            done[nxt] = True
            continue
        plan[n, 0], plan[n, 1], plan[n, 2] = SAVE, start, NO_SAMPLE
        n += 1
        i = start
        while True:
            done[i] = True
            j = partner[i]
            if j == start:
                plan[n, 0], plan[n, 1], plan[n, 2] = APPLY_FROM_BUFFER, i, NO_SAMPLE
                n += 1
                break
            plan[n, 0], plan[n, 1], plan[n, 2] = APPLY, i, j
            n += 1
            i = j
    return plan[:n].copy()


def inplace_plan(partner: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """The steps of checked params: csrc/mix_plan.h's, from the extension when it is loaded, else
    :func:`port_plan`'s."""
    if load_extension() is not None:
        return torch.ops.fastmix.inplace_plan(torch.from_numpy(partner), torch.from_numpy(kind)).numpy()
    return port_plan(partner, kind)


def port_plan(partner: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """make_inplace_plan's steps; for a partner map that is its own inverse (flip and pair
    modes: every cycle is a swapped pair) built with numpy, without compiling make_inplace_plan:
    first the mixed samples whose partner is not mixed (APPLY), then the swapped pairs (PAIR)."""
    index = np.arange(partner.shape[0])
    if not np.array_equal(partner[partner], index):
        return make_inplace_plan(partner, kind)
    mixed = (kind != NONE) & (partner != index)
    apply = mixed & ~mixed[partner]
    pair = mixed & mixed[partner] & (index < partner)
    steps = [np.stack([np.full(int(m.sum()), op), index[m], partner[m]], axis=1) for op, m in ((APPLY, apply), (PAIR, pair))]
    return np.concatenate(steps).astype(np.int64)
