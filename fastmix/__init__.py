"""fastmix: Mixup and CutMix of image batches and their labels, in place, at the speed of one pass.

    import fastmix
    mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=1000)
    images, targets = mix(images, labels)   # images mixed in place; targets (B, 1000) float32
"""
import torch  # noqa: F401  (loads libtorch before fastmix._C)

from .backends import backends
from .collate import CompactTargets, MixupCollate, compact_targets_loss
from .mixup import Mixup
from .ops import apply_mix_, mix_targets
from .params import MixKind, MixParams
from .policy import MixPolicy
from .sampling import sample_params

__version__ = "0.1.0"

__all__ = [
    "Mixup",
    "MixupCollate",
    "CompactTargets",
    "compact_targets_loss",
    "MixPolicy",
    "MixParams",
    "MixKind",
    "apply_mix_",
    "mix_targets",
    "sample_params",
    "backends",
]
