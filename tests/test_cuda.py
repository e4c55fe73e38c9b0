"""The CUDA kernels produce exactly what the torch reference produces, bit for bit, on the device:
mix_ (every dtype, layout, batch size and partner map), mix_targets, mix_into_; end to end through
fastmix.Mixup; on a side stream; inside a CUDA graph (so: no host sync); under torch.compile; and
opcheck-clean. Also at the limits: NaN pixels in float16/bfloat16 (the bits of the CPU backends),
more samples than the grid has rows (B > 65535), and a sample of more than 2**31 elements (skipped,
with the reason, where the GPU has too little free memory).

Every output a test reads is poisoned first, twice, with complementary bytes (POISON_BYTES), so
an element that no kernel wrote fails the comparison: a given ``out`` is filled; what an op
allocates (mix_targets' targets, the masks' targets) comes from a private memory pool whose every
block was filled first (poisoned_allocations).

Skipped where the cuda backend is unavailable (no GPU, or built without CUDA), with the reason
"cuda backend unavailable: ...": benchmarks/gpu_check.sh counts a run of this file in which no
test ran, or one skipped for that reason, as a failure."""
import contextlib
import importlib.util
import os
import zlib

import pytest
import torch

import fastmix
from fastmix import MixKind, MixParams

from .helpers import (DTYPES, HAS_CPP, HAS_NUMBA, LABEL_FORMS, LAYOUTS, dense_mask_targets, make_images, make_labels,
                      mix_into_inputs, random_params, random_values, reference_mask_targets, reference_mix_,
                      reference_mix_into, reference_targets, requires_cuda)

pytestmark = requires_cuda

BITS = {torch.float16: torch.int16, torch.bfloat16: torch.int16, torch.float32: torch.int32, torch.float64: torch.int64}


def dtype_id(value):
    """Test ids that name dtypes (test_mix_any_partner_map[1500-float32]): benchmarks/gpu_check.sh
    selects tests by id for compute-sanitizer."""
    return str(value).removeprefix("torch.") if isinstance(value, torch.dtype) else None


def bitwise(t: torch.Tensor) -> torch.Tensor:
    """A view that torch.equal compares bit for bit (-0.0 != 0.0, NaN payloads count)."""
    return t.view(BITS[t.dtype]) if t.dtype in BITS else t


def storage_of(x: torch.Tensor) -> torch.Tensor:
    count = x.untyped_storage().nbytes() // x.element_size()
    return torch.empty(0, dtype=x.dtype, device=x.device).set_(x.untyped_storage(), 0, (count,), (1,))


def to_cuda_same_layout(x: torch.Tensor) -> torch.Tensor:
    """x on the GPU with the same sizes, strides and storage offset (gaps and all)."""
    storage = storage_of(x).cuda()
    return storage.as_strided(x.shape, x.stride(), x.storage_offset())


# Complementary bit patterns: an element that nothing wrote keeps one of them, and no value a kernel
# writes equals both, so of the two runs (one per byte) at least one fails.
POISON_BYTES = (0xAB, 0x54)
# compute-sanitizer runs (benchmarks/gpu_check.sh) turn torch's caching allocator off: then freed
# memory goes back to the driver and what an op allocates cannot be poisoned beforehand.
CACHING_ALLOCATOR = os.environ.get("PYTORCH_NO_CUDA_MEMORY_CACHING", "0") in ("0", "")


def fill_bytes_(x: torch.Tensor, byte: int) -> torch.Tensor:
    """Every byte of x's storage (the gaps of a strided view too) set to ``byte``; returns x."""
    storage_of(x).view(torch.uint8).fill_(byte)
    return x


class Poison:
    """The pool and the byte ranges poisoned_allocations filled (merged where adjacent)."""

    def __init__(self, pool, ranges):
        self.pool, self.ranges = pool, ranges

    def holds(self, t: torch.Tensor) -> bool:
        storage = t.untyped_storage()
        start, end = storage.data_ptr(), storage.data_ptr() + storage.nbytes()
        return any(lo <= start and end <= hi for lo, hi in self.ranges)


@contextlib.contextmanager
def poisoned_allocations(byte: int, small_segments: int = 4, large_bytes: int = 10 << 20):
    """Inside the block, CUDA allocations on the current stream come from a private pool whose
    every cached block was filled with ``byte``: ``small_segments`` 2 MiB segments of the
    small-block pool (sizes up to 1 MiB; two 1 MiB blocks fill a segment) and one segment of
    ``large_bytes`` (at least 10 MiB: the caching allocator gives a smaller large request a 20 MiB
    segment) for larger ones. Yields a Poison. (A released pool's cached memory returns to the
    driver at torch.cuda.empty_cache(), which _release_cached_memory calls after each test.)"""
    if not CACHING_ALLOCATOR:
        yield Poison(None, [])
        return
    pool = torch.cuda.MemPool()
    with torch.cuda.use_mem_pool(pool):
        blocks = [torch.empty(1 << 20, dtype=torch.uint8, device="cuda") for _ in range(2 * small_segments)]
        blocks.append(torch.empty(large_bytes, dtype=torch.uint8, device="cuda"))
        spans = sorted((b.data_ptr(), b.data_ptr() + b.numel()) for b in blocks)
        for b in blocks:
            b.fill_(byte)
        del blocks, b  # back to the pool, filled
        ranges = []
        for lo, hi in spans:
            if ranges and ranges[-1][1] == lo:
                ranges[-1] = (ranges[-1][0], hi)
            else:
                ranges.append((lo, hi))
        yield Poison(pool, ranges)


@pytest.fixture(autouse=True)
def _release_cached_memory():
    """The poisoned pools of a test, and its batches, go back to the driver after it."""
    yield
    torch.cuda.empty_cache()


def assert_allocated_in_poison(t: torch.Tensor, poison: Poison) -> None:
    """The op's output came from the poisoned pool (so an element it did not write would show)."""
    if CACHING_ALLOCATOR and t.numel():
        assert poison.holds(t), "the output was not allocated in the poisoned pool: the poison did not reach it"


def assert_mix_matches(images_cpu: torch.Tensor, params: MixParams, via: str) -> None:
    expected = reference_mix_(images_cpu.clone(), params)
    images = to_cuda_same_layout(images_cpu)
    storage_before = storage_of(images).clone()
    ptr, strides = images.data_ptr(), images.stride()
    if via == "mix_":
        out = fastmix.mix_(images, params, backend="cuda")
        assert out is images
    else:
        torch.ops.fastmix.mix_(images, *params.to(images.device).as_tuple())
    torch.cuda.synchronize()
    assert images.data_ptr() == ptr and images.stride() == strides
    assert torch.equal(bitwise(images.cpu()), bitwise(expected))
    # Nothing outside the tensor's elements (the gaps of a strided view) was written.
    outside = torch.ones(storage_before.numel(), dtype=torch.bool, device="cuda")
    outside.as_strided(images.shape, images.stride(), images.storage_offset()).fill_(False)
    assert torch.equal(bitwise(storage_of(images)[outside]), bitwise(storage_before[outside]))


@pytest.mark.parametrize("via", ["mix_", "op"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_mix_matches_reference(dtype, layout, via):
    generator = torch.Generator().manual_seed(zlib.crc32(f"{dtype} {layout} {via}".encode()))
    for trial, batch in enumerate([1, 2, 3, 5, 8, 33, 64, 65]):
        if trial % 2:
            height, width = 8, 16  # sizes that take the packed kernel
        else:
            height, width = (int(v) for v in torch.randint(1, 14, (2,), generator=generator))
        channels = int(torch.randint(1, 5, (), generator=generator))
        images = make_images(layout, batch, channels, height, width, dtype, generator)
        params = random_params(batch, height, width, generator, allow_paste=layout != "flat")
        assert_mix_matches(images, params, via)


@pytest.mark.parametrize("via", ["mix_", "op"])
@pytest.mark.parametrize("layout", [layout for layout in LAYOUTS if layout != "flat"])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_resizes_match_reference(dtype, layout, via):
    """ResizeMix's kinds beside the others: such a batch takes the copy plan (every sample to
    scratch, then each mixed sample from its partner's slot: host-built through either call), and
    a box's lanes read the partner's original resized (bilinear and nearest)."""
    generator = torch.Generator().manual_seed(zlib.crc32(f"resize {dtype} {layout} {via}".encode()))
    for trial, batch in enumerate([2, 3, 8, 33, 64]):
        height, width = (8, 16) if trial % 2 else tuple(int(v) for v in torch.randint(1, 14, (2,), generator=generator))
        images = make_images(layout, batch, int(torch.randint(1, 5, (), generator=generator)), height, width, dtype,
                             generator)
        params = random_params(batch, height, width, generator, allow_resize=True)
        if trial == 0:  # batch-mode ResizeMix: swapped pairs, every sample resized
            kind = torch.full((batch,), int(MixKind.RESIZE), dtype=torch.uint8)
            params = MixParams(torch.arange(batch).flip(0), params.lam, kind, params.box)
        assert_mix_matches(images, params, via)


def structured_partners(batch: int, generator: torch.Generator):
    idx = torch.arange(batch)
    yield "flip", idx.flip(0)
    yield "roll", idx.roll(1)
    yield "star", torch.zeros(batch, dtype=torch.int64)
    yield "chain", (idx + 1).clamp(max=batch - 1)
    yield "functional graph", torch.randint(0, batch, (batch,), generator=generator)
    yield "permutation", torch.randperm(batch, generator=generator)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("batch", [2, 7, 256, 1500])  # 1500: the plan's scratch in global memory
def test_mix_any_partner_map(dtype, batch):
    generator = torch.Generator().manual_seed(batch)
    for name, partner in structured_partners(batch, generator):
        images = random_values((batch, 3, 8, 8), dtype, generator)
        params = random_params(batch, 8, 8, generator)
        params = MixParams(partner, params.lam, params.kind, params.box)
        assert_mix_matches(images, params, "op")


@pytest.mark.parametrize("dtype", [torch.uint8, torch.bfloat16, torch.float32], ids=dtype_id)
@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
def test_mix_imagenet_sized_batch(dtype, mode):
    generator = torch.Generator().manual_seed(0)
    images = random_values((256, 3, 224, 224), dtype, generator)
    mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode=mode, num_classes=1000, seed=1)
    assert_mix_matches(images, mix.sample(256, 224, 224), "op")
    assert_mix_matches(images.contiguous(memory_format=torch.channels_last), mix.sample(256, 224, 224), "op")


def test_mix_misaligned_and_many_dims():
    generator = torch.Generator().manual_seed(5)
    base = random_values((6 * 2 * 8 * 16 + 1,), torch.float32, generator)
    assert_mix_matches(base[1:].view(6, 2, 8, 16), random_params(6, 8, 16, generator), "op")  # scalar path
    deep = random_values((5,) + (2,) * 14 + (3, 4), torch.float16, generator)  # 17 dims: the folded fallback
    assert_mix_matches(deep, random_params(5, 3, 4, generator), "op")
    assert_mix_matches(deep.transpose(1, 2), random_params(5, 3, 4, generator), "op")  # ... through a copy


def test_blend_rounds_half_to_even():
    images = torch.tensor([[1, 2, 250], [2, 3, 255]], dtype=torch.uint8, device="cuda")
    params = MixParams(
        partner=torch.tensor([1, 0]),
        lam=torch.tensor([0.5, 0.5]),
        kind=torch.full((2,), int(MixKind.BLEND), dtype=torch.uint8),
        box=torch.zeros(2, 4, dtype=torch.int64),
    )
    fastmix.mix_(images, params, backend="cuda")
    assert images.tolist() == [[2, 2, 252], [2, 2, 252]]


def test_params_on_another_device_are_refused():
    images = torch.zeros(4, 3, 8, 8, device="cuda")
    params = MixParams.identity(4)
    with pytest.raises(ValueError, match="device"):
        torch.ops.fastmix.mix_(images, *params.as_tuple())


@pytest.mark.parametrize("form", LABEL_FORMS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
def test_targets_match_reference(form, smoothing):
    generator = torch.Generator().manual_seed(3)
    for batch in [0, 1, 3, 64, 65]:
        for num_classes in [1, 10, 1000]:
            labels = make_labels(form, batch, num_classes, generator)
            params = random_params(batch, 4, 4, generator) if batch else MixParams.identity(0)
            expected = reference_targets(labels, params, num_classes, smoothing)
            device_labels = labels.cuda()
            for byte in POISON_BYTES:
                with poisoned_allocations(byte) as poison:
                    got = fastmix.mix_targets(device_labels, params, num_classes, smoothing, backend="cuda")
                assert_allocated_in_poison(got, poison)
                assert got.device.type == "cuda" and got.dtype == torch.float32 and got.shape == (batch, num_classes)
                assert torch.equal(bitwise(got.cpu()), bitwise(expected)), (batch, num_classes, hex(byte))


OUT_DTYPES = [torch.uint8, torch.float32, torch.bfloat16, torch.float16]


def poisoned_out(shape, dtype, channels_last, byte, misaligned=False):
    """An out of ``shape`` whose every byte (and the element before it, when misaligned) is ``byte``."""
    count = shape[0] * shape[1] * shape[2] * shape[3]
    if misaligned:  # a view one element into a bigger buffer: the general kernel
        flat = fill_bytes_(torch.empty((count + 1,), dtype=dtype, device="cuda"), byte)[1:]
        if channels_last:
            b, c, h, w = shape
            return flat.view(b, h, w, c).permute(0, 3, 1, 2)
        return flat.view(shape)
    out = torch.empty(shape, dtype=dtype, device="cuda")
    out = out.contiguous(memory_format=torch.channels_last) if channels_last else out
    return fill_bytes_(out, byte)


def assert_mix_into_matches(out_shape, out_dtype, channels_last, images, params, scale, bias, hwc, misaligned=False):
    """mix_into_ on the GPU into a poisoned out, once per poison byte, equals the reference bit
    for bit, and the element before a misaligned out keeps its poison."""
    expected = reference_mix_into(torch.empty(out_shape, dtype=out_dtype), images, params, scale, bias, hwc)
    args = (images.cuda(), *params.to("cuda").as_tuple(), scale.cuda(), bias.cuda(), hwc)
    for byte in POISON_BYTES:
        out = poisoned_out(out_shape, out_dtype, channels_last, byte, misaligned)
        torch.ops.fastmix.mix_into_(out, *args)
        assert torch.equal(bitwise(out.cpu()), bitwise(expected)), (out_shape, out_dtype, channels_last, misaligned, hex(byte))
        before = storage_of(out).view(torch.uint8)[: out.storage_offset() * out.element_size()]
        assert bool((before == byte).all()), "mix_into_ wrote before its out"


# uint8 output exists only for uint8 input without normalisation.
CONVERSIONS = [
    (i, o, norm)
    for i in (torch.uint8, torch.float32)
    for o in OUT_DTYPES
    for norm in (False, True)
    if o != torch.uint8 or (i == torch.uint8 and not norm)
]


@pytest.mark.parametrize("in_dtype,out_dtype,normalize", CONVERSIONS, ids=dtype_id)
@pytest.mark.parametrize("hwc", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_mix_into_matches_reference(in_dtype, out_dtype, hwc, channels_last, normalize):
    generator = torch.Generator().manual_seed(11)
    cases = [(5, 3, 8, 16, False), (4, 3, 7, 9, False), (3, 4, 8, 8, False), (6, 1, 8, 8, False),
             (2, 5, 6, 10, False), (7, 3, 8, 16, True), (64, 3, 32, 32, False)]
    for batch, c, h, w, misaligned in cases:
        images, params, scale, bias = mix_into_inputs(in_dtype, batch, c, h, w, hwc, normalize, generator)
        assert_mix_into_matches((batch, c, h, w), out_dtype, channels_last, images, params, scale, bias, hwc, misaligned)


@pytest.mark.parametrize("in_dtype,out_dtype,normalize", CONVERSIONS, ids=dtype_id)
@pytest.mark.parametrize("hwc", [False, True])
def test_mix_into_resizes_match_reference(in_dtype, out_dtype, hwc, normalize):
    """The out-of-place kernels (packed same-layout, HWC -> NCHW, general) read a resizing sample's
    partner resized into its box, in float32 as the reference stages it; a swapped pair with a
    resizing side is two threads' work, not one."""
    generator = torch.Generator().manual_seed(13)
    for n, (batch, c, h, w) in enumerate([(5, 3, 8, 16), (4, 3, 7, 9), (6, 1, 8, 8), (2, 5, 6, 10), (64, 3, 32, 32)]):
        images, params, scale, bias = mix_into_inputs(in_dtype, batch, c, h, w, hwc, normalize, generator)
        kind = random_params(batch, h, w, generator, allow_resize=True).kind
        partner = torch.arange(batch).flip(0) if n % 2 else params.partner
        params = MixParams(partner, params.lam, kind, params.box)
        assert_mix_into_matches((batch, c, h, w), out_dtype, n % 2 == 0, images, params, scale, bias, hwc)


def test_mix_into_reads_channels_last_images_as_hwc():
    generator = torch.Generator().manual_seed(12)
    images = random_values((6, 3, 8, 16), torch.uint8, generator).contiguous(memory_format=torch.channels_last)
    params = random_params(6, 8, 16, generator)
    scale, bias = torch.rand(3, generator=generator), torch.rand(3, generator=generator)
    assert_mix_into_matches((6, 3, 8, 16), torch.bfloat16, False, images, params, scale, bias, False)


def test_mix_into_refuses_out_aliasing_images():
    images = torch.zeros(2, 3, 4, 4, device="cuda")
    params = MixParams.identity(2, "cuda")
    with pytest.raises(ValueError, match="^images: expected memory apart from out"):
        torch.ops.fastmix.mix_into_(images, images, *params.as_tuple(), torch.empty(0), torch.empty(0), False)


def test_mix_into_with_only_an_empty_scale_on_cuda_names_the_devices():
    """An empty CUDA scale/bias sends the call to the CUDA kernel: it says so instead of failing
    inside the device guard."""
    params = MixParams.identity(2)
    out, images = torch.empty(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)
    empty = torch.empty(0, device="cuda")
    with pytest.raises(ValueError, match="^out: expected a tensor on the device of .*, got out on cpu, images on cpu, scale on cuda"):
        torch.ops.fastmix.mix_into_(out, images, *params.as_tuple(), empty, empty, False)


def test_overlapping_windows_are_refused_on_cuda():
    buffer = torch.rand(960, device="cuda")
    images = buffer.as_strided((9, 192), (96, 1))  # what unfold(0, 192, 96) makes
    before = buffer.clone()
    params = MixParams(torch.arange(9).flip(0), torch.full((9,), 0.5), torch.ones(9, dtype=torch.uint8),
                       torch.zeros(9, 4, dtype=torch.int64)).to("cuda")
    with pytest.raises(ValueError, match="^images: expected a tensor whose elements do not share memory"):
        torch.ops.fastmix.mix_(images, *params.as_tuple())
    assert torch.equal(buffer, before)


OTHER_METHODS = dict(fmix_alpha=1.0, resizemix_alpha=1.0)  # FMix and ResizeMix beside Mixup and CutMix


@pytest.mark.parametrize("methods", ["timm", "others"])
@pytest.mark.parametrize("labels_form", ["indices", "dense"])
def test_mixup_end_to_end_on_cuda(labels_form, methods):
    for mode in ["batch", "pair", "elem"]:
        for batch in [1, 2, 3, 8, 33]:
            kw = dict(mixup_alpha=0.8, cutmix_alpha=1.0, mode=mode, num_classes=10, label_smoothing=0.1,
                      **(OTHER_METHODS if methods == "others" else {}))
            images = torch.randint(0, 256, (batch, 3, 12, 10), dtype=torch.uint8)
            labels = torch.randint(0, 10, (batch,))
            if labels_form == "dense":
                labels = torch.nn.functional.one_hot(labels, 10).float()
            params = fastmix.Mixup(**kw, seed=5, backend="torch").sample(batch, 12, 10)
            for byte in POISON_BYTES:
                device_images, device_labels = images.cuda(), labels.cuda()
                with poisoned_allocations(byte) as poison:
                    out, targets = fastmix.Mixup(**kw, seed=5)(device_images, device_labels)
                assert_allocated_in_poison(targets, poison)
                assert out.device.type == "cuda" and targets.device == out.device
                assert torch.equal(out.cpu(), reference_mix_(images.clone(), params))
                assert torch.equal(targets.cpu(), reference_targets(labels, params, 10, 0.1))


def test_runs_on_the_current_stream():
    generator = torch.Generator().manual_seed(4)
    images_cpu = random_values((32, 3, 64, 64), torch.bfloat16, generator)
    params = random_params(32, 64, 64, generator)
    labels = torch.randint(0, 10, (32,), generator=generator)
    expected = reference_mix_(images_cpu.clone(), params)
    source, images = images_cpu.cuda(), torch.zeros_like(images_cpu, device="cuda")
    device_params, device_labels = params.to("cuda"), labels.cuda()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        # Delays the copy below: a kernel launched on another stream would mix the zeros.
        torch.cuda._sleep(50_000_000)
        images.copy_(source)
        torch.ops.fastmix.mix_(images, *device_params.as_tuple())
        with poisoned_allocations(POISON_BYTES[0]) as poison:  # on the side stream, where the targets are made
            targets = torch.ops.fastmix.mix_targets(device_labels, *device_params.as_tuple()[:3], 10, 0.1)
        assert_allocated_in_poison(targets, poison)
        torch.cuda.current_stream().synchronize()
        assert torch.equal(bitwise(images.cpu()), bitwise(expected))
        assert torch.equal(targets.cpu(), reference_targets(labels, params, 10, 0.1))


@pytest.mark.parametrize("allow_resize", [False, True])
def test_capturable_in_a_cuda_graph(allow_resize):
    """A host sync (or a host read of the params) would fail the capture. Inside it the op builds
    the copy plan on the device, which also serves ResizeMix's kinds."""
    generator = torch.Generator().manual_seed(6)
    images = torch.zeros(16, 3, 32, 32, device="cuda")
    params = random_params(16, 32, 32, generator, allow_resize=allow_resize).to("cuda")
    static = [t.clone() for t in params.as_tuple()]
    warmup = torch.cuda.Stream()
    warmup.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(warmup):
        torch.ops.fastmix.mix_(images, *static)
    torch.cuda.current_stream().wait_stream(warmup)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        torch.ops.fastmix.mix_(images, *static)
    for trial in range(3):
        data = random_values((16, 3, 32, 32), torch.float32, generator)
        new = random_params(16, 32, 32, generator, allow_resize=allow_resize)
        images.copy_(data)
        for dst, src in zip(static, new.as_tuple()):
            dst.copy_(src)
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(images.cpu(), reference_mix_(data.clone(), new)), f"replay {trial}"


COMPILE_BACKENDS = ["aot_eager", pytest.param("inductor", marks=pytest.mark.skipif(
    importlib.util.find_spec("triton") is None, reason="inductor on CUDA needs triton"))]


@pytest.mark.parametrize("compile_backend", COMPILE_BACKENDS)
def test_torch_compile_fullgraph(compile_backend):
    def step(images, labels, partner, lam, kind, box):
        torch.ops.fastmix.mix_(images, partner, lam, kind, box)
        targets = torch.ops.fastmix.mix_targets(labels, partner, lam, kind, 10, 0.1)
        return images * 2.0, targets

    compiled = torch.compile(step, fullgraph=True, backend=compile_backend)
    generator = torch.Generator().manual_seed(2)
    for byte in POISON_BYTES:
        images_cpu = random_values((8, 3, 16, 16), torch.float32, generator)
        labels = torch.randint(0, 10, (8,), generator=generator)
        params = random_params(8, 16, 16, generator)
        expected = reference_mix_(images_cpu.clone(), params)
        images, device_labels, device_params = images_cpu.cuda(), labels.cuda(), params.to("cuda").as_tuple()
        with poisoned_allocations(byte):  # the graph's outputs, wherever it allocates them
            doubled, targets = compiled(images, device_labels, *device_params)
        assert torch.equal(images.cpu(), expected), "the compiled graph must mutate the caller's tensor"
        assert torch.equal(doubled.cpu(), expected * 2.0)
        assert torch.equal(targets.cpu(), reference_targets(labels, params, 10, 0.1))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.bfloat16, torch.float32], ids=dtype_id)
@pytest.mark.parametrize("channels_last", [False, True])
def test_opcheck_mix(dtype, channels_last):
    generator = torch.Generator().manual_seed(0)
    images = random_values((6, 3, 8, 9), dtype, generator).cuda()
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    params = random_params(6, 8, 9, generator).to("cuda")
    torch.library.opcheck(torch.ops.fastmix.mix_.default, (images, *params.as_tuple()))


@pytest.mark.parametrize("dense", [False, True])
def test_opcheck_mix_targets(dense):
    generator = torch.Generator().manual_seed(1)
    labels = torch.rand(5, 11, generator=generator) if dense else torch.randint(0, 11, (5,), generator=generator)
    partner, lam, kind, _ = random_params(5, 4, 4, generator).to("cuda").as_tuple()
    torch.library.opcheck(torch.ops.fastmix.mix_targets.default, (labels.cuda(), partner, lam, kind, 11, 0.1))


@pytest.mark.parametrize("hwc", [False, True])
def test_opcheck_mix_into(hwc):
    generator = torch.Generator().manual_seed(8)
    images = random_values((4, 8, 8, 3) if hwc else (4, 3, 8, 8), torch.uint8, generator).cuda()
    params = random_params(4, 8, 8, generator).to("cuda")
    out = torch.empty(4, 3, 8, 8, dtype=torch.bfloat16, device="cuda")
    scale, bias = torch.rand(3, device="cuda"), torch.rand(3, device="cuda")
    torch.library.opcheck(torch.ops.fastmix.mix_into_.default, (out, images, *params.as_tuple(), scale, bias, hwc))


class HostToDeviceCopies(torch.overrides.TorchFunctionMode):
    """Counts the calls that copy host tensors to a GPU (Tensor.to / .cuda from the CPU, a GPU
    tensor's .copy_ of a CPU one)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in (torch.Tensor.to, torch.Tensor.cuda) and args[0].device.type == "cpu":
            self.count += isinstance(out, torch.Tensor) and out.device.type == "cuda"
        elif func is torch.Tensor.copy_:
            self.count += args[0].device.type == "cuda" and args[1].device.type == "cpu"
        return out


@pytest.mark.parametrize("label_form", ["indices", "dense", "multi-label"])
def test_a_whole_mixup_call_makes_no_host_sync(label_form):
    """The README's promise: no device -> host synchronisation per batch (label values are not read
    on the host; a bad class index trips the targets kernel's device-side assert instead). The
    params and the cuda kernels' in-place plans (the images', and the masks' paste) are built on the
    host and travel in one host -> device copy per call; without its plan the op would sync."""
    multi_label = label_form == "multi-label"
    mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", prob=0.9, num_classes=100,
                        multi_label=multi_label, seed=0)
    images = torch.rand(64, 3, 32, 32, device="cuda")
    if label_form == "indices":
        labels = torch.randint(0, 100, (64,), device="cuda")
    else:
        labels = (torch.rand(64, 100, device="cuda") > 0.9).float()
    masks = torch.randint(0, 100, (64, 32, 32), device="cuda", dtype=torch.uint8)
    mix(images, labels, masks=masks)  # the first call resolves the backend and loads the kernels
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            with HostToDeviceCopies() as copies:
                _, targets = mix(images, labels)
            assert copies.count == 1, "the params and the plan in one copy"
            with HostToDeviceCopies() as copies:
                mix(images, labels, masks=masks)  # segmentation masks: no sync either
            assert copies.count == 1, "the params and both plans in one copy"
            mix.mixup_enabled = not mix.mixup_enabled  # a knob change costs no sync either
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert targets.shape == (64, 100) and targets.device.type == "cuda"


@pytest.mark.parametrize("methods", ["timm", "others"])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int32, torch.int64], ids=dtype_id)
@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
def test_segmentation_masks_on_the_gpu_match_the_reference(dtype, mode, methods):
    generator = torch.Generator().manual_seed(0)
    mix = fastmix.Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, mode=mode, num_classes=100, seed=0,
                        **(OTHER_METHODS if methods == "others" else {}))
    for batch in (1, 2, 7, 33):
        images = torch.rand(batch, 3, 16, 12, generator=generator)
        masks = torch.randint(0, 100, (batch, 16, 12), generator=generator).to(dtype)
        gpu_images, gpu_masks = images.cuda(), masks.cuda()
        with poisoned_allocations(POISON_BYTES[batch % 2]) as poison:
            _, _, targets = mix(gpu_images, None, masks=gpu_masks)
        assert_allocated_in_poison(targets.lam, poison)
        expected = reference_mask_targets(masks, mix.last_params)
        for got, want in zip(dense_mask_targets(targets), expected):
            assert torch.equal(got.cpu(), want)
        assert torch.equal(gpu_images.cpu(), reference_mix_(images, mix.last_params))


# -- the poison itself ---------------------------------------------------------------------------


@pytest.mark.skipif(not CACHING_ALLOCATOR, reason="torch's caching allocator is off (PYTORCH_NO_CUDA_MEMORY_CACHING=1)")
def test_the_poison_reaches_what_is_allocated_inside_it():
    """What the tests' outputs rely on: inside poisoned_allocations, small and large allocations
    on the current stream come from the filled pool, so an element nothing writes keeps the byte."""
    for byte in POISON_BYTES:
        with poisoned_allocations(byte) as poison:
            small = torch.empty(70001 * 3, dtype=torch.float32, device="cuda")  # mix_targets' size below
            large = torch.empty(5 << 20, dtype=torch.uint8, device="cuda")
        for t in (small, large):
            assert poison.holds(t)
            assert bool((t.view(torch.uint8) == byte).all())


# -- NaN pixels in float16 / bfloat16: the bits of the CPU backends --------------------------------

HALF_DTYPES = [torch.float16, torch.bfloat16]
CPU_BACKENDS = [name for name, present in (("cpp", HAS_CPP), ("numba", HAS_NUMBA)) if present]


def every_half_pattern(dtype: torch.dtype, layout: str, generator: torch.Generator) -> torch.Tensor:
    """(9, 2, 61, 67): all 65536 bit patterns of dtype (every NaN payload of both signs, the
    infinities, -0.0, the subnormals) shuffled, then random ones; no sample size is a multiple of a
    vector width."""
    numel = 9 * 2 * 61 * 67
    patterns = torch.cat([torch.randperm(65536, generator=generator),
                          torch.randint(0, 65536, (numel - 65536,), generator=generator)])
    images = patterns.to(torch.int32).to(torch.int16).view(dtype).view(9, 2, 61, 67)
    return images.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else images


def half_edge_params(batch: int, generator: torch.Generator) -> MixParams:
    lam_values = [0.5, 0.3, 1.0, 0.0, 0.7, 0.9999, 1e-4]
    kind = torch.randint(0, 3, (batch,), generator=generator).to(torch.uint8)
    kind[: batch // 2] = int(MixKind.BLEND)
    return MixParams(partner=torch.randperm(batch, generator=generator),
                     lam=torch.tensor([lam_values[i % len(lam_values)] for i in range(batch)]),
                     kind=kind, box=torch.tensor([[5, 40, 3, 50]] * batch))


def assert_bits_of_the_cpu_backends(got: torch.Tensor, by_backend: dict) -> None:
    """got's bits equal each CPU backend's where those agree; where they differ among themselves
    (the sign of a NaN made from two NaNs), got holds the bits of one of them."""
    if not by_backend:
        pytest.skip("no compiled CPU backend to compare with: " + ", ".join(
            f"{name}: {fastmix.available_backends()[name]}" for name in ("cpp", "numba")))
    got_bits = bitwise(got.cpu()).contiguous()
    wanted = [bitwise(t).contiguous() for t in by_backend.values()]
    agree = torch.ones_like(got_bits, dtype=torch.bool)
    matches_one = torch.zeros_like(got_bits, dtype=torch.bool)
    for w in wanted:
        agree &= w == wanted[0]
        matches_one |= got_bits == w
    wrong = (agree & (got_bits != wanted[0])) | ~matches_one
    if bool(wrong.any()):
        where = tuple(wrong.nonzero()[0].tolist())
        raise AssertionError(
            f"{int(wrong.sum())} elements differ from the CPU backends ({', '.join(by_backend)}), first at {where}: "
            f"cuda bits {int(got_bits[where]) & 0xFFFF:#06x}, "
            + ", ".join(f"{name} {int(bitwise(t).contiguous()[where]) & 0xFFFF:#06x}" for name, t in by_backend.items()))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", HALF_DTYPES, ids=dtype_id)
def test_half_nan_pixels_give_the_bits_of_the_cpu_backends(dtype, layout):
    generator = torch.Generator().manual_seed(17)
    # One plain NaN pixel first (a blended sample's own and its partner's), then every bit pattern.
    plain = random_values((4, 3, 8, 8), dtype, generator)
    plain[0, 1, 2, 3] = float("nan")
    plain[3, 0, 5, 5] = -float("nan")
    plain_params = MixParams(partner=torch.tensor([1, 0, 3, 2]), lam=torch.tensor([0.3, 0.7, 0.5, 0.25]),
                             kind=torch.tensor([1, 1, 2, 1], dtype=torch.uint8),
                             box=torch.tensor([[0, 8, 0, 8], [0, 8, 0, 8], [4, 7, 2, 6], [0, 8, 0, 8]]))
    for images, params in [(plain, plain_params),
                           (every_half_pattern(dtype, layout, generator), half_edge_params(9, generator))]:
        by_backend = {}
        for backend in CPU_BACKENDS:
            by_backend[backend] = images.clone()
            fastmix.mix_(by_backend[backend], params, backend=backend)
        on_gpu = to_cuda_same_layout(images)
        torch.ops.fastmix.mix_(on_gpu, *params.to("cuda").as_tuple())
        assert_bits_of_the_cpu_backends(on_gpu, by_backend)
        assert torch.equal(torch.isnan(on_gpu.cpu()), torch.isnan(reference_mix_(images.clone(), params)))


@pytest.mark.parametrize("hwc", [False, True], ids=["chw", "hwc"])
@pytest.mark.parametrize("dtype", HALF_DTYPES, ids=dtype_id)
def test_mix_into_half_from_nan_pixels_gives_the_bits_of_the_cpu_backends(dtype, hwc):
    """float32 pixels holding NaNs of both signs, infinities and values that round past float16's
    range, mixed into float16 / bfloat16."""
    generator = torch.Generator().manual_seed(18)
    shape = (7, 16, 17, 3) if hwc else (7, 3, 16, 17)
    images = (torch.rand(shape, generator=generator) * 255).contiguous()
    flat = images.view(-1)
    special = torch.tensor([float("nan"), -float("nan"), float("inf"), -float("inf"), 65520.0, -0.0, 1e-40])
    flat[torch.randperm(flat.numel(), generator=generator)[: 8 * len(special)]] = special.repeat(8)
    params = half_edge_params(7, generator)
    params.box[:] = torch.tensor([2, 11, 3, 14])
    scale, bias = torch.tensor([1 / 0.229, 1 / 0.224, 1 / 0.225]), torch.tensor([-2.1, -2.0, -1.8])
    by_backend = {}
    for backend in CPU_BACKENDS:
        out = torch.empty(7, 3, 16, 17, dtype=dtype)
        if backend == "cpp":
            torch.ops.fastmix.mix_into_(out, images, *params.as_tuple(), scale, bias, hwc)
        else:
            from fastmix.backends import numba as numba_backend

            numba_backend.mix_into_(out, images, *params.as_tuple(), scale, bias, hwc)
        by_backend[backend] = out
    args = (images.cuda(), *params.to("cuda").as_tuple(), scale.cuda(), bias.cuda(), hwc)
    for byte in POISON_BYTES:
        out = poisoned_out((7, 3, 16, 17), dtype, False, byte)
        torch.ops.fastmix.mix_into_(out, *args)
        assert_bits_of_the_cpu_backends(out, by_backend)


# -- more samples than the grid has rows ----------------------------------------------------------

MANY = 70001  # > 65535, the grid's y limit: the kernels step over samples


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float16, torch.float32], ids=dtype_id)
def test_more_samples_than_the_grid_has_rows(dtype):
    generator = torch.Generator().manual_seed(MANY)
    for name, partner in [("flip", torch.arange(MANY).flip(0)), ("permutation", torch.randperm(MANY, generator=generator)),
                          ("functional graph", torch.randint(0, MANY, (MANY,), generator=generator))]:
        for shape in [(MANY, 1, 2, 3), (MANY, 3, 2, 2)]:
            images = random_values(shape, dtype, generator)
            params = random_params(MANY, shape[2], shape[3], generator)
            assert_mix_matches(images, MixParams(partner, params.lam, params.kind, params.box), "op")


def test_targets_and_mix_into_for_more_samples_than_the_grid_has_rows():
    generator = torch.Generator().manual_seed(MANY + 1)
    params = random_params(MANY, 2, 2, generator)
    labels = torch.randint(0, 3, (MANY,), generator=generator)
    expected = reference_targets(labels, params, 3, 0.1)
    device_labels = labels.cuda()
    for byte in POISON_BYTES:
        with poisoned_allocations(byte) as poison:
            got = fastmix.mix_targets(device_labels, params, 3, 0.1, backend="cuda")
        assert_allocated_in_poison(got, poison)
        assert torch.equal(bitwise(got.cpu()), bitwise(expected))
    images, params, scale, bias = mix_into_inputs(torch.uint8, MANY, 3, 2, 2, True, True, generator)
    assert_mix_into_matches((MANY, 3, 2, 2), torch.bfloat16, False, images, params, scale, bias, True)


# -- a sample of more than 2**31 elements ---------------------------------------------------------

# (3, 1, 65536, 32769): each sample 2**31 + 2**16 elements, so every element of samples 1 and 2,
# and the last rows of sample 0, sit past 2**31 (a 32-bit index wraps there). W is odd: the rows
# are no multiple of any vector width.
BIG_H, BIG_W = 65536, 32769
BIG_PARAMS = MixParams(  # a 3-cycle (the in-place plan's hard case): blend, paste across the 2**31 row, blend
    partner=torch.tensor([1, 2, 0]), lam=torch.tensor([0.3, 0.6, 0.75]),
    kind=torch.tensor([int(MixKind.BLEND), int(MixKind.PASTE), int(MixKind.BLEND)], dtype=torch.uint8),
    box=torch.tensor([[0, 0, 0, 0], [BIG_H - 3, BIG_H, 5, BIG_W - 7], [0, 0, 0, 0]]))
BIG_ROWS = [(0, 2), (BIG_H - 4, BIG_H)]  # rows checked against the reference (row 65534 straddles 2**31)


def require_free_gpu_memory(nbytes: int) -> None:
    torch.cuda.empty_cache()  # what other tests' pools and batches left cached counts as used
    free, total = torch.cuda.mem_get_info()
    if free < nbytes + (2 << 30):
        pytest.skip(f"needs {(nbytes + (2 << 30)) / 2**30:.1f} GiB of free GPU memory; "
                    f"{free / 2**30:.1f} of {total / 2**30:.1f} GiB are free")


def rows_params(params: MixParams, r0: int, r1: int) -> MixParams:
    """The params of rows [r0, r1) of every sample: the boxes cut to those rows."""
    box = params.box.clone()
    box[:, :2] = (box[:, :2] - r0).clamp(0, r1 - r0)
    return MixParams(params.partner, params.lam, params.kind, box)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32], ids=dtype_id)
def test_mix_a_sample_of_more_than_2_31_elements(dtype):
    shape = (3, 1, BIG_H, BIG_W)
    require_free_gpu_memory(3 * BIG_H * BIG_W * torch.empty((), dtype=dtype).element_size())
    generator = torch.Generator(device="cuda").manual_seed(31)
    if dtype == torch.uint8:
        images = torch.randint(0, 256, shape, dtype=dtype, device="cuda", generator=generator)
    else:
        images = torch.rand(shape, dtype=dtype, device="cuda", generator=generator)
    before = {rows: images[:, :, rows[0]:rows[1]].cpu() for rows in BIG_ROWS}
    torch.ops.fastmix.mix_(images, *BIG_PARAMS.to("cuda").as_tuple())
    torch.cuda.synchronize()
    for (r0, r1), rows in before.items():
        expected = reference_mix_(rows.clone(), rows_params(BIG_PARAMS, r0, r1))
        assert torch.equal(bitwise(images[:, :, r0:r1].cpu()), bitwise(expected)), f"rows {r0}:{r1}"


def test_mix_into_a_sample_of_more_than_2_31_elements():
    shape = (3, 1, BIG_H, BIG_W)
    require_free_gpu_memory(3 * BIG_H * BIG_W * (1 + 2))
    generator = torch.Generator(device="cuda").manual_seed(32)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, device="cuda", generator=generator)
    scale, bias = torch.tensor([1 / 255]), torch.tensor([1.0])  # every output in [1, 2]: never a poison's bits
    out = torch.empty(shape, dtype=torch.bfloat16, device="cuda")
    rows_in = {rows: images[:, :, rows[0]:rows[1]].cpu() for rows in BIG_ROWS}
    for byte in POISON_BYTES:
        fill_bytes_(out, byte)
        torch.ops.fastmix.mix_into_(out, images, *BIG_PARAMS.to("cuda").as_tuple(), scale.cuda(), bias.cuda(), False)
        for i in range(3):  # every element written: none kept the poison (0xABAB < 0, 0x5454 > 1e12)
            low, high = torch.aminmax(out[i])
            assert 1.0 <= float(low) and float(high) <= 2.0, (i, float(low), float(high), hex(byte))
        for (r0, r1), rows in rows_in.items():
            expected = reference_mix_into(torch.empty(rows.shape, dtype=torch.bfloat16), rows,
                                          rows_params(BIG_PARAMS, r0, r1), scale, bias, False)
            assert torch.equal(bitwise(out[:, :, r0:r1].cpu()), bitwise(expected)), f"rows {r0}:{r1}"
