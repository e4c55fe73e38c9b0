"""MixParams: everything that was randomly decided about one batch, in a few O(B) tensors.

Every backend consumes the same MixParams, so a batch can be logged, replayed, or mixed by two
backends and compared exactly.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import torch


class MixKind(enum.IntEnum):
    """What happens to one sample (the values stored in ``MixParams.kind``)."""

    NONE = 0  #: left as it is
    BLEND = 1  #: Mixup: ``lam * x[i] + (1 - lam) * x[partner[i]]``
    PASTE = 2  #: CutMix: the box of ``x[partner[i]]`` is pasted into ``x[i]``


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
    """

    partner: torch.Tensor
    lam: torch.Tensor
    kind: torch.Tensor
    box: torch.Tensor

    @property
    def batch_size(self) -> int:
        return int(self.partner.shape[0])

    @property
    def device(self) -> torch.device:
        return self.partner.device

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "MixParams":
        """The same params on ``device`` (one small copy per field; no per-sample host sync)."""
        return MixParams(*(t.to(device, non_blocking=non_blocking) for t in self.as_tuple()))

    def as_tuple(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return (self.partner, self.lam, self.kind, self.box)

    def mixed(self) -> torch.Tensor:
        """(B,) bool: which samples are actually changed (mixed with a sample other than themselves)."""
        return (self.kind != MixKind.NONE) & (self.partner != torch.arange(self.batch_size, device=self.device))

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


def check_params(
    params: MixParams, batch_size: int, height: int | None, width: int | None, *, check_boxes: bool = True
) -> None:
    """Raise ValueError/TypeError unless ``params`` is a valid MixParams for such a batch.

    ``height``/``width`` are the last two dims of the images, or None when they have fewer than 3 dims;
    ``check_boxes=False`` skips the boxes (for targets, which do not use them).
    Reads the params on the host (call it on CPU params before moving them to a GPU).
    """
    if not isinstance(params, MixParams):
        raise TypeError(f"params: expected a fastmix.MixParams, got {type(params).__name__}")
    expected = {
        "partner": (torch.int64, (batch_size,)),
        "lam": (torch.float32, (batch_size,)),
        "kind": (torch.uint8, (batch_size,)),
        "box": (torch.int64, (batch_size, 4)),
    }
    for name, (dtype, shape) in expected.items():
        t = getattr(params, name)
        if not isinstance(t, torch.Tensor) or t.dtype != dtype or tuple(t.shape) != shape:
            got = f"{t.dtype} of shape {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"params.{name}: expected {dtype} of shape {shape}, got {got}")
    devices = {t.device for t in params.as_tuple()}
    if len(devices) > 1 or next(iter(devices)).type == "meta":
        raise ValueError(
            f"params: expected partner, lam, kind and box on one real device, got {sorted(str(d) for d in devices)}"
        )
    if batch_size == 0:
        return
    partner, lam, kind, box = (t.cpu() for t in params.as_tuple())
    paste = kind == MixKind.PASTE
    check_paste_boxes = check_boxes and bool(paste.any())
    ok = bool(((partner >= 0) & (partner < batch_size) & (kind <= MixKind.PASTE) & (lam >= 0) & (lam <= 1)).all())
    if ok and not check_paste_boxes:
        return  # the common case: one fused pass over O(B) values
    bad = ((partner < 0) | (partner >= batch_size)).nonzero()
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"params.partner[{i}]: expected an index in [0, {batch_size}), got {int(partner[i])}")
    bad = (kind > MixKind.PASTE).nonzero()
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"params.kind[{i}]: expected 0 (none), 1 (blend) or 2 (paste), got {int(kind[i])}")
    bad = (~torch.isfinite(lam) | (lam < 0) | (lam > 1)).nonzero()
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"params.lam[{i}]: expected a value in [0, 1], got {float(lam[i])}")
    paste = paste.nonzero().flatten()
    if check_paste_boxes:
        if height is None or width is None:
            raise ValueError(
                f"params.kind[{int(paste[0])}]: paste (CutMix) needs images of shape (B, ..., H, W), "
                "got images with fewer than 3 dims"
            )
        b = box[paste]
        ok = (0 <= b[:, 0]) & (b[:, 0] <= b[:, 1]) & (b[:, 1] <= height) & (0 <= b[:, 2]) & (b[:, 2] <= b[:, 3])
        ok &= b[:, 3] <= width
        if not bool(ok.all()):
            j = int((~ok).nonzero()[0])
            i = int(paste[j])
            raise ValueError(
                f"params.box[{i}]: expected (y0, y1, x0, x1) with 0 <= y0 <= y1 <= {height} and "
                f"0 <= x0 <= x1 <= {width}, got {tuple(box[i].tolist())}"
            )
