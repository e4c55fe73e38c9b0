"""numba kernels of fastmix::mix_into_ and fastmix::collate_mix_ (csrc/cpu/mix_into_cpu.cpp).

Out of place: B input samples of C*H*W elements, (C, H, W) or (H, W, C) in memory, uint8 or
float32, each at its own address, are mixed into out (B, C, H, W) (NCHW or NHWC memory order;
uint8, float32, bfloat16 bits or float16 bits). Each element is ``cast(normalize(mixed))``:
mixed = ``a * lam + b * (1 - lam)`` in float32 (or a, or b), normalize = ``v * scale[c] + bias[c]``
(product and sum rounded apart), cast rounds (uint8: half to even, saturated).

A unit of work is one output sample, or a swapped pair (a <-> b) written together from the same
rows of a and b, so every input is read once; units are split in blocks of rows and the (unit,
block) tasks run on one thread or several (parallel.py). HWC -> NCHW (the decoded-image collate)
has its own driver, so that a collate compiles only its path: it assembles each row in pixel
order in a staging row (a contiguous blend, copies for a paste, a pixel's elements from a or b as
the pixel_mask says for a mask), then de-interleaves it into
the C planes, with C = 3 and C = 1 written out so the loops vectorise.
"""
from __future__ import annotations

from typing import NamedTuple

from . import cache  # noqa: F401  (first: keys numba's disk cache on all of this package's sources)

import numpy as np
import torch
from numba import njit, types
from numba.extending import overload

from ..checks import check_collate_mix_args, check_mix_into_args
from .blend_math import PIXEL_BLEND, PIXEL_KEEP, PIXEL_TAKE, copy
from .dtypes import from_acc, to_acc
from .memory import array_at, check_cpu, flat_view, mask_planes
from .parallel import run_split, threads
from .plan import BLEND, MASK, NO_SAMPLE, NONE, PASTE, RESIZE_NEAREST, mixed
from .resize_numba import resize_box_row, resize_taps, resizes

ROW_BLOCK_BYTES = 32 * 1024


class IntoGeometry(NamedTuple):
    """The dims of a mix_into (mix_into_cpu.cpp's and mix_into_kernels.cuh's IntoGeometry): B input
    samples of channels * height * width elements, out (B, C, H, W)."""

    channels: int
    height: int
    width: int
    hwc_in: int  # input memory is (H, W, C) per sample, else (C, H, W); 0 or 1
    nhwc_out: int  # output memory is channels_last, else contiguous NCHW; 0 or 1


def same_dtype(a, b):
    """Whether two arrays have the same dtype (known when compiling)."""


@overload(same_dtype)
def _same_dtype(a, b):
    same = a.dtype == b.dtype
    return lambda a, b: same


def staging_row(out, length):
    """A row for blended values: uint8 when the output is uint8 (rounded once), else float32."""


@overload(staging_row)
def _staging_row(out, length):
    if out.dtype.bitwidth == 8:
        return lambda out, length: np.empty(length, dtype=np.uint8)
    return lambda out, length: np.empty(length, dtype=np.float32)


# -- contiguous runs -------------------------------------------------------------------------------


@njit(nogil=True, cache=True)
def mix_run(dst, a, b, op, lam, rest, s, t, norm):
    """dst[k] = cast(normalize(mixed(a[k], b[k]))) with one (scale, bias) for the whole run."""
    if op == PIXEL_BLEND:
        if norm:
            for k in range(dst.shape[0]):
                v = to_acc(a[k]) * lam + to_acc(b[k]) * rest
                dst[k] = from_acc(dst, v * s + t)
        else:
            for k in range(dst.shape[0]):
                dst[k] = from_acc(dst, to_acc(a[k]) * lam + to_acc(b[k]) * rest)
        return
    src = a if op == PIXEL_KEEP else b
    if norm:
        for k in range(dst.shape[0]):
            dst[k] = from_acc(dst, to_acc(src[k]) * s + t)
    elif same_dtype(dst, src):
        for k in range(dst.shape[0]):
            dst[k] = src[k]
    else:
        for k in range(dst.shape[0]):
            dst[k] = from_acc(dst, to_acc(src[k]))


@njit(nogil=True, cache=True)
def mix_run_per_element(dst, a, b, op, lam, rest, s, t, norm):
    """mix_run with a (scale, bias) per element (HWC -> NHWC: the channel changes every element)."""
    if not norm:
        if op == PIXEL_BLEND:
            for k in range(dst.shape[0]):
                dst[k] = from_acc(dst, to_acc(a[k]) * lam + to_acc(b[k]) * rest)
            return
        src = a if op == PIXEL_KEEP else b
        for k in range(dst.shape[0]):
            dst[k] = from_acc(dst, to_acc(src[k]))
        return
    if op == PIXEL_BLEND:
        for k in range(dst.shape[0]):
            v = to_acc(a[k]) * lam + to_acc(b[k]) * rest
            dst[k] = from_acc(dst, v * s[k] + t[k])
        return
    src = a if op == PIXEL_KEEP else b
    for k in range(dst.shape[0]):
        dst[k] = from_acc(dst, to_acc(src[k]) * s[k] + t[k])


@njit(nogil=True, cache=True)
def segment(a, b, out, out_base, geometry, scale, bias, scale_row, bias_row, norm, op, lam, rest, h, w0, w1):
    """Pixels [w0, w1) of row h of one output sample, made as op says (layouts other than HWC -> NCHW)."""
    channels, height, width, hwc_in, nhwc_out = geometry
    plane = height * width
    if w0 >= w1:
        return
    if hwc_in:  # HWC -> NHWC: one contiguous run of pixels x channels
        lo, hi = (h * width + w0) * channels, (h * width + w1) * channels
        k0, k1 = w0 * channels, w1 * channels
        mix_run_per_element(out[out_base + lo : out_base + hi], a[lo:hi], b[lo:hi], op, lam, rest,
                            scale_row[k0:k1], bias_row[k0:k1], norm)
        return
    for c in range(channels):
        lo, hi = c * plane + h * width + w0, c * plane + h * width + w1
        if nhwc_out:  # CHW -> NHWC: every C-th element of the output row
            first = out_base + (h * width + w0) * channels + c
            dst = out[first : first + (w1 - w0 - 1) * channels + 1 : channels]
            mix_run(dst, a[lo:hi], b[lo:hi], op, lam, rest, scale[c], bias[c], norm)
        else:  # CHW -> NCHW: one contiguous run per channel
            mix_run(out[out_base + lo : out_base + hi], a[lo:hi], b[lo:hi], op, lam, rest, scale[c], bias[c], norm)


# -- HWC -> NCHW -----------------------------------------------------------------------------------


@njit(nogil=True, cache=True)
def planes_from_pixels(row, out, out_base, geometry, scale, bias, norm, h):
    """Row h of an HWC sample (W * C elements, pixel order) into the C planes of an NCHW output
    (mix_into_cpu.cpp's planes_from_pixels)."""
    channels, height, width, _, _ = geometry
    plane = height * width
    first = out_base + h * width
    if channels == 3:
        p0 = out[first : first + width]
        p1 = out[first + plane : first + plane + width]
        p2 = out[first + 2 * plane : first + 2 * plane + width]
        if norm:
            s0, s1, s2 = scale[0], scale[1], scale[2]
            t0, t1, t2 = bias[0], bias[1], bias[2]
            for w in range(width):
                p0[w] = from_acc(p0, to_acc(row[3 * w]) * s0 + t0)
                p1[w] = from_acc(p1, to_acc(row[3 * w + 1]) * s1 + t1)
                p2[w] = from_acc(p2, to_acc(row[3 * w + 2]) * s2 + t2)
        elif same_dtype(row, out):
            for w in range(width):
                p0[w] = row[3 * w]
                p1[w] = row[3 * w + 1]
                p2[w] = row[3 * w + 2]
        else:
            for w in range(width):
                p0[w] = from_acc(p0, to_acc(row[3 * w]))
                p1[w] = from_acc(p1, to_acc(row[3 * w + 1]))
                p2[w] = from_acc(p2, to_acc(row[3 * w + 2]))
        return
    for c in range(channels):
        dst = out[first + c * plane : first + c * plane + width]
        src = row[c : c + (width - 1) * channels + 1 : channels]
        mix_run(dst, src, src, PIXEL_KEEP, np.float32(1.0), np.float32(0.0), scale[c], bias[c], norm)


@njit(nogil=True, cache=True)
def blend_row(a, b, dst, lam, rest):
    for k in range(dst.shape[0]):
        dst[k] = from_acc(dst, to_acc(a[k]) * lam + to_acc(b[k]) * rest)


@njit(nogil=True, cache=True)
def write_blended_pair_planes(a, b, out, base_a, base_b, geometry, scale, bias, norm, lam_a, lam_b, h0, h1):
    """Rows [h0, h1) of a swapped pair that both blend, HWC -> NCHW: each input element read once for
    both (mix_into_cpu.cpp's write_blended_pair_rows)."""
    channels, _, width, _, _ = geometry
    row = width * channels
    rest_a = np.float32(1.0) - lam_a
    rest_b = np.float32(1.0) - lam_b
    sa = staging_row(out, row)
    sb = staging_row(out, row)
    for h in range(h0, h1):
        ar = a[h * row : (h + 1) * row]
        br = b[h * row : (h + 1) * row]
        for k in range(row):
            x = to_acc(ar[k])
            y = to_acc(br[k])
            sa[k] = from_acc(sa, x * lam_a + y * rest_a)
            sb[k] = from_acc(sb, y * lam_b + x * rest_b)
        planes_from_pixels(sa, out, base_a, geometry, scale, bias, norm, h)
        planes_from_pixels(sb, out, base_b, geometry, scale, bias, norm, h)


# -- resizes (RESIZE, RESIZE_NEAREST) ----------------------------------------------------------------


@njit(nogil=True, cache=True)
def box_taps(scale, geometry, y0, y1, x0, x1, how, resizing):
    """The taps of a resizing sample's box over its input, none for any other (scale: float32, for
    the weights' type)."""
    channels, height, width, hwc_in, _ = geometry
    rows, cols = (y1 - y0, x1 - x0) if resizing else (0, 0)
    return resize_taps(scale, height, width, channels if hwc_in else 1, rows, cols, how == RESIZE_NEAREST)


@njit(nogil=True, cache=True)
def write_resized_row(b, taps, nearest, out, out_base, geometry, scale, bias, norm, h, y0, x0, staged):
    """The box's columns of output row h (box row h - y0) from partner b resized, over what the
    row's kept values wrote: each channel's values made in `staged` (uint8 for uint8 outputs, else
    float32, as the reference mixes), then normalised and cast like any kept value."""
    channels, height, width, hwc_in, nhwc_out = geometry
    plane = height * width
    cols = taps[3].shape[0]
    for c in range(channels):
        channel_at = c if hwc_in else c * plane
        resize_box_row(b, channel_at, width * channels if hwc_in else width, taps, nearest, h - y0, staged, 0, 1)
        s, t = scale[c], bias[c]
        step = channels if nhwc_out else 1
        first = out_base + ((h * width + x0) * channels + c if nhwc_out else c * plane + h * width + x0)
        if norm:
            for q in range(cols):
                out[first + q * step] = from_acc(out, to_acc(staged[q]) * s + t)
        else:
            for q in range(cols):
                out[first + q * step] = from_acc(out, to_acc(staged[q]))


# -- one output sample, one task, the drivers ------------------------------------------------------


@njit(nogil=True, cache=True)
def sample_inputs(addresses, like, geometry, partner, lam, kind, box, i):
    """Sample i's input a, its partner's b, what is done (NONE, BLEND, PASTE, MASK, RESIZE,
    RESIZE_NEAREST) and the box (pasted: a paste with columns)."""
    channels, height, width, _, _ = geometry
    size = channels * height * width
    source = partner[i] if mixed(partner, kind, i) else i  # b's sample
    how = kind[i] if source != i else NONE
    a = array_at(addresses[i], size, like)
    b = array_at(addresses[source], size, like)
    x0, x1 = box[i, 2], box[i, 3]
    pasted = how == PASTE and x0 < x1
    return a, b, how, pasted, box[i, 0], box[i, 1], x0, x1


@njit(nogil=True, cache=True)
def select_pixels(staged, a, b, mask, mask_at, channels):
    """staged <- a, then b's elements over each run of pixels whose mask bytes (from mask_at) are
    set: copies the loops vectorise, a few runs a row for FMix's blobs (a select per element
    measured 6x slower)."""
    copy(staged, a, 0, staged.shape[0])
    width = staged.shape[0] // channels
    w = 0
    while w < width:
        if not mask[mask_at + w]:
            w += 1
            continue
        end = w + 1
        while end < width and mask[mask_at + end]:
            end += 1
        copy(staged, b, w * channels, end * channels)
        w = end


@njit(nogil=True, cache=True)
def select_planes_from_pixels(ar, br, mask, mask_at, out, out_base, geometry, scale, bias, norm, h):
    """Row h of a masked sample, uint8 HWC pixels of 3 channels, into the planes of an NCHW output
    (mix_into_cpu.cpp's select_planes_from_pixels): per pixel the partner's channels where its mask
    byte is set, else its own, selected by bits (a loop LLVM vectorises), converted and
    de-interleaved in one pass; select_pixels then planes_from_pixels, without the staged row."""
    _, height, width, _, _ = geometry
    plane = height * width
    first = out_base + h * width
    p0 = out[first : first + width]
    p1 = out[first + plane : first + plane + width]
    p2 = out[first + 2 * plane : first + 2 * plane + width]
    if same_dtype(ar, out):  # uint8 -> uint8: never normalised
        for w in range(width):
            take = np.uint8(0) - np.uint8(mask[mask_at + w] != 0)  # 255 or 0
            keep = ~take
            p0[w] = (br[3 * w] & take) | (ar[3 * w] & keep)
            p1[w] = (br[3 * w + 1] & take) | (ar[3 * w + 1] & keep)
            p2[w] = (br[3 * w + 2] & take) | (ar[3 * w + 2] & keep)
        return
    s0, s1, s2 = (scale[0], scale[1], scale[2]) if norm else (np.float32(1.0), np.float32(1.0), np.float32(1.0))
    t0, t1, t2 = (bias[0], bias[1], bias[2]) if norm else (np.float32(0.0), np.float32(0.0), np.float32(0.0))
    for w in range(width):
        take = np.uint8(0) - np.uint8(mask[mask_at + w] != 0)
        keep = ~take
        v0 = to_acc(np.uint8((br[3 * w] & take) | (ar[3 * w] & keep)))
        v1 = to_acc(np.uint8((br[3 * w + 1] & take) | (ar[3 * w + 1] & keep)))
        v2 = to_acc(np.uint8((br[3 * w + 2] & take) | (ar[3 * w + 2] & keep)))
        if norm:
            v0, v1, v2 = v0 * s0 + t0, v1 * s1 + t1, v2 * s2 + t2
        p0[w], p1[w], p2[w] = from_acc(p0, v0), from_acc(p1, v1), from_acc(p2, v2)


def selected_planes(ar, br, mask, mask_at, out, out_base, geometry, scale, bias, norm, h):
    """select_planes_from_pixels for uint8 rows, and True; False (nothing written) for others."""


@overload(selected_planes)
def _selected_planes(ar, br, mask, mask_at, out, out_base, geometry, scale, bias, norm, h):
    if ar.dtype != types.uint8:
        return lambda ar, br, mask, mask_at, out, out_base, geometry, scale, bias, norm, h: False

    def fused(ar, br, mask, mask_at, out, out_base, geometry, scale, bias, norm, h):
        select_planes_from_pixels(ar, br, mask, mask_at, out, out_base, geometry, scale, bias, norm, h)
        return True
    return fused


@njit(nogil=True, cache=True)
def write_sample_planes(addresses, like, out, geometry, scale, bias, norm, partner, lam, kind, box, mask, mask_stride,
                        i, h0, h1):
    """Rows [h0, h1) of output sample i, HWC -> NCHW: each row staged in pixel order (blended,
    pasted by copies, or masked pixel by pixel), then de-interleaved into the planes."""
    channels, height, width, _, _ = geometry
    a, b, how, pasted, y0, y1, x0, x1 = sample_inputs(addresses, like, geometry, partner, lam, kind, box, i)
    own = lam[i]
    rest = np.float32(1.0) - own
    out_base = i * channels * height * width
    row = width * channels
    blended = staging_row(out, row if how == BLEND else 0)
    staged = np.empty(row if how == PASTE or how == MASK else 0, dtype=a.dtype)
    resizing = resizes(how) and x0 < x1 and y0 < y1
    taps = box_taps(scale, geometry, y0, y1, x0, x1, how, resizing)
    resized = staging_row(out, x1 - x0 if resizing else 0)
    for h in range(h0, h1):
        ar = a[h * row : (h + 1) * row]
        br = b[h * row : (h + 1) * row]
        if how == MASK and channels == 3 and selected_planes(ar, br, mask, i * mask_stride + h * width, out, out_base,
                                                             geometry, scale, bias, norm, h):
            pass  # decoded images: one loop
        elif how == MASK:  # the row's pixels from ar or br, as the mask row says
            select_pixels(staged, ar, br, mask, i * mask_stride + h * width, channels)
            planes_from_pixels(staged, out, out_base, geometry, scale, bias, norm, h)
        elif how == BLEND:
            blend_row(ar, br, blended, own, rest)
            planes_from_pixels(blended, out, out_base, geometry, scale, bias, norm, h)
        elif pasted and y0 <= h < y1:
            lo, hi = x0 * channels, x1 * channels
            copy(staged, ar, 0, lo)
            copy(staged, br, lo, hi)
            copy(staged, ar, hi, staged.shape[0])
            planes_from_pixels(staged, out, out_base, geometry, scale, bias, norm, h)
        else:
            planes_from_pixels(ar, out, out_base, geometry, scale, bias, norm, h)
            if resizing and y0 <= h < y1:
                write_resized_row(b, taps, how == RESIZE_NEAREST, out, out_base, geometry, scale, bias, norm, h, y0,
                                  x0, resized)


@njit(nogil=True, cache=True)
def write_sample_runs(addresses, like, out, geometry, scale, bias, scale_row, bias_row, norm, partner, lam, kind, box,
                      mask, mask_stride, i, h0, h1):
    """Rows [h0, h1) of output sample i in the other layouts: contiguous runs, made as op says (a
    mask's row as its runs of pixels kept and taken)."""
    channels, height, width, _, _ = geometry
    a, b, how, pasted, y0, y1, x0, x1 = sample_inputs(addresses, like, geometry, partner, lam, kind, box, i)
    own = lam[i]
    rest = np.float32(1.0) - own
    out_base = i * channels * height * width
    start = np.int64(0)
    resizing = resizes(how) and x0 < x1 and y0 < y1
    taps = box_taps(scale, geometry, y0, y1, x0, x1, how, resizing)
    resized = staging_row(out, x1 - x0 if resizing else 0)
    for h in range(h0, h1):
        if how == MASK:
            plane_row = i * mask_stride + h * width
            w0 = start
            while w0 < width:
                taken = mask[plane_row + w0] != 0
                w1 = w0 + 1
                while w1 < width and (mask[plane_row + w1] != 0) == taken:
                    w1 += 1
                segment(a, b, out, out_base, geometry, scale, bias, scale_row, bias_row, norm,
                        PIXEL_TAKE if taken else PIXEL_KEEP, own, rest, h, w0, w1)
                w0 = w1
        elif how == BLEND:
            segment(a, b, out, out_base, geometry, scale, bias, scale_row, bias_row, norm, PIXEL_BLEND, own, rest,
                    h, start, width)
        elif pasted and y0 <= h < y1:
            segment(a, b, out, out_base, geometry, scale, bias, scale_row, bias_row, norm, PIXEL_KEEP, own, rest,
                    h, start, x0)
            segment(a, b, out, out_base, geometry, scale, bias, scale_row, bias_row, norm, PIXEL_TAKE, own, rest,
                    h, x0, x1)
            segment(a, b, out, out_base, geometry, scale, bias, scale_row, bias_row, norm, PIXEL_KEEP, own, rest,
                    h, x1, width)
        else:
            segment(a, b, out, out_base, geometry, scale, bias, scale_row, bias_row, norm, PIXEL_KEEP, own, rest,
                    h, start, width)
            if resizing and y0 <= h < y1:
                write_resized_row(b, taps, how == RESIZE_NEAREST, out, out_base, geometry, scale, bias, norm, h, y0,
                                  x0, resized)


@njit(nogil=True, cache=True)
def tasks_planes(addresses, like, out, geometry, scale, bias, norm, partner, lam, kind, box, mask, mask_stride, units,
                 blocks, rows_per_block, t0, t1):
    """Tasks [t0, t1) (unit t // blocks, row block t % blocks), HWC -> NCHW."""
    channels, height, width, _, _ = geometry
    size = channels * height * width
    for t in range(t0, t1):
        first, second = units[t // blocks, 0], units[t // blocks, 1]
        h0 = (t % blocks) * rows_per_block
        h1 = min(height, h0 + rows_per_block)
        if second >= 0 and kind[first] == BLEND and kind[second] == BLEND:
            write_blended_pair_planes(array_at(addresses[first], size, like), array_at(addresses[second], size, like),
                                    out, first * size, second * size, geometry, scale, bias, norm, lam[first],
                                    lam[second], h0, h1)
            continue
        write_sample_planes(addresses, like, out, geometry, scale, bias, norm, partner, lam, kind, box, mask,
                            mask_stride, first, h0, h1)
        if second >= 0:
            write_sample_planes(addresses, like, out, geometry, scale, bias, norm, partner, lam, kind, box, mask,
                                mask_stride, second, h0, h1)


@njit(nogil=True, cache=True)
def tasks_runs(addresses, like, out, geometry, scale, bias, scale_row, bias_row, norm, partner, lam, kind, box, mask,
               mask_stride, units, blocks, rows_per_block, t0, t1):
    """Tasks [t0, t1) in the other layouts (CHW -> NCHW / NHWC, HWC -> NHWC)."""
    height = geometry.height
    for t in range(t0, t1):
        h0 = (t % blocks) * rows_per_block
        h1 = min(height, h0 + rows_per_block)
        for i in (units[t // blocks, 0], units[t // blocks, 1]):
            if i >= 0:
                write_sample_runs(addresses, like, out, geometry, scale, bias, scale_row, bias_row, norm, partner, lam,
                                  kind, box, mask, mask_stride, i, h0, h1)


# -- the ops (torch tensors in, checked, then the kernels) -----------------------------------------


def make_units(partner: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """(n, 2) int64 units of out-of-place work (mix_into_cpu.cpp's make_units): output sample u[0],
    and u[1] (its swapped partner, both mixed) or -1, in the order of u[0]. A pair is written
    together so that each input is read once. Vectorised: no kernel to compile for this O(B) step."""
    index = np.arange(partner.shape[0])
    mixed = (kind != NONE) & (partner != index)
    paired = mixed & mixed[partner] & (partner[partner] == index)
    first = ~(paired & (partner < index))  # a pair's second sample is not a unit of its own
    return np.stack([index[first], np.where(paired, partner, NO_SAMPLE)[first]], axis=1).astype(np.int64)


def mix_into_(out, images, partner, lam, kind, box, scale, bias, hwc, pixel_mask=None):
    """torch.ops.fastmix.mix_into_ on numba: out (B, C, H, W) <- cast(normalize(mix(images)))."""
    nhwc_out = check_mix_into_args(out, images, partner, lam, kind, box, scale, bias, hwc, pixel_mask)
    check_cpu(out, "out")
    batch, channels, height, width = out.shape
    source = images.contiguous()
    sample_bytes = channels * height * width * source.element_size()
    addresses = source.data_ptr() + np.arange(batch, dtype=np.int64) * sample_bytes
    _run(out, nhwc_out, addresses, source.dtype, partner, lam, kind, box, scale, bias, hwc, pixel_mask)


def collate_mix_(out, samples, partner, lam, kind, box, scale, bias, hwc, pixel_mask=None):
    """torch.ops.fastmix.collate_mix_ on numba: like mix_into_, reading B separate samples
    (C, H, W) or (H, W, C)."""
    nhwc_out = check_collate_mix_args(out, samples, partner, lam, kind, box, scale, bias, hwc, pixel_mask)
    check_cpu(out, "out")
    if out.shape[0] == 0:
        return
    contiguous = [sample.contiguous() for sample in samples]  # held until the kernel returns
    addresses = np.fromiter((s.data_ptr() for s in contiguous), dtype=np.int64, count=len(contiguous))
    _run(out, nhwc_out, addresses, samples[0].dtype, partner, lam, kind, box, scale, bias, hwc, pixel_mask)


def _run(out, nhwc_out, addresses, input_dtype, partner, lam, kind, box, scale, bias, hwc, pixel_mask):
    """The kernel over checked arguments; ``addresses``: (B,) int64, where each input sample's
    C*H*W contiguous elements are (kept alive by the caller)."""
    if out.numel() == 0:
        return
    batch, channels, height, width = out.shape
    p, l, k, b = (t.detach().contiguous().numpy() for t in (partner, lam, kind, box))
    mask, mask_stride = mask_planes(pixel_mask)
    normalize = scale.numel() > 0
    scale_c = scale.contiguous().numpy() if normalize else np.ones(channels, dtype=np.float32)
    bias_c = bias.contiguous().numpy() if normalize else np.zeros(channels, dtype=np.float32)
    per_pixel = hwc and nhwc_out  # HWC -> NHWC: one contiguous run, a (scale, bias) per element
    scale_row = np.tile(scale_c, width) if per_pixel else np.empty(0, dtype=np.float32)
    bias_row = np.tile(bias_c, width) if per_pixel else np.empty(0, dtype=np.float32)
    geometry = IntoGeometry(channels, height, width, int(bool(hwc)), int(nhwc_out))  # hwc: truthy, as the op has it
    units = make_units(p, k)
    itemsize = 1 if input_dtype == torch.uint8 else 4
    rows_per_block = max(1, ROW_BLOCK_BYTES // max(1, width * channels * itemsize))
    blocks = (height + rows_per_block - 1) // rows_per_block
    like = np.empty(1, dtype=np.uint8 if input_dtype == torch.uint8 else np.float32)
    flat = flat_view(out)
    if hwc and not nhwc_out:  # the decoded-image collate: its own, smaller kernel to compile
        def run(t0, t1):
            tasks_planes(addresses, like, flat, geometry, scale_c, bias_c, normalize, p, l, k, b, mask, mask_stride,
                         units, blocks, rows_per_block, t0, t1)
    else:
        def run(t0, t1):
            tasks_runs(addresses, like, flat, geometry, scale_c, bias_c, scale_row, bias_row, normalize, p, l, k, b,
                       mask, mask_stride, units, blocks, rows_per_block, t0, t1)
    run_split(run, units.shape[0] * blocks, threads())
