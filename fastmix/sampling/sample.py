"""Sampling a MixParams from a MixPolicy: which samples mix, Mixup or CutMix, lambda, the box.

All randomness of fastmix is drawn here (and in beta.py and boxes.py), from one numpy Generator
(streams.py), as a handful of vectorised draws per batch: O(B) work of a few microseconds;
partners follow a fixed pattern (partners.py).
"""
from __future__ import annotations

import numpy as np
import torch

from .beta import beta_draws
from .boxes import box_area_fraction, sample_boxes
from .params import MixKind, MixParams
from .partners import derangement_partners, pair_partners
from .policy import MixPolicy
from .streams import as_numpy_generator


def _choose_cutmix_and_lam(policy: MixPolicy, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """For n mixing decisions: (use_cutmix (n,) bool, lam (n,) float64)."""
    if policy.uses_mixup and policy.uses_cutmix:
        use_cutmix = rng.random(n) < policy.switch_prob
        lam_cut = beta_draws(policy.cutmix_alpha, n, rng)
        lam_mix = beta_draws(policy.mixup_alpha, n, rng)
        return use_cutmix, np.where(use_cutmix, lam_cut, lam_mix)
    if policy.uses_cutmix:
        return np.ones(n, dtype=bool), beta_draws(policy.cutmix_alpha, n, rng)
    return np.zeros(n, dtype=bool), beta_draws(policy.mixup_alpha, n, rng)


def sample_params(
    policy: MixPolicy,
    batch_size: int,
    height: int | None,
    width: int | None,
    generator: "np.random.Generator | torch.Generator",
    enabled: bool = True,
) -> MixParams:
    """Draw the MixParams of one batch on the CPU.

    ``height``/``width`` are the images' last two dims (None when CutMix is impossible).
    ``generator``: a numpy Generator (what ``Mixup`` holds), or a torch.Generator (one seed is
    drawn from it). ``enabled=False`` (or B < 2 outside pair mode's odd middle) gives params that
    mix nothing.
    """
    if not enabled or policy.prob == 0 or batch_size < 2:
        return MixParams.identity(batch_size)
    if policy.uses_cutmix and (height is None or width is None):
        raise ValueError("images: CutMix needs images of shape (B, C, H, W) or (B, ..., H, W)")
    rng = as_numpy_generator(generator)

    index = np.arange(batch_size)
    if policy.mode == "batch":
        partner = derangement_partners(batch_size)
        groups = np.zeros(batch_size, dtype=np.int64)  # every sample in decision 0
        num_decisions = 1
    elif policy.mode == "elem":
        partner = derangement_partners(batch_size)
        groups = index
        num_decisions = batch_size
    else:
        partner = pair_partners(batch_size)
        # Samples i and B-1-i share decision min(i, B-1-i); an odd middle gets its own.
        groups = np.minimum(index, index[::-1])
        num_decisions = (batch_size + 1) // 2

    mixed = rng.random(num_decisions) < policy.prob
    use_cutmix, lam = _choose_cutmix_and_lam(policy, num_decisions, rng)
    box = np.zeros((num_decisions, 4), dtype=np.int64)
    cut = np.flatnonzero(mixed & use_cutmix)
    if len(cut):
        box[cut] = sample_boxes(lam[cut], height, width, policy, rng)
        if policy.correct_lam:
            lam[cut] = 1.0 - box_area_fraction(box[cut], height, width)
    lam = np.where(mixed, lam, 1.0)
    kind = np.where(mixed, np.where(use_cutmix, int(MixKind.PASTE), int(MixKind.BLEND)), int(MixKind.NONE))

    return MixParams(
        partner=partner,
        lam=torch.from_numpy(lam[groups].astype(np.float32)),
        kind=torch.from_numpy(kind[groups].astype(np.uint8)),
        box=torch.from_numpy(np.ascontiguousarray(box[groups])),
    )
