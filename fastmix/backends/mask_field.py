"""The MASK samples' pixels cut from one noise image (FMix in elem and pair modes), as planes.

With ``mask_field`` (H, W) float32 and ``field_threshold`` (B,) float32, a MASK sample i takes its
partner's pixel (y, x) where ``mask_field[(y + dy) % H, (x + dx) % W] < field_threshold[i]``, its
``box[i]`` being the window ``(dy, dy + H, dx, dx + W)`` of the image tiled twice along each axis.
The compiled and numba kernels cut the masks themselves (csrc/cpu/mask_field_cpu.h,
numba/mask_field_numba.py, csrc/cuda/mask_field_kernels.cuh); the torch reference and
MixParams.pixel_masks make the planes here: the definition every backend is tested against.
"""
from __future__ import annotations

from typing import Optional

import torch

from .mix_kind import MixKind


def field_pixel_mask(mask_field: torch.Tensor, field_threshold: torch.Tensor, kind: torch.Tensor,
                     box: torch.Tensor) -> torch.Tensor:
    """(B, H, W) uint8 on mask_field's device: 1 where a MASK sample takes its partner's pixel (0 in
    the planes of the other samples). Arguments as checked by check_mask_field."""
    height, width = mask_field.shape
    device = mask_field.device
    rows = (torch.arange(height, device=device) + box[:, 0:1].to(device)) % height  # (B, H)
    cols = (torch.arange(width, device=device) + box[:, 2:3].to(device)) % width  # (B, W)
    values = mask_field[rows[:, :, None], cols[:, None, :]]
    take = values < field_threshold.to(device)[:, None, None]
    return (take & (kind.to(device) == MixKind.MASK)[:, None, None]).to(torch.uint8)


def mask_planes(pixel_mask: Optional[torch.Tensor], mask_field: Optional[torch.Tensor],
                field_threshold: Optional[torch.Tensor], kind: torch.Tensor,
                box: torch.Tensor) -> Optional[torch.Tensor]:
    """The checked mask arguments of an op as one pixel_mask: the planes cut from mask_field, or
    pixel_mask as it is."""
    if mask_field is None:
        return pixel_mask
    return field_pixel_mask(mask_field, field_threshold, kind, box)
