"""What the bench's rows are timed on: synthetic batches, labels, segmentation masks and DataLoader
samples (nothing downloaded, the same values on every run), and the sequence of fresh draws every
row of an operation walks. The CPU scenarios, the --device cuda scenarios and the pytest-benchmark
suites in ``benchmarks/`` all make their inputs here."""
from __future__ import annotations

import itertools
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..mixup import Mixup
from ..sampling.params import MixParams

# Segmentation inputs: PASCAL VOC-like class maps (20 classes and the background; 255 marks
# ignored pixels), mixed in elem-mode Mixup/CutMix switching.
SEGMENTATION_CLASSES = 21
IGNORE_INDEX = 255
SEGMENTATION_KNOBS = dict(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem")

# The dtypes an image batch can be made in, by the names the command line takes.
DTYPES = {"uint8": torch.uint8, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def make_batches(
    shape: Sequence[int], dtype: torch.dtype, device: Union[str, torch.device] = "cpu", count: int = 1, seed: int = 0
) -> List[torch.Tensor]:
    """``count`` random tensors of ``shape`` on ``device``, one seeded generator: uint8 in [0, 256), floats in [0, 1)."""
    generator = torch.Generator(device=device).manual_seed(seed)
    if dtype == torch.uint8:
        return [torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator, device=device) for _ in range(count)]
    return [torch.rand(shape, generator=generator, device=device).to(dtype) for _ in range(count)]


def make_batch(batch: int, size: int, dtype: torch.dtype, device: Union[str, torch.device] = "cpu") -> torch.Tensor:
    """The random (batch, 3, size, size) image batch of ``dtype`` (seed 0) that the in-place rows mix."""
    return make_batches((batch, 3, size, size), dtype, device)[0]


def make_labels(batch: int, num_classes: int, seed: int = 1) -> torch.Tensor:
    """int64 (batch,) class indices in [0, num_classes), on the CPU (seed 1 unless given)."""
    return torch.randint(0, num_classes, (batch,), generator=torch.Generator().manual_seed(seed))


def make_masks(batch: int, height: int, width: int, dtype: torch.dtype = torch.uint8) -> torch.Tensor:
    """(B, H, W) class maps of ``dtype``: classes in [0, SEGMENTATION_CLASSES), about 5% of pixels ignored (255)."""
    generator = torch.Generator().manual_seed(2)
    masks = torch.randint(0, SEGMENTATION_CLASSES, (batch, height, width), dtype=torch.uint8, generator=generator)
    masks[torch.rand((batch, height, width), generator=generator) < 0.05] = IGNORE_INDEX
    return masks.to(dtype)


def make_samples(batch: int, size: int, num_classes: int) -> List[Tuple[np.ndarray, int]]:
    """``batch`` DataLoader samples as PIL / OpenCV decode them: (uint8 (size, size, 3) numpy image, int label)."""
    rng = np.random.default_rng(0)
    return [(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), int(rng.integers(num_classes))) for _ in range(batch)]


def draw_sequence(knobs: dict, num_classes: int, batch: int, size: int, count: int) -> List[MixParams]:
    """The first ``count`` MixParams that ``Mixup(seed=0, **knobs)`` draws for (batch, 3, size, size)
    images: fastmix's rows draw exactly these, call after call, and every other row takes draw r in
    its round r, so all rows of a scenario average over the same lambdas and boxes."""
    mix = Mixup(num_classes=num_classes, seed=0, **knobs)
    return [mix.sample(batch, size, size) for _ in range(count)]


def mask_planes_of(draws: Sequence[MixParams]) -> Dict[int, Optional[torch.Tensor]]:
    """Each draw's (B, H, W) planes by id(draw), made before the timing: a naive row takes them as
    the reference code's sampler would hand them over (fastmix's own rows cut them in the kernels)."""
    return {id(p): p.pixel_masks() for p in draws}


def each_round(draws: Sequence[Any], fn: Callable[[Any], object]) -> Callable[[], object]:
    """A candidate that calls ``fn(draws[r])`` on its r-th call (the timing calls each once per
    round), cycling: the draws of a random operation, or the input sets of a GPU row."""
    upcoming = itertools.cycle(draws)
    return lambda: fn(next(upcoming))
