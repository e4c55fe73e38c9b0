"""The argument checks of the fastmix ops, for the Python backends (numba, the torch reference, the
fake and layout kernels): ``csrc/checks.h`` name for name, argument for argument, word for word.

Each op calls one check of its own arguments before it writes anything (``check_mix_args``,
``check_mix_into_args``, ``check_collate_mix_args``, ``check_mix_targets_args``), so a refused call
leaves the caller's tensors as they were, and every backend refuses the same input with the same
exception and message. Values (partner, kind, lam, box, class indices, scale and bias) are read only
on the CPU: on CUDA reading them would synchronise with the device, and the kernels assert instead.

``tests/test_house.py`` lists the functions of both files and fails on a name found on one side
only, apart from the few below that exist on one side for a reason (``PYTHON_ONLY``, ``CPP_ONLY``).
This module imports nothing of fastmix: everything above it may use it.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import torch

# The Python-side helpers with no C++ twin, and why: the dispatcher hands C++ typed, strided tensors.
PYTHON_ONLY = {
    "check_tensor": "an argument that is not a tensor at all: the dispatcher's schema refuses it before C++ runs",
    "check_strided": "a sparse tensor: the Python ops are called with one; C++ kernels are registered for strided keys",
    "type_name": "the type of a Python value, for check_tensor's message",
    "dtype_names": "a dtype table as words ('uint8, float32 or float16'); C++ writes each list out",
}
# ...and the C++ helpers with no Python twin.
CPP_ONLY = {
    "Tuple": "a shape as Python prints a tuple: Python has tuple() itself",
}

# The dtype tables, once (csrc/checks.h: is_image_dtype, is_input_dtype, is_out_dtype).
IMAGE_DTYPES = (torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64)  # mixed in place
INPUT_DTYPES = (torch.uint8, torch.float32)  # read by mix_into_ / collate_mix_
OUT_DTYPES = (torch.uint8, torch.float32, torch.bfloat16, torch.float16)  # written by mix_into_ / the collate
KIND_NAMES = "0 (none), 1 (blend), 2 (paste), 3 (mask), 4 (resize) or 5 (resize nearest)"
MAX_KIND = 5

# The most classes a (B, num_classes) float32 target tensor may have: int32's maximum (csrc/checks.h
# kMaxNumClasses). Far above any label space in use (10^7 classes is extreme classification), and
# every class index then fits an int32 label, a single row stays under 8 GiB, and B * num_classes
# (the targets' element count, and the kernels' int64 offsets) cannot overflow int64 for any batch
# under 2**32 samples. Past it a call could only fail: out of memory (2**40), an overflowed storage
# size (2**62), or an int that does not fit the ops' int64 (2**63 and up).
MAX_NUM_CLASSES = 2**31 - 1

# The device plan's layout (csrc/mix_plan.h): a 64-byte header holding its PLAN_SHAPE_FIELDS, the
# groups (8 bytes each) from byte 64, the steps (64 bytes each) from the next multiple of 64.
PLAN_SHAPE_FIELDS = ("batch", "first_groups", "second_groups", "head_slots", "steps", "paste")
MAX_BATCH = 2**30  # samples and steps are int32 on the device (kMaxBatch)


# -- how values are written in messages ------------------------------------------------------------


def dtype_name(dtype: torch.dtype) -> str:
    """float32, not torch.float32 (csrc/checks.h DtypeName)."""
    return str(dtype).replace("torch.", "")


def dtype_names(dtypes: Sequence[torch.dtype]) -> str:
    """'uint8, float32 or float16'."""
    names = [dtype_name(d) for d in dtypes]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def type_name(value: Any) -> str:
    return type(value).__name__


def float_text(value: float, digits: int) -> str:
    """A float as csrc/checks.h FloatText prints it: ``digits`` significant digits, no trailing
    zeros (1.5, 2, -0.1, nan, inf): 8 for a float32 (lam), 15 for a double (smoothing)."""
    return f"{value:.{digits}g}"


def device_of(data_name: str) -> str:
    """"the images' device", "out's device": whose device an argument must be on (DeviceOf)."""
    return f"the {data_name}' device" if data_name.endswith("s") else f"{data_name}'s device"


def is_image_dtype(dtype: torch.dtype) -> bool:
    return dtype in IMAGE_DTYPES


def is_input_dtype(dtype: torch.dtype) -> bool:
    return dtype in INPUT_DTYPES


def is_out_dtype(dtype: torch.dtype) -> bool:
    return dtype in OUT_DTYPES


# -- one argument ----------------------------------------------------------------------------------


def check_tensor(name: str, value: Any) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type_name(value)}")
    return value


def check_strided(name: str, value: torch.Tensor) -> None:
    """A strided (dense) tensor: the kernels address elements by strides, and a sparse tensor's
    strides are zeros (it would read as "elements share memory")."""
    if value.layout != torch.strided:
        raise TypeError(f"{name}: expected a strided (dense) tensor, got layout {value.layout}")


def check_on_device(name: str, t: torch.Tensor, data: torch.Tensor, data_name: str) -> None:
    """``t`` on the device of the op's data (images, out or labels). Every op checks it, its fake
    kernel included: a call with one meta tensor among CPU tensors is sent to the fake kernel by the
    dispatcher (Meta outranks CPU), which would return without a write."""
    if t.device != data.device:
        raise ValueError(f"{name}: expected a tensor on {device_of(data_name)} {data.device}, got {t.device}")


def check_param_field(name: str, t: Any, dtype: torch.dtype, shape: Tuple[int, ...], data: Optional[torch.Tensor],
                      data_name: str) -> None:
    """The dtype and shape of one field of a MixParams, and its device against the data's (``data``
    None: no device to match, as for a MixParams checked on its own)."""
    if not isinstance(t, torch.Tensor) or t.dtype != dtype or tuple(t.shape) != shape:
        got = f"{dtype_name(t.dtype)} of shape {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type_name(t)
        raise ValueError(f"{name}: expected {dtype_name(dtype)} of shape {shape}, got {got}")
    if data is not None:
        check_on_device(name, t, data, data_name)


def check_params_layout(images: torch.Tensor, partner: Any, lam: Any, kind: Any, box: Any,
                        data_name: str = "images") -> None:
    """Shapes, dtypes and devices of a MixParams against the batch (B, ...) it is applied to."""
    if images.dim() < 1:
        raise ValueError(f"{data_name}: expected a batch dim (B, ...), got a 0-d tensor")
    batch = images.shape[0]
    check_param_field("partner", partner, torch.int64, (batch,), images, data_name)
    check_param_field("lam", lam, torch.float32, (batch,), images, data_name)
    check_param_field("kind", kind, torch.uint8, (batch,), images, data_name)
    check_param_field("box", box, torch.int64, (batch, 4), images, data_name)


def _first_bad_sample(partner: torch.Tensor, lam: torch.Tensor, kind: torch.Tensor) -> torch.Tensor:
    """(B,) bool: partner outside [0, B), kind above MAX_KIND, or lam outside [0, 1] (NaN too)."""
    batch = partner.shape[0]
    return (partner < 0) | (partner >= batch) | (kind > MAX_KIND) | ~((lam >= 0) & (lam <= 1))


def spatial_kind_words(kind: int) -> str:
    """A kind that needs (H, W), as a message names it."""
    return {2: "paste (CutMix)", 3: "mask (FMix, ClassMix)", 4: "resize (ResizeMix)"}.get(kind, "resize nearest (ResizeMix)")


def check_partner_value(partner: torch.Tensor, i: int, batch: int, prefix: str = "") -> None:
    if not 0 <= int(partner[i]) < batch:
        raise ValueError(f"{prefix}partner[{i}]: expected an index in [0, {batch}), got {int(partner[i])}")


def check_kind_value(kind: torch.Tensor, i: int, prefix: str = "") -> None:
    if int(kind[i]) > MAX_KIND:
        raise ValueError(f"{prefix}kind[{i}]: expected {KIND_NAMES}, got {int(kind[i])}")


def check_kind_and_lam_values(kind: torch.Tensor, lam: torch.Tensor, i: int, prefix: str = "") -> None:
    check_kind_value(kind, i, prefix)
    if not 0 <= float(lam[i]) <= 1:
        raise ValueError(f"{prefix}lam[{i}]: expected a value in [0, 1], got {float_text(float(lam[i]), 8)}")


def check_params_values(images: Any, partner: torch.Tensor, lam: torch.Tensor, kind: torch.Tensor, box: torch.Tensor,
                        prefix: str = "") -> None:
    """Values of CPU params for ``images`` (a tensor, or its shape), sample by sample in the order
    csrc/checks.h checks them: partner in [0, B), kind 0 to 5, lam in [0, 1], the box of a paste or a
    resize inside (H, W) (every kind but none and blend needs images of 3 dims or more). Vectorised:
    one pass finds the first bad sample."""
    shape = tuple(images.shape) if isinstance(images, torch.Tensor) else tuple(images)
    batch = partner.shape[0]
    if batch == 0:
        return
    bad = _first_bad_sample(partner, lam, kind)
    paste = (kind == 2) | (kind == 4) | (kind == 5)  # the kinds with a box
    spatial = len(shape) >= 3
    if not spatial:
        bad |= kind == 3  # a mask's pixels need (H, W) too
    if bool(paste.any()):
        if not spatial:
            bad |= paste
        else:
            height, width, b = shape[-2], shape[-1], box
            inside = (0 <= b[:, 0]) & (b[:, 0] <= b[:, 1]) & (b[:, 1] <= height) & (0 <= b[:, 2])
            inside &= (b[:, 2] <= b[:, 3]) & (b[:, 3] <= width)
            bad |= paste & ~inside
    if not bool(bad.any()):
        return
    i = int(bad.nonzero()[0])
    check_partner_value(partner, i, batch, prefix)
    check_kind_and_lam_values(kind, lam, i, prefix)
    if not spatial:
        what = spatial_kind_words(int(kind[i]))
        raise ValueError(f"{prefix}kind[{i}]: {what} needs images of shape (B, ..., H, W), got images of "
                         f"shape {shape}")
    raise ValueError(f"{prefix}box[{i}]: expected (y0, y1, x0, x1) with 0 <= y0 <= y1 <= {shape[-2]} and "
                     f"0 <= x0 <= x1 <= {shape[-1]}, got {tuple(box[i].tolist())}")


def check_targets_params_values(partner: torch.Tensor, lam: torch.Tensor, kind: torch.Tensor, prefix: str = "") -> None:
    """Values of the CPU params of mix_targets (no boxes: targets do not use them)."""
    batch = partner.shape[0]
    bad = _first_bad_sample(partner, lam, kind)
    if batch and bool(bad.any()):
        i = int(bad.nonzero()[0])
        check_partner_value(partner, i, batch, prefix)
        check_kind_and_lam_values(kind, lam, i, prefix)


def elements_may_share_memory(x: torch.Tensor) -> bool:
    """Whether two elements of ``x`` may lie at one address (mixing it in place would race).

    With the dims of size > 1 in order of stride, the elements are all distinct when each stride
    exceeds the farthest offset the smaller dims reach: exact for every layout that views,
    slices, permutes and transposes make; true for expand() (a zero stride) and overlapping
    windows (unfold with a step under the window)."""
    if x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last):
        return False
    reach = 0  # the farthest offset the dims so far reach
    for stride, size in sorted((st, sz) for st, sz in zip(x.stride(), x.shape) if sz > 1):
        if stride <= reach:
            return True
        reach += stride * (size - 1)
    return False


def check_writable_here(t: torch.Tensor, name: str) -> None:
    """torch's rule for every in-place op, applied before anything is written: an inference tensor
    (made under torch.inference_mode()) may be written only inside inference mode. torch's own ops
    write first and raise after, which is why it is checked."""
    if t.is_inference() and not torch.is_inference_mode_enabled():
        raise ValueError(
            f"{name}: expected a tensor that may be written in place here, got an inference tensor (made under "
            f"torch.inference_mode()) outside inference mode; mix it inside torch.inference_mode() or pass "
            f"{name}.clone()"
        )


def check_writable_images(images: Any) -> None:
    """images of mix_: a supported dtype, a batch dim, elements that do not share memory, writable
    here (it is written in place)."""
    check_tensor("images", images)
    check_strided("images", images)
    if not is_image_dtype(images.dtype):
        raise TypeError(f"images: expected dtype {dtype_names(IMAGE_DTYPES)}, got {dtype_name(images.dtype)}")
    if images.dim() < 1:
        raise ValueError("images: expected a batch dim (B, ...), got a 0-d tensor")
    if torch.compiler.is_compiling():  # the op checks the rest again at run time
        return
    if images.numel() and elements_may_share_memory(images):
        raise ValueError(
            f"images: expected a tensor whose elements do not share memory (it is written in place), got one with "
            f"strides {tuple(images.stride())} for shape {tuple(images.shape)} (from expand() or overlapping windows "
            f"such as unfold()?); call .contiguous() first"
        )
    check_writable_here(images, "images")


def check_affine_devices(out: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, normalize: bool) -> None:
    """scale and bias on out's device; when both are empty (no normalisation), a CPU tensor will do
    too (torch.empty(0) for a CUDA out: the CUDA op reads nothing from them). A tensor on any other
    device takes the call away from out's kernel (a meta one to the fake kernel, which writes
    nothing), so it is refused."""
    def misplaced(t: torch.Tensor) -> bool:
        return t.device != out.device and (normalize or t.device.type != "cpu")

    if misplaced(scale) or misplaced(bias):
        raise ValueError(f"scale, bias: expected tensors on out's device {out.device}, got {scale.device} and {bias.device}")


def check_out_params_and_affine(out: Any, partner: Any, lam: Any, kind: Any, box: Any, scale: Any, bias: Any,
                                uint8_input: bool) -> bool:
    """out (B, C, H, W) of an output dtype, contiguous or channels_last, with its params, and
    scale/bias both empty or float32 (C,) on out's device. Returns whether out is channels_last."""
    check_tensor("out", out)
    check_strided("out", out)
    if out.dim() != 4:
        raise ValueError(f"out: expected shape (B, C, H, W), got {tuple(out.shape)}")
    if not is_out_dtype(out.dtype):
        raise TypeError(f"out: expected dtype {dtype_names(OUT_DTYPES)}, got {dtype_name(out.dtype)}")
    check_params_layout(out, partner, lam, kind, box, "out")
    check_tensor("scale", scale)
    check_tensor("bias", bias)
    channels = out.shape[1]
    normalize = scale.numel() > 0 or bias.numel() > 0
    if normalize and (tuple(scale.shape) != (channels,) or tuple(bias.shape) != (channels,)):
        raise ValueError(f"scale, bias: expected both empty or both of shape ({channels},), got {tuple(scale.shape)} "
                         f"and {tuple(bias.shape)}")
    if normalize and (scale.dtype != torch.float32 or bias.dtype != torch.float32):
        raise TypeError(f"scale, bias: expected float32, got {dtype_name(scale.dtype)} and {dtype_name(bias.dtype)}")
    check_affine_devices(out, scale, bias, normalize)
    if out.dtype == torch.uint8 and (not uint8_input or normalize):
        raise ValueError("out: expected a float dtype (uint8 output needs uint8 input and no scale/bias), got uint8")
    if normalize and scale.device.type == "cpu":  # values on the host only: a GPU read would sync
        finite = torch.isfinite(scale) & torch.isfinite(bias)
        if not bool(finite.all()):
            c = int((~finite).nonzero()[0])
            raise ValueError(f"scale, bias: expected finite values, got scale[{c}] = {float_text(float(scale[c]), 8)} "
                             f"and bias[{c}] = {float_text(float(bias[c]), 8)}")
    channels_last = not out.is_contiguous() and out.is_contiguous(memory_format=torch.channels_last)
    if not (out.is_contiguous() or channels_last):
        raise ValueError(f"out: expected a contiguous or channels_last tensor, got strides {tuple(out.stride())}")
    if not torch.compiler.is_compiling():
        check_writable_here(out, "out")
    return channels_last


def bytes_overlap(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether some byte belongs to an element of ``a`` and to an element of ``b`` (an empty tensor
    covers none). Exact: where the spans of the two (first element to one past the last) meet and
    either has gaps in its span (x[:, ::2] beside x[:, 1::2]), the bytes of each are marked in a
    map of its span and the maps compared over the common part. Addresses, not storages, are
    compared: two storages over the same memory (numpy views given to torch.from_numpy) overlap
    too. Meta and fake tensors have no memory (a null storage)."""
    if a.numel() == 0 or b.numel() == 0 or a.device != b.device:
        return False
    if a.untyped_storage().data_ptr() == 0 or b.untyped_storage().data_ptr() == 0:
        return False
    (a_low, a_high), (b_low, b_high) = byte_span(a), byte_span(b)
    low, high = max(a_low, b_low), min(a_high, b_high)
    if low >= high:
        return False
    if _is_non_overlapping_and_dense(a) and _is_non_overlapping_and_dense(b):
        return True  # each covers its whole span
    return bool((covered_bytes(a)[low - a_low: high - a_low] & covered_bytes(b)[low - b_low: high - b_low]).any())


def _is_non_overlapping_and_dense(t: torch.Tensor) -> bool:
    """Tensor::is_non_overlapping_and_dense (C++ only): the elements, in order of stride, pack the
    span without a gap or a shared address."""
    expected = 1
    for stride, size in sorted((st, sz) for st, sz in zip(t.stride(), t.shape) if sz > 1):
        if stride != expected:
            return False
        expected *= size
    return True


def byte_span(t: torch.Tensor) -> Tuple[int, int]:
    """[address of the first byte, one past the last) of a non-empty strided tensor."""
    low = t.data_ptr()
    return low, low + (1 + sum((s - 1) * st for s, st in zip(t.shape, t.stride()))) * t.element_size()


def covered_bytes(t: torch.Tensor) -> torch.Tensor:
    """(span bytes,) bool: which bytes of its span an element of ``t`` covers."""
    low, high = byte_span(t)
    covered = torch.zeros(high - low, dtype=torch.bool)
    byte_strides = [st * t.element_size() for st in t.stride()]
    for k in range(t.element_size()):  # byte k of every element
        covered.as_strided(tuple(t.shape), byte_strides, k).fill_(True)
    return covered


def check_no_overlap_with_out(out: torch.Tensor, input: torch.Tensor, name: str) -> None:
    if bytes_overlap(out, input):
        raise ValueError(f"{name}: expected memory apart from out's (out is written while it is read), got memory "
                         f"that overlaps it")


def check_mix_into_images(out: Any, images: Any, hwc: bool) -> None:
    """images of mix_into_: (B, C, H, W), or (B, H, W, C) when hwc, uint8 or float32, on out's
    device, not sharing memory with out."""
    check_tensor("out", out)
    check_strided("out", out)
    if out.dim() != 4:
        raise ValueError(f"out: expected shape (B, C, H, W), got {tuple(out.shape)}")
    check_tensor("images", images)
    check_strided("images", images)
    batch, channels, height, width = out.shape
    expected = (batch, height, width, channels) if hwc else (batch, channels, height, width)
    if tuple(images.shape) != expected:
        raise ValueError(f"images: expected shape {expected} ({'B, H, W, C' if hwc else 'B, C, H, W'}), got "
                         f"{tuple(images.shape)}")
    if not is_input_dtype(images.dtype):
        raise TypeError(f"images: expected dtype {dtype_names(INPUT_DTYPES)}, got {dtype_name(images.dtype)}")
    if images.device != out.device:
        raise ValueError(f"images: expected a tensor on out's device {out.device}, got {images.device}")
    check_no_overlap_with_out(out, images, "images")


def check_collate_samples(out: Any, samples: Any, hwc: bool) -> None:
    """samples of collate_mix_: B tensors (C, H, W), or (H, W, C) when hwc, of one dtype (uint8 or
    float32), on out's device, none sharing memory with out."""
    check_tensor("out", out)
    check_strided("out", out)
    if out.dim() != 4:
        raise ValueError(f"out: expected shape (B, C, H, W), got {tuple(out.shape)}")
    if not isinstance(samples, (list, tuple)):
        raise TypeError(f"samples: expected a list of tensors, got {type_name(samples)}")
    batch, channels, height, width = out.shape
    if len(samples) != batch:
        raise ValueError(f"samples: expected {batch} tensors (out's batch size), got {len(samples)}")
    if batch == 0:
        return
    for i, sample in enumerate(samples):
        check_tensor(f"samples[{i}]", sample)
        check_strided(f"samples[{i}]", sample)
    expected = (height, width, channels) if hwc else (channels, height, width)
    dtype = samples[0].dtype
    if not is_input_dtype(dtype):
        raise TypeError(f"samples[0]: expected dtype {dtype_names(INPUT_DTYPES)}, got {dtype_name(dtype)}")
    for i, sample in enumerate(samples):
        if tuple(sample.shape) != expected or sample.dtype != dtype:
            raise ValueError(f"samples[{i}]: expected {dtype_name(dtype)} of shape {expected} like samples[0], got "
                             f"{dtype_name(sample.dtype)} of shape {tuple(sample.shape)}")
        check_on_device(f"samples[{i}]", sample, out, "out")
    for i, sample in enumerate(samples):
        check_no_overlap_with_out(out, sample, f"samples[{i}]")


def check_num_classes_and_smoothing(num_classes: Any, smoothing: Any) -> None:
    """num_classes an int in [1, MAX_NUM_CLASSES], smoothing a float in [0, 1]."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise TypeError(f"num_classes: expected an int in [1, {MAX_NUM_CLASSES}], got {type_name(num_classes)}")
    if not 1 <= num_classes <= MAX_NUM_CLASSES:
        raise ValueError(f"num_classes: expected an int in [1, {MAX_NUM_CLASSES}], got {num_classes}")
    if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)):
        raise TypeError(f"smoothing: expected a float in [0, 1], got {type_name(smoothing)}")
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"smoothing: expected a float in [0, 1], got {float_text(smoothing, 15)}")


def check_labels_layout(labels: Any, num_classes: int) -> None:
    """(B,) integer class indices or (B, num_classes) dense real targets."""
    check_tensor("labels", labels)
    check_strided("labels", labels)
    if labels.dim() not in (1, 2):
        raise ValueError(f"labels: expected class indices of shape (B,) or dense targets of shape (B, {num_classes}), "
                         f"got shape {tuple(labels.shape)}")
    if labels.is_complex():
        raise TypeError(f"labels: expected real values, got {dtype_name(labels.dtype)}")
    if labels.dim() == 1:
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise TypeError(f"labels: expected integer class indices for 1-D labels, got {dtype_name(labels.dtype)} "
                            f"(pass dense targets as ({labels.shape[0]}, {num_classes}))")
    elif labels.shape[1] != num_classes:
        raise ValueError(f"labels: expected dense targets with num_classes={num_classes} columns, got shape "
                         f"{tuple(labels.shape)}")


def check_class_indices(labels: Any, num_classes: int, name: str = "labels") -> None:
    """(B,) class indices on the CPU, a tensor of any integer dtype or a list of Python ints (the
    collate's, before they become one), in [0, num_classes): ``{name}[i]`` names the first that is
    not. A tensor is compared in int64, which holds both the index and the bound whatever its dtype
    (an int8 label against 200 classes must not wrap the bound; torch has no comparison of uint16,
    uint32 and uint64 on the CPU); a uint64 value of 2**63 or more reads there as negative, so it
    is refused, and named as the unsigned value it is."""
    if isinstance(labels, torch.Tensor):
        if labels.numel() == 0:
            return
        wide = labels.to(torch.int64)
        bad = ((wide < 0) | (wide >= num_classes)).nonzero()
        first = int(bad[0]) if len(bad) else None
        value = None if first is None else int(wide[first])
        if value is not None and value < 0 and labels.dtype == torch.uint64:
            value += 2**64
    else:
        first = next((i for i, y in enumerate(labels) if not 0 <= y < num_classes), None)
        value = None if first is None else labels[first]
    if first is not None:
        raise ValueError(f"{name}[{first}]: expected a class index in [0, {num_classes}) (num_classes={num_classes}), "
                         f"got {value}")


def _plan_bytes(first_groups: int, second_groups: int, steps: int) -> int:
    """The bytes of a device plan of that shape (csrc/mix_plan.h's plan_bytes)."""
    return 64 + (8 * (first_groups + second_groups) + 63) // 64 * 64 + 64 * steps


def check_plan_layout(images: torch.Tensor, plan: Any, plan_shape: Any) -> None:
    """plan and plan_shape of mix_: no plan (and no shape), or a plan of fastmix::device_plan -- uint8,
    one dim, on the images' device -- with the fields of its header (PLAN_SHAPE_FIELDS) for the
    images' batch, and the bytes they need. Its content is not read here (on CUDA that would sync:
    the kernel asserts it); the CPU kernels build their own plan and ignore it."""
    shape = tuple(plan_shape)
    if plan is None:
        if shape:
            raise ValueError(f"plan_shape: expected [] without a plan, got {shape}")
        return
    check_tensor("plan", plan)
    if plan.dtype != torch.uint8 or plan.dim() != 1:
        raise ValueError(f"plan: expected uint8 of shape (n,) (the bytes of torch.ops.fastmix.device_plan), got "
                         f"{dtype_name(plan.dtype)} of shape {tuple(plan.shape)}")
    check_on_device("plan", plan, images, "images")
    batch = images.shape[0]
    if (len(shape) != len(PLAN_SHAPE_FIELDS) or shape[0] != batch or shape[5] > 1
            or not all(0 <= v <= 2**31 - 1 for v in shape)):
        raise ValueError(f"plan_shape: expected the plan's {len(PLAN_SHAPE_FIELDS)} header fields "
                         f"({', '.join(PLAN_SHAPE_FIELDS)}) for a batch of {batch}, got {shape}")
    needed = _plan_bytes(shape[1], shape[2], shape[4])
    if plan.numel() < needed:
        raise ValueError(f"plan: expected at least {needed} bytes for plan_shape {shape}, got {plan.numel()}")


def check_plan_partner(partner: Any) -> None:
    """partner of device_plan and inplace_plan: (B,) int64 on the CPU (the plans are built on the host)."""
    check_tensor("partner", partner)
    check_strided("partner", partner)
    if partner.dtype != torch.int64 or partner.dim() != 1 or partner.device.type != "cpu":
        raise ValueError(f"partner: expected int64 of shape (B,) on the CPU (the plan is built on the host), got "
                         f"{dtype_name(partner.dtype)} of shape {tuple(partner.shape)} on {partner.device}")
    if partner.shape[0] > MAX_BATCH:
        raise ValueError(f"partner: expected at most {MAX_BATCH} samples, got {partner.shape[0]}")


def check_pixel_mask(pixel_mask: Any, data: torch.Tensor, kind: torch.Tensor, data_name: str = "images") -> None:
    """The MASK samples' pixel masks: None, or (B, H, W) uint8 on the data's device, H and W the data's
    last two dims, each (H, W) plane dense (strides (W, 1)); the batch stride may be anything (0:
    one plane for every sample). A nonzero pixel comes from the partner. On the CPU, a MASK kind
    needs a pixel_mask (on a GPU reading kind would sync: the kernels assert instead)."""
    if pixel_mask is None:
        if data.device.type == "cpu" and data.dim() >= 1 and data.shape[0] and bool((kind == 3).any()):
            i = int((kind == 3).nonzero()[0])
            raise ValueError(f"pixel_mask: expected (B, H, W) uint8 masks, as kind[{i}] is 3 (mask), got None")
        return
    if not isinstance(pixel_mask, torch.Tensor):
        raise TypeError(f"pixel_mask: expected a tensor or None, got {type_name(pixel_mask)}")
    check_strided("pixel_mask", pixel_mask)
    if pixel_mask.dtype != torch.uint8:
        raise TypeError(f"pixel_mask: expected dtype uint8, got {dtype_name(pixel_mask.dtype)}")
    if data.dim() < 3:
        raise ValueError(f"pixel_mask: expected None for {data_name} of shape {tuple(data.shape)} (no H, W dims), got a tensor")
    expected = (data.shape[0], data.shape[-2], data.shape[-1])
    if tuple(pixel_mask.shape) != expected:
        raise ValueError(f"pixel_mask: expected shape {expected} ((B, H, W) of {data_name}), got {tuple(pixel_mask.shape)}")
    check_on_device("pixel_mask", pixel_mask, data, data_name)
    height, width = expected[1], expected[2]
    dense = (height <= 1 or pixel_mask.stride(1) == width) and (width <= 1 or pixel_mask.stride(2) == 1)
    if not dense:
        raise ValueError(f"pixel_mask: expected each (H, W) plane dense (strides ({width}, 1)), got strides "
                         f"{tuple(pixel_mask.stride())}")


def check_mask_field(mask_field: Any, field_threshold: Any, pixel_mask: Any, data: Any, kind: torch.Tensor,
                     box: torch.Tensor, data_name: str = "images", prefix: str = "") -> None:
    """The MASK samples' pixels cut from one noise image (fastmix/backends/mask_field.py): mask_field
    (H, W) float32 contiguous and field_threshold (B,) float32 on the data's device (``data`` a
    tensor, or its shape for a MixParams checked alone), pixel_mask None; on the CPU, each MASK
    sample's box the window (dy, dy + H, dx, dx + W) with 0 <= dy < H and 0 <= dx < W."""
    shape = tuple(data.shape) if isinstance(data, torch.Tensor) else tuple(data)
    on = data if isinstance(data, torch.Tensor) else None
    if pixel_mask is not None:
        raise ValueError(f"{prefix}pixel_mask: expected None, as mask_field gives the MASK samples' pixels, got a tensor")
    if mask_field is None:
        raise ValueError(f"{prefix}mask_field: expected an (H, W) float32 image, as field_threshold is given, got None")
    if not isinstance(mask_field, torch.Tensor):
        raise TypeError(f"{prefix}mask_field: expected a tensor or None, got {type_name(mask_field)}")
    check_strided(f"{prefix}mask_field", mask_field)
    if mask_field.dtype != torch.float32:
        raise TypeError(f"{prefix}mask_field: expected dtype float32, got {dtype_name(mask_field.dtype)}")
    if len(shape) < 3:
        raise ValueError(f"{prefix}mask_field: expected None for {data_name} of shape {shape} (no H, W dims), got a tensor")
    height, width = shape[-2], shape[-1]
    if tuple(mask_field.shape) != (height, width):
        raise ValueError(f"{prefix}mask_field: expected shape {(height, width)} ((H, W) of {data_name}), got "
                         f"{tuple(mask_field.shape)}")
    if not mask_field.is_contiguous():
        raise ValueError(f"{prefix}mask_field: expected a contiguous image (strides ({width}, 1)), got strides "
                         f"{tuple(mask_field.stride())}")
    if on is not None:
        check_on_device(f"{prefix}mask_field", mask_field, on, data_name)
    check_param_field(f"{prefix}field_threshold", field_threshold, torch.float32, (shape[0],), on, data_name)
    if box.device.type != "cpu" or not shape[0]:
        return
    b = box
    inside = (0 <= b[:, 0]) & (b[:, 0] < height) & (b[:, 1] == b[:, 0] + height)
    inside &= (0 <= b[:, 2]) & (b[:, 2] < width) & (b[:, 3] == b[:, 2] + width)
    bad = (kind == 3) & ~inside
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        raise ValueError(f"{prefix}box[{i}]: expected the window (dy, dy + {height}, dx, dx + {width}) of mask_field "
                         f"with 0 <= dy < {height} and 0 <= dx < {width}, got {tuple(box[i].tolist())}")


def check_mask_args(pixel_mask: Any, mask_field: Any, field_threshold: Any, data: torch.Tensor, kind: torch.Tensor,
                    box: torch.Tensor, data_name: str = "images") -> None:
    """Where the MASK samples' pixels come from: pixel_mask, or mask_field with field_threshold."""
    if mask_field is None and field_threshold is None:
        check_pixel_mask(pixel_mask, data, kind, data_name)
    else:
        check_mask_field(mask_field, field_threshold, pixel_mask, data, kind, box, data_name)


# -- the checks of each op, in full ----------------------------------------------------------------


def check_mix_args(images: Any, partner: Any, lam: Any, kind: Any, box: Any, plan: Any = None,
                   plan_shape: Sequence[int] = (), pixel_mask: Any = None, mask_field: Any = None,
                   field_threshold: Any = None) -> None:
    """fastmix::mix_: writable images, the params' and the plan's layout, and the params' values on
    the CPU."""
    check_writable_images(images)
    check_params_layout(images, partner, lam, kind, box)
    check_plan_layout(images, plan, plan_shape)
    if images.device.type == "cpu":
        check_params_values(images, partner, lam, kind, box)
    check_mask_args(pixel_mask, mask_field, field_threshold, images, kind, box)


def check_device_plan_args(partner: Any, lam: Any, kind: Any, box: Any) -> None:
    """fastmix::device_plan: a MixParams on the CPU, its partner and kind values (the boxes are
    clamped into int32, not checked: the op that applies the plan checks them against its images)."""
    check_plan_partner(partner)
    batch = partner.shape[0]
    check_param_field("lam", lam, torch.float32, (batch,), partner, "partner")
    check_param_field("kind", kind, torch.uint8, (batch,), partner, "partner")
    check_param_field("box", box, torch.int64, (batch, 4), partner, "partner")
    check_targets_params_values(partner, lam, kind)


def check_inplace_plan_args(partner: Any, kind: Any) -> None:
    """fastmix::inplace_plan: partner and kind on the CPU, with their values."""
    check_plan_partner(partner)
    batch = partner.shape[0]
    check_param_field("kind", kind, torch.uint8, (batch,), partner, "partner")
    bad = (partner < 0) | (partner >= batch) | (kind > MAX_KIND)
    if batch and bool(bad.any()):
        i = int(bad.nonzero()[0])
        check_partner_value(partner, i, batch)
        check_kind_value(kind, i)


def check_mix_into_args(out: Any, images: Any, partner: Any, lam: Any, kind: Any, box: Any, scale: Any, bias: Any,
                        hwc: bool, pixel_mask: Any = None, mask_field: Any = None,
                        field_threshold: Any = None) -> bool:
    """fastmix::mix_into_: the images against out, then out, params and affine (values on the CPU).
    Returns whether out is channels_last."""
    check_mix_into_images(out, images, hwc)
    channels_last = check_out_params_and_affine(out, partner, lam, kind, box, scale, bias, images.dtype == torch.uint8)
    if out.device.type == "cpu":
        check_params_values(out, partner, lam, kind, box)
    check_mask_args(pixel_mask, mask_field, field_threshold, out, kind, box, "out")
    return channels_last


def check_collate_mix_args(out: Any, samples: Any, partner: Any, lam: Any, kind: Any, box: Any, scale: Any, bias: Any,
                           hwc: bool, pixel_mask: Any = None, mask_field: Any = None,
                           field_threshold: Any = None) -> bool:
    """fastmix::collate_mix_: the samples against out, then out, params and affine (values on the
    CPU). Returns whether out is channels_last."""
    check_collate_samples(out, samples, hwc)
    uint8_input = len(samples) == 0 or samples[0].dtype == torch.uint8
    channels_last = check_out_params_and_affine(out, partner, lam, kind, box, scale, bias, uint8_input)
    if out.device.type == "cpu":
        check_params_values(out, partner, lam, kind, box)
    check_mask_args(pixel_mask, mask_field, field_threshold, out, kind, box, "out")
    return channels_last


def check_mix_targets_args(labels: Any, partner: Any, lam: Any, kind: Any, num_classes: Any, smoothing: Any) -> None:
    """fastmix::mix_targets: the knobs, the labels, the params' layout; on the CPU the params'
    values and the class indices."""
    check_num_classes_and_smoothing(num_classes, smoothing)
    check_labels_layout(labels, num_classes)
    batch = labels.shape[0]
    check_param_field("partner", partner, torch.int64, (batch,), labels, "labels")
    check_param_field("lam", lam, torch.float32, (batch,), labels, "labels")
    check_param_field("kind", kind, torch.uint8, (batch,), labels, "labels")
    if labels.device.type == "cpu":
        check_targets_params_values(partner, lam, kind)
        if labels.dim() == 1:
            check_class_indices(labels, num_classes)
