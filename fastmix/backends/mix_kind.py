"""MixKind: what happens to one sample, the values of ``MixParams.kind`` that every op reads
(csrc/mix_plan.h ``enum MixKind``; the numba kernels' NONE, BLEND, PASTE, MASK, RESIZE, RESIZE_NEAREST), and which samples a mix
changes (``mixed``: csrc/mix_plan.h and the numba plan have it per sample)."""
from __future__ import annotations

import enum

import torch


class MixKind(enum.IntEnum):
    """What happens to one sample (the values stored in ``MixParams.kind``)."""

    NONE = 0  #: left as it is
    BLEND = 1  #: Mixup: ``lam * x[i] + (1 - lam) * x[partner[i]]``
    PASTE = 2  #: CutMix: the box of ``x[partner[i]]`` is pasted into ``x[i]``
    MASK = 3  #: FMix, ClassMix: the pixels where ``pixel_mask[i]`` is nonzero come from ``x[partner[i]]``
    #: ResizeMix: ``x[partner[i]]``, resized as a whole to the box (bilinear, ``align_corners=False``
    #: as ``F.interpolate``, no antialias), is pasted into the box of ``x[i]``
    RESIZE = 4
    RESIZE_NEAREST = 5  #: RESIZE with nearest-neighbour resizing (``F.interpolate``'s ``"nearest"``)



def resizes(kind: torch.Tensor) -> torch.Tensor:
    """(B,) bool: the samples whose kind resizes their partner (csrc/mix_plan.h's resizes)."""
    return (kind == MixKind.RESIZE) | (kind == MixKind.RESIZE_NEAREST)


def mixed(partner: torch.Tensor, kind: torch.Tensor) -> torch.Tensor:
    """(B,) bool: the samples a mix changes, those mixed with a sample other than themselves."""
    return (kind != MixKind.NONE) & (partner != torch.arange(partner.shape[0], device=partner.device))
