"""MixupCollate: a DataLoader collate_fn that stacks, mixes, converts and normalises in one pass.

    collate = fastmix.MixupCollate(fastmix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, num_classes=1000))
    loader = DataLoader(ds, batch_size=256, num_workers=8, collate_fn=collate, pin_memory=True)
    for images, targets in loader: ...

Each output sample is written once, from its own sample and its partner's: no stack-then-mix, no
intermediate float batch. Inside a DataLoader worker the batch is allocated in shared memory, as
default_collate does, so it is not copied again on its way to the main process.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, List, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import default_collate, get_worker_info

from .checks import INPUT_DTYPES, check_bool, check_collate_mixup, check_collate_settings, dtype_name, dtype_names
from .mixup import Mixup
from .sampling.params import MixParams
from .sampling.policy import MixPolicy
from .sampling.sample import sample_params
from .sampling.shared import SharedPolicy, shared_knob
from .targets import CompactTargets, soft_targets


def _as_image_tensor(image: Any, index: int) -> Tuple[torch.Tensor, bool]:
    """(tensor, hwc): torch tensors are (C, H, W); numpy arrays and PIL images are (H, W[, C])."""
    if isinstance(image, torch.Tensor):
        if image.dim() != 3:
            raise ValueError(f"samples[{index}]: expected an image tensor of shape (C, H, W), got shape {tuple(image.shape)}")
        return image, False
    if not isinstance(image, np.ndarray):
        if hasattr(image, "mode") and hasattr(image, "size"):  # PIL.Image, without importing PIL
            image = np.asarray(image)
        else:
            raise TypeError(
                f"samples[{index}]: expected the image as a torch tensor (C, H, W), a numpy array (H, W, C) or a "
                f"PIL image, got {type(image).__name__}"
            )
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise ValueError(f"samples[{index}]: expected a numpy image of shape (H, W, C) or (H, W), got shape {image.shape}")
    if not image.flags.c_contiguous:
        image = np.ascontiguousarray(image)
    # PIL's arrays are read-only: the kernels only read samples, so no copy (2.5 ms of a 128-image
    # batch); the caller silences torch.from_numpy's warning about them.
    return torch.from_numpy(image), True


def _empty_batch(shape: Tuple[int, ...], dtype: torch.dtype, channels_last: bool) -> torch.Tensor:
    """An uninitialised batch; in a DataLoader worker, in shared memory (as default_collate does)."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if get_worker_info() is None:
        return torch.empty(shape, dtype=dtype, memory_format=memory_format)
    strides = torch.empty(shape, dtype=dtype, device="meta", memory_format=memory_format).stride()
    itemsize = torch.empty((), dtype=dtype).element_size()
    storage = torch.UntypedStorage._new_shared(math.prod(shape) * itemsize)
    return torch.empty(0, dtype=dtype).set_(storage, 0, shape, strides)


class MixupCollate:
    """A picklable ``collate_fn`` that mixes while it collates.

    Args:
        mixup: the :class:`fastmix.Mixup` policy (its seed, mode, label smoothing, backend and
            ``mixup_enabled`` apply).
        dtype: output image dtype: ``torch.uint8`` (samples must be uint8; the cheapest to pin and
            send to a GPU) or float32 / bfloat16 / float16 (uint8 samples are scaled by 1/255).
        mean, std: per-channel normalisation of float outputs, in the [0, 1] scale:
            ``(x / 255 - mean) / std`` for uint8 samples, ``(x - mean) / std`` for float ones.
        channels_last: return the batch in channels_last memory format (still shaped (B, C, H, W)).
        image_key, label_key: where the image and label are in dict samples.
        compact_targets: return :class:`CompactTargets` instead of (B, C) soft targets.
        return_params: also return the batch's :class:`MixParams` (partner, lam, kind, box), last in
            the tuple or under ``params_key`` in a dict: what was done to a batch collated in a
            DataLoader worker, for logging or replay (``mixup.last_params`` is set only in the
            process that collated, so in the main process it says nothing about worker batches).

    The Mixup's knobs can be set on the collate too, as timm's names (``collate.mixup_enabled =
    False``, ``collate.mix_prob = 0.5``, ...): they live in shared memory, so every DataLoader
    worker, forked or spawned, persistent or not, uses the new values for each batch it starts
    collating afterwards. Batches already collated (the DataLoader's prefetch, up to
    ``prefetch_factor * num_workers`` batches) keep the values they were made with.

    Samples are ``(image, label, *rest)`` tuples or dicts; images are torch tensors (C, H, W)
    (uint8 or float32), numpy arrays (H, W, C) or (H, W) uint8 (as decoded by PIL or OpenCV) or PIL
    images; labels are class indices (int or 0-d tensor) or dense (C,) targets. Returns
    ``(images (B, C, H, W), targets, *rest)`` or a dict with the images and targets under the
    image and label keys and every other field collated as default_collate does.
    """

    def __init__(
        self,
        mixup: Mixup,
        dtype: torch.dtype = torch.uint8,
        mean: Optional[Sequence[float]] = None,
        std: Optional[Sequence[float]] = None,
        channels_last: bool = False,
        image_key: str = "image",
        label_key: str = "label",
        compact_targets: bool = False,
        return_params: bool = False,
        params_key: str = "mix_params",
    ) -> None:
        check_collate_mixup(mixup)
        self.mean, self.std = check_collate_settings(dtype, mean, std)
        self.backend = mixup.backend_for(torch.device("cpu"))  # the collate runs on the CPU
        self.mixup = mixup
        self.dtype = dtype
        self.channels_last = bool(channels_last)
        self.image_key = image_key
        self.label_key = label_key
        self.compact_targets = bool(compact_targets)
        self.return_params = check_bool("return_params", return_params)
        self.params_key = params_key

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["backend"]  # each process resolves its own (a worker may be spawned)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.backend = self.mixup.backend_for(torch.device("cpu"))

    def affine(self, channels: int, uint8_input: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        """(scale, bias) float32 (C,) so that out = mixed * scale + bias; empty for uint8 output."""
        if self.dtype == torch.uint8:
            return torch.empty(0), torch.empty(0)
        mean = torch.zeros(channels, dtype=torch.float64) if self.mean is None else self.mean
        std = torch.ones(channels, dtype=torch.float64) if self.std is None else self.std
        if len(mean) == 1:
            mean, std = mean.expand(channels), std.expand(channels)
        if len(mean) != channels:
            raise ValueError(f"mean, std: expected {channels} values (the images' channels) or 1, got {len(mean)}")
        unit = 255.0 if uint8_input else 1.0
        return (1.0 / (std * unit)).float(), (-mean / std).float()

    def _split(self, samples: Sequence[Any]) -> Tuple[List[Any], List[Any], Any]:
        first = samples[0]
        if isinstance(first, Mapping):
            for i, s in enumerate(samples):
                if not isinstance(s, Mapping) or self.image_key not in s or self.label_key not in s:
                    raise ValueError(
                        f"samples[{i}]: expected a dict with keys {self.image_key!r} and {self.label_key!r}, got "
                        f"{sorted(s) if isinstance(s, Mapping) else type(s).__name__}"
                    )
            rest = [{k: v for k, v in s.items() if k not in (self.image_key, self.label_key)} for s in samples]
            return [s[self.image_key] for s in samples], [s[self.label_key] for s in samples], rest
        if isinstance(first, (tuple, list)):
            for i, s in enumerate(samples):
                if not isinstance(s, (tuple, list)) or len(s) != len(first) or len(s) < 2:
                    raise ValueError(
                        f"samples[{i}]: expected an (image, label, ...) tuple like samples[0] ({len(first)} fields), got "
                        f"{type(s).__name__} of length {len(s) if isinstance(s, (tuple, list)) else '-'}"
                    )
            return [s[0] for s in samples], [s[1] for s in samples], [tuple(s[2:]) for s in samples]
        raise TypeError(f"samples[0]: expected an (image, label, ...) tuple or a dict, got {type(first).__name__}")

    def _labels(self, labels: List[Any], policy: MixPolicy) -> torch.Tensor:
        num_classes = policy.num_classes
        first = labels[0]
        dense = isinstance(first, (torch.Tensor, np.ndarray)) and np.ndim(first) == 1
        if policy.multi_label and not dense:
            raise ValueError(f"samples[0]: expected a dense multi-label target of num_classes={num_classes} values for "
                             f"multi_label=True, got {type(first).__name__} of shape {tuple(np.shape(first))}")
        if dense:
            out = torch.stack([torch.as_tensor(y) for y in labels])
            if out.shape[1] != num_classes:
                raise ValueError(f"samples[0]: expected a dense label of num_classes={num_classes} values, got {out.shape[1]}")
            if self.compact_targets:
                raise ValueError("compact_targets: expected class-index labels, got dense (C,) labels")
            return out
        values = []
        for i, y in enumerate(labels):
            if isinstance(y, (torch.Tensor, np.ndarray)):
                if np.ndim(y) != 0:
                    raise ValueError(f"samples[{i}]: expected a class index, got a label of shape {tuple(np.shape(y))}")
                y = y.item()
            if isinstance(y, bool) or not isinstance(y, (int, np.integer)):
                raise TypeError(f"samples[{i}]: expected an integer class index, got {type(y).__name__} {y!r}")
            if not 0 <= y < num_classes:
                raise ValueError(f"samples[{i}]: expected a class index in [0, {num_classes}) (num_classes={num_classes}), "
                                 f"got {y}")
            values.append(int(y))
        return torch.tensor(values, dtype=torch.int64)

    def __call__(self, samples: Sequence[Any]) -> Any:
        if len(samples) == 0:
            raise ValueError("samples: expected at least one sample, got an empty batch")
        raw_images, raw_labels, rest = self._split(samples)
        images, hwc = [], None
        with warnings.catch_warnings():  # read-only arrays are read, never written
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            converted = [_as_image_tensor(raw, i) for i, raw in enumerate(raw_images)]
        for i, (image, is_hwc) in enumerate(converted):
            if i == 0:
                hwc, shape, dtype = is_hwc, image.shape, image.dtype
                if dtype not in INPUT_DTYPES:
                    raise TypeError(f"samples[0]: expected a {dtype_names(INPUT_DTYPES)} image, got {dtype_name(dtype)}")
                if self.dtype == torch.uint8 and dtype != torch.uint8:
                    raise TypeError(f"samples[0]: expected a uint8 image for dtype=torch.uint8 output, got {dtype_name(dtype)}")
            elif is_hwc != hwc or image.shape != shape or image.dtype != dtype:
                what = lambda h, s, d: f"{'HWC' if h else 'CHW'} {tuple(s)} {str(d).replace('torch.', '')}"  # noqa: E731
                raise ValueError(
                    f"samples[{i}]: expected an image like samples[0] ({what(hwc, shape, dtype)}), got "
                    f"{what(is_hwc, image.shape, image.dtype)}"
                )
            images.append(image)
        policy, enabled = self.mixup.shared.read()  # once: a change made meanwhile applies from the next batch
        labels = self._labels(raw_labels, policy)
        channels, height, width = (shape[2], shape[0], shape[1]) if hwc else tuple(shape)

        mix = self.mixup
        scale, bias = self.affine(channels, dtype == torch.uint8)  # may refuse: before any draw
        params = self.sample(policy, enabled, len(images), height, width)
        mix.last_params = params
        out = _empty_batch((len(images), channels, height, width), self.dtype, self.channels_last)
        self.backend.collate_mix_(out, images, *params.as_tuple(), scale, bias, hwc)
        targets = self._targets(labels, params, policy)

        if isinstance(samples[0], Mapping):
            result = default_collate(rest) if rest[0] else {}
            result[self.image_key] = out
            result[self.label_key] = targets
            if self.return_params:
                result[self.params_key] = params
            return result
        extra = (params,) if self.return_params else ()
        if rest[0]:
            return (out, targets) + tuple(default_collate(rest)) + extra
        return (out, targets) + extra

    def sample(self, policy: MixPolicy, enabled: bool, batch_size: int, height: int, width: int) -> MixParams:
        """The MixParams of one batch, drawn from the Mixup's stream."""
        return sample_params(policy, batch_size, height, width, self.mixup.generator, enabled=enabled)

    def _targets(self, labels: torch.Tensor, params: MixParams, policy: MixPolicy) -> Any:
        if self.compact_targets:
            mixed = params.mixed()
            return CompactTargets(labels, torch.where(mixed, labels[params.partner], labels),
                                  torch.where(mixed, params.lam, torch.ones_like(params.lam)))
        partner, lam, kind, _ = params.as_tuple()
        return soft_targets(self.backend, labels, partner, lam, kind, policy)

    # timm's knobs, set on the collate as timm's PrefetchLoader does (``collate.mixup_enabled =
    # False``): they are the Mixup's, shared with every DataLoader worker.
    mixup_enabled = shared_knob("enabled", "mixup_enabled")
    mixup_alpha = shared_knob("mixup_alpha", "mixup_alpha")
    cutmix_alpha = shared_knob("cutmix_alpha", "cutmix_alpha")
    cutmix_minmax = shared_knob("cutmix_minmax", "cutmix_minmax")
    mix_prob = shared_knob("prob", "mix_prob")
    switch_prob = shared_knob("switch_prob", "switch_prob")
    mode = shared_knob("mode", "mode")
    correct_lam = shared_knob("correct_lam", "correct_lam")
    label_smoothing = shared_knob("label_smoothing", "label_smoothing")
    num_classes = shared_knob("num_classes", "num_classes")
    multi_label = shared_knob("multi_label", "multi_label")

    @property
    def shared(self) -> SharedPolicy:
        return self.mixup.shared

    def __repr__(self) -> str:
        return (
            f"fastmix.MixupCollate({self.mixup!r}, dtype={self.dtype}, mean={None if self.mean is None else self.mean.tolist()}, "
            f"std={None if self.std is None else self.std.tolist()}, channels_last={self.channels_last}, "
            f"compact_targets={self.compact_targets})"
        )
