"""The MASK samples' planes cut from a mask field, on numba (fastmix/backends/mask_field.py is the
definition; csrc/cpu/mask_field_cpu.h the cpp loops, name for name): each MASK sample's plane is the
field's rows from (y + dy) % H, two runs each (from dx on, then from 0), compared with its
threshold. The numba kernels then read the planes as a pixel_mask's."""
from __future__ import annotations

from . import cache  # noqa: F401  (first: keys numba's disk cache on all of this package's sources)

import numpy as np
import torch
from numba import njit

from .plan import MASK


@njit(nogil=True, cache=True)
def cut_field_rows(values, threshold, window, h0, h1, plane):  # noqa: ANN001, ANN201
    """Rows [h0, h1) of one sample's plane (H, W) uint8 from values (H, W) float32."""
    height, width = values.shape
    dy, dx = window[0], window[2]
    for y in range(h0, h1):
        src = values[(y + dy) % height]
        out = plane[y]
        first = width - dx
        for x in range(first):
            out[x] = src[dx + x] < threshold
        for x in range(dx):
            out[first + x] = src[x] < threshold


@njit(nogil=True, cache=True)
def _cut_planes(values, threshold, kind, box, planes):  # noqa: ANN001, ANN202
    height = values.shape[0]
    for i in range(kind.shape[0]):
        if kind[i] == MASK:
            cut_field_rows(values, threshold[i], box[i], 0, height, planes[i])


def field_pixel_mask(mask_field: torch.Tensor, field_threshold: torch.Tensor, kind: torch.Tensor,
                     box: torch.Tensor) -> torch.Tensor:
    """(B, H, W) uint8: the MASK samples' planes (the others' are not written: the kernels read a
    plane only for a MASK sample). Checked CPU arguments (check_mask_field)."""
    batch, (height, width) = kind.shape[0], mask_field.shape
    planes = torch.empty(batch, height, width, dtype=torch.uint8)
    _cut_planes(mask_field.resolve_neg().contiguous().numpy(), field_threshold.resolve_neg().contiguous().numpy(),
                kind.resolve_neg().contiguous().numpy(), box.resolve_neg().contiguous().numpy(), planes.numpy())
    return planes
