"""The CUDA sources compile, and their kernel code computes what the reference computes.

Runs wherever nvcc is installed, GPU or not (skipped without nvcc):

* every ``csrc/cuda/*.cu`` compiles to an object with the flags the extension is built with,
  against the installed torch's headers (a CPU-only torch wheel lacks one generated CUDA header,
  ``c10/cuda/impl/cuda_cmake_macros.h``: a shim stands in for it);
* ``tests/cuda/emulate_on_host.cu`` -- the kernel headers' per-thread code driven by plain loops --
  builds into a host program, and its results are compared bit for bit with fastmix.backends.reference over
  dtypes, layouts, batch sizes, partner maps, plan group counts and alignments. That checks the
  plan, the grouping, the packs, the paste masks and the arithmetic without a GPU; races between
  real threads and the device intrinsics are left to tests/test_cuda.py on a GPU machine.

The compiles run two at a time (about a minute here: every .cu includes torch's headers).
"""
from __future__ import annotations

import concurrent.futures
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
import torch

from fastmix import MixKind, MixParams

from .helpers import make_images, mix_into_inputs, random_params, random_values, reference_mix_, reference_mix_into, reference_targets

ROOT = Path(__file__).resolve().parent.parent
CUDA_DIR = ROOT / "csrc" / "cuda"
CU_FILES = sorted(p.name for p in CUDA_DIR.glob("*.cu"))
EMULATOR_SOURCE = ROOT / "tests" / "cuda" / "emulate_on_host.cu"  # a test program: not in CU_FILES


def _find_nvcc() -> str | None:
    found = shutil.which("nvcc")
    if found:
        return found
    from torch.utils.cpp_extension import CUDA_HOME

    candidate = os.path.join(CUDA_HOME, "bin", "nvcc") if CUDA_HOME else None
    return candidate if candidate and os.path.exists(candidate) else None


NVCC = _find_nvcc()
pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc not found")

# The generated header a CUDA build of torch ships (c10/cuda/impl/cuda_cmake_macros.h.in):
# C10_CUDA_BUILD_SHARED_LIBS is its only macro (it matters on Windows only).
CMAKE_MACROS_SHIM = "#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n"


def _extension_nvcc_flags() -> list[str]:
    """The nvcc flags torch.utils.cpp_extension and setup.py give the .cu files of fastmix._C."""
    from torch.utils import cpp_extension

    common = getattr(
        cpp_extension,
        "COMMON_NVCC_FLAGS",
        ["-D__CUDA_NO_HALF_OPERATORS__", "-D__CUDA_NO_HALF_CONVERSIONS__", "-D__CUDA_NO_BFLOAT16_CONVERSIONS__",
         "-D__CUDA_NO_HALF2_OPERATORS__", "--expt-relaxed-constexpr"],
    )
    abi = int(getattr(torch._C, "_GLIBCXX_USE_CXX11_ABI", True))
    return list(common) + [
        "-std=c++20",
        "-DTORCH_API_INCLUDE_EXTENSION_H",
        "-DTORCH_EXTENSION_NAME=_C",
        f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
        '-DFASTMIX_TORCH_VERSION="%s"' % torch.__version__,  # setup.py's define_macros
        "-DFASTMIX_WITH_CUDA=1",
        "-O3",  # setup.py's extra_compile_args["nvcc"]
        "--fmad=false",
        "-Xcompiler", "-fPIC",
        "-arch=sm_90",
    ]


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Starts every compile at once on a pool of two; maps a source name to its future."""
    work = tmp_path_factory.mktemp("cuda_compile")
    shim = work / "include" / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h"
    shim.parent.mkdir(parents=True)
    shim.write_text(CMAKE_MACROS_SHIM)
    from torch.utils.cpp_extension import include_paths

    includes = [f"-I{work / 'include'}"] + [f"-I{p}" for p in include_paths()]
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    futures = {
        # First: the parity tests below need it, and it builds in seconds (no torch headers).
        EMULATOR_SOURCE.name: pool.submit(
            _run,
            [NVCC, "-std=c++20", f"-I{ROOT / 'csrc'}", str(EMULATOR_SOURCE), "-o", str(work / "emulate_on_host"),
             "-O2", "--fmad=false", "-Xcompiler", "-ffp-contract=off", "-arch=sm_90"],
        ),
    }
    for name in CU_FILES:
        futures[name] = pool.submit(
            _run, [NVCC, *includes, *_extension_nvcc_flags(), "-c", str(CUDA_DIR / name), "-o", str(work / f"{name}.o")]
        )
    yield work, futures
    pool.shutdown(wait=True, cancel_futures=True)


def _check_build(result: subprocess.CompletedProcess, name: str) -> None:
    assert result.returncode == 0, f"nvcc failed on {name}:\n{result.stdout}\n{result.stderr[-20000:]}"


def test_every_cuda_source_is_listed():
    assert {"mix_cuda.cu", "mix_targets_cuda.cu", "mix_into_cuda.cu"} <= set(CU_FILES)


@pytest.mark.slow
@pytest.mark.parametrize("name", CU_FILES)
def test_cuda_source_compiles(builds, name):
    work, futures = builds
    _check_build(futures[name].result(), name)
    assert (work / f"{name}.o").stat().st_size > 0


# ---------------------------------------------------------------------------------------------
# The kernels' code, run on the host, against the reference.

DTYPE_CODES = {torch.uint8: 0, torch.float16: 1, torch.bfloat16: 2, torch.float32: 3, torch.float64: 4}
BITS = {torch.float16: torch.int16, torch.bfloat16: torch.int16, torch.float32: torch.int32, torch.float64: torch.int64}


def _i64(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}q", *values)


def _raw(t: torch.Tensor) -> bytes:
    return t.contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b""


def _params_bytes(params: MixParams) -> bytes:
    return b"".join(_raw(t) for t in params.as_tuple())


def _bitwise(t: torch.Tensor) -> torch.Tensor:
    return t.view(BITS[t.dtype]) if t.dtype in BITS else t


def _emulate(builds, payload: bytes, tmp_path) -> bytes:
    work, futures = builds
    _check_build(futures[EMULATOR_SOURCE.name].result(), EMULATOR_SOURCE.name)
    src, dst = tmp_path / "cases.bin", tmp_path / "results.bin"
    src.write_bytes(payload)
    result = _run([str(work / "emulate_on_host"), str(src), str(dst)])
    assert result.returncode == 0, result.stderr
    return dst.read_bytes()


def _storage_of(x: torch.Tensor) -> torch.Tensor:
    """The whole storage under x, as a flat tensor of x's dtype."""
    count = x.untyped_storage().nbytes() // x.element_size()
    return torch.empty(0, dtype=x.dtype).set_(x.untyped_storage(), 0, (count,), (1,))


def _mix_case(x: torch.Tensor, params: MixParams, groups: int, misalign: int) -> bytes:
    storage = _storage_of(x)
    return (
        _i64(0, DTYPE_CODES[x.dtype], x.dim(), *x.shape, *x.stride(), storage.numel(), x.storage_offset(),
             misalign * x.element_size(), groups)
        + _params_bytes(params)
        + _raw(storage)
    )


def _structured_partners(batch: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Partner maps with the shapes the plan must handle: flips, rolls (one B-cycle), stars, chains."""
    idx = torch.arange(batch)
    maps = [idx.flip(0), idx.roll(1), idx.roll(-3), torch.zeros(batch, dtype=torch.int64), (idx + 1).clamp(max=batch - 1)]
    maps.append(torch.randint(0, batch, (batch,), generator=generator))
    maps.append(torch.randperm(batch, generator=generator))
    return maps


def _mix_cases(generator: torch.Generator):
    """(images, params, groups, misalign) over dtypes, layouts, sizes, partner maps, group counts."""
    layouts = ["contiguous", "channels_last", "video", "flat", "sliced", "batch_inner", "hwc_permuted"]
    for trial in range(70):
        dtype = list(DTYPE_CODES)[trial % 5]
        layout = layouts[(trial // 5) % len(layouts)]
        batch = int(torch.randint(1, 40, (), generator=generator))
        channels = int(torch.randint(1, 5, (), generator=generator))
        if trial % 3 == 0:  # sizes that allow 16-byte packs
            height, width = 4, 16
        else:
            height, width = (int(v) for v in torch.randint(1, 12, (2,), generator=generator))
        images = make_images(layout, batch, channels, height, width, dtype, generator)
        params = random_params(batch, height, width, generator, allow_paste=layout != "flat")
        groups = [0, 1, 3, 1024][trial % 4]
        yield images, params, groups, 0
    # Every structured partner map, on both the packed and the scalar dense paths.
    for dtype in DTYPE_CODES:
        for shape in [(33, 2, 4, 16), (12, 3, 5, 7)]:
            for partner in _structured_partners(shape[0], generator):
                images = random_values(shape, dtype, generator)
                params = random_params(shape[0], shape[2], shape[3], generator)
                params = MixParams(partner, params.lam, params.kind, params.box)
                yield images, params, int(torch.randint(0, 9, (), generator=generator)), 0
    # Misaligned data pointers: the scalar dense path for sizes that would otherwise take packs.
    for dtype in DTYPE_CODES:
        base = random_values((7 * 2 * 4 * 16 + 1,), dtype, generator)
        images = base[1:].view(7, 2, 4, 16)
        yield images, random_params(7, 4, 16, generator), 0, 0
        images = random_values((7, 2, 4, 16), dtype, generator)
        yield images, random_params(7, 4, 16, generator), 2, 1  # the storage itself misaligned
    # Larger batches: many components over many groups, one long cycle; past 1024 samples the
    # plan kernel keeps its scratch in global instead of shared memory.
    for batch in [300, 1500]:
        for partner in [torch.arange(batch).flip(0), torch.arange(batch).roll(7),
                        torch.randint(0, batch, (batch,), generator=generator)]:
            images = random_values((batch, 1, 2, 8), torch.float32, generator)
            params = random_params(batch, 2, 8, generator)
            yield images, MixParams(partner, params.lam, params.kind, params.box), 0, 0


@pytest.mark.slow
def test_emulated_mix_matches_reference(builds, tmp_path):
    generator = torch.Generator().manual_seed(1234)
    cases = list(_mix_cases(generator))
    payload = b"".join(_mix_case(x, p, g, m) for x, p, g, m in cases)
    results = _emulate(builds, payload, tmp_path)
    pos = 0
    for n, (x, params, groups, misalign) in enumerate(cases):
        storage = _storage_of(x)
        nbytes = storage.numel() * x.element_size()
        after = torch.frombuffer(bytearray(results[pos:pos + nbytes]), dtype=torch.uint8).view(x.dtype)
        pos += nbytes
        got = after.as_strided(x.shape, x.stride(), x.storage_offset())
        expected = reference_mix_(x.clone(), params)
        assert torch.equal(_bitwise(got), _bitwise(expected)), (
            f"case {n}: {x.dtype} {tuple(x.shape)} strides {x.stride()} groups {groups} misalign {misalign} "
            f"{params}"
        )
        # Nothing outside the tensor's elements was touched.
        mask = torch.ones(storage.numel(), dtype=torch.bool)
        mask.as_strided(x.shape, x.stride(), x.storage_offset()).fill_(False)
        assert torch.equal(_bitwise(after[mask]), _bitwise(storage[mask])), f"case {n}: wrote outside the tensor"
    assert pos == len(results)


@pytest.mark.slow
def test_emulated_blend_rounds_half_to_even(builds, tmp_path):
    images = torch.tensor([[1, 2, 250, 7], [2, 3, 255, 8]], dtype=torch.uint8).view(2, 1, 1, 4)
    params = MixParams(
        partner=torch.tensor([1, 0]),
        lam=torch.tensor([0.5, 0.5]),
        kind=torch.full((2,), int(MixKind.BLEND), dtype=torch.uint8),
        box=torch.zeros(2, 4, dtype=torch.int64),
    )
    results = _emulate(builds, _mix_case(images, params, 0, 0), tmp_path)
    assert list(results) == [2, 2, 252, 8, 2, 2, 252, 8]


OUT_CODES = {torch.uint8: 0, torch.float16: 1, torch.bfloat16: 2, torch.float32: 3}


def _into_cases(generator: torch.Generator):
    """Every dtype pair, layout pair and normalisation, for 1, 3, 4 and 5 channels, sizes with and
    without packs, and misaligned inputs / outputs (which take the general kernel)."""
    misaligns = [(0, 0), (0, 0), (0, 0), (1, 0), (0, 1), (1, 1)]
    n = 0
    for in_dtype in [torch.uint8, torch.float32]:
        for out_dtype in OUT_CODES:
            if out_dtype == torch.uint8 and in_dtype != torch.uint8:
                continue
            for normalize in [False, True] if out_dtype != torch.uint8 else [False]:
                for hwc in [False, True]:
                    for nhwc_out in [False, True]:
                        for channels in [1, 3, 4, 5]:
                            for packed in [True, False]:
                                n += 1
                                batch = int(torch.randint(1, 12, (), generator=generator))
                                if packed:
                                    height, width = 4, 8
                                else:
                                    height, width = (int(v) for v in torch.randint(1, 10, (2,), generator=generator))
                                misalign = misaligns[n % len(misaligns)]
                                yield (in_dtype, out_dtype, batch, channels, height, width, hwc, nhwc_out, normalize,
                                       misalign)


@pytest.mark.slow
def test_emulated_mix_into_matches_reference(builds, tmp_path):
    generator = torch.Generator().manual_seed(99)
    cases, payload = [], b""
    for case in _into_cases(generator):
        in_dtype, out_dtype, batch, c, h, w, hwc, nhwc_out, normalize, misalign = case
        images, params, scale, bias = mix_into_inputs(in_dtype, batch, c, h, w, hwc, normalize, generator)
        cases.append((case, images, params, scale, bias))
        payload += (
            _i64(1, DTYPE_CODES[in_dtype], OUT_CODES[out_dtype], batch, c, h, w, hwc, nhwc_out, normalize,
                 misalign[0] * images.element_size(), misalign[1] * torch.empty(0, dtype=out_dtype).element_size())
            + _params_bytes(params)
            + _raw(scale if normalize else torch.zeros(c))
            + _raw(bias if normalize else torch.zeros(c))
            + _raw(images)
        )
    results = _emulate(builds, payload, tmp_path)
    pos = 0
    for case, images, params, scale, bias in cases:
        in_dtype, out_dtype, batch, c, h, w, hwc, nhwc_out, normalize, misalign = case
        nbytes = batch * c * h * w * torch.empty(0, dtype=out_dtype).element_size()
        flat = torch.frombuffer(bytearray(results[pos:pos + nbytes]), dtype=torch.uint8).view(out_dtype)
        pos += nbytes
        got = flat.view(batch, h, w, c).permute(0, 3, 1, 2) if nhwc_out else flat.view(batch, c, h, w)
        out = torch.empty(batch, c, h, w, dtype=out_dtype)
        expected = reference_mix_into(out, images, params, scale, bias, hwc)
        assert torch.equal(_bitwise(got), _bitwise(expected)), f"{case}: {params}"
    assert pos == len(results)


@pytest.mark.slow
def test_emulated_targets_match_reference(builds, tmp_path):
    generator = torch.Generator().manual_seed(7)
    cases, payload = [], b""
    for trial in range(40):
        batch = int(torch.randint(1, 40, (), generator=generator))
        num_classes = int(torch.randint(1, 30, (), generator=generator))
        smoothing = [0.0, 0.1, 0.25, 1.0][trial % 4]
        dense = trial % 2 == 1
        if dense:
            labels = torch.rand(batch, num_classes, generator=generator).softmax(dim=1)
        else:
            labels = torch.randint(0, num_classes, (batch,), generator=generator)
        params = random_params(batch, 4, 4, generator)
        cases.append((labels, params, num_classes, smoothing))
        payload += (
            _i64(2, dense, batch, num_classes) + struct.pack("<d", smoothing) + _params_bytes(params) + _raw(labels)
        )
    results = _emulate(builds, payload, tmp_path)
    pos = 0
    for labels, params, num_classes, smoothing in cases:
        nbytes = labels.shape[0] * num_classes * 4
        got = torch.frombuffer(bytearray(results[pos:pos + nbytes]), dtype=torch.float32).view(-1, num_classes)
        pos += nbytes
        expected = reference_targets(labels, params, num_classes, smoothing)
        assert torch.equal(got.view(torch.int32), expected.view(torch.int32)), f"{labels} {params}"
    assert pos == len(results)
