"""Which backends exist in this process, and which one runs for a device: resolved once.

``cpp``: the compiled CPU kernels of fastmix._C. ``cuda``: its CUDA kernels (when built with CUDA).
``numba``: the same CPU kernels compiled by numba (backends/numba), for when fastmix._C is missing
or does not load. ``torch``: plain tensor arithmetic (backends/reference.py), always there: the
reference and the benchmark baseline. ``auto`` takes the compiled kernels for the device when they
exist, else (on the CPU) numba, else torch, with one warning saying why. $FASTMIX_BACKEND forces
the choice that ``auto`` makes.
"""
from __future__ import annotations

import os
import warnings
from typing import Callable, Dict, Optional, Tuple

import torch

from ._dynamo_compat import assume_constant_result
from .extension import BUILD_HINT, extension_error, has_cuda_kernels, load_extension

BACKEND_NAMES = ("cpp", "cuda", "numba", "torch")
CHOICES = ("auto",) + BACKEND_NAMES


class Backend:
    """One implementation of fastmix's operations; every backend has the same four, with the
    signatures of the registered ops (csrc/ops.cpp):

    * ``mix_(images, partner, lam, kind, box, plan=None, plan_shape=())``: mix (B, ...) images in
      place; ``plan`` is the CUDA kernels' plan of these params (fastmix.backends.device_params),
      which the CPU backends check and ignore (they build their own);
    * ``mix_into_(out, images, partner, lam, kind, box, scale, bias, hwc)``: mix (B, C, H, W) (or
      (B, H, W, C) when hwc) images into ``out`` (B, C, H, W), converted and normalised;
    * ``collate_mix_(out, samples, partner, lam, kind, box, scale, bias, hwc)``: the same from a
      list of B samples (C, H, W) or (H, W, C);
    * ``mix_targets(labels, partner, lam, kind, num_classes, smoothing) -> (B, C) float32``.

    Each checks its arguments (the same checks and wording in C++ and Python) before writing.
    (A plain class: a dataclass would add a millisecond to every ``import fastmix``.)
    """

    __slots__ = ("name", "devices", "mix_", "mix_into_", "collate_mix_", "mix_targets")

    def __init__(self, name: str, devices: Tuple[str, ...], mix_: Callable[..., None], mix_into_: Callable[..., None],
                 collate_mix_: Callable[..., None], mix_targets: Callable[..., torch.Tensor]) -> None:
        self.name = name
        self.devices = devices  #: device types whose tensors it runs on ("any" for the reference)
        self.mix_ = mix_
        self.mix_into_ = mix_into_
        self.collate_mix_ = collate_mix_
        self.mix_targets = mix_targets

    def runs_on(self, device_type: str) -> bool:
        return "any" in self.devices or device_type in self.devices

    def __repr__(self) -> str:
        return f"fastmix.backends.Backend({self.name!r})"


def _build(name: str) -> Backend:
    if name in ("cpp", "cuda"):
        from . import compiled as ops

        devices: Tuple[str, ...] = ("cpu",) if name == "cpp" else ("cuda",)
    elif name == "numba":
        from . import numba as ops  # type: ignore[no-redef]

        devices = ("cpu",)
    else:
        from . import reference as ops  # type: ignore[no-redef]

        devices = ("any",)
    return Backend(name, devices, ops.mix_, ops.mix_into_, ops.collate_mix_, ops.mix_targets)


def _compiled_reasons() -> Tuple[Optional[str], Optional[str]]:
    """Why the cpp and the cuda kernels cannot run here (None: they can)."""
    ext = load_extension()
    cpp = None if ext is not None else f"{extension_error()}. Rebuild with: {BUILD_HINT}"
    if ext is None:
        cuda = cpp
    elif not has_cuda_kernels():
        cuda = "fastmix._C was built without CUDA kernels (no CUDA torch or no nvcc at build time)"
    elif not torch.cuda.is_available():
        cuda = "no CUDA device is available"
    else:
        cuda = None
    return cpp, cuda


def _numba_reason() -> Optional[str]:
    from .numba.availability import unavailable_reason

    return unavailable_reason()


def unavailable_reason(name: str) -> Optional[str]:
    """None when backend ``name`` can run in this process, else why not."""
    if name == "numba":
        return _numba_reason()
    if name == "torch":
        return None
    return _compiled_reasons()[0 if name == "cpp" else 1]


def available_backends() -> Dict[str, Optional[str]]:
    """Each backend name mapped to None when it is usable here, else to why not."""
    cpp, cuda = _compiled_reasons()
    return {"cpp": cpp, "cuda": cuda, "numba": _numba_reason(), "torch": None}


def check_backend_name(backend: object) -> str:
    if not isinstance(backend, str) or backend not in CHOICES:
        raise ValueError(f"backend: expected one of {', '.join(repr(b) for b in CHOICES)}, got {backend!r}")
    return backend


_resolved: Dict[Tuple[str, str], Backend] = {}
_warned_fallback = False


def resolve_backend(backend: str, device: torch.device | str) -> Backend:
    """The backend that runs for tensors on ``device`` (its type decides): ValueError when a
    named backend cannot run there, with the reason."""
    device_type = torch.device(device).type
    name = _resolve_name(check_backend_name(backend), device_type)
    key = (name, device_type)
    if key not in _resolved:
        _resolved[key] = _build(name)
    return _resolved[key]


@assume_constant_result  # fixed for the process: torch.compile bakes the choice in
def _resolve_name(backend: str, device_type: str) -> str:
    forced = os.environ.get("FASTMIX_BACKEND", "").strip()
    if backend == "auto" and forced and forced != "auto":
        backend = check_backend_name(forced)
    wanted_compiled = "cuda" if device_type == "cuda" else "cpp"
    if backend == "auto":
        if device_type not in ("cpu", "cuda"):
            _warn_fallback(wanted_compiled, f"no kernels for {device_type}", "torch")
            return "torch"
        if unavailable_reason(wanted_compiled) is None:
            return wanted_compiled
        why = extension_error() if load_extension() is None else unavailable_reason(wanted_compiled)
        if device_type == "cpu":  # cpp -> numba -> torch
            numba_reason = _numba_reason()
            if numba_reason is None:
                _warn_fallback(wanted_compiled, why, "numba")
                return "numba"
            _warn_fallback(wanted_compiled, why, "torch", f"numba, the faster fallback, is not available either: {numba_reason}")
            return "torch"
        _warn_fallback(wanted_compiled, why, "torch")
        return "torch"
    if backend == "torch":
        return backend
    reason = unavailable_reason(backend)
    if reason is not None:
        raise ValueError(f"backend: expected a backend available here, got {backend!r}, which is not: {reason}")
    runs_on = "cuda" if backend == "cuda" else "cpu"
    if device_type != runs_on:
        raise ValueError(f"backend: {backend!r} runs on {runs_on} tensors, got tensors on {device_type}")
    return backend


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
        stacklevel=4,
    )
