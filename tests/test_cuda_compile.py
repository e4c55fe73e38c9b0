"""The CUDA sources compile, and their kernel code computes what the reference computes.

Runs wherever nvcc is installed, GPU or not (skipped without nvcc):

* every ``csrc/cuda/*.cu`` compiles to an object with the flags the extension is built with,
  against the installed torch's headers (a CPU-only torch wheel lacks one generated CUDA header,
  ``c10/cuda/impl/cuda_cmake_macros.h``: a shim stands in for it);
* ``tests/cuda/emulate_on_host.cu`` -- the kernel headers' per-thread code driven by plain loops --
  builds into a host program, and its results are compared bit for bit with fastmix.backends.reference over
  dtypes, layouts, batch sizes, partner maps, plan segment lengths and alignments. The in-place
  plan is csrc/mix_plan.h's make_device_plan, the host builder the CUDA op takes its plan from
  (the same bytes as torch.ops.fastmix.device_plan), cut into segments run in two launches where
  cycles are long, and the device-built plan of a raw call inside CUDA graph capture. MASK samples
  (FMix, ClassMix) run on every dtype, layout and plan of the other kinds, with pixel masks
  expanded over the batch (batch stride 0), one plane per sample, and planes at any batch stride;
  a MASK sample without pixel masks trips the kernels' device-side assert. RESIZE samples
  (ResizeMix) run beside every other kind on every dtype and layout: their batches take the copy
  plan, host-built or device-built, and the out-of-place kernels read the partner resized. That checks the plan,
  the grouping, the head slots, the packs, the paste and pixel masks and the arithmetic without a
  GPU; races between real threads and the device intrinsics are left to tests/test_cuda.py on a
  GPU machine.

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

import fastmix
import fastmix.backends.mask_field
from fastmix import MixKind, MixParams

from .helpers import (HAS_CPP, make_images, mix_into_inputs, random_params, random_values, reference_mix_,
                      reference_mix_into, reference_targets)

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


def _run_emulator(builds, payload: bytes, tmp_path) -> tuple[subprocess.CompletedProcess, Path]:
    work, futures = builds
    _check_build(futures[EMULATOR_SOURCE.name].result(), EMULATOR_SOURCE.name)
    src, dst = tmp_path / "cases.bin", tmp_path / "results.bin"
    src.write_bytes(payload)
    return _run([str(work / "emulate_on_host"), str(src), str(dst)]), dst


def _emulate(builds, payload: bytes, tmp_path) -> bytes:
    result, dst = _run_emulator(builds, payload, tmp_path)
    assert result.returncode == 0, result.stderr
    return dst.read_bytes()


def _storage_of(x: torch.Tensor) -> torch.Tensor:
    """The whole storage under x, as a flat tensor of x's dtype."""
    count = x.untyped_storage().nbytes() // x.element_size()
    return torch.empty(0, dtype=x.dtype).set_(x.untyped_storage(), 0, (count,), (1,))


HOST_PLAN, COPY_PLAN = 0, 1  # the plan of a case: make_device_plan's, or the capture path's CopyPlanFn


def _mask_bytes(pixel_mask: torch.Tensor | None) -> bytes:
    """The emulator's pixel_mask field (read_mask): absent, or its whole storage, offset and batch stride."""
    if pixel_mask is None:
        return _i64(0)
    storage = _storage_of(pixel_mask)
    return _i64(1, storage.numel(), pixel_mask.storage_offset(), pixel_mask.stride(0)) + _raw(storage)


def _mix_case(x: torch.Tensor, params: MixParams, plan: int, segment: int, misalign: int) -> bytes:
    storage = _storage_of(x)
    return (
        _i64(0, DTYPE_CODES[x.dtype], x.dim(), *x.shape, *x.stride(), storage.numel(), x.storage_offset(),
             misalign * x.element_size(), plan, segment)
        + _params_bytes(params)
        + _raw(storage)
        + _mask_bytes(params.pixel_mask)
    )


MASK_FORMS = ["expanded", "per-sample", "strided"]


def _pixel_mask(form: str, batch: int, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """(B, H, W) uint8 pixel masks, any nonzero value meaning "the partner's": one plane expanded over
    the batch (batch stride 0, as batch-mode FMix), a plane per sample, or planes a row apart in a
    taller buffer (a batch stride of (H + 1) W and a storage offset of W)."""
    def planes(count, rows):
        density = float(torch.rand((), generator=generator))
        values = torch.randint(1, 256, (count, rows, width), generator=generator, dtype=torch.uint8)
        return values * (torch.rand(count, rows, width, generator=generator) < density)

    if form == "expanded":
        return planes(1, height).expand(batch, height, width)
    if form == "per-sample":
        return planes(batch, height)
    assert form == "strided", form
    return planes(batch, height + 1)[:, 1:]


def _mask_params(batch: int, height: int, width: int, generator: torch.Generator, form: str, all_mask: bool = False,
                 partner: torch.Tensor | None = None) -> MixParams:
    """random_params with every kind (MASK too: every sample when ``all_mask``) and pixel masks of
    ``form``; ``partner`` replaces the partner map."""
    params = random_params(batch, height, width, generator, allow_mask=True)
    kind = torch.full_like(params.kind, int(MixKind.MASK)) if all_mask else params.kind
    return MixParams(params.partner if partner is None else partner, params.lam, kind, params.box,
                     pixel_mask=_pixel_mask(form, batch, height, width, generator))


def _odd_flip(batch: int) -> torch.Tensor:
    """fastmix's partners for an odd batch: a flip, with the middle sample in a 3-cycle."""
    from fastmix.sampling.partners import derangement_partners

    return derangement_partners(batch)


def _structured_partners(batch: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Partner maps with the shapes the plan must handle: flips (and the odd batch's 3-cycle), rolls
    (one B-cycle), stars, chains, random functional graphs and permutations."""
    idx = torch.arange(batch)
    maps = [idx.flip(0), idx.roll(1), idx.roll(-3), torch.zeros(batch, dtype=torch.int64), (idx + 1).clamp(max=batch - 1)]
    maps.append(torch.randint(0, batch, (batch,), generator=generator))
    maps.append(torch.randperm(batch, generator=generator))
    if batch % 2 and batch >= 3:
        maps.append(_odd_flip(batch))
    return maps


def _mix_cases(generator: torch.Generator):
    """(images, params, plan, segment, misalign) over dtypes, layouts, sizes, partner maps, segment
    lengths (0: the default, kSegmentSteps; short ones cut even small batches into two launches)."""
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
        plan = COPY_PLAN if trial % 7 == 6 else HOST_PLAN
        yield images, params, plan, [0, 1, 3, 2][trial % 4], 0
    # Every structured partner map, on both the packed and the scalar dense paths.
    for dtype in DTYPE_CODES:
        for shape in [(33, 2, 4, 16), (12, 3, 5, 7), (13, 2, 3, 5)]:
            for n, partner in enumerate(_structured_partners(shape[0], generator)):
                images = random_values(shape, dtype, generator)
                params = random_params(shape[0], shape[2], shape[3], generator)
                params = MixParams(partner, params.lam, params.kind, params.box)
                plan = COPY_PLAN if n == 3 and dtype == torch.float32 else HOST_PLAN
                yield images, params, plan, int(torch.randint(0, 9, (), generator=generator)), 0
    # Misaligned data pointers: the scalar dense path for sizes that would otherwise take packs.
    for dtype in DTYPE_CODES:
        base = random_values((7 * 2 * 4 * 16 + 1,), dtype, generator)
        images = base[1:].view(7, 2, 4, 16)
        yield images, random_params(7, 4, 16, generator), HOST_PLAN, 0, 0
        images = random_values((7, 2, 4, 16), dtype, generator)
        yield images, random_params(7, 4, 16, generator), HOST_PLAN, 2, 1  # the storage itself misaligned
    # Larger batches, at the default segment length: many components, long cycles cut into
    # segments (a roll, a random permutation), long chains and stars.
    for batch in [300, 1500]:
        for partner in _structured_partners(batch, generator):
            images = random_values((batch, 1, 2, 8), torch.float32, generator)
            params = random_params(batch, 2, 8, generator)
            yield images, MixParams(partner, params.lam, params.kind, params.box), HOST_PLAN, 0, 0
    images = random_values((301, 2, 3, 5), torch.float16, generator)  # the strided path, one long cycle
    params = random_params(301, 3, 3, generator)
    yield images[:, :, :, 1:4], MixParams(torch.arange(301).roll(5), params.lam, params.kind, params.box), HOST_PLAN, 0, 0
    yield from _mask_mix_cases(generator)
    yield from _resize_mix_cases(generator)


def _resize_mix_cases(generator: torch.Generator):
    """RESIZE and RESIZE_NEAREST samples beside every other kind, on every dtype and spatial layout,
    packed and scalar sizes (H or W of 1 too), both plans; then swapped pairs and a cycle that
    resize on every sample (batch-mode ResizeMix)."""
    layouts = ["contiguous", "channels_last", "video", "sliced", "batch_inner", "hwc_permuted"]
    trial = 0
    for dtype in DTYPE_CODES:
        for layout in layouts:
            trial += 1
            batch = int(torch.randint(2, 20, (), generator=generator))
            sizes = [(4, 16), (1, 9), (7, 1)] + [tuple(int(v) for v in torch.randint(1, 12, (2,), generator=generator))]
            height, width = sizes[trial % 4]
            images = make_images(layout, batch, 3, height, width, dtype, generator)
            params = random_params(batch, height, width, generator, allow_mask=trial % 2 == 0, allow_resize=True)
            yield images, params, COPY_PLAN if trial % 5 == 4 else HOST_PLAN, [0, 1, 3][trial % 3], 0
    for dtype in DTYPE_CODES:
        for batch in [12, 13]:
            for partner in [torch.arange(batch).flip(0), torch.arange(batch).roll(1), _odd_flip(batch)]:
                images = random_values((batch, 2, 6, 16), dtype, generator)
                params = random_params(batch, 6, 16, generator)
                kind = torch.full((batch,), int(MixKind.RESIZE if batch % 2 else MixKind.RESIZE_NEAREST), dtype=torch.uint8)
                yield images, MixParams(partner, params.lam, kind, params.box), HOST_PLAN, 0, 0


def _mask_mix_cases(generator: torch.Generator):
    """MASK samples beside every other kind, on every dtype and spatial layout, each form of pixel
    masks, packed and scalar sizes, both plans and cut segments; then swapped pairs and long cycles
    that mask on every sample."""
    layouts = ["contiguous", "channels_last", "video", "sliced", "batch_inner", "hwc_permuted"]
    trial = 0
    for dtype in DTYPE_CODES:
        for layout in layouts:
            trial += 1
            form = MASK_FORMS[trial % 3]
            batch = int(torch.randint(1, 20, (), generator=generator))
            height, width = (4, 16) if trial % 2 else tuple(int(v) for v in torch.randint(1, 10, (2,), generator=generator))
            images = make_images(layout, batch, 3, height, width, dtype, generator)
            params = _mask_params(batch, height, width, generator, form)
            yield images, params, COPY_PLAN if trial % 5 == 4 else HOST_PLAN, [0, 1, 3][trial % 3], 0
    for dtype in DTYPE_CODES:
        for batch in [12, 13]:
            for partner in [torch.arange(batch).flip(0), torch.arange(batch).roll(1), _odd_flip(batch)]:
                images = random_values((batch, 2, 4, 16), dtype, generator)
                params = _mask_params(batch, 4, 16, generator, MASK_FORMS[batch % 3], all_mask=True, partner=partner)
                yield images, params, HOST_PLAN, 2, 0


@pytest.mark.slow
def test_emulated_mix_matches_reference(builds, tmp_path):
    generator = torch.Generator().manual_seed(1234)
    cases = list(_mix_cases(generator))
    payload = b"".join(_mix_case(*case) for case in cases)
    results = _emulate(builds, payload, tmp_path)
    pos = 0
    launches_seen = set()
    for n, (x, params, plan, segment, misalign) in enumerate(cases):
        launches = struct.unpack_from("<q", results, pos)[0]
        pos += 8
        storage = _storage_of(x)
        nbytes = storage.numel() * x.element_size()
        after = torch.frombuffer(bytearray(results[pos:pos + nbytes]), dtype=torch.uint8).view(x.dtype)
        pos += nbytes
        got = after.as_strided(x.shape, x.stride(), x.storage_offset())
        expected = reference_mix_(x.clone(), params)
        assert torch.equal(_bitwise(got), _bitwise(expected)), (
            f"case {n}: {x.dtype} {tuple(x.shape)} strides {x.stride()} plan {plan} segment {segment} misalign "
            f"{misalign} {params}"
        )
        # Nothing outside the tensor's elements was touched.
        mask = torch.ones(storage.numel(), dtype=torch.bool)
        mask.as_strided(x.shape, x.stride(), x.storage_offset()).fill_(False)
        assert torch.equal(_bitwise(after[mask]), _bitwise(storage[mask])), f"case {n}: wrote outside the tensor"
        launches_seen.add((plan, launches))
    assert pos == len(results)
    # One launch for plans without cut cycles, two where segments' heads were saved first, and the
    # capture path's plan kernel and its two launches.
    assert {(HOST_PLAN, 1), (HOST_PLAN, 2), (COPY_PLAN, 3)} <= launches_seen, launches_seen


@pytest.mark.slow
def test_emulated_mask_without_pixel_masks_trips_the_device_assert(builds, tmp_path):
    """The CUDA op never reads kind on the host, so a MASK sample given no pixel_mask must stop at
    the kernels' device-side assert rather than read a null plane."""
    images = torch.arange(2 * 1 * 2 * 4, dtype=torch.float32).view(2, 1, 2, 4)
    params = MixParams(torch.tensor([1, 0]), torch.tensor([0.5, 0.5]),
                       torch.tensor([int(MixKind.MASK), int(MixKind.BLEND)], dtype=torch.uint8),
                       torch.zeros(2, 4, dtype=torch.int64))
    result, _ = _run_emulator(builds, _mix_case(images, params, HOST_PLAN, 0, 0), tmp_path)
    assert result.returncode != 0
    assert "device-side assert failed: m.data != nullptr" in result.stderr, result.stderr


def _emulated_plans(builds, tmp_path, cases) -> list[torch.Tensor]:
    """make_device_plan's bytes, built by the emulator, for (params, segment) cases."""
    payload = b"".join(_i64(3, params.batch_size, segment) + _params_bytes(params) for params, segment in cases)
    results = _emulate(builds, payload, tmp_path)
    plans, pos = [], 0
    for _ in cases:
        size = struct.unpack_from("<q", results, pos)[0]
        plans.append(torch.frombuffer(bytearray(results[pos + 8:pos + 8 + size]), dtype=torch.uint8))
        pos += 8 + size
    assert pos == len(results)
    return plans


@pytest.mark.slow
def test_the_emulation_runs_the_plan_the_cuda_op_is_given(builds, tmp_path):
    """The emulator's plans are torch.ops.fastmix.device_plan's, byte for byte, for every partner map
    the tests use: the plan that fastmix.Mixup builds and copies beside the params, and that the op
    builds itself for GPU params."""
    if not HAS_CPP:
        pytest.skip("fastmix._C is not built here: nothing to compare the emulator's plans with")
    generator = torch.Generator().manual_seed(55)
    cases = []
    for batch in [1, 2, 7, 12, 13, 33, 256, 1500]:
        for partner in _structured_partners(batch, generator):
            params = random_params(batch, 4, 4, generator, allow_resize=batch % 2 == 1)
            cases.append(MixParams(partner, params.lam, params.kind, params.box))
    for params, plan in zip(cases, _emulated_plans(builds, tmp_path, [(p, 0) for p in cases])):
        assert torch.equal(plan, torch.ops.fastmix.device_plan(*params.as_tuple())), params.partner


@pytest.mark.slow
def test_emulated_blend_rounds_half_to_even(builds, tmp_path):
    images = torch.tensor([[1, 2, 250, 7], [2, 3, 255, 8]], dtype=torch.uint8).view(2, 1, 1, 4)
    params = MixParams(
        partner=torch.tensor([1, 0]),
        lam=torch.tensor([0.5, 0.5]),
        kind=torch.full((2,), int(MixKind.BLEND), dtype=torch.uint8),
        box=torch.zeros(2, 4, dtype=torch.int64),
    )
    results = _emulate(builds, _mix_case(images, params, HOST_PLAN, 0, 0), tmp_path)
    assert list(results[8:]) == [2, 2, 252, 8, 2, 2, 252, 8]


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
    for n, case in enumerate(_into_cases(generator)):
        in_dtype, out_dtype, batch, c, h, w, hwc, nhwc_out, normalize, misalign = case
        images, params, scale, bias = mix_into_inputs(in_dtype, batch, c, h, w, hwc, normalize, generator)
        partner = params.partner
        if n % 2:  # swapped pairs, which one thread writes both of: a flip (odd: its 3-cycle too)
            partner = _odd_flip(batch) if batch % 2 and batch >= 3 else torch.arange(batch).flip(0)
            params = MixParams(partner, params.lam, params.kind, params.box)
        if n % 3 == 2:  # MASK samples beside the other kinds, each form of pixel masks
            params = _mask_params(batch, h, w, generator, MASK_FORMS[n % 9 // 3], partner=partner)
        elif n % 6 == 1:  # RESIZE samples beside the other kinds (a swapped pair with one never shares a thread)
            resize = random_params(batch, h, w, generator, allow_resize=True)
            params = MixParams(partner, params.lam, resize.kind, params.box)
        cases.append((case, images, params, scale, bias))
        payload += (
            _i64(1, DTYPE_CODES[in_dtype], OUT_CODES[out_dtype], batch, c, h, w, hwc, nhwc_out, normalize,
                 misalign[0] * images.element_size(), misalign[1] * torch.empty(0, dtype=out_dtype).element_size())
            + _params_bytes(params)
            + _raw(scale if normalize else torch.zeros(c))
            + _raw(bias if normalize else torch.zeros(c))
            + _raw(images)
            + _mask_bytes(params.pixel_mask)
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


def test_emulated_field_planes_match_the_definition(builds, tmp_path):
    """The CUDA ops' cut of a mask_field (mask_field_kernels.cuh's CutFieldFn, on the host): each
    MASK sample's plane is the field rolled by its window and compared with its threshold, as
    fastmix/backends/mask_field.py defines it (FMix's elem-mode params, and every shift); the
    planes of other samples are zeros."""
    cases, payload = [], b""
    for trial, (batch, h, w) in enumerate([(9, 7, 11), (16, 12, 12), (5, 1, 30), (4, 33, 2)]):
        mix = fastmix.Mixup(mixup_alpha=0.8 if trial % 2 else 0.0, fmix_alpha=1.0, mode="elem", num_classes=10,
                            seed=trial)
        params = mix.sample(batch, h, w)
        assert params.mask_field is not None
        cases.append(params)
        payload += (_i64(4, batch, h, w) + _params_bytes(params) + _raw(params.mask_field)
                    + _raw(params.field_threshold))
    results = _emulate(builds, payload, tmp_path)
    pos = 0
    for params in cases:
        expected = fastmix.backends.mask_field.field_pixel_mask(params.mask_field, params.field_threshold,
                                                                params.kind, params.box)
        nbytes = expected.numel()
        got = torch.frombuffer(bytearray(results[pos:pos + nbytes]), dtype=torch.uint8).view(expected.shape)
        pos += nbytes
        assert torch.equal(got, expected), f"{params}"
    assert pos == len(results)
