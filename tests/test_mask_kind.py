"""MixKind.MASK (FMix, ClassMix): a mixed MASK sample takes its partner's pixels wherever its plane
of ``pixel_mask`` is nonzero, on every channel and frame. Every backend gives the torch reference's
result bit for bit, in place (every dtype and layout, any partner map, one plane expanded over the
batch or a plane per sample, chunks crossed, 1 and 2 threads) and out of place (mix_into_,
collate_mix_), and refuses a bad pixel_mask by name before writing anything."""
import pytest
import torch

import fastmix
from fastmix import MixKind, MixParams
from fastmix.backends import reference

from .helpers import DTYPES, EVERY_BACKEND, LAYOUTS, make_images, op, random_params, random_values, reference_mix_

SPATIAL_LAYOUTS = [layout for layout in LAYOUTS if layout != "flat"]


def with_masks(batch, height, width, generator, expanded=None):
    """random_params with MASK samples, and (``expanded`` True/False) the planes forced to one
    plane expanded over the batch or a plane per sample."""
    params = random_params(batch, height, width, generator, allow_mask=True)
    if expanded is None:
        return params
    plane = (torch.rand(height, width, generator=generator) < 0.5).to(torch.uint8)
    if expanded:
        pixel_mask = plane.expand(batch, height, width)
    else:
        pixel_mask = (torch.rand(batch, height, width, generator=generator) < 0.5).to(torch.uint8)
    return MixParams(params.partner, params.lam, params.kind, params.box, pixel_mask)


def test_the_reference_takes_the_partners_pixels_where_the_mask_is_set():
    images = torch.arange(2 * 2 * 2 * 3, dtype=torch.float32).view(2, 2, 2, 3)
    pixel_mask = torch.tensor([[[1, 0, 0], [0, 0, 1]], [[0, 0, 0], [0, 0, 0]]], dtype=torch.uint8)
    params = MixParams(torch.tensor([1, 0]), torch.tensor([4 / 6, 1.0]), torch.full((2,), int(MixKind.MASK), dtype=torch.uint8),
                       torch.zeros(2, 4, dtype=torch.int64), pixel_mask)
    expected = images.clone()
    expected[0, :, 0, 0] = images[1, :, 0, 0]
    expected[0, :, 1, 2] = images[1, :, 1, 2]
    reference_mix_(images, params)
    assert torch.equal(images, expected)


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", SPATIAL_LAYOUTS)
def test_mix_matches_the_reference_on_every_dtype_and_layout(backend, dtype, layout):
    generator = torch.Generator().manual_seed(hash((str(dtype), layout)) % 2**31)
    for trial, (batch, height, width) in enumerate([(7, 5, 9), (2, 3, 3), (13, 8, 17), (1, 4, 4), (33, 6, 7)]):
        images = make_images(layout, batch, 3, height, width, dtype, generator)
        params = with_masks(batch, height, width, generator, expanded=[None, True, False][trial % 3])
        expected = reference_mix_(images.clone(), params)
        pointer = images.data_ptr()
        out = fastmix.mix_(images, params, backend=backend)
        assert out is images and images.data_ptr() == pointer
        assert torch.equal(images, expected), f"trial {trial}"


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(6, 3, 40, 50), (5, 1, 3, 9000), (7, 2, 2, 64, 70), (64, 3, 16, 16)],
                         ids=["chunks of whole rows", "rows longer than a chunk", "video, odd batch", "many pairs"])
def test_mix_matches_the_reference_across_chunks_and_threads(backend, threads, shape):
    generator = torch.Generator().manual_seed(sum(shape))
    torch.set_num_threads(threads)
    for trial in range(4):
        images = random_values(shape, torch.uint8 if trial < 2 else torch.float32, generator)
        if trial % 2 and len(shape) == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        batch, height, width = shape[0], shape[-2], shape[-1]
        params = with_masks(batch, height, width, generator, expanded=trial % 2 == 0)
        if trial == 3:  # a flip: every sample a swapped pair, every pair masked on both sides
            partner = torch.arange(batch).flip(0)
            params = MixParams(partner, params.lam, torch.full((batch,), int(MixKind.MASK), dtype=torch.uint8),
                               params.box, params.pixel_mask)
        expected = reference_mix_(images.clone(), params)
        fastmix.mix_(images, params, backend=backend)
        assert torch.equal(images, expected), f"trial {trial}"


@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_a_swapped_pair_of_a_mask_and_each_other_kind(backend):
    """A swapped pair where one side masks and the other blends, pastes, masks or keeps."""
    generator = torch.Generator().manual_seed(7)
    for other in MixKind:
        for layout in ["contiguous", "channels_last", "sliced"]:
            images = make_images(layout, 2, 3, 12, 20, torch.uint8, generator)
            pixel_mask = (torch.rand(2, 12, 20, generator=generator) < 0.4).to(torch.uint8)
            params = MixParams(torch.tensor([1, 0]), torch.tensor([0.3, 0.6]),
                               torch.tensor([int(MixKind.MASK), int(other)], dtype=torch.uint8),
                               torch.tensor([[0, 0, 0, 0], [2, 9, 3, 15]]), pixel_mask)
            expected = reference_mix_(images.clone(), params)
            fastmix.mix_(images, params, backend=backend)
            assert torch.equal(images, expected), (other.name, layout)


def mix_into_case(in_dtype, out_dtype, hwc, normalize, channels_last, generator, batch=9, channels=3, height=11, width=14):
    shape = (batch, height, width, channels) if hwc else (batch, channels, height, width)
    images = random_values(shape, in_dtype, generator)
    if in_dtype == torch.float32:
        images = images * 100
    params = with_masks(batch, height, width, generator)
    scale = torch.rand(channels, generator=generator) + 0.5 if normalize else torch.empty(0)
    bias = torch.rand(channels, generator=generator) - 0.5 if normalize else torch.empty(0)
    out = torch.empty(batch, channels, height, width, dtype=out_dtype)
    if channels_last:
        out = out.contiguous(memory_format=torch.channels_last)
    return images, params, scale, bias, out


INTO_CASES = [(torch.uint8, torch.uint8, False), (torch.uint8, torch.float32, True), (torch.uint8, torch.bfloat16, True),
              (torch.float32, torch.float32, False), (torch.float32, torch.float16, True)]


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("in_dtype,out_dtype,normalize", INTO_CASES)
@pytest.mark.parametrize("hwc", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_mix_into_and_collate_match_the_reference(backend, in_dtype, out_dtype, normalize, hwc, channels_last):
    generator = torch.Generator().manual_seed(hash((str(in_dtype), str(out_dtype), hwc, channels_last)) % 2**31)
    ops = op(backend)
    for trial in range(3):
        images, params, scale, bias, out = mix_into_case(in_dtype, out_dtype, hwc, normalize, channels_last, generator)
        expected = torch.empty_like(out)
        reference.mix_into_(expected, images, *params.as_tuple(), scale, bias, hwc, pixel_mask=params.pixel_mask)
        ops.mix_into_(out, images, *params.as_tuple(), scale, bias, hwc, pixel_mask=params.pixel_mask)
        assert torch.equal(out, expected), f"mix_into_, trial {trial}"
        collated = torch.empty_like(out)
        ops.collate_mix_(collated, list(images.unbind(0)), *params.as_tuple(), scale, bias, hwc,
                         pixel_mask=params.pixel_mask)
        assert torch.equal(collated, expected), f"collate_mix_, trial {trial}"


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("out_dtype,normalize", [(torch.uint8, False), (torch.float32, False), (torch.float32, True),
                                                 (torch.bfloat16, True)])
def test_the_collate_of_decoded_images_masks_as_the_reference(backend, out_dtype, normalize):
    """uint8 HWC samples of 3 channels into planes, the DataLoader's common case: the cpp collate
    selects, normalises and de-interleaves a masked row in one loop; wide rows (every vector width
    and tail), each sample its own mask, as the reference."""
    generator = torch.Generator().manual_seed(7)
    batch, height, width = 6, 9, 224
    images = random_values((batch, height, width, 3), torch.uint8, generator)
    drawn = with_masks(batch, height, width, generator, expanded=False)
    params = MixParams(drawn.partner, drawn.lam, torch.full((batch,), int(MixKind.MASK), dtype=torch.uint8), drawn.box,
                       drawn.pixel_mask)
    scale = torch.rand(3, generator=generator) + 0.5 if normalize else torch.empty(0)
    bias = torch.rand(3, generator=generator) - 0.5 if normalize else torch.empty(0)
    expected = torch.empty(batch, 3, height, width, dtype=out_dtype)
    reference.mix_into_(expected, images, *params.as_tuple(), scale, bias, True, pixel_mask=params.pixel_mask)
    collated = torch.empty_like(expected)
    op(backend).collate_mix_(collated, list(images.unbind(0)), *params.as_tuple(), scale, bias, True,
                             pixel_mask=params.pixel_mask)
    assert torch.equal(collated, expected)


def good_mask_call(batch=4, height=5, width=6):
    images = torch.randint(0, 256, (batch, 3, height, width), dtype=torch.uint8)
    params = MixParams(torch.tensor([1, 0, 3, 2]), torch.full((batch,), 0.5), torch.full((batch,), int(MixKind.MASK), dtype=torch.uint8),
                       torch.zeros(batch, 4, dtype=torch.int64), torch.ones(batch, height, width, dtype=torch.uint8))
    return images, params


BAD_PIXEL_MASKS = [
    (None, ValueError, "pixel_mask: expected (B, H, W) uint8 masks, as kind[0] is 3 (mask), got None"),
    (torch.ones(4, 5, 6, dtype=torch.bool), TypeError, "pixel_mask: expected dtype uint8, got bool"),
    (torch.ones(4, 5, 7, dtype=torch.uint8), ValueError, "pixel_mask: expected shape (4, 5, 6) ((B, H, W) of images), got (4, 5, 7)"),
    (torch.ones(4, 30, dtype=torch.uint8), ValueError, "pixel_mask: expected shape (4, 5, 6) ((B, H, W) of images), got (4, 30)"),
    (torch.ones(4, 6, 5, dtype=torch.uint8).transpose(1, 2), ValueError,
     "pixel_mask: expected each (H, W) plane dense (strides (6, 1)), got strides (30, 1, 5)"),
    (torch.ones(4, 5, 6, dtype=torch.uint8, device="meta"), ValueError, "pixel_mask: expected a tensor on the images' device cpu"),
]


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("pixel_mask,error,message", BAD_PIXEL_MASKS, ids=[m for _, _, m in BAD_PIXEL_MASKS])
def test_a_bad_pixel_mask_is_refused_by_name_before_anything_is_written(backend, pixel_mask, error, message):
    images, params = good_mask_call()
    before = images.clone()
    ops = op(backend)
    with pytest.raises(error) as refused:
        ops.mix_(images, *params.as_tuple(), pixel_mask=pixel_mask)
    assert message in str(refused.value)
    assert torch.equal(images, before)
    out = torch.zeros(4, 3, 5, 6, dtype=torch.uint8)
    with pytest.raises(error) as refused:
        ops.mix_into_(out, images, *params.as_tuple(), torch.empty(0), torch.empty(0), False, pixel_mask=pixel_mask)
    assert message.replace("of images", "of out").replace("the images' device", "out's device") in str(refused.value)
    assert not out.any()


@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_a_mask_kind_on_images_without_height_and_width_is_refused(backend):
    images = torch.rand(2, 12)
    params = MixParams(torch.tensor([1, 0]), torch.full((2,), 0.5), torch.tensor([3, 0], dtype=torch.uint8), torch.zeros(2, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"kind\[0\]: mask \(FMix, ClassMix\) needs images of shape \(B, \.\.\., H, W\)"):
        op(backend).mix_(images, *params.as_tuple())


@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_kinds_above_mask_are_refused(backend):
    images, params = good_mask_call()
    kind = params.kind.clone()
    kind[2] = 6
    with pytest.raises(ValueError, match=r"kind\[2\]: expected 0 \(none\), 1 \(blend\), 2 \(paste\), 3 \(mask\), 4 \(resize\) or 5 \(resize nearest\), got 6"):
        op(backend).mix_(images, params.partner, params.lam, kind, params.box, pixel_mask=params.pixel_mask)
