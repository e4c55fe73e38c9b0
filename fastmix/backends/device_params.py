"""Params and in-place plans for the CUDA kernels: built on the host, moved to the GPU in one copy.

fastmix.Mixup and fastmix.mix_ sample and check their MixParams on the CPU. For CUDA images the
cuda backend's in-place plan is built there too (torch.ops.fastmix.device_plan: csrc/mix_plan.h,
the plan every backend uses), and params and plans travel together: packed into one pinned uint8
buffer (64-byte aligned sections), copied with one ``.to(device, non_blocking=True)``, and viewed
on the device as the tensors they were. The pinned buffer comes from torch's caching host
allocator, which makes it cheap after the first call and keeps it until its copy is done, so
nothing waits for the GPU. Without a plan the CUDA op builds one itself, from params it then has
to copy back to the host (a sync): csrc/cuda/mix_cuda.cu.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch

from .checks import PLAN_SHAPE_FIELDS

Params = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # partner, lam, kind, box
Plan = Tuple[torch.Tensor, List[int]]  # the plan's bytes, its plan_shape


def plan_shape(plan: torch.Tensor) -> List[int]:
    """The fields of a plan's header (PLAN_SHAPE_FIELDS), read from its bytes on the CPU: the
    ``plan_shape`` that fastmix::mix_ takes beside the plan."""
    return plan[:64].view(torch.int32)[1:1 + len(PLAN_SHAPE_FIELDS)].tolist()


def host_plan(partner: torch.Tensor, lam: torch.Tensor, kind: torch.Tensor, box: torch.Tensor) -> Plan:
    """The CUDA kernels' plan of CPU params, and its shape."""
    plan = torch.ops.fastmix.device_plan(partner, lam, kind, box)
    return plan, plan_shape(plan)


def to_device(tensors: Sequence[torch.Tensor], device: torch.device) -> List[torch.Tensor]:
    """CPU tensors, the same on ``device`` (a GPU): packed into one pinned buffer, moved in one
    non-blocking copy, and views of it there (each section 64-byte aligned)."""
    sizes = [t.numel() * t.element_size() for t in tensors]
    offsets, total = [], 0
    for size in sizes:
        offsets.append(total)
        total += (size + 63) // 64 * 64
    host = torch.empty(total, dtype=torch.uint8, pin_memory=True)
    for t, offset, size in zip(tensors, offsets, sizes):
        if size:
            host[offset:offset + size].copy_(t.contiguous().view(-1).view(torch.uint8))
    moved = host.to(device, non_blocking=True)
    return [moved[offset:offset + size].view(t.dtype).view(t.shape) for t, offset, size in zip(tensors, offsets, sizes)]


def with_plans(params: Params, device: torch.device, plan_params: Sequence[Params] = ()) -> Tuple[Params, List[Plan]]:
    """``params`` (on the CPU) on ``device``, and the plan of each of ``plan_params`` (CPU params:
    the images', and the masks' when there are masks), all in one copy."""
    plans = [host_plan(*p) for p in plan_params]
    moved = to_device([*params, *(plan for plan, _ in plans)], device)
    partner, lam, kind, box = moved[:4]
    return (partner, lam, kind, box), [(plan, shape) for plan, (_, shape) in zip(moved[4:], plans)]


def mix_args(params: Params, device: torch.device, with_plan: bool) -> tuple:
    """The arguments of a backend's ``mix_`` after the images, for CPU ``params`` and images on
    ``device``: the params there, and on a GPU (``with_plan``: for the cuda backend) their plan."""
    if device.type != "cuda":
        return tuple(t.to(device) for t in params)
    moved, plans = with_plans(params, device, [params] if with_plan else [])
    return (*moved, *plans[0]) if plans else moved
