"""MixParams: everything that was randomly decided about one batch, in a few O(B) tensors.

Every backend consumes the same MixParams, so a batch can be logged, replayed, or mixed by two
backends and compared exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

import torch

from ..backends.checks import (check_mask_field, check_param_field, check_params_values, check_targets_params_values,
                               type_name)
from ..backends.mask_field import mask_planes
from ..backends.mix_kind import MixKind, mixed


@dataclass(frozen=True)
class MixParams:
    """What was sampled for a batch of B samples.

    Attributes:
        partner: (B,) int64, the sample each sample is mixed with, in [0, B). A sample whose
            partner is itself is left alone.
        lam: (B,) float32 in [0, 1], the weight of the sample's own label in its target (and of its
            own pixels for BLEND). For PASTE it is already area-corrected when ``correct_lam``.
        kind: (B,) uint8, a :class:`MixKind` per sample.
        box: (B, 4) int64, the CutMix box ``(y0, y1, x0, x1)``, half-open, in pixels of the last two
            dims (H, W); only read for PASTE samples (zeros elsewhere).
        pixel_mask: None, or (B, H, W) uint8: for MASK samples (FMix, ClassMix), 1 where the pixel
            comes from the partner (its lam is the fraction of zeros). The planes of a batch-mode
            FMix draw are one plane expanded (batch stride 0). None when no sample is MASK, or
            when ``mask_field`` gives their pixels.
        method: (B,) uint8, the :class:`fastmix.MixMethod` that drew each sample's params (what a
            replay or a log needs beside the kind: Mixup and CutMix are BLEND and PASTE, FMix and
            ClassMix both MASK). None: read from ``kind`` (Mixup, CutMix or none).
        mask_field: None, or (H, W) float32: the noise image that the MASK samples' masks are cut
            from (FMix in elem and pair modes; ``pixel_mask`` is then None). Sample i takes its
            partner's pixel (y, x) where ``mask_field[(y + dy) % H, (x + dx) % W] <
            field_threshold[i]``, with ``box[i] = (dy, dy + H, dx, dx + W)``.
        field_threshold: None, or (B,) float32 with ``mask_field``: each MASK sample's cut level.
    """

    partner: torch.Tensor
    lam: torch.Tensor
    kind: torch.Tensor
    box: torch.Tensor
    pixel_mask: Optional[torch.Tensor] = None
    method: Optional[torch.Tensor] = None
    mask_field: Optional[torch.Tensor] = None
    field_threshold: Optional[torch.Tensor] = None

    @property
    def batch_size(self) -> int:
        return int(self.partner.shape[0])

    @property
    def device(self) -> torch.device:
        return self.partner.device

    def _pixel_mask_by(self, fn: Any) -> Optional[torch.Tensor]:
        """fn(pixel_mask); one plane expanded over the batch goes through fn as that one plane."""
        pixel_mask = self.pixel_mask
        if pixel_mask is None:
            return None
        if pixel_mask.shape[0] > 1 and pixel_mask.stride(0) == 0:
            return fn(pixel_mask[:1]).expand(pixel_mask.shape)
        return fn(pixel_mask)

    def _map(self, fn: Any) -> "MixParams":
        method, field, threshold = (None if t is None else fn(t) for t in (self.method, self.mask_field,
                                                                          self.field_threshold))
        return MixParams(*(fn(t) for t in self.as_tuple()), self._pixel_mask_by(fn), method, field, threshold)

    def mask_args(self) -> dict[str, Optional[torch.Tensor]]:
        """The ops' by-name arguments of the MASK samples: pixel_mask, mask_field, field_threshold."""
        return {"pixel_mask": self.pixel_mask, "mask_field": self.mask_field, "field_threshold": self.field_threshold}

    def mask_args_to(self, device: torch.device | str, non_blocking: bool = False) -> dict[str, Optional[torch.Tensor]]:
        """mask_args on ``device``, alone: for a caller that moves the other fields with the device
        plan (fastmix.Mixup on CUDA)."""
        move = (lambda t: None if t is None else t.to(device, non_blocking=non_blocking))
        return {"pixel_mask": self._pixel_mask_by(move), "mask_field": move(self.mask_field),
                "field_threshold": move(self.field_threshold)}

    def pixel_masks(self) -> Optional[torch.Tensor]:
        """(B, H, W) uint8, 1 where each sample takes its partner's pixel, for the MASK samples
        (pixel_mask, or the planes cut from mask_field); None when no sample is MASK."""
        return mask_planes(self.pixel_mask, self.mask_field, self.field_threshold, self.kind, self.box)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "MixParams":
        """The same params on ``device`` (one small copy per field; no per-sample host sync)."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> "MixParams":
        """The same params in pinned memory (what a DataLoader with ``pin_memory=True`` calls)."""
        return self._map(lambda t: t.pin_memory())

    def as_tuple(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(partner, lam, kind, box): the arguments every op takes (``pixel_mask`` goes by name)."""
        return (self.partner, self.lam, self.kind, self.box)

    def mixed(self) -> torch.Tensor:
        """(B,) bool: which samples are actually changed (mixed with a sample other than themselves)."""
        return mixed(self.partner, self.kind)

    @staticmethod
    def identity(batch_size: int, device: torch.device | str = "cpu") -> "MixParams":
        """Params that leave every sample alone (lam = 1, partner = self)."""
        return MixParams(
            partner=torch.arange(batch_size, dtype=torch.int64, device=device),
            lam=torch.ones(batch_size, dtype=torch.float32, device=device),
            kind=torch.zeros(batch_size, dtype=torch.uint8, device=device),
            box=torch.zeros(batch_size, 4, dtype=torch.int64, device=device),
        )

    def __repr__(self) -> str:
        names = {int(k): k.name.lower() for k in MixKind}
        kinds = [names.get(int(k), "?") for k in self.kind.tolist()]
        return (
            f"MixParams(batch_size={self.batch_size}, partner={self.partner.tolist()}, "
            f"lam={[round(v, 4) for v in self.lam.tolist()]}, kind={kinds}, box={self.box.tolist()})"
        )


def check_params(params: Any, batch: int, images_shape: Optional[Tuple[int, ...]], *, check_boxes: bool = True) -> None:
    """A MixParams valid for images of shape ``images_shape`` (batch ``batch``; None: no images, as
    for targets, which do not use the boxes, and ``check_boxes=False``), every field on one real
    device. Reads the values on the host: call it on CPU params, before moving them to a GPU."""
    if not isinstance(params, MixParams):
        raise TypeError(f"params: expected a fastmix.MixParams, got {type_name(params)}")
    fields = (("partner", torch.int64, (batch,)), ("lam", torch.float32, (batch,)), ("kind", torch.uint8, (batch,)))
    fields += ((("box", torch.int64, (batch, 4)),) if check_boxes else ())
    values = params.as_tuple()[: len(fields)]
    for value, (name, dtype, shape) in zip(values, fields):
        check_param_field(f"params.{name}", value, dtype, shape, None, "")
    devices = {t.device for t in values}
    if len(devices) > 1 or next(iter(devices)).type == "meta":
        raise ValueError(f"params: expected {', '.join(name for name, _, _ in fields)} on one real device, "
                         f"got {sorted(str(d) for d in devices)}")
    if params.method is not None:
        check_param_field("params.method", params.method, torch.uint8, (batch,), None, "")
    host = params if params.device.type == "cpu" else params.to("cpu")
    if check_boxes:
        check_params_values(images_shape, *host.as_tuple(), prefix="params.")
        _check_params_pixel_mask(host, images_shape)
    else:
        check_targets_params_values(host.partner, host.lam, host.kind, prefix="params.")


def _check_params_pixel_mask(host: MixParams, images_shape: Optional[Tuple[int, ...]]) -> None:
    """params.pixel_mask: given (as (B, H, W) uint8 of the images' H, W) exactly when some sample is
    MASK, unless params.mask_field gives their pixels."""
    if host.mask_field is not None or host.field_threshold is not None:
        check_mask_field(host.mask_field, host.field_threshold, host.pixel_mask, images_shape, host.kind, host.box,
                         prefix="params.")
        return
    masks = host.kind == MixKind.MASK
    if host.pixel_mask is None:
        if bool(masks.any()):
            i = int(masks.nonzero()[0])
            raise ValueError(f"params.pixel_mask: expected (B, H, W) uint8 masks, as params.kind[{i}] is 3 (mask), got None")
        return
    if not isinstance(host.pixel_mask, torch.Tensor):
        raise TypeError(f"params.pixel_mask: expected a tensor or None, got {type_name(host.pixel_mask)}")
    if images_shape is None or len(images_shape) < 3:
        raise ValueError(f"params.pixel_mask: expected None for images of shape {images_shape} (no H, W dims), got a tensor")
    expected = (host.batch_size, images_shape[-2], images_shape[-1])
    check_param_field("params.pixel_mask", host.pixel_mask, torch.uint8, expected, None, "")
