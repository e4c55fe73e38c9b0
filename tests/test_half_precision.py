"""float16 and bfloat16: the compiled kernels convert on the bits (csrc/cpu/half_convert.h) and
still give exactly what the torch reference gives, on the values where rounding is delicate:
subnormals, float16's largest values and the ones that round past them to infinity, ties,
infinities, NaNs and -0.0.

* The in-place mix over batches holding every float16 / bfloat16 bit pattern, and the
  out-of-place mix (the collate path) from float32 inputs holding edge values, are compared with the
  reference bit for bit, NaNs by position (the reference's NaN payloads come from torch's vectorised
  casts; the kernels give c10's scalar NaN, 0x7E00 with a sign for float16 and 0x7FC0 for bfloat16).
* tests/cpp/half_convert_check.cpp checks the conversions themselves against c10's scalar ones
  (every 16-bit input of the widenings, millions of float32 inputs of the roundings, each vector
  implementation the CPU can run); FASTMIX_HALF_CHECK_FULL=1 makes it try all 2^32 float32 inputs.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
import torch

import fastmix
from fastmix import MixParams
from .helpers import COMPILED_BACKENDS, HAS_CPP, HAS_NUMBA, reference_mix_into, reference_mix_


ROOT = Path(__file__).resolve().parent.parent
CHECKER = ROOT / "tests" / "cpp" / "half_convert_check.cpp"
HALF_DTYPES = [torch.float16, torch.bfloat16]
# c10's NaN: float16 0x7E00 with the sign of the NaN, bfloat16 always 0x7FC0.
CANONICAL_NAN = {torch.float16: (0x7FFF, 0x7E00), torch.bfloat16: (0xFFFF, 0x7FC0)}


def bits(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous().view(torch.int16).to(torch.int32) & 0xFFFF


def assert_same_values(out: torch.Tensor, expected: torch.Tensor) -> None:
    """Bit for bit where expected is a number (so -0.0 is not 0.0), NaN where it is NaN."""
    nan = torch.isnan(expected)
    assert torch.equal(torch.isnan(out), nan), f"NaN at {int((torch.isnan(out) != nan).sum())} other positions"
    differ = (bits(out) != bits(expected)) & ~nan.contiguous()
    if bool(differ.any()):
        where = differ.nonzero()[0].tolist()
        raise AssertionError(
            f"{int(differ.sum())} values differ, first at {where}: got {out[tuple(where)].item()!r} "
            f"(bits {int(bits(out)[tuple(where)]):#06x}), expected {expected[tuple(where)].item()!r} "
            f"(bits {int(bits(expected)[tuple(where)]):#06x})"
        )


def assert_canonical_nans(out: torch.Tensor) -> None:
    mask, value = CANONICAL_NAN[out.dtype]
    nan_bits = bits(out)[torch.isnan(out).contiguous()]
    assert bool(((nan_bits & mask) == value).all()), f"NaN bits {sorted(set(nan_bits.tolist()))[:8]}"


def every_pattern_batch(dtype: torch.dtype, layout: str, generator: torch.Generator) -> torch.Tensor:
    """(9, 2, 61, 67) (61 * 67 * 2 is no multiple of any vector width, so every sample has a tail)
    holding all 65536 bit patterns of dtype, shuffled, then random ones."""
    shape = (9, 2, 61, 67)
    numel = 9 * 2 * 61 * 67
    patterns = torch.cat([torch.randperm(65536, generator=generator),
                          torch.randint(0, 65536, (numel - 65536,), generator=generator)])
    values = patterns.to(torch.int32).to(torch.int16).view(dtype).view(shape)
    if layout == "channels_last":
        return values.contiguous(memory_format=torch.channels_last)
    if layout == "sliced":  # the generic strided kernel: every other column of a wider batch
        wide = torch.empty(shape[:-1] + (2 * shape[-1],), dtype=dtype)
        wide[..., ::2] = values
        return wide[..., ::2]
    return values


def edge_params(batch: int, generator: torch.Generator, lam_values) -> MixParams:
    partner = torch.randperm(batch, generator=generator)
    kind = torch.randint(0, 3, (batch,), generator=generator).to(torch.uint8)
    kind[: batch // 2] = 1  # at least half blend
    lam = torch.tensor([lam_values[i % len(lam_values)] for i in range(batch)], dtype=torch.float32)
    box = torch.tensor([[5, 40, 3, 50]] * batch)
    return MixParams(partner=partner, lam=lam, kind=kind, box=box)


@pytest.mark.parametrize("backend", COMPILED_BACKENDS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "sliced"])
@pytest.mark.parametrize("dtype", HALF_DTYPES, ids=str)
def test_inplace_every_bit_pattern(backend, layout, dtype):
    generator = torch.Generator().manual_seed(7)
    # 0.5 makes many exact ties; 0 and 1 pass values through; the others round everywhere.
    for lam_values in ([0.5, 0.3, 1.0, 0.0, 0.7], [0.9999, 1e-4, 0.5, 0.123456]):
        images = every_pattern_batch(dtype, layout, generator)
        params = edge_params(images.shape[0], generator, lam_values)
        expected = reference_mix_(images.clone(), params)
        fastmix.mix_(images, params, backend=backend)
        assert_same_values(images, expected)
        blended = (params.kind == 1) & (params.partner != torch.arange(len(params.kind)))
        assert_canonical_nans(images[blended])  # the others keep (or paste) their NaNs as they are


@pytest.mark.skipif(not (HAS_CPP and HAS_NUMBA), reason="needs both the cpp and the numba backend")
@pytest.mark.parametrize("dtype", HALF_DTYPES, ids=str)
def test_inplace_cpp_equals_numba(dtype):
    generator = torch.Generator().manual_seed(11)
    images = every_pattern_batch(dtype, "contiguous", generator)
    params = edge_params(images.shape[0], generator, [0.5, 0.3, 1.0, 0.0])
    by_cpp, by_numba = images.clone(), images.clone()
    fastmix.mix_(by_cpp, params, backend="cpp")
    fastmix.mix_(by_numba, params, backend="numba")
    assert_same_values(by_cpp, by_numba)


def edge_float32_images(batch: int, hwc: bool, generator: torch.Generator) -> torch.Tensor:
    """float32 (B, C, H, W) (or (B, H, W, C)) with the values float16 / bfloat16 rounding is
    delicate on, among random bit patterns and ordinary pixel values."""
    special = torch.tensor([
        0.0, -0.0, 1e-45, -1e-45, 1e-40, 1.1754942e-38,          # float32 subnormals and the smallest normal
        2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -26, 2.0 ** -14, 2.0 ** -14 - 2.0 ** -25,  # float16 subnormal range, ties
        1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11, 1 + 2.0 ** -8, 1 + 3 * 2.0 ** -8,        # ties at 1 (float16, bfloat16)
        65504.0, 65519.996, 65520.0, -65520.0, 70000.0,           # float16's largest, and past it to infinity
        3.3895314e38, 3.3961776e38, 3.4028235e38,                 # bfloat16's largest, and past it
        float("inf"), float("-inf"), float("nan"), -float("nan"),
    ], dtype=torch.float32)
    shape = (batch, 16, 17, 3) if hwc else (batch, 3, 16, 17)
    numel = batch * 3 * 16 * 17
    random_bits = torch.randint(-(2**31), 2**31, (numel,), generator=generator, dtype=torch.int64)
    values = random_bits.to(torch.int32).view(torch.float32).clone()
    ordinary = torch.rand(numel, generator=generator) * 255
    values = torch.where(torch.rand(numel, generator=generator) < 0.5, ordinary, values)
    positions = torch.randperm(numel, generator=generator)[: 4 * len(special)]
    values[positions] = special.repeat(4)
    return values.view(shape)


def mix_into_backend(backend: str):
    if backend == "cpp":
        return torch.ops.fastmix.mix_into_
    from fastmix.backends import numba as numba_backend

    return numba_backend.mix_into_


@pytest.mark.parametrize("backend", COMPILED_BACKENDS)
@pytest.mark.parametrize("hwc", [True, False], ids=["hwc", "chw"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw_out", "nhwc_out"])
@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "normalized"])
@pytest.mark.parametrize("dtype", HALF_DTYPES, ids=str)
def test_mix_into_edge_values(backend, hwc, channels_last, normalize, dtype):
    generator = torch.Generator().manual_seed(3)
    batch = 7
    images = edge_float32_images(batch, hwc, generator)
    params = edge_params(batch, generator, [0.5, 0.3, 1.0, 0.0, 0.61])
    params.box[:] = torch.tensor([2, 11, 3, 14])
    if normalize:
        scale, bias = torch.tensor([1 / 0.229, 1 / 0.224, 1 / 0.225]), torch.tensor([-2.1, -2.0, -1.8])
    else:
        scale, bias = torch.empty(0), torch.empty(0)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    out = torch.empty((batch, 3, 16, 17), dtype=dtype, memory_format=memory_format)
    expected = torch.empty_like(out)
    reference_mix_into(expected, images, params, scale, bias, hwc)
    mix_into_backend(backend)(out, images, *params.as_tuple(), scale, bias, hwc)
    assert_same_values(out, expected)
    assert_canonical_nans(out)


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")


@pytest.mark.slow
@pytest.mark.skipif(_compiler() is None, reason="no C++ compiler found")
def test_conversions_match_c10(tmp_path):
    from torch.utils.cpp_extension import include_paths

    binary = tmp_path / "half_convert_check"
    # The extension's flags (setup.py): no FMA contraction, so a*lam + b*(1-lam) rounds twice.
    command = [_compiler(), "-std=c++17", "-O2", "-ffp-contract=off", "-fno-math-errno", "-w",
               *(f"-I{p}" for p in include_paths()), f"-I{ROOT / 'csrc'}", f"-I{sysconfig.get_paths()['include']}",
               str(CHECKER), "-o", str(binary)]
    build = subprocess.run(command, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-4000:]
    mode = ["full"] if os.environ.get("FASTMIX_HALF_CHECK_FULL") == "1" else []
    run = subprocess.run([str(binary), *mode], capture_output=True, text=True, timeout=1800)
    print(run.stdout)
    assert run.returncode == 0 and run.stdout.rstrip().endswith("all ok"), run.stdout + run.stderr
