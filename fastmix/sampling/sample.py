"""Sampling a MixParams from a MixPolicy: which samples mix, Mixup or CutMix, lambda, the box.

All randomness of fastmix is drawn here (and in beta.py and boxes.py), from one torch.Generator,
in small CPU tensors; partners follow a fixed pattern (partners.py).
"""
from __future__ import annotations

import torch

from .beta import sample_beta
from .boxes import box_area_fraction, sample_boxes
from .params import MixKind, MixParams
from .partners import derangement_partners, pair_partners
from .policy import MixPolicy


def _choose_cutmix_and_lam(
    policy: MixPolicy, n: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """For n mixing decisions: (use_cutmix (n,) bool, lam (n,) float64)."""
    if policy.uses_mixup and policy.uses_cutmix:
        use_cutmix = torch.rand(n, dtype=torch.float64, generator=generator) < policy.switch_prob
        lam_cut = sample_beta(policy.cutmix_alpha, n, generator)
        lam_mix = sample_beta(policy.mixup_alpha, n, generator)
        return use_cutmix, torch.where(use_cutmix, lam_cut, lam_mix)
    if policy.uses_cutmix:
        return torch.ones(n, dtype=torch.bool), sample_beta(policy.cutmix_alpha, n, generator)
    return torch.zeros(n, dtype=torch.bool), sample_beta(policy.mixup_alpha, n, generator)


def sample_params(
    policy: MixPolicy,
    batch_size: int,
    height: int | None,
    width: int | None,
    generator: torch.Generator,
    enabled: bool = True,
) -> MixParams:
    """Draw the MixParams of one batch on the CPU.

    ``height``/``width`` are the images' last two dims (None when CutMix is impossible).
    ``enabled=False`` (or B < 2 outside pair mode's odd middle) gives params that mix nothing.
    """
    params = MixParams.identity(batch_size)
    if not enabled or policy.prob == 0 or batch_size < 2:
        return params
    if policy.uses_cutmix and (height is None or width is None):
        raise ValueError("images: CutMix needs images of shape (B, C, H, W) or (B, ..., H, W)")

    if policy.mode == "batch":
        partner = derangement_partners(batch_size)
        groups = torch.zeros(batch_size, dtype=torch.int64)  # every sample in decision 0
        num_decisions = 1
    elif policy.mode == "elem":
        partner = derangement_partners(batch_size)
        groups = torch.arange(batch_size)
        num_decisions = batch_size
    else:
        partner = pair_partners(batch_size)
        # Samples i and B-1-i share decision min(i, B-1-i); an odd middle gets its own.
        index = torch.arange(batch_size)
        groups = torch.minimum(index, index.flip(0))
        num_decisions = (batch_size + 1) // 2

    mixed = torch.rand(num_decisions, dtype=torch.float64, generator=generator) < policy.prob
    use_cutmix, lam = _choose_cutmix_and_lam(policy, num_decisions, generator)
    box = torch.zeros(num_decisions, 4, dtype=torch.int64)
    cut = (mixed & use_cutmix).nonzero().flatten()
    if len(cut):
        box[cut] = sample_boxes(lam[cut], height, width, policy, generator)
        if policy.correct_lam:
            lam[cut] = 1.0 - box_area_fraction(box[cut], height, width)
    lam = torch.where(mixed, lam, torch.ones_like(lam))
    kind = torch.where(
        mixed,
        torch.where(use_cutmix, torch.tensor(int(MixKind.PASTE)), torch.tensor(int(MixKind.BLEND))),
        torch.tensor(int(MixKind.NONE)),
    ).to(torch.uint8)

    return MixParams(
        partner=partner,
        lam=lam[groups].to(torch.float32),
        kind=kind[groups],
        box=box[groups],
    )
