"""The compiled backends, ``cpp`` and ``cuda``: the ops of fastmix._C, called through the
dispatcher (torch.ops.fastmix.*), which picks the CPU or CUDA kernels by the tensors' device.
Sources: csrc/cpu/*_cpu.cpp and csrc/cuda/*_cuda.cu, one file per operation."""
from __future__ import annotations

import torch


def mix_(images, partner, lam, kind, box) -> None:  # noqa: ANN001 - the op's schema
    torch.ops.fastmix.mix_(images, partner, lam, kind, box)


def mix_into_(out, images, partner, lam, kind, box, scale, bias, hwc) -> None:  # noqa: ANN001
    torch.ops.fastmix.mix_into_(out, images, partner, lam, kind, box, scale, bias, hwc)


def collate_mix_(out, samples, partner, lam, kind, box, scale, bias, hwc) -> None:  # noqa: ANN001
    torch.ops.fastmix.collate_mix_(out, samples, partner, lam, kind, box, scale, bias, hwc)


def mix_targets(labels, partner, lam, kind, num_classes, smoothing) -> torch.Tensor:  # noqa: ANN001
    return torch.ops.fastmix.mix_targets(labels, partner, lam, kind, num_classes, smoothing)
