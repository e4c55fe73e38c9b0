"""The DataLoader path: B numpy HWC uint8 samples (as PIL / OpenCV decode them) collated into a
mixed batch, by fastmix's collate (every available backend) beside stack-then-mix and the floor
(default_collate: plain stacking, no mixing), and timm's FastCollateMixup when timm is installed.

    python -m pytest benchmarks/test_bench_collate.py --benchmark-group-by=group --benchmark-columns=median,iqr,rounds
"""
import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

import fastmix
from fastmix.bench import baselines
from fastmix.bench.inputs import draw_sequence, each_round, make_samples
from fastmix.bench.peers import load_timm_mixup

from . import conftest
from .conftest import BACKENDS

MEAN, STD = baselines.IMAGENET_MEAN, baselines.IMAGENET_STD
OUTPUTS = {
    "uint8": dict(dtype=torch.uint8),
    "float32 normalised": dict(dtype=torch.float32, mean=MEAN, std=STD),
}
SETTINGS = {
    "mixup": dict(mixup_alpha=0.8),
    "switching": dict(mixup_alpha=0.8, cutmix_alpha=1.0),
}
CASES = [(o, s) for o in OUTPUTS for s in SETTINGS]
TIMM_MIXUP, _ = load_timm_mixup()


def samples():
    return make_samples(conftest.BATCH, conftest.SIZE, 1000)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("output,setting", CASES)
def test_fastmix_collate(benchmark, output, setting, backend):
    benchmark.group = f"collate {output} {setting}"
    collate = fastmix.MixupCollate(fastmix.Mixup(num_classes=1000, seed=0, backend=backend, **SETTINGS[setting]),
                                   **OUTPUTS[output])
    benchmark(collate, samples())


@pytest.mark.parametrize("output,setting", CASES)
def test_stack_then_mix(benchmark, output, setting):
    """default_collate, then the conversions and a flip-blend as separate tensor passes."""
    benchmark.group = f"collate {output} {setting}"
    batch = samples()
    # the lambdas fastmix's collate draws, call after call (the same sequence, one per call)
    draws = draw_sequence(SETTINGS[setting], 1000, conftest.BATCH, conftest.SIZE, 64)
    if output == "uint8":
        benchmark.extra_info["baseline"] = "default_collate + permute + float blend + round"
        benchmark(each_round(draws, lambda p: baselines.naive_collate_uint8(batch, float(p.lam[0]))))
    else:
        benchmark.extra_info["baseline"] = "default_collate + float + normalise + blend"
        mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
        benchmark(each_round(draws, lambda p: baselines.naive_collate_normalized(batch, float(p.lam[0]), mean, std)))


@pytest.mark.parametrize("output,setting", CASES)
def test_floor_plain_stacking(benchmark, output, setting):
    benchmark.group = f"collate {output} {setting}"
    benchmark.extra_info["baseline"] = "default_collate: plain stacking, no mixing"
    benchmark(default_collate, samples())


if TIMM_MIXUP is not None:  # a peer, not a baseline: only where timm is installed

    @pytest.mark.parametrize("setting", SETTINGS)
    def test_timm_fast_collate_mixup(benchmark, setting):
        benchmark.group = f"collate uint8 {setting}"
        benchmark.extra_info["peer"] = "timm FastCollateMixup on CHW numpy samples (its ToNumpy layout)"
        batch = [(np.ascontiguousarray(image.transpose(2, 0, 1)), label) for image, label in samples()]
        peer = TIMM_MIXUP.FastCollateMixup(num_classes=1000, label_smoothing=0.1, **SETTINGS[setting])
        benchmark(peer, batch)
