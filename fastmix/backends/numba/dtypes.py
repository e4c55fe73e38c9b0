"""Element types of the numba kernels: loading into the accumulation type and storing back.

numba has no float16 or bfloat16 on the CPU, so both travel as 16-bit integers holding the bits:
**float16 as uint16 and bfloat16 as int16** (``tensor.view(torch.int16)``). The element type alone
then picks the conversion, at compile time:

=========  =====================  ===========================================================
element    accumulation type      store (from the accumulation type)
=========  =====================  ===========================================================
uint8      float32                round half to even, saturate to [0, 255]
uint16     float32 (float16 bits) round to nearest even, as c10::Half (NaN -> 0x7E00 | sign)
int16      float32 (bfloat16 bits) round to nearest even, as c10::BFloat16 (NaN -> 0x7FC0)
float32    float32                as is
float64    float64                as is
=========  =====================  ===========================================================

The float16 conversions are the branch-free ones of the FP16 library that c10::Half uses, so the
results are bit for bit those of torch. All integer bit work is done in int64 (numba widens small
integers anyway, and mixing uint64 with int64 would give floats).
"""
from __future__ import annotations

from . import cache  # noqa: F401  (first: keys numba's disk cache on all of this package's sources)

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

# -- bit casts -------------------------------------------------------------------------------------


@intrinsic
def f32_from_bits(typingctx, bits):
    """float32 whose bits are the low 32 bits of the integer ``bits``."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        value = args[0]
        i32 = ir.IntType(32)
        if bits.bitwidth > 32:
            value = builder.trunc(value, i32)
        elif bits.bitwidth < 32:
            value = builder.zext(value, i32)
        return builder.bitcast(value, ir.FloatType())

    return types.float32(bits), codegen


@intrinsic
def bits_from_f32(typingctx, value):
    """The bits of a float32, as an int64 in [0, 2**32)."""
    if value != types.float32:
        return None

    def codegen(context, builder, signature, args):
        raw = builder.bitcast(args[0], ir.IntType(32))
        return builder.zext(raw, ir.IntType(64))

    return types.int64(types.float32), codegen


# -- bfloat16 <-> float32 --------------------------------------------------------------------------


@njit(nogil=True, cache=True)
def bf16_to_f32(bits):
    """bfloat16 bits (int16) -> float32: the bits become the high half."""
    return f32_from_bits((np.int64(bits) & 0xFFFF) << 16)


@njit(nogil=True, cache=True)
def f32_to_bf16(value):
    """float32 -> bfloat16 bits (int16), rounded to nearest even on the bits; NaN stays a NaN."""
    u = bits_from_f32(value)
    rounded = (u + (((u >> 16) & 1) + 0x7FFF)) >> 16
    if value != value:
        rounded = np.int64(0x7FC0)
    return np.int16(rounded & 0xFFFF)


# -- float16 <-> float32 (FP16 library, as c10::Half) ----------------------------------------------

_EXP_SCALE_DOWN = np.float32(2.0**-112)
_MAGIC_BIAS = np.float32(0.5)
_SCALE_TO_INF = np.float32(2.0**112)
_SCALE_TO_ZERO = np.float32(2.0**-110)


@njit(nogil=True, cache=True)
def f16_to_f32(bits):
    """float16 bits (uint16) -> float32, exactly (subnormals, infinities and NaNs included)."""
    w = (np.int64(bits) & 0xFFFF) << 16
    sign = w & 0x80000000
    two_w = (w + w) & 0xFFFFFFFF
    normalized = f32_from_bits((two_w >> 4) + (0xE0 << 23)) * _EXP_SCALE_DOWN
    denormalized = f32_from_bits((two_w >> 17) | (126 << 23)) - _MAGIC_BIAS
    magnitude = bits_from_f32(normalized) if two_w >= (1 << 27) else bits_from_f32(denormalized)
    return f32_from_bits(sign | magnitude)


@njit(nogil=True, cache=True)
def f32_to_f16(value):
    """float32 -> float16 bits (uint16), rounded to nearest even; NaN -> 0x7E00 with the sign."""
    base = (abs(value) * _SCALE_TO_INF) * _SCALE_TO_ZERO
    w = bits_from_f32(value)
    shl1_w = (w + w) & 0xFFFFFFFF
    sign = w & 0x80000000
    bias = shl1_w & 0xFF000000
    if bias < 0x71000000:
        bias = np.int64(0x71000000)
    base = f32_from_bits((bias >> 1) + 0x07800000) + base
    b = bits_from_f32(base)
    nonsign = ((b >> 13) & 0x7C00) + (b & 0x0FFF)
    if shl1_w > 0xFF000000:
        nonsign = np.int64(0x7E00)
    return np.uint16((sign >> 16) | nonsign)


# -- generic load / store, chosen by element type --------------------------------------------------


def to_acc(x):
    """An element in its accumulation type (float32; float64 for float64)."""


def from_acc(array, value):
    """``value`` (accumulation type) as an element of ``array``'s dtype (rounded, saturated)."""


def acc_weights(array, lam):
    """(lam, 1 - lam) in the accumulation type of ``array``'s dtype, from a float32 lam."""


@overload(to_acc)
def _to_acc(x):
    if x == types.float64 or x == types.float32:
        return lambda x: x
    if x == types.uint8:
        return lambda x: np.float32(x)
    if x == types.uint16:
        return lambda x: f16_to_f32(x)
    if x == types.int16:
        return lambda x: bf16_to_f32(x)
    return None


@overload(from_acc)
def _from_acc(array, value):
    dtype = array.dtype
    if dtype == types.float64:
        return lambda array, value: np.float64(value)
    if dtype == types.float32:
        return lambda array, value: np.float32(value)
    if dtype == types.uint8:

        def to_uint8(array, value):
            # Half to even, then saturated in integers as from_acc<uint8_t> does (mix_cpu.cpp's
            # blend_math.h): 1.3x faster than clamping floats (u8 blend of pairs 2.41 -> 1.89 ms).
            r = np.int32(np.rint(value))
            r = min(max(r, np.int32(0)), np.int32(255))
            return np.uint8(r)

        return to_uint8
    if dtype == types.uint16:
        return lambda array, value: f32_to_f16(np.float32(value))
    if dtype == types.int16:
        return lambda array, value: f32_to_bf16(np.float32(value))
    return None


@overload(acc_weights)
def _acc_weights(array, lam):
    if array.dtype == types.float64:

        def weights64(array, lam):
            own = np.float64(lam)
            return own, np.float64(1.0) - own

        return weights64

    def weights32(array, lam):
        own = np.float32(lam)
        return own, np.float32(1.0) - own

    return weights32
