"""FMix in elem and pair modes: each sample's mask cut from one noise image per batch (mask_field).

The specification: sample i takes its partner's pixel (y, x) where ``mask_field[(y + dy) % H,
(x + dx) % W] < field_threshold[i]``, ``box[i] = (dy, dy + H, dx, dx + W)``
(fastmix/backends/mask_field.py). Every backend mixes by it bit for bit as the torch reference
with the planes cut first; lam is the own fraction exactly; the masks' marginal statistics are
FMix's (against per-sample masks drawn as the batch mode draws them); the drawn windows are
uniform; the params replay; bad field arguments are refused by name with the caller's tensors
untouched (the fuzz suite draws more of them).
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from torch.utils.data import DataLoader

import fastmix
import fastmix.sampling.fmix
from fastmix import MixKind, MixParams
from fastmix.backends import reference, resolve_backend
from fastmix.backends.mask_field import field_pixel_mask
from fastmix.sampling.fmix import fmix_field_params, fmix_pixel_masks

from .helpers import random_values

BACKENDS = [name for name in ("cpp", "numba") if fastmix.available_backends()[name] is None]


def field_params(batch: int, height: int, width: int, seed: int, mode: str = "elem", **knobs) -> MixParams:
    mix = fastmix.Mixup(mixup_alpha=0.0, fmix_alpha=1.0, mode=mode, num_classes=10, seed=seed, **knobs)
    params = mix.sample(batch, height, width)
    assert params.mask_field is not None and params.pixel_mask is None
    return params


def rolled_planes(params: MixParams) -> torch.Tensor:
    """The definition, by numpy's roll: each MASK sample's field rolled by (-dy, -dx), cut."""
    field = params.mask_field.numpy()
    planes = np.zeros((params.batch_size,) + field.shape, dtype=np.uint8)
    for i in range(params.batch_size):
        if int(params.kind[i]) == MixKind.MASK:
            dy, dx = int(params.box[i, 0]), int(params.box[i, 2])
            planes[i] = np.roll(field, (-dy, -dx), axis=(0, 1)) < params.field_threshold[i].item()
    return torch.from_numpy(planes)


def test_the_planes_are_the_field_rolled_by_each_window_and_cut_at_its_threshold():
    params = field_params(12, 9, 13, seed=1, prob=0.7)
    assert torch.equal(params.pixel_masks(), rolled_planes(params))
    masked = params.kind == int(MixKind.MASK)
    assert 0 < int(masked.sum()) < 12, "some samples mix, some do not (prob)"
    kept = 1.0 - params.pixel_masks().double().mean(dim=(1, 2))
    assert torch.equal(params.lam[masked], kept[masked].float()), "lam: the fraction of own pixels, exactly"
    assert bool((params.box[masked, 1] == params.box[masked, 0] + 9).all())
    assert bool((params.box[masked, 3] == params.box[masked, 2] + 13).all())


def test_a_tie_across_the_cut_counts_the_pixels_the_comparison_takes(monkeypatch):
    """A field with equal values: the partner gives the pixels below the threshold, and lam says
    how many it gave (the comparison's count), not how many the draw asked for."""
    tied = np.repeat(np.float32([0.0, 1.0]), 8).reshape(1, 4, 4)  # eight 0s, eight 1s
    monkeypatch.setattr(fastmix.sampling.fmix, "low_frequency_images", lambda *args: tied)
    lam = np.array([0.25, 0.5, 0.75, 1.0, 0.0])  # own 4, 8, 12, 16, 0: the partner's 12, 8, 4, 0, 16
    field, threshold, window, own = fmix_field_params(lam, 4, 4, 3.0, np.random.default_rng(0))
    taken = (field.reshape(1, 16) < threshold[:, None]).sum(axis=1)
    assert list(taken) == [8, 8, 0, 0, 16], "12 and 4 fall inside a tie: the partner gives 8 and 0"
    assert np.array_equal(own, (16 - taken) / 16)


@pytest.mark.parametrize("mode", ["elem", "pair"])
def test_the_windows_are_uniform_and_pairs_share_one(mode):
    params = field_params(2001, 7, 5, seed=3, mode=mode)
    dy, dx = params.box[:, 0].numpy(), params.box[:, 2].numpy()
    for values, n in ((dy, 7), (dx, 5)):
        counts = np.bincount(values, minlength=n)
        assert scipy.stats.chisquare(counts).pvalue > 1e-3
    if mode == "pair":
        for i in range(100):
            j = 2000 - i
            assert torch.equal(params.box[i], params.box[j]) and params.lam[i] == params.lam[j]
            assert params.field_threshold[i] == params.field_threshold[j]


def test_the_masks_marginal_statistics_are_fmixs():
    """Over 2,000 batches (one sample of each): lam ~ Beta(alpha, alpha), and the masks' edges (the fraction of
    horizontally and vertically adjacent pixel pairs that differ) distributed as those of masks
    drawn one per sample (fmix_pixel_masks, the batch mode's draw), at the same lambdas: two-sample
    KS. A roll of a periodic stationary field is distributed as the field, so each sample's mask
    is an FMix mask; the masks of a batch share one image (the README says so)."""
    height = width = 32
    mix = fastmix.Mixup(mixup_alpha=0.0, fmix_alpha=1.0, mode="elem", num_classes=10, seed=0)
    params = [mix.sample(2, height, width) for _ in range(2000)]  # one sample of each: independent fields
    lam = torch.cat([p.lam[:1] for p in params]).double().numpy()
    assert scipy.stats.kstest(lam, scipy.stats.beta(1.0, 1.0).cdf).pvalue > 1e-3
    cut = torch.cat([p.pixel_masks()[:1] for p in params]).numpy().astype(np.int8)
    own, _ = fmix_pixel_masks(lam, height, width, 3.0, np.random.default_rng(11))
    own = own.astype(np.int8)

    def edges(masks: np.ndarray, axis: int) -> np.ndarray:
        return (np.diff(masks, axis=axis) != 0).mean(axis=(1, 2))

    for axis in (1, 2):
        result = scipy.stats.ks_2samp(edges(cut, axis), edges(own, axis))
        assert result.pvalue > 1e-3, f"axis {axis}: {result}"


def _mixed_batches(shape, dtype, generator):
    """Dense layouts (the cpp kernels cut each sample's plane once per thread where they read it)
    and a sliced one (the strided path: planes cut first)."""
    images = random_values(shape, dtype, generator)
    if len(shape) == 4 and dtype != torch.float64:
        yield "channels_last", images.contiguous(memory_format=torch.channels_last)
    yield "contiguous", images
    yield "sliced", random_values(shape[:-1] + (2 * shape[-1],), dtype, generator)[..., ::2]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("shape", [(10, 3, 12, 17), (7, 2, 3, 9, 11), (6, 1, 2, 3000)], ids=["images", "video", "long rows"])
@pytest.mark.parametrize("threads", [1, 2])
def test_mix_in_place_matches_the_reference(backend, dtype, shape, threads):
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(5)
    params = field_params(shape[0], shape[-2], shape[-1], seed=7, prob=0.8)
    for name, images in _mixed_batches(shape, dtype, generator):
        expected = images.clone()
        reference.mix_(expected, *params.as_tuple(), pixel_mask=params.pixel_masks())
        planes = images.clone()
        resolve_backend(backend, "cpu").mix_(planes, *params.as_tuple(), pixel_mask=params.pixel_masks())
        fastmix.mix_(images, params, backend=backend)
        assert torch.equal(images, expected), name
        assert torch.equal(planes, expected), f"{name}: the same pixels as with the planes"


@pytest.mark.parametrize("backend", BACKENDS + ["torch"])
@pytest.mark.parametrize("out_dtype,normalize", [(torch.uint8, False), (torch.float32, True), (torch.bfloat16, True),
                                                 (torch.float16, False)])
@pytest.mark.parametrize("hwc", [True, False])
def test_mix_into_and_the_collate_match_the_reference(backend, out_dtype, normalize, hwc):
    """Wide rows (224: every vector width and tail), each sample its own window and threshold,
    uint8 HWC samples of 3 channels (the cpp collate's fused loop) and CHW samples."""
    generator = torch.Generator().manual_seed(9)
    batch, height, width = 6, 9, 224
    images = random_values((batch, height, width, 3) if hwc else (batch, 3, height, width), torch.uint8, generator)
    params = field_params(batch, height, width, seed=2)
    scale = torch.rand(3, generator=generator) + 0.5 if normalize else torch.empty(0)
    bias = torch.rand(3, generator=generator) - 0.5 if normalize else torch.empty(0)
    expected = torch.empty(batch, 3, height, width, dtype=out_dtype)
    reference.mix_into_(expected, images, *params.as_tuple(), scale, bias, hwc, pixel_mask=params.pixel_masks())
    ops = resolve_backend(backend, "cpu")
    for entry in ("mix_into_", "collate_mix_"):
        out = torch.full_like(expected, 7)
        source = images if entry == "mix_into_" else list(images.unbind(0))
        getattr(ops, entry)(out, source, *params.as_tuple(), scale, bias, hwc, **params.mask_args())
        assert torch.equal(out, expected), entry


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("threads", [1, 2])
def test_the_collate_of_a_dataloader_replays_and_pastes_the_masks(backend, threads):
    """MixupCollate with FMix in elem mode, segmentation masks given: every image pixel and mask
    label from the partner exactly where the plane says, the batch replayed bit for bit from its
    params by the in-place op, the targets' weights the own fractions."""
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(4)
    images = random_values((8, 3, 10, 14), torch.uint8, generator)
    seg = torch.randint(0, 5, (8, 10, 14), generator=generator)
    labels = torch.arange(8) % 10
    dataset = [{"image": images[i], "label": int(labels[i]), "mask": seg[i]} for i in range(8)]
    mix = fastmix.Mixup(mixup_alpha=0.0, fmix_alpha=1.0, mode="elem", num_classes=10, seed=6, backend=backend)
    collate = fastmix.MixupCollate(mix, masks=True, return_params=True)
    loader = DataLoader(dataset, batch_size=8, collate_fn=collate, num_workers=0)
    batch, = list(loader)
    mixed, targets, masks, params = batch["image"], batch["label"], batch["mask"], batch["mix_params"]
    assert params.mask_field is not None
    planes = params.pixel_masks().bool()
    for i in range(8):
        j = int(params.partner[i])
        expected_image = torch.where(planes[i], images[j], images[i])
        assert torch.equal(mixed[i].to(torch.uint8), expected_image)
        assert torch.equal(masks.mask_a[i], torch.where(planes[i], seg[j], seg[i]))
    replayed = images.clone()
    fastmix.mix_(replayed, params, backend=backend)
    assert torch.equal(replayed, mixed.to(torch.uint8))
    assert torch.equal(targets, fastmix.mix_targets(labels, params, 10, smoothing=0.1))
    assert torch.equal(params.to("cpu").pixel_masks(), params.pixel_masks())


def test_classmix_beside_fmix_makes_fmixs_masks_planes():
    """With ClassMix in the same elem-mode batch, FMix's masks are planes, as ClassMix's are."""
    mix = fastmix.Mixup(mixup_alpha=0.0, fmix_alpha=1.0, classmix=True, mode="elem", num_classes=5, seed=1)
    seg = torch.randint(0, 5, (16, 8, 8), generator=torch.Generator().manual_seed(1))
    params = mix.sample(16, 8, 8, masks=seg)
    methods = set(params.method.tolist())
    assert {int(fastmix.MixMethod.FMIX), int(fastmix.MixMethod.CLASSMIX)} <= methods
    assert params.mask_field is None and params.pixel_mask is not None


@pytest.mark.parametrize("backend", BACKENDS + ["torch"])
@pytest.mark.parametrize("bad", ["missing field", "missing threshold", "float64 field", "field shape", "strided field",
                                 "threshold shape", "with pixel_mask", "window"])
def test_bad_field_arguments_are_refused_by_name_before_a_write(backend, bad):
    generator = torch.Generator().manual_seed(3)
    images = random_values((4, 3, 6, 8), torch.float32, generator)
    params = field_params(4, 6, 8, seed=8)
    field, threshold, box, pixel_mask = params.mask_field, params.field_threshold, params.box.clone(), None
    name = {"missing field": "mask_field", "missing threshold": "field_threshold", "float64 field": "mask_field",
            "field shape": "mask_field", "strided field": "mask_field", "threshold shape": "field_threshold",
            "with pixel_mask": "pixel_mask", "window": "box[1]"}[bad]
    if bad == "missing field":
        field = None
    elif bad == "missing threshold":
        threshold = None
    elif bad == "float64 field":
        field = field.double()
    elif bad == "field shape":
        field = field[:, :-1]
    elif bad == "strided field":
        field = field.t().contiguous().t()
    elif bad == "threshold shape":
        threshold = threshold[:-1]
    elif bad == "with pixel_mask":
        pixel_mask = params.pixel_masks()
    else:
        box[1] = torch.tensor([6, 12, 0, 8])
    before = images.clone()
    with pytest.raises((ValueError, TypeError), match=name.replace("[", r"\[").replace("]", r"\]")):
        resolve_backend(backend, "cpu").mix_(images, params.partner, params.lam, params.kind, box,
                                             pixel_mask=pixel_mask, mask_field=field, field_threshold=threshold)
    assert torch.equal(images, before)
    with pytest.raises((ValueError, TypeError), match="params."):
        fastmix.mix_(images, MixParams(params.partner, params.lam, params.kind, box, pixel_mask, params.method, field,
                                       threshold), backend=backend)
    assert torch.equal(images, before)
