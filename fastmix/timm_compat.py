"""timm's two mixing classes with fastmix's kernels: a timm user switches with one import.

    from fastmix import Mixup, FastCollateMixup      # instead of: from timm.data import ...

``fastmix.Mixup`` already takes timm's ``Mixup`` arguments. ``FastCollateMixup`` takes timm's
``FastCollateMixup`` arguments and returns what it returns: a uint8 (B, C, H, W) batch and float32
(B, num_classes) targets, from timm's samples (``(image, label)`` with the image a uint8 (C, H, W)
numpy array as timm's ``ToNumpy`` makes it, or a uint8 (C, H, W) tensor), so timm's train script
runs with fastmix's collate. timm's ``PrefetchLoader.mixup_enabled`` recognises only timm's own
class: at ``mixup_off_epoch`` set ``collate_fn.mixup_enabled = False`` on this object instead
(README, "Coming from timm").
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .collate import MixupCollate
from .mixup import Mixup
from .sampling.params import MixKind, MixParams
from .sampling.policy import MixPolicy

HALF = "half"


class FastCollateMixup(MixupCollate):
    """timm's ``FastCollateMixup``: collate, mix and make targets in one pass, uint8 output.

    Args: timm's (same meanings and defaults); mode may also be "half" as in timm: per-sample
    lambdas for the first B/2 samples, each mixed with its mirror B-1-i, and only those B/2 returned
    (the mirrors are copied but not mixed). Beyond timm: ``seed`` and ``backend`` as for
    :class:`fastmix.Mixup`, and any batch size (timm asserts an even one).

    ``collate(batch) -> (images uint8 (B, C, H, W), targets float32 (B, num_classes))``.
    """

    def __init__(
        self,
        mixup_alpha: float = 1.0,
        cutmix_alpha: float = 0.0,
        cutmix_minmax: Optional[Tuple[float, float]] = None,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        mode: str = "batch",
        correct_lam: bool = True,
        label_smoothing: float = 0.1,
        num_classes: int = 1000,
        multi_label: bool = False,
        seed: Optional[int] = None,
        backend: str = "auto",
    ) -> None:
        self.half = mode == HALF
        mixup = Mixup(mixup_alpha, cutmix_alpha, cutmix_minmax, prob, switch_prob, "elem" if self.half else mode,
                      correct_lam, label_smoothing, num_classes, multi_label, seed=seed, backend=backend)
        super().__init__(mixup, dtype=torch.uint8)

    @property
    def mode(self) -> str:  # type: ignore[override]
        return HALF if self.half else self.mixup.mode

    @mode.setter
    def mode(self, value: str) -> None:
        if (value == HALF) != self.half:  # half returns B/2 samples: a plain attribute, so it cannot reach workers
            raise ValueError(f"mode: expected a change between 'batch', 'pair' and 'elem' ('half' is chosen at "
                             f"construction), got {value!r} while the mode is {self.mode!r}")
        self.mixup.mode = "elem" if value == HALF else value

    def sample(self, policy: MixPolicy, enabled: bool, batch_size: int, height: int, width: int,
               masks: Optional[List[torch.Tensor]] = None) -> MixParams:
        params = super().sample(policy, enabled, batch_size, height, width, masks)
        if not self.half:
            return params
        first = batch_size // 2  # the mirrors (second half) are not returned: leave them unmixed
        kind, lam = params.kind.clone(), params.lam.clone()
        kind[first:] = int(MixKind.NONE)
        lam[first:] = 1.0
        method = None if params.method is None else params.method.clone()
        if method is not None:
            method[first:] = 0
        return MixParams(params.partner, lam, kind, params.box, params.pixel_mask, method, params.mask_field,
                         params.field_threshold)

    def __call__(self, batch: Sequence[Any], _: Any = None) -> Any:  # timm's signature
        samples = [(_chw_tensor(sample[0]),) + tuple(sample[1:]) if isinstance(sample, (tuple, list)) else sample
                   for sample in batch]
        result = super().__call__(samples)
        if not self.half:
            return result
        first = len(batch) // 2
        return tuple(part[:first] if isinstance(part, torch.Tensor) else part for part in result)

    def __repr__(self) -> str:
        return f"fastmix.FastCollateMixup({self.mixup!r}, mode={self.mode!r})"


def _chw_tensor(image: Any) -> Any:
    """timm's samples hold (C, H, W) numpy arrays (fastmix's collate reads numpy as (H, W, C))."""
    if isinstance(image, np.ndarray) and image.ndim == 3:
        return torch.from_numpy(image)
    return image
