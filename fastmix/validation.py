"""Checks of user inputs, all done before anything is written. Each error names the argument,
what was expected and what came."""
from __future__ import annotations

import torch

IMAGE_DTYPES = (torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64)


def elements_may_share_memory(x: torch.Tensor) -> bool:
    """Whether two elements of ``x`` may lie at one address (mixing it in place would race).

    With the dims of size > 1 in order of stride, the elements are all distinct when each stride
    exceeds the farthest offset the smaller dims reach: exact for every layout that views,
    slices, permutes and transposes make; true for expand() (a zero stride) and overlapping
    windows (unfold with a step under the window). The same rule as csrc/check_params.h."""
    if x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last):
        return False
    reach = 0  # the farthest offset the dims so far reach
    for stride, size in sorted((st, sz) for st, sz in zip(x.stride(), x.shape) if sz > 1):
        if stride <= reach:
            return True
        reach += stride * (size - 1)
    return False


def check_images(images: torch.Tensor, needs_spatial: bool) -> None:
    """images: (B, ...) tensor of a supported dtype; (B, C, H, W) or more dims when CutMix may run."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images: expected a torch.Tensor, got {type(images).__name__}")
    if images.dtype not in IMAGE_DTYPES:
        names = ", ".join(str(d).replace("torch.", "") for d in IMAGE_DTYPES)
        raise TypeError(f"images: expected dtype {names}, got {str(images.dtype).replace('torch.', '')}")
    min_dims = 4 if needs_spatial else 2
    if images.dim() < min_dims:
        what = "(B, C, H, W) (CutMix is enabled)" if needs_spatial else "(B, ...) with at least 2 dims"
        raise ValueError(f"images: expected shape {what}, got shape {tuple(images.shape)}")
    if needs_spatial and images.shape[-2] * images.shape[-1] == 0:
        raise ValueError(f"images: CutMix needs H >= 1 and W >= 1, got shape {tuple(images.shape)}")
    # (not while tracing: the op checks it again at run time)
    if not torch.compiler.is_compiling() and images.numel() and elements_may_share_memory(images):
        raise ValueError(
            f"images: expected a tensor whose elements do not share memory (it is written in place), got one "
            f"with strides {images.stride()} for shape {tuple(images.shape)} (from expand() or overlapping windows "
            f"such as unfold()?); call .contiguous() first"
        )
    if images.requires_grad:
        raise ValueError("images: expected a tensor that does not require grad (it is mixed in place), got one that does")


def check_labels(labels: torch.Tensor, batch: int, device: torch.device, num_classes: int) -> None:
    """labels: (B,) integer class indices in [0, C) or (B, C) dense targets, on the images' device."""
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels: expected a torch.Tensor, got {type(labels).__name__}")
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
    if labels.is_complex():
        raise TypeError(f"labels: expected real values, got {labels.dtype}")
    if labels.dim() == 1:
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise TypeError(
                f"labels: 1-D labels must be integer class indices, got {labels.dtype}; pass dense targets as "
                f"({batch}, {num_classes})"
            )
        if batch:
            bad = ((labels < 0) | (labels >= num_classes)).nonzero()
            if len(bad):
                i = int(bad[0])
                raise ValueError(
                    f"labels[{i}]: expected a class index in [0, {num_classes}) (num_classes={num_classes}), "
                    f"got {int(labels[i])}"
                )
    elif labels.shape[1] != num_classes:
        raise ValueError(
            f"labels: dense targets must have num_classes={num_classes} columns, got shape {tuple(labels.shape)}"
        )
