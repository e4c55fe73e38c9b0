"""Bad input is refused before anything is written: every bad argument raises ValueError or TypeError
with a message that names it, and the caller's tensors come back exactly as they were.

Read each table as a specification: (what is wrong, the exception, how its message begins: the
argument's name, as a regex)."""
import math

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
    # num_classes: an int >= 1
    (dict(num_classes=0), ValueError, "num_classes:"),
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
