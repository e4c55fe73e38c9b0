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
import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, List, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import default_collate, get_worker_info

from .backends.checks import INPUT_DTYPES, OUT_DTYPES, check_class_indices, dtype_name, dtype_names, type_name
from . import shared_pool
from .huge_pages import empty_on_huge_pages
from .mixup import Mixup
from .masks import MASK_DTYPES, MaskTargets, check_mask_values, mask_weights, saved_partner_masks, spatial_only
from .sampling.params import MixParams
from .sampling.policy import MixPolicy, check_bool
from .sampling.sample import sample_params
from .shared_settings import SharedPolicy, with_timm_knobs
from .targets import CompactTargets, soft_targets


# -- the collate's settings ------------------------------------------------------------------------


def check_collate_mixup(mixup: Any) -> None:
    """A fastmix.Mixup whose backend can run on the CPU, where the collate runs (DataLoader workers)."""
    if not isinstance(mixup, Mixup):
        raise TypeError(f"mixup: expected a fastmix.Mixup, got {type_name(mixup)}")
    if mixup.backend == "cuda":
        raise ValueError("mixup: expected a Mixup whose backend runs on the CPU (the collate runs in DataLoader "
                         "workers), got backend='cuda'; use 'auto', 'cpp', 'numba' or 'torch'")


def check_norm_values(name: str, value: Any) -> torch.Tensor:
    """mean or std of a MixupCollate: a real number, a list or tuple of them, or a real tensor or
    numpy array on the CPU (flattened); at least one value, all finite. Returns float64 (C,)."""
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


# -- the samples -----------------------------------------------------------------------------------


def _as_image_tensor(image: Any, index: int) -> Tuple[torch.Tensor, bool]:
    """(tensor, hwc): torch tensors are (C, H, W); numpy arrays and PIL images are (H, W[, C])."""
    if isinstance(image, torch.Tensor):
        _check_cpu_tensor(image, f"samples[{index}]")
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
    _check_numpy_dtype(image, f"samples[{index}]", "image")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise ValueError(f"samples[{index}]: expected a numpy image of shape (H, W, C) or (H, W), got shape {image.shape}")
    if not image.flags.c_contiguous:
        image = np.ascontiguousarray(image)
    # PIL's arrays are read-only: the kernels only read samples, so no copy (2.5 ms of a 128-image
    # batch); the caller silences torch.from_numpy's warning about them.
    return torch.from_numpy(image), True


def _check_tuples(samples: Sequence[Any], form: str) -> None:
    """Tuple samples of at least two fields, all as long as samples[0]."""
    fields = len(samples[0])
    for i, s in enumerate(samples):
        if not isinstance(s, (tuple, list)) or len(s) != fields or len(s) < 2:
            raise ValueError(f"samples[{i}]: expected an {form} tuple like samples[0] ({fields} fields), got "
                             f"{type(s).__name__} of length {len(s) if isinstance(s, (tuple, list)) else '-'}")


def _check_cpu_tensor(value: torch.Tensor, name: str) -> None:
    """A sample's image or label tensor: strided (dense) and on the CPU, where the collate runs."""
    if value.layout != torch.strided:
        raise TypeError(f"{name}: expected a strided (dense) tensor, got layout {value.layout}")
    if value.device.type != "cpu":
        raise ValueError(f"{name}: expected a tensor on the CPU (the collate runs there), got a tensor on {value.device}")


def _check_numpy_dtype(value: np.ndarray, name: str, what: str) -> None:
    """A numpy array torch can view: numbers (not objects, strings, ...) in the machine's byte order
    (torch.from_numpy refuses the others with messages that name no sample)."""
    dtype = value.dtype
    if dtype.kind not in "biuf" or not dtype.isnative or dtype.itemsize > 8:
        order = "" if dtype.isnative else f" ({'big' if dtype.byteorder == '>' else 'little'}-endian)"
        hint = " (uint8 or float32)" if what == "image" else ""
        raise TypeError(f"{name}: expected a numpy {what} of a real dtype{hint} in the machine's byte order, got dtype "
                        f"{dtype.str if order else dtype}{order}")


def _check_label_array(label: Any, index: int) -> None:
    """A label given as a tensor or an array: real numbers torch can read on the CPU (a complex
    label would lose its imaginary part on the way to float32 targets)."""
    name = f"samples[{index}]"
    if isinstance(label, np.ndarray):
        _check_numpy_dtype(label, name, "label")
        return
    _check_cpu_tensor(label, name)
    if label.is_complex():
        raise TypeError(f"{name}: expected a label of real values, got dtype {str(label.dtype).replace('torch.', '')}")


def _empty_batch(shape: Tuple[int, ...], dtype: torch.dtype, channels_last: bool, reuse: bool = True) -> torch.Tensor:
    """An uninitialised batch: in a DataLoader worker in shared memory (as default_collate does),
    with ``reuse`` in a slot of the worker's pool that the main process has released (shared_pool.py:
    no fresh page to fault in and zero), else in memory that 2 MiB pages may back (huge_pages.py: a
    fresh batch's page faults are most of a collate's time)."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if get_worker_info() is None:
        return empty_on_huge_pages(shape, dtype, memory_format)
    pooled = shared_pool.batch_tensor(shape, dtype, memory_format) if reuse else None
    if pooled is not None:
        return pooled
    strides = torch.empty(shape, dtype=dtype, device="meta", memory_format=memory_format).stride()
    itemsize = torch.empty((), dtype=dtype).element_size()
    storage = torch.UntypedStorage._new_shared(math.prod(shape) * itemsize)
    return torch.empty(0, dtype=dtype).set_(storage, 0, shape, strides)


@with_timm_knobs  # the Mixup's knobs, settable here as timm's prefetcher sets them
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
        masks, mask_key: segmentation: samples carry a per-pixel class mask, (H, W) uint8 / int16 /
            int32 / int64 (numpy arrays, PIL 'L' or 'P' images, or tensors): ``(image, mask, *rest)``
            tuples, or dicts with the mask under ``mask_key`` (and the label, if any, under
            ``label_key``: an image-level label is mixed only in dict samples; in a tuple it is
            part of ``rest``, collated unmixed). The masks come back as :class:`fastmix.MaskTargets` in the mask's place:
            CutMix boxes pasted (the same box as the image's), the partners' masks where blended,
            and the weights; each output mask is written once. Values must be classes in
            [0, num_classes) or the Mixup's ``ignore_index``.
        return_params: also return the batch's :class:`MixParams` (partner, lam, kind, box), last in
            the tuple or under ``params_key`` in a dict: what was done to a batch collated in a
            DataLoader worker, for logging or replay (``mixup.last_params`` is set only in the
            process that collated, so in the main process it says nothing about worker batches).
        reuse_worker_memory: in a DataLoader worker, write each batch into a shared-memory slot
            that the main process has released (fastmix.shared_pool: a batch still held, or a view
            or copy of it, is never overwritten; when every slot is held a fresh one is used),
            instead of a fresh shared file per batch as default_collate does, whose pages the
            worker faults in and zeroes and the main process frees for every batch. Linux only
            (elsewhere, and with FASTMIX_WORKER_POOL=0, fresh files). A batch received from the
            pool reports ``is_shared()`` False: sending it on to another process copies it.

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
        masks: bool = False,
        mask_key: str = "mask",
        reuse_worker_memory: bool = True,
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
        self.masks = check_bool("masks", masks)
        self.mask_key = mask_key
        self.reuse_worker_memory = check_bool("reuse_worker_memory", reuse_worker_memory)

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
        scale, bias = (1.0 / (std * unit)).float(), (-mean / std).float()
        if not bool(torch.isfinite(scale).all() and torch.isfinite(bias).all()):  # past float32's range
            raise ValueError(f"mean, std: expected values whose scale 1/std and bias -mean/std fit float32, got "
                             f"mean={mean.tolist()} and std={std.tolist()}")
        return scale, bias

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
            _check_tuples(samples, "(image, label, ...)")
            return [s[0] for s in samples], [s[1] for s in samples], [tuple(s[2:]) for s in samples]
        raise TypeError(f"samples[0]: expected an (image, label, ...) tuple or a dict, got {type(first).__name__}")

    def _split_with_masks(self, samples: Sequence[Any]) -> Tuple[List[Any], Optional[List[Any]], List[Any], Any]:
        """(images, labels or None, masks, rest) of segmentation samples."""
        first = samples[0]
        if isinstance(first, Mapping):
            with_labels = self.label_key in first
            keys = (self.image_key, self.mask_key) + ((self.label_key,) if with_labels else ())
            for i, s in enumerate(samples):
                if not isinstance(s, Mapping) or any(k not in s for k in keys):
                    raise ValueError(f"samples[{i}]: expected a dict with keys {', '.join(map(repr, keys))} like "
                                     f"samples[0], got {sorted(s) if isinstance(s, Mapping) else type(s).__name__}")
            rest = [{k: v for k, v in s.items() if k not in keys} for s in samples]
            labels = [s[self.label_key] for s in samples] if with_labels else None
            return [s[self.image_key] for s in samples], labels, [s[self.mask_key] for s in samples], rest
        if isinstance(first, (tuple, list)):
            _check_tuples(samples, "(image, mask, ...)")
            return [s[0] for s in samples], None, [s[1] for s in samples], [tuple(s[2:]) for s in samples]
        raise TypeError(f"samples[0]: expected an (image, mask, ...) tuple or a dict, got {type(first).__name__}")

    def _mask_tensors(self, raw_masks: List[Any], height: int, width: int, num_classes: int) -> List[torch.Tensor]:
        """The samples' masks as (H, W) tensors, checked: dtype, shape, values."""
        masks = []
        for i, raw in enumerate(raw_masks):
            mask = raw
            if not isinstance(mask, (torch.Tensor, np.ndarray)) and hasattr(mask, "mode") and hasattr(mask, "size"):
                if mask.mode not in ("L", "P"):
                    raise TypeError(f"samples[{i}]: expected a mask as a PIL 'L' or 'P' image, got mode {mask.mode!r}")
                mask = np.asarray(mask)
            if isinstance(mask, np.ndarray):
                if mask.dtype.kind not in "ui" or not mask.dtype.isnative and mask.dtype.itemsize > 1:
                    raise TypeError(f"samples[{i}]: expected an integer mask of native byte order, got numpy {mask.dtype}")
                with warnings.catch_warnings():  # read-only (PIL) arrays are read, never written
                    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                    mask = torch.from_numpy(np.ascontiguousarray(mask))
            if not isinstance(mask, torch.Tensor):
                raise TypeError(f"samples[{i}]: expected a mask as a numpy array, PIL image or tensor, got "
                                f"{type(raw).__name__}")
            _check_cpu_tensor(mask, f"samples[{i}]")
            if mask.dtype not in MASK_DTYPES:
                raise TypeError(f"samples[{i}]: expected a mask of dtype {dtype_names(MASK_DTYPES)}, got "
                                f"{dtype_name(mask.dtype)}")
            if tuple(mask.shape) != (height, width) or (i and mask.dtype != masks[0].dtype):
                raise ValueError(f"samples[{i}]: expected a mask of shape ({height}, {width}) (the image's) and dtype "
                                 f"{dtype_name(masks[0].dtype if i else mask.dtype)}, got {tuple(mask.shape)} "
                                 f"{dtype_name(mask.dtype)}")
            check_mask_values(mask, num_classes, self.mixup.ignore_index, f"samples[{i}]")
            masks.append(mask.contiguous())
        return masks

    def _collate_masks(self, masks: List[torch.Tensor], params: MixParams) -> MaskTargets:
        """The (B, H, W) masks, each written once: CutMix boxes and FMix and ClassMix pixels pasted,
        as pixels of bytes (masks.as_pixel_bytes), by the collate op."""
        batch, (height, width), dtype, itemsize = len(masks), masks[0].shape, masks[0].dtype, masks[0].element_size()
        partner, lam, kind, box = params.as_tuple()
        empty = torch.empty(0)
        out = _empty_batch((batch, itemsize, height, width), torch.uint8, True, self.reuse_worker_memory)
        as_hwc_bytes = [m.view(torch.uint8).view(height, width, itemsize) for m in masks]
        self.backend.collate_mix_(out, as_hwc_bytes, *spatial_only(partner, kind, box), empty, empty, True,
                                  **params.mask_args())
        mask_a = out.permute(0, 2, 3, 1).reshape(batch, height, width * itemsize).view(dtype)  # (a view: NHWC memory)
        if isinstance(out, shared_pool.PooledBatch):  # a view is sent by reference to its slot too, not copied
            mask_a = mask_a.as_subclass(shared_pool.PooledBatch)
        # the samples' masks are never written: they are the originals a blend reads
        saved, source_b = saved_partner_masks(
            masks, partner, kind, lambda shape: _empty_batch(shape, dtype, False, self.reuse_worker_memory))
        return MaskTargets(mask_a, mask_weights(lam, kind), source_b, saved)

    def _labels(self, labels: List[Any], policy: MixPolicy) -> torch.Tensor:
        num_classes = policy.num_classes
        first = labels[0]
        dense = isinstance(first, (torch.Tensor, np.ndarray)) and np.ndim(first) == 1
        if policy.multi_label and not dense:
            raise ValueError(f"samples[0]: expected a dense multi-label target of num_classes={num_classes} values for "
                             f"multi_label=True, got {type(first).__name__} of shape {tuple(np.shape(first))}")
        if dense:
            rows = []
            for i, y in enumerate(labels):
                is_array = isinstance(y, (torch.Tensor, np.ndarray))
                if is_array:
                    _check_label_array(y, i)
                if not is_array or tuple(np.shape(y)) != (num_classes,):
                    got = f"a label of shape {tuple(np.shape(y))}" if is_array else f"{type(y).__name__} {y!r:.40}"
                    like = ", like samples[0]," if i else ""
                    raise ValueError(f"samples[{i}]: expected a dense label of num_classes={num_classes} values, shape "
                                     f"({num_classes},){like} got {got}")
                rows.append(torch.as_tensor(y))
            if self.compact_targets:
                raise ValueError("compact_targets: expected class-index labels, got dense (C,) labels")
            return torch.stack(rows)
        values = []
        for i, y in enumerate(labels):
            if isinstance(y, (torch.Tensor, np.ndarray)):
                _check_label_array(y, i)
                if np.ndim(y) != 0:
                    raise ValueError(f"samples[{i}]: expected a class index, got a label of shape {tuple(np.shape(y))}")
                y = y.item()
            if isinstance(y, bool) or not isinstance(y, (int, np.integer)):
                raise TypeError(f"samples[{i}]: expected an integer class index, got {type(y).__name__} {y!r}")
            values.append(int(y))
        check_class_indices(values, num_classes, "samples")  # before int64 holds them: 2**70 is refused by name
        return torch.tensor(values, dtype=torch.int64)

    def __call__(self, samples: Sequence[Any]) -> Any:
        if len(samples) == 0:
            raise ValueError("samples: expected at least one sample, got an empty batch")
        if self.masks:
            raw_images, raw_labels, raw_masks, rest = self._split_with_masks(samples)
        else:
            (raw_images, raw_labels, rest), raw_masks = self._split(samples), None
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
        labels = None if raw_labels is None else self._labels(raw_labels, policy)
        channels, height, width = (shape[2], shape[0], shape[1]) if hwc else tuple(shape)
        if policy.needs_height_and_width and enabled and policy.prob > 0 and height * width == 0:  # no box or mask to draw
            raise ValueError(f"samples[0]: CutMix, FMix, ClassMix and ResizeMix need images with H >= 1 and W >= 1, got "
                             f"{'(H, W, C)' if hwc else '(C, H, W)'} {tuple(shape)}")
        masks = None if raw_masks is None else self._mask_tensors(raw_masks, height, width, policy.num_classes)

        mix = self.mixup
        scale, bias = self.affine(channels, dtype == torch.uint8)  # may refuse: before any draw
        if policy.classmix and enabled and policy.prob > 0 and masks is None:
            raise ValueError("masks: ClassMix (classmix=True) needs segmentation samples (MixupCollate(..., masks=True)), "
                             "got samples without masks")
        params = self.sample(policy, enabled, len(images), height, width, masks)
        mix.last_params = params
        out = _empty_batch((len(images), channels, height, width), self.dtype, self.channels_last,
                           self.reuse_worker_memory)
        self.backend.collate_mix_(out, images, *params.as_tuple(), scale, bias, hwc, **params.mask_args())
        targets = None if labels is None else self._targets(labels, params, policy)
        if masks is not None:
            mask_targets = self._collate_masks(masks, params)
            if not isinstance(samples[0], Mapping):
                targets = mask_targets  # (image, mask, ...) samples: the masks' targets in the mask's place

        if isinstance(samples[0], Mapping):
            result = default_collate(rest) if rest[0] else {}
            result[self.image_key] = out
            if targets is not None:
                result[self.label_key] = targets
            if masks is not None:
                result[self.mask_key] = mask_targets
            if self.return_params:
                result[self.params_key] = params
            return result
        extra = (params,) if self.return_params else ()
        if rest[0]:
            return (out, targets) + tuple(default_collate(rest)) + extra
        return (out, targets) + extra

    def sample(self, policy: MixPolicy, enabled: bool, batch_size: int, height: int, width: int,
               masks: Optional[List[torch.Tensor]] = None) -> MixParams:
        """The MixParams of one batch, drawn from the Mixup's stream (``masks``: the samples' (H, W)
        segmentation masks, which ClassMix reads)."""
        return sample_params(policy, batch_size, height, width, self.mixup.generator, enabled=enabled, masks=masks,
                             ignore_index=self.mixup.ignore_index)

    def _targets(self, labels: torch.Tensor, params: MixParams, policy: MixPolicy) -> Any:
        if self.compact_targets:
            mixed = params.mixed()
            return CompactTargets(labels, torch.where(mixed, labels[params.partner], labels),
                                  torch.where(mixed, params.lam, torch.ones_like(params.lam)))
        partner, lam, kind, _ = params.as_tuple()
        return soft_targets(self.backend, labels, partner, lam, kind, policy)

    @property
    def shared(self) -> SharedPolicy:
        """The Mixup's knobs, which timm's names on this collate read and write (``collate.mixup_enabled
        = False``, as timm's PrefetchLoader does), shared with every DataLoader worker."""
        return self.mixup.shared

    def __repr__(self) -> str:
        return (
            f"fastmix.MixupCollate({self.mixup!r}, dtype={self.dtype}, mean={None if self.mean is None else self.mean.tolist()}, "
            f"std={None if self.std is None else self.std.tolist()}, channels_last={self.channels_last}, "
            f"compact_targets={self.compact_targets})"
        )
