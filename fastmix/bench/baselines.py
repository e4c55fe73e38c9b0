"""What fastmix is measured against: the naive formulas of timm / torchvision, and the floor (one
in-place pass over the batch). They do the same mixing as a given MixParams, the way common
training code does it, so a benchmark compares equal work."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..sampling.params import MixKind, MixParams

# The normalisation the benches use (torchvision's ImageNet statistics).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The in-place operations the benches time, each with the fastmix.Mixup knobs that make it.
IN_PLACE_OPERATIONS = [
    ("mixup batch", dict(mixup_alpha=0.8)),
    ("cutmix batch", dict(mixup_alpha=0.0, cutmix_alpha=1.0)),
    ("elem mixup/cutmix switching", dict(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem")),
]
# The methods beyond timm's, on the CPU bench (the GPU bench has no rows of them yet).
OTHER_METHOD_OPERATIONS = [("fmix batch", dict(mixup_alpha=0.0, fmix_alpha=1.0)),
                           ("fmix elem", dict(mixup_alpha=0.0, fmix_alpha=1.0, mode="elem")),
                           ("resizemix batch", dict(mixup_alpha=0.0, resizemix_alpha=1.0))]


def floor_pass_(images: torch.Tensor) -> torch.Tensor:
    """One in-place read and write of the batch: the least any in-place mix can cost."""
    if images.dtype == torch.uint8:
        return images.add_(0)  # mul_ by a float is not in place for uint8
    return images.mul_(1.0)


def floor_pass_with_masks_(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """One in-place read and write of the batch and of its (B, H, W) integer masks: the least an
    in-place mix of both can cost."""
    floor_pass_(images)
    masks.add_(0)  # integer masks: add_ stays in place for every integer dtype
    return images


def naive_mixup_flip_(images: torch.Tensor, lam: float) -> torch.Tensor:
    """timm's batch-mode Mixup: ``x_flipped = x.flip(0).mul_(1 - lam); x.mul_(lam).add_(x_flipped)``
    (the flipped copy is taken first: written as one expression, ``x.mul_(lam)`` would run before
    the flip and the partners would be mixed already).

    uint8 batches go through float32 and back, rounded, as such code must do for them."""
    if images.dtype == torch.uint8:
        mixed = images.float().mul_(lam).add_(images.flip(0).float().mul_(1.0 - lam))
        return images.copy_(mixed.round_())
    flipped = images.flip(0).mul_(1.0 - lam)
    return images.mul_(lam).add_(flipped)


def naive_mixup_roll_(images: torch.Tensor, lam: float) -> torch.Tensor:
    """torchvision v2 MixUp: ``x.roll(1, 0).mul_(1 - lam).add_(x.mul(lam))``, copied back in place."""
    if images.dtype == torch.uint8:
        mixed = images.roll(1, 0).float().mul_(1.0 - lam).add_(images.float().mul_(lam))
        return images.copy_(mixed.round_())
    mixed = images.roll(1, 0).mul_(1.0 - lam).add_(images.mul(lam))
    return images.copy_(mixed)


def naive_cutmix_flip_(images: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
    """timm's batch-mode CutMix: ``x[..., y0:y1, x0:x1] = x.flip(0)[..., y0:y1, x0:x1]``."""
    y0, y1, x0, x1 = box
    images[..., y0:y1, x0:x1] = images.flip(0)[..., y0:y1, x0:x1]
    return images


def naive_elem_loop_(images: torch.Tensor, params: MixParams) -> torch.Tensor:
    """timm's elem mode: clone the batch, then a Python loop mixing each sample with its partner."""
    original = images.clone()
    partner = params.partner.tolist()
    lam = params.lam.tolist()
    kind = params.kind.tolist()
    box = params.box.tolist()
    pixel_masks = params.pixel_masks()
    for i in range(images.shape[0]):
        j = partner[i]
        if kind[i] == MixKind.BLEND:
            images[i] = images[i] * lam[i] + original[j] * (1.0 - lam[i])
        elif kind[i] == MixKind.PASTE:
            y0, y1, x0, x1 = box[i]
            images[i][..., y0:y1, x0:x1] = original[j][..., y0:y1, x0:x1]
        elif kind[i] == MixKind.MASK:
            images[i] = torch.where(pixel_masks[i].bool(), original[j], images[i])
    return images


def naive_fmix_(images: torch.Tensor, pixel_mask: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
    """The FMix authors' apply (fmix.py's FMixBase users, OpenMixup, PaddleClas): the mask as a float
    tensor, ``x = mask * x + (1 - mask) * x[index]``, written back into the batch."""
    keep = (1 - pixel_mask.float()).unsqueeze(1)  # (B, 1, H, W): 1 where the sample keeps its pixel
    images.copy_(keep * images + (1 - keep) * images[partner])
    return images


def naive_resizemix_(images: torch.Tensor, partner: torch.Tensor, box: tuple, mode: str = "bilinear") -> torch.Tensor:
    """mmpretrain's ResizeMix: ``x[:, :, y0:y1, x0:x1] = F.interpolate(x[index], size=box's,
    mode, align_corners=False)`` (a gathered copy of the batch, its resized copy, the paste). uint8
    batches are resized in float32 and rounded back, as such code must do for them; "nearest"
    without align_corners, which F.interpolate refuses for it."""
    y0, y1, x0, x1 = box
    if y1 <= y0 or x1 <= x0:
        return images
    partners = images[partner]
    if images.dtype == torch.uint8:
        partners = partners.float()
    resized = F.interpolate(partners, size=(y1 - y0, x1 - x0), mode=mode,
                            align_corners=False if mode == "bilinear" else None)
    images[:, :, y0:y1, x0:x1] = resized.round_() if images.dtype == torch.uint8 else resized
    return images


def naive_elem_loop_with_masks_(
    images: torch.Tensor, masks: torch.Tensor, params: MixParams
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Segmentation without fastmix, in timm's elem style: clone the batch and the (B, H, W) masks,
    then a Python loop over the samples. A blended sample mixes its partner's image in and keeps the
    partner's mask as its second target; a pasted one takes the partner's box into its image and
    its mask. Returns the images (mixed in place) and ``(mask_a, mask_b, lam)`` as in
    :class:`fastmix.MaskTargets`: the masks (boxes pasted in place), the partners' masks where
    blended (else mask_a), and the weight of mask_a (1 where not blended)."""
    original = images.clone()
    original_masks = masks.clone()
    mask_b = masks.clone()
    partner = params.partner.tolist()
    lam = params.lam.tolist()
    kind = params.kind.tolist()
    box = params.box.tolist()
    weight = [1.0] * images.shape[0]
    for i in range(images.shape[0]):
        j = partner[i]
        if kind[i] == MixKind.BLEND:
            images[i] = images[i] * lam[i] + original[j] * (1.0 - lam[i])
            mask_b[i] = original_masks[j]
            weight[i] = lam[i]
        elif kind[i] == MixKind.PASTE:
            y0, y1, x0, x1 = box[i]
            images[i][..., y0:y1, x0:x1] = original[j][..., y0:y1, x0:x1]
            masks[i, y0:y1, x0:x1] = original_masks[j, y0:y1, x0:x1]
            mask_b[i, y0:y1, x0:x1] = original_masks[j, y0:y1, x0:x1]
    return images, (masks, mask_b, torch.tensor(weight, dtype=torch.float32))


def naive_targets(labels: torch.Tensor, lam: float, num_classes: int, smoothing: float) -> torch.Tensor:
    """timm's ``mixup_target``: two smoothed one-hot matrices, the second flipped, blended."""
    off = smoothing / num_classes
    on = 1.0 - smoothing + off
    y1 = torch.full((labels.shape[0], num_classes), off, device=labels.device).scatter_(1, labels.view(-1, 1), on)
    y2 = torch.full((labels.shape[0], num_classes), off, device=labels.device).scatter_(
        1, labels.flip(0).view(-1, 1), on
    )
    return y1 * lam + y2 * (1.0 - lam)


def naive_collate_uint8(samples: list, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """default_collate, then HWC -> CHW, a float blend with the flipped batch, round, cast back."""
    from torch.utils.data import default_collate

    images, labels = default_collate(samples)
    images = images.permute(0, 3, 1, 2)
    mixed = images.float().mul_(lam).add_(images.flip(0).float().mul_(1.0 - lam))
    return mixed.round_().to(torch.uint8), labels


def naive_collate_fmix_uint8(samples: list, pixel_mask: torch.Tensor,
                             partner: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """default_collate, then HWC -> CHW and the FMix authors' float-mask blend with the partners, cast back."""
    from torch.utils.data import default_collate

    images, labels = default_collate(samples)
    images = images.permute(0, 3, 1, 2).float()
    keep = (1 - pixel_mask.float()).unsqueeze(1)
    return (keep * images + (1 - keep) * images[partner]).round_().to(torch.uint8), labels


def naive_collate_resizemix_uint8(samples: list, partner: torch.Tensor, box: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """default_collate, then HWC -> CHW (a contiguous copy) and mmpretrain's ResizeMix paste."""
    from torch.utils.data import default_collate

    images, labels = default_collate(samples)
    return naive_resizemix_(images.permute(0, 3, 1, 2).contiguous(), partner, box), labels


def naive_collate_normalized(
    samples: list, lam: float, mean: torch.Tensor, std: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """default_collate, then float, /255, normalise (mean, std of shape (1, C, 1, 1)), blend with the flip."""
    from torch.utils.data import default_collate

    images, labels = default_collate(samples)
    return naive_normalize_mix(images, lam, mean, std), labels


def naive_normalize_mix(
    images: torch.Tensor, lam: float, mean: torch.Tensor, std: torch.Tensor, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """uint8 (B, H, W, C) -> (B, C, H, W) ``dtype``: float, /255, normalise (mean, std of shape
    (1, C, 1, 1)), blend with the flip, cast: the usual chain of tensor passes."""
    x = images.permute(0, 3, 1, 2).float().div_(255.0).sub_(mean).div_(std)
    flipped = x.flip(0).mul_(1.0 - lam)  # before x changes
    return x.mul_(lam).add_(flipped).to(dtype)
