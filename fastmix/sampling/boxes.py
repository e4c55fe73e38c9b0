"""Where the CutMix (and ResizeMix) box goes: boxes from lambdas (or from cutmix_minmax), and their
areas."""
from __future__ import annotations

import numpy as np
import torch

from typing import Optional, Tuple


def sample_boxes(lam: np.ndarray, height: int, width: int, minmax: Optional[Tuple[float, float]],
                 rng: np.random.Generator) -> np.ndarray:
    """(n, 4) int64 boxes (y0, y1, x0, x1) for CutMix (or ResizeMix) lambdas ``lam`` (float64, (n,)).

    Sides sqrt(1 - lam) * (H, W) around a uniform centre, clipped to the image (timm's rand_bbox);
    or, with ``minmax`` (CutMix's cutmix_minmax), timm's rand_bbox_minmax: sides drawn uniformly in
    [int(min * H), int(max * H)) (half-open, as numpy's randint; and W), at a uniform position
    inside the image, [0, H - side]. Where the two ends meet (tiny images) the side is that value
    (timm raises there).
    """
    n = lam.shape[0]
    if minmax is not None:
        lo, hi = minmax
        cut_h = _uniform_sides(int(height * lo), int(height * hi), n, rng)
        cut_w = _uniform_sides(int(width * lo), int(width * hi), n, rng)
        y0 = (rng.random(n) * (height - cut_h + 1)).astype(np.int64)
        x0 = (rng.random(n) * (width - cut_w + 1)).astype(np.int64)
        return np.stack([y0, y0 + cut_h, x0, x0 + cut_w], axis=1).astype(np.int64)
    ratio = np.sqrt(1.0 - lam)
    cut_h = (height * ratio).astype(np.int64)
    cut_w = (width * ratio).astype(np.int64)
    cy = rng.integers(0, height, n)
    cx = rng.integers(0, width, n)
    y0 = cy - cut_h // 2
    x0 = cx - cut_w // 2
    box = np.stack([y0, y0 + cut_h, x0, x0 + cut_w], axis=1)
    limit = np.array([height, height, width, width])
    return np.minimum(np.maximum(box, 0), limit).astype(np.int64)  # clipped to the image (np.clip is slower)


def _uniform_sides(low: int, high: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n sides uniform in [low, high), or low when high <= low."""
    if high <= low:
        return np.full(n, low, dtype=np.int64)
    return rng.integers(low, high, n)


def box_area_fraction(box: "torch.Tensor | np.ndarray", height: int, width: int) -> "torch.Tensor | np.ndarray":
    """(n,) float64 area of boxes (n, 4) as a fraction of the image (a tensor for a tensor)."""
    if isinstance(box, torch.Tensor):
        return torch.from_numpy(box_area_fraction(box.cpu().numpy(), height, width))
    b = box.astype(np.float64)
    return (b[:, 1] - b[:, 0]) * (b[:, 3] - b[:, 2]) / float(height * width)
