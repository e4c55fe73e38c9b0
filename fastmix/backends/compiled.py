"""The compiled backends, ``cpp`` and ``cuda``: the ops of fastmix._C, called through the
dispatcher (torch.ops.fastmix.*), which picks the CPU or CUDA kernels by the tensors' device.
Sources: csrc/cpu/*_cpu.cpp and csrc/cuda/*_cuda.cu, one file per operation.

The dispatcher parses the arguments against the schema before any kernel runs, and refuses a
wrong type (a list where a Tensor goes, an int beyond int64) with a RuntimeError; these functions
turn that refusal into fastmix's TypeError naming the argument. (A direct torch.ops.fastmix call
keeps the dispatcher's wording: nothing of fastmix runs before it.)
"""
from __future__ import annotations

import functools
import re
from typing import Callable, TypeVar

import torch

_SCHEMA_MISMATCH = re.compile(r"Expected a value of type '([^']+)' for argument '(\w+)' but instead found type '([^']+)'")
F = TypeVar("F", bound=Callable)


def _named_type_errors(function: F) -> F:
    @functools.wraps(function)
    def call(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - pixel_mask goes by name
        try:
            return function(*args, **kwargs)
        except RuntimeError as exc:
            found = _SCHEMA_MISMATCH.search(str(exc))
            if found is None:
                raise
            expected, name, got = found.groups()
            detail = " (out of the int64 range)" if expected == got == "int" else ""
            raise TypeError(f"{name}: expected {expected}, got {got}{detail}") from None

    return call  # type: ignore[return-value]


@_named_type_errors
def mix_(images, partner, lam, kind, box, plan=None, plan_shape=(), pixel_mask=None, mask_field=None,  # noqa: ANN001 - the op's schema
         field_threshold=None) -> None:  # noqa: ANN001
    torch.ops.fastmix.mix_(images, partner, lam, kind, box, plan, list(plan_shape), pixel_mask, mask_field,
                           field_threshold)


@_named_type_errors
def mix_into_(out, images, partner, lam, kind, box, scale, bias, hwc, pixel_mask=None, mask_field=None,  # noqa: ANN001
              field_threshold=None) -> None:  # noqa: ANN001
    torch.ops.fastmix.mix_into_(out, images, partner, lam, kind, box, scale, bias, hwc, pixel_mask, mask_field,
                                field_threshold)


@_named_type_errors
def collate_mix_(out, samples, partner, lam, kind, box, scale, bias, hwc, pixel_mask=None, mask_field=None,  # noqa: ANN001
                 field_threshold=None) -> None:  # noqa: ANN001
    torch.ops.fastmix.collate_mix_(out, samples, partner, lam, kind, box, scale, bias, hwc, pixel_mask, mask_field,
                                   field_threshold)


@_named_type_errors
def mix_targets(labels, partner, lam, kind, num_classes, smoothing) -> torch.Tensor:  # noqa: ANN001
    return torch.ops.fastmix.mix_targets(labels, partner, lam, kind, num_classes, smoothing)
