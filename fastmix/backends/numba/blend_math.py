"""Per-element loops of the numba kernels (csrc/cpu/blend_math.h), used by mix_numba.py and
mix_into_numba.py. They round exactly like the torch reference (fastmix/backends/reference.py):
a * lam and b * (1 - lam) rounded apart in the accumulation type (dtypes.py), then summed (numba
fuses no FMA without fastmath), then stored back.

Each loop runs over elements [lo, hi) of two contiguous 1-D arrays. They take a range, not slices:
a slice is a new array (and a reference count) per row segment, which in a box's rows cost more
than the elements (elem mode measured 1.9x cpp with slices). The index is unsigned so that numba
adds no negative-index wraparound, which kept LLVM from vectorising the loops: every caller passes
0 <= lo <= hi <= len (a negative lo would wrap).
"""
from __future__ import annotations

from . import cache  # noqa: F401  (first: keys numba's disk cache on all of this package's sources)

import numpy as np
from numba import njit

from .dtypes import from_acc, to_acc

# What one sample does to the elements of a row segment: blend_math.h's PixelOp (kKeep, kTake,
# kBlend), which picks the loop below that runs. Numpy scalars, not Python ints: see plan.py.
PIXEL_KEEP, PIXEL_TAKE, PIXEL_BLEND = np.int64(0), np.int64(1), np.int64(2)


@njit(nogil=True, cache=True)
def blend_into(dst, src, lo, hi, lam, rest):
    """dst <- blend(dst, src): dst * lam + src * rest, each product rounded on its own."""
    for j in range(np.uint64(lo), np.uint64(hi)):
        dst[j] = from_acc(dst, to_acc(dst[j]) * lam + to_acc(src[j]) * rest)


@njit(nogil=True, cache=True)
def blend_pair(a, b, lo, hi, lam_a, rest_a, lam_b, rest_b):
    """a <- blend(a, b) and b <- blend(b, a), both from the originals: one read and write of each."""
    for j in range(np.uint64(lo), np.uint64(hi)):
        x = to_acc(a[j])
        y = to_acc(b[j])
        a[j] = from_acc(a, x * lam_a + y * rest_a)
        b[j] = from_acc(b, y * lam_b + x * rest_b)


@njit(nogil=True, cache=True)
def blend_and_take(a, b, lo, hi, lam_a, rest_a):
    """a <- blend(a, b) while b takes a's original (a blended sample paired with a pasted one)."""
    for j in range(np.uint64(lo), np.uint64(hi)):
        x = a[j]
        a[j] = from_acc(a, to_acc(x) * lam_a + to_acc(b[j]) * rest_a)
        b[j] = x


@njit(nogil=True, cache=True)
def swap_ranges(a, b, lo, hi):
    """a <-> b (a pasted pair's common box)."""
    for j in range(np.uint64(lo), np.uint64(hi)):
        x = a[j]
        a[j] = b[j]
        b[j] = x


@njit(nogil=True, cache=True)
def copy(dst, src, lo, hi):
    """dst <- src (a paste; the C++ kernels call std::memcpy)."""
    for j in range(np.uint64(lo), np.uint64(hi)):
        dst[j] = src[j]


@njit(nogil=True, cache=True)
def select_from_mask(dst, src, lo, hi, mask, mask_at, unit, first):
    """dst[j] <- src[j] where the pixel's mask byte is set, for j in [lo, hi) (a MASK sample:
    blend_math.h's select_into). Element j is pixel ``(first + j - lo) // unit`` from mask_at in
    ``mask``: unit 1 for NCHW rows, C for channels_last and HWC rows (counted, not divided: a
    division per element cost more than the select)."""
    if unit == 1:  # unsigned indices (they wrap back into range): no wraparound checks in the loop
        base = np.uint64(mask_at + first - lo)
        for j in range(np.uint64(lo), np.uint64(hi)):
            dst[j] = src[j] if mask[base + j] else dst[j]
        return
    pixel, c, size = np.uint64(mask_at + first // unit), np.uint64(first % unit), np.uint64(unit)
    for j in range(np.uint64(lo), np.uint64(hi)):
        dst[j] = src[j] if mask[pixel] else dst[j]
        c += np.uint64(1)
        if c == size:
            c = np.uint64(0)
            pixel += np.uint64(1)


@njit(nogil=True, cache=True)
def select_pair_from_masks(a, b, lo, hi, mask, at_a, at_b, unit, first):
    """A swapped pair that both mask, over [lo, hi): a[j] <- b[j] where a's pixel byte is set and
    b[j] <- a[j] where b's is, both from the originals (blend_math.h's select_pair); pixels as in
    select_from_mask."""
    if unit == 1:  # unsigned indices (they wrap back into range): no wraparound checks in the loop
        base_a, base_b = np.uint64(at_a + first - lo), np.uint64(at_b + first - lo)
        for j in range(np.uint64(lo), np.uint64(hi)):
            x = a[j]
            y = b[j]
            a[j] = y if mask[base_a + j] else x
            b[j] = x if mask[base_b + j] else y
        return
    pixel_a, pixel_b = np.uint64(at_a + first // unit), np.uint64(at_b + first // unit)
    c, size = np.uint64(first % unit), np.uint64(unit)
    for j in range(np.uint64(lo), np.uint64(hi)):
        x = a[j]
        y = b[j]
        a[j] = y if mask[pixel_a] else x
        b[j] = x if mask[pixel_b] else y
        c += np.uint64(1)
        if c == size:
            c = np.uint64(0)
            pixel_a += np.uint64(1)
            pixel_b += np.uint64(1)
