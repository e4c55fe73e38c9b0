"""Torch tensors as the numpy arrays the kernels take, sharing memory (no copies).

A tensor of any layout is handed over as a flat 1-D array over the memory it spans, plus its
strides in elements: the kernels address element (i, j, ...) as ``i * stride[0] + j * stride[1] ...``.
float16 and bfloat16 go as their bits (see dtypes.py). Separately allocated samples (the collate
path) go as an array of addresses, turned back into arrays inside the kernels.
"""
from __future__ import annotations

from . import cache  # noqa: F401  (first: keys numba's disk cache on all of this package's sources)

import numpy as np
import torch
from llvmlite import ir
from numba import carray, njit, types
from numba.extending import intrinsic


def bits_view(tensor: torch.Tensor) -> torch.Tensor:
    """float16 and bfloat16 tensors as int16 views of their bits (others as they are)."""
    if tensor.dtype in (torch.float16, torch.bfloat16):
        return tensor.view(torch.int16)
    return tensor


def flat_view(tensor: torch.Tensor) -> np.ndarray:
    """1-D array over the span of memory that ``tensor`` (numel > 0) covers, from its first element,
    in the kernels' element type (float16 as uint16 bits, bfloat16 as int16 bits; see dtypes.py)."""
    span = 1 + sum((size - 1) * stride for size, stride in zip(tensor.shape, tensor.stride()))
    raw = bits_view(tensor)
    flat = torch.as_strided(raw, (span,), (1,), raw.storage_offset()).numpy()
    return flat.view(np.uint16) if tensor.dtype == torch.float16 else flat


@intrinsic
def _voidptr(typingctx, address):
    if not isinstance(address, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], ir.IntType(8).as_pointer())

    return types.voidptr(address), codegen


@njit(nogil=True, cache=True)
def array_at(address, length, like):
    """The 1-D array of ``length`` elements of ``like``'s dtype at ``address`` (kept alive by the caller)."""
    return carray(_voidptr(address), length, like.dtype)
