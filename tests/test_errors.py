"""Bad input is refused before anything is written: every bad argument raises ValueError or TypeError
with a message that names it, and the caller's tensors come back exactly as they were.

Read each table as a specification: (what is wrong, the exception, how its message begins: the
argument's name, as a regex)."""
import math
import re

import numpy as np
import pytest
import torch

import fastmix
from fastmix import MixKind, MixParams

from .conftest import requires_cpp, requires_numba

NAN = float("nan")
B, C, H, W = 4, 10, 8, 8  # batch, classes, height, width of the inputs below
CPP = pytest.param("cpp", marks=requires_cpp)
NUMBA = pytest.param("numba", marks=requires_numba)


def make_images(shape=(B, 3, H, W), dtype=torch.float32):
    generator = torch.Generator().manual_seed(0)
    values = torch.rand(shape, generator=generator, dtype=torch.float64)
    if dtype == torch.bool:
        return values > 0.5
    if dtype in (torch.uint8, torch.int32):
        return (values * 255).to(dtype)
    return values.to(dtype)


def make_labels(values=(1, 3, 5, 7), dtype=torch.int64):
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


# ---------------------------------------------------------------------------------------------
# Mixup(...): the knobs, checked when the object is built
# ---------------------------------------------------------------------------------------------

BAD_KNOBS = [
    # mixup_alpha / cutmix_alpha: finite floats >= 0
    (dict(mixup_alpha=-0.1), ValueError, "mixup_alpha:"),
    (dict(mixup_alpha=NAN), ValueError, "mixup_alpha:"),
    (dict(mixup_alpha=math.inf), ValueError, "mixup_alpha:"),
    (dict(mixup_alpha="0.8"), TypeError, "mixup_alpha:"),
    (dict(mixup_alpha=None), TypeError, "mixup_alpha:"),
    (dict(cutmix_alpha=-1.0), ValueError, "cutmix_alpha:"),
    (dict(cutmix_alpha=NAN), ValueError, "cutmix_alpha:"),
    (dict(cutmix_alpha=True), TypeError, "cutmix_alpha:"),
    # nothing to mix with while mixing is on
    (dict(mixup_alpha=0.0, cutmix_alpha=0.0), ValueError, "mixup_alpha, cutmix_alpha:"),
    (dict(mixup_alpha=0.0, cutmix_alpha=0.0, prob=0.5), ValueError, "mixup_alpha, cutmix_alpha:"),
    # prob / switch_prob: probabilities
    (dict(prob=-0.1), ValueError, "prob:"),
    (dict(prob=1.1), ValueError, "prob:"),
    (dict(prob=NAN), ValueError, "prob:"),
    (dict(prob="1"), TypeError, "prob:"),
    (dict(switch_prob=-0.5), ValueError, "switch_prob:"),
    (dict(switch_prob=2.0), ValueError, "switch_prob:"),
    (dict(switch_prob=NAN), ValueError, "switch_prob:"),
    # cutmix_minmax: None or (min, max) with 0 <= min < max <= 1
    (dict(cutmix_minmax=(0.2,)), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax=(0.2, 0.5, 0.8)), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax=()), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax=(0.5, 0.5)), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax=(0.6, 0.2)), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax=(-0.1, 0.5)), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax=(0.2, 1.5)), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax=(NAN, 0.5)), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax=("0.2", "0.8")), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax=(None, 0.8)), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax="ab"), ValueError, "cutmix_minmax:"),
    (dict(cutmix_minmax=0.5), ValueError, "cutmix_minmax:"),
    # mode / backend: one of the names
    (dict(mode="sample"), ValueError, "mode:"),
    (dict(mode="Batch"), ValueError, "mode:"),
    (dict(mode=None), ValueError, "mode:"),
    (dict(backend="gpu"), ValueError, "backend:"),
    (dict(backend="CPP"), ValueError, "backend:"),
    (dict(backend=None), ValueError, "backend:"),
    # num_classes: an int in [1, 2**31 - 1] (fastmix/checks.py MAX_NUM_CLASSES says why); past it a
    # call could only fail (out of memory, an overflowed size, an int the ops cannot take)
    (dict(num_classes=2**31), ValueError, r"num_classes: expected an int in \[1, 2147483647\], got 2147483648$"),
    (dict(num_classes=2**40), ValueError, r"num_classes: .*got 1099511627776$"),
    (dict(num_classes=2**62), ValueError, "num_classes:"),
    (dict(num_classes=2**63), ValueError, "num_classes:"),
    (dict(num_classes=2**64), ValueError, "num_classes:"),
    (dict(num_classes=0), ValueError, r"num_classes: expected an int in \[1, 2147483647\], got 0$"),
    (dict(num_classes=-3), ValueError, "num_classes:"),
    (dict(num_classes=10.0), TypeError, "num_classes:"),
    (dict(num_classes="10"), TypeError, "num_classes:"),
    (dict(num_classes=True), TypeError, "num_classes:"),
    # label_smoothing: in [0, 1]
    (dict(label_smoothing=-0.1), ValueError, "label_smoothing:"),
    (dict(label_smoothing=1.5), ValueError, "label_smoothing:"),
    (dict(label_smoothing=NAN), ValueError, "label_smoothing:"),
    # the rest
    (dict(correct_lam="yes"), TypeError, "correct_lam:"),
    (dict(seed="1"), TypeError, "seed:"),
    (dict(seed=1.5), TypeError, "seed:"),
]


@pytest.mark.parametrize("kwargs, error, message", BAD_KNOBS, ids=[repr(k) for k, _, _ in BAD_KNOBS])
def test_bad_knob_is_refused_by_name(kwargs, error, message):
    with pytest.raises(error, match="^" + message):
        fastmix.Mixup(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(mixup_alpha=0.0, cutmix_alpha=0.0, prob=0.0),  # label smoothing only
        dict(mixup_alpha=0.0, cutmix_alpha=0.0, cutmix_minmax=(0.2, 0.8)),  # minmax turns CutMix on
        dict(prob=0.0, switch_prob=1.0, label_smoothing=1.0, num_classes=1),  # the closed ends
        dict(cutmix_minmax=[0, 1], backend="torch"),
        dict(num_classes=2**31 - 1),  # the largest num_classes
    ],
    ids=repr,
)
def test_edge_knobs_are_accepted(kwargs):
    fastmix.Mixup(**kwargs)


def test_no_mixing_with_both_alphas_zero_gives_smoothed_one_hot():
    mix = fastmix.Mixup(mixup_alpha=0.0, cutmix_alpha=0.0, prob=0.0, label_smoothing=0.2, num_classes=C, seed=0)
    images, labels = make_images(), make_labels()
    images_before = images.clone()
    out, targets = mix(images, labels)
    assert out is images and torch.equal(images, images_before)
    expected = torch.full((B, C), 0.2 / C)
    expected[torch.arange(B), labels] = 1 - 0.2 + 0.2 / C
    assert targets.dtype == torch.float32 and targets.shape == (B, C)
    torch.testing.assert_close(targets, expected, rtol=0, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# Mixup(...)(images, labels): the tensors, checked before anything is sampled or written
# ---------------------------------------------------------------------------------------------

MIXUP_ONLY = dict(mixup_alpha=0.8, cutmix_alpha=0.0)
CUTMIX_ON = dict(mixup_alpha=0.8, cutmix_alpha=1.0)
CUTMIX_ONLY = dict(mixup_alpha=0.0, cutmix_alpha=1.0)

BAD_CALLS = [
    # (id, Mixup kwargs, images, labels, error, message fragment)
    ("images 1-D (Mixup)", MIXUP_ONLY, lambda: make_images((B,)), make_labels, ValueError, r"images: .*shape \(4,\)"),
    ("images 0-D", MIXUP_ONLY, lambda: torch.tensor(1.0), make_labels, ValueError, "images:"),
    ("images 3-D (CutMix)", CUTMIX_ON, lambda: make_images((B, H, W)), make_labels, ValueError, r"images: .*CutMix"),
    ("images 3-D (CutMix only)", CUTMIX_ONLY, lambda: make_images((B, H, W)), make_labels, ValueError, "images:"),
    ("images 2-D (CutMix)", CUTMIX_ON, lambda: make_images((B, 12)), make_labels, ValueError, "images:"),
    ("images bool", MIXUP_ONLY, lambda: make_images(dtype=torch.bool), make_labels, TypeError, "images: .*bool"),
    ("images int32", MIXUP_ONLY, lambda: make_images(dtype=torch.int32), make_labels, TypeError, "images: .*int32"),
    ("images complex64", MIXUP_ONLY, lambda: make_images(dtype=torch.complex64), make_labels, TypeError, "images:"),
    ("images int64", CUTMIX_ON, lambda: make_images(dtype=torch.int64), make_labels, TypeError, "images:"),
    ("images a list", MIXUP_ONLY, lambda: [[0.0] * 3] * B, make_labels, TypeError, "images:"),
    ("images need grad", MIXUP_ONLY, lambda: make_images().requires_grad_(), make_labels, ValueError, "images:"),
    ("fewer labels", MIXUP_ONLY, make_images, lambda: make_labels((1, 2, 3)), ValueError, "labels: expected batch size 4"),
    ("more labels", CUTMIX_ON, make_images, lambda: make_labels((1, 2, 3, 4, 5)), ValueError, "labels: .*batch size"),
    ("fewer dense rows", MIXUP_ONLY, make_images, lambda: torch.rand(3, C), ValueError, "labels: .*batch size"),
    ("class index < 0", MIXUP_ONLY, make_images, lambda: make_labels((1, 2, -1, 4)), ValueError, r"labels\[2\]: .*got -1"),
    ("class index == C", MIXUP_ONLY, make_images, lambda: make_labels((1, C, 2, 4)), ValueError, r"labels\[1\]: .*num_classes=10"),
    ("class index > C", CUTMIX_ON, make_images, lambda: make_labels((1, 2, 3, 99)), ValueError, r"labels\[3\]"),
    ("labels 1-D float", MIXUP_ONLY, make_images, lambda: make_labels(dtype=torch.float32), TypeError, "labels: expected integer class indices for 1-D labels, got float32"),
    ("labels 1-D float64", CUTMIX_ON, make_images, lambda: make_labels(dtype=torch.float64), TypeError, "labels:"),
    ("labels 1-D bool", MIXUP_ONLY, make_images, lambda: make_labels((1, 0, 1, 0), torch.bool), TypeError, "labels:"),
    ("labels complex", MIXUP_ONLY, make_images, lambda: torch.rand(B, C, dtype=torch.complex64), TypeError, "labels:"),
    ("dense too narrow", MIXUP_ONLY, make_images, lambda: torch.rand(B, C - 1), ValueError, "labels: .*num_classes=10"),
    ("dense too wide", CUTMIX_ON, make_images, lambda: torch.rand(B, C + 1), ValueError, "labels: .*num_classes=10"),
    ("labels 3-D", MIXUP_ONLY, make_images, lambda: torch.rand(B, C, 1), ValueError, "labels:"),
    ("labels 0-D", MIXUP_ONLY, make_images, lambda: torch.tensor(1), ValueError, "labels:"),
    ("labels a list", MIXUP_ONLY, make_images, lambda: [1, 2, 3, 4], TypeError, "labels:"),
    ("labels on another device", MIXUP_ONLY, make_images, lambda: make_labels().to("meta"), ValueError, "labels: .*device"),
    ("dense labels on another device", CUTMIX_ON, make_images, lambda: torch.rand(B, C, device="meta"), ValueError, "labels: .*device"),
]


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize(
    "kwargs, images, labels, error, message", [case[1:] for case in BAD_CALLS], ids=[case[0] for case in BAD_CALLS]
)
def test_bad_call_is_refused_and_writes_nothing(mode, kwargs, images, labels, error, message):
    mix = fastmix.Mixup(**kwargs, mode=mode, num_classes=C, seed=0)
    images, labels = images(), labels()
    images_before, labels_before = clone(images), clone(labels)
    with pytest.raises(error, match="^" + message):
        mix(images, labels)
    assert_unchanged(images_before, images)
    assert_unchanged(labels_before, labels)
    assert mix.last_params is None, "nothing is sampled for a refused call"


def test_cuda_backend_is_refused_where_it_cannot_run_and_for_cpu_tensors():
    """A named backend is resolved when the object is built: without CUDA kernels or a GPU,
    backend='cuda' fails there; with them, a call on CPU tensors says they are on the wrong device."""
    from .conftest import HAS_CUDA

    if not HAS_CUDA:
        with pytest.raises(ValueError, match="^backend: expected a backend available here, got 'cuda'"):
            fastmix.Mixup(num_classes=C, seed=0, backend="cuda")
        return
    mix = fastmix.Mixup(num_classes=C, seed=0, backend="cuda")
    images, labels = make_images(), make_labels()
    images_before = images.clone()
    with pytest.raises(ValueError, match="^backend: 'cuda' runs on cuda tensors"):
        mix(images, labels)
    assert torch.equal(images, images_before)


def test_three_dim_images_are_fine_for_mixup_only():
    mix = fastmix.Mixup(mixup_alpha=1.0, num_classes=C, seed=0)
    images = make_images((B, 5, 6))
    out, targets = mix(images, make_labels())
    assert out is images and targets.shape == (B, C)
    assert bool(mix.last_params.mixed().all())


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize("kwargs", [MIXUP_ONLY, CUTMIX_ON, CUTMIX_ONLY], ids=["mixup", "both", "cutmix"])
@pytest.mark.parametrize("dense", [False, True])
def test_empty_batch_returns_the_same_images_and_empty_targets(mode, kwargs, dense):
    mix = fastmix.Mixup(**kwargs, mode=mode, num_classes=C, seed=0)
    images = make_images((0, 3, H, W))
    labels = torch.empty(0, C) if dense else torch.empty(0, dtype=torch.int64)
    out, targets = mix(images, labels)
    assert out is images
    assert targets.shape == (0, C) and targets.dtype == torch.float32 and targets.device == images.device


# ---------------------------------------------------------------------------------------------
# fastmix.mix_(images, params) and torch.ops.fastmix.mix_: the MixParams, checked in full
# ---------------------------------------------------------------------------------------------


def good_params():
    """A valid MixParams for (B, 3, H, W): a blend, a paste with a box, and two untouched samples."""
    return dict(
        partner=torch.tensor([1, 0, 3, 2]),
        lam=torch.tensor([0.7, 0.7, 1.0, 1.0]),
        kind=torch.tensor([MixKind.BLEND, MixKind.PASTE, MixKind.NONE, MixKind.NONE], dtype=torch.uint8),
        box=torch.tensor([[0, 0, 0, 0], [2, 6, 1, 5], [0, 0, 0, 0], [0, 0, 0, 0]]),
    )


def edit(field, index, value):
    def apply(p):
        p[field][index] = value

    return apply


def both(first, second):
    def apply(p):
        first(p)
        second(p)

    return apply


def replace(field, value):
    def apply(p):
        p[field] = value(p[field])

    return apply


BAD_PARAMS = [
    # (id, change to good_params(), message of fastmix.mix_ (the raw ops say the same without "params."))
    ("partner == B", edit("partner", 1, B), r"params\.partner\[1\]: expected an index in \[0, 4\), got 4"),
    ("partner < 0", edit("partner", 0, -1), r"params\.partner\[0\]"),
    ("partner huge", edit("partner", 3, 2**40), r"params\.partner\[3\]"),
    ("kind 3", edit("kind", 2, 3), r"params\.kind\[2\]: expected 0 \(none\), 1 \(blend\) or 2 \(paste\), got 3"),
    ("kind 255", edit("kind", 0, 255), r"params\.kind\[0\]"),
    ("lam NaN", edit("lam", 0, NAN), r"params\.lam\[0\]: expected a value in \[0, 1\], got nan"),
    ("lam NaN on an untouched sample", edit("lam", 3, NAN), r"params\.lam\[3\]"),
    ("lam > 1", edit("lam", 1, 1.5), r"params\.lam\[1\]: .*got 1\.5"),
    ("lam < 0", edit("lam", 0, -0.25), r"params\.lam\[0\]"),
    ("lam inf", edit("lam", 2, math.inf), r"params\.lam\[2\]"),
    ("box y1 > H", edit("box", 1, torch.tensor([2, H + 1, 1, 5])), r"params\.box\[1\]: .*y1 <= 8"),
    ("box x1 > W", edit("box", 1, torch.tensor([2, 6, 1, W + 1])), r"params\.box\[1\]: .*x1 <= 8"),
    ("box y0 < 0", edit("box", 1, torch.tensor([-1, 6, 1, 5])), r"params\.box\[1\]"),
    ("box x0 > x1", edit("box", 1, torch.tensor([2, 6, 5, 1])), r"params\.box\[1\]"),
    ("box y0 > y1", edit("box", 1, torch.tensor([6, 2, 1, 5])), r"params\.box\[1\]"),
    ("paste with a bad box", both(edit("kind", 3, MixKind.PASTE), edit("box", 3, torch.tensor([0, 9, 0, 9]))), r"params\.box\[3\]"),
    ("partner int32", replace("partner", lambda t: t.int()), r"params\.partner: expected int64 of shape \(4,\), got int32"),
    ("lam float64", replace("lam", lambda t: t.double()), r"params\.lam: .*float32"),
    ("lam float16", replace("lam", lambda t: t.half()), r"params\.lam"),
    ("kind int64", replace("kind", lambda t: t.long()), r"params\.kind: .*uint8"),
    ("kind bool", replace("kind", lambda t: t.bool()), r"params\.kind"),
    ("box int32", replace("box", lambda t: t.int()), r"params\.box: .*int64"),
    ("partner too short", replace("partner", lambda t: t[:3]), r"params\.partner: .*shape \(4,\)"),
    ("lam too long", replace("lam", lambda t: torch.cat([t, t])), r"params\.lam"),
    ("lam 2-D", replace("lam", lambda t: t.view(B, 1)), r"params\.lam"),
    ("kind too short", replace("kind", lambda t: t[:1]), r"params\.kind"),
    ("box (B, 3)", replace("box", lambda t: t[:, :3]), r"params\.box: expected int64 of shape \(4, 4\), got int64 of shape \(4, 3\)"),
    ("box flat", replace("box", lambda t: t.flatten()), r"params\.box"),
]


@pytest.mark.parametrize("backend", [CPP, NUMBA, "torch"])
@pytest.mark.parametrize("change, message", [case[1:3] for case in BAD_PARAMS], ids=[case[0] for case in BAD_PARAMS])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_mix_refuses_bad_params_and_writes_nothing(backend, change, message, dtype):
    images = make_images(dtype=dtype)
    before = images.clone()
    fields = good_params()
    fastmix.mix_(images.clone(), MixParams(**fields), backend=backend)  # the unchanged params are fine
    change(fields)
    with pytest.raises(ValueError, match="^" + message):
        fastmix.mix_(images, MixParams(**fields), backend=backend)
    assert torch.equal(images, before)


@requires_cpp
@pytest.mark.parametrize("change, message", [case[1:3] for case in BAD_PARAMS], ids=[case[0] for case in BAD_PARAMS])
@pytest.mark.parametrize("channels_last", [False, True])
def test_raw_op_refuses_bad_params_and_writes_nothing(change, message, channels_last):
    """The op says what fastmix.mix_ says, naming its own arguments (partner, not params.partner)."""
    images = make_images()
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    before = images.clone()
    fields = good_params()
    torch.ops.fastmix.mix_(images.clone(), **fields)  # the unchanged params are fine
    change(fields)
    with pytest.raises(ValueError, match="^" + message.replace("params\\.", "")):
        torch.ops.fastmix.mix_(images, **fields)
    assert torch.equal(images, before)


@pytest.mark.parametrize("backend", [CPP, NUMBA, "torch"])
def test_mix_refuses_paste_without_spatial_dims(backend):
    images = make_images((B, 12))
    before = images.clone()
    with pytest.raises(ValueError, match=r"^params\.kind\[1\]: paste \(CutMix\) needs images of shape \(B, \.\.\., H, W\)"):
        fastmix.mix_(images, MixParams(**good_params()), backend=backend)
    assert torch.equal(images, before)


@requires_cpp
def test_raw_op_refuses_paste_without_spatial_dims():
    images = make_images((B, 12))
    before = images.clone()
    with pytest.raises(ValueError, match=r"^kind\[1\]: paste \(CutMix\) needs images of shape \(B, \.\.\., H, W\), got images of shape \(4, 12\)"):
        torch.ops.fastmix.mix_(images, **good_params())
    assert torch.equal(images, before)


@requires_cpp
@pytest.mark.parametrize("dtype", [torch.bool, torch.int32, torch.int64, torch.complex64])
def test_raw_op_refuses_bad_image_dtypes(dtype):
    images = make_images(dtype=dtype)
    before = images.clone()
    with pytest.raises(TypeError, match="^images: expected dtype uint8, float16, bfloat16, float32 or float64, got"):
        torch.ops.fastmix.mix_(images, **good_params())
    assert torch.equal(images, before)


def valid_params():
    return MixParams(**good_params())


BAD_APPLY_ARGS = [
    # (id, images, params, backend, error, message fragment)
    ("images bool", lambda: make_images(dtype=torch.bool), valid_params, "auto", TypeError, "images: .*bool"),
    ("images int32", lambda: make_images(dtype=torch.int32), valid_params, "auto", TypeError, "images: .*int32"),
    ("images complex", lambda: make_images(dtype=torch.complex64), valid_params, "torch", TypeError, "images:"),
    ("images 1-D", lambda: make_images((B,)), valid_params, "auto", ValueError, "images:"),
    ("images need grad", lambda: make_images().requires_grad_(), valid_params, "auto", ValueError, "images:"),
    ("images a list", lambda: [0.0] * B, valid_params, "auto", TypeError, "images:"),
    ("params a tuple", make_images, lambda: tuple(good_params().values()), "auto", TypeError, "params: expected a fastmix.MixParams"),
    ("params a dict", make_images, good_params, "torch", TypeError, "params: expected a fastmix.MixParams"),
    ("params a list field", make_images, lambda: MixParams(**{**good_params(), "lam": [0.5] * B}), "auto", ValueError,
     r"params\.lam: .*list"),
    ("params of another batch", make_images, lambda: MixParams.identity(B + 1), "auto", ValueError, r"params\.partner: .*\(4,\)"),
    ("unknown backend", make_images, valid_params, "numpy", ValueError, "backend: expected one of"),
    ("backend not a str", make_images, valid_params, 1, ValueError, "backend:"),
]


@pytest.mark.parametrize(
    "images, params, backend, error, message", [case[1:] for case in BAD_APPLY_ARGS], ids=[case[0] for case in BAD_APPLY_ARGS]
)
def test_mix_refuses_bad_arguments_and_writes_nothing(images, params, backend, error, message):
    images, params = images(), params()
    before = clone(images)
    with pytest.raises(error, match="^" + message):
        fastmix.mix_(images, params, backend=backend)
    assert_unchanged(before, images)


def test_mix_of_an_empty_batch_returns_the_same_tensor():
    images = make_images((0, 3, H, W))
    assert fastmix.mix_(images, MixParams.identity(0)) is images


# Found while writing these tests, fixed since: each gets a named error before anything is drawn or written.
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
    from fastmix.checks import elements_may_share_memory

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
    from fastmix.checks import elements_may_share_memory

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


def test_cutmix_on_empty_images_is_refused_by_name():
    with pytest.raises(ValueError, match="^images: CutMix needs H >= 1 and W >= 1"):
        fastmix.Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, num_classes=10)(torch.rand(4, 3, 0, 5), torch.arange(4))


@pytest.mark.parametrize(
    "args, error, message",
    [
        (("10",), TypeError, "^num_classes: "),
        ((0,), ValueError, "^num_classes: "),
        ((10, 1.5), ValueError, "^smoothing: "),
        ((10, "0.1"), TypeError, "^smoothing: "),
    ],
)
def test_mix_targets_names_its_own_arguments(args, error, message):
    with pytest.raises(error, match=message):
        fastmix.mix_targets(torch.tensor([1, 2, 3, 0]), fastmix.MixParams.identity(4), *args)


def test_params_on_a_device_without_data_are_refused_by_name():
    images = torch.rand(4, 3, 8, 8)
    original = images.clone()
    with pytest.raises(ValueError, match="^params: "):
        fastmix.mix_(images, fastmix.MixParams.identity(4).to("meta"))
    assert torch.equal(images, original)


def test_label_values_are_read_on_the_cpu_only():
    """Off the CPU, fastmix.Mixup checks the labels' shape, dtype and device but never reads their
    values (a GPU read would stall the stream every batch): meta tensors, which have no values and
    raise on any read, pass the same checks."""
    from fastmix.checks import check_labels

    meta = torch.device("meta")
    check_labels(torch.empty(4, dtype=torch.int64, device=meta), 4, meta, 10)
    check_labels(torch.empty(4, 10, device=meta), 4, meta, 10, multi_label=True)
    with pytest.raises(ValueError, match=r"labels\[1\]: expected a class index in \[0, 10\)"):
        check_labels(torch.tensor([0, 10, 2, 3]), 4, torch.device("cpu"), 10)
    with pytest.raises(ValueError, match="labels: expected dense multi-label targets of shape"):
        check_labels(torch.empty(4, dtype=torch.int64, device=meta), 4, meta, 10, multi_label=True)


# ---------------------------------------------------------------------------------------------
# Found by the fuzz report (issue 15): each refused by name, on every backend, nothing written
# ---------------------------------------------------------------------------------------------

EVERY_BACKEND = [CPP, NUMBA, "torch"]
NO_AFFINE = (torch.empty(0), torch.empty(0))  # scale, bias: no normalisation


def op(backend):
    """The ops of one backend as the registry gives them (for cpp: torch.ops.fastmix.*)."""
    from fastmix.backends import resolve_backend

    return resolve_backend(backend, "cpu")


def inference_images():
    with torch.inference_mode():
        return make_images()


INFERENCE_MESSAGE = r"images: expected a tensor that may be written in place here, got an inference tensor"


@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_inference_images_are_refused_outside_inference_mode_before_anything_is_written(backend):
    """torch's rule for every in-place op: an inference tensor is written only inside
    torch.inference_mode(). (The torch backend used to write the batch, then raise RuntimeError;
    cpp and numba wrote it without a word.)"""
    images, labels = inference_images(), make_labels()
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
    assert torch.equal(labels, make_labels())


@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_inference_images_are_mixed_inside_inference_mode_as_any_images_are(backend):
    images = inference_images()
    expected = make_images()
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
    images = make_images()
    with pytest.raises(ValueError, match="^out: expected a tensor that may be written in place here, got an inference tensor"):
        call(out, images)
    assert torch.equal(out, torch.zeros(B, 3, H, W))
    assert torch.equal(images, make_images())
    with torch.inference_mode():
        call(out, images)
    written = torch.zeros(B, 3, H, W)
    call(written, inference_images())
    assert torch.equal(out, written) and not torch.equal(written, torch.zeros(B, 3, H, W))


BAD_TARGET_PARAMS = [
    # (id, change to good_params(), message of the op)
    ("lam NaN", edit("lam", 0, NAN), r"lam\[0\]: expected a value in \[0, 1\], got nan"),
    ("lam 2.0", edit("lam", 1, 2.0), r"lam\[1\]: expected a value in \[0, 1\], got 2"),
    ("lam < 0", edit("lam", 2, -0.5), r"lam\[2\]: expected a value in \[0, 1\], got -0\.5"),
    ("lam inf on an untouched sample", edit("lam", 3, math.inf), r"lam\[3\]: expected a value in \[0, 1\], got inf"),
    ("kind 255", edit("kind", 0, 255), r"kind\[0\]: expected 0 \(none\), 1 \(blend\) or 2 \(paste\), got 255"),
    ("kind 3", edit("kind", 2, 3), r"kind\[2\]: expected 0 \(none\), 1 \(blend\) or 2 \(paste\), got 3"),
    ("partner == B", edit("partner", 1, B), r"partner\[1\]: expected an index in \[0, 4\), got 4"),
]


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("change, message", [case[1:] for case in BAD_TARGET_PARAMS], ids=[case[0] for case in BAD_TARGET_PARAMS])
@pytest.mark.parametrize("dense", [False, True], ids=["indices", "dense"])
def test_the_targets_op_refuses_bad_lam_and_kind_values_by_name(backend, change, message, dense):
    """The raw mix_targets checks the values mix_ checks (no targets 2.0 and -1.0 from lam 2.0)."""
    labels = torch.eye(C)[make_labels()] if dense else make_labels()
    fields = good_params()
    op(backend).mix_targets(labels, fields["partner"], fields["lam"], fields["kind"], C, 0.1)  # fine unchanged
    change(fields)
    inputs = (labels, fields["partner"], fields["lam"], fields["kind"])
    before = [t.clone() for t in inputs]
    with pytest.raises(ValueError, match="^" + message):
        op(backend).mix_targets(*inputs, C, 0.1)
    with pytest.raises(ValueError, match="^params." + message):  # and the public function, naming params
        fastmix.mix_targets(labels, MixParams(**fields), C, 0.1, backend=backend)
    for was, now in zip(before, inputs):  # bit for bit (a NaN lam included)
        assert torch.equal(was.view(torch.uint8), now.view(torch.uint8))


def views_of_out(out):
    """(id, samples) for collate_mix_ that read memory out is written to."""
    batch = out.shape[0]
    return [
        ("unbind", list(out.unbind(0)), False),
        ("one sample a view", [torch.rand(out.shape[1:]) for _ in range(batch - 1)] + [out[0]], False),
        ("hwc permuted views", [s.permute(1, 2, 0) for s in out.unbind(0)], True),
        # not dense: torch's get_overlap_status answers "too hard" for these, the cpp op let them through
        ("strided views", [out.as_strided(out.shape[1:], (2 * H * W, W, 1), i * H * W // 2) for i in range(batch)], False),
    ]


VIEW_IDS = ["unbind", "one sample a view", "hwc permuted views", "strided views"]


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("which", range(len(VIEW_IDS)), ids=VIEW_IDS)
def test_collate_refuses_samples_that_share_memory_with_out(backend, which):
    out = make_images()
    _, samples, hwc = views_of_out(out)[which]
    first = next(i for i, s in enumerate(samples) if s.untyped_storage().data_ptr() == out.untyped_storage().data_ptr())
    before = out.clone()
    with pytest.raises(ValueError, match=rf"^samples\[{first}\]: expected memory apart from out's \(out is written while it is read\)"):
        op(backend).collate_mix_(out, samples, *valid_params().as_tuple(), *NO_AFFINE, hwc)
    assert torch.equal(out, before)


@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_mix_into_refuses_strided_images_that_share_memory_with_out(backend):
    buffer = torch.rand(2 * B * 3 * H * W, generator=torch.Generator().manual_seed(2))
    out = buffer[: B * 3 * H * W].view(B, 3, H, W)
    images = buffer.as_strided((B, 3, H, W), (2 * 3 * H * W, H * W, W, 1))  # every other sample of the buffer
    before = buffer.clone()
    with pytest.raises(ValueError, match=r"^images: expected memory apart from out's"):
        op(backend).mix_into_(out, images, *valid_params().as_tuple(), *NO_AFFINE, False)
    assert torch.equal(buffer, before)


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("num_classes", [2**31, 2**40, 2**62])
def test_the_targets_op_refuses_more_classes_than_targets_can_have(backend, num_classes):
    labels, fields = make_labels(), good_params()
    message = rf"^num_classes: expected an int in \[1, 2147483647\], got {num_classes}$"
    with pytest.raises(ValueError, match=message):
        op(backend).mix_targets(labels, fields["partner"], fields["lam"], fields["kind"], num_classes, 0.0)
    with pytest.raises(ValueError, match=message):
        fastmix.mix_targets(labels, valid_params(), num_classes, backend=backend)
    assert torch.equal(labels, make_labels())


def test_num_classes_set_during_training_is_checked_as_at_construction():
    mix = fastmix.Mixup(num_classes=C, seed=0)
    with pytest.raises(ValueError, match=r"^num_classes: expected an int in \[1, 2147483647\], got 1099511627776$"):
        mix.num_classes = 2**40
    assert mix.num_classes == C


# ---------------------------------------------------------------------------------------------
# MixupCollate, sparse and meta tensors, the negative bit (issue 15, second round): refused by
# name before anything is drawn, or mixed as cpp and torch mix them
# ---------------------------------------------------------------------------------------------


def chw_uint8(seed, shape=(3, H, W)):
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def hwc_uint8(seed, shape=(H, W, 3)):
    return chw_uint8(seed, shape).numpy()


def dense_label(seed, width=C, dtype=torch.float32):
    return torch.rand(width, generator=torch.Generator().manual_seed(100 + seed)).to(dtype)


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


def images_then(n, odd_index, odd_image, make=chw_uint8):
    return [make(i) for i in range(n)][:odd_index] + [odd_image] + [make(i) for i in range(odd_index + 1, n)]


BAD_COLLATE_BATCHES = [
    # (id, Mixup kwargs, MixupCollate kwargs, samples, error, message (regex, from the start))
    ("CutMix, H = 0", CUTMIX_ONLY, {}, lambda: [(chw_uint8(i, (3, 0, W)), i) for i in range(B)], ValueError,
     r"samples\[0\]: CutMix needs images with H >= 1 and W >= 1, got \(C, H, W\) \(3, 0, 8\)"),
    ("CutMix, W = 0 (numpy)", CUTMIX_ON, {}, lambda: [(hwc_uint8(i, (H, 0, 3)), i) for i in range(B)], ValueError,
     r"samples\[0\]: CutMix needs images with H >= 1 and W >= 1, got \(H, W, C\) \(8, 0, 3\)"),
    ("dense labels of different lengths", MIXUP_ONLY, {},
     lambda: [(chw_uint8(i), dense_label(i, C + (i == 3))) for i in range(B)], ValueError,
     r"samples\[3\]: expected a dense label of num_classes=10 values, shape \(10,\), like samples\[0\], got a label of shape \(11,\)"),
    ("dense then class index", MIXUP_ONLY, {},
     lambda: [(chw_uint8(i), dense_label(i) if i < 3 else 2) for i in range(B)], ValueError,
     r"samples\[3\]: expected a dense label .* got int 2"),
    ("dense then a 0-d tensor", CUTMIX_ON, {},
     lambda: [(chw_uint8(i), dense_label(i) if i != 2 else torch.tensor(2)) for i in range(B)], ValueError,
     r"samples\[2\]: expected a dense label .*shape \(\)"),
    ("complex dense label", MIXUP_ONLY, {},
     lambda: [(chw_uint8(i), dense_label(i, dtype=torch.complex64)) for i in range(B)], TypeError,
     r"samples\[0\]: expected a label of real values, got dtype complex64"),
    ("complex dense label after real ones", CUTMIX_ON, {},
     lambda: [(chw_uint8(i), dense_label(i, dtype=torch.complex64 if i == 2 else torch.float32)) for i in range(B)],
     TypeError, r"samples\[2\]: expected a label of real values, got dtype complex64"),
    ("complex multi-label target", dict(MIXUP_ONLY, multi_label=True), {},
     lambda: [(chw_uint8(i), (dense_label(i) > 0.5).to(torch.complex64) * (1 + 1j)) for i in range(B)], TypeError,
     r"samples\[0\]: expected a label of real values, got dtype complex64"),
    ("complex numpy label", MIXUP_ONLY, {},
     lambda: [(chw_uint8(i), dense_label(i).numpy().astype(np.complex64)) for i in range(B)], TypeError,
     r"samples\[0\]: expected a numpy label of a real dtype in the machine's byte order, got dtype complex64"),
    ("big-endian uint16 image", MIXUP_ONLY, {}, lambda: [(im, i) for i, im in enumerate(images_then(
     B, 2, hwc_uint8(2).astype(">u2"), hwc_uint8))], TypeError, r"samples\[2\]: expected a numpy image .* got dtype >u2 \(big-endian\)"),
    ("big-endian float32 image", MIXUP_ONLY, {}, lambda: [(hwc_uint8(i).astype(">f4"), i) for i in range(B)], TypeError,
     r"samples\[0\]: expected a numpy image of a real dtype \(uint8 or float32\) in the machine's byte order, got dtype >f4 \(big-endian\)"),
    ("object image", MIXUP_ONLY, {}, lambda: [(im, i) for i, im in enumerate(images_then(
     B, 1, hwc_uint8(1).astype(object), hwc_uint8))], TypeError, r"samples\[1\]: expected a numpy image .* got dtype object"),
    ("sparse image", MIXUP_ONLY, {}, lambda: [(im, i) for i, im in enumerate(images_then(B, 1, chw_uint8(1).to_sparse()))],
     TypeError, r"samples\[1\]: expected a strided \(dense\) tensor, got layout torch\.sparse_coo"),
    ("meta image", MIXUP_ONLY, {}, lambda: [(im, i) for i, im in enumerate(images_then(B, 3, chw_uint8(3).to("meta")))],
     ValueError, r"samples\[3\]: expected a tensor on the CPU \(the collate runs there\), got a tensor on meta"),
    ("sparse dense label", MIXUP_ONLY, {}, lambda: [(chw_uint8(i), dense_label(i).to_sparse()) for i in range(B)], TypeError,
     r"samples\[0\]: expected a strided \(dense\) tensor, got layout torch\.sparse_coo"),
    ("meta dense label", MIXUP_ONLY, {}, lambda: [(chw_uint8(i), dense_label(i).to("meta" if i else "cpu")) for i in range(B)],
     ValueError, r"samples\[1\]: expected a tensor on the CPU"),
    ("meta class index", CUTMIX_ON, {}, lambda: [(chw_uint8(i), torch.tensor(i, device="meta" if i == 2 else "cpu")) for i in range(B)],
     ValueError, r"samples\[2\]: expected a tensor on the CPU"),
    ("std past float32", MIXUP_ONLY, dict(mean=(0.5,), std=(1e-300,)), lambda: [(chw_uint8(i), i) for i in range(B)], ValueError,
     r"mean, std: expected values whose scale 1/std and bias -mean/std fit float32"),
]


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("mix_kwargs, collate_kwargs, samples, error, message", [case[1:] for case in BAD_COLLATE_BATCHES],
                         ids=[case[0] for case in BAD_COLLATE_BATCHES])
def test_the_collate_refuses_bad_samples_by_name_before_drawing(backend, mix_kwargs, collate_kwargs, samples, error, message):
    """Each used to surface as torch's RuntimeError / ValueError naming no sample (or, for complex
    labels on numba and torch, to drop the imaginary part): now refused before anything is drawn."""
    collate = fastmix.MixupCollate(fastmix.Mixup(**mix_kwargs, num_classes=C, seed=0, backend=backend),
                                   dtype=torch.float32, **collate_kwargs)
    samples = samples()
    before = [tuple(sample_snapshot(v) for v in s) for s in samples]
    stream = collate.mixup.generator.bit_generator.state
    with pytest.raises(error, match="^" + message):
        collate(samples)
    for was, now in zip(before, samples):
        assert all(same_sample(b, a) for b, a in zip(was, now)), "a refused batch must leave the samples as they were"
    assert collate.mixup.generator.bit_generator.state == stream, "a refused batch must not draw"
    assert collate.mixup.last_params is None


BAD_MEAN_STD = [
    # (id, mean, std, error, message)
    ("mean a str", "0.5", (0.2,), TypeError, r"mean: expected finite real numbers .*got str '0\.5'"),
    ("std a str", (0.5,), "0.2", TypeError, r"std: expected finite real numbers"),
    ("dicts", {"r": 0.5}, {"r": 0.2}, TypeError, r"mean: .*got dict"),
    ("strs in a tuple", ("0.5",) * 3, (0.2,) * 3, TypeError, r"mean: .*got tuple"),
    ("bools", (True, False, True), (0.2,) * 3, TypeError, r"mean: "),
    ("meta tensors", torch.zeros(3, device="meta"), torch.ones(3, device="meta"), ValueError, r"mean: .* on the CPU, got a tensor on meta"),
    ("std a meta tensor", torch.zeros(3), torch.ones(3, device="meta"), ValueError, r"std: .* on the CPU, got a tensor on meta"),
    ("sparse mean", torch.zeros(3).to_sparse(), torch.ones(3), TypeError, r"mean: .*layout torch\.sparse_coo"),
    ("complex mean", torch.zeros(3, dtype=torch.complex64), torch.ones(3), TypeError, r"mean: .*complex64"),
    ("object array", np.array([0.5, "a", None], dtype=object), (0.2,) * 3, TypeError, r"mean: .*dtype object"),
    ("no values", (), (), ValueError, r"mean: .*got none"),
    ("mean NaN", (0.5, NAN, 0.5), (0.2,) * 3, ValueError, r"mean: expected finite real numbers .*got \[0\.5, nan, 0\.5\]"),
    ("mean -inf", (-math.inf,), (1.0,), ValueError, r"mean: expected finite"),
    ("std inf", (0.5,) * 3, (0.2, math.inf, 0.2), ValueError, r"std: expected finite real numbers .*inf"),
    ("std NaN tensor", torch.zeros(3), torch.tensor([1.0, NAN, 1.0]), ValueError, r"std: expected finite"),
    ("std NaN array", np.zeros(3), np.full(3, NAN), ValueError, r"std: expected finite"),
]


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("mean, std, error, message", [case[1:] for case in BAD_MEAN_STD], ids=[case[0] for case in BAD_MEAN_STD])
def test_the_collate_refuses_bad_mean_and_std_by_name(backend, mean, std, error, message):
    """Strings, dicts and meta tensors used to raise torch's TypeError / RuntimeError (naming
    neither), and NaN or inf were taken, giving NaN or constant channels."""
    before = (sample_snapshot(mean), sample_snapshot(std))
    with pytest.raises(error, match="^" + message):
        fastmix.MixupCollate(fastmix.Mixup(num_classes=C, seed=0, backend=backend), dtype=torch.float32, mean=mean, std=std)
    if isinstance(mean, torch.Tensor):
        assert same_sample(before[0], mean) and same_sample(before[1], std)


@pytest.mark.parametrize("mean, std", [
    (0.5, 0.25),
    ((0.5, 0.4, 0.3), [0.25, 0.2, 0.1]),
    (torch.tensor([0.5, 0.4, 0.3]), torch.tensor([[0.25], [0.2], [0.1]])),
    (np.array([0.5, 0.4, 0.3], dtype=">f8"), np.array([0.25, 0.2, 0.1], dtype=np.float32)),
    ((np.float32(0.5), 0.4, 0.3), (0.25, np.float64(0.2), 1)),
], ids=["floats", "tuple_list", "tensors", "arrays", "numpy_scalars"])
def test_the_accepted_forms_of_mean_and_std_still_normalise(mean, std):
    collate = fastmix.MixupCollate(fastmix.Mixup(num_classes=C, seed=0, backend="torch"), dtype=torch.float32, mean=mean, std=std)
    assert collate.mean.dtype == torch.float64 and collate.mean.dim() == 1 and bool(torch.isfinite(collate.std).all())
    images, targets = collate([(chw_uint8(i), i) for i in range(B)])
    assert bool(torch.isfinite(images).all()) and targets.shape == (B, C)


def sparse_coo_images():
    return make_images().to_sparse()


def sparse_csr_images():
    return make_images((B, 12)).to_sparse_csr()


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
        mix(images, make_labels())
    assert mix.last_params is None and mix.generator.bit_generator.state == stream
    with pytest.raises(TypeError, match=message):
        fastmix.mix_(images, valid_params(), backend=backend)
    with pytest.raises(TypeError, match=message):  # (the compiled ops: their sparse-key kernels)
        op(backend).mix_(images, *valid_params().as_tuple())
    assert torch.equal(images.to_dense(), before)


BAD_LABEL_TENSORS = [
    # (id, labels, error, message)
    ("sparse class indices", lambda: make_labels().to_sparse(), TypeError,
     r"labels: expected a strided \(dense\) tensor, got layout torch\.sparse_coo$"),
    ("sparse dense targets", lambda: torch.eye(C)[make_labels()].to_sparse(), TypeError,
     r"labels: expected a strided \(dense\) tensor, got layout torch\.sparse_coo$"),
    ("CSR dense targets", lambda: torch.eye(C)[make_labels()].to_sparse_csr(), TypeError,
     r"labels: expected a strided \(dense\) tensor, got layout torch\.sparse_csr$"),
    ("meta class indices", lambda: make_labels().to("meta"), ValueError, r"labels: expected a tensor on the images' device cpu, got meta$"),
    ("meta dense targets", lambda: torch.rand(B, C, device="meta"), ValueError, r"labels: expected a tensor on the images' device cpu"),
]


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("labels, error, message", [case[1:] for case in BAD_LABEL_TENSORS], ids=[case[0] for case in BAD_LABEL_TENSORS])
def test_sparse_and_meta_labels_are_refused_by_name_on_every_backend(backend, labels, error, message):
    """Sparse labels used to raise NotImplementedError (no sparse kernel for a comparison or for
    fastmix::mix_targets)."""
    images, labels = make_images(), labels()
    images_before, labels_before = images.clone(), sample_snapshot(labels)
    mix = fastmix.Mixup(**CUTMIX_ON, num_classes=C, seed=0, backend=backend)
    with pytest.raises(error, match="^" + message):
        mix(images, labels)
    assert mix.last_params is None
    assert torch.equal(images, images_before) and same_sample(labels_before, labels)
    if labels.layout != torch.strided:  # the targets function and the Python ops say the same
        with pytest.raises(TypeError, match="^" + message):
            fastmix.mix_targets(labels, valid_params(), C, 0.1, backend=backend)
        if backend != "cpp":
            with pytest.raises(TypeError, match="^" + message):
                op(backend).mix_targets(labels, *valid_params().as_tuple()[:3], C, 0.1)
        assert same_sample(labels_before, labels)


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
    mix(mixed, make_labels())
    reference(plain, make_labels())
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


# ---------------------------------------------------------------------------------------------
# Tensors on different devices (issue 15, item 3): refused by name on every op and backend. The
# dispatcher sends a call with one meta tensor among CPU tensors to the Meta kernel (the fake
# kernels of fastmix/backends/extension.py), not to the CPU kernel: the fakes used to return without
# a write (mix_, mix_into_, collate_mix_) or an uninitialised CPU result (mix_targets).
# ---------------------------------------------------------------------------------------------

META = torch.device("meta")
OPS_ON_CPU = [pytest.param("torch.ops.fastmix", marks=requires_cpp), CPP, NUMBA, "torch"]


def ops_of(backend):
    """torch.ops.fastmix itself, or a backend's ops as the registry gives them."""
    return torch.ops.fastmix if backend == "torch.ops.fastmix" else op(backend)


def op_call(op_name, moved):
    """(call, inputs, out or None) of a valid call of ``op_name`` with the argument ``moved`` on
    the meta device ("scale=empty": an empty scale, meant as no normalisation, on meta; "mix_targets
    dense": mix_targets of dense (B, C) labels)."""
    dense = op_name == "mix_targets dense"
    op_name = op_name.split()[0]
    fields = good_params()
    fields = {name: (t.to(META) if name == moved else t) for name, t in fields.items()}
    partner, lam, kind, box = fields.values()
    if op_name == "mix_targets":
        labels = torch.eye(C)[make_labels()] if dense else make_labels()
        labels = labels.to(META) if moved == "labels" else labels
        inputs = [labels, partner, lam, kind]
        return (lambda ops: ops.mix_targets(labels, partner, lam, kind, C, 0.1)), inputs, None
    images = make_images().to(META) if moved == "images" else make_images()
    if op_name == "mix_":
        return (lambda ops: ops.mix_(images, partner, lam, kind, box)), [images, partner, lam, kind, box], None
    out = torch.zeros(B, 3, H, W, device=META if moved == "out" else "cpu")
    scale, bias = torch.full((3,), 2.0), torch.full((3,), -1.0)
    if moved == "scale=empty":
        scale, bias = torch.empty(0, device=META), torch.empty(0)
    elif moved in ("scale", "bias"):
        scale, bias = (scale.to(META), bias) if moved == "scale" else (scale, bias.to(META))
    inputs = list(images.unbind(0)) if op_name == "collate_mix_" else images
    if moved == "samples[2]":
        inputs[2] = inputs[2].to(META)
    call = lambda ops: getattr(ops, op_name)(out, inputs, partner, lam, kind, box, scale, bias, False)  # noqa: E731
    return call, [out, *(inputs if isinstance(inputs, list) else [inputs]), partner, lam, kind, box, scale, bias], out


MISPLACED = [
    # (op, the argument on the meta device, the message: the argument named, then where it should be)
    ("mix_", "images", r"partner: expected a tensor on the images' device meta, got cpu$"),
    ("mix_", "partner", r"partner: expected a tensor on the images' device cpu, got meta$"),
    ("mix_", "lam", r"lam: expected a tensor on the images' device cpu, got meta$"),
    ("mix_", "kind", r"kind: expected a tensor on the images' device cpu, got meta$"),
    ("mix_", "box", r"box: expected a tensor on the images' device cpu, got meta$"),
    ("mix_targets", "labels", r"partner: expected a tensor on the labels' device meta, got cpu$"),
    ("mix_targets", "partner", r"partner: expected a tensor on the labels' device cpu, got meta$"),
    ("mix_targets", "lam", r"lam: expected a tensor on the labels' device cpu, got meta$"),
    ("mix_targets", "kind", r"kind: expected a tensor on the labels' device cpu, got meta$"),
    ("mix_targets dense", "labels", r"partner: expected a tensor on the labels' device meta, got cpu$"),
    ("mix_targets dense", "lam", r"lam: expected a tensor on the labels' device cpu, got meta$"),
    ("mix_into_", "out", r"images: expected a tensor on out's device meta, got cpu$"),
    ("mix_into_", "images", r"images: expected a tensor on out's device cpu, got meta$"),
    ("mix_into_", "partner", r"partner: expected a tensor on out's device cpu, got meta$"),
    ("mix_into_", "lam", r"lam: expected a tensor on out's device cpu, got meta$"),
    ("mix_into_", "kind", r"kind: expected a tensor on out's device cpu, got meta$"),
    ("mix_into_", "box", r"box: expected a tensor on out's device cpu, got meta$"),
    ("mix_into_", "scale", r"scale, bias: expected tensors on out's device cpu, got meta and cpu$"),
    ("mix_into_", "bias", r"scale, bias: expected tensors on out's device cpu, got cpu and meta$"),
    ("mix_into_", "scale=empty", r"scale, bias: expected tensors on out's device cpu, got meta and cpu$"),
    ("collate_mix_", "out", r"samples\[0\]: expected a tensor on out's device meta, got cpu$"),
    ("collate_mix_", "images", r"samples\[0\]: expected a tensor on out's device cpu, got meta$"),
    ("collate_mix_", "samples[2]", r"samples\[2\]: expected a tensor on out's device cpu, got meta$"),
    ("collate_mix_", "partner", r"partner: expected a tensor on out's device cpu, got meta$"),
    ("collate_mix_", "lam", r"lam: expected a tensor on out's device cpu, got meta$"),
    ("collate_mix_", "kind", r"kind: expected a tensor on out's device cpu, got meta$"),
    ("collate_mix_", "box", r"box: expected a tensor on out's device cpu, got meta$"),
    ("collate_mix_", "scale", r"scale, bias: expected tensors on out's device cpu, got meta and cpu$"),
    ("collate_mix_", "scale=empty", r"scale, bias: expected tensors on out's device cpu, got meta and cpu$"),
]


def raw_bytes(t):
    """A tensor's bytes (a meta tensor: its shape and dtype, it has no data)."""
    if t.device.type == "meta":
        return (tuple(t.shape), t.dtype)
    return bytes(t.untyped_storage()) if t.untyped_storage().nbytes() else b""


@pytest.mark.parametrize("backend", OPS_ON_CPU)
@pytest.mark.parametrize("op_name, moved, message", MISPLACED, ids=[f"{o} {m}" for o, m, _ in MISPLACED])
def test_a_tensor_on_another_device_is_refused_by_name_before_anything_is_written(backend, op_name, moved, message):
    call, inputs, out = op_call(op_name, moved)
    before = [raw_bytes(t) for t in inputs]
    with pytest.raises(ValueError, match="^" + message):
        call(ops_of(backend))
    assert [raw_bytes(t) for t in inputs] == before, "a refused call must leave every input as it was"
    if out is not None and out.device.type == "cpu":
        assert torch.equal(out, torch.zeros(B, 3, H, W))


@requires_cpp
@pytest.mark.parametrize("dense", [False, True], ids=["indices", "dense"])
def test_calls_whose_tensors_are_all_meta_still_reach_the_fake_kernels(dense):
    """What meta tracing does (torch.compile's fake tensors are covered by tests/test_ops.py)."""
    ops = torch.ops.fastmix
    partner, lam, kind, box = (t.to(META) for t in good_params().values())
    labels = (torch.eye(C)[make_labels()] if dense else make_labels()).to(META)
    targets = ops.mix_targets(labels, partner, lam, kind, C, 0.1)
    assert targets.device == META and targets.shape == (B, C) and targets.dtype == torch.float32
    images, out = make_images().to(META), torch.empty(B, 3, H, W, device=META)
    ops.mix_(images, partner, lam, kind, box)
    for scale, bias in [(torch.ones(3, device=META), torch.zeros(3, device=META)), (torch.empty(0), torch.empty(0))]:
        ops.mix_into_(out, images, partner, lam, kind, box, scale, bias, False)  # (an empty CPU scale: no normalisation)
        ops.collate_mix_(out, list(images.unbind(0)), partner, lam, kind, box, scale, bias, False)


@requires_cpp
def test_the_fake_kernels_check_devices_under_fake_tensors_too():
    """Under torch.compile the fakes see FakeTensors of the real devices: CUDA params with CPU ones
    are refused as the CUDA kernel refuses them; an empty CPU scale/bias with a CUDA out (no
    normalisation) is accepted, as the CUDA kernel accepts it. (Fake CUDA tensors need no GPU.)"""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        cuda = torch.device("cuda", 0)
        fields = [t.to(cuda) for t in good_params().values()]
        images, out = torch.empty(B, 3, H, W, device=cuda), torch.empty(B, 3, H, W, device=cuda)
        torch.ops.fastmix.mix_into_(out, images, *fields, torch.empty(0), torch.empty(0), False)
        torch.ops.fastmix.mix_(images, *fields)
        with pytest.raises(ValueError, match=r"^scale, bias: expected tensors on out's device cuda:0, got cpu and cpu$"):
            torch.ops.fastmix.mix_into_(out, images, *fields, torch.ones(3), torch.zeros(3), False)
        with pytest.raises(ValueError, match=r"^box: expected a tensor on the images' device cuda:0, got cpu$"):
            torch.ops.fastmix.mix_(images, *fields[:3], torch.zeros(B, 4, dtype=torch.int64))
        with pytest.raises(ValueError, match=r"^lam: expected a tensor on the labels' device cuda:0, got cpu$"):
            torch.ops.fastmix.mix_targets(make_labels().to(cuda), fields[0], torch.ones(B), fields[2], C, 0.1)


# ---------------------------------------------------------------------------------------------
# The fallbacks refuse what the compiled ops refuse, in the same words (issue 15, item 8): the
# numba and torch backends call the checks of fastmix/checks.py, worded as csrc/checks.h words them
# ---------------------------------------------------------------------------------------------


def targets_args(labels=None, num_classes=C, smoothing=0.1, **fields):
    """mix_targets's arguments: good ones, with the changes given."""
    params = {**{k: v for k, v in good_params().items() if k != "box"}, **fields}
    labels = make_labels() if labels is None else labels
    return "mix_targets", (labels, *params.values(), num_classes, smoothing)


def mix_args(images=None, **fields):
    return "mix_", (make_images() if images is None else images, *{**good_params(), **fields}.values())


def into_args(op_name="mix_into_", out=None, images=None, scale=None, bias=None, hwc=False, **fields):
    out = torch.zeros(B, 3, H, W) if out is None else out
    images = make_images() if images is None else images
    if op_name == "collate_mix_" and isinstance(images, torch.Tensor):
        images = list(images.unbind(0))
    scale = torch.full((3,), 2.0) if scale is None else scale
    bias = torch.full((3,), -1.0) if bias is None else bias
    return op_name, (out, images, *{**good_params(), **fields}.values(), scale, bias, hwc)


def lam_with(value):
    return torch.tensor([value, 1.0, 1.0, 1.0])


SAME_REFUSAL = [
    # (id, lambda: (op, args), exception, message): every backend raises this, in these words
    ("smoothing NaN", lambda: targets_args(smoothing=NAN), ValueError, r"smoothing: expected a float in \[0, 1\], got nan$"),
    ("smoothing < 0", lambda: targets_args(smoothing=-0.1), ValueError, r"smoothing: .*got -0\.1$"),
    ("smoothing 2.0", lambda: targets_args(smoothing=2.0), ValueError, r"smoothing: .*got 2$"),
    ("smoothing just over 1", lambda: targets_args(smoothing=1 + 1e-9), ValueError, r"smoothing: .*got 1\.000000001$"),
    ("smoothing -inf", lambda: targets_args(smoothing=-math.inf), ValueError, r"smoothing: .*got -inf$"),
    ("num_classes 0", lambda: targets_args(num_classes=0), ValueError, r"num_classes: expected an int in \[1, 2147483647\], got 0$"),
    ("num_classes < 0", lambda: targets_args(num_classes=-5), ValueError, r"num_classes: .*got -5$"),
    ("num_classes 2**31", lambda: targets_args(num_classes=2**31), ValueError, r"num_classes: .*got 2147483648$"),
    ("labels 1-D float", lambda: targets_args(make_labels(dtype=torch.float32)), TypeError,
     r"labels: expected integer class indices for 1-D labels, got float32 \(pass dense targets as \(4, 10\)\)$"),
    ("labels 1-D bool", lambda: targets_args(make_labels((1, 0, 1, 0), torch.bool)), TypeError, r"labels: .*got bool"),
    ("labels 1-D float16", lambda: targets_args(make_labels(dtype=torch.float16)), TypeError, r"labels: .*got float16"),
    ("labels complex", lambda: targets_args(torch.zeros(B, C, dtype=torch.complex64)), TypeError,
     r"labels: expected real values, got complex64$"),
    ("labels 0-D", lambda: targets_args(torch.tensor(1)), ValueError,
     r"labels: expected class indices of shape \(B,\) or dense targets of shape \(B, 10\), got shape \(\)$"),
    ("labels 3-D", lambda: targets_args(torch.zeros(B, C, 1)), ValueError, r"labels: .*got shape \(4, 10, 1\)$"),
    ("dense labels too narrow", lambda: targets_args(torch.zeros(B, C - 1)), ValueError,
     r"labels: expected dense targets with num_classes=10 columns, got shape \(4, 9\)$"),
    ("class index -1", lambda: targets_args(make_labels((1, -1, 3, 4))), ValueError,
     r"labels\[1\]: expected a class index in \[0, 10\) \(num_classes=10\), got -1$"),
    ("class index == C", lambda: targets_args(make_labels((1, 2, C, 4), torch.int32)), ValueError, r"labels\[2\]: .*got 10$"),
    ("one label short", lambda: targets_args(make_labels((1, 2, 3))), ValueError,
     r"partner: expected int64 of shape \(3,\), got int64 of shape \(4,\)$"),
    ("targets lam NaN", lambda: targets_args(lam=lam_with(NAN)), ValueError, r"lam\[0\]: expected a value in \[0, 1\], got nan$"),
    ("targets lam 2.0", lambda: targets_args(lam=lam_with(2.0)), ValueError, r"lam\[0\]: .*got 2$"),
    ("targets lam float64", lambda: targets_args(lam=torch.ones(B, dtype=torch.float64)), ValueError,
     r"lam: expected float32 of shape \(4,\), got float64 of shape \(4,\)$"),
    ("targets kind 3", lambda: targets_args(kind=torch.tensor([3, 0, 0, 0], dtype=torch.uint8)), ValueError,
     r"kind\[0\]: expected 0 \(none\), 1 \(blend\) or 2 \(paste\), got 3$"),
    ("targets partner == B", lambda: targets_args(partner=torch.tensor([B, 0, 3, 2])), ValueError,
     r"partner\[0\]: expected an index in \[0, 4\), got 4$"),
    ("targets partner on meta", lambda: targets_args(partner=torch.tensor([1, 0, 3, 2], device="meta")), ValueError,
     r"partner: expected a tensor on the labels' device cpu, got meta$"),
    ("mix lam -0.1", lambda: mix_args(lam=lam_with(-0.1)), ValueError, r"lam\[0\]: expected a value in \[0, 1\], got -0\.1$"),
    ("mix lam just over 1", lambda: mix_args(lam=lam_with(1.0000001)), ValueError, r"lam\[0\]: .*got 1\.0000001$"),
    ("mix lam -inf", lambda: mix_args(lam=lam_with(-math.inf)), ValueError, r"lam\[0\]: .*got -inf$"),
    ("mix lam 1e30", lambda: mix_args(lam=lam_with(1e30)), ValueError, r"lam\[0\]: .*got 1e\+30$"),
    ("mix box past H", lambda: mix_args(box=torch.tensor([[0, 0, 0, 0], [2, 9, 1, 5], [0, 0, 0, 0], [0, 0, 0, 0]])),
     ValueError, r"box\[1\]: expected \(y0, y1, x0, x1\) with 0 <= y0 <= y1 <= 8 and 0 <= x0 <= x1 <= 8, got \(2, 9, 1, 5\)$"),
    ("mix paste on 2-D images", lambda: mix_args(torch.zeros(B, 12)), ValueError,
     r"kind\[1\]: paste \(CutMix\) needs images of shape \(B, \.\.\., H, W\), got images of shape \(4, 12\)$"),
    ("mix paste on 1-D images", lambda: mix_args(torch.zeros(B)), ValueError, r"kind\[1\]: .*got images of shape \(4,\)$"),
    ("mix images int32", lambda: mix_args(make_images(dtype=torch.int32)), TypeError,
     r"images: expected dtype uint8, float16, bfloat16, float32 or float64, got int32$"),
    ("mix images of 5", lambda: mix_args(torch.zeros(5, 3, H, W)), ValueError, r"partner: expected int64 of shape \(5,\)"),
    ("mix box on meta", lambda: mix_args(box=torch.zeros(B, 4, dtype=torch.int64, device="meta")), ValueError,
     r"box: expected a tensor on the images' device cpu, got meta$"),
    ("mix_into_ lam NaN", lambda: into_args(lam=lam_with(NAN)), ValueError, r"lam\[0\]: .*got nan$"),
    ("mix_into_ out int32", lambda: into_args(out=torch.zeros(B, 3, H, W, dtype=torch.int32)), TypeError,
     r"out: expected dtype uint8, float32, bfloat16 or float16, got int32$"),
    ("mix_into_ images float64", lambda: into_args(images=make_images(dtype=torch.float64)), TypeError,
     r"images: expected dtype uint8 or float32, got float64$"),
    ("mix_into_ scale float64", lambda: into_args(scale=torch.ones(3, dtype=torch.float64)), TypeError,
     r"scale, bias: expected float32, got float64 and float32$"),
    ("mix_into_ scale of 2", lambda: into_args(scale=torch.ones(2)), ValueError,
     r"scale, bias: expected both empty or both of shape \(3,\), got \(2,\) and \(3,\)$"),
    ("mix_into_ scale NaN", lambda: into_args(scale=torch.tensor([1.0, NAN, 1.0])), ValueError,
     r"scale, bias: expected finite values, got scale\[1\] = nan and bias\[1\] = -1$"),
    ("collate_mix_ bias inf", lambda: into_args("collate_mix_", bias=torch.tensor([0.0, 0.0, -math.inf])), ValueError,
     r"scale, bias: expected finite values, got scale\[2\] = 2 and bias\[2\] = -inf$"),
    ("mix_into_ partner on meta", lambda: into_args(partner=torch.tensor([1, 0, 3, 2], device="meta")), ValueError,
     r"partner: expected a tensor on out's device cpu, got meta$"),
    ("collate_mix_ samples[2] on meta",
     lambda: into_args("collate_mix_", images=[s.to(META) if i == 2 else s for i, s in enumerate(make_images().unbind(0))]),
     ValueError, r"samples\[2\]: expected a tensor on out's device cpu, got meta$"),
    ("collate_mix_ samples[1] of another shape",
     lambda: into_args("collate_mix_", images=[s[:, :-1] if i == 1 else s for i, s in enumerate(make_images().unbind(0))]),
     ValueError, r"samples\[1\]: expected float32 of shape \(3, 8, 8\) like samples\[0\], got float32 of shape \(3, 7, 8\)$"),
    ("collate_mix_ empty scale on meta",
     lambda: into_args("collate_mix_", scale=torch.empty(0, device="meta"), bias=torch.empty(0)), ValueError,
     r"scale, bias: expected tensors on out's device cpu, got meta and cpu$"),
    ("collate_mix_ box past W", lambda: into_args("collate_mix_", box=torch.tensor([[0, 0, 0, 0], [2, 6, 1, 9], [0, 0, 0, 0],
                                                                                    [0, 0, 0, 0]])),
     ValueError, r"box\[1\]: .*got \(2, 6, 1, 9\)$"),
]


@requires_cpp
@requires_numba
@pytest.mark.parametrize("make, error, message", [case[1:] for case in SAME_REFUSAL], ids=[case[0] for case in SAME_REFUSAL])
def test_cpp_numba_and_torch_refuse_the_same_input_with_the_same_exception_and_message(make, error, message):
    outcomes = {}
    for backend in ("torch.ops.fastmix", "cpp", "numba", "torch"):
        op_name, args = make()
        tensors = [t for a in args for t in (a if isinstance(a, list) else [a]) if isinstance(t, torch.Tensor)]
        before = [raw_bytes(t) for t in tensors]
        with pytest.raises((ValueError, TypeError)) as caught:
            getattr(ops_of(backend), op_name)(*args)
        assert [raw_bytes(t) for t in tensors] == before, f"{backend}: a refused call must leave every input as it was"
        outcomes[backend] = (caught.type, str(caught.value).splitlines()[0])
    assert len(set(outcomes.values())) == 1, outcomes
    assert outcomes["numba"][0] is error
    assert re.match(message, outcomes["numba"][1]), outcomes["numba"][1]


@pytest.mark.parametrize("backend", [NUMBA, "torch"])
@pytest.mark.parametrize("hwc", [None, 0])
def test_the_python_ops_take_a_falsy_hwc_as_the_compiled_op_does(backend, hwc):
    """torch.ops.fastmix.mix_into_ takes any value that converts to bool (None, 0); the numba op
    used to fail on int(None) with a TypeError that named nothing."""
    out, expected = torch.zeros(B, 3, H, W), torch.zeros(B, 3, H, W)
    op(backend).mix_into_(out, make_images(), *valid_params().as_tuple(), *NO_AFFINE, hwc)
    op("torch").mix_into_(expected, make_images(), *valid_params().as_tuple(), *NO_AFFINE, False)
    assert torch.equal(out, expected)


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
