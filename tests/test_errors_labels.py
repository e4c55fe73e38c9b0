"""Labels and targets: what Mixup(...)(images, labels), fastmix.mix_targets and the raw mix_targets op
refuse before anything is written (batch size, class indices out of range, dtypes, shapes, devices,
sparse layouts, bad lam and kind values, more classes than targets can have), with a message that
names the argument; and label values are read on the CPU only.

Read each table as a specification: (what is wrong, the exception, how its message begins: the
argument's name, as a regex)."""
import math

import pytest
import torch

import fastmix
from fastmix import MixParams

from .helpers import (B, C, CUTMIX_ON, EVERY_BACKEND, MIXUP_ONLY, NAN, assert_call_refused, edit, good_params, op, same_sample,
                      sample_snapshot, small_images, small_labels, valid_params)


# ---------------------------------------------------------------------------------------------
# Mixup(...)(images, labels): the labels, checked before anything is sampled or written
# ---------------------------------------------------------------------------------------------

BAD_LABEL_CALLS = [
    # (id, Mixup kwargs, images, labels, error, message fragment)
    ("fewer labels", MIXUP_ONLY, small_images, lambda: small_labels((1, 2, 3)), ValueError, "labels: expected batch size 4"),
    ("more labels", CUTMIX_ON, small_images, lambda: small_labels((1, 2, 3, 4, 5)), ValueError, "labels: .*batch size"),
    ("fewer dense rows", MIXUP_ONLY, small_images, lambda: torch.rand(3, C), ValueError, "labels: .*batch size"),
    ("class index < 0", MIXUP_ONLY, small_images, lambda: small_labels((1, 2, -1, 4)), ValueError, r"labels\[2\]: .*got -1"),
    ("class index == C", MIXUP_ONLY, small_images, lambda: small_labels((1, C, 2, 4)), ValueError, r"labels\[1\]: .*num_classes=10"),
    ("class index > C", CUTMIX_ON, small_images, lambda: small_labels((1, 2, 3, 99)), ValueError, r"labels\[3\]"),
    ("labels 1-D float", MIXUP_ONLY, small_images, lambda: small_labels(dtype=torch.float32), TypeError, "labels: expected integer class indices for 1-D labels, got float32"),
    ("labels 1-D float64", CUTMIX_ON, small_images, lambda: small_labels(dtype=torch.float64), TypeError, "labels:"),
    ("labels 1-D bool", MIXUP_ONLY, small_images, lambda: small_labels((1, 0, 1, 0), torch.bool), TypeError, "labels:"),
    ("labels complex", MIXUP_ONLY, small_images, lambda: torch.rand(B, C, dtype=torch.complex64), TypeError, "labels:"),
    ("dense too narrow", MIXUP_ONLY, small_images, lambda: torch.rand(B, C - 1), ValueError, "labels: .*num_classes=10"),
    ("dense too wide", CUTMIX_ON, small_images, lambda: torch.rand(B, C + 1), ValueError, "labels: .*num_classes=10"),
    ("labels 3-D", MIXUP_ONLY, small_images, lambda: torch.rand(B, C, 1), ValueError, "labels:"),
    ("labels 0-D", MIXUP_ONLY, small_images, lambda: torch.tensor(1), ValueError, "labels:"),
    ("labels a list", MIXUP_ONLY, small_images, lambda: [1, 2, 3, 4], TypeError, "labels:"),
    ("labels on another device", MIXUP_ONLY, small_images, lambda: small_labels().to("meta"), ValueError, "labels: .*device"),
    ("dense labels on another device", CUTMIX_ON, small_images, lambda: torch.rand(B, C, device="meta"), ValueError, "labels: .*device"),
]


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize(
    "kwargs, images, labels, error, message", [case[1:] for case in BAD_LABEL_CALLS], ids=[case[0] for case in BAD_LABEL_CALLS]
)
def test_bad_call_is_refused_and_writes_nothing(mode, kwargs, images, labels, error, message):
    assert_call_refused(mode, kwargs, images, labels, error, message)


# ---------------------------------------------------------------------------------------------
# Sparse and meta labels: refused by name on every backend
# ---------------------------------------------------------------------------------------------

BAD_LABEL_TENSORS = [
    # (id, labels, error, message)
    ("sparse class indices", lambda: small_labels().to_sparse(), TypeError,
     r"labels: expected a strided \(dense\) tensor, got layout torch\.sparse_coo$"),
    ("sparse dense targets", lambda: torch.eye(C)[small_labels()].to_sparse(), TypeError,
     r"labels: expected a strided \(dense\) tensor, got layout torch\.sparse_coo$"),
    ("CSR dense targets", lambda: torch.eye(C)[small_labels()].to_sparse_csr(), TypeError,
     r"labels: expected a strided \(dense\) tensor, got layout torch\.sparse_csr$"),
    ("meta class indices", lambda: small_labels().to("meta"), ValueError, r"labels: expected a tensor on the images' device cpu, got meta$"),
    ("meta dense targets", lambda: torch.rand(B, C, device="meta"), ValueError, r"labels: expected a tensor on the images' device cpu"),
]


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("labels, error, message", [case[1:] for case in BAD_LABEL_TENSORS], ids=[case[0] for case in BAD_LABEL_TENSORS])
def test_sparse_and_meta_labels_are_refused_by_name_on_every_backend(backend, labels, error, message):
    """Sparse labels used to raise NotImplementedError (no sparse kernel for a comparison or for
    fastmix::mix_targets)."""
    images, labels = small_images(), labels()
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


def test_label_values_are_read_on_the_cpu_only():
    """Off the CPU, fastmix.Mixup checks the labels' shape, dtype and device but never reads their
    values (a GPU read would stall the stream every batch): meta tensors, which have no values and
    raise on any read, pass the same checks."""
    from fastmix.targets import check_labels

    meta = torch.device("meta")
    check_labels(torch.empty(4, dtype=torch.int64, device=meta), 4, meta, 10)
    check_labels(torch.empty(4, 10, device=meta), 4, meta, 10, multi_label=True)
    with pytest.raises(ValueError, match=r"labels\[1\]: expected a class index in \[0, 10\)"):
        check_labels(torch.tensor([0, 10, 2, 3]), 4, torch.device("cpu"), 10)
    with pytest.raises(ValueError, match="labels: expected dense multi-label targets of shape"):
        check_labels(torch.empty(4, dtype=torch.int64, device=meta), 4, meta, 10, multi_label=True)


# ---------------------------------------------------------------------------------------------
# fastmix.mix_targets and the raw mix_targets op: their own arguments, the params' values, the
# number of classes
# ---------------------------------------------------------------------------------------------


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


BAD_TARGET_PARAMS = [
    # (id, change to good_params(), message of the op)
    ("lam NaN", edit("lam", 0, NAN), r"lam\[0\]: expected a value in \[0, 1\], got nan"),
    ("lam 2.0", edit("lam", 1, 2.0), r"lam\[1\]: expected a value in \[0, 1\], got 2"),
    ("lam < 0", edit("lam", 2, -0.5), r"lam\[2\]: expected a value in \[0, 1\], got -0\.5"),
    ("lam inf on an untouched sample", edit("lam", 3, math.inf), r"lam\[3\]: expected a value in \[0, 1\], got inf"),
    ("kind 255", edit("kind", 0, 255), r"kind\[0\]: expected 0 \(none\), 1 \(blend\), 2 \(paste\), 3 \(mask\), 4 \(resize\) or 5 \(resize nearest\), got 255"),
    ("kind 6", edit("kind", 2, 6), r"kind\[2\]: expected 0 \(none\), 1 \(blend\), 2 \(paste\), 3 \(mask\), 4 \(resize\) or 5 \(resize nearest\), got 6"),
    ("partner == B", edit("partner", 1, B), r"partner\[1\]: expected an index in \[0, 4\), got 4"),
]


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("change, message", [case[1:] for case in BAD_TARGET_PARAMS], ids=[case[0] for case in BAD_TARGET_PARAMS])
@pytest.mark.parametrize("dense", [False, True], ids=["indices", "dense"])
def test_the_targets_op_refuses_bad_lam_and_kind_values_by_name(backend, change, message, dense):
    """The raw mix_targets checks the values mix_ checks (no targets 2.0 and -1.0 from lam 2.0)."""
    labels = torch.eye(C)[small_labels()] if dense else small_labels()
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


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("num_classes", [2**31, 2**40, 2**62])
def test_the_targets_op_refuses_more_classes_than_targets_can_have(backend, num_classes):
    labels, fields = small_labels(), good_params()
    message = rf"^num_classes: expected an int in \[1, 2147483647\], got {num_classes}$"
    with pytest.raises(ValueError, match=message):
        op(backend).mix_targets(labels, fields["partner"], fields["lam"], fields["kind"], num_classes, 0.0)
    with pytest.raises(ValueError, match=message):
        fastmix.mix_targets(labels, valid_params(), num_classes, backend=backend)
    assert torch.equal(labels, small_labels())
