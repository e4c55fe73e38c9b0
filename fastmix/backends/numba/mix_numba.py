"""numba kernels of fastmix::mix_: a MixParams applied to a batch in place (csrc/cpu/mix_cpu.cpp).

Work is split over element positions, not samples: chunk c covers the same element range of every
sample and walks the whole in-place plan (plan.py) for it, with one chunk-sized buffer. Chunks are
independent, so they run on several threads (parallel.py), and the extra memory is threads x chunk.

Two layouts, as in mix_cpu.cpp. DenseLayout: samples whose elements fill one block of memory in
the same order (contiguous NCHW, channels_last, any dense permutation): a blend is elementwise over
[0, numel), a paste copies row segments (row = ``row_len`` elements; image row
``(e // row_len) % height``, column ``(e % row_len) // col_unit``), a mask (MASK) selects by its
pixel's byte of ``pixel_mask``, passed flat with the byte stride between samples' planes (0 for one
plane expanded over the batch; an empty array without one). StridedLayout (anything else):
rows along the sample's smallest-stride dim, each located by its multi-index, the buffer holding a
chunk's rows packed.

Each driver takes a range of chunks: one build serves one thread or several (parallel.py).
"""
from __future__ import annotations

from typing import NamedTuple

from . import cache  # noqa: F401  (first: keys numba's disk cache on all of this package's sources)

import numpy as np
from numba import njit

from ..checks import check_mix_args
from .blend_math import (PIXEL_BLEND, PIXEL_KEEP, PIXEL_TAKE, blend_and_take, blend_into, blend_pair, copy,
                         select_from_mask, select_pair_from_masks, swap_ranges)
from .dtypes import acc_weights
from .memory import check_cpu, flat_view, mask_planes, prefetch_for_read
from .parallel import run_split, threads
from .plan import APPLY, APPLY_FROM_BUFFER, BLEND, MASK, NO_SAMPLE, PAIR, PASTE, RESIZE_NEAREST, SAVE, inplace_plan
from .resize_numba import resize_box_row, resize_taps, resizes

NOT_UNIFORM = np.int64(-1)  # uniform_on_row: the op changes along the row


# -- dense layout ----------------------------------------------------------------------------------


class DenseLayout(NamedTuple):
    """The batch to mix in place, described for the dense path (mix_cpu.cpp's DenseLayout, field
    for field; mix_kernels.cuh's on CUDA): samples whose elements fill one block of memory in the
    same order, ``batch_stride`` apart. Blending is elementwise over [0, numel); for pasting
    (``paste_ok``), element e lies in row ``e // row_len``, at image row ``(e // row_len) % height``
    and column ``(e % row_len) // col_unit`` (col_unit: 1 for NCHW, C for channels_last); ``width``
    (W) is a mask plane's row length."""

    numel: int
    batch_stride: int
    paste_ok: bool
    row_len: int
    col_unit: int
    height: int
    width: int


def describe_dense(shape, strides):
    """The DenseLayout of a batch of this shape and these strides, or None when its samples do not
    each fill one block of memory in the same order (mix_cpu.cpp's describe_dense)."""
    ndim = len(shape)
    dims = sorted((strides[d], shape[d]) for d in range(1, ndim) if shape[d] > 1)
    numel = int(np.prod(shape[1:], dtype=np.int64))
    expected = 1
    for stride, size in dims:
        if stride != expected:
            return None
        expected *= size
    if shape[0] > 1 and strides[0] < numel:  # samples interleave
        return None
    row_len, col_unit, height, width, paste_ok = 1, 1, 1, 1, False
    if ndim >= 3:
        h, w, sh, sw = shape[-2], shape[-1], strides[-2], strides[-1]
        # Dims stored inside a pixel (channels for channels_last) make up col_unit.
        for d in range(1, ndim - 2):
            if shape[d] > 1 and strides[d] < sw:
                col_unit *= shape[d]
        if h > 1 and w > 1 and sw == col_unit and sh == w * col_unit:
            row_len, height, width, paste_ok = w * col_unit, h, w, True
        else:
            col_unit = 1
    return DenseLayout(numel, strides[0], paste_ok, row_len, col_unit, height, width)


@njit(nogil=True, cache=True)
def paste_cols(kind, box, i, col_unit, h):
    """Columns [lo, hi) of an image row (in elements from the row start) that sample i takes."""
    if kind[i] != PASTE or h < box[i, 0] or h >= box[i, 1]:
        return 0, 0
    return box[i, 2] * col_unit, box[i, 3] * col_unit


@njit(nogil=True, cache=True)
def uniform_on_row(kind, box, i, col_unit, row_len, h):
    """What sample i does along the whole of row h (a PIXEL_* op), or NOT_UNIFORM when that changes
    along the row (mix_cpu.cpp's uniform_on_row)."""
    if kind[i] == BLEND:
        return PIXEL_BLEND
    lo, hi = paste_cols(kind, box, i, col_unit, h)
    if lo >= hi:
        return PIXEL_KEEP
    if lo <= 0 and hi >= row_len:
        return PIXEL_TAKE
    return NOT_UNIFORM


NO_ROW = np.int64(2**62)
ROWS_AHEAD = np.int64(4)  # as mix_cpu.cpp's prefetch_ahead


@njit(nogil=True, cache=True)
def prefetch_span(x, lo, hi):
    """Ask for elements [lo, hi) of x (mix_cpu.cpp's prefetch_span)."""
    for k in range(lo, hi, max(1, 64 // x.itemsize)):
        prefetch_for_read(x, k)
    prefetch_for_read(x, hi - 1)


@njit(nogil=True, cache=True)
def prefetch_ahead(x, lo, hi, row_len):
    """Ask for elements [lo, hi) of the row ROWS_AHEAD rows further on (a paste's next box rows):
    short row segments are too little for the hardware prefetchers (mix_cpu.cpp)."""
    ahead = ROWS_AHEAD * row_len
    if hi + ahead > x.shape[0]:
        return
    prefetch_span(x, lo + ahead, hi + ahead)


@njit(nogil=True, cache=True)
def next_touched_row(row, height, kind, box, ia, ib):
    """The first row at or after ``row`` that sample ia or ib changes: ``row`` when one blends,
    else the next row in a non-empty paste box, NO_ROW when none (csrc/cpu/mix_cpu.cpp's
    next_touched_row): a paste costs its box's rows, not a walk over every row."""
    best = NO_ROW
    h = row % height
    image_start = row - h
    for i in (ia, ib):
        if kind[i] == BLEND:
            return row
        if kind[i] != PASTE or box[i, 0] >= box[i, 1] or box[i, 2] >= box[i, 3]:
            continue
        y0, y1 = box[i, 0], box[i, 1]
        nxt = image_start + max(h, y0) if h < y1 else image_start + height + y0
        if nxt < best:
            best = nxt
    return best


@njit(nogil=True, cache=True)
def select_dense(dst, src, i, layout, e0, e1, mask, mask_stride):
    """A MASK sample i over elements [e0, e1) (dst and src start at e0), an image plane (height
    rows, each channel's for NCHW, all channels' for channels_last) at a time: element e of a plane
    is pixel e // col_unit of the mask plane, so a plane is one loop."""
    plane = layout.height * layout.row_len
    pos = e0
    while pos < e1:
        start = pos - pos % plane
        end = min(e1, start + plane)
        select_from_mask(dst, src, pos - e0, end - e0, mask, i * mask_stride, layout.col_unit, pos - start)
        pos = end


@njit(nogil=True, cache=True)
def apply_dense(dst, src, i, lam, kind, box, layout, e0, e1, mask, mask_stride):
    """Sample i over elements [e0, e1): dst <- mix(dst, src), src holding the partner's originals."""
    row_len, col_unit, height = layout.row_len, layout.col_unit, layout.height
    if kind[i] == BLEND:
        own, rest = acc_weights(dst, lam[i])
        blend_into(dst, src, 0, dst.shape[0], own, rest)
        return
    if kind[i] == MASK:
        select_dense(dst, src, i, layout, e0, e1, mask, mask_stride)
        return
    row = next_touched_row(e0 // row_len, height, kind, box, i, i)
    last_row = (e1 + row_len - 1) // row_len
    while row < last_row:  # (not row * row_len < e1: NO_ROW * row_len would overflow)
        lo_col, hi_col = paste_cols(kind, box, i, col_unit, row % height)
        lo = max(row * row_len + lo_col, e0)
        hi = min(row * row_len + hi_col, e1)
        if lo < hi:
            prefetch_ahead(dst, lo - e0, hi - e0, row_len)
            prefetch_ahead(src, lo - e0, hi - e0, row_len)
            copy(dst, src, lo - e0, hi - e0)
        row = next_touched_row(row + 1, height, kind, box, i, i)


@njit(nogil=True, cache=True)
def pair_segment(a, b, lo, hi, op_a, op_b, lam_a, rest_a, lam_b, rest_b):
    """Both samples of a swapped pair over elements [lo, hi), where each does one thing."""
    if op_a == PIXEL_BLEND and op_b == PIXEL_BLEND:
        blend_pair(a, b, lo, hi, lam_a, rest_a, lam_b, rest_b)
    elif op_a == PIXEL_BLEND and op_b == PIXEL_TAKE:
        blend_and_take(a, b, lo, hi, lam_a, rest_a)
    elif op_a == PIXEL_TAKE and op_b == PIXEL_BLEND:
        blend_and_take(b, a, lo, hi, lam_b, rest_b)
    elif op_a == PIXEL_BLEND:
        blend_into(a, b, lo, hi, lam_a, rest_a)
    elif op_b == PIXEL_BLEND:
        blend_into(b, a, lo, hi, lam_b, rest_b)
    elif op_a == PIXEL_TAKE and op_b == PIXEL_TAKE:
        swap_ranges(a, b, lo, hi)
    elif op_a == PIXEL_TAKE:
        copy(a, b, lo, hi)
    elif op_b == PIXEL_TAKE:
        copy(b, a, lo, hi)


@njit(nogil=True, cache=True)
def pair_with_mask(a, b, ia, ib, lam, kind, box, layout, e0, e1, mask, mask_stride):
    """A swapped pair of which one side masks or both do, over elements [e0, e1), a row at a time:
    a's row saved (in L1), a mixed from b's original row, b from the saved one (mix_cpu.cpp's
    pair_with_mask): each sample read and written once from memory. Both masking: one select loop
    per image plane, from one read of each."""
    if kind[ia] == MASK and kind[ib] == MASK:
        plane = layout.height * layout.row_len
        pos = e0
        while pos < e1:
            start = pos - pos % plane
            end = min(e1, start + plane)
            select_pair_from_masks(a, b, pos - e0, end - e0, mask, ia * mask_stride, ib * mask_stride,
                                   layout.col_unit, pos - start)
            pos = end
        return
    row_len = layout.row_len
    saved = np.empty(min(row_len, e1 - e0), dtype=a.dtype)
    pos = e0
    while pos < e1:
        end = min(e1, (pos // row_len + 1) * row_len)
        lo, hi = pos - e0, end - e0
        piece_a, piece_b = a[lo:hi], b[lo:hi]
        copy(saved, piece_a, 0, hi - lo)
        apply_dense(piece_a, piece_b, ia, lam, kind, box, layout, pos, end, mask, mask_stride)
        apply_dense(piece_b, saved[: hi - lo], ib, lam, kind, box, layout, pos, end, mask, mask_stride)
        pos = end


@njit(nogil=True, cache=True)
def pair_dense(a, b, ia, ib, lam, kind, box, layout, e0, e1, mask, mask_stride):
    """A swapped pair (a 2-cycle) over elements [e0, e1), reading and writing each sample once.

    Runs of rows where both samples do one thing are one call; rows a box crosses are split at
    the boxes' columns."""
    if kind[ia] == MASK or kind[ib] == MASK:
        pair_with_mask(a, b, ia, ib, lam, kind, box, layout, e0, e1, mask, mask_stride)
        return
    row_len, col_unit, height = layout.row_len, layout.col_unit, layout.height
    lam_a, rest_a = acc_weights(a, lam[ia])
    lam_b, rest_b = acc_weights(b, lam[ib])
    if kind[ia] == BLEND and kind[ib] == BLEND:
        blend_pair(a, b, 0, a.shape[0], lam_a, rest_a, lam_b, rest_b)
        return
    # A paste's short segments are prefetched a few rows ahead. A row that a sample blends is read
    # whole, which the hardware prefetchers follow on their own (asking cost more than it saved).
    prefetch_boxes = kind[ia] != BLEND and kind[ib] != BLEND
    last_row = (e1 + row_len - 1) // row_len
    pos = e0
    while pos < e1:
        touched = next_touched_row(pos // row_len, height, kind, box, ia, ib)
        if touched >= last_row:
            break
        if touched > pos // row_len:
            pos = touched * row_len
        row = pos // row_len
        row_start = row * row_len
        h = row % height
        op_a = uniform_on_row(kind, box, ia, col_unit, row_len, h)
        op_b = uniform_on_row(kind, box, ib, col_unit, row_len, h)
        if op_a >= 0 and op_b >= 0:  # uniform rows: extend over the following rows that match
            end = min(row_start + row_len, e1)
            nxt = row + 1
            while end < e1:
                hn = nxt % height
                if uniform_on_row(kind, box, ia, col_unit, row_len, hn) != op_a:
                    break
                if uniform_on_row(kind, box, ib, col_unit, row_len, hn) != op_b:
                    break
                end = min(end + row_len, e1)
                nxt += 1
            if op_a != PIXEL_KEEP or op_b != PIXEL_KEEP:
                pair_segment(a, b, pos - e0, end - e0, op_a, op_b, lam_a, rest_a, lam_b, rest_b)
            pos = end
            continue
        a_lo, a_hi = paste_cols(kind, box, ia, col_unit, h)
        b_lo, b_hi = paste_cols(kind, box, ib, col_unit, h)
        for lo, hi in ((a_lo, a_hi), (b_lo, b_hi)):
            if lo < hi and prefetch_boxes:
                prefetch_ahead(a, row_start + lo - e0, row_start + hi - e0, row_len)
                prefetch_ahead(b, row_start + lo - e0, row_start + hi - e0, row_len)
        col = pos - row_start
        row_end = min(row_start + row_len, e1) - row_start
        while col < row_end:  # pieces between consecutive box edges
            nxt_col = row_end
            if col < a_lo < nxt_col:
                nxt_col = a_lo
            if col < a_hi < nxt_col:
                nxt_col = a_hi
            if col < b_lo < nxt_col:
                nxt_col = b_lo
            if col < b_hi < nxt_col:
                nxt_col = b_hi
            pa = PIXEL_BLEND if kind[ia] == BLEND else (PIXEL_TAKE if a_lo <= col < a_hi else PIXEL_KEEP)
            pb = PIXEL_BLEND if kind[ib] == BLEND else (PIXEL_TAKE if b_lo <= col < b_hi else PIXEL_KEEP)
            if pa != PIXEL_KEEP or pb != PIXEL_KEEP:
                pair_segment(a, b, row_start + col - e0, row_start + nxt_col - e0, pa, pb, lam_a, rest_a, lam_b,
                             rest_b)
            col = nxt_col
        pos = row_start + row_end


@njit(nogil=True, cache=True)
def blend_pairs(data, pairs, lam, layout, s0, s1):
    """Swapped pairs [s0, s1) of ``pairs`` (plan rows) that both blend, over whole samples."""
    numel, stride = layout.numel, layout.batch_stride
    for s in range(s0, s1):
        ia, ib = pairs[s, 1], pairs[s, 2]
        a = data[ia * stride : ia * stride + numel]
        b = data[ib * stride : ib * stride + numel]
        lam_a, rest_a = acc_weights(a, lam[ia])
        lam_b, rest_b = acc_weights(b, lam[ib])
        blend_pair(a, b, 0, numel, lam_a, rest_a, lam_b, rest_b)


@njit(nogil=True, cache=True)
def next_box_row(base, y, y0, y1, height):
    """The box row after row ``base + y`` (as (base, y)): the next one down, or the box's first in
    the next plane; a count, not a division per row (mix_cpu.cpp's BoxRowWalk)."""
    y += 1
    if y == y1:
        return base + height, y0
    return base, y


@njit(nogil=True, cache=True)
def swap_box_pairs(data, pairs, box, layout, s0, s1):
    """Swapped pairs [s0, s1) that paste the same box on both sides (batch and pair modes): the
    box's rows swapped plane after plane, each after prefetching the row ROWS_AHEAD steps further
    on in that walk."""
    numel, stride = layout.numel, layout.batch_stride
    row_len, col_unit, height = layout.row_len, layout.col_unit, layout.height
    last_row = numel // row_len
    for s in range(s0, s1):
        ia, ib = pairs[s, 1], pairs[s, 2]
        y0, y1 = box[ia, 0], box[ia, 1]
        lo_col, hi_col = box[ia, 2] * col_unit, box[ia, 3] * col_unit
        if y0 >= y1 or lo_col >= hi_col:  # nothing to swap (and y would never meet y1)
            continue
        a = data[ia * stride : ia * stride + numel]
        b = data[ib * stride : ib * stride + numel]
        base, y = 0, y0  # the row being swapped is base + y
        ahead_base, ahead_y = 0, y0  # the row being prefetched
        for _ in range(ROWS_AHEAD):
            ahead_base, ahead_y = next_box_row(ahead_base, ahead_y, y0, y1, height)
        while base + y < last_row:
            ahead = ahead_base + ahead_y
            if ahead < last_row:
                prefetch_span(a, ahead * row_len + lo_col, ahead * row_len + hi_col)
                prefetch_span(b, ahead * row_len + lo_col, ahead * row_len + hi_col)
            row = base + y
            swap_ranges(a, b, row * row_len + lo_col, row * row_len + hi_col)
            base, y = next_box_row(base, y, y0, y1, height)
            ahead_base, ahead_y = next_box_row(ahead_base, ahead_y, y0, y1, height)


@njit(nogil=True, cache=True)
def paste_pairs(data, pairs, box, layout, s0, s1):
    """Swapped pairs [s0, s1) that both paste, each its own box (elem and pair modes' CutMix): in
    each plane, the rows either box covers, as at most five pieces a row: the columns both boxes
    cover swapped, a's other box columns from b and b's from a (each reads the other outside the
    other's box, where it is still original). Per row, not per piece between box edges as
    pair_dense walks them: numba's per-piece cost was most of a small row's (uint8 masks as bytes)."""
    numel, stride = layout.numel, layout.batch_stride
    row_len, col_unit, height = layout.row_len, layout.col_unit, layout.height
    num_rows = numel // row_len
    for s in range(s0, s1):
        ia, ib = pairs[s, 1], pairs[s, 2]
        a = data[ia * stride : ia * stride + numel]
        b = data[ib * stride : ib * stride + numel]
        ay0, ay1, ax0, ax1 = box[ia, 0], box[ia, 1], box[ia, 2] * col_unit, box[ia, 3] * col_unit
        by0, by1, bx0, bx1 = box[ib, 0], box[ib, 1], box[ib, 2] * col_unit, box[ib, 3] * col_unit
        if ax0 >= ax1:
            ay1 = ay0  # an empty box covers no row
        if bx0 >= bx1:
            by1 = by0
        if ay0 >= ay1 and by0 >= by1:
            continue
        y_lo = min(ay0, by0) if ay0 < ay1 and by0 < by1 else (ay0 if ay0 < ay1 else by0)
        y_hi = max(ay1, by1) if ay0 < ay1 and by0 < by1 else (ay1 if ay0 < ay1 else by1)
        both_lo, both_hi = max(ax0, bx0), min(ax1, bx1)
        any_lo = min(ax0 if ay0 < ay1 else bx0, bx0 if by0 < by1 else ax0)
        any_hi = max(ax1 if ay0 < ay1 else bx1, bx1 if by0 < by1 else ax1)
        for base in range(0, num_rows, height):
            for y in range(y_lo, y_hi):
                start = (base + y) * row_len
                if y + ROWS_AHEAD < y_hi:  # short row segments: too little for the hardware prefetchers
                    ahead = start + ROWS_AHEAD * row_len
                    prefetch_span(a, ahead + any_lo, ahead + any_hi)
                    prefetch_span(b, ahead + any_lo, ahead + any_hi)
                in_a = ay0 <= y < ay1
                in_b = by0 <= y < by1
                if in_a and in_b and both_lo < both_hi:
                    swap_ranges(a, b, start + both_lo, start + both_hi)
                    copy(a, b, start + ax0, start + both_lo)  # (empty where a's box starts inside b's)
                    copy(a, b, start + both_hi, start + ax1)
                    copy(b, a, start + bx0, start + both_lo)
                    copy(b, a, start + both_hi, start + bx1)
                else:
                    if in_a:
                        copy(a, b, start + ax0, start + ax1)
                    if in_b:
                        copy(b, a, start + bx0, start + bx1)


@njit(nogil=True, cache=True)
def dense_pairs(data, pairs, lam, kind, box, layout, mask, mask_stride, s0, s1):
    """Any other swapped pairs [s0, s1) of ``pairs`` (plan rows) over whole samples."""
    numel, stride = layout.numel, layout.batch_stride
    for s in range(s0, s1):
        ia, ib = pairs[s, 1], pairs[s, 2]
        pair_dense(data[ia * stride : ia * stride + numel], data[ib * stride : ib * stride + numel], ia, ib, lam,
                   kind, box, layout, 0, numel, mask, mask_stride)


@njit(nogil=True, cache=True)
def dense_chunk(data, plan, lam, kind, box, layout, e0, e1, buf, mask, mask_stride):
    """Every plan step over elements [e0, e1) of each sample."""
    stride = layout.batch_stride
    n = e1 - e0
    for s in range(plan.shape[0]):
        op, ia, ib = plan[s, 0], plan[s, 1], plan[s, 2]
        a = data[ia * stride + e0 : ia * stride + e1]
        if op == SAVE:
            copy(buf, a, 0, n)
        elif op == APPLY:
            apply_dense(a, data[ib * stride + e0 : ib * stride + e1], ia, lam, kind, box, layout, e0, e1, mask,
                        mask_stride)
        elif op == APPLY_FROM_BUFFER:
            apply_dense(a, buf[:n], ia, lam, kind, box, layout, e0, e1, mask, mask_stride)
        else:
            pair_dense(a, data[ib * stride + e0 : ib * stride + e1], ia, ib, lam, kind, box, layout, e0, e1, mask,
                       mask_stride)


@njit(nogil=True, cache=True)
def dense_chunks(data, plan, lam, kind, box, layout, mask, mask_stride, chunk, buffered, c0, c1):
    """Chunks [c0, c1) of `chunk` elements of every sample, each through the whole plan."""
    numel = layout.numel
    buf = np.empty(chunk if buffered else 0, dtype=data.dtype)
    for c in range(c0, c1):
        e0 = c * chunk
        dense_chunk(data, plan, lam, kind, box, layout, e0, min(numel, e0 + chunk), buf, mask, mask_stride)


# -- any other layout ------------------------------------------------------------------------------

INNER_IS_W, INNER_IS_H, INNER_OTHER = np.int64(0), np.int64(1), np.int64(2)


class StridedLayout(NamedTuple):
    """Any other layout, for the generic path (mix_cpu.cpp's StridedLayout, as these kernels take
    it; mix_kernels.cuh's on CUDA): rows along the sample's smallest-stride dim, ``inner_len``
    elements ``inner_stride`` apart, each row located by locate_rows (describe_strided)."""

    batch_stride: int
    inner_stride: int  # 1 when no dim but the batch's has size > 1
    inner_is: int  # which image dim the rows run along: INNER_IS_W, INNER_IS_H or INNER_OTHER
    inner_len: int
    width: int  # W (1 for images without H, W dims): a mask plane's row length


@njit(nogil=True, cache=True)
def locate_rows(sizes, strides, outer_dims, rows):
    """(offset, h, w) of each row's first element within its sample (outer_dims outermost first)."""
    ndim = sizes.shape[0]
    out = np.zeros((rows, 3), dtype=np.int64)
    for r in range(rows):
        rest = r
        for k in range(outer_dims.shape[0] - 1, -1, -1):
            d = outer_dims[k]
            idx = rest % sizes[d]
            rest //= sizes[d]
            out[r, 0] += idx * strides[d]
            if d == ndim - 2:
                out[r, 1] = idx
            if d == ndim - 1:
                out[r, 2] = idx
    return out


def describe_strided(shape, strides):
    """The StridedLayout of a batch of this shape and these strides, and the (offset, h, w) of each
    row's first element within its sample (mix_cpu.cpp's describe_strided and locate_row)."""
    ndim = len(shape)
    inner_dim = -1
    for d in range(1, ndim):
        if shape[d] > 1 and (inner_dim < 0 or strides[d] < strides[inner_dim]):
            inner_dim = d
    outer_dims = sorted((d for d in range(1, ndim) if d != inner_dim and shape[d] > 1), key=lambda d: -strides[d])
    num_rows = int(np.prod([shape[d] for d in outer_dims], dtype=np.int64))
    rows = locate_rows(np.asarray(shape, dtype=np.int64), np.asarray(strides, dtype=np.int64),
                       np.asarray(outer_dims, dtype=np.int64), num_rows)
    inner_is = INNER_IS_W if inner_dim == ndim - 1 else INNER_IS_H if inner_dim == ndim - 2 else INNER_OTHER
    inner_stride, inner_len = (strides[inner_dim], shape[inner_dim]) if inner_dim > 0 else (1, 1)
    width = shape[-1] if ndim >= 3 else 1
    return StridedLayout(strides[0], inner_stride, inner_is, inner_len, width), rows


@njit(nogil=True, cache=True)
def box_span_on_row(box, i, h, w, inner_is, inner_len):
    """Positions [lo, hi) along a row whose pixel lies inside sample i's box."""
    y0, y1, x0, x1 = box[i, 0], box[i, 1], box[i, 2], box[i, 3]
    if inner_is == INNER_IS_W:
        if h < y0 or h >= y1:
            return 0, 0
        return max(x0, 0), min(x1, inner_len)
    if inner_is == INNER_IS_H:
        if w < x0 or w >= x1:
            return 0, 0
        return max(y0, 0), min(y1, inner_len)
    if y0 <= h < y1 and x0 <= w < x1:
        return 0, inner_len
    return 0, 0


@njit(nogil=True, cache=True)
def strided_row(data, base, step, length):
    """Elements base, base + step, ... (length of them) as an array view."""
    return data[base : base + (length - 1) * step + 1 : step]


@njit(nogil=True, cache=True)
def strided_save(data, rows, r0, r1, i, layout, buf):
    batch_stride, step, inner_len = layout.batch_stride, layout.inner_stride, layout.inner_len
    for r in range(r0, r1):
        src = strided_row(data, i * batch_stride + rows[r, 0], step, inner_len)
        copy(buf[(r - r0) * inner_len : (r - r0 + 1) * inner_len], src, 0, inner_len)


@njit(nogil=True, cache=True)
def strided_apply(data, rows, r0, r1, i, j, lam, kind, box, layout, buf, mask, mask_stride):
    """x[i] <- mix(x[i], x[j]) over rows [r0, r1), or mix(x[i], buffer) when j < 0."""
    batch_stride, step, inner_len, width = layout.batch_stride, layout.inner_stride, layout.inner_len, layout.width
    # a row's pixels: along W, along H, or one pixel (the row runs along another dim)
    mask_step = 1 if layout.inner_is == INNER_IS_W else (width if layout.inner_is == INNER_IS_H else 0)
    own, rest = acc_weights(data, lam[i])
    for r in range(r0, r1):
        dst = strided_row(data, i * batch_stride + rows[r, 0], step, inner_len)
        if j >= 0:
            src = strided_row(data, j * batch_stride + rows[r, 0], step, inner_len)
        else:  # the partner's original, saved packed in the buffer
            src = buf[(r - r0) * inner_len : (r - r0 + 1) * inner_len]
        if kind[i] == BLEND:
            blend_into(dst, src, 0, inner_len, own, rest)
        elif kind[i] == MASK:
            first = i * mask_stride + rows[r, 1] * width + rows[r, 2]
            for k in range(inner_len):
                if mask[first + k * mask_step]:
                    dst[k] = src[k]
        else:
            lo, hi = box_span_on_row(box, i, rows[r, 1], rows[r, 2], layout.inner_is, inner_len)
            if lo < hi:
                copy(dst, src, lo, hi)


@njit(nogil=True, cache=True)
def strided_chunk(data, plan, lam, kind, box, rows, layout, r0, r1, buf, mask, mask_stride):
    for s in range(plan.shape[0]):
        op, ia, ib = plan[s, 0], plan[s, 1], plan[s, 2]
        if op == SAVE:
            strided_save(data, rows, r0, r1, ia, layout, buf)
        elif op == APPLY:
            strided_apply(data, rows, r0, r1, ia, ib, lam, kind, box, layout, buf, mask, mask_stride)
        elif op == APPLY_FROM_BUFFER:
            strided_apply(data, rows, r0, r1, ia, NO_SAMPLE, lam, kind, box, layout, buf, mask, mask_stride)
        else:  # rare layouts: a pair is a 2-cycle through the buffer
            strided_save(data, rows, r0, r1, ia, layout, buf)
            strided_apply(data, rows, r0, r1, ia, ib, lam, kind, box, layout, buf, mask, mask_stride)
            strided_apply(data, rows, r0, r1, ib, NO_SAMPLE, lam, kind, box, layout, buf, mask, mask_stride)


@njit(nogil=True, cache=True)
def strided_chunks(data, plan, lam, kind, box, rows, layout, mask, mask_stride, rows_per_chunk, c0, c1):
    """Chunks [c0, c1) of `rows_per_chunk` rows of every sample, each through the whole plan."""
    total = rows.shape[0]
    buf = np.empty(rows_per_chunk * layout.inner_len, dtype=data.dtype)
    for c in range(c0, c1):
        r0 = c * rows_per_chunk
        strided_chunk(data, plan, lam, kind, box, rows, layout, r0, min(total, r0 + rows_per_chunk), buf, mask,
                      mask_stride)


# -- resizes (RESIZE, RESIZE_NEAREST): the plan a step at a time (mix_cpu.cpp's) ---------------------
#
# A resize reads its whole partner, so the chunks above, which walk every step for one range of
# positions, cannot run it. When a batch has one, each step runs over whole samples in the plan's
# order, the other kinds' steps as the dense loops run them. Extra memory: one sample (a cycle's
# saved first sample) and one box (a swapped pair whose side resizes: its box is made from the
# other side's original before that side is written). A plan of swapped pairs only (a flip: batch
# and pair modes) splits over threads by pairs; any other plan walks on one thread.


@njit(nogil=True, cache=True)
def resize_box(src, src_at, channels, source, rows, cols, nearest, dst, dst_channels, dst_row_step, dst_col_step):
    """The image at src_at in src resized to rows x cols, written to dst: channel c's row r from
    dst[dst_channels[c] + r * dst_row_step], columns dst_col_step apart (mix_cpu.cpp's resize_box
    and BoxDestination). channels: offset of each channel's (0, 0) pixel; source: (H, W, row
    stride, col stride)."""
    if rows <= 0 or cols <= 0:
        return
    height, width, row_stride, col_stride = source
    taps = resize_taps(dst, height, width, col_stride, rows, cols, nearest)
    for c in range(channels.shape[0]):
        for r in range(rows):
            resize_box_row(src, src_at + channels[c], row_stride, taps, nearest, r, dst,
                           dst_channels[c] + r * dst_row_step, dst_col_step)


@njit(nogil=True, cache=True)
def resize_into_box(data, i, src, src_at, channels, source, kind, box, stride):
    """Sample i's box (its sample at i * stride in data) <- the image at src_at in src resized."""
    y0, y1, x0, x1 = box[i, 0], box[i, 1], box[i, 2], box[i, 3]
    _, _, row_stride, col_stride = source
    corner = i * stride + channels + y0 * row_stride + x0 * col_stride
    resize_box(src, src_at, channels, source, y1 - y0, x1 - x0, kind[i] == RESIZE_NEAREST, data, corner, row_stride,
               col_stride)


@njit(nogil=True, cache=True)
def resize_steps(data, plan, lam, kind, box, layout, channels, source, mask, mask_stride, saved, s0, s1):
    """Steps [s0, s1) of a plan with resizes, each over whole samples (saved: one sample, for a
    cycle's first)."""
    stride, numel = layout.batch_stride, layout.numel
    row_stride, col_stride = source[2], source[3]
    for s in range(s0, s1):
        op, ia, ib = plan[s, 0], plan[s, 1], plan[s, 2]
        a = data[ia * stride : ia * stride + numel]
        if op == SAVE:
            copy(saved, a, 0, numel)
        elif op == APPLY or op == APPLY_FROM_BUFFER:
            src, src_at = (data, ib * stride) if op == APPLY else (saved, np.int64(0))
            if resizes(kind[ia]):
                resize_into_box(data, ia, src, src_at, channels, source, kind, box, stride)
            else:
                apply_dense(a, src[src_at : src_at + numel], ia, lam, kind, box, layout, 0, numel, mask, mask_stride)
        elif not resizes(kind[ia]) and not resizes(kind[ib]):
            pair_dense(a, data[ib * stride : ib * stride + numel], ia, ib, lam, kind, box, layout, 0, numel, mask,
                       mask_stride)
        else:
            # The resizing side r takes its box from o's original, kept in `held` until o is written.
            r, o = (ia, ib) if resizes(kind[ia]) else (ib, ia)
            y0, y1, x0, x1 = box[r, 0], box[r, 1], box[r, 2], box[r, 3]
            rows, cols = max(0, y1 - y0), max(0, x1 - x0)
            held = np.empty(channels.shape[0] * rows * cols, dtype=data.dtype)
            held_channels = np.arange(channels.shape[0], dtype=np.int64) * (rows * cols)
            resize_box(data, o * stride, channels, source, rows, cols, kind[r] == RESIZE_NEAREST, held, held_channels,
                       cols, 1)
            if resizes(kind[o]):
                resize_into_box(data, o, data, r * stride, channels, source, kind, box, stride)
            else:
                apply_dense(data[o * stride : o * stride + numel], data[r * stride : r * stride + numel], o, lam, kind,
                            box, layout, 0, numel, mask, mask_stride)
            for c in range(channels.shape[0]):
                for q in range(rows):
                    at = r * stride + channels[c] + (y0 + q) * row_stride + x0 * col_stride
                    for k in range(cols):
                        data[at + k * col_stride] = held[(c * rows + q) * cols + k]


def image_geometry(shape, strides):
    """(channels, source) of mix_cpu.cpp's ImageGeometry: the offset of each channel's (0, 0)
    pixel (every index of the dims between B and H), and (H, W, row stride, col stride)."""
    channels = np.zeros(1, dtype=np.int64)
    for size, stride in zip(shape[1:-2], strides[1:-2]):
        channels = (channels[None, :] + np.arange(size, dtype=np.int64)[:, None] * stride).reshape(-1)
    source = (np.int64(shape[-2]), np.int64(shape[-1]), np.int64(strides[-2]), np.int64(strides[-1]))
    return channels, source


def mix_inplace_by_sample(data, layout, shape, strides, plan, lam, kind, box, mask, mask_stride, threads):
    """A plan with resizes over a dense batch whose layout has rows (paste_ok)."""
    channels, source = image_geometry(shape, strides)
    if np.all(plan[:, 0] == PAIR):
        run_split(lambda s0, s1: resize_steps(data, plan, lam, kind, box, layout, channels, source, mask, mask_stride,
                                              np.empty(0, dtype=data.dtype), s0, s1), plan.shape[0], threads)
        return
    saved = np.empty(layout.numel, dtype=data.dtype)
    resize_steps(data, plan, lam, kind, box, layout, channels, source, mask, mask_stride, saved, 0, plan.shape[0])


# -- the entry point -------------------------------------------------------------------------------

MAX_CHUNK_BYTES = 128 * 1024  # a plan step streams one chunk of one or two samples: in L2
MIN_CHUNK_BYTES = 16 * 1024
STRIDED_CHUNK_BYTES = 32 * 1024


def mix_(images, partner, lam, kind, box, plan=None, plan_shape=(), pixel_mask=None):
    """torch.ops.fastmix.mix_ on numba: check, then mix ``images`` (B, ...) in place (``plan``, the
    CUDA kernels', is checked and ignored: the chunks walk the CPU kernels' plan)."""
    check_mix_args(images, partner, lam, kind, box, plan, plan_shape, pixel_mask)
    check_cpu(images, "images")
    if images.numel() == 0:
        return
    arrays = [t.detach().contiguous().numpy() for t in (partner, lam, kind, box)]
    changed = (arrays[2] != 0) & (arrays[0] != np.arange(arrays[0].shape[0]))
    if bool(np.any(changed & ((arrays[2] == 4) | (arrays[2] == 5)))):
        _mix_with_resizes(images, arrays, pixel_mask)
        return
    mix_inplace(flat_view(images), tuple(images.shape), tuple(images.stride()), *arrays, *mask_planes(pixel_mask),
                threads())


def _mix_with_resizes(images, arrays, pixel_mask):
    """A batch with resizes: by sample over a dense layout with rows, else in a contiguous copy
    (whose rows are known whatever its sizes)."""
    partner, lam, kind, box = arrays
    plan = inplace_plan(partner, kind)
    shape, strides = tuple(images.shape), tuple(images.stride())
    layout = describe_dense(shape, strides)
    target = images
    if layout is None or not layout.paste_ok:
        target = images.contiguous()
        numel = int(np.prod(shape[1:]))
        height, width = shape[-2], shape[-1]
        layout = DenseLayout(numel, numel, True, width, 1, height, width)
    mix_inplace_by_sample(flat_view(target), layout, shape, tuple(target.stride()), plan, lam, kind, box,
                          *mask_planes(pixel_mask), threads())
    if target is not images:
        images.copy_(target)


def mix_inplace(data, shape, strides, partner, lam, kind, box, mask, mask_stride, threads):
    """Apply checked params in place (mix_cpu.cpp's mix_inplace). data: flat_view of the images;
    shape/strides: theirs; mask, mask_stride: mask_planes of the pixel_mask."""
    plan = inplace_plan(partner, kind)
    if plan.shape[0] == 0:
        return
    # a paste or a mask needs rows and columns: the dense path takes them only where it has them
    any_paste = bool(np.any(((kind == PASTE) | (kind == MASK)) & (partner != np.arange(len(partner)))))
    buffered = bool(np.any(plan[:, 0] == SAVE))
    itemsize = data.itemsize
    layout = describe_dense(shape, strides)
    if layout is not None and (not any_paste or layout.paste_ok):
        numel, row_len = layout.numel, layout.row_len
        per_thread = numel * itemsize // (4 * threads)
        chunk = max(1, min(max(per_thread, MIN_CHUNK_BYTES), MAX_CHUNK_BYTES) // itemsize)
        if row_len <= chunk:  # whole rows per chunk, so a paste rarely splits a row
            chunk = (chunk // row_len) * row_len
        chunk = min(chunk, numel)
        # Swapped pairs run last over whole samples, all of them when there are enough to keep
        # the threads busy, else those that only paste (as in mix_cpu.cpp: safe, since the
        # plan's trees come first and a pair shares no sample with another step).
        pairs = plan[:, 0] == PAIR
        if np.count_nonzero(pairs) >= 2 * threads:
            whole = pairs
        else:
            whole = pairs & (kind[plan[:, 1]] != BLEND) & (kind[plan[:, 2]] != BLEND)
        chunked, whole_pairs = plan[~whole], plan[whole]
        if chunked.shape[0]:
            run_split(lambda c0, c1: dense_chunks(data, chunked, lam, kind, box, layout, mask, mask_stride, chunk,
                                                  buffered, c0, c1),
                      (numel + chunk - 1) // chunk, threads)
        # Each kind of pair its own small kernel, so that a first call compiles only what it runs.
        a, b = whole_pairs[:, 1], whole_pairs[:, 2]
        blends = (kind[a] == BLEND) & (kind[b] == BLEND)
        pastes = (kind[a] == PASTE) & (kind[b] == PASTE)
        same_box = pastes & np.all(box[a] == box[b], axis=1)
        own_boxes = pastes & ~same_box
        blending, swapping, pasting = whole_pairs[blends], whole_pairs[same_box], whole_pairs[own_boxes]
        others = whole_pairs[~blends & ~pastes]
        if blending.shape[0]:
            run_split(lambda s0, s1: blend_pairs(data, blending, lam, layout, s0, s1), blending.shape[0], threads)
        if swapping.shape[0]:
            run_split(lambda s0, s1: swap_box_pairs(data, swapping, box, layout, s0, s1),
                      swapping.shape[0], threads)
        if pasting.shape[0]:
            run_split(lambda s0, s1: paste_pairs(data, pasting, box, layout, s0, s1), pasting.shape[0], threads)
        if others.shape[0]:
            run_split(lambda s0, s1: dense_pairs(data, others, lam, kind, box, layout, mask, mask_stride, s0, s1),
                      others.shape[0], threads)
        return
    layout, rows = describe_strided(shape, strides)
    num_rows = rows.shape[0]
    rows_per_chunk = min(num_rows, max(1, STRIDED_CHUNK_BYTES // itemsize // layout.inner_len))
    run_split(lambda c0, c1: strided_chunks(data, plan, lam, kind, box, rows, layout, mask, mask_stride,
                                            rows_per_chunk, c0, c1),
              (num_rows + rows_per_chunk - 1) // rows_per_chunk, threads)
