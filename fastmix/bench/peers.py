"""timm and mmpretrain as peers in ``python -m fastmix bench`` and the parity tests: timm's ``Mixup``
and ``FastCollateMixup``, mmpretrain's ``ResizeMix``, when installed.

timm's package import pulls in torchvision, which fails wherever torchvision does not match the
installed torch (a CPU torch with the CUDA torchvision wheel, for one). Its mixing code,
``timm/data/mixup.py``, needs only numpy and torch, so when ``import timm.data`` fails that one
file is loaded on its own: the row is still timm's own code, and the table says how it was loaded.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType
from typing import Any, Optional, Tuple

_cached: Optional[Tuple[Optional[ModuleType], str]] = None
_cached_mmpretrain: Optional[Tuple[Optional[ModuleType], str]] = None


def load_timm_mixup() -> Tuple[Optional[ModuleType], str]:
    """timm's mixup module (with ``Mixup``, ``FastCollateMixup``, ``mixup_target``) and how it was
    found; ``(None, why)`` when timm is not installed."""
    global _cached
    if _cached is None:
        _cached = _load()
    return _cached


def _package_folders(package: str) -> Tuple[Optional[list], str]:
    """The folders of an installed package, found without running its __init__; ``(None, why)``
    when it is not installed or cannot be located."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError) as exc:
        return None, f"{package} could not be located ({exc})"
    if spec is None or not spec.submodule_search_locations:
        return None, f"{package} is not installed"
    return list(spec.submodule_search_locations), ""


def _load() -> Tuple[Optional[ModuleType], str]:
    folders, why = _package_folders("timm")
    if folders is None:
        return None, why
    try:
        from timm.data import mixup as timm_mixup

        return timm_mixup, f"timm {_version()}"
    except Exception as exc:  # noqa: BLE001 - any failure of timm's package import (torchvision, hub, ...)
        package_error = f"{type(exc).__name__}: {exc}".splitlines()[0][:120]
    for location in folders:
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


def _version(package: str = "timm") -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "(unknown version)"


class _Registry:
    """What mmpretrain's batch augments need of ``mmpretrain.registry.BATCH_AUGMENTS``: a decorator."""

    @staticmethod
    def register_module(*args: Any, **kwargs: Any) -> Any:
        return lambda cls: cls


def load_mmpretrain_batch_augments() -> Tuple[Optional[ModuleType], str]:
    """mmpretrain's ``models/utils/batch_augments/resizemix.py`` (with ``ResizeMix``, which subclasses
    its ``CutMix`` and ``Mixup``), loaded alone, and how; ``(None, why)`` when mmpretrain is not
    installed.

    mmpretrain's package import needs mmengine and mmcv (large, and compiled against one torch);
    the three files need only numpy and torch and the registry's decorator, which is given them
    (``_Registry``) while they load. The code that draws and mixes is mmpretrain's own, unchanged.
    """
    global _cached_mmpretrain
    if _cached_mmpretrain is None:
        _cached_mmpretrain = _load_mmpretrain()
    return _cached_mmpretrain


def _load_mmpretrain() -> Tuple[Optional[ModuleType], str]:
    folders, why = _package_folders("mmpretrain")
    if folders is None:
        return None, why + " (pip install --no-deps mmpretrain==1.2.0)"
    folder = os.path.join(folders[0], "models", "utils", "batch_augments")
    package = "fastmix_peer_mmpretrain_batch_augments"
    registry = ModuleType("mmpretrain.registry")
    registry.BATCH_AUGMENTS = _Registry()  # type: ignore[attr-defined]
    saved = sys.modules.get("mmpretrain.registry")
    sys.modules["mmpretrain.registry"] = registry  # (a dotted name found here is not imported from its parent)
    try:
        parent = ModuleType(package)
        parent.__path__ = [folder]  # type: ignore[attr-defined]
        sys.modules[package] = parent
        for name in ("mixup", "cutmix", "resizemix"):  # each imports the one before it (relative imports)
            path = os.path.join(folder, f"{name}.py")
            module_spec = importlib.util.spec_from_file_location(f"{package}.{name}", path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_spec.name] = module
            module_spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - a missing file, or a newer mmpretrain that needs more
        return None, f"mmpretrain's batch_augments failed to load on their own ({type(exc).__name__}: {exc})"
    finally:
        if saved is None:
            sys.modules.pop("mmpretrain.registry", None)
        else:
            sys.modules["mmpretrain.registry"] = saved
    return module, f"mmpretrain {_version('mmpretrain')}, batch_augments/resizemix.py loaded alone"
