"""MixPolicy: the Mixup/CutMix knobs, with timm's meanings, checked once at construction."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from ..checks import (
    check_alpha,
    check_bool,
    check_cutmix_minmax,
    check_mode,
    check_num_classes,
    check_probability,
)


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
        multi_label: labels are dense multi-label (B, C) 0/1 (or soft) targets, smoothed towards 0.5
            as timm does (``t * (1 - eps) + eps / 2``) rather than towards ``eps / C``.
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
    multi_label: bool = False

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("mixup_alpha", check_alpha("mixup_alpha", self.mixup_alpha))
        set_("cutmix_alpha", check_alpha("cutmix_alpha", self.cutmix_alpha))
        set_("prob", check_probability("prob", self.prob))
        set_("switch_prob", check_probability("switch_prob", self.switch_prob))
        set_("label_smoothing", check_probability("label_smoothing", self.label_smoothing))
        check_mode(self.mode)
        check_num_classes(self.num_classes)
        check_bool("correct_lam", self.correct_lam)
        check_bool("multi_label", self.multi_label)
        set_("cutmix_minmax", check_cutmix_minmax(self.cutmix_minmax))
        if self.cutmix_minmax is not None:
            # timm: minmax boxes ignore lambda, so keep the alpha logic simple and the lambda exact.
            set_("cutmix_alpha", 1.0)
            set_("correct_lam", True)
        if self.prob > 0 and self.mixup_alpha == 0 and self.cutmix_alpha == 0:
            raise ValueError(
                "mixup_alpha, cutmix_alpha: expected at least one > 0 (or cutmix_minmax set) while mixing is "
                f"enabled (prob={self.prob}), got mixup_alpha=0 and cutmix_alpha=0; use prob=0 for label "
                "smoothing only"
            )

    @property
    def uses_mixup(self) -> bool:
        return self.mixup_alpha > 0

    @property
    def uses_cutmix(self) -> bool:
        return self.cutmix_alpha > 0
