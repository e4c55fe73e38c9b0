"""Bad-input cases for the four ops, Mixup and MixupCollate, on every CPU backend, and how each
call ended; and label and mask dtypes at and beyond their limits on every entry point.

A bad-input case is one valid call with exactly one argument made bad: a bad value, dtype, device
(meta), layout or size. The promise (README): it raises ValueError or TypeError, the message names
the argument, and every input is bit-identical afterwards, the bytes outside a view included.
A dtype case gives labels or masks of any integer dtype torch has (and bool), with num_classes and
ignore_index at and beyond that dtype's limits: a valid one must be accepted and give what the same
call gives with int64 labels or masks, bit for bit; any other must be refused as above.
``tests/test_fuzz.py`` draws cases with hypothesis and asserts that promise; run this file to count
the outcomes of many cases:

    python -m tests.fuzz_cases --cases 3200          # counts per outcome, and a few of each kind
"""
from __future__ import annotations

import argparse
import collections
import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

import fastmix
import fastmix.transforms
from fastmix.backends import resolve_backend
from fastmix.backends.checks import dtype_name

BACKENDS = [name for name in ("cpp", "numba", "torch") if fastmix.available_backends()[name] is None]
REFUSED = "refused: ValueError/TypeError naming the argument, inputs untouched"
ACCEPTED = "accepted and correct: as with int64 labels and masks, bit for bit"


@dataclass
class Case:
    entry: str  # which entry point
    backend: str
    what: str  # what is wrong, in words
    argument: str  # the name the message must carry ("a|b": either, for a mismatch of two arguments)
    call: Callable[[], Any]
    inputs: List[Any] = field(default_factory=list)  # every tensor / array the call receives
    # A valid call: correct(result) says whether its result is right (None: a bad input, to refuse).
    correct: Optional[Callable[[Any], bool]] = None

    @property
    def expected(self) -> str:
        return REFUSED if self.correct is None else ACCEPTED

    def __str__(self) -> str:
        if self.correct is not None:
            return f"{self.entry} [{self.backend}]: {self.what} (valid: must match int64)"
        return f"{self.entry} [{self.backend}]: {self.what} (must name {self.argument!r})"


# -- what a call did -------------------------------------------------------------------------------


def _snapshot(value: Any) -> Any:
    """The bytes of a tensor's whole storage (outside a view too), or of an array's base."""
    if isinstance(value, torch.Tensor):
        if value.device.type != "cpu" or value.layout != torch.strided:
            return None
        storage = value.untyped_storage()
        return bytes(storage) if storage.nbytes() else b""
    if isinstance(value, np.ndarray):
        base = value
        while isinstance(base.base, np.ndarray):
            base = base.base
        return base.tobytes() if base.dtype != object else None
    return None


def outcome(case: Case) -> str:
    before = [_snapshot(x) for x in case.inputs]
    try:
        result = case.call()
    except (ValueError, TypeError) as exc:
        if case.correct is not None:
            return f"valid input refused: {type(exc).__name__}: {exc}"
        message = str(exc)
        after = [_snapshot(x) for x in case.inputs]
        if any(b is not None and b != a for b, a in zip(before, after)):
            return "written before the error"
        names = case.argument.split("|")
        if not any(re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", message) for name in names):
            return f"{type(exc).__name__} without the argument's name"
        return REFUSED
    except Exception as exc:  # noqa: BLE001 - the point is to see every other kind
        return f"wrong error type: {type(exc).__name__}"
    if case.correct is None:
        return "accepted (no error)"
    return ACCEPTED if case.correct(result) else "accepted but not as with int64"


# -- valid inputs ----------------------------------------------------------------------------------


def _images(rng: random.Random, batch: int, dtype: torch.dtype, height: int, width: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(rng.randrange(1 << 30))
    values = torch.rand(batch, 3, height, width, generator=generator)
    images = (values * 255).to(dtype) if dtype == torch.uint8 else values.to(dtype)
    layout = rng.choice(["contiguous", "channels_last", "gapped"])
    if layout == "channels_last":
        return images.contiguous(memory_format=torch.channels_last)
    if layout == "gapped":  # a view with bytes around it that must stay as they are
        wide = torch.zeros(batch, 3, height, width + 2, dtype=dtype)
        wide[..., 1:-1] = images
        return wide[..., 1:-1]
    return images


def _params(rng: random.Random, batch: int, height: int, width: int) -> Tuple[torch.Tensor, ...]:
    mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", num_classes=10, seed=rng.randrange(1 << 30))
    return mix.sample(batch, height, width).as_tuple()


META = torch.device("meta")


def _bad_param(rng: random.Random, name: str, value: torch.Tensor, batch: int, height: int) -> Tuple[str, torch.Tensor]:
    """(what, bad tensor) for one MixParams field."""
    bad = value.clone()
    choice = rng.choice(["value", "dtype", "shape", "meta"])
    if choice == "dtype":
        other = {torch.int64: torch.int32, torch.float32: torch.float64, torch.uint8: torch.int64}[value.dtype]
        return f"{name} as {other}", value.to(other)
    if choice == "shape":
        return f"{name} of one sample too many", torch.cat([value, value[:1]])
    if choice == "meta":
        return f"{name} on the meta device", value.to(META)
    i = rng.randrange(batch)
    if name == "partner":
        bad[i] = rng.choice([batch, -1, 1 << 40])
    elif name == "lam":
        bad[i] = rng.choice([float("nan"), float("inf"), -0.5, 1.5])
    elif name == "kind":
        bad[i] = rng.choice([6, 255])
    else:
        bad[i] = torch.tensor(rng.choice([[3, 1, 0, 1], [0, height + 1, 0, 1], [-1, 1, 0, 1]]))
    return f"{name}[{i}] = {bad[i].tolist()}", bad


# -- the entry points ------------------------------------------------------------------------------


def case_mix(rng: random.Random, backend: str) -> Case:
    """The raw in-place op, through the backend (what torch.ops.fastmix.mix_ is for cpp)."""
    batch, height, width = rng.randint(1, 6), rng.randint(1, 7), rng.randint(1, 7)
    images = _images(rng, batch, rng.choice([torch.uint8, torch.float32, torch.float16]), height, width)
    partner, lam, kind, box = _params(rng, batch, height, width)
    kind = torch.full_like(kind, 2)  # every sample pastes: its box is read
    fields = {"partner": partner, "lam": lam, "kind": kind, "box": box}
    pixel_mask = mask_field = field_threshold = None
    target = rng.choice(["images"] * 2 + list(fields) + ["pixel_mask", "mask_field", "field_threshold"])
    if target in ("mask_field", "field_threshold"):  # every sample's mask cut from a field (FMix, elem mode)
        fields["kind"] = torch.full_like(kind, 3)
        dy, dx = torch.randint(0, height, (batch,)), torch.randint(0, width, (batch,))
        fields["box"] = torch.stack([dy, dy + height, dx, dx + width], dim=1)
        mask_field, field_threshold = torch.rand(height, width), torch.rand(batch)
        choices = {"mask_field": ["missing", "float64", "shape", "strided", "meta", "beside pixel_mask", "window"],
                   "field_threshold": ["missing", "float64", "shape", "meta"]}[target]
        choice = rng.choice(choices)
        what = f"{target} {choice}"
        if choice == "beside pixel_mask":
            pixel_mask, target = torch.zeros(batch, height, width, dtype=torch.uint8), "pixel_mask"
        elif choice == "window":
            i = rng.randrange(batch)
            fields["box"][i] = torch.tensor(rng.choice([[height, 2 * height, 0, width], [0, height + 1, 0, width],
                                                        [0, height, -1, width - 1]]))
            what, target = f"box[{i}] = {fields['box'][i].tolist()} (a window of mask_field)", "box"
        elif target == "mask_field":
            mask_field = {"missing": None, "float64": mask_field.double(), "shape": torch.rand(height, width + 1),
                          "strided": torch.rand(width, height).t(), "meta": mask_field.to(META)}[choice]
            if choice == "strided" and (height == 1 or width == 1):  # a line is contiguous either way
                mask_field = torch.rand(height + 1, width)
        else:
            field_threshold = {"missing": None, "float64": field_threshold.double(), "shape": torch.rand(batch + 1),
                               "meta": field_threshold.to(META)}[choice]
    elif target == "pixel_mask":  # every sample masks (FMix, ClassMix): its plane is read
        fields["kind"] = torch.full_like(kind, 3)
        choice = rng.choice(["missing", "bool", "shape", "meta", "strided"])
        what = f"pixel_mask {choice}"
        planes = torch.randint(0, 2, (batch, height, width), dtype=torch.uint8)
        pixel_mask = {"missing": None, "bool": planes.bool(), "shape": torch.zeros(batch, height, width + 1, dtype=torch.uint8),
                      "meta": planes.to(META),
                      # planes stored column by column: not dense (H, W) planes
                      "strided": torch.randint(0, 2, (batch, width, height), dtype=torch.uint8).transpose(1, 2)}[choice]
        if choice == "strided" and (height == 1 or width == 1):  # a line is dense either way: refuse by shape
            pixel_mask = torch.zeros(batch, height + 1, width, dtype=torch.uint8)
    elif target == "images":
        choice = rng.choice(["int32", "bool", "complex", "0-d", "expanded", "meta", "sparse"])
        what = f"images {choice}"
        if choice in ("int32", "bool", "complex"):
            images = images.float().to({"int32": torch.int32, "bool": torch.bool, "complex": torch.complex64}[choice])
        elif choice == "0-d":
            images = torch.tensor(1.0)
        elif choice == "expanded":  # three channels at one address: an in-place mix would race
            images = images[:, :1].expand(-1, 3, -1, -1)
        elif choice == "meta":
            images = images.to(META)
        else:
            images = images.float().to_sparse()
    else:
        what, fields[target] = _bad_param(rng, target, fields[target], batch, height)
    ops = resolve_backend(backend, "cpu")
    args = (images, fields["partner"], fields["lam"], fields["kind"], fields["box"])
    masks = {"pixel_mask": pixel_mask, "mask_field": mask_field, "field_threshold": field_threshold}
    inputs = list(args) + [t for t in masks.values() if t is not None]
    return Case("mix_", backend, what, target, lambda: ops.mix_(*args, **masks), inputs)


def case_mix_targets(rng: random.Random, backend: str) -> Case:
    batch, num_classes = rng.randint(1, 6), rng.randint(1, 12)
    labels = torch.tensor([rng.randrange(num_classes) for _ in range(batch)])
    partner, lam, kind, _ = _params(rng, batch, 4, 4)
    fields = {"partner": partner, "lam": lam, "kind": kind}
    smoothing = 0.1
    target = rng.choice(["labels", "labels", "num_classes", "smoothing"] + list(fields))
    if target == "labels":
        choice = rng.choice(["above", "negative", "float", "bool", "complex", "3-d", "width", "meta"])
        what = f"labels {choice}"
        i = rng.randrange(batch)
        if choice == "above":
            labels[i] = num_classes
        elif choice == "negative":
            labels[i] = -1
        elif choice == "float":
            labels = labels.float()
        elif choice == "bool":
            labels = labels > 0
        elif choice == "complex":
            labels = torch.zeros(batch, num_classes, dtype=torch.complex64)
        elif choice == "3-d":
            labels = labels.view(batch, 1, 1)
        elif choice == "width":
            labels = torch.zeros(batch, num_classes + 1)
        else:
            labels = labels.to(META)
    elif target == "num_classes":
        num_classes = rng.choice([0, -3])
        what = f"num_classes = {num_classes}"
    elif target == "smoothing":
        smoothing = rng.choice([-0.1, 1.5, float("nan")])
        what = f"smoothing = {smoothing}"
    else:
        what, fields[target] = _bad_param(rng, target, fields[target], batch, 4)
    ops = resolve_backend(backend, "cpu")
    args = (labels, fields["partner"], fields["lam"], fields["kind"])
    return Case("mix_targets", backend, what, target, lambda: ops.mix_targets(*args, num_classes, smoothing), list(args))


def case_mix_into(rng: random.Random, backend: str) -> Case:
    """The raw out-of-place ops: mix_into_ (a batch) and collate_mix_ (a list of samples), uint8 HWC
    samples to a normalised float32 or a uint8 batch."""
    batch, height, width = rng.randint(1, 5), rng.randint(1, 6), rng.randint(1, 6)
    generator = torch.Generator().manual_seed(rng.randrange(1 << 30))
    images = torch.randint(0, 256, (batch, height, width, 3), dtype=torch.uint8, generator=generator)
    float_out = rng.random() < 0.5
    out = torch.zeros(batch, 3, height, width, dtype=torch.float32 if float_out else torch.uint8)
    scale = torch.full((3,), 1 / 255.0) if float_out else torch.empty(0)
    bias = torch.zeros(3) if float_out else torch.empty(0)
    partner, lam, kind, box = _params(rng, batch, height, width)
    fields = {"partner": partner, "lam": lam, "kind": kind, "box": box}
    kind.fill_(2)
    entry = rng.choice(["mix_into_", "collate_mix_"])
    target = rng.choice(["out", "images", "scale"] + list(fields))
    if target == "out":
        choice = rng.choice(["int32", "shape", "overlap", "meta"])
        what = f"out {choice}"
        if choice == "int32":
            out = out.to(torch.int32)
        elif choice == "shape":  # a mismatch: either name will do
            out = out[:, :, :, :-1] if width > 1 else out[:, :2]
            target = "out|images" if entry == "mix_into_" else "out|samples[0]"
        elif choice == "overlap":  # out over the images' own memory
            out = images.view(torch.uint8).view(batch, height, width, 3).permute(0, 3, 1, 2)
            scale, bias = torch.empty(0), torch.empty(0)
        else:
            out = out.to(META)
    elif target == "images":
        choice = rng.choice(["int16", "shape", "meta"])
        what = f"images {choice}"
        if choice == "int16":
            images = images.to(torch.int16)
        elif choice == "shape":
            images = images[:, :, :, :2]
        else:
            images = images.to(META)
        if entry == "collate_mix_":
            target = "samples[0]"
    elif target == "scale":
        if not float_out:
            out, scale, bias = out.float(), torch.full((3,), 1 / 255.0), torch.zeros(3)
        choice = rng.choice(["nan", "length", "dtype"])
        what = f"scale {choice}"
        if choice == "nan":
            scale[rng.randrange(3)] = float("nan")
        elif choice == "length":
            scale = scale[:2]
        else:
            scale = scale.double()
    else:
        what, fields[target] = _bad_param(rng, target, fields[target], batch, height)
    ops = resolve_backend(backend, "cpu")
    params = (fields["partner"], fields["lam"], fields["kind"], fields["box"])
    if entry == "mix_into_":
        args = (out, images) + params + (scale, bias, True)
        return Case(entry, backend, what, target, lambda: ops.mix_into_(*args), [out, images, *params, scale, bias])
    samples = list(images.unbind(0))
    args = (out, samples) + params + (scale, bias, True)
    return Case(entry, backend, what, target, lambda: ops.collate_mix_(*args), [out, *samples, *params, scale, bias])


def case_mixup(rng: random.Random, backend: str) -> Case:
    """The public front end: Mixup(...) built, then called."""
    batch, height, width = rng.randint(2, 6), rng.randint(1, 7), rng.randint(1, 7)
    images = _images(rng, batch, rng.choice([torch.uint8, torch.float32]), height, width)
    labels = torch.tensor([rng.randrange(10) for _ in range(batch)])
    knobs: Dict[str, Any] = dict(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=10)
    if rng.random() < 0.5:  # ResizeMix on too: its box and resize beside Mixup's and CutMix's
        knobs.update(resizemix_alpha=1.0, resizemix_interpolation=rng.choice(["bilinear", "nearest"]))
    target = rng.choice(["images", "labels", "knob"])
    if target == "knob":
        name, value = rng.choice([
            ("mixup_alpha", float("nan")), ("mixup_alpha", -1.0), ("cutmix_alpha", "1"), ("prob", 1.5),
            ("switch_prob", float("nan")), ("mode", "half"), ("label_smoothing", -0.1), ("num_classes", 0),
            ("num_classes", True), ("cutmix_minmax", (0.8, 0.2)), ("correct_lam", 1), ("seed", 1.5),
            ("multi_label", "yes"), ("backend", "gpu"), ("num_classes", 2**40), ("num_classes", 2**64),
            ("mixup_alpha", 1e400), ("prob", None),
            ("fmix_alpha", -1.0), ("fmix_alpha", float("nan")), ("fmix_decay_power", 0.0), ("fmix_decay_power", "3"),
            ("classmix", 1), ("method_probs", {"resizemix": 1.0}), ("method_probs", {"fmix": 1.0}),
            ("method_probs", [1.0]), ("method_probs", {"mixup": float("inf")}), ("method_probs", {"saliencymix": 1}),
            ("resizemix_alpha", -1.0), ("resizemix_alpha", float("inf")), ("resizemix_alpha", True),
            ("resizemix_lam_min", 0.9), ("resizemix_lam_min", -0.1), ("resizemix_lam_max", 1.5),
            ("resizemix_lam_max", float("nan")), ("resizemix_lam_max", "0.8"),
            ("resizemix_interpolation", "bicubic"), ("resizemix_interpolation", None),
        ])
        knobs.setdefault("backend", backend)
        knobs[name] = value
        return Case("Mixup(...)", backend, f"{name}={value!r}", name, lambda: fastmix.Mixup(**knobs), [images, labels])
    if target == "images":
        choice = rng.choice(["int32", "3-d", "meta", "requires_grad"])
        what = f"images {choice}"
        if choice == "int32":
            images = images.to(torch.int32)
        elif choice == "3-d":
            images = images[:, 0]
        elif choice == "meta":
            images = images.to(META)
        else:
            images = images.float().requires_grad_()
    else:
        choice = rng.choice(["above", "float", "batch", "meta", "2-d width"])
        what = f"labels {choice}"
        if choice == "above":
            labels[rng.randrange(batch)] = 10
        elif choice == "float":
            labels = labels.float()
        elif choice == "batch":
            labels = labels[1:]
        elif choice == "meta":
            labels = labels.to(META)
        else:
            labels = torch.zeros(batch, 11)
    mix = fastmix.Mixup(backend=backend, seed=0, **knobs)
    return Case("Mixup(images, labels)", backend, what, target, lambda: mix(images, labels), [images, labels])


def case_collate(rng: random.Random, backend: str) -> Case:
    batch, height, width = rng.randint(2, 5), rng.randint(1, 6), rng.randint(1, 6)
    samples: List[Any] = [(np.full((height, width, 3), 20 * i, dtype=np.uint8), i % 10) for i in range(batch)]
    settings: Dict[str, Any] = dict(dtype=torch.float32, mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2))
    target = rng.choice(["samples", "labels", "mean", "std"])
    argument = target
    if target == "samples":
        i = rng.randrange(1, batch)
        choice = rng.choice(["shape", "dtype", "object", "big-endian", "empty"])
        what = f"samples[{i}] {choice}"
        argument = f"samples[{i}]" if choice in ("shape", "dtype") else "samples[0]"
        if choice == "shape":
            samples[i] = (np.zeros((height + 1, width, 3), dtype=np.uint8), 0)
        elif choice == "dtype":
            samples[i] = (np.zeros((height, width, 3), dtype=np.int16), 0)
        elif choice == "object":
            samples = [(np.zeros((height, width, 3), dtype=object), 0) for _ in range(batch)]
        elif choice == "big-endian":
            samples = [(np.zeros((height, width, 3), dtype=">f4"), 0) for _ in range(batch)]
        else:
            samples = []
            argument = "samples"
    elif target == "labels":
        i = rng.randrange(batch)
        argument = f"samples[{i}]"
        choice = rng.choice(["above", "negative", "float", "string"])
        what = f"label of samples[{i}] {choice}"
        samples[i] = (samples[i][0], {"above": 10, "negative": -1, "float": 1.5, "string": "cat"}[choice])
    else:
        value = rng.choice([float("nan"), float("inf"), "0.5", (0.5, 0.5), -0.2 if target == "std" else None])
        if value is None:
            value = {"a": 1}
        what = f"{target}={value!r}"
        settings[target] = value if isinstance(value, (tuple, dict, str)) else (value,) * 3
    mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=10, seed=0, backend=backend)
    inputs = [s[0] for s in samples]

    def call() -> Any:
        return fastmix.MixupCollate(mix, **settings)(samples)

    return Case("MixupCollate", backend, what, argument, call, inputs)


# -- label and mask dtypes at and beyond their limits: valid ones as int64 ones, the rest refused ----

INTEGER_DTYPES = [torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.uint16, torch.uint32,
                  torch.uint64, torch.bool]
MAX_TARGET_CLASSES = 2**17  # the most classes a valid case allocates (B, C) targets for


def _limits(dtype: torch.dtype) -> Tuple[int, int]:
    return (0, 1) if dtype == torch.bool else (torch.iinfo(dtype).min, torch.iinfo(dtype).max)


def _tensor_of(values: List[int], dtype: torch.dtype) -> torch.Tensor:
    """values (each one the dtype holds) as a tensor of that dtype (uint64 above int64's range too)."""
    if dtype == torch.uint64:
        return torch.tensor([v - 2**64 if v >= 2**63 else v for v in values], dtype=torch.int64).view(torch.uint64)
    return torch.tensor(values, dtype=torch.int64).to(dtype) if dtype != torch.bool else torch.tensor(values).bool()


def _same(a: Any, b: Any) -> bool:
    """Bit for bit, through tuples, MaskTargets and CompactTargets (integer tensors compared as int64)."""
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        if a.is_floating_point() or b.is_floating_point():
            return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.view(torch.uint8), b.view(torch.uint8))
        return a.shape == b.shape and torch.equal(a.to(torch.int64), b.to(torch.int64))
    return a == b


def _label_values(rng: random.Random, dtype: torch.dtype, batch: int) -> Tuple[List[int], int]:
    """(values the dtype holds, num_classes) at and beyond the dtype's limits."""
    low, high = _limits(dtype)
    num_classes = min(rng.choice([1, 2, 200, high, high + 1, high + 2, 2**31 - 1]), 2**31 - 1)
    num_classes = max(num_classes, 1)
    near = [0, num_classes - 1, num_classes, high, low, -1, 1]
    values = [rng.choice(near) if rng.random() < 0.3 else rng.randrange(min(num_classes, high + 1)) for _ in range(batch)]
    values = [v for v in values if low <= v <= high] + [0] * batch
    values = values[:batch]
    if all(0 <= v < num_classes for v in values) and num_classes > MAX_TARGET_CLASSES:
        num_classes = rng.choice([200, 40000])  # a valid case small enough to allocate its targets
        values = [v if v < num_classes else rng.randrange(num_classes) for v in values]
    return values, num_classes


def case_label_dtype(rng: random.Random, backend: str) -> Case:
    """Class-index labels of every integer dtype (and bool) on every entry point: valid ones give
    what int64 labels give, bit for bit; an out-of-range value or a bool dtype is refused by name."""
    batch, height, width = rng.randint(2, 5), rng.randint(1, 6), rng.randint(1, 6)
    dtype = rng.choice(INTEGER_DTYPES)
    values, num_classes = _label_values(rng, dtype, batch)
    valid = dtype != torch.bool and all(0 <= v < num_classes for v in values)
    labels, wide = _tensor_of(values, dtype), torch.tensor([v if v < 2**63 else 0 for v in values])
    entry = rng.choice(["Mixup", "mix_targets", "op mix_targets", "MixupCollate", "FastCollateMixup", "MixUp", "CutMix"])
    generator = torch.Generator().manual_seed(rng.randrange(1 << 30))
    images = torch.rand(batch, 3, height, width, generator=generator)
    hwc = (images * 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    seed = rng.randrange(1 << 30)
    bad = next((i for i, v in enumerate(values) if not 0 <= v < num_classes), None)
    argument = "labels" if bad is None or dtype == torch.bool else f"labels[{bad}]"

    def run(y: torch.Tensor) -> Any:
        mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", num_classes=num_classes, seed=seed,
                            backend=backend)
        if entry == "Mixup":
            return mix(images.clone(), y)
        if entry in ("mix_targets", "op mix_targets"):
            params = mix.sample(batch, height, width)
            if entry == "mix_targets":
                return fastmix.mix_targets(y, params, num_classes, 0.1, backend=backend)
            return resolve_backend(backend, "cpu").mix_targets(y, *params.as_tuple()[:3], num_classes, 0.1)
        if entry in ("MixupCollate", "FastCollateMixup"):
            samples = [(hwc[i] if entry == "MixupCollate" else hwc[i].transpose(2, 0, 1).copy(), y[i]) for i in range(batch)]
            if entry == "MixupCollate":
                return fastmix.MixupCollate(mix)(samples)
            return fastmix.FastCollateMixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", num_classes=num_classes,
                                            seed=seed, backend=backend)(samples)
        transform = (fastmix.transforms.MixUp if entry == "MixUp" else fastmix.transforms.CutMix)(
            num_classes=num_classes, seed=seed, backend=backend)
        return transform(images.clone(), y)

    if entry in ("MixupCollate", "FastCollateMixup"):  # a sample's label: named by its sample
        argument = "samples[0]" if dtype == torch.bool else (f"samples[{bad}]" if bad is not None else argument)
    what = f"{dtype_name(dtype)} labels {values} with num_classes={num_classes}"
    expected = run(wide) if valid else None
    return Case(entry, backend, what, argument, lambda: run(labels), [labels],
                (lambda result: _same(result, expected)) if valid else None)


MASK_ACCEPTED = (torch.uint8, torch.int16, torch.int32, torch.int64)


def case_mask_dtype(rng: random.Random, backend: str) -> Case:
    """Segmentation masks of every integer dtype (and bool), with num_classes and ignore_index at
    and beyond the dtype's limits (and beyond int64's): a valid call gives what int64 masks give,
    bit for bit; a dtype the masks cannot be, an ignore_index that is no int64, or a value that is
    neither a class nor ignore_index (compared exactly, never wrapped into the dtype) is refused."""
    batch, height, width = rng.randint(2, 4), rng.randint(1, 5), rng.randint(1, 5)
    dtype = rng.choice(INTEGER_DTYPES)
    low, high = _limits(dtype)
    num_classes = min(rng.choice([1, 21, high, high + 1, 40000, 2**31 - 1]), 2**31 - 1)
    ignore_index = rng.choice([255, -1, -100, 511, 65535, high, low, high + 1, low - 1, 2**63 - 1, 2**70, -2**70])
    pool = [0, num_classes - 1, num_classes, ignore_index, high, low, 255, -1]
    pixels = [rng.choice(pool) if rng.random() < 0.15 else rng.randrange(min(num_classes, high + 1))
              for _ in range(batch * height * width)]
    pixels = [v if low <= v <= high else 0 for v in pixels]
    masks = _tensor_of(pixels, dtype).view(batch, height, width)
    wide = torch.tensor(pixels).view(batch, height, width) if dtype != torch.uint64 else masks.view(torch.int64)
    fits = -2**63 <= ignore_index < 2**63
    invalid_pixel = next((i for i, v in enumerate(pixels) if not (0 <= v < num_classes or v == ignore_index)), None)
    valid = dtype in MASK_ACCEPTED and fits and invalid_pixel is None
    entry = rng.choice(["Mixup", "MixupCollate"])
    seed = rng.randrange(1 << 30)
    generator = torch.Generator().manual_seed(rng.randrange(1 << 30))
    images = (torch.rand(batch, 3, height, width, generator=generator) * 255).to(torch.uint8)

    def run(m: torch.Tensor) -> Any:
        mix = fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode="elem", num_classes=num_classes, seed=seed,
                            backend=backend, ignore_index=ignore_index)
        if entry == "Mixup":
            return mix(images.clone(), None, masks=m.clone())
        samples = [(images[i].permute(1, 2, 0).contiguous().numpy(), m[i]) for i in range(batch)]
        return fastmix.MixupCollate(mix, masks=True)(samples)

    if not fits:
        argument = "ignore_index"
    elif dtype not in MASK_ACCEPTED:
        argument = "masks" if entry == "Mixup" else "samples[0]"
    else:
        sample = invalid_pixel // (height * width) if invalid_pixel is not None else 0
        argument = "masks" if entry == "Mixup" else f"samples[{sample}]"
    what = f"{dtype_name(dtype)} masks with num_classes={num_classes}, ignore_index={ignore_index}"
    if valid:  # as int64 masks give it (MaskTargets' masks compared as int64)
        expected = run(wide)
        return Case(entry, backend, what, argument, lambda: run(masks), [masks], lambda result: _same(result, expected))
    return Case(entry, backend, what, argument, lambda: run(masks), [masks])


ENTRIES = [case_mix, case_mix_targets, case_mix_into, case_mixup, case_collate, case_label_dtype, case_mask_dtype]


def draw_case(rng: random.Random) -> Case:
    return rng.choice(ENTRIES)(rng, rng.choice(BACKENDS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--examples", type=int, default=3, help="cases printed per failing outcome")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    counts: Dict[str, int] = collections.Counter()
    examples: Dict[str, List[str]] = collections.defaultdict(list)
    for _ in range(args.cases):
        case = draw_case(rng)
        result = outcome(case)
        counts[result] += 1
        if result != case.expected and len(examples[result]) < args.examples and str(case) not in examples[result]:
            examples[result].append(str(case))
    for result, count in counts.most_common():
        print(f"{count:6d}  {result}")
        for example in examples[result]:
            print(f"          e.g. {example}")


if __name__ == "__main__":
    main()
