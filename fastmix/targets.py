"""Soft targets of a mixed batch: the labels' checks, the policy's smoothing rule, and targets as
indices and weights (CompactTargets) for very large class counts, with their loss."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from .backends.checks import check_class_indices, check_labels_layout, check_strided, check_tensor

if TYPE_CHECKING:
    from .backends import Backend
    from .sampling.policy import MixPolicy


def check_labels(labels: Any, batch: int, device: torch.device, num_classes: int, multi_label: bool = False) -> None:
    """labels: (B,) integer class indices in [0, C) or (B, C) dense targets, on the images' device.

    Class index values are read only on the CPU: on a GPU that read would stall the stream every
    batch, so there an index outside [0, C) trips the targets kernel's device-side assert instead."""
    check_tensor("labels", labels)
    check_strided("labels", labels)
    if labels.device != device:
        raise ValueError(f"labels: expected a tensor on the images' device {device}, got {labels.device}")
    if labels.dim() not in (1, 2):
        raise ValueError(
            f"labels: expected class indices of shape ({batch},) or dense targets of shape ({batch}, {num_classes}), "
            f"got shape {tuple(labels.shape)}"
        )
    if labels.shape[0] != batch:
        raise ValueError(
            f"labels: expected batch size {batch} (the images' first dim), got {labels.shape[0]} (shape {tuple(labels.shape)})"
        )
    if multi_label and labels.dim() != 2:
        raise ValueError(f"labels: expected dense multi-label targets of shape ({batch}, {num_classes}) for "
                         f"multi_label=True, got shape {tuple(labels.shape)}")
    check_labels_layout(labels, num_classes)
    if labels.dim() == 1 and labels.device.type == "cpu":
        check_class_indices(labels, num_classes)


def soft_targets(backend: "Backend", labels: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor, kind: torch.Tensor,
                 policy: "MixPolicy") -> torch.Tensor:
    """(B, C) float32 soft targets of a mixed batch, with the policy's smoothing rule: class indices
    or dense targets smoothed towards eps / C, or (``multi_label``) dense multi-label targets
    smoothed towards 0.5 as timm does, ``t * (1 - eps) + eps / 2``, then mixed unsmoothed."""
    if policy.multi_label:
        smoothed = labels.float() * (1.0 - policy.label_smoothing) + 0.5 * policy.label_smoothing  # timm's arithmetic
        return backend.mix_targets(smoothed, partner, lam, kind, policy.num_classes, 0.0)
    return backend.mix_targets(labels, partner, lam, kind, policy.num_classes, policy.label_smoothing)


class CompactTargets(NamedTuple):
    """Targets as (B,) indices and weights instead of a (B, C) matrix, for very large C.

    The soft target of sample i is ``lam[i] * s(index_a[i]) + (1 - lam[i]) * s(index_b[i])``.
    """

    index_a: torch.Tensor  #: (B,) int64, the sample's own class
    index_b: torch.Tensor  #: (B,) int64, the partner's class (the own class when not mixed)
    lam: torch.Tensor  #: (B,) float32, the weight of index_a

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "CompactTargets":
        return CompactTargets(*(t.to(device, non_blocking=non_blocking) for t in self))

    def dense(self, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
        """The (B, num_classes) float32 soft targets these stand for."""
        off = smoothing / num_classes
        on = 1.0 - smoothing + off
        lam = self.lam.view(-1, 1)
        a = torch.full((len(self.lam), num_classes), off, device=self.lam.device).scatter_(1, self.index_a.view(-1, 1), on)
        b = torch.full((len(self.lam), num_classes), off, device=self.lam.device).scatter_(1, self.index_b.view(-1, 1), on)
        return a * lam + b * (1 - lam)


def compact_targets_loss(logits: torch.Tensor, targets: CompactTargets, smoothing: float = 0.0) -> torch.Tensor:
    """Mean soft-target cross entropy of ``logits`` (B, C) against compact targets.

    Equals ``-(targets.dense(C, smoothing) * logits.log_softmax(-1)).sum(-1).mean()`` without
    building the (B, C) matrix: torch's label_smoothing uses the same on/off values as fastmix.
    """
    ce = torch.nn.functional.cross_entropy
    loss_a = ce(logits, targets.index_a, reduction="none", label_smoothing=smoothing)
    loss_b = ce(logits, targets.index_b, reduction="none", label_smoothing=smoothing)
    lam = targets.lam.to(logits.dtype)
    return (lam * loss_a + (1 - lam) * loss_b).mean()
