"""Sampling a MixParams from a MixPolicy: which samples mix, with which method (Mixup, CutMix,
FMix, ClassMix, ResizeMix), lambda, the box or the pixel mask.

All randomness of fastmix is drawn here (and in beta.py, boxes.py, fmix.py and classmix.py), from
one numpy Generator (streams.py), as a handful of vectorised draws per batch: O(B) work of a few
microseconds for Mixup and CutMix, an FFT per mask for FMix; partners follow a fixed pattern
(partners.py). With only Mixup and CutMix on, the draws are those fastmix made before the other
methods existed, one for one (timm's stream, which the parity tests replay).
"""
from __future__ import annotations

import numpy as np
import torch

from .beta import beta_draws
from .boxes import box_area_fraction, sample_boxes
from .classmix import classmix_pixel_masks
from .fmix import fmix_field_params, fmix_pixel_masks
from .methods import MixMethod, choose_methods, kinds_of_methods
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
    masks: "torch.Tensor | list[torch.Tensor] | None" = None,
    ignore_index: int = 255,
) -> MixParams:
    """Draw the MixParams of one batch on the CPU.

    ``height``/``width`` are the images' last two dims (None when CutMix, FMix and ClassMix are
    impossible). ``generator``: a numpy Generator (what ``Mixup`` holds), or a torch.Generator (one
    seed is drawn from it). ``enabled=False`` (or B < 2 outside pair mode's odd middle) gives params
    that mix nothing. ``masks``: the batch's segmentation masks, (B, H, W) or B (H, W) tensors of
    integer class ids (ignore_index: none), which ClassMix reads; required when ClassMix is on.
    """
    if not enabled or policy.prob == 0 or batch_size < 2:
        return MixParams.identity(batch_size)
    if policy.needs_height_and_width and (height is None or width is None):
        raise ValueError("images: CutMix, FMix, ClassMix and ResizeMix need images of shape (B, C, H, W) or "
                         "(B, ..., H, W)")
    if policy.classmix and masks is None:
        raise ValueError("masks: ClassMix (classmix=True) needs the batch's segmentation masks (masks=...), got None")
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

    if not policy.uses_only_mixup_and_cutmix:
        return _sample_methods(policy, partner, groups, num_decisions, height, width, rng, masks, ignore_index)
    mixed = rng.random(num_decisions) < policy.prob
    use_cutmix, lam = _choose_cutmix_and_lam(policy, num_decisions, rng)
    box = np.zeros((num_decisions, 4), dtype=np.int64)
    cut = np.flatnonzero(mixed & use_cutmix)
    if len(cut):
        box[cut] = sample_boxes(lam[cut], height, width, policy.cutmix_minmax, rng)
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


def _sample_methods(policy: MixPolicy, partner: np.ndarray, groups: np.ndarray, num_decisions: int, height: int,
                    width: int, rng: np.random.Generator, masks: "torch.Tensor | list[torch.Tensor] | None",
                    ignore_index: int) -> MixParams:
    """The params of a policy with FMix, ClassMix, ResizeMix or method_probs: per decision (the
    batch, a sample, a pair), whether it mixes, then its method by the policy's weights, then that
    method's lambda and box or mask, drawn only for the decisions that mix."""
    batch = partner.shape[0]
    mixed = rng.random(num_decisions) < policy.prob
    method = np.where(mixed, choose_methods(policy, num_decisions, rng), int(MixMethod.NONE))
    lam = np.ones(num_decisions)
    box = np.zeros((num_decisions, 4), dtype=np.int64)
    fmix_masks = None  # (n, H, W): the masks of the decisions that chose FMix, in their order
    mask_field = None  # or (H, W): the noise image that FMix's per-decision masks are cut from
    threshold = np.full(num_decisions, np.inf, dtype=np.float32)
    for chosen, alpha in ((MixMethod.MIXUP, policy.mixup_alpha), (MixMethod.CUTMIX, policy.cutmix_alpha),
                          (MixMethod.FMIX, policy.fmix_alpha), (MixMethod.RESIZEMIX, policy.resizemix_alpha)):
        rows = np.flatnonzero(method == int(chosen))
        if not len(rows):
            continue
        lam[rows] = beta_draws(alpha, len(rows), rng)
        if chosen == MixMethod.RESIZEMIX:  # mmpretrain's lam in [lam_min, lam_max], then CutMix's box
            lam[rows] = lam[rows] * (policy.resizemix_lam_max - policy.resizemix_lam_min) + policy.resizemix_lam_min
        if chosen in (MixMethod.CUTMIX, MixMethod.RESIZEMIX):
            # ResizeMix's box ignores cutmix_minmax, a CutMix knob (mmpretrain's ResizeMix takes its own)
            minmax = policy.cutmix_minmax if chosen == MixMethod.CUTMIX else None
            box[rows] = sample_boxes(lam[rows], height, width, minmax, rng)
            if policy.correct_lam:
                lam[rows] = 1.0 - box_area_fraction(box[rows], height, width)
        elif chosen == MixMethod.FMIX:
            # A mask per decision is cut from one noise image (fmix_field_params), unless ClassMix,
            # whose masks are planes, is in the batch too; one decision (batch mode) has one plane.
            if num_decisions > 1 and not bool((method == int(MixMethod.CLASSMIX)).any()):
                mask_field, threshold[rows], box[rows], lam[rows] = fmix_field_params(
                    lam[rows], height, width, policy.fmix_decay_power, rng)
            else:
                fmix_masks, lam[rows] = fmix_pixel_masks(lam[rows], height, width, policy.fmix_decay_power, rng)
    sample_method = method[groups]
    sample_lam = lam[groups]
    fmix = np.flatnonzero(sample_method == int(MixMethod.FMIX))
    classmix = np.flatnonzero(sample_method == int(MixMethod.CLASSMIX))
    pixel_mask = None  # stays None with a mask_field: the kernels cut each FMix sample's mask from it
    if mask_field is None and num_decisions == 1 and len(fmix):  # batch mode (or a pair): one plane, expanded (batch stride 0)
        pixel_mask = torch.from_numpy(fmix_masks).expand(batch, height, width)
    elif mask_field is None and (len(fmix) or len(classmix)):
        planes = np.zeros((batch, height, width), dtype=np.uint8)  # (unread where no sample masks)
        if len(fmix):
            # decision d's mask is fmix_masks[number of FMix decisions before d]
            planes[fmix] = fmix_masks[np.cumsum(method == int(MixMethod.FMIX))[groups[fmix]] - 1]
        if len(classmix):
            stacked = masks if isinstance(masks, torch.Tensor) else torch.stack(list(masks))
            theirs = stacked[partner[classmix].to(stacked.device)].cpu()  # (masks on a GPU: one sync)
            taken, own = classmix_pixel_masks(theirs, policy.num_classes, ignore_index, rng)
            planes[classmix] = taken.numpy()
            sample_lam[classmix] = own.numpy()
        pixel_mask = torch.from_numpy(planes)
    kind = kinds_of_methods(sample_method, policy)
    return MixParams(
        partner=partner,
        lam=torch.from_numpy(sample_lam.astype(np.float32)),
        kind=torch.from_numpy(kind),
        box=torch.from_numpy(np.ascontiguousarray(box[groups])),
        pixel_mask=pixel_mask,
        method=torch.from_numpy(sample_method.astype(np.uint8)),
        mask_field=None if mask_field is None else torch.from_numpy(mask_field),
        field_threshold=None if mask_field is None else torch.from_numpy(threshold[groups]),
    )
