"""torchvision's ``MixUp`` and ``CutMix`` (``torchvision.transforms.v2``), run by fastmix's kernels.

    from fastmix.transforms import CutMix, MixUp        # was: from torchvision.transforms.v2 import ...
    cutmix_or_mixup = v2.RandomChoice([CutMix(num_classes=1000), MixUp(num_classes=1000)])
    for images, labels in loader:
        images, targets = cutmix_or_mixup(images, labels)   # images: the same tensor, mixed in place

The same names, arguments, defaults, inputs and outputs as torchvision's transforms (read in
``torchvision/transforms/v2/_augment.py`` and ``_utils.py`` of pytorch/vision at commit da6134d,
where ``num_classes`` is optional; both are ``torch.nn.Module``s, as there): one lambda ~ Beta(alpha, alpha) per
batch, sample ``i`` mixed with sample ``i - 1`` (``images.roll(1, 0)``), torchvision's CutMix box,
targets ``one_hot * lam + one_hot.roll(1, 0) * (1 - lam)`` with no label smoothing. What differs
(each for a reason given where it happens):

* the images are mixed **in place** by default (``inplace=True``): the returned images tensor is
  the caller's tensor, with no clone of the batch; ``inplace=False`` clones first, as torchvision;
* randomness comes from the transform's own numpy Generator (``seed=``, per process, DataLoader
  worker and DDP rank; see :mod:`fastmix.sampling.streams`), not from torch's global RNG;
* lambda is rounded to float32 before use (``MixParams.lam`` is float32; for float32 images
  torchvision's kernels round it so too, so float32 results are identical);
* a batch of one is left exactly as it is (torchvision computes ``x * (1 - lam) + x * lam``,
  which can move a value by an ulp) and its target is its exact one-hot label;
* refusals are ``ValueError`` / ``TypeError`` naming the argument, raised before anything is
  drawn or written, where torchvision sometimes fails with a RuntimeError halfway (uint8 MixUp,
  labels out of range); class indices may be of any integer dtype (torchvision's one_hot takes
  int64 only);
* dtypes are fastmix's: MixUp takes float16, bfloat16, float32 and float64 images (torchvision's
  MixUp cannot blend uint8 either); CutMix also uint8 (torchvision pastes any dtype);
* the images are the first tensor of the sample that is not the labels (torchvision takes the
  first tensor, so a dict that lists the labels before the images mixes nothing);
* images that require grad are refused (the kernels are not differentiable).
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any, Callable, List, NamedTuple, Optional, Tuple, Union

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten  # what torchvision's transforms use

from .backends import check_backend_name, resolve_backend
from .backends.device_params import mix_args
from .backends.checks import (IMAGE_DTYPES, MAX_NUM_CLASSES, check_class_indices, check_writable_images, dtype_name,
                              dtype_names, type_name)
from .sampling.policy import check_bool, check_seed
from .sampling.beta import beta_draws
from .process_local import ProcessLocal
from .sampling.params import MixKind, MixParams

LabelsGetter = Callable[[Any], Any]

#: Image dtypes each transform mixes. MixUp blends, and torchvision's blend of uint8 fails
#: (an in-place float multiply of a uint8 tensor), so MixUp keeps to the float dtypes.
MIXUP_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
CUTMIX_DTYPES = IMAGE_DTYPES


# -- the knobs -------------------------------------------------------------------------------------


def check_alpha(value: Any) -> float:
    """alpha: a finite real number > 0 (Beta(0, 0) does not exist; torchvision's Beta refuses it too)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"alpha: expected a float > 0, got {type_name(value)}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"alpha: expected a finite float > 0, got {value}")
    return float(value)


def check_num_classes(value: Any) -> Optional[int]:
    """num_classes: None (labels already (B, C)) or an int in [1, MAX_NUM_CLASSES]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"num_classes: expected an int in [1, {MAX_NUM_CLASSES}] or None, got {type_name(value)}")
    if not 1 <= value <= MAX_NUM_CLASSES:
        raise ValueError(f"num_classes: expected an int in [1, {MAX_NUM_CLASSES}] or None, got {value}")
    return int(value)


def default_labels_getter(sample: Any) -> Any:
    """torchvision's default heuristic: where the labels of a sample are.

    * a tuple or list: its second item, if that is a tensor ``(images, labels)``, or a dict in
      which the labels are found as below ``(images, {"labels": labels})``;
    * a dict (any Mapping): the value of the key equal to "labels" (case-insensitive), else of the
      first key that contains "label" (``"label"``, ``"class_label"``, ...);
    * a tensor: itself (so a batch passed alone is refused for its shape, as in torchvision).
    """
    if isinstance(sample, (tuple, list)):
        if len(sample) < 2:
            raise ValueError(f"labels_getter: the default getter expected a (images, labels) pair, got a "
                             f"{type_name(sample)} of {len(sample)} item(s); pass a callable labels_getter")
        sample = sample[1]
        if not isinstance(sample, (torch.Tensor, Mapping)):  # (images, labels) with labels of a wrong type
            raise TypeError(f"labels: expected a torch.Tensor (or a dict holding the labels) as the second item of "
                            f"the sample, got {type_name(sample)}")
    if isinstance(sample, torch.Tensor):
        return sample
    if not isinstance(sample, Mapping):
        raise ValueError(f"labels_getter: the default getter expected a dict, or a pair whose second item is a "
                         f"tensor or a dict, got {type_name(sample)}; pass a callable labels_getter")
    keys = [key for key in sample.keys() if isinstance(key, str)]
    found = next((key for key in keys if key.lower() == "labels"), None)
    if found is None:
        found = next((key for key in keys if "label" in key.lower()), None)
    if found is None:
        raise ValueError(f"labels_getter: the default getter found no 'labels'-like key among {list(sample.keys())}; "
                         f"pass a callable labels_getter")
    return sample[found]


def parse_labels_getter(value: Any) -> LabelsGetter:
    """"default" -> :func:`default_labels_getter`; a callable as it is."""
    if isinstance(value, str) and value == "default":
        return default_labels_getter
    if callable(value):
        return value
    # torchvision also takes None (no labels), then fails at the first call: these transforms
    # always need the labels, so None is refused here.
    raise ValueError(f"labels_getter: expected 'default' or a callable that returns the labels, got {value!r}")


# -- torchvision's CutMix box ------------------------------------------------------------------------


def cutmix_box(lam: float, center_y: int, center_x: int, height: int, width: int) -> Tuple[int, int, int, int]:
    """torchvision's CutMix box for a Beta draw ``lam`` and a centre: ``(y0, y1, x0, x1)``, half-open.

    Half sides ``int(0.5 * sqrt(1 - lam) * H)`` and ``int(0.5 * sqrt(1 - lam) * W)`` around the
    centre, clamped to the image (so a box at an edge is smaller, and the corrected lambda larger).
    """
    ratio = 0.5 * math.sqrt(1.0 - lam)
    half_h, half_w = int(ratio * height), int(ratio * width)
    return (max(center_y - half_h, 0), min(center_y + half_h, height),
            max(center_x - half_w, 0), min(center_x + half_w, width))


def roll_partners(batch_size: int) -> torch.Tensor:
    """(B,) int64: sample i is mixed with sample (i - 1) mod B, what ``x.roll(1, 0)`` pairs."""
    return torch.arange(batch_size, dtype=torch.int64).roll(1)


class CutMixCenter(NamedTuple):
    y: int  #: row of the box centre, uniform in [0, H)
    x: int  #: column of the box centre, uniform in [0, W)


# -- the transforms ----------------------------------------------------------------------------------


class _BatchMix(ProcessLocal, torch.nn.Module):
    """What MixUp and CutMix share: the arguments, finding images and labels in a sample, the
    checks, the random stream, the backend. Subclasses say what to draw (``_draw``)."""

    _image_dtypes: Tuple[torch.dtype, ...] = IMAGE_DTYPES

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        num_classes: Optional[int] = None,
        labels_getter: Union[str, LabelsGetter] = "default",
        seed: Optional[int] = None,
        backend: str = "auto",
        inplace: bool = True,
    ) -> None:
        super().__init__()
        self.alpha = alpha  # checked by the property
        self.num_classes = num_classes
        self.labels_getter = labels_getter
        self.seed = check_seed(seed)
        self.backend = check_backend_name(backend)
        if backend != "auto":  # a named backend that cannot run here fails now, not at the first batch
            resolve_backend(backend, "cuda" if backend == "cuda" else "cpu")
        self.inplace = check_bool("inplace", inplace)
        #: What was drawn for the last batch: partner (i - 1) mod B, lam (float32), kind, box.
        self.last_params: Optional[MixParams] = None
        #: The last Beta(alpha, alpha) draw, before rounding to float32 (and, for CutMix, before the
        #: area correction).
        self.last_lam: Optional[float] = None

    # The knobs are checked whenever they are set, so a bad value fails where it is written.
    @property
    def alpha(self) -> float:
        return self._alpha

    @alpha.setter
    def alpha(self, value: float) -> None:
        self._alpha = check_alpha(value)

    @property
    def num_classes(self) -> Optional[int]:
        return self._num_classes

    @num_classes.setter
    def num_classes(self, value: Optional[int]) -> None:
        self._num_classes = check_num_classes(value)

    @property
    def labels_getter(self) -> Union[str, LabelsGetter]:
        return self._labels_getter_arg

    @labels_getter.setter
    def labels_getter(self, value: Union[str, LabelsGetter]) -> None:
        self._labels_getter = parse_labels_getter(value)
        self._labels_getter_arg = value

    def _draw(self, batch_size: int, height: int, width: int) -> MixParams:
        raise NotImplementedError

    def sample(self, batch_size: int, height: int, width: int) -> MixParams:
        """Draw the MixParams of a batch of ``batch_size`` images of size (height, width), on the
        CPU (and set ``last_lam``; CutMix also ``last_center``). ``forward`` calls this."""
        return self._draw(batch_size, height, width)

    # -- one call ---------------------------------------------------------------------------------

    def forward(self, *inputs: Any) -> Any:
        """Mix a batch: ``images, targets = t(images, labels)``, or ``t(sample)`` for a tuple, list or
        dict holding both; returns the same structure with the images mixed and the labels replaced
        by the targets. Every other item comes back as it was."""
        if not inputs:
            raise TypeError(f"{type(self).__name__}: expected (images, labels) or one sample that holds both, got no "
                            f"arguments")
        sample = inputs if len(inputs) > 1 else inputs[0]
        # Everything is checked before anything is drawn or written: a refused call leaves the
        # caller's tensors and the random stream as they were.
        labels = self._labels_getter(sample)
        leaves, spec = tree_flatten(sample)
        num_classes = self._check_labels(labels, leaves)
        images = self._find_images(leaves, labels)
        self._check_images(images)
        self._check_pair(labels, images)

        batch, height, width = images.shape[0], images.shape[-2], images.shape[-1]
        params = self._draw(batch, height, width)
        self.last_params = params
        out = images if self.inplace else images.clone()  # clone keeps the layout (channels_last)
        targets = self._targets(labels, params, num_classes, images.device)
        if batch:
            backend = self.backend_for(images.device)
            backend.mix_(out, *mix_args(params.as_tuple(), images.device, with_plan=backend.name == "cuda"))
        swapped = [out if leaf is images else targets if leaf is labels else leaf for leaf in leaves]
        return tree_unflatten(swapped, spec)

    def _find_images(self, leaves: List[Any], labels: torch.Tensor) -> torch.Tensor:
        # torchvision takes the first tensor of the sample as the images; skipping the labels
        # also finds them in {"labels": ..., "image": ...}, where torchvision mixes nothing.
        images = next((leaf for leaf in leaves if isinstance(leaf, torch.Tensor) and leaf is not labels), None)
        if images is None:
            raise ValueError("images: expected a tensor of shape (B, C, H, W) in the sample besides the labels, "
                             "got none")
        return images

    def _check_labels(self, labels: Any, leaves: List[Any]) -> int:
        """Checks that the labels are a tensor of the sample (``leaves``), their shape, dtype and
        values against num_classes; returns C."""
        if not isinstance(labels, torch.Tensor):
            raise TypeError(f"labels: expected a torch.Tensor of class indices (B,) or probabilities (B, num_classes), "
                            f"got {type_name(labels)}")
        if not any(leaf is labels for leaf in leaves):
            raise ValueError("labels_getter: expected it to return a tensor of the sample (it is replaced by the "
                             "targets), got a tensor that is not one of the sample's items")
        num_classes = self.num_classes
        if labels.dim() not in (1, 2):
            raise ValueError(f"labels: expected class indices of shape (B,) or probabilities of shape "
                             f"(B, num_classes), got shape {tuple(labels.shape)}")
        if labels.is_complex():
            raise TypeError(f"labels: expected real values, got {dtype_name(labels.dtype)}")
        if labels.dim() == 1:
            if num_classes is None:
                raise ValueError("num_classes: expected an int >= 1 for class-index labels of shape (B,), got None "
                                 "(None works only for labels already of shape (B, num_classes))")
            if labels.is_floating_point() or labels.dtype == torch.bool:
                raise TypeError(f"labels: expected integer class indices for labels of shape (B,), got "
                                f"{dtype_name(labels.dtype)}")
        else:
            if num_classes is not None and labels.shape[1] != num_classes:
                raise ValueError(f"labels: expected shape (B, {num_classes}) (num_classes={num_classes}) for 2-D "
                                 f"labels, got shape {tuple(labels.shape)}; or leave num_classes=None")
            if labels.shape[1] == 0:
                raise ValueError(f"labels: expected at least one class column, got shape {tuple(labels.shape)}")
            num_classes = labels.shape[1]
        # Values are read on the CPU only: reading them on a GPU would wait for it (the CUDA op
        # asserts on the device instead).
        if labels.dim() == 1 and labels.device.type == "cpu":
            check_class_indices(labels, num_classes)
        return num_classes

    def _check_pair(self, labels: torch.Tensor, images: torch.Tensor) -> None:
        """The labels belong to the images: the same batch size and device."""
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"labels: expected batch size {images.shape[0]} (the images' first dim), got "
                             f"{labels.shape[0]} (shape {tuple(labels.shape)})")
        if labels.device != images.device:
            raise ValueError(f"labels: expected a tensor on the images' device {images.device}, got {labels.device}")

    def _check_images(self, images: torch.Tensor) -> None:
        name = type(self).__name__
        if images.dim() != 4:
            raise ValueError(f"images: expected a batch of shape (B, C, H, W), got shape {tuple(images.shape)}")
        if images.dtype not in self._image_dtypes:
            raise TypeError(f"images: expected dtype {dtype_names(self._image_dtypes)} for {name}, got "
                            f"{dtype_name(images.dtype)}{self._dtype_hint(images.dtype)}")
        if images.requires_grad:
            raise ValueError("images: expected a tensor that does not require grad (fastmix's kernels are not "
                             "differentiable), got one that does")
        if self.inplace:  # a clone (inplace=False) is always writable
            check_writable_images(images)

    def _dtype_hint(self, dtype: torch.dtype) -> str:
        return ""

    def _targets(self, labels: torch.Tensor, params: MixParams, num_classes: int, device: torch.device) -> torch.Tensor:
        """(B, num_classes) soft targets: float32, or the labels' dtype for floating (B, C) labels
        (torchvision keeps it)."""
        dtype = labels.dtype if labels.dim() == 2 and labels.is_floating_point() else torch.float32
        if labels.shape[0] == 0:
            return torch.zeros(0, num_classes, dtype=dtype, device=device)
        partner, lam, kind, _ = params.to(device, non_blocking=True).as_tuple()
        if dtype == torch.float32:  # smoothing 0: exactly lam * one_hot + (1 - lam) * partner's one_hot
            return self.backend_for(device).mix_targets(labels, partner, lam, kind, num_classes, 0.0)
        # float16, bfloat16, float64 probabilities: the target kernel writes float32 only, so these
        # are mixed in their own dtype, each product rounded there, as torchvision does.
        if not bool(params.mixed().any()):  # a batch of one is left as it is
            return labels.clone()
        weight = float(params.lam[0])
        return labels * weight + labels[partner] * (1.0 - weight)

    def extra_repr(self) -> str:
        return (f"alpha={self.alpha}, num_classes={self.num_classes}, labels_getter={self.labels_getter!r}, "
                f"seed={self.seed}, backend={self.backend!r}, inplace={self.inplace}")


class MixUp(_BatchMix):
    """MixUp of a batch and its labels: ``torchvision.transforms.v2.MixUp`` on fastmix's kernels.

    ``images, targets = MixUp(num_classes=C)(images, labels)``

    One ``lam ~ Beta(alpha, alpha)`` per batch; sample ``i`` is blended with sample ``i - 1``
    (``images.roll(1, 0)``, the DataLoader has shuffled the batch):
    ``images = lam * images + (1 - lam) * images.roll(1, 0)`` and
    ``targets = lam * one_hot(labels) + (1 - lam) * one_hot(labels).roll(1, 0)``.

    Inputs (what torchvision accepts, as torchvision finds them):

    * positional ``(images, labels)``; one tuple or list ``(images, labels, *rest)``; a dict with
      the labels under a "labels"-like key (``{"image": images, "labels": labels}``); a pair
      ``(images, {"labels": labels, ...})``; or any nesting of tuples, lists and dicts with a
      ``labels_getter`` callable that returns the labels tensor. The result has the input's
      structure, the images and labels replaced, everything else as given.
    * images: ``(B, C, H, W)`` float16, bfloat16, float32 or float64, any layout (contiguous,
      channels_last, strided). Mixed **in place** (``inplace=True``): the returned images are the
      very tensor passed in, no clone of the batch; ``inplace=False`` clones first (torchvision's
      behaviour). float32 and float64 images are bit-identical to torchvision's for the same lam:
      each product rounded in the images' dtype, then summed. float16/bfloat16 are blended in
      float32 and rounded once, where torchvision rounds both products and the sum to half
      precision: about a third of the values differ, by up to 2 ulps of the larger product,
      fastmix's being the closer to the exact blend.
      uint8 is refused (torchvision's MixUp fails on it too): use CutMix or ``fastmix.Mixup``.
    * labels: ``(B,)`` class indices in ``[0, num_classes)``, any integer dtype (num_classes required), or
      ``(B, C)`` probabilities / one-hot rows (num_classes None or C), on the images' device.
    * targets: ``(B, num_classes)`` float32 (probability labels of float16, bfloat16 or float64
      keep their dtype, as in torchvision); no label smoothing.

    Any ``B >= 0``: ``B = 1`` pairs the sample with itself (``roll(1, 0)`` of one sample), so it
    is left exactly as it is and its target is its one-hot label.

    Args:
        alpha: the Beta distribution's parameter, a finite float > 0 (default 1: lam uniform).
        num_classes: C, for one-hot encoding index labels; None when labels are already (B, C).
        labels_getter: "default" (see :func:`default_labels_getter`) or a callable that takes what
            the transform was called with and returns the labels tensor.
        seed: seed of this transform's random stream (None: ``torch.initial_seed()``); combined with
            the DataLoader worker and the DDP rank. (fastmix only; torchvision uses torch's RNG.)
        backend: "auto", "cpp", "cuda", "numba" or "torch" (fastmix only).
        inplace: mix the images in place (default) or clone them first (fastmix only).

    After a call, ``last_params`` is the :class:`fastmix.MixParams` used (partner, lam as float32,
    kind BLEND, box unused) and ``last_lam`` the Beta draw.
    """

    _image_dtypes = MIXUP_DTYPES

    def _dtype_hint(self, dtype: torch.dtype) -> str:
        if dtype == torch.uint8:
            return (" (torchvision's MixUp cannot blend uint8 either; convert with images.float(), or use "
                    "fastmix.Mixup, which blends uint8 with rounding)")
        return ""

    def _draw(self, batch_size: int, height: int, width: int) -> MixParams:
        lam = float(beta_draws(self.alpha, 1, self.generator)[0])
        self.last_lam = lam
        return MixParams(
            partner=roll_partners(batch_size),
            lam=torch.full((batch_size,), lam, dtype=torch.float32),
            kind=torch.full((batch_size,), int(MixKind.BLEND), dtype=torch.uint8),
            box=torch.zeros(batch_size, 4, dtype=torch.int64),
        )


class CutMix(_BatchMix):
    """CutMix of a batch and its labels: ``torchvision.transforms.v2.CutMix`` on fastmix's kernels.

    ``images, targets = CutMix(num_classes=C)(images, labels)``

    One ``lam ~ Beta(alpha, alpha)`` per batch and one box: centre ``(cy, cx)`` uniform over the
    pixels, half sides ``int(0.5 * sqrt(1 - lam) * H)`` and ``int(0.5 * sqrt(1 - lam) * W)``,
    clamped to the image (:func:`cutmix_box`). Every sample ``i`` gets the box of sample ``i - 1``
    (``images.roll(1, 0)``) pasted in, on every channel, and lambda is corrected to
    ``1 - box_area / (H * W)``: ``targets = lam * one_hot(labels) + (1 - lam) * one_hot(labels).roll(1, 0)``.

    Inputs and outputs as :class:`MixUp` (see there), except the images' dtypes: uint8, float16,
    bfloat16, float32 or float64, pasted exactly (a copy of values), so every dtype matches
    torchvision bit for bit. Other dtypes torchvision would paste (int32, bool, ...) are refused.

    Args: as :class:`MixUp`.

    After a call, ``last_params`` is the :class:`fastmix.MixParams` used (partner, the corrected
    lam as float32, kind PASTE, box ``(y0, y1, x0, x1)``, half-open), ``last_lam`` the Beta draw
    before the correction and ``last_center`` the box centre ``(y, x)``.
    """

    _image_dtypes = CUTMIX_DTYPES

    #: The centre of the last box, drawn uniformly over the pixels (set by each draw).
    last_center: Optional[CutMixCenter] = None

    def _check_images(self, images: torch.Tensor) -> None:
        super()._check_images(images)
        if images.shape[-2] * images.shape[-1] == 0:
            raise ValueError(f"images: CutMix needs H >= 1 and W >= 1, got shape {tuple(images.shape)}")

    def _draw(self, batch_size: int, height: int, width: int) -> MixParams:
        if height < 1 or width < 1:
            raise ValueError(f"height, width: CutMix needs both >= 1, got {height} and {width}")
        rng = self.generator
        lam = float(beta_draws(self.alpha, 1, rng)[0])
        center_x = int(rng.integers(0, width))  # torchvision draws the column, then the row
        center_y = int(rng.integers(0, height))
        box = cutmix_box(lam, center_y, center_x, height, width)
        corrected = 1.0 - (box[1] - box[0]) * (box[3] - box[2]) / (height * width)
        self.last_lam = lam
        self.last_center = CutMixCenter(center_y, center_x)
        return MixParams(
            partner=roll_partners(batch_size),
            lam=torch.full((batch_size,), corrected, dtype=torch.float32),
            kind=torch.full((batch_size,), int(MixKind.PASTE), dtype=torch.uint8),
            box=torch.tensor([box], dtype=torch.int64).expand(batch_size, 4).contiguous(),
        )


__all__ = ["MixUp", "CutMix", "CutMixCenter", "cutmix_box", "default_labels_getter"]
