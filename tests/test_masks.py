"""Segmentation: per-pixel class masks mixed with their images by the same MixParams.

CutMix pastes the partner's mask into exactly the image's box, in place, the same integers; Mixup
returns the two masks and the weight, and mixed_mask_loss equals the cross entropy against the
dense soft target. Every backend, every mask dtype, every mode, batch sizes 1..65."""
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import fastmix
from fastmix import MaskTargets, MixKind, mixed_mask_loss, shared_pool

from .helpers import COMPILED_BACKENDS, dense_mask_targets, reference_mask_targets, reference_mix_

BACKENDS = COMPILED_BACKENDS + ["torch"]
MASK_DTYPES = [torch.uint8, torch.int16, torch.int32, torch.int64]
MODES = ["batch", "pair", "elem"]


def random_masks(batch, height, width, dtype, num_classes, generator):
    high = min(num_classes, torch.iinfo(dtype).max)
    return torch.randint(0, high, (batch, height, width), generator=generator).to(dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", MASK_DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_masks_match_the_reference_bit_for_bit_for_every_batch_size(backend, dtype, mode):
    generator = torch.Generator().manual_seed(0)
    # The largest class count the masks' dtype can hold (and -1 pixels below): every byte moves.
    num_classes = min(torch.iinfo(dtype).max, 2**31 - 1)
    mix = fastmix.Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, mode=mode, prob=0.8, num_classes=num_classes, seed=1,
                        backend=backend, ignore_index=-1)
    for batch in range(1, 66):
        images = torch.rand(batch, 3, 6, 7, generator=generator)
        masks = random_masks(batch, 6, 7, dtype, num_classes, generator)
        if dtype != torch.uint8:  # ignored pixels, -1: all bytes 0xFF, so the high bytes move too
            masks[torch.rand(masks.shape, generator=generator) < 0.1] = -1
        unmixed_images, unmixed_masks = images.clone(), masks.clone()
        out, targets, mask_targets = mix(images, None, masks=masks)
        params = mix.last_params
        assert targets is None and out is images and mask_targets.mask_a is masks, "in place"
        expected = reference_mask_targets(unmixed_masks, params)
        for got, want in zip(dense_mask_targets(mask_targets), expected):
            assert torch.equal(got, want), f"B={batch}"
        assert torch.equal(images, reference_mix_(unmixed_images, params))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cutmix_box_in_a_mask_holds_the_partners_pixels_and_nothing_else_changes(backend):
    generator = torch.Generator().manual_seed(2)
    mix = fastmix.Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, mode="elem", num_classes=21, seed=3, backend=backend)
    images = torch.rand(9, 3, 16, 12, generator=generator)
    masks = random_masks(9, 16, 12, torch.uint8, 21, generator)
    before = masks.clone()
    _, _, mask_targets = mix(images, None, masks=masks)
    params = mix.last_params
    for i in range(9):
        y0, y1, x0, x1 = params.box[i].tolist()
        inside = torch.zeros(16, 12, dtype=torch.bool)
        inside[y0:y1, x0:x1] = True
        assert torch.equal(masks[i][inside], before[int(params.partner[i])][inside])
        assert torch.equal(masks[i][~inside], before[i][~inside])
        # the image's box is the same box: its pixels come from the same partner
    assert torch.equal(mask_targets.lam, torch.ones(9)) and torch.equal(mask_targets.mask_b, masks)
    assert mask_targets.saved.shape == (0, 16, 12), "no blend: no partner mask is kept"


def dense_loss(logits, targets: MaskTargets, smoothing, ignore_index):
    """The cross entropy against the dense per-pixel soft target, built with one-hot tensors."""
    num_classes = logits.shape[1]

    def smoothed(mask):
        valid = mask != ignore_index
        one_hot = torch.nn.functional.one_hot(torch.where(valid, mask.long(), 0), num_classes).permute(0, 3, 1, 2).double()
        return (one_hot * (1 - smoothing) + smoothing / num_classes) * valid.unsqueeze(1), valid

    target_a, valid_a = smoothed(targets.mask_a)
    target_b, valid_b = smoothed(targets.mask_b)
    lam = targets.lam.double().view(-1, 1, 1, 1)
    both = (valid_a & valid_b).unsqueeze(1)
    target = torch.where(both, lam * target_a + (1 - lam) * target_b, target_a + target_b)  # one side: that side
    per_pixel = -(target * logits.double().log_softmax(1)).sum(1)
    return per_pixel.sum() / (valid_a | valid_b).sum()


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("mode", MODES)
def test_the_loss_equals_the_dense_soft_target_cross_entropy_with_ignored_pixels(smoothing, mode):
    generator = torch.Generator().manual_seed(4)
    mix = fastmix.Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, mode=mode, num_classes=5, seed=5)
    images = torch.rand(6, 3, 8, 9, generator=generator)
    masks = random_masks(6, 8, 9, torch.int64, 5, generator)
    masks[torch.rand(6, 8, 9, generator=generator) < 0.2] = 255  # ignored pixels, on one side or both
    _, _, targets = mix(images, None, masks=masks)
    logits = torch.randn(6, 5, 8, 9, generator=generator, dtype=torch.float64)
    got = mixed_mask_loss(logits, targets, smoothing=smoothing, ignore_index=255)
    torch.testing.assert_close(got, dense_loss(logits, targets, smoothing, 255), rtol=1e-12, atol=1e-12)


def loss_of_dense_targets(logits, mask_a, mask_b, lam, smoothing, ignore_index):
    """mixed_mask_loss as it was when MaskTargets held mask_b in full (fastmix 0.2.0)."""
    ce = torch.nn.functional.cross_entropy
    a, b = mask_a.long(), mask_b.long()
    loss_a = ce(logits, a, reduction="none", ignore_index=ignore_index, label_smoothing=smoothing)
    loss_b = ce(logits, b, reduction="none", ignore_index=ignore_index, label_smoothing=smoothing)
    valid_a, valid_b = a != ignore_index, b != ignore_index
    lam = lam.to(logits.dtype).view(-1, 1, 1)
    weight_a = torch.where(valid_b, lam, torch.ones_like(lam)) * valid_a
    weight_b = torch.where(valid_a, 1 - lam, torch.ones_like(lam)) * valid_b
    return (weight_a * loss_a + weight_b * loss_b).sum() / (valid_a | valid_b).sum().clamp(min=1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("knobs", [dict(mixup_alpha=1.0), dict(mixup_alpha=0.0, cutmix_alpha=1.0),
                                   dict(mixup_alpha=1.0, cutmix_alpha=1.0)], ids=["mixup", "cutmix", "switching"])
def test_the_compact_targets_give_the_loss_of_the_full_partner_masks(backend, mode, knobs):
    """MaskTargets keeps only the partners' masks a paste overwrote (``saved``) and reads the rest
    from mask_a: the loss is the one of the full mask_b, and mask_b is the reference's."""
    generator = torch.Generator().manual_seed(7)
    for batch in (1, 2, 5, 16):
        mix = fastmix.Mixup(mode=mode, num_classes=5, seed=batch, backend=backend, **knobs)
        masks = random_masks(batch, 8, 9, torch.uint8, 5, generator)
        masks[torch.rand(batch, 8, 9, generator=generator) < 0.2] = 255
        unmixed = masks.clone()
        _, _, targets = mix(torch.rand(batch, 3, 8, 9, generator=generator), None, masks=masks)
        mask_a, mask_b, lam = reference_mask_targets(unmixed, mix.last_params)
        assert torch.equal(targets.mask_b, mask_b) and torch.equal(targets.lam, lam)
        kind, partner = mix.last_params.kind, mix.last_params.partner
        pasted_and_read = set(partner[kind == MixKind.BLEND].tolist()) & set(
            torch.nonzero((kind == MixKind.PASTE) & (partner != torch.arange(batch))).view(-1).tolist())
        assert len(targets.saved) == len(pasted_and_read), "a copy only of the partners a paste overwrote"
        logits = torch.randn(batch, 5, 8, 9, generator=generator, dtype=torch.float64)
        for smoothing in (0.0, 0.1):
            torch.testing.assert_close(mixed_mask_loss(logits, targets, smoothing, 255),
                                       loss_of_dense_targets(logits, mask_a, mask_b, lam, smoothing, 255),
                                       rtol=0, atol=0)


def test_the_loss_of_unmixed_masks_is_torchs_cross_entropy():
    generator = torch.Generator().manual_seed(6)
    masks = torch.randint(0, 4, (3, 5, 5), generator=generator)
    masks[0, 0, 0] = 255
    logits = torch.randn(3, 4, 5, 5, generator=generator)
    targets = MaskTargets.unmixed(masks)
    expected = torch.nn.functional.cross_entropy(logits, masks, ignore_index=255, label_smoothing=0.1)
    torch.testing.assert_close(mixed_mask_loss(logits, targets, 0.1), expected)


# -- the collate: masks from the samples, each written once -----------------------------------------


class SegmentationSet(Dataset):
    """Dict samples as segmentation datasets give them: a uint8 HWC image, a PIL 'P' mask, an id."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        from PIL import Image

        rng = np.random.default_rng(i)
        mask = rng.integers(0, 6, (10, 12), dtype=np.uint8)
        mask[0, :3] = 255
        palette = Image.fromarray(mask, mode="P")
        return {"image": np.repeat(mask[:, :, None] * 40, 3, axis=2), "mask": palette, "id": i}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_multi_worker_dataloader_collates_dict_samples_with_their_masks(backend):
    mix = fastmix.Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", num_classes=6, seed=0, backend=backend)
    collate = fastmix.MixupCollate(mix, masks=True, return_params=True)
    loader = DataLoader(SegmentationSet(24), batch_size=8, num_workers=2, collate_fn=collate)
    seen = 0
    for batch in loader:
        ids, params, targets = batch["id"], batch["mix_params"], batch["mask"]
        unmixed = torch.stack([torch.from_numpy(np.array(SegmentationSet(24)[int(i)]["mask"])) for i in ids])
        expected = reference_mask_targets(unmixed, params)
        for got, want in zip(dense_mask_targets(targets), expected):
            assert torch.equal(got, want)
        # the images were built from the masks (pixel = 40 * class): the same box moved both
        images = batch["image"]
        pasted = params.kind == MixKind.PASTE
        assert torch.equal(images[pasted, 0], (targets.mask_a[pasted].to(torch.int32) * 40).to(torch.uint8))
        seen += len(ids)
    assert seen == 24


class LargeMaskSet(Dataset):
    """Samples whose batch of images (8 x 3 x 256 x 320 uint8: 1.9 MiB) and of int64 masks (5 MiB) is
    over shared_pool.MIN_BYTES."""

    def __len__(self):
        return 32

    def __getitem__(self, i):
        mask = np.random.default_rng(i).integers(0, 6, (256, 320), dtype=np.int64)
        return np.repeat((mask[:, :, None] * 40).astype(np.uint8), 3, axis=2), mask


@pytest.mark.skipif(not shared_pool.available(), reason="no memfd here, or FASTMIX_WORKER_POOL=0")
def test_a_workers_masks_reach_the_main_process_by_reference_to_its_pool_slots_like_its_images():
    """A pooled batch arrives as a plain tensor that is not shared (torch's copy into a fresh shared
    file would be); the masks' mask_a and saved come from slots just as the images do."""
    mix = fastmix.Mixup(cutmix_alpha=1.0, num_classes=6, seed=0)
    collate = fastmix.MixupCollate(mix, masks=True, return_params=True)
    loader = DataLoader(LargeMaskSet(), batch_size=8, num_workers=1, collate_fn=collate)
    for n, (images, targets, params) in enumerate(loader):
        assert not images.is_shared() and not targets.mask_a.is_shared()
        if targets.saved.numel() * targets.saved.element_size() >= shared_pool.MIN_BYTES:
            assert not targets.saved.is_shared()
        unmixed = torch.stack([torch.from_numpy(LargeMaskSet()[8 * n + i][1]) for i in range(8)])
        for got, want in zip(dense_mask_targets(targets), reference_mask_targets(unmixed, params)):
            assert torch.equal(got, want)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.int64])
def test_tuple_samples_give_images_and_mask_targets_in_the_masks_place(dtype):
    collate = fastmix.MixupCollate(fastmix.Mixup(cutmix_alpha=1.0, num_classes=9, seed=0), masks=True)
    samples = [(np.zeros((5, 6, 3), np.uint8), np.full((5, 6), i, dtype), f"name{i}") for i in range(4)]
    images, mask_targets, names = collate(samples)
    assert images.shape == (4, 3, 5, 6) and isinstance(mask_targets, MaskTargets)
    assert mask_targets.mask_a.dtype == torch.from_numpy(np.zeros(1, dtype)).dtype
    assert list(names) == [f"name{i}" for i in range(4)]
    expected = reference_mask_targets(torch.stack([torch.from_numpy(s[1]) for s in samples]), collate.mixup.last_params)
    for got, want in zip(dense_mask_targets(mask_targets), expected):
        assert torch.equal(got, want)
