"""The ``numba`` backend: the CPU kernels of fastmix._C compiled by numba, for where the extension
is not built or does not load. The same ops with the same arguments, checks and results, bit for
bit (backends/reference.py); one file per operation, as in csrc/cpu/:

    mix_numba.py          mix_(images, partner, lam, kind, box, plan, ...)    ~ csrc/cpu/mix_cpu.cpp
    mix_into_numba.py     mix_into_(out, images, ...), collate_mix_(out, ...) ~ csrc/cpu/mix_into_cpu.cpp
    mix_targets_numba.py  mix_targets(labels, partner, lam, kind, C, eps)     ~ csrc/cpu/mix_targets_cpu.cpp
    blend_math.py         the element loops both mix kernels run              ~ csrc/cpu/blend_math.h
    plan.py               the in-place plan, which samples a mix changes      ~ csrc/mix_plan.h
    dtypes.py, memory.py, cache.py, availability.py: element types, tensors as arrays, the disk cache

They take CPU torch tensors (handed to numba as numpy views: no copies). Kernels are compiled on
first use with ``cache=True`` (to ``__pycache__`` beside these files, or $NUMBA_CACHE_DIR), so later
processes and DataLoader workers load them from disk. They run on ``torch.get_num_threads()`` numba
threads; with one thread (as in DataLoader workers) a serial build of each kernel runs and numba's
thread pool is never started. This package imports without numba: availability.py says why the
backend cannot run.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch

from .. import negative_bit
from ..checks import check_collate_mix_args, check_mix_args, check_mix_into_args
from .availability import require, unavailable_reason  # noqa: F401  (re-exported)


def _field_planes(mask_field: torch.Tensor, field_threshold: torch.Tensor, kind: torch.Tensor,
                  box: torch.Tensor) -> torch.Tensor:
    from .mask_field_numba import field_pixel_mask

    return field_pixel_mask(mask_field, field_threshold, kind, box)


# A tensor with torch's negative bit (x.conj().imag) goes through backends/negative_bit.py, as it
# does for the compiled ops: numba reads memory, which holds the negated values.


@torch.compiler.disable  # numba runs outside the graph (a graph break under torch.compile)
def mix_(images: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor, kind: torch.Tensor, box: torch.Tensor,
         plan: Optional[torch.Tensor] = None, plan_shape: Sequence[int] = (),
         pixel_mask: Optional[torch.Tensor] = None, mask_field: Optional[torch.Tensor] = None,
         field_threshold: Optional[torch.Tensor] = None) -> None:
    """torch.ops.fastmix.mix_ on numba: mix ``images`` (B, ...) in place (any layout, every dtype);
    ``plan`` (the CUDA kernels') is checked and ignored; ``pixel_mask`` (B, H, W) uint8, or
    ``mask_field`` with ``field_threshold``: the MASK samples' pixels (a field's cut into planes
    first: the numba kernels read planes)."""
    require()
    from .mix_numba import mix_ as run

    if mask_field is not None or field_threshold is not None:
        check_mix_args(images, partner, lam, kind, box, plan, plan_shape, pixel_mask, mask_field, field_threshold)
        pixel_mask = _field_planes(mask_field, field_threshold, kind, box)

    if negative_bit.has_negative_bit(images, partner, lam, kind, box):
        return negative_bit.mix_(run, images, partner, lam, kind, box, plan, plan_shape, pixel_mask)
    run(images, partner, lam, kind, box, plan, plan_shape, pixel_mask)


@torch.compiler.disable
def mix_targets(labels: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor, kind: torch.Tensor,
                num_classes: int, smoothing: float) -> torch.Tensor:
    """torch.ops.fastmix.mix_targets on numba: (B, num_classes) float32 soft targets."""
    require()
    from .mix_targets_numba import mix_targets as run

    if negative_bit.has_negative_bit(labels, partner, lam, kind):  # only read
        labels, partner, lam, kind = negative_bit.mix_targets_args(labels, partner, lam, kind)
    return run(labels, partner, lam, kind, num_classes, smoothing)


@torch.compiler.disable
def mix_into_(out: torch.Tensor, images: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor, kind: torch.Tensor,
              box: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, hwc: bool,
              pixel_mask: Optional[torch.Tensor] = None, mask_field: Optional[torch.Tensor] = None,
              field_threshold: Optional[torch.Tensor] = None) -> None:
    """torch.ops.fastmix.mix_into_ on numba: out (B, C, H, W) <- cast(normalize(mix(images)))."""
    require()
    from .mix_into_numba import mix_into_ as run

    if mask_field is not None or field_threshold is not None:
        check_mix_into_args(out, images, partner, lam, kind, box, scale, bias, hwc, pixel_mask, mask_field,
                            field_threshold)
        pixel_mask = _field_planes(mask_field, field_threshold, kind, box)

    if negative_bit.has_negative_bit(out, images, partner, lam, kind, box, scale, bias):
        return negative_bit.mix_into_(run, out, images, partner, lam, kind, box, scale, bias, hwc, pixel_mask)
    run(out, images, partner, lam, kind, box, scale, bias, hwc, pixel_mask)


@torch.compiler.disable
def collate_mix_(out: torch.Tensor, samples: List[torch.Tensor], partner: torch.Tensor, lam: torch.Tensor,
                 kind: torch.Tensor, box: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, hwc: bool,
                 pixel_mask: Optional[torch.Tensor] = None, mask_field: Optional[torch.Tensor] = None,
                 field_threshold: Optional[torch.Tensor] = None) -> None:
    """torch.ops.fastmix.collate_mix_ on numba: like mix_into_, reading B separate samples."""
    require()
    from .mix_into_numba import collate_mix_ as run

    if mask_field is not None or field_threshold is not None:
        check_collate_mix_args(out, samples, partner, lam, kind, box, scale, bias, hwc, pixel_mask, mask_field,
                               field_threshold)
        pixel_mask = _field_planes(mask_field, field_threshold, kind, box)

    if negative_bit.has_negative_bit(out, partner, lam, kind, box, scale, bias) or \
            negative_bit.samples_have_negative_bit(samples):
        return negative_bit.collate_mix_(run, out, samples, partner, lam, kind, box, scale, bias, hwc, pixel_mask)
    run(out, samples, partner, lam, kind, box, scale, bias, hwc, pixel_mask)
