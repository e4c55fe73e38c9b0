"""fastmix.transforms.MixUp / CutMix do what torchvision.transforms.v2.MixUp / CutMix do, on every
backend: for the lambda and box a transform drew (``last_params``, ``last_lam``, ``last_center``),
the images and targets equal torchvision's formulas computed here in plain torch on a clone; the
draws have torchvision's distributions; torchvision's input forms work; bad input is refused by
name with the caller's tensors untouched; the images are mixed in place unless inplace=False.

torchvision's formulas (torchvision/transforms/v2/_augment.py), with lam the drawn lambda:
    MixUp   images  = images.roll(1, 0) * (1 - lam) + images * lam
    CutMix  images[..., y0:y1, x0:x1] = images.roll(1, 0)[..., y0:y1, x0:x1], with the box of
            cutmix_box below and lam corrected to 1 - box area / (H * W)
    both    targets = one_hot.roll(1, 0) * (1 - lam) + one_hot * lam  (one_hot as float32)
torchvision is not installed here; the formulas are written out below."""
import math
import os
import pickle

import numpy as np
import pytest
import scipy.stats
import torch

from fastmix import MixKind
from fastmix.transforms import CutMix, MixUp

from .helpers import COMPILED_BACKENDS

BACKENDS = COMPILED_BACKENDS + ["torch"]
TRANSFORMS = [MixUp, CutMix]
C = 10  # classes
FLOAT_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def images_of(shape, dtype=torch.float32, seed=0, channels_last=False):
    generator = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    else:
        x = (torch.rand(shape, generator=generator, dtype=torch.float64) * 4 - 2).to(dtype)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def labels_of(batch, num_classes=C, seed=1):
    return torch.randint(0, num_classes, (batch,), generator=torch.Generator().manual_seed(seed))


def drawn_lam(transform):
    """The lambda the last call used, as the Python float torchvision's formula takes."""
    return float(transform.last_params.lam[0])


# -- torchvision's formulas, in plain torch ---------------------------------------------------------


def torchvision_mixup_images(images, lam):
    return images.roll(1, 0) * (1.0 - lam) + images * lam


def torchvision_box(lam, center_y, center_x, height, width):
    """(y0, y1, x0, x1) as torchvision.transforms.v2.CutMix computes (x1, y1, x2, y2)."""
    r = 0.5 * math.sqrt(1.0 - lam)
    half_w, half_h = int(r * width), int(r * height)
    x1, y1 = max(center_x - half_w, 0), max(center_y - half_h, 0)
    x2, y2 = min(center_x + half_w, width), min(center_y + half_h, height)
    return y1, y2, x1, x2


def torchvision_cutmix_images(images, box):
    y0, y1, x0, x1 = box
    out = images.clone()
    out[..., y0:y1, x0:x1] = images.roll(1, 0)[..., y0:y1, x0:x1]
    return out


def torchvision_targets(labels, num_classes, lam):
    one_hot = torch.nn.functional.one_hot(labels, num_classes).float() if labels.dim() == 1 else labels
    if not one_hot.is_floating_point():
        one_hot = one_hot.float()
    return one_hot.roll(1, 0) * (1.0 - lam) + one_hot * lam


def ulp(values, dtype):
    """The spacing of ``dtype`` numbers at |values| (float32 tensor): 2^(e - 1 - mantissa bits)."""
    mantissa = {torch.float16: 10, torch.bfloat16: 7}[dtype]
    smallest = {torch.float16: 2.0**-24, torch.bfloat16: 2.0**-133}[dtype]
    exponent = torch.frexp(values.abs()).exponent.to(torch.float32)
    return torch.clamp(torch.pow(2.0, exponent - 1 - mantissa), min=smallest)


# ---------------------------------------------------------------------------------------------
# The result equals torchvision's formula for the lambda and box drawn
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch", [2, 3, 8, 17])
@pytest.mark.parametrize("channels_last", [False, True])
def test_mixup_is_torchvisions_formula_bit_for_bit(backend, dtype, batch, channels_last):
    """float32 and float64: each product rounded in the images' dtype, then summed, as torch's
    ``roll(1, 0).mul_(1 - lam).add_(x.mul(lam))`` does (torch rounds the scalar lam to the tensor's
    dtype; fastmix's lam is float32 already): the same bits, not merely within an ulp."""
    mixup = MixUp(alpha=0.8, num_classes=C, seed=batch, backend=backend)
    for trial in range(5):
        images = images_of((batch, 3, 9, 7), dtype, seed=trial, channels_last=channels_last)
        labels = labels_of(batch, seed=trial)
        original = images.clone()
        out, targets = mixup(images, labels)
        lam = drawn_lam(mixup)
        assert lam == np.float32(mixup.last_lam)
        assert torch.equal(out, torchvision_mixup_images(original, lam))
        assert targets.dtype == torch.float32 and targets.shape == (batch, C)
        assert torch.equal(targets, torchvision_targets(labels, C, lam))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_mixup_half_precision_is_rounded_once(backend, dtype):
    """float16 / bfloat16: fastmix blends in float32 and rounds once to the images' dtype;
    torchvision rounds each product and then the sum to half precision. So about a third of the
    values differ (measured: 34%), each by at most 2 ulps of the larger product (bound: 3, from
    torchvision's 2 and fastmix's 1), and fastmix's values are the closer to the exact blend."""
    mixup = MixUp(alpha=1.0, num_classes=C, seed=3, backend=backend)
    for trial in range(5):
        images = images_of((8, 3, 16, 16), dtype, seed=trial)
        original = images.clone()
        out, _ = mixup(images, labels_of(8))
        lam = drawn_lam(mixup)
        own, theirs = original.float(), original.roll(1, 0).float()
        assert torch.equal(out, (own * lam + theirs * (1 - np.float32(lam))).to(dtype))
        torchvision = torchvision_mixup_images(original, lam)
        larger = torch.maximum((own * lam).abs(), (theirs * (1 - lam)).abs())
        assert bool(((out.float() - torchvision.float()).abs() <= 3 * ulp(larger, dtype)).all())
        exact = original.double() * lam + original.roll(1, 0).double() * (1 - lam)
        assert (out.double() - exact).abs().mean() < (torchvision.double() - exact).abs().mean()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.uint8] + FLOAT_DTYPES)
@pytest.mark.parametrize("batch", [2, 3, 8, 17])
@pytest.mark.parametrize("channels_last", [False, True])
def test_cutmix_is_torchvisions_formula_bit_for_bit(backend, dtype, batch, channels_last):
    """A paste copies values: every dtype matches torchvision exactly. H != W, so a swapped axis
    shows; the box is torchvision's for the drawn lambda and centre; lambda is 1 - area."""
    height, width = 12, 20
    cutmix = CutMix(alpha=1.0, num_classes=C, seed=batch, backend=backend)
    for trial in range(8):
        images = images_of((batch, 3, height, width), dtype, seed=trial, channels_last=channels_last)
        labels = labels_of(batch, seed=trial)
        original = images.clone()
        out, targets = cutmix(images, labels)
        center = cutmix.last_center
        box = torchvision_box(cutmix.last_lam, center.y, center.x, height, width)
        params = cutmix.last_params
        assert params.box.tolist() == [list(box)] * batch
        assert bool((params.kind == MixKind.PASTE).all())
        area = (box[1] - box[0]) * (box[3] - box[2])
        lam = drawn_lam(cutmix)
        assert lam == np.float32(1.0 - area / (height * width))
        assert torch.equal(out, torchvision_cutmix_images(original, box))
        assert targets.dtype == torch.float32
        assert torch.equal(targets, torchvision_targets(labels, C, lam))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize(
    "form",
    ["float32 probabilities", "int64 one-hot", "float64 probabilities", "float16 probabilities"],
)
def test_dense_labels_are_mixed_as_torchvision_mixes_them(backend, transform, form):
    """(B, C) labels: num_classes may be None; integer labels become float32, floating ones keep
    their dtype (as torchvision's ``label.float()`` only for non-float labels); the same bits."""
    batch = 6
    generator = torch.Generator().manual_seed(4)
    if form == "int64 one-hot":
        labels = torch.nn.functional.one_hot(labels_of(batch), C)
    else:
        dtype = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16}[form.split()[0]]
        labels = torch.rand(batch, C, generator=generator, dtype=torch.float64).softmax(-1).to(dtype)
    t = transform(num_classes=None, seed=2, backend=backend)
    _, targets = t(images_of((batch, 3, 8, 8)), labels)
    expected = torchvision_targets(labels, C, drawn_lam(t))
    assert targets.dtype == expected.dtype and torch.equal(targets, expected)
    # num_classes given and equal to C works the same
    _, targets = transform(num_classes=C, seed=2, backend=backend)(images_of((batch, 3, 8, 8)), labels)
    assert torch.equal(targets, expected)


# ---------------------------------------------------------------------------------------------
# The draws: lambda ~ Beta(alpha, alpha), uniform box centre, corrected lambda = 1 - area
# ---------------------------------------------------------------------------------------------

DRAWS = 2000


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("alpha", [0.2, 1.0])
def test_mixup_lambda_is_beta_distributed(backend, alpha):
    mixup = MixUp(alpha=alpha, num_classes=C, seed=7, backend=backend)
    images, labels = images_of((2, 1, 2, 2)), labels_of(2)
    lams = []
    for _ in range(DRAWS):
        mixup(images, labels)
        lams.append(mixup.last_lam)
        assert drawn_lam(mixup) == np.float32(mixup.last_lam)
    assert scipy.stats.kstest(lams, scipy.stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    # the test can tell a wrong alpha apart
    wrong = 1.0 if alpha == 0.2 else 0.2
    assert scipy.stats.kstest(lams, scipy.stats.beta(wrong, wrong).cdf).pvalue < 1e-3


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("alpha", [0.2, 1.0])
def test_cutmix_draws_are_torchvisions(backend, alpha):
    """lambda ~ Beta(alpha, alpha); the centre uniform over rows and over columns (chi-square);
    the box is torchvision's for that lambda and centre; the corrected lambda is 1 - area."""
    height, width = 7, 11
    cutmix = CutMix(alpha=alpha, num_classes=C, seed=8, backend=backend)
    images, labels = images_of((2, 1, height, width)), labels_of(2)
    lams, rows, cols = [], [], []
    for _ in range(DRAWS):
        cutmix(images, labels)
        lam, (cy, cx) = cutmix.last_lam, cutmix.last_center
        lams.append(lam)
        rows.append(cy)
        cols.append(cx)
        y0, y1, x0, x1 = torchvision_box(lam, cy, cx, height, width)
        assert cutmix.last_params.box[0].tolist() == [y0, y1, x0, x1]
        assert drawn_lam(cutmix) == np.float32(1.0 - (y1 - y0) * (x1 - x0) / (height * width))
    assert scipy.stats.kstest(lams, scipy.stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    assert scipy.stats.chisquare(np.bincount(rows, minlength=height)).pvalue > 1e-3
    assert scipy.stats.chisquare(np.bincount(cols, minlength=width)).pvalue > 1e-3
    assert min(rows) == 0 and max(rows) == height - 1 and min(cols) == 0 and max(cols) == width - 1


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_same_seed_same_draws_other_seed_other_draws(transform):
    def draws(seed):
        t = transform(num_classes=C, seed=seed, backend="torch")
        images, labels = images_of((3, 1, 9, 9)), labels_of(3)
        out = []
        for _ in range(5):
            t(images, labels)
            out.append((t.last_lam, t.last_params.box.tolist()))
        return out

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_stream_is_renewed_in_a_forked_process_and_after_pickling(transform, monkeypatch):
    """Each process draws from its own stream: a new pid (a forked DataLoader worker) makes a new
    generator, and a pickled copy (a spawned worker) starts its own."""
    images, labels = images_of((2, 1, 4, 4)), labels_of(2)
    t = transform(num_classes=C, seed=5)
    t(images, labels)
    first_lam = t.last_lam
    first = t.generator
    assert t.generator is first
    copy = pickle.loads(pickle.dumps(t))
    copy(images, labels)
    assert copy.last_lam == first_lam, "a copy starts the stream of its seed afresh"
    monkeypatch.setattr(os, "getpid", lambda: -12345)
    assert t.generator is not first
    t(images, labels)
    assert t.last_lam == first_lam, "so does a forked process"


# ---------------------------------------------------------------------------------------------
# Batch sizes and dtypes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_a_batch_of_one_is_left_alone_with_one_hot_targets(backend, transform):
    """roll(1, 0) pairs the only sample with itself: the image keeps its exact values and the
    target is the exact one-hot label (torchvision's x*(1-lam) + x*lam may move an ulp)."""
    t = transform(alpha=1.0, num_classes=C, seed=0, backend=backend)
    for trial in range(10):
        images = images_of((1, 3, 6, 5), seed=trial)
        original = images.clone()
        labels = torch.tensor([trial % C])
        out, targets = t(images, labels)
        assert out is images and torch.equal(images, original)
        assert torch.equal(targets, torch.nn.functional.one_hot(labels, C).float())
        assert t.last_params.partner.tolist() == [0]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_an_empty_batch_comes_back_with_empty_targets(backend, transform):
    images = torch.empty(0, 3, 4, 4)
    out, targets = transform(num_classes=C, backend=backend)(images, torch.empty(0, dtype=torch.int64))
    assert out is images and targets.shape == (0, C) and targets.dtype == torch.float32


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch", [2, 3, 5, 64])
def test_partner_of_sample_i_is_sample_i_minus_one(backend, batch):
    t = MixUp(num_classes=C, seed=0, backend=backend)
    t(images_of((batch, 1, 2, 2)), labels_of(batch))
    assert t.last_params.partner.tolist() == [(i - 1) % batch for i in range(batch)]
    assert bool(t.last_params.mixed().all())


@pytest.mark.parametrize("backend", BACKENDS)
def test_mixup_refuses_uint8_cutmix_takes_it(backend):
    """torchvision's MixUp fails on uint8 (an in-place float multiply of a uint8 tensor); its
    CutMix pastes uint8. fastmix refuses uint8 for MixUp with a TypeError before writing."""
    images = images_of((4, 3, 8, 8), torch.uint8)
    original = images.clone()
    with pytest.raises(TypeError, match="^images: .*uint8"):
        MixUp(num_classes=C, backend=backend)(images, labels_of(4))
    assert torch.equal(images, original)
    out, _ = CutMix(num_classes=C, backend=backend)(images, labels_of(4))
    assert out is images


# ---------------------------------------------------------------------------------------------
# Input forms: positional, one tuple or list, a dict, a custom labels_getter
# ---------------------------------------------------------------------------------------------


def reference_run(transform, images, labels):
    """What the positional call gives for the same seed (on clones)."""
    return transform(num_classes=C, seed=11, backend="torch")(images.clone(), labels.clone())


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_input_forms(transform):
    images, labels = images_of((4, 3, 8, 8)), labels_of(4)
    want_images, want_targets = reference_run(transform, images, labels)

    def fresh():
        return transform(num_classes=C, seed=11, backend="torch")

    def check(out_images, out_targets):
        assert torch.equal(out_images, want_images) and torch.equal(out_targets, want_targets)

    # positional and one tuple: a tuple back
    x = images.clone()
    out = fresh()(x, labels)
    assert type(out) is tuple and len(out) == 2 and out[0] is x
    check(*out)
    out = fresh()((images.clone(), labels))
    assert type(out) is tuple
    check(*out)
    # a list, with an extra item that passes through
    meta = {"paths": ["a", "b", "c", "d"], "ids": torch.arange(4)}
    out = fresh()([images.clone(), labels, meta])
    assert type(out) is list and out[2]["paths"] == meta["paths"] and out[2]["ids"] is meta["ids"]
    check(out[0], out[1])
    # a dict: "labels" (any case), or a key holding "label"; other keys untouched, order kept
    for key in ["labels", "Labels", "class_label"]:
        extra = torch.arange(4)
        out = fresh()({"image": images.clone(), key: labels, "index": extra, "name": "batch"})
        assert list(out) == ["image", key, "index", "name"] and out["index"] is extra and out["name"] == "batch"
        check(out["image"], out[key])
    # a pair whose second item is a dict (torchvision's detection-style sample)
    out = fresh()((images.clone(), {"labels": labels, "ids": torch.arange(4)}))
    check(out[0], out[1]["labels"])
    # labels listed before the images: the images are still found (torchvision would mix nothing)
    out = fresh()({"labels": labels, "image": images.clone()})
    check(out["image"], out["labels"])
    # a custom labels_getter, in a nested sample
    t = transform(num_classes=C, seed=11, backend="torch", labels_getter=lambda s: s["target"]["cls"])
    out = t({"pixels": images.clone(), "target": {"cls": labels, "box": "none"}})
    assert out["target"]["box"] == "none"
    check(out["pixels"], out["target"]["cls"])


# ---------------------------------------------------------------------------------------------
# Bad input: refused by name, before anything is drawn or written
# ---------------------------------------------------------------------------------------------

NAN = float("nan")
BAD_KNOBS = [
    (dict(alpha=0.0), ValueError, "alpha:"),
    (dict(alpha=-1.0), ValueError, "alpha:"),
    (dict(alpha=NAN), ValueError, "alpha:"),
    (dict(alpha=math.inf), ValueError, "alpha:"),
    (dict(alpha="1.0"), TypeError, "alpha:"),
    (dict(alpha=None), TypeError, "alpha:"),
    (dict(alpha=True), TypeError, "alpha:"),
    (dict(num_classes=0), ValueError, "num_classes:"),
    (dict(num_classes=2**31), ValueError, "num_classes:"),  # more than any targets tensor can have
    (dict(num_classes=-5), ValueError, "num_classes:"),
    (dict(num_classes=10.0), TypeError, "num_classes:"),
    (dict(num_classes="10"), TypeError, "num_classes:"),
    (dict(num_classes=True), TypeError, "num_classes:"),
    (dict(labels_getter=None), ValueError, "labels_getter:"),
    (dict(labels_getter="labels"), ValueError, "labels_getter:"),
    (dict(backend="gpu"), ValueError, "backend:"),
    (dict(seed="1"), TypeError, "seed:"),
    (dict(inplace="yes"), TypeError, "inplace:"),
]


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("kwargs, error, message", BAD_KNOBS, ids=[repr(k) for k, _, _ in BAD_KNOBS])
def test_bad_knob_is_refused_by_name(transform, kwargs, error, message):
    with pytest.raises(error, match="^" + message):
        transform(**kwargs)


def test_knobs_are_keyword_only_with_torchvisions_defaults():
    for transform in TRANSFORMS:
        with pytest.raises(TypeError):
            transform(1.0)
        t = transform()
        assert t.alpha == 1.0 and t.num_classes is None and t.labels_getter == "default" and t.inplace


def test_alpha_set_later_is_checked_and_used():
    t = MixUp(num_classes=C, seed=0)
    with pytest.raises(ValueError, match="^alpha:"):
        t.alpha = 0
    t.alpha = 1e-6  # Beta(1e-6, 1e-6): lambdas at the ends
    for _ in range(20):
        t(images_of((2, 1, 2, 2)), labels_of(2))
        assert min(t.last_lam, 1 - t.last_lam) < 1e-2


B = 4
IMAGES = (B, 3, 8, 8)
BAD_CALLS = [
    # (what is wrong, transform kwargs, images, labels, exception, message)
    ("labels 3-D", {}, images_of(IMAGES), torch.zeros(B, 1, 1, dtype=torch.int64), ValueError, "labels:"),
    ("labels 0-D", {}, images_of(IMAGES), torch.tensor(1), ValueError, "labels:"),
    ("labels float (B,)", {}, images_of(IMAGES), torch.zeros(B), TypeError, "labels:"),
    ("labels bool (B,)", {}, images_of(IMAGES), torch.zeros(B, dtype=torch.bool), TypeError, "labels:"),
    ("labels complex", {}, images_of(IMAGES), torch.zeros(B, C, dtype=torch.complex64), TypeError, "labels:"),
    ("labels a list", {}, images_of(IMAGES), [1, 2, 3, 4], TypeError, "labels:"),
    ("label = num_classes", {}, images_of(IMAGES), torch.tensor([0, C, 1, 2]), ValueError, r"labels\[1\]:"),
    ("label negative", {}, images_of(IMAGES), torch.tensor([0, 1, 2, -1]), ValueError, r"labels\[3\]:"),
    ("(B, C) with C != num_classes", {}, images_of(IMAGES), torch.zeros(B, C + 1), ValueError, "labels:"),
    ("(B, 0) labels", dict(num_classes=None), images_of(IMAGES), torch.zeros(B, 0), ValueError, "labels:"),
    ("(B,) without num_classes", dict(num_classes=None), images_of(IMAGES), labels_of(B), ValueError, "num_classes:"),
    ("batch sizes differ", {}, images_of(IMAGES), labels_of(B + 1), ValueError, "labels:"),
    ("images 3-D", {}, images_of((B, 8, 8)), labels_of(B), ValueError, "images:"),
    ("images 5-D", {}, images_of((B, 2, 3, 8, 8)), labels_of(B), ValueError, "images:"),
    ("images 2-D", {}, images_of((B, 8)), labels_of(B), ValueError, "images:"),
    ("images int32", {}, images_of(IMAGES).mul(100).to(torch.int32), labels_of(B), TypeError, "images:"),
    ("images bool", {}, images_of(IMAGES) > 0, labels_of(B), TypeError, "images:"),
    ("images a list", {}, [[1.0]], labels_of(B), ValueError, "images:"),  # no tensor besides the labels
    ("images require grad", {}, images_of(IMAGES).requires_grad_(), labels_of(B), ValueError, "images:"),
    ("images expanded", {}, images_of((1, 3, 8, 8)).expand(IMAGES), labels_of(B), ValueError, "images:"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize(
    "what, kwargs, images, labels, error, message", BAD_CALLS, ids=[case[0] for case in BAD_CALLS]
)
def test_bad_call_is_refused_by_name_and_changes_nothing(backend, transform, what, kwargs, images, labels, error,
                                                         message):
    t = transform(**{"num_classes": C, "seed": 3, "backend": backend, **kwargs})
    images_before = images.clone() if isinstance(images, torch.Tensor) else images
    labels_before = labels.clone() if isinstance(labels, torch.Tensor) else labels
    with pytest.raises(error, match="^" + message):
        t(images, labels)
    if isinstance(images, torch.Tensor):
        assert torch.equal(images.detach(), images_before.detach())
    if isinstance(labels, torch.Tensor):
        assert torch.equal(labels, labels_before)
    # nothing was drawn: the next batch gets the stream's first draw
    assert t.last_params is None and t.last_lam is None
    fresh = transform(num_classes=C, seed=3, backend="torch")
    good_images, good_labels = images_of(IMAGES), labels_of(B)
    t.num_classes = C
    t(good_images.clone(), good_labels)
    fresh(good_images.clone(), good_labels)
    assert t.last_lam == fresh.last_lam


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_bad_samples_are_refused_by_name(transform):
    t = transform(num_classes=C, backend="torch")
    images = images_of(IMAGES)
    original = images.clone()
    cases = [
        (lambda: t(), TypeError, f"{transform.__name__}:"),
        (lambda: t((images,)), ValueError, "labels_getter:"),  # a 1-tuple has no second item
        (lambda: t({"image": images, "target": labels_of(B)}), ValueError, "labels_getter:"),  # no label-like key
        (lambda: t((images, "cat")), TypeError, "labels:"),
        (lambda: t("cat"), ValueError, "labels_getter:"),  # neither a tuple nor a dict
        (lambda: t(images), ValueError, "labels:"),  # a batch alone: the default getter finds it as the labels
        (lambda: t({"labels": labels_of(B)}), ValueError, "images:"),  # no images
    ]
    for call, error, message in cases:
        with pytest.raises(error, match="^" + message):
            call()
        assert torch.equal(images, original)
    elsewhere = transform(num_classes=C, labels_getter=lambda sample: labels_of(B))  # not an item of the sample
    with pytest.raises(ValueError, match="^labels_getter:"):
        elsewhere(images, labels_of(B))
    assert torch.equal(images, original)


def test_cutmix_refuses_images_without_pixels():
    images = torch.empty(B, 3, 8, 0)
    with pytest.raises(ValueError, match="^images:"):
        CutMix(num_classes=C)(images, labels_of(B))
    out, _ = MixUp(num_classes=C)(images, labels_of(B))  # nothing to blend: returned as is
    assert out is images


# ---------------------------------------------------------------------------------------------
# In place, or a clone with inplace=False
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("channels_last", [False, True])
def test_images_are_mixed_in_place_or_in_a_clone(backend, transform, channels_last):
    images = images_of((6, 3, 10, 12), channels_last=channels_last)
    original = images.clone()
    pointer, strides = images.data_ptr(), images.stride()

    out, targets_in_place = transform(num_classes=C, seed=9, backend=backend)(images, labels_of(6))
    assert out is images and images.data_ptr() == pointer and images.stride() == strides
    assert not torch.equal(images, original)

    copy = original.clone(memory_format=torch.preserve_format)
    out_clone, targets_clone = transform(num_classes=C, seed=9, backend=backend, inplace=False)(copy, labels_of(6))
    assert out_clone is not copy and out_clone.data_ptr() != copy.data_ptr()
    assert torch.equal(copy, original), "inplace=False leaves the input as it was"
    assert out_clone.stride() == strides, "the clone keeps the input's layout"
    assert torch.equal(out_clone, images) and torch.equal(targets_clone, targets_in_place)


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_inplace_false_takes_views_it_could_not_write(transform):
    """An expand()ed batch cannot be mixed in place (its samples share memory); a clone can."""
    images = images_of((1, 3, 8, 8)).expand(IMAGES)
    out, _ = transform(num_classes=C, inplace=False)(images, labels_of(B))
    assert out.shape == IMAGES and out.is_contiguous()


def test_repr_names_the_arguments():
    assert repr(MixUp(alpha=0.5, num_classes=3)) == (
        "MixUp(alpha=0.5, num_classes=3, labels_getter='default', seed=None, backend='auto', inplace=True)"
    )
    assert repr(CutMix()).startswith("CutMix(alpha=1.0, num_classes=None,")
