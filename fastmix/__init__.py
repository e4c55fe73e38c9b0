"""fastmix: Mixup and CutMix of image batches and their labels, in place, at the speed of one pass.

    import fastmix
    mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=1000)
    images, targets = mix(images, labels)   # images mixed in place; targets (B, 1000) float32

The library is what this imports; the command-line tools (``python -m fastmix bench|preview``)
live in fastmix.bench and fastmix.preview and load only when run.
"""
import torch  # noqa: F401  (loads libtorch before fastmix._C)

from .backends import available_backends
from .collate import MixupCollate
from .functional import apply_mix_, mix_, mix_targets
from .mixup import Mixup
from .sampling import MixKind, MixMethod, MixParams, MixPolicy, sample_params
from .masks import MaskTargets, mixed_mask_loss
from .targets import CompactTargets, compact_targets_loss
from .timm_compat import FastCollateMixup

__version__ = "0.2.0"

__all__ = [
    "Mixup",
    "MixupCollate",
    "FastCollateMixup",
    "CompactTargets",
    "MaskTargets",
    "mixed_mask_loss",
    "compact_targets_loss",
    "MixPolicy",
    "MixParams",
    "MixKind",
    "MixMethod",
    "mix_",
    "mix_targets",
    "sample_params",
    "available_backends",
    "apply_mix_",
]
