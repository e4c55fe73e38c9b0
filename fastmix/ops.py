"""The fastmix operators: torch.ops.fastmix.mix_ / mix_targets, their fake (meta) kernels for
torch.compile, and the functional API that picks a backend for them."""
from __future__ import annotations

import torch

from . import reference
from .backends import load_extension, resolve_backend
from .params import MixParams, check_params


def _register_fakes() -> None:
    @torch.library.register_fake("fastmix::mix_")
    def _mix_fake(images, partner, lam, kind, box):  # noqa: ANN001 - signature fixed by the schema
        return None

    @torch.library.register_fake("fastmix::mix_into")
    def _mix_into_fake(out, images, partner, lam, kind, box, scale, bias, hwc):  # noqa: ANN001
        return None

    @torch.library.register_fake("fastmix::collate_mix_")
    def _collate_mix_fake(out, samples, partner, lam, kind, box, scale, bias, hwc):  # noqa: ANN001
        return None

    @torch.library.register_fake("fastmix::mix_targets")
    def _mix_targets_fake(labels, partner, lam, kind, num_classes, smoothing):  # noqa: ANN001
        return labels.new_empty((labels.shape[0], num_classes), dtype=torch.float32)


if load_extension() is not None:
    _register_fakes()


def _spatial(images: torch.Tensor) -> tuple[int | None, int | None]:
    return (images.shape[-2], images.shape[-1]) if images.dim() >= 3 else (None, None)


def apply_mix_(images: torch.Tensor, params: MixParams, backend: str = "auto") -> torch.Tensor:
    """Mix ``images`` in place as ``params`` says; returns the same tensor.

    Args:
        images: (B, ...) uint8, float16, bfloat16, float32 or float64; any layout. CutMix boxes
            apply to the last two dims (H, W), on every channel (and every frame of a video).
        params: a MixParams for batch size B (on any device; copied to the images' device).
        backend: "auto", "cpp", "cuda", "numba" or "torch".
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images: expected a torch.Tensor, got {type(images).__name__}")
    from .validation import check_images

    check_images(images, needs_spatial=False)
    height, width = _spatial(images)
    if not torch.compiler.is_compiling():  # value checks read the params; the op checks them too
        check_params(params, images.shape[0], height, width)
    return apply_mix_unchecked_(images, params, backend)


def apply_mix_unchecked_(images: torch.Tensor, params: MixParams, backend: str) -> torch.Tensor:
    """apply_mix_ for inputs already checked (params from our own sampler)."""
    chosen = resolve_backend(backend, images.device)
    if images.shape[0] == 0:
        return images
    if chosen == "torch":
        return reference.mix_reference_(images, params)
    if chosen == "numba":
        from . import numba_backend

        numba_backend.mix_(images, *params.to(images.device).as_tuple())
        return images
    torch.ops.fastmix.mix_(images, *params.to(images.device, non_blocking=True).as_tuple())
    return images


def mix_targets(
    labels: torch.Tensor, params: MixParams, num_classes: int, smoothing: float = 0.0, backend: str = "auto"
) -> torch.Tensor:
    """(B, num_classes) float32 soft targets for class indices (B,) or dense targets (B, C).

    Row i is ``lam[i] * s(labels[i]) + (1 - lam[i]) * s(labels[partner[i]])`` where ``s`` applies
    label smoothing (on = 1 - eps + eps/C, off = eps/C; dense t -> t*on + (1-t)*off), or just
    ``s(labels[i])`` for a sample left alone.
    """
    from .validation import check_labels

    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise (TypeError if not isinstance(num_classes, int) else ValueError)(
            f"num_classes: expected an int >= 1, got {num_classes!r}"
        )
    if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not 0.0 <= smoothing <= 1.0:
        raise (TypeError if not isinstance(smoothing, (int, float)) else ValueError)(
            f"smoothing: expected a float in [0, 1], got {smoothing!r}"
        )
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels: expected a torch.Tensor, got {type(labels).__name__}")
    check_labels(labels, labels.shape[0] if labels.dim() else 0, labels.device, num_classes)
    check_params(params, labels.shape[0], None, None, check_boxes=False)
    return mix_targets_unchecked(labels, params, num_classes, smoothing, backend)


def mix_targets_unchecked(
    labels: torch.Tensor, params: MixParams, num_classes: int, smoothing: float, backend: str
) -> torch.Tensor:
    """mix_targets for inputs already checked."""
    chosen = resolve_backend(backend, labels.device)
    if chosen == "torch":
        return reference.mix_targets_reference(labels, params, num_classes, smoothing)
    if chosen == "numba":
        from . import numba_backend

        partner, lam, kind, _ = params.to(labels.device).as_tuple()
        return numba_backend.mix_targets(labels, partner, lam, kind, num_classes, float(smoothing))
    partner, lam, kind, _ = params.to(labels.device, non_blocking=True).as_tuple()
    return torch.ops.fastmix.mix_targets(labels, partner, lam, kind, num_classes, float(smoothing))
