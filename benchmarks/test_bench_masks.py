"""Segmentation: images and their (B, H, W) masks mixed in place (elem-mode Mixup/CutMix switching),
fastmix (every available backend) beside the same call on the images alone, the naive per-sample
loop over images and masks, and the floor (one in-place pass over both).

    python -m pytest benchmarks/test_bench_masks.py --benchmark-group-by=group --benchmark-columns=median,iqr,rounds

Rows of one group run on the same batch and masks and walk the same sequence of fresh draws (a new
MixParams each call); compare medians within a group."""
import pytest
import torch

import fastmix
from fastmix.bench import baselines
from fastmix.bench.inputs import (SEGMENTATION_CLASSES, SEGMENTATION_KNOBS, draw_sequence, each_round, make_batch,
                                  make_labels, make_masks)

from . import conftest
from .conftest import BACKENDS

MASK_DTYPES = {"uint8": torch.uint8, "int64": torch.int64}  # as stored, and as cross_entropy takes them
DRAWS = 64  # every row walks the same sequence of fresh draws (seed 0), one per call


def batch():
    return make_batch(conftest.BATCH, conftest.SIZE, torch.float32)


def class_maps(mask_dtype):
    """PASCAL VOC-like class maps: 20 classes and the background; 255 marks ignored pixels."""
    return make_masks(conftest.BATCH, conftest.SIZE, conftest.SIZE, MASK_DTYPES[mask_dtype])


def labels():
    return make_labels(conftest.BATCH, SEGMENTATION_CLASSES)


def mixup(backend):
    return fastmix.Mixup(num_classes=SEGMENTATION_CLASSES, seed=0, backend=backend, **SEGMENTATION_KNOBS)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mask_dtype", MASK_DTYPES)
def test_fastmix_masks(benchmark, mask_dtype, backend):
    """A user's whole call, mix(images, None, masks=masks): sampling, the checks, the masks' boxes
    pasted and their MaskTargets, the images mixed; a fresh draw each call."""
    benchmark.group = f"masks elem float32 images, {mask_dtype} masks"
    images, masks = batch(), class_maps(mask_dtype)
    out = benchmark(mixup(backend), images, None, masks=masks)
    assert out[0] is images and out[2].mask_a is masks


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mask_dtype", MASK_DTYPES)
def test_fastmix_images_alone(benchmark, mask_dtype, backend):
    """The same call without masks (labels instead, 21 classes): what the masks add is the difference."""
    benchmark.group = f"masks elem float32 images, {mask_dtype} masks"
    benchmark.extra_info["what"] = "the images alone, mix(images, labels)"
    benchmark(mixup(backend), batch(), labels())


@pytest.mark.parametrize("mask_dtype", MASK_DTYPES)
def test_naive_masks(benchmark, mask_dtype):
    benchmark.group = f"masks elem float32 images, {mask_dtype} masks"
    benchmark.extra_info["baseline"] = "clone images and masks + per-sample loop"
    images, masks = batch(), class_maps(mask_dtype)
    draws = draw_sequence(SEGMENTATION_KNOBS, SEGMENTATION_CLASSES, conftest.BATCH, conftest.SIZE, DRAWS)
    benchmark(each_round(draws, lambda p: baselines.naive_elem_loop_with_masks_(images, masks, p)))


@pytest.mark.parametrize("mask_dtype", MASK_DTYPES)
def test_floor_masks(benchmark, mask_dtype):
    benchmark.group = f"masks elem float32 images, {mask_dtype} masks"
    benchmark(baselines.floor_pass_with_masks_, batch(), class_maps(mask_dtype))
