"""Soft targets for B = 1024 and C in {1000, 21841}: fastmix beside timm's mixup_target and the
floor (allocating the zeroed targets)."""
import pytest
import torch

import fastmix
from fastmix.bench import baselines
from fastmix.bench.inputs import make_labels

from . import conftest
from .conftest import BACKENDS

CLASSES = [1000, 21841]


def inputs(num_classes):
    batch = 128 if conftest.FAST else 1024
    labels = make_labels(batch, num_classes, seed=0)
    params = fastmix.Mixup(mixup_alpha=0.8, num_classes=num_classes, seed=0).sample(batch)
    return labels, params


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("num_classes", CLASSES)
def test_fastmix_targets(benchmark, num_classes, backend):
    benchmark.group = f"targets C={num_classes}"
    labels, params = inputs(num_classes)
    benchmark(fastmix.mix_targets, labels, params, num_classes, 0.1, backend)


@pytest.mark.parametrize("num_classes", CLASSES)
def test_naive_targets(benchmark, num_classes):
    benchmark.group = f"targets C={num_classes}"
    labels, params = inputs(num_classes)
    benchmark(baselines.naive_targets, labels, float(params.lam[0]), num_classes, 0.1)


@pytest.mark.parametrize("num_classes", CLASSES)
def test_floor_targets(benchmark, num_classes):
    benchmark.group = f"targets C={num_classes}"
    benchmark(torch.zeros, 128 if conftest.FAST else 1024, num_classes)
