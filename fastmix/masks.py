"""Segmentation: per-pixel class masks mixed with their images, by the same MixParams.

CutMix pastes the partner's mask into exactly the box where its image is pasted: the same
integers, in place. Mixup has no exact mask, so what the loss needs is returned instead: per sample
the two masks and the weight (:class:`MaskTargets`), and :func:`mixed_mask_loss` is the cross
entropy against the per-pixel soft target ``lam * s(onehot(mask_a)) + (1 - lam) * s(onehot(mask_b))``
without building a (B, K, H, W) one-hot tensor.

A paste is a copy of bytes, so masks of every integer dtype go through the image ops' uint8 paste:
a (B, H, W) mask is viewed as (B, 1, H, W * itemsize) bytes and the boxes' columns scaled by the
itemsize. Every backend (cpp, numba, torch, cuda) runs it, bit for bit, with no new kernel to compile.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Tuple

import torch

from .sampling.params import MixKind


class MaskTargets(NamedTuple):
    """What a segmentation loss needs from a mixed batch of masks (compact: no one-hot tensor).

    The soft target of pixel p of sample i is ``lam[i] * s(mask_a[i, p]) + (1 - lam[i]) * s(mask_b[i, p])``
    where ``s`` is the smoothed one-hot (see :func:`mixed_mask_loss` for ignored pixels).
    """

    mask_a: torch.Tensor  #: (B, H, W) the batch's masks after mixing (CutMix boxes pasted), in place
    mask_b: torch.Tensor  #: (B, H, W) the partner's original mask where a sample is blended, else mask_a
    lam: torch.Tensor  #: (B,) float32, the weight of mask_a (1 where no blend)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "MaskTargets":
        """The same targets on ``device``."""
        return MaskTargets(*(t.to(device, non_blocking=non_blocking) for t in self))


def paste_only(partner: torch.Tensor, kind: torch.Tensor, box: torch.Tensor,
               itemsize: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """MixParams fields for masks viewed as bytes: pastes stay (columns scaled by ``itemsize``),
    blends and the rest leave the mask alone."""
    paste = kind == int(MixKind.PASTE)
    mask_kind = torch.where(paste, kind, torch.zeros_like(kind))
    mask_box = box.clone()  # (no host tensor: on a GPU its copy would sync)
    mask_box[:, 2:] *= itemsize
    return partner, torch.ones(kind.shape, dtype=torch.float32, device=kind.device), mask_kind, mask_box


def as_bytes(masks: torch.Tensor) -> torch.Tensor:
    """(B, H, W) integer masks (last dim contiguous) as (B, 1, H, W * itemsize) uint8, sharing memory."""
    return masks.view(torch.uint8).unsqueeze(1)


def mix_masks_(mix_: Callable[..., None], masks: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor, kind: torch.Tensor,
               box: torch.Tensor) -> MaskTargets:
    """Paste the CutMix boxes of ``masks`` (B, H, W) in place with the backend op ``mix_``, and
    return the MaskTargets of the batch (params on the masks' device)."""
    blend = kind == int(MixKind.BLEND)
    paste = kind == int(MixKind.PASTE)
    weights = torch.where(blend, lam, torch.ones_like(lam))
    on_gpu = kind.device.type != "cpu"  # no host read there: the same steps for every batch
    if not on_gpu and not bool(blend.any()):
        mix_(as_bytes(masks), *paste_only(partner, kind, box, masks.element_size()))
        return MaskTargets(masks, masks, weights)
    # mask_b, the only new tensor: the partner's mask for a blended sample, read before the paste
    # (that partner may be pasted in this very call), the sample's own mask elsewhere...
    rows = torch.arange(len(kind), device=kind.device)
    mask_b = masks.index_select(0, torch.where(blend, partner, rows))
    mix_(as_bytes(masks), *paste_only(partner, kind, box, masks.element_size()))
    # ...then the pasted rows take their pasted mask.
    if on_gpu:
        torch.where(paste.view(-1, 1, 1), masks, mask_b, out=mask_b)
    else:
        for i in torch.nonzero(paste).view(-1).tolist():
            mask_b[i].copy_(masks[i])
    return MaskTargets(masks, mask_b, weights)


def mixed_mask_loss(logits: torch.Tensor, targets: MaskTargets, smoothing: float = 0.0,
                    ignore_index: int = 255) -> torch.Tensor:
    """Mean per-pixel cross entropy of ``logits`` (B, K, H, W) against the mixed soft targets.

    Pixel p of sample i scores ``lam * CE(s(a)) + (1 - lam) * CE(s(b))`` with a = mask_a[i, p],
    b = mask_b[i, p] and ``s`` torch's label smoothing (on = 1 - eps + eps/K, off = eps/K, as for
    class labels). A pixel ignored on one side (== ignore_index) takes its whole loss from the other
    side; a pixel ignored on both sides is left out of the mean. Equal to the cross entropy against
    the dense target ``sum_side w_side * s(onehot(side))`` with those weights, without building it.
    """
    ce = torch.nn.functional.cross_entropy
    a, b = targets.mask_a.long(), targets.mask_b.long()
    loss_a = ce(logits, a, reduction="none", ignore_index=ignore_index, label_smoothing=smoothing)
    loss_b = ce(logits, b, reduction="none", ignore_index=ignore_index, label_smoothing=smoothing)
    valid_a, valid_b = a != ignore_index, b != ignore_index
    lam = targets.lam.to(logits.dtype).view(-1, 1, 1)
    weight_a = torch.where(valid_b, lam, torch.ones_like(lam)) * valid_a
    weight_b = torch.where(valid_a, 1 - lam, torch.ones_like(lam)) * valid_b
    counted = (valid_a | valid_b).sum().clamp(min=1)
    return (weight_a * loss_a + weight_b * loss_b).sum() / counted
