"""FMix, ClassMix and ResizeMix through the front ends users construct: fastmix.Mixup (in place, with class
labels, dense labels and segmentation masks) and fastmix.MixupCollate (fused with the collate's
conversion, in a real DataLoader), on every backend. Off by default; when on, each batch is
exactly what its MixParams (method, lam, box, pixel_mask) say, replayable bit for bit; the soft targets
weigh each side by the fraction of pixels it gave; segmentation masks take the partner's labels at
exactly the pixels the images took."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

import fastmix
from fastmix import MixKind, MixMethod

from .helpers import EVERY_BACKEND, make_images, random_values, reference_mix_, reference_mix_into

NUM_CLASSES = 6
IGNORE = 255


def segmentation_masks(batch, height, width, generator, dtype=torch.int64):
    """Masks of class blocks (a few classes per mask) and an ignored border row."""
    masks = torch.randint(0, NUM_CLASSES, (batch, 1, 1), generator=generator).expand(batch, height, width).clone()
    masks[:, : height // 2, : width // 2] = torch.randint(0, NUM_CLASSES, (batch, 1, 1), generator=generator)
    masks[:, height // 2:, width // 3:] = torch.randint(0, NUM_CLASSES, (batch, 1, 1), generator=generator)
    masks[:, -1] = IGNORE
    return masks.to(dtype)


def expected_masks(masks, params):
    """mask_a: the partner's label at every pixel a MASK sample took, a paste's box, the partner's
    whole mask resized into a resize's box by nearest neighbour (a label is never interpolated),
    else its own."""
    out = masks.clone()
    for i in range(params.batch_size):
        j, kind = int(params.partner[i]), int(params.kind[i])
        if kind == MixKind.MASK:
            take = params.pixel_masks()[i].bool()
            out[i][take] = masks[j][take]
        elif kind == MixKind.PASTE:
            y0, y1, x0, x1 = params.box[i].tolist()
            out[i, y0:y1, x0:x1] = masks[j, y0:y1, x0:x1]
        elif kind in (MixKind.RESIZE, MixKind.RESIZE_NEAREST):
            y0, y1, x0, x1 = params.box[i].tolist()
            if y1 > y0 and x1 > x0:
                resized = F.interpolate(masks[j][None, None].float(), size=(y1 - y0, x1 - x0), mode="nearest")
                out[i, y0:y1, x0:x1] = resized[0, 0].to(masks.dtype)
    return out


def test_the_methods_are_off_by_default():
    mix = fastmix.Mixup(num_classes=NUM_CLASSES)
    policy = mix.policy
    assert (policy.fmix_alpha, policy.classmix, policy.resizemix_alpha, policy.method_probs) == (0.0, False, 0.0, None)
    assert (mix.fmix_alpha, mix.fmix_decay_power, mix.classmix, mix.method_probs) == (0.0, 3.0, False, None)
    assert (mix.resizemix_alpha, mix.resizemix_lam_min, mix.resizemix_lam_max, mix.resizemix_interpolation) == \
        (0.0, 0.1, 0.8, "bilinear"), "mmpretrain's ResizeMix defaults, off"
    params = mix.sample(8, 8, 8)
    assert not bool((params.kind >= int(MixKind.MASK)).any()) and params.pixel_mask is None


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize("dtype, layout", [(torch.uint8, "contiguous"), (torch.float32, "channels_last"),
                                           (torch.bfloat16, "video"), (torch.float16, "sliced")])
def test_mixup_mixes_images_and_targets_as_its_params_say(backend, mode, dtype, layout):
    generator = torch.Generator().manual_seed(len(mode) + len(layout))
    interpolation = "nearest" if layout in ("video", "sliced") else "bilinear"
    mix = fastmix.Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, fmix_alpha=1.0, resizemix_alpha=1.0,
                        resizemix_interpolation=interpolation, mode=mode, num_classes=NUM_CLASSES,
                        label_smoothing=0.1, backend=backend, seed=1)
    resize_kind = MixKind.RESIZE_NEAREST if interpolation == "nearest" else MixKind.RESIZE
    for batch in (2, 7, 12):
        images = make_images(layout, batch, 3, 10, 13, dtype, generator)
        unmixed = images.clone()
        labels = torch.randint(0, NUM_CLASSES, (batch,), generator=generator)
        out, targets = mix(images, labels)
        params = mix.last_params
        assert out is images
        assert torch.equal(images, reference_mix_(unmixed.clone(), params)), "a replay of the params"
        assert torch.equal(targets, fastmix.mix_targets(labels, params, NUM_CLASSES, smoothing=0.1))
        masked = params.kind == int(MixKind.MASK)
        if masked.any():
            kept = 1.0 - params.pixel_masks().double().mean(dim=(1, 2))
            assert torch.equal(params.lam[masked], kept[masked].float()), "lam: the fraction of own pixels"
            assert bool((params.method[masked] == int(MixMethod.FMIX)).all())
        resized = params.method == int(MixMethod.RESIZEMIX)
        assert torch.equal(resized, params.kind == int(resize_kind)), "the policy's interpolation is the kind"
        if resized.any():
            box = params.box[resized].double()
            pasted = (box[:, 1] - box[:, 0]) * (box[:, 3] - box[:, 2]) / (10 * 13)
            assert torch.equal(params.lam[resized], (1.0 - pasted).float()), "lam: the fraction left uncovered"


@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_dense_labels_are_mixed_by_the_pixel_fractions(backend):
    generator = torch.Generator().manual_seed(2)
    mix = fastmix.Mixup(mixup_alpha=0.0, fmix_alpha=1.0, mode="elem", num_classes=NUM_CLASSES, label_smoothing=0.0,
                        backend=backend, seed=2)
    images = random_values((6, 3, 9, 9), torch.float32, generator)
    labels = torch.rand(6, NUM_CLASSES, generator=generator)
    _, targets = mix(images, labels)
    params = mix.last_params
    lam = params.lam.view(-1, 1)
    assert torch.equal(targets, (labels * lam) + (labels[params.partner] * (1 - lam)))


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("mask_dtype", [torch.uint8, torch.int64])
@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_segmentation_masks_take_the_partners_labels_exactly_where_the_pixels_came_from(backend, mask_dtype, mode):
    generator = torch.Generator().manual_seed(3)
    mix = fastmix.Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, fmix_alpha=1.0, classmix=True, resizemix_alpha=1.0,
                        mode=mode, num_classes=NUM_CLASSES, backend=backend, seed=3)
    for _ in range(3):
        images = random_values((8, 3, 12, 10), torch.uint8, generator)
        unmixed = images.clone()
        masks = segmentation_masks(8, 12, 10, generator, mask_dtype)
        original = masks.clone()
        _, targets, mask_targets = mix(images, torch.randint(0, NUM_CLASSES, (8,), generator=generator), masks=masks)
        params = mix.last_params
        assert torch.equal(images, reference_mix_(unmixed, params))
        assert torch.equal(mask_targets.mask_a, expected_masks(original, params))
        blend = params.kind == int(MixKind.BLEND)
        assert torch.equal(mask_targets.lam, torch.where(blend, params.lam, torch.ones_like(params.lam)))
        assert torch.equal(mask_targets.mask_b[blend], original[params.partner[blend]])
        classmix = params.method == int(MixMethod.CLASSMIX) if params.method is not None else torch.zeros(8, dtype=torch.bool)
        for i in torch.nonzero(classmix).view(-1).tolist():  # whole classes of the partner were taken
            theirs = original[params.partner[i]]
            taken = params.pixel_masks()[i].bool()
            classes = theirs[taken].unique()
            assert torch.equal(taken, torch.isin(theirs, classes)) and not bool((classes == IGNORE).any())


def test_classmix_without_masks_is_refused_by_name_before_anything_is_written():
    mix = fastmix.Mixup(mixup_alpha=0.0, classmix=True, num_classes=NUM_CLASSES)
    images = torch.zeros(4, 3, 8, 8)
    before = images.clone()
    with pytest.raises(ValueError, match=r"^masks: ClassMix \(classmix=True\) needs the batch's segmentation masks"):
        mix(images, torch.zeros(4, dtype=torch.int64))
    assert torch.equal(images, before)


def test_fmix_on_images_without_h_and_w_is_refused_by_name():
    mix = fastmix.Mixup(mixup_alpha=0.0, fmix_alpha=1.0, num_classes=NUM_CLASSES)
    with pytest.raises(ValueError, match=r"^images: expected shape \(B, C, H, W\) \(CutMix, FMix, ClassMix or ResizeMix"):
        mix(torch.zeros(4, 12), torch.zeros(4, dtype=torch.int64))


# -- the collate -----------------------------------------------------------------------------------


class Segmentation(Dataset):
    """(H, W, 3) uint8 images (a decoded image's layout), their (H, W) masks, a label, the index."""

    def __init__(self, n, height=12, width=10):
        generator = torch.Generator().manual_seed(4)
        self.images = random_values((n, height, width, 3), torch.uint8, generator)
        self.masks = segmentation_masks(n, height, width, generator, torch.uint8)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return {"image": self.images[i].numpy(), "mask": self.masks[i], "label": i % NUM_CLASSES, "index": i}


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("dtype, channels_last", [(torch.uint8, False), (torch.float32, True)])
def test_the_collate_mixes_images_targets_and_masks_as_its_params_say(backend, dtype, channels_last):
    dataset = Segmentation(48)
    mix = fastmix.Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, fmix_alpha=1.0, classmix=True, resizemix_alpha=1.0,
                        mode="elem", num_classes=NUM_CLASSES, label_smoothing=0.0, backend=backend, seed=5)
    collate = fastmix.MixupCollate(mix, dtype=dtype, channels_last=channels_last, masks=True, return_params=True)
    loader = DataLoader(dataset, batch_size=8, num_workers=1, collate_fn=collate)
    methods = set()
    for batch in loader:
        params, index = batch["mix_params"], batch["index"]
        scale, bias = collate.affine(3, True)  # a float32 batch: the uint8 values scaled to [0, 1]
        expected = reference_mix_into(torch.empty(len(index), 3, 12, 10, dtype=dtype), dataset.images[index], params,
                                      scale, bias, True)
        assert torch.equal(batch["image"], expected)
        assert batch["image"].is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        assert torch.equal(batch["mask"].mask_a, expected_masks(dataset.masks[index], params))
        assert torch.equal(batch["label"], fastmix.mix_targets(index % NUM_CLASSES, params, NUM_CLASSES, 0.0))
        methods |= set(params.method.tolist())
    assert {int(MixMethod.FMIX), int(MixMethod.CLASSMIX), int(MixMethod.RESIZEMIX)} <= methods


def test_the_collate_refuses_classmix_without_masks_by_name():
    collate = fastmix.MixupCollate(fastmix.Mixup(mixup_alpha=0.0, classmix=True, num_classes=NUM_CLASSES))
    with pytest.raises(ValueError, match=r"^masks: ClassMix \(classmix=True\) needs segmentation samples"):
        collate([(np.zeros((8, 8, 3), dtype=np.uint8), 0) for _ in range(4)])
