"""ClassMix masks (Olsson et al. 2021, "ClassMix: Segmentation-Based Data Augmentation for
Semi-Supervised Learning"): a sample takes, from its partner, the pixels of half of the classes
present in the partner's segmentation mask, chosen at random (ceil(n / 2) of n classes, as the
authors' and DACS's code take; the ignore_index is never a class). The sample's lam is the fraction
of its pixels that stay its own.

The choice is made from host-drawn keys with tensor ops on the masks' device, so the same keys
give the same masks on every device: a (B, num_classes) table of which classes each partner's mask
holds, random keys ranked among the present classes, the lowest ceil(n / 2) chosen, then one gather
per pixel.
"""
from __future__ import annotations

import numpy as np
import torch


def classes_present(masks: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """(B, num_classes) bool: which classes each (H, W) mask holds (ignore_index left out)."""
    batch = masks.shape[0]
    flat = masks.reshape(batch, -1).long()
    valid = (flat >= 0) & (flat < num_classes) & (flat != ignore_index)
    present = torch.zeros(batch, num_classes + 1, dtype=torch.bool, device=masks.device)
    present.scatter_(1, torch.where(valid, flat, num_classes), True)  # invalid pixels land in the spare column
    return present[:, :num_classes]


def chosen_classes(present: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """(B, K) bool: for each row, the ceil(n / 2) present classes with the lowest keys (n present)."""
    ranked = torch.where(present, keys, torch.full_like(keys, 2.0))  # keys in [0, 1): absent classes last
    order = ranked.argsort(dim=1)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(present.shape[1], device=present.device).expand_as(order))
    take = (present.sum(dim=1, keepdim=True) + 1) // 2
    return present & (rank < take)


def classmix_pixel_masks(theirs: torch.Tensor, num_classes: int, ignore_index: int,
                         rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """For the partners' masks ``theirs`` (n, H, W) of n ClassMix samples: (pixel_mask (n, H, W)
    uint8, 1 where the sample takes its partner's pixel; own (n,) float64, the fraction of its own
    pixels), on the masks' device."""
    batch = theirs.shape[0]
    keys = torch.from_numpy(rng.random((batch, num_classes), dtype=np.float32)).to(theirs.device)
    chosen = chosen_classes(classes_present(theirs, num_classes, ignore_index), keys)
    theirs = theirs.long()
    valid = (theirs >= 0) & (theirs < num_classes)
    taken = torch.gather(chosen, 1, torch.where(valid, theirs, 0).reshape(batch, -1)).reshape(theirs.shape) & valid
    pixels = taken[0].numel() if batch else 1
    own = 1.0 - taken.reshape(batch, -1).sum(dim=1).double().cpu() / pixels
    return taken.to(torch.uint8), own
