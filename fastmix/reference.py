"""The torch reference backend: plain tensor arithmetic, out of place, then copied back.

It defines what every kernel must produce, bit for bit: blends are computed as
``x * lam + partner * (1 - lam)`` in float32 (float64 for float64 images), each product rounded
on its own, then cast (uint8: round half to even, saturate). It reads every original before
writing, so it needs no in-place plan; it clones the batch, which is why it is only the reference.
"""
from __future__ import annotations

import torch

from .params import MixKind, MixParams


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _cast_back(values: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if dtype == torch.uint8:
        return values.round().clamp(0, 255).to(torch.uint8)  # torch.round: half to even
    return values.to(dtype)


def box_mask(box: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, H, W) bool: True inside each sample's box (y0, y1, x0, x1)."""
    rows = torch.arange(height, device=box.device)
    cols = torch.arange(width, device=box.device)
    in_rows = (rows[None, :] >= box[:, 0:1]) & (rows[None, :] < box[:, 1:2])
    in_cols = (cols[None, :] >= box[:, 2:3]) & (cols[None, :] < box[:, 3:4])
    return in_rows[:, :, None] & in_cols[:, None, :]


def mix_reference_(images: torch.Tensor, params: MixParams) -> torch.Tensor:
    """Apply ``params`` to ``images`` (B, ...) in place; returns ``images``."""
    batch = images.shape[0]
    if images.numel() == 0:
        return images
    partner, lam, kind, box = params.to(images.device).as_tuple()
    written = (kind != MixKind.NONE) & (partner != torch.arange(batch, device=images.device))
    broadcast = (batch,) + (1,) * (images.dim() - 1)
    acc = _accumulation_dtype(images.dtype)
    theirs = images[partner]
    own_weight = lam.to(acc)
    other_weight = 1 - own_weight
    blended = images.to(acc) * own_weight.view(broadcast) + theirs.to(acc) * other_weight.view(broadcast)
    blend_here = (written & (kind == MixKind.BLEND)).view(broadcast)
    out = torch.where(blend_here, _cast_back(blended, images.dtype), images)
    paste = written & (kind == MixKind.PASTE)
    if bool(paste.any()):
        mask = box_mask(box, images.shape[-2], images.shape[-1]) & paste[:, None, None]
        mask = mask.view((batch,) + (1,) * (images.dim() - 3) + mask.shape[1:])
        out = torch.where(mask, theirs, out)
    images.copy_(out)
    return images


def smoothed_targets(labels: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """(B, C) float32: one-hot (indices) or dense targets with timm's label smoothing."""
    off = smoothing / num_classes
    on = 1.0 - smoothing + off
    if labels.dim() == 1:
        out = torch.full((labels.shape[0], num_classes), off, dtype=torch.float32, device=labels.device)
        return out.scatter_(1, labels.long().view(-1, 1), on)
    dense = labels.float()
    return dense * on + (1 - dense) * off


def mix_targets_reference(
    labels: torch.Tensor, params: MixParams, num_classes: int, smoothing: float = 0.0
) -> torch.Tensor:
    """(B, num_classes) float32 soft targets: lam * own + (1 - lam) * partner's, smoothed."""
    partner, lam, kind, _ = params.to(labels.device).as_tuple()
    batch = labels.shape[0]
    own = smoothed_targets(labels, num_classes, smoothing)
    written = (kind != MixKind.NONE) & (partner != torch.arange(batch, device=labels.device))
    lam_col = lam.view(-1, 1)
    mixed = own * lam_col + own[partner] * (1 - lam_col)
    return torch.where(written.view(-1, 1), mixed, own)


def normalize_reference(values: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """values (B, C, H, W) float32 -> values * scale[c] + bias[c] (product and sum rounded apart)."""
    if scale.numel() == 0:
        return values
    shape = (1, -1) + (1,) * (values.dim() - 2)
    return values * scale.view(shape) + bias.view(shape)


def mix_into_reference(
    out: torch.Tensor,
    images: torch.Tensor,
    params: MixParams,
    scale: torch.Tensor,
    bias: torch.Tensor,
    hwc: bool,
) -> torch.Tensor:
    """The out-of-place mix (the collate and GPU path): out = cast(normalize(mixed images)).

    images: (B, C, H, W), or (B, H, W, C) when ``hwc``; uint8 or float32. out: (B, C, H, W) in any
    memory format, uint8 (from uint8 without normalisation: the in-place result exactly),
    float32, bfloat16 or float16. Mixed values are float32 (``x * lam + partner * (1 - lam)``),
    normalised in float32, then cast (uint8: round half to even, saturate).
    """
    batch = images.permute(0, 3, 1, 2) if hwc else images
    if out.dtype == torch.uint8:
        out.copy_(mix_reference_(batch.clone(), params))
        return out
    values = mix_reference_(batch.to(torch.float32, copy=True), params)
    out.copy_(normalize_reference(values, scale, bias))
    return out
