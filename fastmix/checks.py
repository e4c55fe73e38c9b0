"""Every check of fastmix's Python layer, in one message style: ``argument: expected X, got Y``.

All of them run before anything is written, so a refused call leaves the caller's tensors as they
were. Two layers use them:

* the public API (``fastmix.Mixup``, ``fastmix.mix_``, ``fastmix.mix_targets``, ``MixupCollate``),
  which names what the user passed (``images``, ``labels``, ``params.partner[3]``);
* the Python backends (numba, the torch reference), whose ops take the same arguments as the C++
  ops (``torch.ops.fastmix.*``) and refuse what they refuse, worded as ``csrc/checks.h`` words it.

Values of tensors on a GPU are never read here (that would synchronise with the device): on
CUDA the public API checks the CPU params before moving them, and the ops trip device asserts.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Sequence, Tuple

import torch

# The dtype tables, once.
IMAGE_DTYPES = (torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64)  # mixed in place
INPUT_DTYPES = (torch.uint8, torch.float32)  # read by mix_into_ / collate_mix_
OUT_DTYPES = (torch.uint8, torch.float32, torch.bfloat16, torch.float16)  # written by mix_into_ / the collate
KIND_NAMES = "0 (none), 1 (blend) or 2 (paste)"
MODES = ("batch", "pair", "elem")


def dtype_name(dtype: torch.dtype) -> str:
    """float32, not torch.float32 (as the C++ checks print it)."""
    return str(dtype).replace("torch.", "")


def dtype_names(dtypes: Sequence[torch.dtype]) -> str:
    """'uint8, float32 or float16'."""
    names = [dtype_name(d) for d in dtypes]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def type_name(value: Any) -> str:
    return type(value).__name__


def float_text(value: float, digits: int) -> str:
    """A float in a message as csrc/checks.h prints it (FloatText): ``digits`` significant digits,
    no trailing zeros (1.5, 2, -0.1, nan, inf): 8 for a float32 (lam), 15 for a double (smoothing)."""
    return f"{value:.{digits}g}"


# -- knobs -----------------------------------------------------------------------------------------


def is_real_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_probability(name: str, value: Any) -> float:
    """A float in [0, 1] (NaN refused)."""
    if not is_real_number(value):
        raise TypeError(f"{name}: expected a float in [0, 1], got {type_name(value)}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: expected a float in [0, 1], got {value}")
    return float(value)


def check_alpha(name: str, value: Any) -> float:
    """A finite float >= 0."""
    if not is_real_number(value):
        raise TypeError(f"{name}: expected a float >= 0, got {type_name(value)}")
    if math.isnan(value) or value < 0 or math.isinf(value):
        raise ValueError(f"{name}: expected a finite float >= 0, got {value}")
    return float(value)


def check_positive_int(name: str, value: Any, maximum: Optional[int] = None) -> int:
    """An int >= 1 (bool refused), and <= ``maximum`` when given."""
    expected = "an int >= 1" if maximum is None else f"an int in [1, {maximum}]"
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected {expected}, got {type_name(value)}")
    if value < 1 or (maximum is not None and value > maximum):
        raise ValueError(f"{name}: expected {expected}, got {value}")
    return value


# The most classes a (B, num_classes) float32 target tensor may have: int32's maximum, as in
# csrc/checks.h (kMaxNumClasses). Far above any label space in use (10^7 classes is extreme
# classification), and every class index then fits an int32 label, a single row stays under 8 GiB,
# and B * num_classes (the targets' element count, and the kernels' int64 offsets) cannot overflow
# int64 for any batch under 2**32 samples. Past it a call could only fail: out of memory (2**40),
# an overflowed storage size (2**62), or an int that does not fit the ops' int64 (2**63 and up).
MAX_NUM_CLASSES = 2**31 - 1


def check_num_classes(value: Any) -> int:
    """num_classes: an int in [1, MAX_NUM_CLASSES] (bool refused)."""
    return check_positive_int("num_classes", value, MAX_NUM_CLASSES)


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected a bool, got {type_name(value)}")
    return value


def check_mode(value: Any) -> str:
    if value not in MODES:
        raise ValueError(f"mode: expected one of {', '.join(repr(m) for m in MODES)}, got {value!r}")
    return value


def check_seed(value: Any) -> Optional[int]:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"seed: expected an int or None, got {type_name(value)}")
    return value


def check_cutmix_minmax(value: Any) -> Optional[Tuple[float, float]]:
    """None or (min, max) with 0 <= min < max <= 1."""
    if value is None:
        return None
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(is_real_number(v) for v in value)
    if not ok or not 0.0 <= value[0] < value[1] <= 1.0:
        raise ValueError(f"cutmix_minmax: expected None or (min, max) with 0 <= min < max <= 1, got {value!r}")
    return float(value[0]), float(value[1])


# -- tensors of the public API ---------------------------------------------------------------------


def check_tensor(name: str, value: Any) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type_name(value)}")
    return value


def check_strided(name: str, value: torch.Tensor) -> None:
    """A strided (dense) tensor: the kernels address elements by strides, and a sparse tensor's
    strides are zeros (it would read as "elements share memory")."""
    if value.layout != torch.strided:
        raise TypeError(f"{name}: expected a strided (dense) tensor, got layout {value.layout}")


def elements_may_share_memory(x: torch.Tensor) -> bool:
    """Whether two elements of ``x`` may lie at one address (mixing it in place would race).

    With the dims of size > 1 in order of stride, the elements are all distinct when each stride
    exceeds the farthest offset the smaller dims reach: exact for every layout that views,
    slices, permutes and transposes make; true for expand() (a zero stride) and overlapping
    windows (unfold with a step under the window). The same rule as csrc/checks.h."""
    if x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last):
        return False
    reach = 0  # the farthest offset the dims so far reach
    for stride, size in sorted((st, sz) for st, sz in zip(x.stride(), x.shape) if sz > 1):
        if stride <= reach:
            return True
        reach += stride * (size - 1)
    return False


def check_writable_here(name: str, value: torch.Tensor) -> None:
    """torch's rule for every in-place op, applied before anything is written: an inference tensor
    (made under torch.inference_mode()) may be written only inside inference mode (csrc/checks.h
    check_writable_here). torch's own ops write first and raise after, which is why it is checked."""
    if value.is_inference() and not torch.is_inference_mode_enabled():
        raise ValueError(
            f"{name}: expected a tensor that may be written in place here, got an inference tensor (made under "
            f"torch.inference_mode()) outside inference mode; mix it inside torch.inference_mode() or pass "
            f"{name}.clone()"
        )


def check_writable_images(images: torch.Tensor) -> None:
    """images of mix_: a supported dtype, a batch dim, elements that do not share memory, writable
    here (not an inference tensor outside inference mode): the checks of the op, csrc/checks.h
    check_images."""
    check_tensor("images", images)
    check_strided("images", images)
    if images.dtype not in IMAGE_DTYPES:
        raise TypeError(f"images: expected dtype {dtype_names(IMAGE_DTYPES)}, got {dtype_name(images.dtype)}")
    if images.dim() < 1:
        raise ValueError("images: expected a batch dim (B, ...), got a 0-d tensor")
    # (not while tracing: the op checks it again at run time)
    if not torch.compiler.is_compiling() and images.numel() and elements_may_share_memory(images):
        raise ValueError(
            f"images: expected a tensor whose elements do not share memory (it is written in place), got one with "
            f"strides {tuple(images.stride())} for shape {tuple(images.shape)} (from expand() or overlapping windows "
            f"such as unfold()?); call .contiguous() first"
        )
    if not torch.compiler.is_compiling():
        check_writable_here("images", images)


def check_images(images: Any, needs_spatial: bool) -> None:
    """images: (B, ...) tensor of a supported dtype; (B, C, H, W) or more dims when CutMix may run."""
    check_tensor("images", images)
    check_strided("images", images)
    if images.dtype not in IMAGE_DTYPES:
        raise TypeError(f"images: expected dtype {dtype_names(IMAGE_DTYPES)}, got {dtype_name(images.dtype)}")
    min_dims = 4 if needs_spatial else 2
    if images.dim() < min_dims:
        what = "(B, C, H, W) (CutMix is enabled)" if needs_spatial else "(B, ...) with at least 2 dims"
        raise ValueError(f"images: expected shape {what}, got shape {tuple(images.shape)}")
    if needs_spatial and images.shape[-2] * images.shape[-1] == 0:
        raise ValueError(f"images: CutMix needs H >= 1 and W >= 1, got shape {tuple(images.shape)}")
    check_writable_images(images)
    if images.requires_grad:
        raise ValueError("images: expected a tensor that does not require grad (it is mixed in place), got one that does")


def check_labels(labels: Any, batch: int, device: torch.device, num_classes: int, multi_label: bool = False) -> None:
    """labels: (B,) integer class indices in [0, C) or (B, C) dense targets, on the images' device.

    Class index values are read only on the CPU: on a GPU that read would stall the stream every
    batch, so there an index outside [0, C) trips the targets kernel's device-side assert instead."""
    check_tensor("labels", labels)
    check_strided("labels", labels)
    if labels.device != device:
        raise ValueError(f"labels: expected a tensor on the images' device {device}, got {labels.device}")
    if labels.dim() not in (1, 2):
        raise ValueError(
            f"labels: expected class indices of shape ({batch},) or dense targets of shape ({batch}, {num_classes}), "
            f"got shape {tuple(labels.shape)}"
        )
    if labels.shape[0] != batch:
        raise ValueError(
            f"labels: expected batch size {batch} (the images' first dim), got {labels.shape[0]} (shape {tuple(labels.shape)})"
        )
    if multi_label and labels.dim() != 2:
        raise ValueError(f"labels: expected dense multi-label targets of shape ({batch}, {num_classes}) for "
                         f"multi_label=True, got shape {tuple(labels.shape)}")
    check_label_values(labels, num_classes, read_values=labels.device.type == "cpu")


def check_label_values(labels: torch.Tensor, num_classes: int, read_values: bool) -> None:
    """dtype and (with ``read_values``) values of (B,) class indices or (B, C) dense targets."""
    check_strided("labels", labels)
    if labels.is_complex():
        raise TypeError(f"labels: expected real values, got {dtype_name(labels.dtype)}")
    if labels.dim() == 2:
        if labels.shape[1] != num_classes:
            raise ValueError(
                f"labels: expected dense targets with num_classes={num_classes} columns, got shape {tuple(labels.shape)}"
            )
        return
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(
            f"labels: expected integer class indices for 1-D labels, got {dtype_name(labels.dtype)} (pass dense "
            f"targets as ({labels.shape[0]}, {num_classes}))"
        )
    if read_values and labels.numel():
        bad = ((labels < 0) | (labels >= num_classes)).nonzero()
        if len(bad):
            i = int(bad[0])
            raise ValueError(
                f"labels[{i}]: expected a class index in [0, {num_classes}) (num_classes={num_classes}), got {int(labels[i])}"
            )


def check_targets_knobs(num_classes: Any, smoothing: Any) -> None:
    check_num_classes(num_classes)
    if not is_real_number(smoothing):
        raise TypeError(f"smoothing: expected a float in [0, 1], got {type_name(smoothing)}")
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"smoothing: expected a float in [0, 1], got {float_text(smoothing, 15)}")


# -- MixParams, as the public API and the ops see them --------------------------------------------

# (field, dtype, shape given the batch size) of a MixParams
PARAM_FIELDS = (
    ("partner", torch.int64, lambda b: (b,)),
    ("lam", torch.float32, lambda b: (b,)),
    ("kind", torch.uint8, lambda b: (b,)),
    ("box", torch.int64, lambda b: (b, 4)),
)


def device_of(data_name: str) -> str:
    """"the images' device", "out's device": whose device an argument must be on."""
    return f"the {data_name}' device" if data_name.endswith("s") else f"{data_name}'s device"


def check_on_device(name: str, value: torch.Tensor, data_name: str, device: torch.device) -> None:
    """``value`` on ``device``, the device of the op's data (images, out or labels). Every op
    checks it, its fake kernel included: a call with one meta tensor among CPU tensors is sent to
    the fake kernel by the dispatcher (Meta outranks CPU), which would return without a write."""
    if value.device != device:
        raise ValueError(f"{name}: expected a tensor on {device_of(data_name)} {device}, got {value.device}")


def check_param_layout(
    fields: Sequence[Any], batch: int, device: Optional[torch.device], prefix: str = "", data_name: str = "images"
) -> None:
    """dtype, shape and device of the fields (partner, lam, kind[, box]) for a batch of ``batch``.

    ``device``: the data's device, or None to ask only that the fields share one real device."""
    for value, (name, dtype, shape_of) in zip(fields, PARAM_FIELDS):
        shape = shape_of(batch)
        if not isinstance(value, torch.Tensor) or value.dtype != dtype or tuple(value.shape) != shape:
            got = f"{dtype_name(value.dtype)} of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type_name(value)
            raise ValueError(f"{prefix}{name}: expected {dtype_name(dtype)} of shape {shape}, got {got}")
        if device is not None:
            check_on_device(prefix + name, value, data_name, device)
    if device is None:
        devices = {t.device for t in fields}
        if len(devices) > 1 or next(iter(devices)).type == "meta":
            names = ", ".join(name for name, _, _ in PARAM_FIELDS[: len(fields)])
            raise ValueError(f"{prefix.rstrip('.') or 'params'}: expected {names} on one real device, "
                             f"got {sorted(str(d) for d in devices)}")


def check_param_values(
    partner: torch.Tensor,
    lam: torch.Tensor,
    kind: torch.Tensor,
    box: Optional[torch.Tensor],
    spatial: Optional[Tuple[int, ...]],
    prefix: str = "",
) -> None:
    """Values of CPU params, sample by sample in the order csrc/checks.h checks them: partner in
    [0, B), kind 0/1/2, lam in [0, 1]; with ``box``, a paste's box inside (H, W) = spatial[-2:]
    (``spatial``: the images' shape; a paste needs 3 dims or more)."""
    batch = partner.shape[0]
    if batch == 0:
        return
    bad = (partner < 0) | (partner >= batch) | (kind > 2) | ~((lam >= 0) & (lam <= 1))  # NaN fails
    paste = (kind == 2) if box is not None else None
    if paste is not None and bool(paste.any()):
        if spatial is None or len(spatial) < 3:
            bad |= paste
        else:
            height, width = spatial[-2], spatial[-1]
            b = box
            inside = (0 <= b[:, 0]) & (b[:, 0] <= b[:, 1]) & (b[:, 1] <= height) & (0 <= b[:, 2])
            inside &= (b[:, 2] <= b[:, 3]) & (b[:, 3] <= width)
            bad |= paste & ~inside
    if not bool(bad.any()):
        return
    i = int(bad.nonzero()[0])
    if not 0 <= int(partner[i]) < batch:
        raise ValueError(f"{prefix}partner[{i}]: expected an index in [0, {batch}), got {int(partner[i])}")
    if int(kind[i]) > 2:
        raise ValueError(f"{prefix}kind[{i}]: expected {KIND_NAMES}, got {int(kind[i])}")
    if not 0 <= float(lam[i]) <= 1:
        raise ValueError(f"{prefix}lam[{i}]: expected a value in [0, 1], got {float_text(float(lam[i]), 8)}")
    if spatial is None or len(spatial) < 3:
        raise ValueError(f"{prefix}kind[{i}]: paste (CutMix) needs images of shape (B, ..., H, W), got images of "
                         f"shape {tuple(spatial or ())}")
    raise ValueError(
        f"{prefix}box[{i}]: expected (y0, y1, x0, x1) with 0 <= y0 <= y1 <= {spatial[-2]} and "
        f"0 <= x0 <= x1 <= {spatial[-1]}, got {tuple(box[i].tolist())}"
    )


def check_params(params: Any, batch: int, spatial: Optional[Tuple[int, ...]], *, check_boxes: bool = True) -> None:
    """A fastmix.MixParams valid for images of batch ``batch`` (``spatial``: their shape);
    ``check_boxes=False`` for targets, which do not use the boxes.
    Reads the values on the host: call it on CPU params, before moving them to a GPU."""
    from .sampling.params import MixParams

    if not isinstance(params, MixParams):
        raise TypeError(f"params: expected a fastmix.MixParams, got {type_name(params)}")
    fields = params.as_tuple() if check_boxes else params.as_tuple()[:3]
    check_param_layout(fields, batch, None, prefix="params.")
    if params.device.type == "cpu":
        check_param_values(*params.as_tuple()[:3], params.box if check_boxes else None, spatial, prefix="params.")
    else:
        cpu = params.to("cpu")
        check_param_values(*cpu.as_tuple()[:3], cpu.box if check_boxes else None, spatial, prefix="params.")


# -- the ops' own checks (the Python backends: numba and the torch reference) ----------------------


def check_mix_args(images: Any, partner: Any, lam: Any, kind: Any, box: Any) -> None:
    """fastmix::mix_'s checks (csrc/checks.h: check_images, check_params_layout, check_params_values)."""
    check_writable_images(images)
    fields = (partner, lam, kind, box)
    check_param_layout(fields, images.shape[0], images.device)
    if images.device.type == "cpu":
        check_param_values(partner, lam, kind, box, tuple(images.shape))


def check_affine_devices(out: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, normalize: bool) -> None:
    """scale and bias on out's device; when both are empty (no normalisation), a CPU tensor will
    do too (torch.empty(0) for a CUDA out: the CUDA op reads nothing from them). A tensor on any other
    device takes the call away from out's kernel (a meta one to the fake kernel, which writes
    nothing), so it is refused: csrc/checks.h refuses the same wherever the op's kernel runs."""
    def misplaced(t: torch.Tensor) -> bool:
        return t.device != out.device and (normalize or t.device.type != "cpu")

    if misplaced(scale) or misplaced(bias):
        raise ValueError(f"scale, bias: expected tensors on out's device {out.device}, got {scale.device} and {bias.device}")


def check_out_and_affine(out: Any, partner: Any, lam: Any, kind: Any, box: Any, scale: Any, bias: Any,
                         uint8_input: bool) -> bool:
    """out (B, C, H, W) of an output dtype, contiguous or channels_last, with its params, and
    scale/bias both empty or float32 (C,) on out's device. Returns whether out is channels_last."""
    check_tensor("out", out)
    check_strided("out", out)
    if out.dim() != 4:
        raise ValueError(f"out: expected shape (B, C, H, W), got {tuple(out.shape)}")
    if out.dtype not in OUT_DTYPES:
        raise TypeError(f"out: expected dtype {dtype_names(OUT_DTYPES)}, got {dtype_name(out.dtype)}")
    check_param_layout((partner, lam, kind, box), out.shape[0], out.device, data_name="out")
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
        check_writable_here("out", out)
    if out.device.type == "cpu":
        check_param_values(partner, lam, kind, box, tuple(out.shape))
    return channels_last


def memory_overlaps(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether the spans of memory of ``a`` and ``b`` (both non-empty) overlap, from the first
    element to one past the last (csrc/checks.h memory_spans_overlap: the same rule)."""
    if a.untyped_storage().data_ptr() != b.untyped_storage().data_ptr():
        return False

    def span(t: torch.Tensor) -> Tuple[int, int]:
        low = t.data_ptr()
        return low, low + (1 + sum((s - 1) * st for s, st in zip(t.shape, t.stride()))) * t.element_size()

    (a_lo, a_hi), (b_lo, b_hi) = span(a), span(b)
    return a_lo < b_hi and b_lo < a_hi


def check_apart_from_out(out: torch.Tensor, value: torch.Tensor, name: str) -> None:
    if out.numel() and value.numel() and memory_overlaps(out, value):
        raise ValueError(f"{name}: expected memory apart from out's (out is written while it is read), got memory "
                         f"that overlaps it")


def check_mix_into_images(out: Any, images: Any, hwc: bool) -> None:
    """images of mix_into_: (B, C, H, W), or (B, H, W, C) when hwc, uint8 or float32, on out's device."""
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
    if images.dtype not in INPUT_DTYPES:
        raise TypeError(f"images: expected dtype {dtype_names(INPUT_DTYPES)}, got {dtype_name(images.dtype)}")
    if images.device != out.device:
        raise ValueError(f"images: expected a tensor on out's device {out.device}, got {images.device}")
    check_apart_from_out(out, images, "images")


def check_collate_samples(out: Any, samples: Any, hwc: bool) -> None:
    """samples of collate_mix_: B tensors (C, H, W), or (H, W, C) when hwc, of one dtype (uint8
    or float32), on out's device, none sharing memory with out."""
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
    if dtype not in INPUT_DTYPES:
        raise TypeError(f"samples[0]: expected dtype {dtype_names(INPUT_DTYPES)}, got {dtype_name(dtype)}")
    for i, sample in enumerate(samples):
        if tuple(sample.shape) != expected or sample.dtype != dtype:
            raise ValueError(f"samples[{i}]: expected {dtype_name(dtype)} of shape {expected} like samples[0], got "
                             f"{dtype_name(sample.dtype)} of shape {tuple(sample.shape)}")
        check_on_device(f"samples[{i}]", sample, "out", out.device)
    for i, sample in enumerate(samples):
        check_apart_from_out(out, sample, f"samples[{i}]")


def check_mix_targets_args(labels: Any, partner: Any, lam: Any, kind: Any, num_classes: Any, smoothing: Any) -> None:
    """fastmix::mix_targets's checks (csrc/checks.h: check_mix_targets_args and the values)."""
    check_targets_knobs(num_classes, smoothing)
    check_tensor("labels", labels)
    if labels.dim() not in (1, 2):
        raise ValueError(f"labels: expected class indices of shape (B,) or dense targets of shape (B, {num_classes}), "
                         f"got shape {tuple(labels.shape)}")
    check_label_values(labels, num_classes, read_values=labels.device.type == "cpu")
    fields = (partner, lam, kind)
    check_param_layout(fields, labels.shape[0], labels.device, data_name="labels")
    if labels.device.type == "cpu":
        check_param_values(partner, lam, kind, None, None)


# -- MixupCollate's settings -----------------------------------------------------------------------


def check_collate_mixup(mixup: Any) -> None:
    """A fastmix.Mixup whose backend can run on the CPU, where the collate runs (DataLoader workers)."""
    from .mixup import Mixup

    if not isinstance(mixup, Mixup):
        raise TypeError(f"mixup: expected a fastmix.Mixup, got {type_name(mixup)}")
    if mixup.backend == "cuda":
        raise ValueError("mixup: expected a Mixup whose backend runs on the CPU (the collate runs in DataLoader "
                         "workers), got backend='cuda'; use 'auto', 'cpp', 'numba' or 'torch'")


def check_norm_values(name: str, value: Any) -> torch.Tensor:
    """mean or std of a MixupCollate: a real number, a list or tuple of them, or a real tensor or
    numpy array on the CPU (flattened); at least one value, all finite. Returns float64 (C,)."""
    import numpy as np

    expected = "finite real numbers (one per channel, or one for every channel)"
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "iuf":
            raise TypeError(f"{name}: expected {expected}, got a numpy array of dtype {value.dtype}")
        value = torch.from_numpy(value.astype(np.float64))  # a native-order copy
    if isinstance(value, torch.Tensor):
        if value.layout != torch.strided:
            raise TypeError(f"{name}: expected {expected}, got a tensor of layout {value.layout}")
        if value.device.type != "cpu":
            raise ValueError(f"{name}: expected {expected} on the CPU, got a tensor on {value.device}")
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{name}: expected {expected}, got a tensor of dtype {dtype_name(value.dtype)}")
        values = value.detach().to(torch.float64).flatten()
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        values = torch.tensor([float(value)], dtype=torch.float64)
    elif isinstance(value, (list, tuple)) and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        values = torch.tensor([float(v) for v in value], dtype=torch.float64)
    else:
        raise TypeError(f"{name}: expected {expected}, got {type_name(value)} {value!r:.80}")
    if values.numel() == 0:
        raise ValueError(f"{name}: expected {expected}, got none")
    if not bool(torch.isfinite(values).all()):
        raise ValueError(f"{name}: expected {expected}, got {values.tolist()}")
    return values


def check_collate_settings(dtype: Any, mean: Any, std: Any) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
    """The output dtype and the normalisation of a MixupCollate; returns mean and std as float64 (C,)."""
    if dtype not in OUT_DTYPES:
        raise ValueError(f"dtype: expected one of {', '.join(str(d) for d in OUT_DTYPES)}, got {dtype}")
    if (mean is None) != (std is None):
        raise ValueError(f"mean, std: expected both or neither, got mean={mean} and std={std}")
    if mean is None:
        return None, None
    if dtype == torch.uint8:
        raise ValueError("mean, std: expected a float output dtype for normalisation, got dtype=torch.uint8")
    mean_t = check_norm_values("mean", mean)
    std_t = check_norm_values("std", std)
    if mean_t.shape != std_t.shape:
        raise ValueError(f"mean, std: expected the same length, got {len(mean_t)} and {len(std_t)}")
    if not bool((std_t > 0).all()):
        raise ValueError(f"std: expected values > 0, got {std_t.tolist()}")
    return mean_t, std_t


# -- segmentation masks ----------------------------------------------------------------------------

MASK_DTYPES = (torch.uint8, torch.int16, torch.int32, torch.int64)


def check_ignore_index(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"ignore_index: expected an int, got {type_name(value)}")
    return value


def check_masks(masks: Any, images: torch.Tensor, num_classes: int, ignore_index: int) -> None:
    """masks: (B, H, W) integer class maps beside images (B, ..., H, W), on their device, values in
    [0, num_classes) or ignore_index (read on the CPU only: a GPU read would stall the stream)."""
    check_tensor("masks", masks)
    check_strided("masks", masks)
    if masks.dtype not in MASK_DTYPES:
        raise TypeError(f"masks: expected an integer class map of dtype {dtype_names(MASK_DTYPES)}, got "
                        f"{dtype_name(masks.dtype)}")
    expected = (images.shape[0],) + tuple(images.shape[-2:]) if images.dim() >= 3 else None
    if expected is None or tuple(masks.shape) != expected:
        raise ValueError(f"masks: expected shape {expected} (the images' (B, H, W)), got {tuple(masks.shape)}"
                         if expected else f"masks: expected images of shape (B, C, H, W) beside them, got images of "
                         f"shape {tuple(images.shape)}")
    if masks.device != images.device:
        raise ValueError(f"masks: expected a tensor on the images' device {images.device}, got {masks.device}")
    if masks.numel() and masks.stride(-1) != 1:
        raise ValueError(f"masks: expected a tensor whose last dim is contiguous (stride 1; it is mixed in place as "
                         f"bytes), got strides {tuple(masks.stride())}; call .contiguous() first")
    if masks.numel() and elements_may_share_memory(masks):
        raise ValueError(f"masks: expected a tensor whose elements do not share memory (it is written in place), got "
                         f"strides {tuple(masks.stride())} for shape {tuple(masks.shape)}")
    if memory_overlaps(masks, images):
        raise ValueError("masks: expected a tensor apart from the images, got one that shares their memory")
    if masks.requires_grad:
        raise ValueError("masks: expected a tensor that does not require grad, got one that does")
    if not torch.compiler.is_compiling():
        check_writable_here("masks", masks)
    if masks.device.type == "cpu" and masks.numel() and not mask_values_valid(masks, num_classes, ignore_index):
        bad = ((masks < 0) | (masks >= num_classes)) & (masks != ignore_index)
        where = tuple(int(v) for v in bad.nonzero()[0])
        raise ValueError(f"masks{list(where)}: expected a class in [0, {num_classes}) or ignore_index="
                         f"{ignore_index}, got {int(masks[where])}")


def mask_values_valid(masks: torch.Tensor, num_classes: int, ignore_index: int) -> bool:
    """Whether every value is a class in [0, num_classes) or ignore_index, in one or two vectorised
    reductions for the common cases (comparisons into bool tensors cost ~20 ms per 12.8 M pixels
    each here; a min/max ~0.2 ms): no ignored pixel, ignore_index -1, or uint8 with 255."""
    low, high = (int(v) for v in torch.aminmax(masks))
    if low >= 0 and high < num_classes:
        return True
    if ignore_index == -1 and low >= -1 and high < num_classes:
        return True
    if masks.dtype == torch.uint8 and ignore_index == 255 and num_classes <= 255:
        # 255 + 1 wraps to 0, every other value v to v + 1: the largest non-ignored value, plus one
        return int((masks + 1).max()) <= num_classes
    return not bool((((masks < 0) | (masks >= num_classes)) & (masks != ignore_index)).any())
