"""Labels and masks of every integer dtype: range checks computed in a type that holds both the
value and the bound, so a valid input is mixed as its int64 twin is (bit for bit) and a bad one is
refused by name before anything is written, on every backend and entry point. And memory overlap
decided on the bytes two tensors really cover (an empty tensor covers none).

tests/fuzz_cases.py draws such cases at random (case_label_dtype, case_mask_dtype); these are the
cases a user met, written out.
"""
import numpy as np
import pytest
import torch

import fastmix
from fastmix.backends import resolve_backend
from fastmix.backends.checks import bytes_overlap
from fastmix.transforms import CutMix, MixUp

from .helpers import COMPILED_BACKENDS

BACKENDS = COMPILED_BACKENDS + ["torch"]
INDEX_DTYPES = [torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.uint16, torch.uint32,
                torch.uint64]


def images_of(batch=4, size=8, seed=0):
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def mixup(backend, **knobs):
    return fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", seed=3, backend=backend, **knobs)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", INDEX_DTYPES, ids=str)
def test_class_indices_of_every_integer_dtype_are_mixed_as_int64_ones(backend, dtype):
    """int8 labels 0..127 with num_classes=200 were refused with "expected a class index in
    [0, 200) ..., got 0" (the bound wrapped into int8); uint16/32/64 failed inside torch."""
    labels = torch.tensor([0, 3, 127, 5], dtype=dtype)
    as_int64 = labels.to(torch.int64)
    images, twin = images_of(), images_of()
    _, targets = mixup(backend, num_classes=200)(images, labels)
    _, expected = mixup(backend, num_classes=200)(twin, as_int64)
    assert torch.equal(targets, expected) and torch.equal(images, twin)
    params = fastmix.Mixup(num_classes=200, seed=1).sample(4, 8, 8)
    assert torch.equal(fastmix.mix_targets(labels, params, 200, 0.1, backend=backend),
                       fastmix.mix_targets(as_int64, params, 200, 0.1, backend=backend))
    op = resolve_backend(backend, "cpu").mix_targets
    assert torch.equal(op(labels, *params.as_tuple()[:3], 200, 0.1), op(as_int64, *params.as_tuple()[:3], 200, 0.1))


@pytest.mark.parametrize("dtype", INDEX_DTYPES, ids=str)
def test_class_indices_of_every_integer_dtype_in_the_collates_and_transforms(dtype):
    labels = torch.tensor([0, 3, 127, 5], dtype=dtype)
    hwc = (images_of() * 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    for make in (lambda y: [(hwc[i], y[i]) for i in range(4)],
                 lambda y: [(hwc[i], y[i].numpy()) for i in range(4)] if y.dtype not in (torch.uint16, torch.uint32)
                 else [(hwc[i], y[i]) for i in range(4)]):
        got = fastmix.MixupCollate(fastmix.Mixup(num_classes=200, seed=0))(make(labels))
        expected = fastmix.MixupCollate(fastmix.Mixup(num_classes=200, seed=0))(make(labels.long()))
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    chw = [(hwc[i].transpose(2, 0, 1).copy(), labels[i]) for i in range(4)]
    got = fastmix.FastCollateMixup(num_classes=200, seed=0)(chw)
    expected = fastmix.FastCollateMixup(num_classes=200, seed=0)([(x, y.long()) for x, y in chw])
    assert all(torch.equal(a, b) for a, b in zip(got, expected))
    for transform in (MixUp, CutMix):
        got = transform(num_classes=200, seed=0)(images_of(), labels)
        expected = transform(num_classes=200, seed=0)(images_of(), labels.long())
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype, value, num_classes, shown", [
    (torch.int8, -1, 200, "-1"),
    (torch.uint8, 255, 200, "255"),
    (torch.uint16, 65535, 40000, "65535"),
    (torch.int32, 2**31 - 1, 2**31 - 1, "2147483647"),
    (torch.uint32, 2**32 - 1, 2**31 - 1, "4294967295"),
    (torch.uint64, 2**64 - 1, 10, "18446744073709551615"),
    (torch.uint64, 2**63, 10, "9223372036854775808"),
], ids=str)
def test_an_index_out_of_range_is_named_with_its_own_value_and_nothing_is_written(backend, dtype, value, num_classes,
                                                                                  shown):
    raw = [1, value - 2**64 if value >= 2**63 else value, 0, 1]
    labels = torch.tensor(raw, dtype=torch.int64).view(torch.uint64) if dtype == torch.uint64 else \
        torch.tensor(raw).to(dtype)
    images = images_of()
    before = images.clone()
    message = rf"labels\[1\]: expected a class index in \[0, {num_classes}\) \(num_classes={num_classes}\), got {shown}"
    with pytest.raises(ValueError, match=message):
        mixup(backend, num_classes=num_classes)(images, labels)
    assert torch.equal(images, before)
    params = fastmix.Mixup(num_classes=10, seed=1).sample(4, 8, 8)
    with pytest.raises(ValueError, match=message):
        resolve_backend(backend, "cpu").mix_targets(labels, *params.as_tuple()[:3], num_classes, 0.0)
    with pytest.raises(ValueError, match=message.replace("labels", "samples")):
        hwc = (images * 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
        fastmix.MixupCollate(fastmix.Mixup(num_classes=num_classes, seed=0, backend=backend))(
            [(hwc[i], labels[i]) for i in range(4)])


@pytest.mark.parametrize("backend", BACKENDS)
def test_int16_masks_with_more_classes_than_int16_holds_are_mixed_as_int64_masks(backend):
    """int16 masks 0..6, ignore_index=-100, num_classes=40000: refused with "got 1" (40000 wrapped)."""
    masks = torch.randint(0, 7, (4, 8, 8), dtype=torch.int16, generator=torch.Generator().manual_seed(0))
    masks[0, 0, 0] = -100
    images, twin = images_of(), images_of()
    wide = masks.long()  # (before masks are mixed in place)
    _, _, got = mixup(backend, num_classes=40000, ignore_index=-100)(images, None, masks=masks)
    _, _, expected = mixup(backend, num_classes=40000, ignore_index=-100)(twin, None, masks=wide)
    assert torch.equal(images, twin)
    assert all(torch.equal(a.long(), b.long()) for a, b in zip(got, expected))
    samples = [((images_of()[i] * 255).to(torch.uint8).permute(1, 2, 0).contiguous().numpy(), masks[i])
               for i in range(4)]
    collate = fastmix.MixupCollate(mixup(backend, num_classes=40000, ignore_index=-100), masks=True)
    collated = collate(samples)
    assert collated[1].mask_a.dtype == torch.int16 and int(collated[1].mask_a.max()) <= 6


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype, value, ignore_index", [
    (torch.uint8, 255, -1), (torch.uint8, 255, 511), (torch.int16, -1, 65535), (torch.int32, -1, 2**32 - 1),
], ids=str)
def test_an_ignore_index_the_masks_cannot_hold_ignores_nothing(backend, dtype, value, ignore_index):
    """uint8 masks all 255 with ignore_index=-1 were taken as ignored (-1 wrapped to 255), and the
    loss failed later (IndexError: Target 255 is out of bounds)."""
    masks = torch.full((4, 8, 8), value, dtype=dtype)
    before = masks.clone()
    message = rf"masks\[0, 0, 0\]: expected a class in \[0, 21\) or ignore_index={ignore_index}, got {value}"
    with pytest.raises(ValueError, match=message):
        mixup(backend, num_classes=21, ignore_index=ignore_index)(images_of(), None, masks=masks)
    assert torch.equal(masks, before)
    hwc = (images_of() * 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    with pytest.raises(ValueError, match=message.replace(r"masks\[0, 0, 0\]", r"samples\[0\]\[0, 0\]")):
        fastmix.MixupCollate(mixup(backend, num_classes=21, ignore_index=ignore_index), masks=True)(
            [(hwc[i], masks[i]) for i in range(4)])
    valid = torch.full((4, 8, 8), 3, dtype=dtype)  # classes only: accepted, nothing is ignored
    _, _, targets = mixup(backend, num_classes=21, ignore_index=ignore_index)(images_of(), None, masks=valid)
    assert torch.equal(targets.mask_a, valid)


@pytest.mark.parametrize("value", [2**63, 2**70, -2**63 - 1, -2**70])
def test_an_ignore_index_that_is_no_int64_is_refused_by_name(value):
    with pytest.raises(ValueError, match=rf"ignore_index: expected an int in \[-2\*\*63, 2\*\*63 - 1\] \(an int64\), "
                                         rf"got {value}"):
        fastmix.Mixup(num_classes=21, ignore_index=value)
    fastmix.Mixup(num_classes=21, ignore_index=2**63 - 1)
    fastmix.Mixup(num_classes=21, ignore_index=-2**63)


@pytest.mark.parametrize("dtype", [torch.int8, torch.uint16, torch.uint32, torch.uint64, torch.bool], ids=str)
def test_masks_of_other_dtypes_are_refused_by_name(dtype):
    masks = torch.zeros(4, 8, 8, dtype=dtype)
    with pytest.raises(TypeError, match="masks: expected an integer class map of dtype uint8, int16, int32 or int64"):
        fastmix.Mixup(num_classes=21)(images_of(), None, masks=masks)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_images_and_masks_share_no_memory(backend):
    """(4, 3, 0, 8) images beside (4, 0, 8) masks were refused: "masks: expected a tensor apart from
    the images, got one that shares their memory"."""
    images, masks = torch.zeros(4, 3, 0, 8), torch.zeros(4, 0, 8, dtype=torch.uint8)
    out_images, _, targets = fastmix.Mixup(num_classes=21, backend=backend)(images, None, masks=masks)
    assert out_images is images and targets.mask_a.shape == (4, 0, 8)


def test_overlap_is_decided_on_the_bytes_each_tensor_covers():
    x = torch.zeros(4, 6)
    assert not bytes_overlap(x[:, ::2], x[:, 1::2]), "interleaved columns: spans meet, bytes do not"
    assert bytes_overlap(x[:, ::2], x[:, 2::2]) and bytes_overlap(x, x[1:])
    assert not bytes_overlap(x[:0], x) and not bytes_overlap(x, x[:, :0]), "an empty tensor covers no byte"
    assert not bytes_overlap(x[:2], x[2:]), "adjacent rows"
    assert bytes_overlap(x.view(torch.uint8)[:, 1:2], x[:, :1]), "one byte of a float inside it"
    assert not bytes_overlap(x.view(torch.uint8)[:, 4:5], x[:, :1]), "the first byte of the next float"
    y = torch.zeros(2, 3, 4, 4).contiguous(memory_format=torch.channels_last)
    assert not bytes_overlap(y[:, :1], y[:, 1:2]), "two channels of an NHWC batch"
    assert not bytes_overlap(torch.zeros(3), torch.zeros(3)), "two storages"
    shared = np.zeros(64, np.uint8)  # two storages over one buffer: torch.from_numpy of overlapping numpy views
    assert bytes_overlap(torch.from_numpy(shared[:32]), torch.from_numpy(shared[8:40]))
    assert not bytes_overlap(torch.from_numpy(shared[:32]), torch.from_numpy(shared[32:]))
    assert not bytes_overlap(torch.empty(3, device="meta"), torch.empty(3, device="meta")), "meta tensors have no memory"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_sample_whose_span_straddles_out_is_read_not_refused(backend):
    """A sample with one channel before out and one after it: their spans meet, their bytes do not."""
    storage = torch.zeros(3, 48, dtype=torch.uint8)
    out = storage[1].view(1, 2, 4, 6)
    sample = storage.as_strided((2, 4, 6), (96, 6, 1), 0)  # channel 0 in row 0, channel 1 in row 2
    sample.copy_(torch.arange(48, dtype=torch.uint8).view(2, 4, 6) + 1)
    expected = sample.clone()
    identity, empty = fastmix.MixParams.identity(1), torch.empty(0)
    op = resolve_backend(backend, "cpu").collate_mix_
    op(out, [sample], *identity.as_tuple(), empty, empty, False)
    assert torch.equal(out[0], expected)
    with pytest.raises(ValueError, match=r"samples\[0\]: expected memory apart from out's"):
        op(out, [storage[1:3].reshape(-1)[24:72].view(2, 4, 6)], *identity.as_tuple(), empty, empty, False)


@pytest.mark.parametrize("value, valid", [(255, True), (99, True), (100, False), (127, False), (128, False),
                                          (200, False), (254, False)])
def test_uint8_masks_with_ignore_index_255_are_checked_in_one_pass_exactly(value, valid):
    """The one-pass check of uint8 masks with ignore_index 255 (the masks read as int8) and its edges."""
    masks = torch.randint(0, 100, (3, 6, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    masks[1, 2, 3] = value
    mix = fastmix.Mixup(num_classes=100, ignore_index=255, seed=0)
    if valid:
        mix(images_of(3, 6), None, masks=masks)
    else:
        with pytest.raises(ValueError, match=rf"masks\[1, 2, 3\]: expected a class in \[0, 100\) or "
                                             rf"ignore_index=255, got {value}"):
            mix(images_of(3, 6), None, masks=masks)
