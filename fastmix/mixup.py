"""fastmix.Mixup: timm's Mixup knobs, any batch size, images mixed in place."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from .backends import check_backend_name, resolve_backend
from .backends.checks import IMAGE_DTYPES, check_strided, check_tensor, check_writable_images, dtype_name, dtype_names
from .backends.device_params import with_plans
from .masks import MaskTargets, check_ignore_index, check_masks, mix_masks_, spatial_only
from .process_local import ProcessLocal
from .sampling.params import MixParams
from .sampling.policy import MixPolicy, check_seed
from .sampling.sample import sample_params
from .shared_settings import SharedPolicy, with_timm_knobs
from .targets import check_labels, soft_targets


def check_images(images: Any, needs_spatial: bool) -> None:
    """images of a Mixup (or fastmix.mix_): (B, ...) of a supported dtype, (B, C, H, W) or more dims
    when CutMix, FMix, ClassMix or ResizeMix may run, writable in place, not requiring grad."""
    check_tensor("images", images)
    check_strided("images", images)
    if images.dtype not in IMAGE_DTYPES:
        raise TypeError(f"images: expected dtype {dtype_names(IMAGE_DTYPES)}, got {dtype_name(images.dtype)}")
    min_dims = 4 if needs_spatial else 2
    if images.dim() < min_dims:
        what = "(B, C, H, W) (CutMix, FMix, ClassMix or ResizeMix is enabled)" if needs_spatial else "(B, ...) with at least 2 dims"
        raise ValueError(f"images: expected shape {what}, got shape {tuple(images.shape)}")
    if needs_spatial and images.shape[-2] * images.shape[-1] == 0:
        raise ValueError(f"images: CutMix, FMix, ClassMix and ResizeMix need H >= 1 and W >= 1, got shape {tuple(images.shape)}")
    check_writable_images(images)
    if images.requires_grad:
        raise ValueError("images: expected a tensor that does not require grad (it is mixed in place), got one that does")


def _with_plan(mix_: Callable[..., None], plan: torch.Tensor, plan_shape: List[int]) -> Callable[..., None]:
    """A backend's mix_ that passes ``plan`` (the plan of the params it is called with)."""
    return lambda images, partner, lam, kind, box, **mask_args: mix_(images, partner, lam, kind, box, plan, plan_shape,
                                                                     **mask_args)


@with_timm_knobs  # timm's attribute names, writable; a write is validated, then reaches every worker
class Mixup(ProcessLocal):
    """Mixup / CutMix (and FMix, ClassMix) of a batch and its labels, in place. A drop-in for
    ``timm.data.Mixup``.

    ``images, targets = mix(images, labels)``

    * images: (B, C, H, W) (or (B, ..., H, W); (B, ...) for Mixup only), uint8, float16, bfloat16,
      float32 or float64, contiguous, channels_last or strided. Mixed in place: the same tensor
      object is returned.
    * labels: (B,) integer class indices, or (B, num_classes) dense targets (probabilities or
      multi-label 0/1, mixed as given).
    * targets: (B, num_classes) float32 soft targets on the images' device.

    Any B works. For B >= 2 in "batch" and "elem" mode every sample is mixed with another sample
    (a flip, with a 3-cycle in the middle for odd B). In "pair" mode samples i and B-1-i share a
    lambda and box; with odd B the middle sample has no pair and is mixed one way with sample
    B//2 - 1 using its own lambda and box. B = 1 leaves the image alone and returns its smoothed
    one-hot target; B = 0 returns the inputs as they are.

    Args: see :class:`fastmix.MixPolicy` for the knobs (same meanings and defaults as timm), plus
        seed: seed of this object's random stream (None: torch.initial_seed()); combined with the
            DataLoader worker and the DDP rank, so streams differ across processes.
        backend: "auto", "cpp", "cuda", "numba" or "torch" (see :func:`fastmix.available_backends`);
            a named one that cannot run here raises ValueError now.
        ignore_index: the mask value of ignored pixels, for ``masks=`` (segmentation; default 255).
        fmix_alpha, fmix_decay_power, classmix, resizemix_alpha, resizemix_lam_min,
            resizemix_lam_max, resizemix_interpolation, method_probs: the methods beyond timm's, off
            by default (FMix's lambda ~ Beta(fmix_alpha, fmix_alpha) and its spectrum's decay power;
            ClassMix, which needs ``masks=``; ResizeMix's lambda, drawn as mmpretrain's in
            [resizemix_lam_min, resizemix_lam_max], and its "bilinear" or "nearest" resize; the
            weights of the enabled methods by name): see :class:`fastmix.MixPolicy`. A FMix or
            ClassMix sample is MixKind.MASK, its pixels in ``last_params.pixel_masks()``; a ResizeMix
            sample is MixKind.RESIZE (or RESIZE_NEAREST), its box in ``last_params.box``; the
            method of each sample is in ``last_params.method``.

    Set ``mix.mixup_enabled = False`` (as in timm) to stop mixing, e.g. for the last epochs;
    targets are then the smoothed one-hot labels. ``mix.last_params`` is the MixParams of the
    last call (partner, lam, kind, box).
    """

    def __init__(
        self,
        mixup_alpha: float = 1.0,
        cutmix_alpha: float = 0.0,
        cutmix_minmax: Optional[Tuple[float, float]] = None,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        mode: str = "batch",
        correct_lam: bool = True,
        label_smoothing: float = 0.1,
        num_classes: int = 1000,
        multi_label: bool = False,
        seed: Optional[int] = None,
        backend: str = "auto",
        ignore_index: int = 255,
        fmix_alpha: float = 0.0,
        fmix_decay_power: float = 3.0,
        classmix: bool = False,
        resizemix_alpha: float = 0.0,
        resizemix_lam_min: float = 0.1,
        resizemix_lam_max: float = 0.8,
        resizemix_interpolation: str = "bilinear",
        method_probs: Optional[Dict[str, float]] = None,
    ) -> None:
        policy = MixPolicy(
            mixup_alpha=mixup_alpha,
            cutmix_alpha=cutmix_alpha,
            cutmix_minmax=cutmix_minmax,
            prob=prob,
            switch_prob=switch_prob,
            mode=mode,
            correct_lam=correct_lam,
            label_smoothing=label_smoothing,
            num_classes=num_classes,
            multi_label=multi_label,
            fmix_alpha=fmix_alpha,
            fmix_decay_power=fmix_decay_power,
            classmix=classmix,
            resizemix_alpha=resizemix_alpha,
            resizemix_lam_min=resizemix_lam_min,
            resizemix_lam_max=resizemix_lam_max,
            resizemix_interpolation=resizemix_interpolation,
            method_probs=method_probs,
        )
        self.seed = check_seed(seed)
        self.backend = check_backend_name(backend)
        if backend != "auto":  # a named backend that cannot run here fails now, not at the first batch
            resolve_backend(backend, "cuda" if backend == "cuda" else "cpu")
        self.shared = SharedPolicy(policy)  # what DataLoader workers read for each batch
        self.ignore_index = check_ignore_index(ignore_index)
        self.last_params: Optional[MixParams] = None

    @property
    def policy(self) -> MixPolicy:
        """The knobs now in force (as last set in any process that holds this Mixup)."""
        return self.shared.read()[0]

    def sample(self, batch_size: int, height: Optional[int] = None, width: Optional[int] = None,
               masks: Optional[torch.Tensor] = None) -> MixParams:
        """Draw the MixParams for a batch of ``batch_size`` images of size (height, width), on the CPU
        (``masks`` (B, H, W): the segmentation masks ClassMix reads)."""
        policy, enabled = self.shared.read()
        return sample_params(policy, batch_size, height, width, self.generator, enabled=enabled, masks=masks,
                             ignore_index=self.ignore_index)

    def __call__(self, images: torch.Tensor, labels: Optional[torch.Tensor] = None,
                 masks: Optional[torch.Tensor] = None) -> Tuple[Any, ...]:
        """``images, targets = mix(images, labels)``; with segmentation masks (B, H, W),
        ``images, targets, mask_targets = mix(images, labels, masks=masks)`` where labels may be
        None (targets then None) and ``mask_targets`` is a :class:`fastmix.MaskTargets`: the masks
        with the CutMix boxes pasted in place, the partners' masks where blended, and the weights."""
        policy, enabled = self.shared.read()  # once: a concurrent write applies from the next batch
        spatial = policy.needs_height_and_width and enabled and policy.prob > 0
        check_images(images, needs_spatial=spatial)
        if labels is None and masks is None:
            raise TypeError("labels: expected a tensor of labels (or masks=...), got None")
        if labels is not None:
            check_labels(labels, images.shape[0], images.device, policy.num_classes, policy.multi_label)
        if masks is not None:
            check_masks(masks, images, policy.num_classes, self.ignore_index)
        backend = self.backend_for(images.device)
        batch = images.shape[0]
        height, width = (images.shape[-2], images.shape[-1]) if images.dim() >= 3 else (None, None)
        params = sample_params(policy, batch, height, width, self.generator, enabled=enabled, masks=masks,
                               ignore_index=self.ignore_index)
        self.last_params = params
        mask_args = params.mask_args_to(images.device, non_blocking=True)
        mix_images, mix_masks = backend.mix_, backend.mix_
        if images.device.type == "cuda" and batch:
            # The params and the cuda kernels' plans (the images', and the masks' paste) built here
            # and moved in one non-blocking copy (backends/device_params.py).
            plan_params = []
            if backend.name == "cuda":
                plan_params.append(params.as_tuple())
                if masks is not None:
                    plan_params.append(spatial_only(params.partner, params.kind, params.box))
            (partner, lam, kind, box), plans = with_plans(params.as_tuple(), images.device, plan_params)
            if plans:
                mix_images = _with_plan(backend.mix_, *plans[0])
                mix_masks = _with_plan(backend.mix_, *plans[-1])
        else:
            partner, lam, kind, box = params.to(images.device, non_blocking=True).as_tuple()
        targets = None
        if labels is not None:
            targets = (soft_targets(backend, labels, partner, lam, kind, policy) if batch else
                       torch.empty(0, policy.num_classes, dtype=torch.float32, device=images.device))
        mask_targets = mix_masks_(mix_masks, masks, partner, lam, kind, box, **mask_args) if masks is not None and batch \
            else (MaskTargets.unmixed(masks) if masks is not None else None)
        if batch:
            mix_images(images, partner, lam, kind, box, **mask_args)
        return (images, targets) if masks is None else (images, targets, mask_targets)

    @staticmethod
    def _other_methods_repr(p: MixPolicy) -> str:
        """The knobs beyond timm's, when any is set (a timm user's repr stays timm's)."""
        default = MixPolicy()
        names = ("fmix_alpha", "fmix_decay_power", "classmix", "resizemix_alpha", "resizemix_lam_min",
                 "resizemix_lam_max", "resizemix_interpolation")
        if p.method_probs is None and all(getattr(p, name) == getattr(default, name) for name in names):
            return ""
        return "".join(f"{name}={getattr(p, name)!r}, " for name in names) + f"method_probs={p.method_probs_by_name}, "

    def __repr__(self) -> str:
        p = self.policy
        return (
            f"fastmix.Mixup(mixup_alpha={p.mixup_alpha}, cutmix_alpha={p.cutmix_alpha}, cutmix_minmax={p.cutmix_minmax}, "
            f"prob={p.prob}, switch_prob={p.switch_prob}, mode={p.mode!r}, correct_lam={p.correct_lam}, "
            f"label_smoothing={p.label_smoothing}, num_classes={p.num_classes}, multi_label={p.multi_label}, "
            f"{self._other_methods_repr(p)}seed={self.seed}, backend={self.backend!r})"
        )
