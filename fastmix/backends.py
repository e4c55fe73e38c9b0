"""Which backends exist in this process, and which one a call uses.

``cpp``: the compiled CPU kernels of fastmix._C. ``cuda``: its CUDA kernels (when built with CUDA).
``numba``: the same CPU kernels compiled by numba (fastmix/numba_backend), for when fastmix._C is
missing or does not load. ``torch``: plain tensor arithmetic (fastmix/reference.py), always there:
the reference and the benchmark baseline. ``auto`` takes the compiled kernels for the tensors'
device when they exist, else (on the CPU) numba, else torch, with one warning saying why.
$FASTMIX_BACKEND forces the choice that ``auto`` makes.
"""
from __future__ import annotations

import os
import warnings
from typing import Dict, Optional, Tuple

import torch

BACKENDS = ("cpp", "cuda", "numba", "torch")
_CHOICES = ("auto",) + BACKENDS
BUILD_HINT = "pip install --no-build-isolation ."

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


def _compiled_reasons() -> Tuple[Optional[str], Optional[str]]:
    """Why the cpp and the cuda kernels cannot run here (None: they can)."""
    ext = load_extension()
    cpp = None if ext is not None else f"{_extension_error}. Rebuild with: {BUILD_HINT}"
    if ext is None:
        cuda = cpp
    elif not _has_cuda_kernels():
        cuda = "fastmix._C was built without CUDA kernels (no CUDA torch or no nvcc at build time)"
    elif not torch.cuda.is_available():
        cuda = "no CUDA device is available"
    else:
        cuda = None
    return cpp, cuda


def _numba_reason() -> Optional[str]:
    from .numba_backend import unavailable_reason

    return unavailable_reason()


def _reason(backend: str) -> Optional[str]:
    if backend == "numba":
        return _numba_reason()
    if backend == "torch":
        return None
    return _compiled_reasons()[0 if backend == "cpp" else 1]


def backends() -> Dict[str, Optional[str]]:
    """Each backend name mapped to None when it is usable here, else to why not."""
    cpp, cuda = _compiled_reasons()
    return {"cpp": cpp, "cuda": cuda, "numba": _numba_reason(), "torch": None}


def check_backend_name(backend: str) -> str:
    if not isinstance(backend, str) or backend not in _CHOICES:
        raise ValueError(f"backend: expected one of {', '.join(repr(b) for b in _CHOICES)}, got {backend!r}")
    return backend


def resolve_backend(backend: str, device: torch.device) -> str:
    """The backend that runs for tensors on ``device`` (raises if a requested one cannot)."""
    return _resolve(backend, device.type)


def _resolve(backend: str, device_type: str) -> str:
    device = torch.device(device_type)
    check_backend_name(backend)
    if backend == "auto":
        forced = os.environ.get("FASTMIX_BACKEND", "").strip()
        if forced and forced != "auto":
            backend = check_backend_name(forced)
    wanted_compiled = "cuda" if device.type == "cuda" else "cpp"
    if backend == "auto":
        if device.type not in ("cpu", "cuda"):
            _warn_fallback(wanted_compiled, f"no kernels for {device.type}", "torch")
            return "torch"
        if _reason(wanted_compiled) is None:
            return wanted_compiled
        why = _extension_error if load_extension() is None else _reason(wanted_compiled)
        if device.type == "cpu":  # cpp -> numba -> torch
            numba_reason = _numba_reason()
            if numba_reason is None:
                _warn_fallback(wanted_compiled, why, "numba")
                return "numba"
            _warn_fallback(wanted_compiled, why, "torch",
                           f"numba, the faster fallback, is not available either: {numba_reason}")
            return "torch"
        _warn_fallback(wanted_compiled, why, "torch")
        return "torch"
    if backend == "torch":
        return backend
    reason = _reason(backend)
    if reason is not None:
        raise RuntimeError(f"backend: {backend!r} is not available: {reason}")
    if (backend in ("cpp", "cuda") and backend != wanted_compiled) or (backend == "numba" and device.type != "cpu"):
        raise ValueError(f"backend: {backend!r} runs on {'cuda' if backend == 'cuda' else 'cpu'} tensors, "
                         f"got tensors on {device}")
    return backend


# The choice is fixed for the process, so torch.compile bakes it in as a constant: that is what
# torch.compiler.assume_constant_result does, by setting this one attribute. Setting it directly
# spares every `import fastmix` (and every spawned DataLoader worker) the 1.7 s import of
# torch._dynamo that the decorator costs; tests/test_ops.py checks that the decorator still sets
# exactly this mark, and compiles apply_mix_ with fullgraph=True.
_resolve._dynamo_marked_constant = True  # type: ignore[attr-defined]


def _warn_fallback(wanted: str, reason: Optional[str], using: str, note: Optional[str] = None) -> None:
    """The one warning per process that a backend was chosen in place of the compiled kernels."""
    global _warned_fallback
    if _warned_fallback:
        return
    _warned_fallback = True
    if using == "numba":
        instead = ("using the numba backend instead (the same kernels and results; each kernel is compiled on "
                   "its first use and cached on disk)")
    else:
        instead = f"using the slower torch backend{f' ({note})' if note else ''}"
    warnings.warn(
        f"fastmix: the {wanted} backend is not available ({reason}); {instead}. Build the extension with: {BUILD_HINT}",
        RuntimeWarning,
        stacklevel=3,
    )
