"""Loading fastmix._C (the compiled ops, registered as torch.ops.fastmix.*) and their fakes.

The fake (meta) implementations tell torch.compile the ops' output shapes without running them;
the schemas themselves are declared once, in csrc/ops.cpp.
"""
from __future__ import annotations

import os
from typing import Optional

import torch

BUILD_HINT = "pip install --no-build-isolation ."

_extension = None
_error: Optional[str] = None
_loaded = False


def load_extension():
    """Import fastmix._C once (registering torch.ops.fastmix); None, with the reason kept, if it fails."""
    global _extension, _error, _loaded
    if _loaded:
        return _extension
    _loaded = True
    if os.environ.get("FASTMIX_NO_EXT", "0") not in ("0", ""):
        _error = "disabled by FASTMIX_NO_EXT"
        return None
    try:
        from .. import _C  # type: ignore[attr-defined]
    except ImportError as exc:  # not built, or built against another torch (undefined symbols)
        _error = f"fastmix._C could not be imported ({exc})"
        return None
    built_for = getattr(_C, "torch_version", "unknown")
    if built_for != torch.__version__:
        _error = f"fastmix._C was built for torch {built_for}, but torch {torch.__version__} is installed"
        return None
    _register_fakes()
    from .negative_bit import register_negative_kernels

    register_negative_kernels()  # not torch's fallback for the bit (negative_bit.py says why)
    _register_layout_refusals()
    _extension = _C
    return _C


def extension_error() -> Optional[str]:
    """Why fastmix._C did not load (None when it did)."""
    load_extension()
    return _error


def has_cuda_kernels() -> bool:
    return load_extension() is not None and torch._C._dispatch_has_kernel_for_dispatch_key("fastmix::mix_", "CUDA")


_layout_library = None
_SPARSE_KEYS = ("SparseCPU", "SparseCUDA", "SparseCsrCPU", "SparseCsrCUDA")


def _register_layout_refusals() -> None:
    """Kernels for the sparse dispatch keys that refuse the call as the dense kernels would:
    without them the dispatcher raises NotImplementedError before any check of ours runs."""
    global _layout_library
    if _layout_library is not None:
        return
    from .checks import (check_collate_mix_args, check_device_plan_args, check_inplace_plan_args, check_mix_args,
                         check_mix_into_args, check_mix_targets_args)

    def refuse(check):
        def kernel(*args):
            check(*args)  # raises TypeError naming the sparse argument
            raise TypeError("expected strided (dense) tensors, got a sparse one")  # (a check always fires first)
        return kernel

    checks = {"mix_": check_mix_args, "mix_into_": check_mix_into_args, "collate_mix_": check_collate_mix_args,
              "mix_targets": check_mix_targets_args, "device_plan": check_device_plan_args,
              "inplace_plan": check_inplace_plan_args}
    library = torch.library.Library("fastmix", "IMPL")
    for name, check in checks.items():
        for key in _SPARSE_KEYS:
            library.impl(name, refuse(check), key)
    _layout_library = library


def _register_fakes() -> None:
    """The fake kernels: output shapes for torch.compile and meta tensors, after the device checks.

    The dispatcher sends a call to the kernel of its tensors' highest-ranked device, and Meta
    outranks CPU and CUDA: a call with one meta tensor among CPU tensors lands here, not in the CPU
    kernel. So each fake checks that every tensor is on the data's device (images, out, labels),
    worded as the kernels word it, and refuses such a call instead of returning without a write
    (or an uninitialised CPU result). A call whose tensors are all meta (meta tracing) or all fake
    tensors of one device (torch.compile) passes."""
    from .checks import check_affine_devices, check_on_device, check_plan_partner

    def on_device_of(data_name, data, **tensors):  # noqa: ANN001, ANN202
        for name, value in tensors.items():
            check_on_device(name, value, data, data_name)

    def affine_on_device_of_out(out, scale, bias):  # noqa: ANN001, ANN202
        if scale.device != out.device or bias.device != out.device:  # (numel() read only then: no guard on it)
            check_affine_devices(out, scale, bias, normalize=scale.numel() > 0 or bias.numel() > 0)

    def masks_on_device_of(data, data_name, pixel_mask, mask_field, field_threshold):  # noqa: ANN001, ANN202
        for name, t in (("pixel_mask", pixel_mask), ("mask_field", mask_field), ("field_threshold", field_threshold)):
            if t is not None:
                check_on_device(name, t, data, data_name)

    @torch.library.register_fake("fastmix::mix_")
    def _mix_fake(images, partner, lam, kind, box, plan=None, plan_shape=(), pixel_mask=None, mask_field=None,  # noqa: ANN001 - fixed by the schema
                  field_threshold=None):  # noqa: ANN001
        on_device_of("images", images, partner=partner, lam=lam, kind=kind, box=box)
        if plan is not None:
            check_on_device("plan", plan, images, "images")
        masks_on_device_of(images, "images", pixel_mask, mask_field, field_threshold)

    # The plans are built on the host (a meta partner is refused as the kernel refuses a CUDA one),
    # and their sizes depend on the partner map's values: unbacked sizes under torch.compile.
    @torch.library.register_fake("fastmix::device_plan")
    def _device_plan_fake(partner, lam, kind, box):  # noqa: ANN001
        check_plan_partner(partner)
        on_device_of("partner", partner, lam=lam, kind=kind, box=box)
        return partner.new_empty((torch.library.get_ctx().new_dynamic_size(),), dtype=torch.uint8)

    @torch.library.register_fake("fastmix::inplace_plan")
    def _inplace_plan_fake(partner, kind):  # noqa: ANN001
        check_plan_partner(partner)
        on_device_of("partner", partner, kind=kind)
        return partner.new_empty((torch.library.get_ctx().new_dynamic_size(), 3), dtype=torch.int64)

    @torch.library.register_fake("fastmix::mix_into_")
    def _mix_into_fake(out, images, partner, lam, kind, box, scale, bias, hwc, pixel_mask=None, mask_field=None,  # noqa: ANN001
                       field_threshold=None):  # noqa: ANN001
        on_device_of("out", out, images=images, partner=partner, lam=lam, kind=kind, box=box)
        affine_on_device_of_out(out, scale, bias)
        masks_on_device_of(out, "out", pixel_mask, mask_field, field_threshold)

    @torch.library.register_fake("fastmix::collate_mix_")
    def _collate_mix_fake(out, samples, partner, lam, kind, box, scale, bias, hwc, pixel_mask=None,  # noqa: ANN001
                          mask_field=None, field_threshold=None):  # noqa: ANN001
        for i, sample in enumerate(samples):
            check_on_device(f"samples[{i}]", sample, out, "out")
        on_device_of("out", out, partner=partner, lam=lam, kind=kind, box=box)
        affine_on_device_of_out(out, scale, bias)
        masks_on_device_of(out, "out", pixel_mask, mask_field, field_threshold)

    @torch.library.register_fake("fastmix::mix_targets")
    def _mix_targets_fake(labels, partner, lam, kind, num_classes, smoothing):  # noqa: ANN001
        on_device_of("labels", labels, partner=partner, lam=lam, kind=kind)
        return labels.new_empty((labels.shape[0], num_classes), dtype=torch.float32)
