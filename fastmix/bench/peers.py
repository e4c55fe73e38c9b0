"""timm as a peer in ``python -m fastmix bench``: its ``Mixup`` and ``FastCollateMixup``, when timm
is installed.

timm's package import pulls in torchvision, which fails wherever torchvision does not match the
installed torch (a CPU torch with the CUDA torchvision wheel, for one). Its mixing code,
``timm/data/mixup.py``, needs only numpy and torch, so when ``import timm.data`` fails that one
file is loaded on its own: the row is still timm's own code, and the table says how it was loaded.
"""
from __future__ import annotations

import importlib.util
import os
from types import ModuleType
from typing import Optional, Tuple

_cached: Optional[Tuple[Optional[ModuleType], str]] = None


def load_timm_mixup() -> Tuple[Optional[ModuleType], str]:
    """timm's mixup module (with ``Mixup``, ``FastCollateMixup``, ``mixup_target``) and how it was
    found; ``(None, why)`` when timm is not installed."""
    global _cached
    if _cached is None:
        _cached = _load()
    return _cached


def _load() -> Tuple[Optional[ModuleType], str]:
    try:
        spec = importlib.util.find_spec("timm")
    except (ImportError, ValueError) as exc:
        return None, f"timm could not be located ({exc})"
    if spec is None or not spec.submodule_search_locations:
        return None, "timm is not installed"
    try:
        from timm.data import mixup as timm_mixup

        return timm_mixup, f"timm {_version()}"
    except Exception as exc:  # noqa: BLE001 - any failure of timm's package import (torchvision, hub, ...)
        package_error = f"{type(exc).__name__}: {exc}".splitlines()[0][:120]
    for location in spec.submodule_search_locations:
        path = os.path.join(location, "data", "mixup.py")
        if os.path.isfile(path):
            break
    else:
        return None, f"timm is installed but its package import failed ({package_error}) and timm/data/mixup.py was not found"
    module_spec = importlib.util.spec_from_file_location("fastmix_peer_timm_mixup", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001
        return None, f"timm/data/mixup.py failed to load on its own ({type(exc).__name__}: {exc})"
    return module, f"timm {_version()}, timm/data/mixup.py loaded alone (import timm.data failed: {package_error})"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("timm")
    except PackageNotFoundError:
        return "(unknown version)"
