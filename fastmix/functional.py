"""The functional API: apply a MixParams to a batch, or to its labels, with a chosen backend.

    params = mix.sample(B, H, W)                           # fastmix.Mixup.sample, or sample_params
    fastmix.mix_(images, params)                           # in place
    targets = fastmix.mix_targets(labels, params, num_classes=1000, smoothing=0.1)
"""
from __future__ import annotations

import warnings

import torch

from .backends import resolve_backend
from .backends.device_params import mix_args
from .backends.checks import check_class_indices, check_labels_layout, check_num_classes_and_smoothing
from .mixup import check_images
from .sampling.params import MixParams, check_params


def mix_(images: torch.Tensor, params: MixParams, backend: str = "auto") -> torch.Tensor:
    """Mix ``images`` in place as ``params`` says; returns the same tensor.

    Args:
        images: (B, ...) uint8, float16, bfloat16, float32 or float64; any layout. CutMix boxes
            apply to the last two dims (H, W), on every channel (and every frame of a video).
        params: a MixParams for batch size B (on any device; copied to the images' device). On a GPU,
            the cuda backend's in-place plan is built from them on the host and copied with them in
            one non-blocking copy (params already on a GPU come to the host for it: a sync).
        backend: "auto", "cpp", "cuda", "numba" or "torch".
    """
    check_images(images, needs_spatial=False)
    chosen = resolve_backend(backend, images.device)
    if torch.compiler.is_compiling():  # value checks and the plan read the params: the op does both
        if images.shape[0]:
            moved = params.to(images.device, non_blocking=True)
            chosen.mix_(images, *moved.as_tuple(), **moved.mask_args())
        return images
    check_params(params, images.shape[0], tuple(images.shape))
    if images.shape[0] == 0:
        return images
    host = params if params.device.type == "cpu" else params.to("cpu")
    mask_args = params.mask_args_to(images.device)
    chosen.mix_(images, *mix_args(host.as_tuple(), images.device, with_plan=chosen.name == "cuda"), **mask_args)
    return images


def apply_mix_(images: torch.Tensor, params: MixParams, backend: str = "auto") -> torch.Tensor:
    """The name of :func:`mix_` before fastmix 0.2 (deprecated)."""
    warnings.warn("fastmix.apply_mix_ is now fastmix.mix_ (the op's name in every layer)", DeprecationWarning, stacklevel=2)
    return mix_(images, params, backend)


def mix_targets(
    labels: torch.Tensor, params: MixParams, num_classes: int, smoothing: float = 0.0, backend: str = "auto"
) -> torch.Tensor:
    """(B, num_classes) float32 soft targets for class indices (B,) or dense targets (B, C).

    Row i is ``lam[i] * s(labels[i]) + (1 - lam[i]) * s(labels[partner[i]])`` where ``s`` applies
    label smoothing (on = 1 - eps + eps/C, off = eps/C; dense t -> t*on + (1-t)*off), or just
    ``s(labels[i])`` for a sample left alone.
    """
    check_num_classes_and_smoothing(num_classes, smoothing)
    check_labels_layout(labels, num_classes)
    if labels.dim() == 1 and labels.device.type == "cpu":  # values on the host only: a GPU read would sync
        check_class_indices(labels, num_classes)
    chosen = resolve_backend(backend, labels.device)
    check_params(params, labels.shape[0], None, check_boxes=False)
    partner, lam, kind, _ = params.to(labels.device, non_blocking=True).as_tuple()
    return chosen.mix_targets(labels, partner, lam, kind, num_classes, float(smoothing))
