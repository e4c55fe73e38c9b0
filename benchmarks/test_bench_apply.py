"""In-place mixing: fastmix (every available backend) beside the naive formulas and the floor.

    python -m pytest benchmarks --benchmark-group-by=group --benchmark-columns=median,iqr,rounds

Rows of one group run on the same batch; compare medians within a group."""
import pytest
import torch

import fastmix
from fastmix.bench import baselines
from fastmix.bench.peers import load_timm_mixup

from . import conftest
from .conftest import BACKENDS

SETTINGS = {
    "mixup batch": dict(mixup_alpha=0.8),
    "cutmix batch": dict(mixup_alpha=0.0, cutmix_alpha=1.0),
    "switching batch": dict(mixup_alpha=0.8, cutmix_alpha=1.0),
    "mixup pair": dict(mixup_alpha=0.8, mode="pair"),
    "switching elem": dict(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem"),
}
DTYPES = {"uint8": torch.uint8, "float32": torch.float32, "bfloat16": torch.bfloat16}


def make_batch(dtype):
    generator = torch.Generator().manual_seed(0)
    if dtype == torch.uint8:
        return torch.randint(0, 256, (conftest.BATCH, 3, conftest.SIZE, conftest.SIZE), dtype=torch.uint8, generator=generator)
    return torch.rand((conftest.BATCH, 3, conftest.SIZE, conftest.SIZE), generator=generator).to(dtype)


def params_for(setting):
    # Fixed per group (seed 0), so every row of a group does the same work.
    return fastmix.Mixup(num_classes=1000, seed=0, **SETTINGS[setting]).sample(conftest.BATCH, conftest.SIZE, conftest.SIZE)


CASES = [(s, d) for s in SETTINGS for d in DTYPES]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("setting,dtype", CASES)
def test_fastmix(benchmark, setting, dtype, backend):
    benchmark.group = f"apply {setting} {dtype}"
    images, params = make_batch(DTYPES[dtype]), params_for(setting)
    benchmark(fastmix.mix_, images, params, backend)


@pytest.mark.parametrize("setting,dtype", CASES)
def test_naive(benchmark, setting, dtype):
    benchmark.group = f"apply {setting} {dtype}"
    images, params = make_batch(DTYPES[dtype]), params_for(setting)
    lam = float(params.lam[0])
    if setting in ("mixup batch", "mixup pair") or (setting == "switching batch" and params.kind[0] == 1):
        benchmark.extra_info["baseline"] = "timm flip formula"
        benchmark(baselines.naive_mixup_flip_, images, lam)
    elif setting in ("cutmix batch", "switching batch"):
        benchmark.extra_info["baseline"] = "timm flip + paste"
        benchmark(baselines.naive_cutmix_flip_, images, tuple(int(v) for v in params.box[0]))
    else:
        benchmark.extra_info["baseline"] = "timm clone + per-sample loop"
        benchmark(baselines.naive_elem_loop_, images, params)


@pytest.mark.parametrize("setting,dtype", [c for c in CASES if c[0].startswith("mixup")])
def test_naive_roll(benchmark, setting, dtype):
    """torchvision's roll formula (a Mixup baseline)."""
    benchmark.group = f"apply {setting} {dtype}"
    images, params = make_batch(DTYPES[dtype]), params_for(setting)
    benchmark(baselines.naive_mixup_roll_, images, float(params.lam[0]))


@pytest.mark.parametrize("setting,dtype", CASES)
def test_floor(benchmark, setting, dtype):
    benchmark.group = f"apply {setting} {dtype}"
    benchmark(baselines.floor_pass_, make_batch(DTYPES[dtype]))


TIMM_MIXUP, _ = load_timm_mixup()
if TIMM_MIXUP is not None:  # a peer, not a baseline: only where timm is installed

    @pytest.mark.parametrize("setting,dtype", [c for c in CASES if c[1] != "uint8"])  # timm mixes float batches
    def test_timm_mixup(benchmark, setting, dtype):
        benchmark.group = f"apply {setting} {dtype}"
        benchmark.extra_info["peer"] = "timm Mixup: images in place, plus its targets"
        images = make_batch(DTYPES[dtype])
        labels = torch.randint(0, 1000, (len(images),), generator=torch.Generator().manual_seed(1))
        if len(images) % 2:
            pytest.skip("timm asserts an even batch size")
        benchmark(TIMM_MIXUP.Mixup(num_classes=1000, label_smoothing=0.1, **SETTINGS[setting]), images, labels)
