"""Sampling a MixParams from a MixPolicy: partners, lambdas, kinds and CutMix boxes.

All randomness of fastmix is drawn here, from one torch.Generator, in small CPU tensors.
"""
from __future__ import annotations

import torch

from .beta import sample_beta
from .params import MixKind, MixParams
from .policy import MixPolicy


def derangement_partners(batch_size: int) -> torch.Tensor:
    """(B,) int64 partners with no sample paired with itself (for B >= 2).

    The batch is flipped as in timm (i <-> B-1-i, pairs that swap content); for odd B the middle
    sample, which a flip pairs with itself, joins its neighbours in a 3-cycle
    (m-1 -> m+1 -> m -> m-1). The DataLoader has shuffled the batch, so a fixed pattern is as
    random as a random permutation and costs no draws.
    """
    partner = torch.arange(batch_size - 1, -1, -1, dtype=torch.int64)
    if batch_size % 2 == 1 and batch_size >= 3:
        m = batch_size // 2
        partner[m + 1] = m
        partner[m] = m - 1
    return partner


def pair_partners(batch_size: int) -> torch.Tensor:
    """(B,) int64 partners for pair mode: i <-> B-1-i.

    For odd B the middle sample m has no pair: it is mixed one way with sample m-1 (it reads
    m-1, nobody reads it), with a lambda and box of its own. For B = 1 it stays alone.
    """
    partner = torch.arange(batch_size - 1, -1, -1, dtype=torch.int64)
    if batch_size % 2 == 1 and batch_size >= 3:
        partner[batch_size // 2] = batch_size // 2 - 1
    return partner


def sample_boxes(
    lam: torch.Tensor, height: int, width: int, policy: MixPolicy, generator: torch.Generator
) -> torch.Tensor:
    """(n, 4) int64 boxes (y0, y1, x0, x1) for CutMix lambdas ``lam`` (float64, (n,)).

    Sides sqrt(1 - lam) * (H, W) around a uniform centre, clipped to the image; or, with
    cutmix_minmax, sides drawn uniformly in [min, max] * (H, W) at a uniform position inside.
    """
    n = lam.shape[0]
    if policy.cutmix_minmax is not None:
        lo, hi = policy.cutmix_minmax
        cut_h = _randint_inclusive(int(height * lo), int(height * hi), n, generator)
        cut_w = _randint_inclusive(int(width * lo), int(width * hi), n, generator)
        y0 = (torch.rand(n, dtype=torch.float64, generator=generator) * (height - cut_h + 1)).long()
        x0 = (torch.rand(n, dtype=torch.float64, generator=generator) * (width - cut_w + 1)).long()
        return torch.stack([y0, y0 + cut_h, x0, x0 + cut_w], dim=1)
    ratio = torch.sqrt(1.0 - lam)
    cut_h = (height * ratio).long()
    cut_w = (width * ratio).long()
    cy = torch.randint(0, height, (n,), generator=generator)
    cx = torch.randint(0, width, (n,), generator=generator)
    y0 = cy - cut_h // 2
    x0 = cx - cut_w // 2
    return torch.stack(
        [y0.clamp(0, height), (y0 + cut_h).clamp(0, height), x0.clamp(0, width), (x0 + cut_w).clamp(0, width)],
        dim=1,
    )


def _randint_inclusive(lo: int, hi: int, n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(lo, hi + 1, (n,), generator=generator)


def box_area_fraction(box: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(n,) float64 area of boxes (n, 4) as a fraction of the image."""
    b = box.to(torch.float64)
    return (b[:, 1] - b[:, 0]) * (b[:, 3] - b[:, 2]) / float(height * width)


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
