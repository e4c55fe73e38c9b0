"""Which backends exist in this process, and which one a call uses.

``cpp``: the compiled CPU kernels of fastmix._C. ``cuda``: its CUDA kernels (when built with CUDA).
``torch``: plain tensor arithmetic (fastmix/reference.py), always there: the reference and the
benchmark baseline. ``auto`` takes the compiled kernels for the tensors' device when they exist,
else falls back to ``torch`` with one warning. $FASTMIX_BACKEND forces the choice that ``auto`` makes.
"""
from __future__ import annotations

import os
import warnings
from typing import Dict, Optional

import torch

BACKENDS = ("cpp", "cuda", "torch")
_CHOICES = ("auto",) + BACKENDS + ("numba",)

_extension = None
_extension_error: Optional[str] = None
_loaded = False
_warned_fallback = False


def load_extension():
    """Import fastmix._C once (registering torch.ops.fastmix); None, with the reason kept, if it fails."""
    global _extension, _extension_error, _loaded
    if _loaded:
        return _extension
    _loaded = True
    if os.environ.get("FASTMIX_NO_EXT", "0") not in ("0", ""):
        _extension_error = "disabled by FASTMIX_NO_EXT"
        return None
    try:
        from . import _C  # type: ignore[attr-defined]
    except ImportError as exc:  # not built, or built against another torch (undefined symbols)
        _extension_error = f"fastmix._C could not be imported ({exc})"
        return None
    built_for = getattr(_C, "torch_version", "unknown")
    if built_for != torch.__version__:
        _extension_error = f"fastmix._C was built for torch {built_for}, but torch {torch.__version__} is installed"
        return None
    _extension = _C
    return _C


def _has_cuda_kernels() -> bool:
    if load_extension() is None:
        return False
    return torch._C._dispatch_has_kernel_for_dispatch_key("fastmix::mix_", "CUDA")


def backends() -> Dict[str, Optional[str]]:
    """Each backend name mapped to None when it is usable here, else to why not."""
    ext = load_extension()
    rebuild = " Rebuild with: pip install --no-build-isolation ."
    cpp = None if ext is not None else f"{_extension_error}.{rebuild}"
    if ext is None:
        cuda = cpp
    elif not _has_cuda_kernels():
        cuda = "fastmix._C was built without CUDA kernels (no CUDA torch or no nvcc at build time)"
    elif not torch.cuda.is_available():
        cuda = "no CUDA device is available"
    else:
        cuda = None
    return {
        "cpp": cpp,
        "cuda": cuda,
        "numba": "the numba backend is not implemented yet",
        "torch": None,
    }


def check_backend_name(backend: str) -> str:
    if not isinstance(backend, str) or backend not in _CHOICES:
        raise ValueError(f"backend: expected one of {', '.join(repr(b) for b in _CHOICES)}, got {backend!r}")
    return backend


def resolve_backend(backend: str, device: torch.device) -> str:
    """The backend that runs for tensors on ``device`` (raises if a requested one cannot)."""
    return _resolve(backend, device.type)


@torch.compiler.assume_constant_result  # fixed for the process: torch.compile bakes the choice in
def _resolve(backend: str, device_type: str) -> str:
    device = torch.device(device_type)
    check_backend_name(backend)
    if backend == "auto":
        forced = os.environ.get("FASTMIX_BACKEND", "").strip()
        if forced and forced != "auto":
            backend = check_backend_name(forced)
    wanted_compiled = "cuda" if device.type == "cuda" else "cpp"
    if backend == "auto":
        available = backends()
        if device.type in ("cpu", "cuda") and available[wanted_compiled] is None:
            return wanted_compiled
        _warn_fallback(wanted_compiled, available.get(wanted_compiled) or f"no kernels for {device.type}")
        return "torch"
    if backend == "torch":
        return backend
    reason = backends()[backend]
    if reason is not None:
        raise RuntimeError(f"backend: {backend!r} is not available: {reason}")
    if backend in ("cpp", "cuda") and backend != wanted_compiled:
        raise ValueError(f"backend: {backend!r} runs on {'cuda' if backend == 'cuda' else 'cpu'} tensors, "
                         f"got tensors on {device}")
    return backend


def _warn_fallback(wanted: str, reason: str) -> None:
    global _warned_fallback
    if not _warned_fallback:
        _warned_fallback = True
        warnings.warn(
            f"fastmix: the {wanted} backend is not available ({reason}); using the slower torch "
            "backend. Build the extension with: pip install --no-build-isolation .",
            RuntimeWarning,
            stacklevel=3,
        )
