"""Segmentation masks: bad masks given to Mixup(...)(images, labels, masks=...) or to MixupCollate
(shape, dtype, class values, device, layout, sparse, inference tensors) are refused by name before
anything is written or drawn, on every backend, leaving the images and masks as they were."""
import numpy as np
import pytest
import torch

import fastmix

from .helpers import COMPILED_BACKENDS

BACKENDS = COMPILED_BACKENDS + ["torch"]


def inference_copy(masks):
    with torch.inference_mode():
        return masks.clone()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad, error, message", [
    (lambda m: m[:, :-1], ValueError, r"masks: expected shape \(4, 6, 7\)"),
    (lambda m: m.float(), TypeError, "masks: expected an integer class map"),
    (lambda m: m.bool(), TypeError, "masks: expected an integer class map"),
    (lambda m: m.index_fill(1, torch.tensor([2]), 9), ValueError, r"masks\[0, 2, 0\]: expected a class in \[0, 5\)"),
    (lambda m: m.to("meta"), ValueError, "masks: expected a tensor on the images' device"),
    (lambda m: m.transpose(1, 2).contiguous().transpose(1, 2), ValueError, "masks: expected a tensor whose last dim"),
    (lambda m: m.to_sparse(), TypeError, "masks: expected a strided"),
    (lambda m: inference_copy(m), ValueError, "masks: expected a tensor that may be written in place here"),
])
def test_bad_masks_are_refused_before_anything_is_written(backend, bad, error, message):
    mix = fastmix.Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, num_classes=5, seed=0, backend=backend)
    images = torch.rand(4, 3, 6, 7)
    masks = bad(torch.randint(0, 5, (4, 6, 7), dtype=torch.int32))
    before_images = images.clone()
    before_masks = masks.to_dense().clone() if masks.device.type == "cpu" else None
    with pytest.raises(error, match=message):
        mix(images, torch.arange(4), masks=masks)
    assert torch.equal(images, before_images) and mix.last_params is None
    if before_masks is not None:
        assert torch.equal(masks.to_dense(), before_masks)


def test_bad_collate_masks_are_refused_by_sample():
    collate = fastmix.MixupCollate(fastmix.Mixup(num_classes=5, seed=0), masks=True)
    image = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match=r"samples\[1\]: expected a mask of shape \(4, 4\)"):
        collate([(image, np.zeros((4, 4), np.uint8)), (image, np.zeros((4, 5), np.uint8))])
    with pytest.raises(TypeError, match=r"samples\[0\]: expected a mask of dtype"):
        collate([(image, torch.zeros(4, 4)), (image, torch.zeros(4, 4))])
    with pytest.raises(ValueError, match=r"samples\[1\]: expected a tensor on the CPU"):
        collate([(image, torch.zeros(4, 4, dtype=torch.uint8)), (image, torch.zeros(4, 4, dtype=torch.uint8, device="meta"))])
    # (the words of Mixup's masks check: one check of mask values for every entry point)
    with pytest.raises(ValueError, match=r"samples\[1\]\[0, 0\]: expected a class in \[0, 5\) or ignore_index=255, got 7"):
        collate([(image, np.zeros((4, 4), np.uint8)), (image, np.full((4, 4), 7, np.uint8))])
    assert collate.mixup.last_params is None, "nothing drawn"
