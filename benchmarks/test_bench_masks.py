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
from fastmix.bench.cli import draw_sequence, each_round

from . import conftest
from .conftest import BACKENDS

KNOBS = dict(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem")
NUM_CLASSES = 21  # PASCAL VOC: 20 classes and the background; 255 marks ignored pixels
MASK_DTYPES = {"uint8": torch.uint8, "int64": torch.int64}  # as stored, and as cross_entropy takes them
DRAWS = 64  # every row walks the same sequence of fresh draws (seed 0), one per call


def make_images():
    return torch.rand((conftest.BATCH, 3, conftest.SIZE, conftest.SIZE), generator=torch.Generator().manual_seed(0))


def make_masks(dtype):
    generator = torch.Generator().manual_seed(2)
    shape = (conftest.BATCH, conftest.SIZE, conftest.SIZE)
    masks = torch.randint(0, NUM_CLASSES, shape, generator=generator).to(dtype)
    masks[torch.rand(shape, generator=generator) < 0.05] = 255
    return masks


def labels():
    return torch.randint(0, NUM_CLASSES, (conftest.BATCH,), generator=torch.Generator().manual_seed(1))


def mixup(backend):
    return fastmix.Mixup(num_classes=NUM_CLASSES, seed=0, backend=backend, **KNOBS)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mask_dtype", MASK_DTYPES)
def test_fastmix_masks(benchmark, mask_dtype, backend):
    """A user's whole call, mix(images, None, masks=masks): sampling, the checks, the masks' boxes
    pasted and their MaskTargets, the images mixed; a fresh draw each call."""
    benchmark.group = f"masks elem float32 images, {mask_dtype} masks"
    images, masks = make_images(), make_masks(MASK_DTYPES[mask_dtype])
    out = benchmark(mixup(backend), images, None, masks=masks)
    assert out[0] is images and out[2].mask_a is masks


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mask_dtype", MASK_DTYPES)
def test_fastmix_images_alone(benchmark, mask_dtype, backend):
    """The same call without masks (labels instead, 21 classes): what the masks add is the difference."""
    benchmark.group = f"masks elem float32 images, {mask_dtype} masks"
    benchmark.extra_info["what"] = "the images alone, mix(images, labels)"
    benchmark(mixup(backend), make_images(), labels())


@pytest.mark.parametrize("mask_dtype", MASK_DTYPES)
def test_naive_masks(benchmark, mask_dtype):
    benchmark.group = f"masks elem float32 images, {mask_dtype} masks"
    benchmark.extra_info["baseline"] = "clone images and masks + per-sample loop"
    images, masks = make_images(), make_masks(MASK_DTYPES[mask_dtype])
    draws = draw_sequence(KNOBS, NUM_CLASSES, conftest.BATCH, conftest.SIZE, DRAWS)
    benchmark(each_round(draws, lambda p: baselines.naive_elem_loop_with_masks_(images, masks, p)))


@pytest.mark.parametrize("mask_dtype", MASK_DTYPES)
def test_floor_masks(benchmark, mask_dtype):
    benchmark.group = f"masks elem float32 images, {mask_dtype} masks"
    benchmark(baselines.floor_pass_with_masks_, make_images(), make_masks(MASK_DTYPES[mask_dtype]))
