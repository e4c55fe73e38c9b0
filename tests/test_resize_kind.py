"""MixKind.RESIZE and RESIZE_NEAREST (ResizeMix): a mixed RESIZE sample takes its whole partner,
resized to its box (F.interpolate's rule, align_corners=False, no antialias), inside the box. Every
backend gives the torch reference's result bit for bit, in place (every dtype and spatial layout,
any partner map: trees, swapped pairs, longer cycles; mixed with the other kinds; 1 and 2 threads)
and out of place (mix_into_, collate_mix_); segmentation masks take the partner's labels resized
by nearest neighbour; the CUDA device plan of a batch with a resize is the copy plan (the CUDA
kernels themselves: tests/test_cuda_compile.py's host emulation and tests/test_cuda.py)."""
import pytest
import torch
import torch.nn.functional as F

from fastmix import MixKind
from fastmix.backends import checks, reference
from fastmix.backends.resize_taps import linear_taps, nearest_taps, resized
from fastmix.masks import as_pixel_bytes, spatial_only

from .helpers import DTYPES, EVERY_BACKEND, make_images, op, random_values

SPATIAL_LAYOUTS = ["contiguous", "channels_last", "video", "sliced", "batch_inner", "hwc_permuted"]
PARTNERS = {"flip": [1, 0, 3, 2, 5, 4, 6], "roll": [1, 2, 3, 4, 5, 6, 0], "tree": [2, 2, 0, 1, 0, 3, 6]}


def resize_params(batch, height, width, generator, kinds):
    """partner, lam, kind, box with random boxes (empty ones included) and the given kinds."""
    box = torch.zeros(batch, 4, dtype=torch.int64)
    for i in range(batch):
        y0 = int(torch.randint(0, height + 1, (), generator=generator))
        x0 = int(torch.randint(0, width + 1, (), generator=generator))
        y1 = int(torch.randint(y0, height + 1, (), generator=generator))
        x1 = int(torch.randint(x0, width + 1, (), generator=generator))
        box[i] = torch.tensor([y0, y1, x0, x1])
    return torch.rand(batch, generator=generator), kinds, box


def test_the_rule_is_f_interpolates():
    """Nearest equals F.interpolate exactly; bilinear within a few units in the last place (torch
    rounds the source coordinate in another order), and exactly at sizes whose taps are exact."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 224, 224, generator=generator)
    for size in [(150, 150), (100, 187), (67, 201), (200, 112), (1, 5), (224, 224), (112, 224)]:
        assert torch.equal(resized(x, *size, nearest=True), F.interpolate(x, size=size, mode="nearest"))
        theirs = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        assert (resized(x, *size, nearest=False) - theirs).abs().max() <= 1e-4
    assert torch.equal(resized(x, 112, 224, False), F.interpolate(x, size=(112, 224), mode="bilinear"))
    lo, hi, w_lo, w_hi = linear_taps(3, 6)
    assert lo.tolist() == [0, 2, 4] and hi.tolist() == [1, 3, 5] and w_lo.tolist() == [0.5] * 3 == w_hi.tolist()
    assert nearest_taps(4, 2).tolist() == [0, 0, 1, 1] and nearest_taps(2, 5).tolist() == [0, 2]


def test_the_reference_pastes_the_resized_partner_in_the_box_only():
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(2, 3, 8, 10, generator=generator)
    partner = torch.tensor([1, 0])
    kind = torch.tensor([int(MixKind.RESIZE), int(MixKind.NONE)], dtype=torch.uint8)
    box = torch.tensor([[2, 6, 1, 4], [0, 0, 0, 0]])
    out = images.clone()
    reference.mix_(out, partner, torch.tensor([0.85, 1.0]), kind, box)
    expected = images.clone()
    expected[0, :, 2:6, 1:4] = F.interpolate(images[1:2], size=(4, 3), mode="bilinear")[0]
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    inside = torch.zeros(8, 10, dtype=torch.bool)
    inside[2:6, 1:4] = True
    assert torch.equal(out[0][:, ~inside], images[0][:, ~inside]) and torch.equal(out[1], images[1])


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", SPATIAL_LAYOUTS)
@pytest.mark.parametrize("partners", sorted(PARTNERS))
def test_mix_in_place_equals_the_reference(backend, dtype, layout, partners):
    generator = torch.Generator().manual_seed(hash((str(dtype), layout, partners)) % 2**31)
    batch = len(PARTNERS[partners])
    partner = torch.tensor(PARTNERS[partners])
    for trial in range(4):
        height, width = [(9, 13), (1, 7), (6, 1), (16, 11)][trial]
        if trial == 0:
            kinds = torch.full((batch,), int(MixKind.RESIZE), dtype=torch.uint8)
        elif trial == 1:
            kinds = torch.full((batch,), int(MixKind.RESIZE_NEAREST), dtype=torch.uint8)
        else:  # with the other kinds (no mask: its planes are test_mask_kind's)
            kinds = torch.tensor([0, 1, 2, 4, 5], dtype=torch.uint8)[torch.randint(0, 5, (batch,), generator=generator)]
        lam, kind, box = resize_params(batch, height, width, generator, kinds)
        images = make_images(layout, batch, 3, height, width, dtype, generator)
        expected = images.clone()
        reference.mix_(expected, partner, lam, kind, box)
        got = images.clone()
        op(backend).mix_(got, partner, lam, kind, box)
        assert torch.equal(got, expected), (trial, kinds.tolist())


@pytest.mark.parametrize("backend", EVERY_BACKEND[:2])
@pytest.mark.parametrize("threads", [1, 2])
def test_big_batches_split_over_threads_equal_the_reference(backend, threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        generator = torch.Generator().manual_seed(threads)
        batch = 16
        for partner in [torch.arange(batch).view(-1, 2).flip(1).reshape(-1), torch.roll(torch.arange(batch), 1)]:
            kinds = torch.full((batch,), int(MixKind.RESIZE), dtype=torch.uint8)
            lam, kind, box = resize_params(batch, 96, 80, generator, kinds)
            images = random_values((batch, 3, 96, 80), torch.float32, generator)
            expected = images.clone()
            reference.mix_(expected, partner, lam, kind, box)
            op(backend).mix_(images, partner, lam, kind, box)
            assert torch.equal(images, expected)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("backend", EVERY_BACKEND[:2])
@pytest.mark.parametrize("kind", [MixKind.RESIZE, MixKind.RESIZE_NEAREST])
@pytest.mark.parametrize("width", [16, 47, 224])
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_every_box_width_of_wide_rows_equals_the_reference(backend, kind, width, dtype):
    """The cpp float32 and uint8 rows take 16 box columns a step where their taps lie in 32 source
    pixels (scales below 2; with AVX2 8 columns in 16), in two or four windows at larger scales, the
    scalar loop where even those are too narrow, and a partial last step: box widths 1 to W, at the
    image's right edge and away from it, each as the reference."""
    generator = torch.Generator().manual_seed(width)
    batch, height = 2 * width, 5
    images = random_values((batch, 2, height, width), dtype, generator)
    partner = torch.arange(batch).view(-1, 2).flip(1).reshape(-1)
    starts = [(w, (w * 7) % (width - w + 1)) for w in range(1, width + 1)]  # each width away from the edge
    starts = [s for w, x0 in starts for s in ((w, x0), (w, width - w))]  # and at the right edge
    box = torch.tensor([[1, height, x0, x0 + w] for w, x0 in starts])
    lam, kinds = torch.rand(batch, generator=generator), torch.full((batch,), int(kind), dtype=torch.uint8)
    expected = images.clone()
    reference.mix_(expected, partner, lam, kinds, box)
    op(backend).mix_(images, partner, lam, kinds, box)
    assert torch.equal(images, expected)


@pytest.mark.parametrize("backend", EVERY_BACKEND[:2])
@pytest.mark.parametrize("out_dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("channels, width", [(3, 224), (3, 47), (4, 40), (19, 12)])
@pytest.mark.parametrize("kind", [MixKind.RESIZE, MixKind.RESIZE_NEAREST])
def test_every_box_width_of_wide_hwc_collate_rows_equals_the_reference(backend, out_dtype, channels, width, kind):
    """The cpp collate of uint8 HWC samples resizes a row's channels at once, 16 elements a step
    where their taps lie in 32 source bytes (64 with VBMI; with AVX2 8 in 16), or in two or four
    windows, the scalar loop elsewhere, a partial last step: box widths 1 to W, at the right edge
    and away from it, bilinear and nearest, into uint8 (rounded) and normalised float32, as the
    reference."""
    generator = torch.Generator().manual_seed(width + channels)
    batch, height = 2 * width, 6
    images = random_values((batch, height, width, channels), torch.uint8, generator)
    partner = torch.arange(batch).view(-1, 2).flip(1).reshape(-1)
    starts = [(w, (w * 7) % (width - w + 1)) for w in range(1, width + 1)]
    starts = [s for w, x0 in starts for s in ((w, x0), (w, width - w))]
    box = torch.tensor([[1, height, x0, x0 + w] for w, x0 in starts])
    lam, kind = torch.rand(batch, generator=generator), torch.full((batch,), int(kind), dtype=torch.uint8)
    normalize = out_dtype != torch.uint8
    scale = torch.rand(channels, generator=generator) if normalize else torch.empty(0)
    bias = torch.rand(channels, generator=generator) if normalize else torch.empty(0)
    expected = torch.empty(batch, channels, height, width, dtype=out_dtype)
    reference.mix_into_(expected, images, partner, lam, kind, box, scale, bias, True)
    collated = torch.empty_like(expected)
    op(backend).collate_mix_(collated, list(images.unbind(0)), partner, lam, kind, box, scale, bias, True)
    assert torch.equal(collated, expected)


@pytest.mark.parametrize("backend", EVERY_BACKEND[:2])
@pytest.mark.parametrize("kind", [MixKind.RESIZE, MixKind.RESIZE_NEAREST])
@pytest.mark.parametrize("hwc, channels", [(True, 3), (False, 1)])  # a row's channels at once; a plane's rows
def test_boxes_of_other_widths_reading_the_same_partner_rows_equal_the_reference(backend, kind, hwc, channels):
    """The cpp collate keeps a thread's width passes of the last partner rows it read for the next
    box row (consecutive box rows share source rows); a box of another width that reads the same
    rows of the same partner must compute its own. Every sample here resizes sample 0 into a
    one-row box, so every box reads its middle rows, each box of its own width, on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(int(kind) + 2 * channels)
        widths = [4, 6, 40, 17, 5, 33, 2, 39, 6]
        batch, height, width = len(widths) + 1, 8, 40
        shape = (batch, height, width, channels) if hwc else (batch, channels, height, width)
        images = random_values(shape, torch.uint8, generator)
        partner = torch.zeros(batch, dtype=torch.int64)
        kinds = torch.tensor([int(MixKind.NONE)] + [int(kind)] * len(widths), dtype=torch.uint8)
        box = torch.tensor([[0, 0, 0, 0]] + [[3, 4, width - w, width] for w in widths])
        lam = torch.rand(batch, generator=generator)
        expected = torch.empty(batch, channels, height, width, dtype=torch.uint8)
        reference.mix_into_(expected, images, partner, lam, kinds, box, torch.empty(0), torch.empty(0), hwc)
        collated = torch.empty_like(expected)
        op(backend).collate_mix_(collated, list(images.unbind(0)), partner, lam, kinds, box, torch.empty(0),
                                 torch.empty(0), hwc)
        assert torch.equal(collated, expected)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("backend", EVERY_BACKEND[:2])
@pytest.mark.parametrize("in_dtype,out_dtype", [(torch.uint8, torch.uint8), (torch.uint8, torch.float32),
                                                (torch.uint8, torch.bfloat16), (torch.float32, torch.float16)])
@pytest.mark.parametrize("hwc", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("channels", [3, 1])
def test_mix_into_and_collate_equal_the_reference(backend, in_dtype, out_dtype, hwc, channels_last, channels):
    generator = torch.Generator().manual_seed(channels + 2 * hwc + 4 * channels_last)
    batch, height, width = 7, 19, 29
    shape = (batch, height, width, channels) if hwc else (batch, channels, height, width)
    images = random_values(shape, in_dtype, generator) if in_dtype == torch.uint8 else torch.rand(shape, generator=generator) * 255
    partner = torch.tensor(PARTNERS["tree"])
    kinds = torch.tensor([4, 5, 4, 1, 5, 4, 0], dtype=torch.uint8)
    lam, kind, box = resize_params(batch, height, width, generator, kinds)
    normalize = out_dtype != torch.uint8
    scale = torch.rand(channels, generator=generator) if normalize else torch.empty(0)
    bias = torch.rand(channels, generator=generator) if normalize else torch.empty(0)
    expected = torch.empty(batch, channels, height, width, dtype=out_dtype)
    if channels_last:
        expected = expected.contiguous(memory_format=torch.channels_last)
    reference.mix_into_(expected, images, partner, lam, kind, box, scale, bias, hwc)
    into, collated = torch.empty_like(expected), torch.empty_like(expected)
    op(backend).mix_into_(into, images, partner, lam, kind, box, scale, bias, hwc)
    op(backend).collate_mix_(collated, list(images.unbind(0)), partner, lam, kind, box, scale, bias, hwc)
    assert torch.equal(into, expected) and torch.equal(collated, expected)


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64])
def test_masks_take_the_partners_labels_resized_by_nearest_neighbour(backend, dtype):
    generator = torch.Generator().manual_seed(5)
    masks = torch.randint(0, 21, (4, 12, 15), generator=generator).to(dtype)
    partner, kind = torch.tensor([1, 0, 3, 2]), torch.full((4,), int(MixKind.RESIZE), dtype=torch.uint8)
    box = torch.tensor([[1, 9, 2, 14], [0, 12, 0, 15], [3, 4, 5, 6], [0, 0, 0, 0]])
    expected = masks.clone()
    for i in range(3):
        y0, y1, x0, x1 = box[i].tolist()
        expected[i, y0:y1, x0:x1] = resized(masks[int(partner[i])], y1 - y0, x1 - x0, nearest=True)
    op(backend).mix_(as_pixel_bytes(masks), *spatial_only(partner, kind, box))
    assert torch.equal(masks, expected)


def test_the_cuda_plan_of_a_batch_with_a_resize_is_the_copy_plan():
    """A resize reads its partner's original at any position: on the GPU every sample is first
    copied to its own head slot (B groups of one kSaveHead), then every mixed sample is mixed from
    its partner's slot (B groups of one kApplyFromHead, empty where unmixed)."""
    partner, kind = torch.tensor([1, 0, 2]), torch.tensor([0, 5, 1], dtype=torch.uint8)
    args = (partner, torch.rand(3), kind, torch.zeros(3, 4, dtype=torch.int64))
    checks.check_device_plan_args(*args)
    header = torch.ops.fastmix.device_plan(*args)[:28].view(torch.int32).tolist()
    assert header[1:] == [3, 3, 3, 3, 6, 1], "batch, first and second groups, head slots, steps, paste"
    plain = torch.ops.fastmix.device_plan(partner, torch.rand(3), torch.tensor([0, 2, 1], dtype=torch.uint8),
                                          torch.zeros(3, 4, dtype=torch.int64))[:28].view(torch.int32).tolist()
    assert plain[1:] == [3, 1, 0, 0, 1, 1], "without a resize: the plan of pairs, one group, no scratch"


@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_a_resize_box_outside_the_image_is_refused_before_writing(backend):
    images = torch.rand(2, 3, 8, 8)
    before = images.clone()
    kind = torch.tensor([int(MixKind.RESIZE), 0], dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"^box\[0\]: expected \(y0, y1, x0, x1\) with 0 <= y0 <= y1 <= 8"):
        op(backend).mix_(images, torch.tensor([1, 0]), torch.ones(2), kind, torch.tensor([[0, 9, 0, 4], [0, 0, 0, 0]]))
    with pytest.raises(ValueError, match=r"^kind\[0\]: resize \(ResizeMix\) needs images of shape \(B, \.\.\., H, W\)"):
        op(backend).mix_(torch.rand(2, 5), torch.tensor([1, 0]), torch.ones(2), kind, torch.zeros(2, 4, dtype=torch.int64))
    assert torch.equal(images, before)
