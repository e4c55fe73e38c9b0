"""MixPolicy: the Mixup/CutMix knobs, with timm's meanings, checked once at construction."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

MODES = ("batch", "pair", "elem")


def _check_probability(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a float in [0, 1], got {type(value).__name__}")
    if not (0.0 <= value <= 1.0):  # NaN fails too
        raise ValueError(f"{name}: expected a float in [0, 1], got {value}")
    return float(value)


def _check_alpha(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a float >= 0, got {type(value).__name__}")
    if math.isnan(value) or value < 0 or math.isinf(value):
        raise ValueError(f"{name}: expected a finite float >= 0, got {value}")
    return float(value)


@dataclass(frozen=True)
class MixPolicy:
    """What to sample for a batch. Same knobs and defaults as ``timm.data.Mixup``.

    Args:
        mixup_alpha: Mixup lambda ~ Beta(mixup_alpha, mixup_alpha); 0 turns Mixup off.
        cutmix_alpha: CutMix lambda ~ Beta(cutmix_alpha, cutmix_alpha); 0 turns CutMix off.
        cutmix_minmax: (min, max) fractions of H and W for the CutMix box sides, drawn uniformly,
            instead of sides from lambda. As in timm it forces cutmix_alpha = 1 and correct_lam.
        prob: chance that a batch (mode="batch") or a sample/pair is mixed at all.
        switch_prob: chance of CutMix rather than Mixup when both are on.
        mode: "batch" (one lambda for the batch), "pair" (samples i and B-1-i share one lambda and
            box, each taking the other's content) or "elem" (a lambda per sample).
        correct_lam: set lambda = 1 - box_area / (H * W) after the box is clipped to the image.
        label_smoothing: eps; a class's target is 1 - eps + eps/C, every other eps/C.
        num_classes: C, the width of the soft targets.
    """

    mixup_alpha: float = 1.0
    cutmix_alpha: float = 0.0
    cutmix_minmax: Optional[Tuple[float, float]] = None
    prob: float = 1.0
    switch_prob: float = 0.5
    mode: str = "batch"
    correct_lam: bool = True
    label_smoothing: float = 0.1
    num_classes: int = 1000

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("mixup_alpha", _check_alpha("mixup_alpha", self.mixup_alpha))
        set_("cutmix_alpha", _check_alpha("cutmix_alpha", self.cutmix_alpha))
        set_("prob", _check_probability("prob", self.prob))
        set_("switch_prob", _check_probability("switch_prob", self.switch_prob))
        set_("label_smoothing", _check_probability("label_smoothing", self.label_smoothing))
        if self.mode not in MODES:
            raise ValueError(f"mode: expected one of {', '.join(repr(m) for m in MODES)}, got {self.mode!r}")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int):
            raise TypeError(f"num_classes: expected an int >= 1, got {type(self.num_classes).__name__}")
        if self.num_classes < 1:
            raise ValueError(f"num_classes: expected an int >= 1, got {self.num_classes}")
        if not isinstance(self.correct_lam, bool):
            raise TypeError(f"correct_lam: expected a bool, got {type(self.correct_lam).__name__}")
        if self.cutmix_minmax is not None:
            mm = self.cutmix_minmax
            ok = isinstance(mm, (tuple, list)) and len(mm) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in mm
            )
            if not ok or not (0.0 <= mm[0] < mm[1] <= 1.0):
                raise ValueError(
                    f"cutmix_minmax: expected None or (min, max) with 0 <= min < max <= 1, got {mm!r}"
                )
            set_("cutmix_minmax", (float(mm[0]), float(mm[1])))
            # timm: minmax boxes ignore lambda, so keep the alpha logic simple and the lambda exact.
            set_("cutmix_alpha", 1.0)
            set_("correct_lam", True)
        if self.prob > 0 and self.mixup_alpha == 0 and self.cutmix_alpha == 0:
            raise ValueError(
                "mixup_alpha, cutmix_alpha: at least one must be > 0 (or cutmix_minmax set) when mixing is "
                f"enabled (prob={self.prob}); got mixup_alpha=0 and cutmix_alpha=0. Use prob=0 for label "
                "smoothing only."
            )

    @property
    def uses_mixup(self) -> bool:
        return self.mixup_alpha > 0

    @property
    def uses_cutmix(self) -> bool:
        return self.cutmix_alpha > 0
