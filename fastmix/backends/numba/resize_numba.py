"""ResizeMix on numba (csrc/resize_taps.h and csrc/cpu/resize_cpu.h, name for name): the taps of a
box and the rows of a box from the partner it shrinks, for mix_numba.py (in place, a step at a time:
mix_inplace_by_sample) and mix_into_numba.py (staged rows). The rule is resize_taps.h's.
"""
from __future__ import annotations

from . import cache  # noqa: F401  (first: keys numba's disk cache on all of this package's sources)

import numpy as np
from numba import njit
from numba.extending import overload

from .dtypes import from_acc, to_acc
from .plan import RESIZE, RESIZE_NEAREST


def as_acc(array, value):
    """``value`` in the accumulation type of ``array``'s elements (float64 for float64, else float32)."""


@overload(as_acc)
def _as_acc(array, value):
    if array.dtype.bitwidth == 64 and str(array.dtype).startswith("float"):
        return lambda array, value: np.float64(value)
    return lambda array, value: np.float32(value)


def as_value(out, value):
    """A source value as out holds it: itself for the same type, else converted (uint8 -> float32)."""


@overload(as_value)
def _as_value(out, value):
    if out.dtype == value:
        return lambda out, value: value
    return lambda out, value: from_acc(out, to_acc(value))


@njit(nogil=True, cache=True)
def resizes(kind):
    return kind == RESIZE or kind == RESIZE_NEAREST


@njit(nogil=True, cache=True)
def linear_tap(like, dst, in_size, out_size):
    """(lo, hi, w_lo, w_hi) of output index dst, weights in like's accumulation type."""
    half = as_acc(like, 0.5)
    scale = as_acc(like, in_size) / as_acc(like, out_size)
    src = scale * (as_acc(like, dst) + half) - half
    if src < 0:
        src = as_acc(like, 0.0)
    lo = min(np.int64(src), in_size - 1)  # floor: src >= 0
    w_hi = min(max(src - as_acc(like, lo), as_acc(like, 0.0)), as_acc(like, 1.0))
    hi = lo + 1 if lo < in_size - 1 else lo
    return lo, hi, as_acc(like, 1.0) - w_hi, w_hi


@njit(nogil=True, cache=True)
def nearest_tap(dst, in_size, out_size):
    scale = np.float32(in_size) / np.float32(out_size)
    return min(np.int64(np.float32(dst) * scale), in_size - 1)  # floor: the product is >= 0


@njit(nogil=True, cache=True)
def resize_taps(like, height, width, col_stride, rows, cols, nearest):
    """ResizeTaps: per box row the source rows, per box column the source offsets (times
    col_stride), and their weights (like's accumulation type)."""
    one = as_acc(like, 1.0)
    row_lo = np.empty(rows, dtype=np.int64)
    row_hi = np.empty(rows, dtype=np.int64)
    col_lo = np.empty(cols, dtype=np.int64)
    col_hi = np.empty(cols, dtype=np.int64)
    row_w = np.full((2, rows), one)
    col_w = np.full((2, cols), one)
    for r in range(rows):
        if nearest:
            row_lo[r] = row_hi[r] = nearest_tap(r, height, rows)
        else:
            row_lo[r], row_hi[r], row_w[0, r], row_w[1, r] = linear_tap(like, r, height, rows)
    for q in range(cols):
        if nearest:
            col_lo[q] = col_hi[q] = nearest_tap(q, width, cols) * col_stride
        else:
            lo, hi, col_w[0, q], col_w[1, q] = linear_tap(like, q, width, cols)
            col_lo[q], col_hi[q] = lo * col_stride, hi * col_stride
    return row_lo, row_hi, row_w, col_lo, col_hi, col_w


@njit(nogil=True, cache=True)
def resize_box_row(src, channel_at, row_stride, taps, nearest, r, out, out_at, out_stride):
    """Row r of the box from the channel of src whose (0, 0) pixel is src[channel_at], to
    out[out_at + q * out_stride]: bilinear values rounded as the reference casts back, nearest
    values as they are (converted when out holds another type: uint8 -> float32)."""
    row_lo, row_hi, row_w, col_lo, col_hi, col_w = taps
    top = channel_at + row_lo[r] * row_stride
    cols = col_lo.shape[0]
    if nearest:
        for q in range(cols):
            out[out_at + q * out_stride] = as_value(out, src[top + col_lo[q]])
        return
    bottom = channel_at + row_hi[r] * row_stride
    wy_lo, wy_hi = row_w[0, r], row_w[1, r]
    for q in range(cols):
        lo, hi, wx_lo, wx_hi = col_lo[q], col_hi[q], col_w[0, q], col_w[1, q]
        upper = to_acc(src[top + lo]) * wx_lo + to_acc(src[top + hi]) * wx_hi
        lower = to_acc(src[bottom + lo]) * wx_lo + to_acc(src[bottom + hi]) * wx_hi
        out[out_at + q * out_stride] = from_acc(out, upper * wy_lo + lower * wy_hi)
