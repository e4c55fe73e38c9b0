"""In-place mixing: fastmix (every available backend) beside the naive formulas and the floor.

    python -m pytest benchmarks --benchmark-group-by=group --benchmark-columns=median,iqr,rounds

Rows of one group run on the same batch and walk the same sequence of fresh draws (a new
MixParams each call); compare medians within a group."""
import pytest
import torch

import fastmix
from fastmix.bench import baselines
from fastmix.bench.inputs import draw_sequence, each_round, make_batch, make_labels
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


DRAWS = 64  # every row walks the same sequence of fresh draws (seed 0), one per call


def draws_for(setting):
    return draw_sequence(SETTINGS[setting], 1000, conftest.BATCH, conftest.SIZE, DRAWS)


def batch(dtype):
    return make_batch(conftest.BATCH, conftest.SIZE, DTYPES[dtype])


def labels():
    return make_labels(conftest.BATCH, 1000)


CASES = [(s, d) for s in SETTINGS for d in DTYPES]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("setting,dtype", CASES)
def test_fastmix(benchmark, setting, dtype, backend):
    """A user's whole call, Mixup(images, labels): sampling, the in-place mix and the soft targets,
    a fresh draw each call (the first DRAWS are the other rows' sequence)."""
    benchmark.group = f"apply {setting} {dtype}"
    mix = fastmix.Mixup(num_classes=1000, seed=0, label_smoothing=0.1, backend=backend, **SETTINGS[setting])
    benchmark(mix, batch(dtype), labels())


def naive_call(setting, images, targets_of):
    """The naive formula for one draw, and its soft targets."""
    def call(p):
        if setting in ("mixup batch", "mixup pair") or (setting == "switching batch" and p.kind[0] == 1):
            baselines.naive_mixup_flip_(images, float(p.lam[0]))
        elif setting in ("cutmix batch", "switching batch"):
            baselines.naive_cutmix_flip_(images, tuple(int(v) for v in p.box[0]))
        else:
            baselines.naive_elem_loop_(images, p)
        return targets_of(p)
    return call


@pytest.mark.parametrize("setting,dtype", CASES)
def test_naive(benchmark, setting, dtype):
    benchmark.group = f"apply {setting} {dtype}"
    benchmark.extra_info["baseline"] = "timm clone + per-sample loop" if "elem" in setting else "timm flip formula / flip + paste"
    images, y = batch(dtype), labels()
    targets = lambda p: baselines.naive_targets(y, p.lam.view(-1, 1), 1000, 0.1)  # noqa: E731
    benchmark(each_round(draws_for(setting), naive_call(setting, images, targets)))


@pytest.mark.parametrize("setting,dtype", [c for c in CASES if c[0].startswith("mixup")])
def test_naive_roll(benchmark, setting, dtype):
    """torchvision's roll formula (a Mixup baseline)."""
    benchmark.group = f"apply {setting} {dtype}"
    images, y = batch(dtype), labels()
    benchmark(each_round(draws_for(setting), lambda p: (baselines.naive_mixup_roll_(images, float(p.lam[0])),
                                                          baselines.naive_targets(y, float(p.lam[0]), 1000, 0.1))))


@pytest.mark.parametrize("setting,dtype", CASES)
def test_floor(benchmark, setting, dtype):
    benchmark.group = f"apply {setting} {dtype}"
    benchmark(baselines.floor_pass_, batch(dtype))


TIMM_MIXUP, _ = load_timm_mixup()
if TIMM_MIXUP is not None:  # a peer, not a baseline: only where timm is installed

    @pytest.mark.parametrize("setting,dtype", [c for c in CASES if c[1] != "uint8"])  # timm mixes float batches
    def test_timm_mixup(benchmark, setting, dtype):
        benchmark.group = f"apply {setting} {dtype}"
        benchmark.extra_info["peer"] = "timm Mixup: images in place, plus its targets"
        if conftest.BATCH % 2:
            pytest.skip("timm asserts an even batch size")
        benchmark(TIMM_MIXUP.Mixup(num_classes=1000, label_smoothing=0.1, **SETTINGS[setting]), batch(dtype), labels())
