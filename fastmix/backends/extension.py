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
    _extension = _C
    return _C


def extension_error() -> Optional[str]:
    """Why fastmix._C did not load (None when it did)."""
    load_extension()
    return _error


def has_cuda_kernels() -> bool:
    return load_extension() is not None and torch._C._dispatch_has_kernel_for_dispatch_key("fastmix::mix_", "CUDA")


def _register_fakes() -> None:
    @torch.library.register_fake("fastmix::mix_")
    def _mix_fake(images, partner, lam, kind, box):  # noqa: ANN001 - signature fixed by the schema
        return None

    @torch.library.register_fake("fastmix::mix_into_")
    def _mix_into_fake(out, images, partner, lam, kind, box, scale, bias, hwc):  # noqa: ANN001
        return None

    @torch.library.register_fake("fastmix::collate_mix_")
    def _collate_mix_fake(out, samples, partner, lam, kind, box, scale, bias, hwc):  # noqa: ANN001
        return None

    @torch.library.register_fake("fastmix::mix_targets")
    def _mix_targets_fake(labels, partner, lam, kind, num_classes, smoothing):  # noqa: ANN001
        return labels.new_empty((labels.shape[0], num_classes), dtype=torch.float32)
