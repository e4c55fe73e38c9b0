"""Segmentation: per-pixel class masks mixed with their images, by the same MixParams.

CutMix pastes the partner's mask into exactly the box where its image is pasted, FMix and ClassMix
at exactly the pixels where the image takes its partner's: the same integers, in place. Mixup has no exact mask, so what the loss needs is returned instead: per sample
the two masks and the weight (:class:`MaskTargets`), and :func:`mixed_mask_loss` is the cross
entropy against the per-pixel soft target ``lam * s(onehot(mask_a)) + (1 - lam) * s(onehot(mask_b))``
without building a (B, K, H, W) one-hot tensor.

A paste is a copy of bytes, so masks of every integer dtype go through the image ops' uint8 paste:
a (B, H, W) mask is viewed as (B, itemsize, H, W) bytes in channels_last memory (as_pixel_bytes),
a mask pixel's bytes being one pixel of the kernels, so boxes and pixel masks apply as they are.
Every backend (cpp, numba, torch, cuda) runs it, bit for bit, with no new kernel to compile.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Tuple

import torch

from .backends.checks import (bytes_overlap, check_strided, check_tensor, check_writable_here, dtype_name, dtype_names,
                              elements_may_share_memory, type_name)
from .backends.mix_kind import MixKind, mixed, resizes
from .huge_pages import empty_on_huge_pages

MASK_DTYPES = (torch.uint8, torch.int16, torch.int32, torch.int64)


# -- the masks' checks -----------------------------------------------------------------------------


def check_ignore_index(value: Any) -> int:
    """An int64 (what torch's cross entropy takes as its ignore_index). It need not be a value the
    masks' dtype can hold (-1 beside uint8 masks): then no pixel is ignored."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"ignore_index: expected an int, got {type_name(value)}")
    if not -2**63 <= value < 2**63:
        raise ValueError(f"ignore_index: expected an int in [-2**63, 2**63 - 1] (an int64), got {value}")
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
    if bytes_overlap(masks, images):
        raise ValueError("masks: expected a tensor apart from the images, got one that shares their memory")
    if masks.requires_grad:
        raise ValueError("masks: expected a tensor that does not require grad, got one that does")
    if not torch.compiler.is_compiling():
        check_writable_here(masks, "masks")
    if masks.device.type == "cpu":
        check_mask_values(masks, num_classes, ignore_index, "masks")


def check_mask_values(masks: torch.Tensor, num_classes: int, ignore_index: int, name: str) -> None:
    """Every value a class in [0, num_classes) or ignore_index; else ``{name}[i, y, x]`` names the
    first pixel that is not (``name`` "masks" for a batch, "samples[i]" for one sample's mask)."""
    if masks.numel() == 0 or mask_values_valid(masks, num_classes, ignore_index):
        return
    where = tuple(int(v) for v in invalid_mask_values(masks, num_classes, ignore_index).nonzero()[0])
    raise ValueError(f"{name}{list(where)}: expected a class in [0, {num_classes}) or ignore_index={ignore_index}, "
                     f"got {int(masks[where])}")


def invalid_mask_values(masks: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """(masks' shape) bool: values that are neither a class in [0, num_classes) nor ignore_index,
    compared exactly whatever the dtype: a bound the dtype cannot hold is not cast to it (torch
    would wrap 40000 to an int16 -25536, or -1 to a uint8 255); a bound beyond the dtype's range
    leaves no value on its far side."""
    info = torch.iinfo(masks.dtype)
    bad = masks < 0 if info.min < 0 else torch.zeros_like(masks, dtype=torch.bool)
    if num_classes <= info.max:
        bad |= masks >= num_classes
    if info.min <= ignore_index <= info.max:
        bad &= masks != ignore_index
    return bad


def mask_values_valid(masks: torch.Tensor, num_classes: int, ignore_index: int) -> bool:
    """Whether every value is a class in [0, num_classes) or ignore_index, in one min/max pass for
    the common cases (comparisons into bool tensors cost ~20 ms per 12.8 M pixels each here; a
    min/max ~0.5 ms, with no new tensor): no ignored pixel, ignore_index -1, or uint8 masks with 255
    and at most 128 classes. Python ints compare the reductions exactly."""
    if masks.dtype == torch.uint8 and ignore_index == 255 and num_classes <= 128:
        # read as int8, 255 is -1, classes 0..127 stay, and every value 128..254 is below -1
        low, high = (int(v) for v in torch.aminmax(masks.view(torch.int8)))
        return low >= -1 and high < num_classes
    low, high = (int(v) for v in torch.aminmax(masks))
    if low >= 0 and high < num_classes:
        return True
    if ignore_index == -1 and low >= -1 and high < num_classes:
        return True
    return not bool(invalid_mask_values(masks, num_classes, ignore_index).any())


# -- mixing them -----------------------------------------------------------------------------------


class MaskTargets(NamedTuple):
    """What a segmentation loss needs from a mixed batch of masks (compact: no one-hot tensor, and
    no full-size copy of the partners' masks).

    The soft target of pixel p of sample i is ``lam[i] * s(mask_a[i, p]) + (1 - lam[i]) * s(mask_b[i, p])``
    where ``s`` is the smoothed one-hot (see :func:`mixed_mask_loss` for ignored pixels), and
    ``mask_b[i]`` is the original mask of sample i's partner where sample i is blended, ``mask_a[i]``
    elsewhere: a partner whose mask no paste changed is read from ``mask_a`` itself, and only the
    partners a paste overwrote are kept as they were, in ``saved``.
    """

    mask_a: torch.Tensor  #: (B, H, W) the batch's masks after mixing (CutMix boxes pasted), in place
    lam: torch.Tensor  #: (B,) float32, the weight of mask_a (1 where no blend)
    #: (B,) int64, where mask_b[i] is: row source_b[i] of mask_a when < B, else row source_b[i] - B of saved
    source_b: torch.Tensor
    saved: torch.Tensor  #: (K, H, W) the original masks of the partners that a paste overwrote and a blend reads

    @property
    def mask_b(self) -> torch.Tensor:
        """(B, H, W) the partner's original mask where a sample is blended, else mask_a: a new tensor."""
        rows = torch.cat([self.mask_a, self.saved]) if len(self.saved) else self.mask_a
        return rows.index_select(0, self.source_b)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "MaskTargets":
        """The same targets on ``device``."""
        return MaskTargets(*(t.to(device, non_blocking=non_blocking) for t in self))

    @staticmethod
    def unmixed(masks: torch.Tensor) -> "MaskTargets":
        """The targets of masks that nothing mixed (mask_b is mask_a, lam 1)."""
        batch = masks.shape[0]
        return MaskTargets(masks, torch.ones(batch, device=masks.device),
                           torch.arange(batch, device=masks.device), masks[:0])


def spatial_only(partner: torch.Tensor, kind: torch.Tensor,
                 box: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """MixParams fields for masks viewed as pixels of bytes (as_pixel_bytes): pastes and masks stay,
    with their boxes and pixel masks as they are; a resize (ResizeMix) resizes the labels by nearest
    neighbour, whole pixels of bytes (a label is never interpolated); blends and the rest leave the
    mask alone."""
    spatial = (kind == int(MixKind.PASTE)) | (kind == int(MixKind.MASK))
    resize = resizes(kind)
    kept = torch.where(spatial, kind, torch.zeros_like(kind))
    return (partner, torch.ones(kind.shape, dtype=torch.float32, device=kind.device),
            torch.where(resize, torch.full_like(kind, int(MixKind.RESIZE_NEAREST)), kept), box)


def as_pixel_bytes(masks: torch.Tensor) -> torch.Tensor:
    """(B, H, W) integer masks (last dim contiguous) as (B, itemsize, H, W) uint8 in channels_last
    memory, sharing memory: a pixel's bytes are one pixel of the kernels, so the pixel masks of FMix
    and ClassMix (B, H, W) and the boxes apply to them as they are."""
    batch, height, width = masks.shape
    return masks.view(torch.uint8).view(batch, height, width, masks.element_size()).permute(0, 3, 1, 2)


def mask_weights(lam: torch.Tensor, kind: torch.Tensor) -> torch.Tensor:
    """MaskTargets.lam: a blended sample's lambda, 1 for every other (its mask_a is exact)."""
    return torch.where(kind == int(MixKind.BLEND), lam, torch.ones_like(lam))


def saved_partner_masks(originals: Any, partner: torch.Tensor, kind: torch.Tensor,
                        empty: Callable[[Tuple[int, ...]], torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    """(saved, source_b) of MaskTargets, the one builder of every entry point: copies of the
    original masks of the partners that a paste overwrites and a blend reads, and where each
    sample's mask_b is. ``originals``: the masks as they were before any paste, a (B, H, W) tensor
    (Mixup, before its paste) or a list of B (H, W) masks (the collate's samples); ``empty(shape)``
    allocates ``saved``.

    On a GPU there is no host read of the params (it would stall the stream): every sample's
    partner mask is kept then, as the same steps for every batch."""
    batch = partner.shape[0]
    rows = torch.arange(batch, device=partner.device)
    blend = kind == int(MixKind.BLEND)
    if partner.device.type != "cpu":
        saved = empty((batch,) + tuple(originals.shape[1:]))
        torch.index_select(originals, 0, partner, out=saved)
        return saved, torch.where(blend, batch + rows, rows)
    pasted = mixed(partner, kind) & (kind >= int(MixKind.PASTE))  # overwritten: a paste, a mask, a resize
    read = torch.zeros(batch, dtype=torch.bool)
    read[partner[blend]] = True
    keep = torch.nonzero(read & pasted).view(-1)
    slot = torch.full((batch,), -1, dtype=torch.int64)
    slot[keep] = torch.arange(len(keep))
    shape = tuple(originals[0].shape) if len(originals) else (0, 0)
    saved = empty((len(keep),) + shape)
    if len(keep):
        torch.stack([originals[j] for j in keep.tolist()], out=saved)
    theirs = torch.where(slot[partner] >= 0, batch + slot[partner], partner)
    return saved, torch.where(blend, theirs, rows)


def mix_masks_(mix_: Callable[..., None], masks: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor, kind: torch.Tensor,
               box: torch.Tensor, pixel_mask: Optional[torch.Tensor] = None, mask_field: Optional[torch.Tensor] = None,
               field_threshold: Optional[torch.Tensor] = None) -> MaskTargets:
    """Paste the CutMix boxes (and, with ``pixel_mask`` or ``mask_field``, the FMix and ClassMix pixels) of ``masks``
    (B, H, W) in place with the backend op ``mix_``, and return the MaskTargets of the batch (params
    on the masks' device)."""
    def empty(shape: Tuple[int, ...]) -> torch.Tensor:  # a CutMix batch's saved masks can be a whole batch
        return empty_on_huge_pages(shape, masks.dtype) if masks.device.type == "cpu" else masks.new_empty(shape)

    saved, source_b = saved_partner_masks(masks, partner, kind, empty)  # before the paste
    mix_(as_pixel_bytes(masks), *spatial_only(partner, kind, box), pixel_mask=pixel_mask, mask_field=mask_field,
         field_threshold=field_threshold)
    return MaskTargets(masks, mask_weights(lam, kind), source_b, saved)


def mixed_mask_loss(logits: torch.Tensor, targets: MaskTargets, smoothing: float = 0.0,
                    ignore_index: int = 255) -> torch.Tensor:
    """Mean per-pixel cross entropy of ``logits`` (B, K, H, W) against the mixed soft targets.

    Pixel p of sample i scores ``lam * CE(s(a)) + (1 - lam) * CE(s(b))`` with a = mask_a[i, p],
    b = mask_b[i, p] and ``s`` torch's label smoothing (on = 1 - eps + eps/K, off = eps/K, as for
    class labels). A pixel ignored on one side (== ignore_index) takes its whole loss from the other
    side; a pixel ignored on both sides is left out of the mean. Equal to the cross entropy against
    the dense target ``sum_side w_side * s(onehot(side))`` with those weights, without building it.
    """
    ce = torch.nn.functional.cross_entropy
    a = targets.mask_a.long()
    b = (torch.cat([a, targets.saved.long()]) if len(targets.saved) else a).index_select(0, targets.source_b)
    loss_a = ce(logits, a, reduction="none", ignore_index=ignore_index, label_smoothing=smoothing)
    loss_b = ce(logits, b, reduction="none", ignore_index=ignore_index, label_smoothing=smoothing)
    valid_a, valid_b = a != ignore_index, b != ignore_index
    lam = targets.lam.to(logits.dtype).view(-1, 1, 1)
    weight_a = torch.where(valid_b, lam, torch.ones_like(lam)) * valid_a
    weight_b = torch.where(valid_a, 1 - lam, torch.ones_like(lam)) * valid_b
    counted = (valid_a | valid_b).sum().clamp(min=1)
    return (weight_a * loss_a + weight_b * loss_b).sum() / counted
