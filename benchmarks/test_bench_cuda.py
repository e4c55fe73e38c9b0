"""CUDA: fastmix's kernels beside the naive tensor formulas and a device-to-device copy (the floor).

    python -m pytest benchmarks/test_bench_cuda.py --benchmark-group-by=group --benchmark-columns=median,iqr,rounds

Each timed call ends with torch.cuda.synchronize(), so pytest-benchmark's columns include one
launch-and-sync round trip; extra_info["cuda_event_ms"] is the median of CUDA-event timings of
back-to-back calls, the number to compare within a group. Rows of one group do the same work on
the same shapes. Skipped without a GPU (or without the cuda backend)."""
import pytest
import torch

import fastmix
from fastmix.backends.device_params import mix_args
from fastmix.bench import baselines
from fastmix.bench.inputs import make_batch, make_batches, make_labels

from . import conftest

pytestmark = pytest.mark.skipif(
    fastmix.available_backends()["cuda"] is not None, reason=f"cuda backend unavailable: {fastmix.available_backends()['cuda']}"
)

IN_PLACE_DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}
MEAN, STD = baselines.IMAGENET_MEAN, baselines.IMAGENET_STD


def synced(fn, *args):
    def run():
        fn(*args)
        torch.cuda.synchronize()

    return run


def event_ms(fn, *args, rounds: int = 20) -> float:
    """Median milliseconds of fn(*args) between CUDA events (after one warm-up call)."""
    fn(*args)
    times = []
    for _ in range(1 if conftest.FAST else rounds):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(*args)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def run_benchmark(benchmark, fn, *args):
    benchmark.extra_info["cuda_event_ms"] = event_ms(fn, *args)
    benchmark.extra_info["device"] = torch.cuda.get_device_name()
    benchmark(synced(fn, *args))


def batch(dtype):
    return make_batch(conftest.BATCH, conftest.SIZE, dtype, "cuda")


def mixup_params():
    # Batch-mode Mixup (every sample blended with its flip), fixed, so every row does the same work.
    mix = fastmix.Mixup(mixup_alpha=0.8, num_classes=1000, seed=0)
    return mix.sample(conftest.BATCH, conftest.SIZE, conftest.SIZE)


# --- In-place Mixup of a batch already on the GPU --------------------------------------------


@pytest.mark.parametrize("dtype", IN_PLACE_DTYPES)
def test_cuda_mixup_fastmix_op(benchmark, dtype):
    """The raw op, params and their plan already on the device (as fastmix.Mixup passes them): one
    pass over the batch."""
    benchmark.group = f"cuda in-place mixup {dtype}"
    images = batch(IN_PLACE_DTYPES[dtype])
    args = mix_args(mixup_params().as_tuple(), images.device, with_plan=True)
    run_benchmark(benchmark, torch.ops.fastmix.mix_, images, *args)


@pytest.mark.parametrize("dtype", IN_PLACE_DTYPES)
def test_cuda_mixup_fastmix_apply(benchmark, dtype):
    """fastmix.mix_ with the params on the CPU (as sampled): checks, the plan and the copy included."""
    benchmark.group = f"cuda in-place mixup {dtype}"
    images, params = batch(IN_PLACE_DTYPES[dtype]), mixup_params()
    run_benchmark(benchmark, fastmix.mix_, images, params, "cuda")


@pytest.mark.parametrize("dtype", IN_PLACE_DTYPES)
def test_cuda_mixup_naive(benchmark, dtype):
    benchmark.group = f"cuda in-place mixup {dtype}"
    benchmark.extra_info["baseline"] = "timm: x_flipped = x.flip(0).mul_(1 - lam); x.mul_(lam).add_(x_flipped)"
    run_benchmark(benchmark, baselines.naive_mixup_flip_, batch(IN_PLACE_DTYPES[dtype]), float(mixup_params().lam[0]))


@pytest.mark.parametrize("dtype", IN_PLACE_DTYPES)
def test_cuda_mixup_copy_floor(benchmark, dtype):
    benchmark.group = f"cuda in-place mixup {dtype}"
    benchmark.extra_info["baseline"] = "y.copy_(x): one read and one write of the batch"
    x = batch(IN_PLACE_DTYPES[dtype])
    run_benchmark(benchmark, torch.Tensor.copy_, torch.empty_like(x), x)


# --- Fused uint8 (B, H, W, C) -> bfloat16 (B, C, H, W), normalised and mixed ------------------

FUSED_GROUP = "cuda fused uint8 HWC -> bfloat16 normalised + mixup"


def hwc_batch():
    return make_batches((conftest.BATCH, conftest.SIZE, conftest.SIZE, 3), torch.uint8, "cuda", seed=1)[0]


def normalisation():
    """scale, bias with x * scale + bias == (x / 255 - mean) / std."""
    mean, std = torch.tensor(MEAN), torch.tensor(STD)
    return (1.0 / (255.0 * std)).cuda(), (-mean / std).cuda()


@pytest.mark.parametrize("out_format", ["nchw", "channels_last"])
def test_cuda_fused_fastmix(benchmark, out_format):
    benchmark.group = FUSED_GROUP
    images, params = hwc_batch(), mixup_params().to("cuda")
    out = torch.empty(conftest.BATCH, 3, conftest.SIZE, conftest.SIZE, dtype=torch.bfloat16, device="cuda")
    if out_format == "channels_last":
        out = out.contiguous(memory_format=torch.channels_last)
    scale, bias = normalisation()
    run_benchmark(benchmark, torch.ops.fastmix.mix_into_, out, images, *params.as_tuple(), scale, bias, True)


def test_cuda_fused_naive(benchmark):
    benchmark.group = FUSED_GROUP
    benchmark.extra_info["baseline"] = "permute, float, div 255, sub mean, div std, flip-mix, to bfloat16"
    mean = torch.tensor(MEAN, device="cuda").view(1, 3, 1, 1)
    std = torch.tensor(STD, device="cuda").view(1, 3, 1, 1)
    run_benchmark(benchmark, baselines.naive_normalize_mix, hwc_batch(), float(mixup_params().lam[0]), mean, std,
                  torch.bfloat16)


def test_cuda_fused_convert_floor(benchmark):
    benchmark.group = FUSED_GROUP
    benchmark.extra_info["baseline"] = "one uint8 -> bfloat16 conversion pass (channels_last out)"
    images = hwc_batch()
    out = torch.empty(conftest.BATCH, 3, conftest.SIZE, conftest.SIZE, dtype=torch.bfloat16, device="cuda")
    out = out.contiguous(memory_format=torch.channels_last)
    run_benchmark(benchmark, torch.Tensor.copy_, out, images.permute(0, 3, 1, 2))


# --- Soft targets on the GPU (B = 1024) -------------------------------------------------------


@pytest.mark.parametrize("num_classes", [1000, 21841])
def test_cuda_targets_fastmix(benchmark, num_classes):
    benchmark.group = f"cuda targets C={num_classes}"
    labels, params = cuda_targets_inputs(num_classes)
    run_benchmark(benchmark, fastmix.mix_targets, labels, params, num_classes, 0.1, "cuda")


@pytest.mark.parametrize("num_classes", [1000, 21841])
def test_cuda_targets_naive(benchmark, num_classes):
    benchmark.group = f"cuda targets C={num_classes}"
    benchmark.extra_info["baseline"] = "timm mixup_target: two smoothed one-hot matrices, blended"
    labels, params = cuda_targets_inputs(num_classes)
    run_benchmark(benchmark, baselines.naive_targets, labels, float(params.lam[0]), num_classes, 0.1)


@pytest.mark.parametrize("num_classes", [1000, 21841])
def test_cuda_targets_floor(benchmark, num_classes):
    benchmark.group = f"cuda targets C={num_classes}"
    benchmark.extra_info["baseline"] = "torch.zeros of the targets' size"
    batch = len(cuda_targets_inputs(num_classes)[0])
    run_benchmark(benchmark, lambda: torch.zeros(batch, num_classes, device="cuda"))


def cuda_targets_inputs(num_classes):
    batch = 128 if conftest.FAST else 1024
    labels = make_labels(batch, num_classes, seed=0).cuda()
    params = fastmix.Mixup(mixup_alpha=0.8, num_classes=num_classes, seed=0).sample(batch)  # on the CPU, as sampled
    return labels, params
