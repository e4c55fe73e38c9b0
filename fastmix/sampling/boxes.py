"""Where the CutMix box goes: boxes from lambdas (or from cutmix_minmax), and their areas."""
from __future__ import annotations

import torch

from .policy import MixPolicy


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
