"""The ``torch`` backend, the reference: plain tensor arithmetic, out of place, then copied back.

It defines what every kernel must produce, bit for bit: blends are computed as
``x * lam + partner * (1 - lam)`` in float32 (float64 for float64 images), each product rounded
on its own, then cast (uint8: round half to even, saturate). It reads every original before
writing, so it needs no in-place plan; it clones the batch, which is why it is only the reference.
Its ops take the arguments of the compiled ops (csrc/ops.cpp) and check them as they do.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch

from .checks import check_collate_mix_args, check_mix_args, check_mix_into_args, check_mix_targets_args
from .mask_field import mask_planes
from .mix_kind import MixKind, mixed, resizes
from .resize_taps import resized


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


def mixed_values(images: torch.Tensor, partner, lam, kind, box, pixel_mask=None) -> torch.Tensor:  # noqa: ANN001
    """A new tensor: ``images`` (B, ...) mixed as the params say (nothing is written). A MASK
    sample takes its partner's value wherever ``pixel_mask`` (B, H, W) is nonzero; a RESIZE sample
    takes its whole partner resized to its box (resize_taps.resized, in float32, then cast back)."""
    batch = images.shape[0]
    changed = mixed(partner, kind)
    broadcast = (batch,) + (1,) * (images.dim() - 1)
    acc = _accumulation_dtype(images.dtype)
    theirs = images[partner]
    own_weight = lam.to(acc)
    blended = images.to(acc) * own_weight.view(broadcast) + theirs.to(acc) * (1 - own_weight).view(broadcast)
    blend_here = (changed & (kind == MixKind.BLEND)).view(broadcast)
    out = torch.where(blend_here, _cast_back(blended, images.dtype), images)
    paste = changed & (kind == MixKind.PASTE)
    if images.dim() >= 3 and bool(paste.any()):
        mask = box_mask(box, images.shape[-2], images.shape[-1]) & paste[:, None, None]
        mask = mask.view((batch,) + (1,) * (images.dim() - 3) + mask.shape[1:])
        out = torch.where(mask, theirs, out)
    from_mask = changed & (kind == MixKind.MASK)
    if images.dim() >= 3 and bool(from_mask.any()):
        take = (pixel_mask != 0) & from_mask[:, None, None]
        take = take.view((batch,) + (1,) * (images.dim() - 3) + take.shape[1:])
        out = torch.where(take, theirs, out)
    resize = changed & resizes(kind)
    if images.dim() >= 3 and bool(resize.any()):
        for i in resize.nonzero().flatten().tolist():
            y0, y1, x0, x1 = (int(v) for v in box[i])
            if y0 >= y1 or x0 >= x1:
                continue
            nearest = int(kind[i]) == MixKind.RESIZE_NEAREST
            partner_image = images[int(partner[i])]
            values = resized(partner_image if nearest else partner_image.to(acc), y1 - y0, x1 - x0, nearest)
            out[i, ..., y0:y1, x0:x1] = values if nearest else _cast_back(values, images.dtype)
    return out


def mix_(images: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor, kind: torch.Tensor, box: torch.Tensor,
         plan: Optional[torch.Tensor] = None, plan_shape: Sequence[int] = (),
         pixel_mask: Optional[torch.Tensor] = None, mask_field: Optional[torch.Tensor] = None,
         field_threshold: Optional[torch.Tensor] = None) -> None:
    """torch.ops.fastmix.mix_ in plain torch: mix ``images`` (B, ...) in place (``plan``, the CUDA
    kernels' plan, is checked and not needed: every original is read before anything is written)."""
    check_mix_args(images, partner, lam, kind, box, plan, plan_shape, pixel_mask, mask_field, field_threshold)
    if images.numel() == 0:
        return
    out = mixed_values(images, partner, lam, kind, box, mask_planes(pixel_mask, mask_field, field_threshold, kind, box))
    images.copy_(out)


def smoothed_targets(labels: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """(B, C) float32: one-hot (indices) or dense targets with timm's label smoothing."""
    off = smoothing / num_classes
    on = 1.0 - smoothing + off
    if labels.dim() == 1:
        out = torch.full((labels.shape[0], num_classes), off, dtype=torch.float32, device=labels.device)
        return out.scatter_(1, labels.long().view(-1, 1), on)
    dense = labels.float()
    return dense * on + (1 - dense) * off


def mix_targets(labels: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor, kind: torch.Tensor,
                num_classes: int, smoothing: float) -> torch.Tensor:
    """torch.ops.fastmix.mix_targets in plain torch: (B, num_classes) float32 soft targets,
    ``lam * own + (1 - lam) * partner's``, smoothed."""
    check_mix_targets_args(labels, partner, lam, kind, num_classes, smoothing)
    own = smoothed_targets(labels, num_classes, smoothing)
    lam_col = lam.view(-1, 1)
    own_and_partner = own * lam_col + own[partner] * (1 - lam_col)
    return torch.where(mixed(partner, kind).view(-1, 1), own_and_partner, own)


def normalized(values: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """values (B, C, H, W) float32 -> values * scale[c] + bias[c] (product and sum rounded apart)."""
    if scale.numel() == 0:
        return values
    shape = (1, -1) + (1,) * (values.dim() - 2)
    return values * scale.view(shape) + bias.view(shape)


def _mix_batch_into(out: torch.Tensor, batch: torch.Tensor, partner, lam, kind, box, scale, bias,  # noqa: ANN001
                    pixel_mask=None) -> None:  # noqa: ANN001
    """out = cast(normalize(mixed batch)); batch (B, C, H, W), uint8 or float32."""
    if out.dtype == torch.uint8:
        out.copy_(mixed_values(batch, partner, lam, kind, box, pixel_mask))
        return
    values = mixed_values(batch.to(torch.float32), partner, lam, kind, box, pixel_mask)
    out.copy_(normalized(values, scale, bias))


def mix_into_(out: torch.Tensor, images: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor, kind: torch.Tensor,
              box: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, hwc: bool,
              pixel_mask: Optional[torch.Tensor] = None, mask_field: Optional[torch.Tensor] = None,
              field_threshold: Optional[torch.Tensor] = None) -> None:
    """torch.ops.fastmix.mix_into_ in plain torch: out = cast(normalize(mixed images)).

    images: (B, C, H, W), or (B, H, W, C) when ``hwc``; uint8 or float32. out: (B, C, H, W) in any
    memory format, uint8 (from uint8 without normalisation: the in-place result exactly),
    float32, bfloat16 or float16. Mixed values are float32 (``x * lam + partner * (1 - lam)``),
    normalised in float32, then cast (uint8: round half to even, saturate).
    """
    check_mix_into_args(out, images, partner, lam, kind, box, scale, bias, hwc, pixel_mask, mask_field, field_threshold)
    if out.numel() == 0:
        return
    _mix_batch_into(out, images.permute(0, 3, 1, 2) if hwc else images, partner, lam, kind, box, scale, bias,
                    mask_planes(pixel_mask, mask_field, field_threshold, kind, box))


def collate_mix_(out: torch.Tensor, samples: List[torch.Tensor], partner: torch.Tensor, lam: torch.Tensor,
                 kind: torch.Tensor, box: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, hwc: bool,
                 pixel_mask: Optional[torch.Tensor] = None, mask_field: Optional[torch.Tensor] = None,
                 field_threshold: Optional[torch.Tensor] = None) -> None:
    """torch.ops.fastmix.collate_mix_ in plain torch: mix_into_ from B samples (C, H, W) or (H, W, C)."""
    check_collate_mix_args(out, samples, partner, lam, kind, box, scale, bias, hwc, pixel_mask, mask_field,
                           field_threshold)
    if out.numel() == 0:
        return
    batch = torch.stack(samples)
    _mix_batch_into(out, batch.permute(0, 3, 1, 2) if hwc else batch, partner, lam, kind, box, scale, bias,
                    mask_planes(pixel_mask, mask_field, field_threshold, kind, box))
