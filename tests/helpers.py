"""What the test modules share: the markers of the backends this machine has, inputs (values,
layouts, params), the reference called with a MixParams, and the small inputs and checks of the
tests of bad input (tests/test_errors_*.py). Tests import these from here, never from one another
or from conftest.py (which holds only fixtures and the hypothesis profiles).

Running the tests: ``python -m pytest tests benchmarks --benchmark-disable -n auto`` is the full
run (CI and the README run it). ``python -m pytest -m "not slow" -n auto`` is the fast loop while
developing: it leaves out the tests marked ``slow``, each of which takes more than 2 s on the 2-core
development machine (pyproject.toml registers the marker)."""
import numpy as np
import pytest
import torch

import fastmix
from fastmix import MaskTargets, MixKind, MixParams
from fastmix.backends import reference

# -- the backends this machine has ---------------------------------------------------------------

HAS_CPP = fastmix.available_backends()["cpp"] is None
HAS_CUDA = fastmix.available_backends()["cuda"] is None
HAS_NUMBA = fastmix.available_backends()["numba"] is None

requires_cpp = pytest.mark.skipif(not HAS_CPP, reason=f"cpp backend unavailable: {fastmix.available_backends()['cpp']}")
requires_cuda = pytest.mark.skipif(not HAS_CUDA, reason=f"cuda backend unavailable: {fastmix.available_backends()['cuda']}")
# CI installs numba (the "test" extra); tests/test_numba.py fails there if it is missing.
requires_numba = pytest.mark.skipif(not HAS_NUMBA, reason=f"numba backend unavailable: {fastmix.available_backends()['numba']}")

CPP = pytest.param("cpp", marks=requires_cpp)
NUMBA = pytest.param("numba", marks=requires_numba)
# Backends whose kernels are compared against the torch reference, per device.
COMPILED_BACKENDS = [CPP, NUMBA]
# Every CPU backend: the compiled ones and the torch reference.
EVERY_BACKEND = [CPP, NUMBA, "torch"]

DTYPES = [torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64]
# contiguous / channels_last hit the dense kernel; the others the generic strided one.
LAYOUTS = ["contiguous", "channels_last", "video", "flat", "sliced", "batch_inner", "hwc_permuted"]


def random_values(shape, dtype, generator):
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 4 - 2).to(dtype)


def make_images(layout, batch, channels, height, width, dtype, generator):
    """A batch of the given logical shape (B, C, H, W) (or (B, T, C, H, W), (B, D)) and layout."""
    if layout == "contiguous":
        return random_values((batch, channels, height, width), dtype, generator)
    if layout == "channels_last":
        x = random_values((batch, channels, height, width), dtype, generator)
        return x.contiguous(memory_format=torch.channels_last)
    if layout == "video":
        return random_values((batch, 2, channels, height, width), dtype, generator)
    if layout == "flat":
        return random_values((batch, channels * height * width), dtype, generator)
    if layout == "sliced":  # gaps between elements: every other column of a wider batch
        return random_values((batch, channels, height, 2 * width), dtype, generator)[..., ::2]
    if layout == "batch_inner":  # samples interleaved: batch is not the outermost dim in memory
        return random_values((channels, batch, height, width), dtype, generator).transpose(0, 1)
    if layout == "hwc_permuted":  # (B, H, C, W) memory order viewed as (B, C, H, W)
        return random_values((batch, height, channels, width), dtype, generator).permute(0, 2, 1, 3)
    raise AssertionError(layout)


def random_params(batch, height, width, generator, allow_paste=True, allow_mask=False, allow_resize=False):
    """Arbitrary params: any partner map (cycles of any length, trees, self-partners), kinds, boxes;
    with ``allow_mask`` MASK samples too, with random pixel masks (sometimes one plane expanded
    over the batch, as batch-mode FMix draws them); with ``allow_resize`` RESIZE and RESIZE_NEAREST
    samples too."""
    partner = torch.randint(0, batch, (batch,), generator=generator)
    if torch.rand((), generator=generator) < 0.5:
        partner = torch.randperm(batch, generator=generator)
    kinds = [0, 1] + [2] * allow_paste + [3] * allow_mask + [4, 5] * allow_resize
    kind = torch.tensor(kinds, dtype=torch.uint8)[torch.randint(0, len(kinds), (batch,), generator=generator)]
    lam = torch.rand(batch, generator=generator)
    y = torch.randint(0, height + 1, (batch, 2), generator=generator).sort(dim=1).values
    x = torch.randint(0, width + 1, (batch, 2), generator=generator).sort(dim=1).values
    box = torch.cat([y, x], dim=1)
    if not allow_mask:
        return MixParams(partner=partner, lam=lam, kind=kind, box=box)
    density = torch.rand((), generator=generator)
    if torch.rand((), generator=generator) < 0.3:
        pixel_mask = (torch.rand(1, height, width, generator=generator) < density).to(torch.uint8).expand(batch, -1, -1)
    else:
        pixel_mask = (torch.rand(batch, height, width, generator=generator) < density).to(torch.uint8)
    return MixParams(partner=partner, lam=lam, kind=kind, box=box, pixel_mask=pixel_mask)


def reference_mix_(images: torch.Tensor, params: MixParams) -> torch.Tensor:
    """The torch reference's in-place mix of ``images``; returns them."""
    moved = params.to(images.device)
    reference.mix_(images, *moved.as_tuple(), **moved.mask_args())
    return images


def reference_targets(labels: torch.Tensor, params: MixParams, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """The torch reference's soft targets."""
    partner, lam, kind, _ = params.to(labels.device).as_tuple()
    return reference.mix_targets(labels, partner, lam, kind, num_classes, smoothing)


def reference_mix_into(out: torch.Tensor, images: torch.Tensor, params: MixParams, scale: torch.Tensor,
                       bias: torch.Tensor, hwc: bool) -> torch.Tensor:
    """The torch reference's out-of-place mix into ``out``; returns it."""
    moved = params.to(out.device)
    reference.mix_into_(out, images, *moved.as_tuple(), scale.to(out.device), bias.to(out.device), hwc,
                        **moved.mask_args())
    return out


LABEL_FORMS = ["indices", "int32 indices", "probabilities", "multi-label", "float16 dense"]


def make_labels(form: str, batch: int, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """(B,) class indices or (B, C) dense targets of one of LABEL_FORMS."""
    if form == "indices":
        return torch.randint(0, num_classes, (batch,), generator=generator)
    if form == "int32 indices":
        return torch.randint(0, num_classes, (batch,), generator=generator, dtype=torch.int32)
    if form == "probabilities":
        return torch.rand(batch, num_classes, generator=generator).softmax(dim=1)
    if form == "multi-label":
        return (torch.rand(batch, num_classes, generator=generator) < 0.3).float()
    if form == "float16 dense":
        return torch.rand(batch, num_classes, generator=generator).half()
    raise AssertionError(form)


def mix_into_inputs(in_dtype, batch, channels, height, width, hwc, normalize, generator):
    """(images, params, scale, bias) for mix_into_: (B, H, W, C) when hwc, else (B, C, H, W);
    float32 inputs spread over +-200; scale/bias empty unless normalising."""
    shape = (batch, height, width, channels) if hwc else (batch, channels, height, width)
    images = random_values(shape, in_dtype, generator)
    if in_dtype == torch.float32:
        images = images * 100
    params = random_params(batch, height, width, generator)
    scale = torch.rand(channels, generator=generator) + 0.5 if normalize else torch.empty(0)
    bias = torch.rand(channels, generator=generator) - 0.5 if normalize else torch.empty(0)
    return images, params, scale, bias


def dense_mask_targets(targets: MaskTargets) -> tuple:
    """(mask_a, mask_b, lam) of MaskTargets, mask_b built in full (as reference_mask_targets gives them)."""
    return targets.mask_a, targets.mask_b, targets.lam


def reference_mask_targets(masks: torch.Tensor, params: MixParams) -> tuple:
    """The masks' targets in plain torch, sample by sample, from the unmixed masks: (mask_a,
    mask_b, lam) with mask_b in full (the partner's original mask where blended, else mask_a)."""
    mask_a, mask_b = masks.clone(), masks.clone()
    lam = torch.ones(params.batch_size)
    for i in range(params.batch_size):
        j, kind = int(params.partner[i]), int(params.kind[i])
        if kind == MixKind.PASTE:
            y0, y1, x0, x1 = params.box[i].tolist()
            mask_a[i, y0:y1, x0:x1] = masks[j, y0:y1, x0:x1]
            mask_b[i] = mask_a[i]
        elif kind == MixKind.BLEND:
            mask_b[i] = masks[j]
            lam[i] = params.lam[i]
    return mask_a, mask_b, lam


# -- bad input (tests/test_errors_*.py): small inputs, valid params, and what "unchanged" means ---

NAN = float("nan")
B, C, H, W = 4, 10, 8, 8  # batch, classes, height, width of the inputs below

MIXUP_ONLY = dict(mixup_alpha=0.8, cutmix_alpha=0.0)
CUTMIX_ON = dict(mixup_alpha=0.8, cutmix_alpha=1.0)
CUTMIX_ONLY = dict(mixup_alpha=0.0, cutmix_alpha=1.0)

NO_AFFINE = (torch.empty(0), torch.empty(0))  # scale, bias: no normalisation


def small_images(shape=(B, 3, H, W), dtype=torch.float32):
    """A fixed batch (seed 0) of ``shape`` and ``dtype`` (bool, uint8 and int32: from [0, 1) scaled)."""
    generator = torch.Generator().manual_seed(0)
    values = torch.rand(shape, generator=generator, dtype=torch.float64)
    if dtype == torch.bool:
        return values > 0.5
    if dtype in (torch.uint8, torch.int32):
        return (values * 255).to(dtype)
    return values.to(dtype)


def small_labels(values=(1, 3, 5, 7), dtype=torch.int64):
    return torch.tensor(values, dtype=dtype)


def clone(x):
    return x.clone() if isinstance(x, torch.Tensor) else x


def assert_unchanged(before, after):
    """``after`` is the very tensor given to the call; ``before`` a clone taken just before."""
    if not isinstance(before, torch.Tensor):
        return
    if before.device.type == "meta":  # no data to compare
        assert after.shape == before.shape and after.dtype == before.dtype
        return
    assert torch.equal(before, after), "a refused call must leave the caller's tensor unchanged"


def assert_call_refused(mode, kwargs, images, labels, error, message):
    """Mixup(**kwargs, mode=mode)(images(), labels()) raises ``error`` whose message matches
    ``message`` from its start, leaves both tensors unchanged and samples nothing."""
    mix = fastmix.Mixup(**kwargs, mode=mode, num_classes=C, seed=0)
    images, labels = images(), labels()
    images_before, labels_before = clone(images), clone(labels)
    with pytest.raises(error, match="^" + message):
        mix(images, labels)
    assert_unchanged(images_before, images)
    assert_unchanged(labels_before, labels)
    assert mix.last_params is None, "nothing is sampled for a refused call"


def good_params():
    """A valid MixParams for (B, 3, H, W): a blend, a paste with a box, and two untouched samples."""
    return dict(
        partner=torch.tensor([1, 0, 3, 2]),
        lam=torch.tensor([0.7, 0.7, 1.0, 1.0]),
        kind=torch.tensor([MixKind.BLEND, MixKind.PASTE, MixKind.NONE, MixKind.NONE], dtype=torch.uint8),
        box=torch.tensor([[0, 0, 0, 0], [2, 6, 1, 5], [0, 0, 0, 0], [0, 0, 0, 0]]),
    )


def valid_params():
    return MixParams(**good_params())


def edit(field, index, value):
    """A change to good_params(): ``field[index] = value``."""
    def apply(p):
        p[field][index] = value

    return apply


def op(backend):
    """The ops of one backend as the registry gives them (for cpp: torch.ops.fastmix.*)."""
    from fastmix.backends import resolve_backend

    return resolve_backend(backend, "cpu")


def sample_snapshot(value):
    if isinstance(value, torch.Tensor):
        if value.device.type == "meta":
            return ("meta", value.shape, value.dtype)
        return value.to_dense().clone() if value.layout != torch.strided else value.clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    return value


def same_sample(before, after):
    if isinstance(after, torch.Tensor):
        if after.device.type == "meta":
            return before == ("meta", after.shape, after.dtype)
        after = after.to_dense() if after.layout != torch.strided else after
        bits = lambda t: t.resolve_neg().reshape(-1).view(torch.uint8)  # noqa: E731 (bit for bit: NaN too)
        return after.dtype == before.dtype and after.shape == before.shape and torch.equal(bits(after), bits(before))
    if isinstance(after, np.ndarray):
        return after.dtype == before.dtype and np.array_equal(after, before)
    return before == after


# -- the collate's bad input (tests/test_errors_collate.py; tests/test_collate.py, after a refusal) --


def zero_image(shape=(3, 8, 9)):
    """A (C, H, W) uint8 image of zeros."""
    return torch.zeros(shape, dtype=torch.uint8)


def new_collate(**kw):
    """A MixupCollate of a Mixup with both methods on, 4 classes, seed 0; ``kw`` go to the collate."""
    return fastmix.MixupCollate(fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=4, seed=0), **kw)
