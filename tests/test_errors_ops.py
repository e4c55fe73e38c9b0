"""The raw ops and the backends: fastmix.mix_ and torch.ops.fastmix.* check the MixParams in full
(the raw ops name their own arguments, partner where fastmix.mix_ says params.partner), refuse a
tensor on another device by name (the fake kernels included), refuse an out that shares memory with
what is read, and every backend (cpp, numba, torch) refuses the same input with the same exception
and message, leaving every input as it was.

Read each table as a specification: (what is wrong, the exception, how its message begins: the
argument's name, as a regex)."""
import math
import re

import numpy as np
import pytest
import torch

import fastmix
from fastmix import MixKind, MixParams

from .helpers import (B, C, CPP, EVERY_BACKEND, H, NAN, NO_AFFINE, NUMBA, W, assert_unchanged, clone, edit, good_params, op,
                      requires_cpp, requires_numba, small_images, small_labels, valid_params)


# ---------------------------------------------------------------------------------------------
# fastmix.mix_(images, params) and torch.ops.fastmix.mix_: the MixParams, checked in full
# ---------------------------------------------------------------------------------------------


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
    ("kind 6", edit("kind", 2, 6), r"params\.kind\[2\]: expected 0 \(none\), 1 \(blend\), 2 \(paste\), 3 \(mask\), 4 \(resize\) or 5 \(resize nearest\), got 6"),
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
    images = small_images(dtype=dtype)
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
    images = small_images()
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
    images = small_images((B, 12))
    before = images.clone()
    with pytest.raises(ValueError, match=r"^params\.kind\[1\]: paste \(CutMix\) needs images of shape \(B, \.\.\., H, W\)"):
        fastmix.mix_(images, MixParams(**good_params()), backend=backend)
    assert torch.equal(images, before)


@requires_cpp
def test_raw_op_refuses_paste_without_spatial_dims():
    images = small_images((B, 12))
    before = images.clone()
    with pytest.raises(ValueError, match=r"^kind\[1\]: paste \(CutMix\) needs images of shape \(B, \.\.\., H, W\), got images of shape \(4, 12\)"):
        torch.ops.fastmix.mix_(images, **good_params())
    assert torch.equal(images, before)


@requires_cpp
@pytest.mark.parametrize("dtype", [torch.bool, torch.int32, torch.int64, torch.complex64])
def test_raw_op_refuses_bad_image_dtypes(dtype):
    images = small_images(dtype=dtype)
    before = images.clone()
    with pytest.raises(TypeError, match="^images: expected dtype uint8, float16, bfloat16, float32 or float64, got"):
        torch.ops.fastmix.mix_(images, **good_params())
    assert torch.equal(images, before)


# ---------------------------------------------------------------------------------------------
# fastmix.mix_(images, params, backend): the arguments
# ---------------------------------------------------------------------------------------------

BAD_APPLY_ARGS = [
    # (id, images, params, backend, error, message fragment)
    ("images bool", lambda: small_images(dtype=torch.bool), valid_params, "auto", TypeError, "images: .*bool"),
    ("images int32", lambda: small_images(dtype=torch.int32), valid_params, "auto", TypeError, "images: .*int32"),
    ("images complex", lambda: small_images(dtype=torch.complex64), valid_params, "torch", TypeError, "images:"),
    ("images 1-D", lambda: small_images((B,)), valid_params, "auto", ValueError, "images:"),
    ("images need grad", lambda: small_images().requires_grad_(), valid_params, "auto", ValueError, "images:"),
    ("images a list", lambda: [0.0] * B, valid_params, "auto", TypeError, "images:"),
    ("params a tuple", small_images, lambda: tuple(good_params().values()), "auto", TypeError, "params: expected a fastmix.MixParams"),
    ("params a dict", small_images, good_params, "torch", TypeError, "params: expected a fastmix.MixParams"),
    ("params a list field", small_images, lambda: MixParams(**{**good_params(), "lam": [0.5] * B}), "auto", ValueError,
     r"params\.lam: .*list"),
    ("params of another batch", small_images, lambda: MixParams.identity(B + 1), "auto", ValueError, r"params\.partner: .*\(4,\)"),
    ("unknown backend", small_images, valid_params, "numpy", ValueError, "backend: expected one of"),
    ("backend not a str", small_images, valid_params, 1, ValueError, "backend:"),
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


def test_params_on_a_device_without_data_are_refused_by_name():
    images = torch.rand(4, 3, 8, 8)
    original = images.clone()
    with pytest.raises(ValueError, match="^params: "):
        fastmix.mix_(images, fastmix.MixParams.identity(4).to("meta"))
    assert torch.equal(images, original)


# ---------------------------------------------------------------------------------------------
# Out apart from every input: mix_into_ and collate_mix_ refuse images or samples that share
# memory with out
# ---------------------------------------------------------------------------------------------


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
    out = small_images()
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
def test_mix_into_refuses_images_in_another_storage_over_outs_memory(backend):
    """Two storages over one buffer (torch.from_numpy of overlapping numpy views): the addresses
    decide, not the storages."""
    n = B * 3 * H * W
    buffer = np.random.default_rng(3).random(n + 5, dtype=np.float32)
    out = torch.from_numpy(buffer[:n]).view(B, 3, H, W)
    images = torch.from_numpy(buffer[5:]).view(B, 3, H, W)
    before = buffer.copy()
    with pytest.raises(ValueError, match=r"^images: expected memory apart from out's"):
        op(backend).mix_into_(out, images, *valid_params().as_tuple(), *NO_AFFINE, False)
    assert np.array_equal(buffer, before)


# ---------------------------------------------------------------------------------------------
# Tensors on different devices: refused by name on every op and backend. The dispatcher sends a
# call with one meta tensor among CPU tensors to the Meta kernel (the fake kernels of
# fastmix/backends/extension.py), not to the CPU kernel, so the fakes check devices as the kernels do
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
        labels = torch.eye(C)[small_labels()] if dense else small_labels()
        labels = labels.to(META) if moved == "labels" else labels
        inputs = [labels, partner, lam, kind]
        return (lambda ops: ops.mix_targets(labels, partner, lam, kind, C, 0.1)), inputs, None
    images = small_images().to(META) if moved == "images" else small_images()
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
    labels = (torch.eye(C)[small_labels()] if dense else small_labels()).to(META)
    targets = ops.mix_targets(labels, partner, lam, kind, C, 0.1)
    assert targets.device == META and targets.shape == (B, C) and targets.dtype == torch.float32
    images, out = small_images().to(META), torch.empty(B, 3, H, W, device=META)
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
            torch.ops.fastmix.mix_targets(small_labels().to(cuda), fields[0], torch.ones(B), fields[2], C, 0.1)


# ---------------------------------------------------------------------------------------------
# The fallbacks refuse what the compiled ops refuse, in the same words: the numba and torch
# backends call the same Python checks, worded as csrc/checks.h words them
# ---------------------------------------------------------------------------------------------


def targets_args(labels=None, num_classes=C, smoothing=0.1, **fields):
    """mix_targets's arguments: good ones, with the changes given."""
    params = {**{k: v for k, v in good_params().items() if k != "box"}, **fields}
    labels = small_labels() if labels is None else labels
    return "mix_targets", (labels, *params.values(), num_classes, smoothing)


def mix_args(images=None, **fields):
    return "mix_", (small_images() if images is None else images, *{**good_params(), **fields}.values())


def plan_args(plan, plan_shape):
    """mix_'s arguments with a plan (torch.ops.fastmix.device_plan's bytes, or a bad one) and its shape."""
    name, args = mix_args()
    return name, (*args, plan, list(plan_shape))


def good_plan():
    return torch.ops.fastmix.device_plan(*good_params().values())


def into_args(op_name="mix_into_", out=None, images=None, scale=None, bias=None, hwc=False, **fields):
    out = torch.zeros(B, 3, H, W) if out is None else out
    images = small_images() if images is None else images
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
    ("labels 1-D float", lambda: targets_args(small_labels(dtype=torch.float32)), TypeError,
     r"labels: expected integer class indices for 1-D labels, got float32 \(pass dense targets as \(4, 10\)\)$"),
    ("labels 1-D bool", lambda: targets_args(small_labels((1, 0, 1, 0), torch.bool)), TypeError, r"labels: .*got bool"),
    ("labels 1-D float16", lambda: targets_args(small_labels(dtype=torch.float16)), TypeError, r"labels: .*got float16"),
    ("labels complex", lambda: targets_args(torch.zeros(B, C, dtype=torch.complex64)), TypeError,
     r"labels: expected real values, got complex64$"),
    ("labels 0-D", lambda: targets_args(torch.tensor(1)), ValueError,
     r"labels: expected class indices of shape \(B,\) or dense targets of shape \(B, 10\), got shape \(\)$"),
    ("labels 3-D", lambda: targets_args(torch.zeros(B, C, 1)), ValueError, r"labels: .*got shape \(4, 10, 1\)$"),
    ("dense labels too narrow", lambda: targets_args(torch.zeros(B, C - 1)), ValueError,
     r"labels: expected dense targets with num_classes=10 columns, got shape \(4, 9\)$"),
    ("class index -1", lambda: targets_args(small_labels((1, -1, 3, 4))), ValueError,
     r"labels\[1\]: expected a class index in \[0, 10\) \(num_classes=10\), got -1$"),
    ("class index == C", lambda: targets_args(small_labels((1, 2, C, 4), torch.int32)), ValueError, r"labels\[2\]: .*got 10$"),
    ("one label short", lambda: targets_args(small_labels((1, 2, 3))), ValueError,
     r"partner: expected int64 of shape \(3,\), got int64 of shape \(4,\)$"),
    ("targets lam NaN", lambda: targets_args(lam=lam_with(NAN)), ValueError, r"lam\[0\]: expected a value in \[0, 1\], got nan$"),
    ("targets lam 2.0", lambda: targets_args(lam=lam_with(2.0)), ValueError, r"lam\[0\]: .*got 2$"),
    ("targets lam float64", lambda: targets_args(lam=torch.ones(B, dtype=torch.float64)), ValueError,
     r"lam: expected float32 of shape \(4,\), got float64 of shape \(4,\)$"),
    ("targets kind 6", lambda: targets_args(kind=torch.tensor([6, 0, 0, 0], dtype=torch.uint8)), ValueError,
     r"kind\[0\]: expected 0 \(none\), 1 \(blend\), 2 \(paste\), 3 \(mask\), 4 \(resize\) or 5 \(resize nearest\), got 6$"),
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
    ("mix images int32", lambda: mix_args(small_images(dtype=torch.int32)), TypeError,
     r"images: expected dtype uint8, float16, bfloat16, float32 or float64, got int32$"),
    ("mix images of 5", lambda: mix_args(torch.zeros(5, 3, H, W)), ValueError, r"partner: expected int64 of shape \(5,\)"),
    ("mix box on meta", lambda: mix_args(box=torch.zeros(B, 4, dtype=torch.int64, device="meta")), ValueError,
     r"box: expected a tensor on the images' device cpu, got meta$"),
    ("mix plan int64", lambda: plan_args(torch.zeros(64, dtype=torch.int64), [B, 0, 0, 0, 0, 0]), ValueError,
     r"plan: expected uint8 of shape \(n,\) \(the bytes of torch\.ops\.fastmix\.device_plan\), got int64 of shape \(64,\)$"),
    ("mix plan 2-D", lambda: plan_args(good_plan().view(1, -1), [B, 0, 0, 0, 0, 0]), ValueError, r"plan: .*got uint8 of shape \(1, "),
    ("mix plan on meta", lambda: plan_args(torch.zeros(64, dtype=torch.uint8, device="meta"), [B, 0, 0, 0, 0, 0]),
     ValueError, r"plan: expected a tensor on the images' device cpu, got meta$"),
    ("mix plan_shape of another batch", lambda: plan_args(good_plan(), [5, 0, 0, 0, 0, 0]), ValueError,
     r"plan_shape: expected the plan's 6 header fields \(batch, first_groups, second_groups, head_slots, steps, paste\) "
     r"for a batch of 4, got \(5, 0, 0, 0, 0, 0\)$"),
    ("mix plan_shape short", lambda: plan_args(good_plan(), [B, 1]), ValueError, r"plan_shape: .*got \(4, 1\)$"),
    ("mix plan_shape negative", lambda: plan_args(good_plan(), [B, -1, 0, 0, 0, 0]), ValueError, r"plan_shape: .*got \(4, -1, "),
    ("mix plan_shape paste 2", lambda: plan_args(good_plan(), [B, 0, 0, 0, 0, 2]), ValueError, r"plan_shape: .*0, 2\)$"),
    ("mix plan too short", lambda: plan_args(torch.zeros(64, dtype=torch.uint8), [B, 2, 0, 0, 2, 0]), ValueError,
     r"plan: expected at least 256 bytes for plan_shape \(4, 2, 0, 0, 2, 0\), got 64$"),
    ("mix plan_shape without a plan", lambda: plan_args(None, [1, 2]), ValueError,
     r"plan_shape: expected \[\] without a plan, got \(1, 2\)$"),
    ("mix_into_ lam NaN", lambda: into_args(lam=lam_with(NAN)), ValueError, r"lam\[0\]: .*got nan$"),
    ("mix_into_ out int32", lambda: into_args(out=torch.zeros(B, 3, H, W, dtype=torch.int32)), TypeError,
     r"out: expected dtype uint8, float32, bfloat16 or float16, got int32$"),
    ("mix_into_ images float64", lambda: into_args(images=small_images(dtype=torch.float64)), TypeError,
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
     lambda: into_args("collate_mix_", images=[s.to(META) if i == 2 else s for i, s in enumerate(small_images().unbind(0))]),
     ValueError, r"samples\[2\]: expected a tensor on out's device cpu, got meta$"),
    ("collate_mix_ samples[1] of another shape",
     lambda: into_args("collate_mix_", images=[s[:, :-1] if i == 1 else s for i, s in enumerate(small_images().unbind(0))]),
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
    op(backend).mix_into_(out, small_images(), *valid_params().as_tuple(), *NO_AFFINE, hwc)
    op("torch").mix_into_(expected, small_images(), *valid_params().as_tuple(), *NO_AFFINE, False)
    assert torch.equal(out, expected)
