"""MixPolicy: the Mixup/CutMix knobs, with timm's meanings, and the checks of every knob (run when a
policy is built: at construction, and on every write of a knob during training, which builds a new
policy in fastmix/shared_settings.py)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Tuple

from ..backends.checks import MAX_NUM_CLASSES, type_name

MODES = ("batch", "pair", "elem")


# -- the knobs' checks: each returns the value as it is kept, or raises naming the knob ------------


def is_real_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_probability(name: str, value: Any) -> float:
    """A float in [0, 1] (NaN refused)."""
    if not is_real_number(value):
        raise TypeError(f"{name}: expected a float in [0, 1], got {type_name(value)}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: expected a float in [0, 1], got {value}")
    return float(value)


def check_alpha(name: str, value: Any) -> float:
    """A finite float >= 0."""
    if not is_real_number(value):
        raise TypeError(f"{name}: expected a float >= 0, got {type_name(value)}")
    if math.isnan(value) or value < 0 or math.isinf(value):
        raise ValueError(f"{name}: expected a finite float >= 0, got {value}")
    return float(value)


def check_positive_int(name: str, value: Any, maximum: Optional[int] = None) -> int:
    """An int >= 1 (bool refused), and <= ``maximum`` when given."""
    expected = "an int >= 1" if maximum is None else f"an int in [1, {maximum}]"
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected {expected}, got {type_name(value)}")
    if value < 1 or (maximum is not None and value > maximum):
        raise ValueError(f"{name}: expected {expected}, got {value}")
    return value


def check_num_classes(value: Any) -> int:
    """num_classes: an int in [1, MAX_NUM_CLASSES] (bool refused; the bound is argued where it is defined)."""
    return check_positive_int("num_classes", value, MAX_NUM_CLASSES)


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected a bool, got {type_name(value)}")
    return value


def check_mode(value: Any) -> str:
    if value not in MODES:
        raise ValueError(f"mode: expected one of {', '.join(repr(m) for m in MODES)}, got {value!r}")
    return value


def check_seed(value: Any) -> Optional[int]:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"seed: expected an int or None, got {type_name(value)}")
    return value


def check_cutmix_minmax(value: Any) -> Optional[Tuple[float, float]]:
    """None or (min, max) with 0 <= min < max <= 1."""
    if value is None:
        return None
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(is_real_number(v) for v in value)
    if not ok or not 0.0 <= value[0] < value[1] <= 1.0:
        raise ValueError(f"cutmix_minmax: expected None or (min, max) with 0 <= min < max <= 1, got {value!r}")
    return float(value[0]), float(value[1])


#: The methods a policy may choose among, in the order of ``MixPolicy.method_probs`` (and of
#: fastmix.MixMethod's values 1..5).
METHODS = ("mixup", "cutmix", "fmix", "classmix", "resizemix")

#: ResizeMix's resize modes (F.interpolate's names; fastmix.MixKind.RESIZE and RESIZE_NEAREST).
RESIZE_INTERPOLATIONS = ("bilinear", "nearest")


def check_decay_power(value: Any) -> float:
    """fmix_decay_power: a finite float > 0 (the spectrum's amplitude falls as 1 / f**decay_power)."""
    if not is_real_number(value):
        raise TypeError(f"fmix_decay_power: expected a float > 0, got {type_name(value)}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"fmix_decay_power: expected a finite float > 0, got {value}")
    return float(value)


def check_lam_range(low: Any, high: Any) -> Tuple[float, float]:
    """resizemix_lam_min, resizemix_lam_max: floats with 0 <= min <= max <= 1 (ResizeMix's lambda,
    the fraction of the image left uncovered, is drawn in [min, max])."""
    for name, value in (("resizemix_lam_min", low), ("resizemix_lam_max", high)):
        if not is_real_number(value):
            raise TypeError(f"{name}: expected a float in [0, 1], got {type_name(value)}")
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError("resizemix_lam_min, resizemix_lam_max: expected 0 <= resizemix_lam_min <= resizemix_lam_max "
                         f"<= 1, got {low} and {high}")
    return float(low), float(high)


def check_interpolation(value: Any) -> str:
    if value not in RESIZE_INTERPOLATIONS:
        raise ValueError("resizemix_interpolation: expected one of "
                         f"{', '.join(repr(m) for m in RESIZE_INTERPOLATIONS)}, got {value!r}")
    return value


def check_method_probs(value: Any) -> Optional[Tuple[float, ...]]:
    """None, or a mapping of method names (METHODS) to finite weights >= 0, not all 0 (mmpretrain's
    ``probs`` of RandomBatchAugment, by name); kept as one weight per METHODS entry, 0 where absent."""
    if value is None:
        return None
    if isinstance(value, tuple) and len(value) == len(METHODS) and all(is_real_number(v) for v in value):
        value = dict(zip(METHODS, value))  # the stored form, as a write of the same policy passes it
    if not isinstance(value, dict):
        raise TypeError(f"method_probs: expected None or a dict of method names to weights, got {type_name(value)}")
    for name, weight in value.items():
        if name not in METHODS:
            raise ValueError(f"method_probs: expected keys among {', '.join(repr(m) for m in METHODS)}, got {name!r}")
        if not is_real_number(weight) or not (math.isfinite(weight) and weight >= 0):
            raise ValueError(f"method_probs[{name!r}]: expected a finite float >= 0, got {weight!r}")
    weights = tuple(float(value.get(name, 0.0)) for name in METHODS)
    if not any(weights):
        raise ValueError(f"method_probs: expected at least one weight > 0, got {value!r}")
    return weights


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
        fmix_alpha: FMix (Harris et al. 2020) lambda ~ Beta(fmix_alpha, fmix_alpha); 0 turns FMix off.
        fmix_decay_power: FMix's decay power: the Fourier noise's amplitude falls as 1 / f**decay_power
            (the authors' default 3; larger gives smoother masks).
        classmix: ClassMix (Olsson et al. 2021), for segmentation: a sample takes the pixels of half
            of the classes in its partner's mask (ignore_index left out). Needs masks.
        resizemix_alpha: ResizeMix (Qin et al. 2020, mmpretrain's ``ResizeMix``): lambda ~
            Beta(resizemix_alpha, resizemix_alpha) mapped to [resizemix_lam_min, resizemix_lam_max];
            the whole partner is resized to a box of sides sqrt(1 - lambda) * (H, W) at a uniform
            centre (clipped, as CutMix's) and pasted there. 0 turns ResizeMix off.
        resizemix_lam_min, resizemix_lam_max: that range (mmpretrain's lam_min, lam_max: 0.1, 0.8).
        resizemix_interpolation: "bilinear" or "nearest" (F.interpolate's rule, align_corners=False,
            no antialias, as mmpretrain calls it); the sample's kind is MixKind.RESIZE or RESIZE_NEAREST.
        method_probs: relative weights of the enabled methods, by name (``{"mixup": 1, "fmix": 2}``);
            None: FMix, ClassMix and ResizeMix weigh 1 each and Mixup and CutMix together 2, split by
            switch_prob (so with only Mixup and CutMix on, switch_prob means what it means in timm).
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
    fmix_alpha: float = 0.0
    fmix_decay_power: float = 3.0
    classmix: bool = False
    resizemix_alpha: float = 0.0
    resizemix_lam_min: float = 0.1
    resizemix_lam_max: float = 0.8
    resizemix_interpolation: str = "bilinear"
    method_probs: Optional[Tuple[float, ...]] = None

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
        set_("fmix_alpha", check_alpha("fmix_alpha", self.fmix_alpha))
        set_("fmix_decay_power", check_decay_power(self.fmix_decay_power))
        check_bool("classmix", self.classmix)
        set_("resizemix_alpha", check_alpha("resizemix_alpha", self.resizemix_alpha))
        low, high = check_lam_range(self.resizemix_lam_min, self.resizemix_lam_max)
        set_("resizemix_lam_min", low)
        set_("resizemix_lam_max", high)
        check_interpolation(self.resizemix_interpolation)
        set_("method_probs", check_method_probs(self.method_probs))
        if self.cutmix_minmax is not None:
            # timm: minmax boxes ignore lambda, so keep the alpha logic simple and the lambda exact.
            set_("cutmix_alpha", 1.0)
            set_("correct_lam", True)
        if self.prob > 0 and not self.enabled_methods:
            raise ValueError(
                "mixup_alpha, cutmix_alpha: expected at least one > 0 (or cutmix_minmax set, fmix_alpha > 0, "
                f"resizemix_alpha > 0 or classmix) while mixing is enabled (prob={self.prob}), got mixup_alpha=0 and cutmix_alpha=0; use "
                "prob=0 for label smoothing only"
            )
        if self.method_probs is not None:
            on = self.enabled_methods
            for name, weight in zip(METHODS, self.method_probs):
                if weight > 0 and name not in on:
                    raise ValueError(f"method_probs[{name!r}]: expected a weight only for an enabled method "
                                     f"({', '.join(on) or 'none'}), got {weight}")

    @property
    def method_probs_by_name(self) -> Optional[dict]:
        """method_probs as the dict it was given from (None when unset)."""
        if self.method_probs is None:
            return None
        return {name: weight for name, weight in zip(METHODS, self.method_probs) if weight}

    @property
    def enabled_methods(self) -> Tuple[str, ...]:
        """The methods that are on, in METHODS order."""
        on = (self.uses_mixup, self.uses_cutmix, self.fmix_alpha > 0, self.classmix, self.resizemix_alpha > 0)
        return tuple(name for name, used in zip(METHODS, on) if used)

    @property
    def method_weights(self) -> Tuple[float, ...]:
        """One weight per METHODS entry (0 for a method that is off): method_probs, or the default
        rule above."""
        if self.method_probs is not None:
            return self.method_probs
        on = self.enabled_methods
        both = self.uses_mixup and self.uses_cutmix
        default = {"mixup": 2 * (1 - self.switch_prob) if both else 1.0, "cutmix": 2 * self.switch_prob if both else 1.0,
                   "fmix": 1.0, "classmix": 1.0, "resizemix": 1.0}
        return tuple(default[name] if name in on else 0.0 for name in METHODS)

    @property
    def uses_only_mixup_and_cutmix(self) -> bool:
        """Only timm's two methods, chosen by switch_prob: sampled as before the other methods
        existed, draw for draw (the timm parity tests replay those streams)."""
        return self.method_probs is None and set(self.enabled_methods) <= {"mixup", "cutmix"}

    @property
    def needs_height_and_width(self) -> bool:
        """CutMix, FMix, ClassMix or ResizeMix may run: the images need (H, W)."""
        return self.uses_cutmix or self.uses_masks_of_pixels or self.resizemix_alpha > 0

    @property
    def uses_masks_of_pixels(self) -> bool:
        """FMix or ClassMix may run: the images need (H, W)."""
        return not {"fmix", "classmix"}.isdisjoint(self.enabled_methods)

    @property
    def uses_mixup(self) -> bool:
        return self.mixup_alpha > 0

    @property
    def uses_cutmix(self) -> bool:
        return self.cutmix_alpha > 0
