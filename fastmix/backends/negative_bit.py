"""Tensors with torch's negative bit, handled the same way on every backend.

``x.conj().imag`` is a real view whose memory holds the negated values; torch's own ops negate
them lazily (the bit). The kernels (cpp, cuda, numba) read and write memory, so a call with such a
tensor is run here on resolved tensors: the caller's tensors are checked as they are (the same
checks, the same words as the ops), read arguments are resolved (a copy), and the written one
(images of mix_, out of mix_into_ / collate_mix_) is mixed in a resolved copy that is then copied
back. The results are the torch reference's for the values; only calls with the bit pay for it.

Why not torch's own fallback for the bit (the dispatcher's Negative key, MathBitsFallback.h): for
an op that mutates an argument and returns nothing, as fastmix's ops do, it reads and then writes
the stack slot of a return that does not exist, and corrupts the heap ("free(): corrupted unsorted
chunks", some calls in ten). So the compiled ops get the kernels below on the Negative key
(:func:`register_negative_kernels`), and the numba backend calls them directly.
"""
from __future__ import annotations

from typing import Any, Callable, List, Sequence

import torch

from .checks import check_collate_mix_args, check_mix_args, check_mix_into_args


def has_negative_bit(*tensors: Any) -> bool:
    return any(isinstance(t, torch.Tensor) and t.is_neg() for t in tensors)


def samples_have_negative_bit(samples: Any) -> bool:
    return isinstance(samples, (list, tuple)) and has_negative_bit(*samples)


def _resolved(values: Sequence[Any]) -> List[Any]:
    return [v.resolve_neg() if isinstance(v, torch.Tensor) else v for v in values]


def _run_resolved(run: Callable[..., None], written: torch.Tensor, *args: Any) -> None:
    """run(written', *args') on resolved tensors, then written <- written' (when it was a copy)."""
    target = written.resolve_neg()
    run(target, *_resolved(args))
    if target is not written:
        written.copy_(target)


def _mask_args(pixel_mask, mask_field, field_threshold) -> tuple:  # noqa: ANN001
    """The ops' trailing mask arguments, without the field's when it is not given (the numba
    kernels, which read planes, take only pixel_mask)."""
    return (pixel_mask,) if mask_field is None and field_threshold is None else (pixel_mask, mask_field, field_threshold)


def mix_(run: Callable[..., None], images, partner, lam, kind, box, plan=None, plan_shape=(),  # noqa: ANN001
         pixel_mask=None, mask_field=None, field_threshold=None) -> None:  # noqa: ANN001
    check_mix_args(images, partner, lam, kind, box, plan, plan_shape, pixel_mask, mask_field, field_threshold)
    _run_resolved(run, images, partner, lam, kind, box, plan, plan_shape,
                  *_mask_args(pixel_mask, mask_field, field_threshold))


def mix_into_(run: Callable[..., None], out, images, partner, lam, kind, box, scale, bias, hwc,  # noqa: ANN001
              pixel_mask=None, mask_field=None, field_threshold=None) -> None:  # noqa: ANN001
    check_mix_into_args(out, images, partner, lam, kind, box, scale, bias, hwc, pixel_mask, mask_field, field_threshold)
    _run_resolved(run, out, images, partner, lam, kind, box, scale, bias, hwc,
                  *_mask_args(pixel_mask, mask_field, field_threshold))


def collate_mix_(run: Callable[..., None], out, samples, partner, lam, kind, box, scale, bias, hwc,  # noqa: ANN001
                 pixel_mask=None, mask_field=None, field_threshold=None) -> None:  # noqa: ANN001
    check_collate_mix_args(out, samples, partner, lam, kind, box, scale, bias, hwc, pixel_mask, mask_field,
                           field_threshold)
    _run_resolved(run, out, _resolved(samples), partner, lam, kind, box, scale, bias, hwc,
                  *_mask_args(pixel_mask, mask_field, field_threshold))


def mix_targets_args(*args: Any) -> List[Any]:
    """The arguments of mix_targets, resolved (it only reads them)."""
    return _resolved(args)


_library = None  # kept alive: the registrations last as long as it does


def register_negative_kernels() -> None:
    """Kernels of the compiled ops for the Negative dispatch key, in place of torch's fallback.
    They call the op again on resolved tensors, which no longer carry the key."""
    global _library
    if _library is not None:
        return
    ops = torch.ops.fastmix
    library = torch.library.Library("fastmix", "IMPL")
    library.impl("mix_", lambda *args: mix_(ops.mix_, *args), "Negative")
    library.impl("mix_into_", lambda *args: mix_into_(ops.mix_into_, *args), "Negative")
    library.impl("collate_mix_", lambda *args: collate_mix_(ops.collate_mix_, *args), "Negative")
    _library = library
