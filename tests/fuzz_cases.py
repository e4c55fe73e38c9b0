"""Bad-input cases for the four ops, Mixup and MixupCollate, on every CPU backend, and how each
call ended.

A case is one valid call with exactly one argument made bad: a bad value, dtype, device (meta),
layout or size. The promise (README): it raises ValueError or TypeError, the message names the
argument, and every input is bit-identical afterwards, the bytes outside a view included.
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
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import torch

import fastmix
from fastmix.backends import resolve_backend

BACKENDS = [name for name in ("cpp", "numba", "torch") if fastmix.available_backends()[name] is None]
REFUSED = "refused: ValueError/TypeError naming the argument, inputs untouched"


@dataclass
class Case:
    entry: str  # which entry point
    backend: str
    what: str  # what is wrong, in words
    argument: str  # the name the message must carry ("a|b": either, for a mismatch of two arguments)
    call: Callable[[], Any]
    inputs: List[Any] = field(default_factory=list)  # every tensor / array the call receives

    def __str__(self) -> str:
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
        case.call()
    except (ValueError, TypeError) as exc:
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
    return "accepted (no error)"


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
        bad[i] = rng.choice([3, 255])
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
    target = rng.choice(["images"] * 2 + list(fields))
    if target == "images":
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
    return Case("mix_", backend, what, target, lambda: ops.mix_(*args), list(args))


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
    target = rng.choice(["images", "labels", "knob"])
    if target == "knob":
        name, value = rng.choice([
            ("mixup_alpha", float("nan")), ("mixup_alpha", -1.0), ("cutmix_alpha", "1"), ("prob", 1.5),
            ("switch_prob", float("nan")), ("mode", "half"), ("label_smoothing", -0.1), ("num_classes", 0),
            ("num_classes", True), ("cutmix_minmax", (0.8, 0.2)), ("correct_lam", 1), ("seed", 1.5),
            ("multi_label", "yes"), ("backend", "gpu"), ("num_classes", 2**40), ("num_classes", 2**64),
            ("mixup_alpha", 1e400), ("prob", None),
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


ENTRIES = [case_mix, case_mix_targets, case_mix_into, case_mixup, case_collate]


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
        if result != REFUSED and len(examples[result]) < args.examples and str(case) not in examples[result]:
            examples[result].append(str(case))
    for result, count in counts.most_common():
        print(f"{count:6d}  {result}")
        for example in examples[result]:
            print(f"          e.g. {example}")


if __name__ == "__main__":
    main()
