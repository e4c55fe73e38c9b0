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


def check_cpu(tensor: torch.Tensor, name: str) -> None:
    """A tensor whose memory the kernels can read: on the CPU."""
    if tensor.device.type != "cpu":
        raise ValueError(f"{name}: expected a tensor on cpu (the numba backend runs on the CPU), got {tensor.device}")


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


def mask_planes(pixel_mask: "torch.Tensor | None") -> "tuple[np.ndarray, np.int64]":
    """A checked pixel_mask (B, H, W) uint8 as the kernels read it: a flat array over its planes and
    the stride between them (0: one plane expanded over the batch); an empty array without one."""
    if pixel_mask is None or pixel_mask.numel() == 0:
        return np.empty(0, dtype=np.uint8), np.int64(0)
    return flat_view(pixel_mask), np.int64(pixel_mask.stride(0))


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


@intrinsic
def prefetch_for_read(typingctx, array, index):
    """A hint to fetch ``array[index]`` into L2 (llvm.prefetch: read, locality 2), as mix_cpu.cpp's
    __builtin_prefetch(p, 0, 2). No effect on results; an index past the end does not fault."""
    if not isinstance(array, types.Array) or not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        from numba.core import cgutils

        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, view, [args[1]], wraparound=False,
                                           boundscheck=False)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                                  "llvm.prefetch.p0")
        builder.call(function, [builder.bitcast(pointer, i8p), ir.Constant(i32, 0), ir.Constant(i32, 2),
                                ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen
