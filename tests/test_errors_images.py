"""Images: what a call refuses before anything is sampled or written (dtype, shape, grad, elements
that share memory, sparse layouts, inference tensors outside inference mode), with a message that
names the images, leaving them as they were; and what it takes as any images (3-D images for Mixup,
empty batches, inference tensors inside inference mode, views with torch's negative bit).

Read each table as a specification: (what is wrong, the exception, how its message begins: the
argument's name, as a regex)."""
import math

import pytest
import torch

import fastmix
from fastmix import MixKind, MixParams

from .helpers import (B, C, CPP, CUTMIX_ON, CUTMIX_ONLY, EVERY_BACKEND, H, MIXUP_ONLY, NO_AFFINE, NUMBA, W, assert_call_refused,
                      good_params, op, requires_cpp, requires_numba, small_images, small_labels, valid_params)


# ---------------------------------------------------------------------------------------------
# Mixup(...)(images, labels): the images, checked before anything is sampled or written
# ---------------------------------------------------------------------------------------------

BAD_IMAGE_CALLS = [
    # (id, Mixup kwargs, images, labels, error, message fragment)
    ("images 1-D (Mixup)", MIXUP_ONLY, lambda: small_images((B,)), small_labels, ValueError, r"images: .*shape \(4,\)"),
    ("images 0-D", MIXUP_ONLY, lambda: torch.tensor(1.0), small_labels, ValueError, "images:"),
    ("images 3-D (CutMix)", CUTMIX_ON, lambda: small_images((B, H, W)), small_labels, ValueError, r"images: .*CutMix"),
    ("images 3-D (CutMix only)", CUTMIX_ONLY, lambda: small_images((B, H, W)), small_labels, ValueError, "images:"),
    ("images 2-D (CutMix)", CUTMIX_ON, lambda: small_images((B, 12)), small_labels, ValueError, "images:"),
    ("images bool", MIXUP_ONLY, lambda: small_images(dtype=torch.bool), small_labels, TypeError, "images: .*bool"),
    ("images int32", MIXUP_ONLY, lambda: small_images(dtype=torch.int32), small_labels, TypeError, "images: .*int32"),
    ("images complex64", MIXUP_ONLY, lambda: small_images(dtype=torch.complex64), small_labels, TypeError, "images:"),
    ("images int64", CUTMIX_ON, lambda: small_images(dtype=torch.int64), small_labels, TypeError, "images:"),
    ("images a list", MIXUP_ONLY, lambda: [[0.0] * 3] * B, small_labels, TypeError, "images:"),
    ("images need grad", MIXUP_ONLY, lambda: small_images().requires_grad_(), small_labels, ValueError, "images:"),
]


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize(
    "kwargs, images, labels, error, message", [case[1:] for case in BAD_IMAGE_CALLS], ids=[case[0] for case in BAD_IMAGE_CALLS]
)
def test_bad_call_is_refused_and_writes_nothing(mode, kwargs, images, labels, error, message):
    assert_call_refused(mode, kwargs, images, labels, error, message)


def test_three_dim_images_are_fine_for_mixup_only():
    mix = fastmix.Mixup(mixup_alpha=1.0, num_classes=C, seed=0)
    images = small_images((B, 5, 6))
    out, targets = mix(images, small_labels())
    assert out is images and targets.shape == (B, C)
    assert bool(mix.last_params.mixed().all())


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize("kwargs", [MIXUP_ONLY, CUTMIX_ON, CUTMIX_ONLY], ids=["mixup", "both", "cutmix"])
@pytest.mark.parametrize("dense", [False, True])
def test_empty_batch_returns_the_same_images_and_empty_targets(mode, kwargs, dense):
    mix = fastmix.Mixup(**kwargs, mode=mode, num_classes=C, seed=0)
    images = small_images((0, 3, H, W))
    labels = torch.empty(0, C) if dense else torch.empty(0, dtype=torch.int64)
    out, targets = mix(images, labels)
    assert out is images
    assert targets.shape == (0, C) and targets.dtype == torch.float32 and targets.device == images.device


def test_mix_of_an_empty_batch_returns_the_same_tensor():
    images = small_images((0, 3, H, W))
    assert fastmix.mix_(images, MixParams.identity(0)) is images


def test_cutmix_on_empty_images_is_refused_by_name():
    with pytest.raises(ValueError, match="^images: CutMix, FMix, ClassMix and ResizeMix need H >= 1 and W >= 1"):
        fastmix.Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, num_classes=10)(torch.rand(4, 3, 0, 5), torch.arange(4))


# ---------------------------------------------------------------------------------------------
# Elements that share memory (expanded, overlapping windows, any as_strided view): refused by
# name on every backend and by the raw ops; the rule flags every shared address and no plain view
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", [CPP, NUMBA, "torch"])
def test_images_sharing_memory_are_refused_by_name_on_every_backend(backend):
    images = torch.rand(1, 3, 8, 8).expand(4, 3, 8, 8)
    mix = fastmix.Mixup(num_classes=10, seed=0, backend=backend)
    with pytest.raises(ValueError, match="^images: .*share memory"):
        mix(images, torch.randint(0, 10, (4,)))
    assert mix.last_params is None
    with pytest.raises(ValueError, match="^images: .*share memory"):
        fastmix.mix_(images, fastmix.MixParams.identity(4), backend=backend)


def overlapping_windows():
    """Nine windows of 192 elements, 96 apart, over one buffer (what unfold(0, 192, 96) makes)."""
    return torch.rand(960, generator=torch.Generator().manual_seed(1)).unfold(0, 192, 96)


def flip_blend_params(batch):
    return MixParams(partner=torch.arange(batch).flip(0), lam=torch.full((batch,), 0.5),
                     kind=torch.full((batch,), int(MixKind.BLEND), dtype=torch.uint8),
                     box=torch.zeros(batch, 4, dtype=torch.int64))


@pytest.mark.parametrize("backend", [CPP, NUMBA, "torch"])
def test_overlapping_windows_are_refused_by_name_and_left_as_they_were(backend):
    images = overlapping_windows()
    before = images.clone()
    with pytest.raises(ValueError, match="^images: .*share memory.*unfold"):
        fastmix.Mixup(num_classes=10, seed=0, backend=backend)(images, torch.randint(0, 10, (9,)))
    with pytest.raises(ValueError, match="^images: .*share memory"):
        fastmix.mix_(images, fastmix.MixParams.identity(9), backend=backend)
    assert torch.equal(images, before)


@pytest.mark.parametrize("op", [pytest.param("cpp", marks=requires_cpp), pytest.param("numba", marks=requires_numba)])
def test_the_raw_ops_refuse_overlapping_windows_too(op):
    from fastmix.backends import numba as numba_backend

    images = overlapping_windows()
    before = images.clone()
    params = flip_blend_params(9)
    mix = torch.ops.fastmix.mix_ if op == "cpp" else numba_backend.mix_
    with pytest.raises(ValueError, match="^images: expected a tensor whose elements do not share memory"):
        mix(images, *params.as_tuple())
    assert torch.equal(images, before)


def random_view(generator):
    """A random view of a contiguous buffer of storage offsets (its values are its elements'
    offsets): slices with steps and permutes, then, two times in nine, an expand, an overlapping
    unfold or an arbitrary as_strided. Returns it and whether it is plain (slices and permutes only)."""
    def draw(low, high):
        return int(torch.randint(low, high, (), generator=generator))

    shape = [draw(1, 6) for _ in range(draw(2, 5))]
    x = torch.arange(math.prod(shape)).view(shape)
    for _ in range(2):
        d = draw(0, x.dim())
        x = x[(slice(None),) * d + (slice(draw(0, 2), None, draw(1, 4)),)]
        x = x.permute(*torch.randperm(x.dim(), generator=generator).tolist())
    kind = draw(0, 9)
    if kind == 0:
        return x.unsqueeze(0).expand(3, *x.shape), False
    if kind == 1 and x.size(-1) >= 2:
        return x.unfold(-1, 2, 1), False
    if kind == 2:
        return torch.arange(64).as_strided([draw(1, 4) for _ in range(3)], [draw(0, 6) for _ in range(3)]), False
    return x, True


def test_the_shared_memory_rule_catches_every_shared_address_and_refuses_no_plain_view():
    from fastmix.backends.checks import elements_may_share_memory

    generator = torch.Generator().manual_seed(7)
    caught = 0
    for _ in range(3000):
        offsets, plain = random_view(generator)
        shares = offsets.unique().numel() < offsets.numel()
        flagged = elements_may_share_memory(offsets)
        assert flagged or not shares, (offsets.shape, offsets.stride())
        assert not (plain and flagged), (offsets.shape, offsets.stride())
        caught += shares
    assert caught > 300


@requires_cpp
def test_the_compiled_op_refuses_exactly_what_python_refuses():
    from fastmix.backends.checks import elements_may_share_memory

    generator = torch.Generator().manual_seed(8)
    for _ in range(1000):
        offsets, _ = random_view(generator)
        if offsets.numel() == 0:
            continue
        images = torch.zeros(int(offsets.max()) + 1).as_strided(offsets.shape, offsets.stride())
        try:
            torch.ops.fastmix.mix_(images, *MixParams.identity(images.shape[0]).as_tuple())
            refused = False
        except ValueError as error:
            assert "share memory" in str(error)
            refused = True
        assert refused == elements_may_share_memory(images), (images.shape, images.stride())


# ---------------------------------------------------------------------------------------------
# Sparse images: refused as not strided on every backend, before anything is drawn
# ---------------------------------------------------------------------------------------------


def sparse_coo_images():
    return small_images().to_sparse()


def sparse_csr_images():
    return small_images((B, 12)).to_sparse_csr()


SPARSE_IMAGES = [("sparse_coo", sparse_coo_images), ("sparse_csr", sparse_csr_images)]


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("images", [f for _, f in SPARSE_IMAGES], ids=[name for name, _ in SPARSE_IMAGES])
def test_sparse_images_are_refused_as_not_strided_on_every_backend(backend, images):
    """They used to be refused as "elements share memory" (a sparse tensor's strides are zeros),
    or with torch's RuntimeError for CSR."""
    images = images()
    before = images.to_dense().clone()
    message = rf"^images: expected a strided \(dense\) tensor, got layout {images.layout}$"
    mix = fastmix.Mixup(**MIXUP_ONLY, num_classes=C, seed=0, backend=backend)
    stream = mix.generator.bit_generator.state
    with pytest.raises(TypeError, match=message):
        mix(images, small_labels())
    assert mix.last_params is None and mix.generator.bit_generator.state == stream
    with pytest.raises(TypeError, match=message):
        fastmix.mix_(images, valid_params(), backend=backend)
    with pytest.raises(TypeError, match=message):  # (the compiled ops: their sparse-key kernels)
        op(backend).mix_(images, *valid_params().as_tuple())
    assert torch.equal(images.to_dense(), before)


# ---------------------------------------------------------------------------------------------
# Inference tensors: written only inside torch.inference_mode() (torch's rule for every in-place
# op), refused by name outside it before anything is written; read anywhere
# ---------------------------------------------------------------------------------------------


def inference_images():
    with torch.inference_mode():
        return small_images()


INFERENCE_MESSAGE = r"images: expected a tensor that may be written in place here, got an inference tensor"


@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_inference_images_are_refused_outside_inference_mode_before_anything_is_written(backend):
    """torch's rule for every in-place op: an inference tensor is written only inside
    torch.inference_mode(). (The torch backend used to write the batch, then raise RuntimeError;
    cpp and numba wrote it without a word.)"""
    images, labels = inference_images(), small_labels()
    before = images.clone()
    mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=C, seed=0, backend=backend)
    with pytest.raises(ValueError, match="^" + INFERENCE_MESSAGE):
        mix(images, labels)
    assert mix.last_params is None, "nothing is sampled for a refused call"
    with pytest.raises(ValueError, match="^" + INFERENCE_MESSAGE):
        fastmix.mix_(images, valid_params(), backend=backend)
    with pytest.raises(ValueError, match="^" + INFERENCE_MESSAGE):
        op(backend).mix_(images, *valid_params().as_tuple())
    assert torch.equal(images, before)
    assert torch.equal(labels, small_labels())


@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_inference_images_are_mixed_inside_inference_mode_as_any_images_are(backend):
    images = inference_images()
    expected = small_images()
    fastmix.mix_(expected, valid_params(), backend="torch")
    with torch.inference_mode():
        fastmix.mix_(images, valid_params(), backend=backend)
        op(backend).mix_(images.clone(), *valid_params().as_tuple())
    assert torch.equal(images, expected)


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("op_name", ["mix_into_", "collate_mix_"])
def test_an_inference_out_is_refused_outside_inference_mode_and_inference_inputs_are_read(backend, op_name):
    """out is written, so the rule holds for it; images and samples are only read, so an inference
    tensor there is fine."""
    def call(out, images):
        inputs = images if op_name == "mix_into_" else list(images.unbind(0))
        getattr(op(backend), op_name)(out, inputs, *valid_params().as_tuple(), *NO_AFFINE, False)

    with torch.inference_mode():
        out = torch.zeros(B, 3, H, W)
    images = small_images()
    with pytest.raises(ValueError, match="^out: expected a tensor that may be written in place here, got an inference tensor"):
        call(out, images)
    assert torch.equal(out, torch.zeros(B, 3, H, W))
    assert torch.equal(images, small_images())
    with torch.inference_mode():
        call(out, images)
    written = torch.zeros(B, 3, H, W)
    call(written, inference_images())
    assert torch.equal(out, written) and not torch.equal(written, torch.zeros(B, 3, H, W))


# ---------------------------------------------------------------------------------------------
# Views with torch's negative bit: mixed as their values on every backend (the torch reference's
# result for the resolved tensor), read and written by mix_into_ and collate_mix_; a refused call
# writes nothing; the compiled ops have their own kernels for the bit
# ---------------------------------------------------------------------------------------------


def negative_views():
    """(id, a view with torch's negative bit set, its values): ``x.conj().imag`` is how a user gets
    one; torch._neg_view makes the same bit on any dtype and layout."""
    base = torch.randn(B, 3, H, W, generator=torch.Generator().manual_seed(3))
    z = torch.complex(base, base.flip(0))
    byte = (base * 40 + 128).clamp(0, 255).to(torch.uint8)
    return [
        ("conj().imag float32", lambda: z.clone().conj().imag),
        ("conj().imag float64", lambda: z.to(torch.complex128).conj().imag),
        ("float16", lambda: torch._neg_view(base.half())),
        ("bfloat16 channels_last", lambda: torch._neg_view(base.bfloat16().contiguous(memory_format=torch.channels_last))),
        ("uint8", lambda: torch._neg_view(byte.clone())),
    ]


NEGATIVE_IDS = [name for name, _ in negative_views()]


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("which", range(len(NEGATIVE_IDS)), ids=NEGATIVE_IDS)
def test_a_view_with_the_negative_bit_is_mixed_as_its_values_on_every_backend(backend, which):
    """cpp and torch mixed it (the dispatcher resolves the bit for the compiled ops); numba raised
    torch's RuntimeError (numba reads memory, which holds the negated values). Every backend now
    gives the values the torch reference gives for the resolved tensor."""
    make = negative_views()[which][1]
    images = make()
    assert images.is_neg()
    expected = images.resolve_neg().clone()
    fastmix.mix_(expected, valid_params(), backend="torch")
    fastmix.mix_(images, valid_params(), backend=backend)
    assert images.is_neg() and torch.equal(images.resolve_neg(), expected)
    raw = make()
    op(backend).mix_(raw, *valid_params().as_tuple())
    assert torch.equal(raw.resolve_neg(), expected)
    mix = fastmix.Mixup(**CUTMIX_ON, num_classes=C, seed=0, backend=backend)
    reference = fastmix.Mixup(**CUTMIX_ON, num_classes=C, seed=0, backend="torch")
    mixed, plain = make(), make().resolve_neg().clone()
    mix(mixed, small_labels())
    reference(plain, small_labels())
    assert torch.equal(mixed.resolve_neg(), plain)


@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_a_refused_call_on_a_view_with_the_negative_bit_writes_nothing(backend):
    images = torch.randn(B, 3, H, W, dtype=torch.complex64, generator=torch.Generator().manual_seed(4)).conj().imag
    before = images.resolve_neg().clone()
    fields = good_params()
    fields["lam"][1] = 1.5
    with pytest.raises(ValueError, match=r"^lam\[1\]: expected a value in \[0, 1\], got 1\.5"):
        op(backend).mix_(images, *MixParams(**fields).as_tuple())
    assert torch.equal(images.resolve_neg(), before)


@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_mix_into_and_collate_read_and_write_views_with_the_negative_bit(backend):
    images = torch._neg_view(torch.rand(B, 3, H, W, generator=torch.Generator().manual_seed(5)))
    scale, bias = torch.full((3,), 2.0), torch.full((3,), -1.0)
    expected = torch.empty(B, 3, H, W)
    op("torch").mix_into_(expected, images.resolve_neg(), *valid_params().as_tuple(), scale, bias, False)
    out = torch._neg_view(torch.zeros(B, 3, H, W))
    op(backend).mix_into_(out, images, *valid_params().as_tuple(), scale, bias, False)
    assert out.is_neg() and torch.equal(out, expected)
    out = torch._neg_view(torch.zeros(B, 3, H, W))
    op(backend).collate_mix_(out, list(images.unbind(0)), *valid_params().as_tuple(), scale, bias, False)
    assert torch.equal(out, expected)
    labels = torch._neg_view(torch.rand(B, C))
    assert torch.equal(op(backend).mix_targets(labels, *valid_params().as_tuple()[:3], C, 0.1),
                       op("torch").mix_targets(labels.resolve_neg(), *valid_params().as_tuple()[:3], C, 0.1))


@requires_cpp
def test_the_compiled_ops_have_their_own_negative_bit_kernels():
    """torch's fallback for the bit (MathBitsFallback.h) assumes a mutating op returns the tensor
    it wrote: fastmix's return nothing, and it corrupted the heap (an abort, "free(): corrupted
    unsorted chunks", a few calls in a hundred). backends/negative_bit.py registers kernels
    instead; many calls in one process show it."""
    for name in ("mix_", "mix_into_", "collate_mix_"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"fastmix::{name}", "Negative"), name
    params = valid_params().as_tuple()
    images = torch._neg_view(torch.rand(B, 3, H, W, generator=torch.Generator().manual_seed(6)))
    expected = torch.empty(B, 3, H, W)
    op("torch").mix_into_(expected, images.resolve_neg(), *params, *NO_AFFINE, False)
    for _ in range(200):
        out = torch._neg_view(torch.zeros(B, 3, H, W))
        torch.ops.fastmix.collate_mix_(out, list(images.unbind(0)), *params, *NO_AFFINE, False)
        torch.ops.fastmix.mix_into_(out, images, *params, *NO_AFFINE, False)
        assert torch.equal(out, expected)
