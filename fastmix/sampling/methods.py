"""MixMethod: which mixing method drew a sample's params (``MixParams.method``), beside the kind the
kernels read: Mixup blends, CutMix pastes a box, FMix and ClassMix both take the pixels of a mask,
ResizeMix resizes the whole partner into a box (bilinear or nearest, by the policy)."""
from __future__ import annotations

import enum

import numpy as np

from ..backends.mix_kind import MixKind
from .policy import MixPolicy


class MixMethod(enum.IntEnum):
    """The method of one sample (the values stored in ``MixParams.method``)."""

    NONE = 0  #: not mixed
    MIXUP = 1
    CUTMIX = 2
    FMIX = 3
    CLASSMIX = 4
    RESIZEMIX = 5


#: The kind each method's samples are mixed with (ResizeMix's: RESIZE_KIND_OF_INTERPOLATION).
KIND_OF_METHOD = {MixMethod.NONE: MixKind.NONE, MixMethod.MIXUP: MixKind.BLEND, MixMethod.CUTMIX: MixKind.PASTE,
                  MixMethod.FMIX: MixKind.MASK, MixMethod.CLASSMIX: MixKind.MASK}
RESIZE_KIND_OF_INTERPOLATION = {"bilinear": MixKind.RESIZE, "nearest": MixKind.RESIZE_NEAREST}


def kinds_of_methods(method: np.ndarray, policy: MixPolicy) -> np.ndarray:
    """(n,) uint8 MixKind of (n,) MixMethod values under ``policy`` (which says how ResizeMix resizes)."""
    kinds = {**KIND_OF_METHOD, MixMethod.RESIZEMIX: RESIZE_KIND_OF_INTERPOLATION[policy.resizemix_interpolation]}
    table = np.array([int(kinds[m]) for m in MixMethod], dtype=np.uint8)
    return table[method]


def choose_methods(policy: MixPolicy, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) int64 MixMethod values (1..5) drawn by the policy's weights, one uniform draw each."""
    cumulative = np.cumsum(np.asarray(policy.method_weights, dtype=np.float64))
    # A draw in [0, total) lands past the last enabled method never, and in a weight of 0 (an
    # empty interval) never either (side="right").
    return np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right") + 1
