"""FMix (batch and elem mode) and ResizeMix (batch mode), in place and in the uint8 collate: fastmix (every available
backend, a user's whole call: sampling, mixing, soft targets) beside the naive formulation of the
reference code, the floor (one in-place pass; in the collate, the same collate with Mixup).

    python -m pytest benchmarks/test_bench_methods.py --benchmark-group-by=group --benchmark-columns=median,iqr,rounds

Rows of one group walk the same sequence of fresh draws (a new MixParams each call)."""
import pytest
import torch

import fastmix
from fastmix.bench import baselines
from fastmix.bench.inputs import draw_sequence, each_round, make_batch, make_labels, make_samples, mask_planes_of

from . import conftest
from .conftest import BACKENDS

SETTINGS = {
    "fmix batch": dict(mixup_alpha=0.0, fmix_alpha=1.0),
    "fmix elem": dict(mixup_alpha=0.0, fmix_alpha=1.0, mode="elem"),
    "resizemix batch": dict(mixup_alpha=0.0, resizemix_alpha=1.0),
}
MIXUP = dict(mixup_alpha=0.8)
DRAWS = 64


def draws_for(setting):
    return draw_sequence(SETTINGS[setting], 1000, conftest.BATCH, conftest.SIZE, DRAWS)


def box_of(p):
    return tuple(int(v) for v in p.box[0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("setting", SETTINGS)
def test_fastmix_in_place(benchmark, setting, backend):
    """Mixup(images, labels) with the method on: sampling, the in-place mix, the soft targets."""
    benchmark.group = f"apply {setting} float32"
    mix = fastmix.Mixup(num_classes=1000, seed=0, label_smoothing=0.1, backend=backend, **SETTINGS[setting])
    benchmark(mix, make_batch(conftest.BATCH, conftest.SIZE, torch.float32), make_labels(conftest.BATCH, 1000))


@pytest.mark.parametrize("setting", SETTINGS)
def test_naive_in_place(benchmark, setting):
    """The reference code's tensor formulation (the FMix authors' float-mask blend; mmpretrain's
    F.interpolate(x[index]) pasted by a slice), and the soft targets."""
    benchmark.group = f"apply {setting} float32"
    images, y = make_batch(conftest.BATCH, conftest.SIZE, torch.float32), make_labels(conftest.BATCH, 1000)
    draws = draws_for(setting)
    planes = mask_planes_of(draws)

    def call(p):
        if setting.startswith("fmix"):
            baselines.naive_fmix_(images, planes[id(p)], p.partner)
        else:
            baselines.naive_resizemix_(images, p.partner, box_of(p))
        return baselines.naive_targets(y, p.lam.view(-1, 1), 1000, 0.1)
    benchmark(each_round(draws, call))


@pytest.mark.parametrize("setting", SETTINGS)
def test_floor_in_place(benchmark, setting):
    benchmark.group = f"apply {setting} float32"
    benchmark(baselines.floor_pass_, make_batch(conftest.BATCH, conftest.SIZE, torch.float32))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("setting", SETTINGS)
def test_fastmix_collate(benchmark, setting, backend):
    benchmark.group = f"collate uint8 {setting}"
    collate = fastmix.MixupCollate(fastmix.Mixup(num_classes=1000, seed=0, backend=backend, **SETTINGS[setting]))
    benchmark(collate, make_samples(conftest.BATCH, conftest.SIZE, 1000))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("setting", SETTINGS)
def test_mixup_collate(benchmark, setting, backend):
    """The comparison: the same collate with Mixup (issue 26's 1.1x is against this row)."""
    benchmark.group = f"collate uint8 {setting}"
    collate = fastmix.MixupCollate(fastmix.Mixup(num_classes=1000, seed=0, backend=backend, **MIXUP))
    benchmark(collate, make_samples(conftest.BATCH, conftest.SIZE, 1000))


@pytest.mark.parametrize("setting", SETTINGS)
def test_naive_collate(benchmark, setting):
    """default_collate, HWC -> CHW, and the reference code's formulation on the batch."""
    benchmark.group = f"collate uint8 {setting}"
    samples = make_samples(conftest.BATCH, conftest.SIZE, 1000)
    draws = draws_for(setting)
    planes = mask_planes_of(draws)

    def call(p):
        if setting.startswith("fmix"):
            return baselines.naive_collate_fmix_uint8(samples, planes[id(p)], p.partner)
        return baselines.naive_collate_resizemix_uint8(samples, p.partner, box_of(p))
    benchmark(each_round(draws, call))
