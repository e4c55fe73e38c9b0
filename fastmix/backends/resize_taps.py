"""ResizeMix's resize in plain torch (csrc/resize_taps.h, name for name): where each pixel of a box
reads the partner it shrinks, and the box's values.

The rule is ``F.interpolate``'s with ``align_corners=False`` and no antialias, as mmpretrain's
ResizeMix calls it: for an output index ``d`` of a side resized from ``n_in`` to ``n_out``,

- bilinear: ``src = max(scale * (d + 0.5) - 0.5, 0)`` with ``scale = n_in / n_out``, taps
  ``lo = min(floor(src), n_in - 1)`` and ``hi = lo + (lo < n_in - 1)``, weights ``1 - f`` and ``f``
  for ``f = clamp(src - lo, 0, 1)``, all in the accumulation type (float32; float64 for float64);
  a value is ``(p[lo_y, lo_x] * w_lo_x + p[lo_y, hi_x] * w_hi_x) * w_lo_y + (...) * w_hi_y``, each
  product and sum rounded on its own;
- nearest: ``min(floor(d * scale), n_in - 1)`` with ``scale`` in float32.

Nearest equals ``F.interpolate(mode="nearest")`` exactly. torch's bilinear kernels round the
source coordinate in another order, so they differ from this rule by a few units in the last
place (measured: at most 3.2e-5 on unit normals at 224 -> 200 x 112); every fastmix backend
follows this rule bit for bit.
"""
from __future__ import annotations

from typing import Tuple

import torch


def linear_taps(out_size: int, in_size: int, dtype: torch.dtype = torch.float32
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(lo, hi, w_lo, w_hi), each (out_size,): int64 source indices and their ``dtype`` weights."""
    scale = torch.tensor(in_size, dtype=dtype) / torch.tensor(out_size, dtype=dtype)
    half = torch.tensor(0.5, dtype=dtype)
    src = (scale * (torch.arange(out_size, dtype=dtype) + half) - half).clamp(min=0)
    lo = src.floor().long().clamp(max=in_size - 1)
    w_hi = (src - lo.to(dtype)).clamp(0, 1)
    hi = lo + (lo < in_size - 1).long()
    return lo, hi, 1 - w_hi, w_hi


def nearest_taps(out_size: int, in_size: int) -> torch.Tensor:
    """(out_size,) int64 source indices of a nearest-neighbour resize."""
    scale = torch.tensor(in_size, dtype=torch.float32) / torch.tensor(out_size, dtype=torch.float32)
    src = (torch.arange(out_size, dtype=torch.float32) * scale).floor().long()
    return src.clamp(max=in_size - 1)


def resized(image: torch.Tensor, height: int, width: int, nearest: bool) -> torch.Tensor:
    """``image`` (..., H, W) resized to (..., height, width), in image's dtype (a float type for
    bilinear: the caller converts, and casts back)."""
    if nearest:
        rows, cols = nearest_taps(height, image.shape[-2]), nearest_taps(width, image.shape[-1])
        return image[..., rows, :][..., cols]
    y_lo, y_hi, wy_lo, wy_hi = linear_taps(height, image.shape[-2], image.dtype)
    x_lo, x_hi, wx_lo, wx_hi = linear_taps(width, image.shape[-1], image.dtype)
    top, bottom = image[..., y_lo, :], image[..., y_hi, :]
    top = top[..., x_lo] * wx_lo + top[..., x_hi] * wx_hi
    bottom = bottom[..., x_lo] * wx_lo + bottom[..., x_hi] * wx_hi
    return top * wy_lo[:, None] + bottom * wy_hi[:, None]
