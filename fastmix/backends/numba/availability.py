"""Whether the numba backend can run here, checked once per process without compiling anything."""
from __future__ import annotations

from typing import Optional

MIN_NUMBA = (0, 59)
_UNKNOWN = object()
_reason: object = _UNKNOWN


def unavailable_reason() -> Optional[str]:
    """None when the numba backend can run here, else why not (checked once per process)."""
    global _reason
    if _reason is _UNKNOWN:
        _reason = _check()
    return _reason  # type: ignore[return-value]


def _check() -> Optional[str]:
    try:
        import numba
    except ModuleNotFoundError as exc:
        if exc.name == "numba":
            return "numba is not installed: pip install numba"
        return f"numba could not be imported ({exc}); reinstall it: pip install -U numba"
    except Exception as exc:  # e.g. a numpy too new for this numba
        return f"numba could not be imported ({type(exc).__name__}: {exc}); reinstall it: pip install -U numba"
    try:
        version = tuple(int(p) for p in numba.__version__.split(".")[:2])
    except ValueError:
        version = MIN_NUMBA
    if version < MIN_NUMBA:
        return f"numba {numba.__version__} is too old (fastmix needs >= 0.59): pip install -U 'numba>=0.59'"
    try:
        from . import mix_into_numba, mix_numba, mix_targets_numba  # noqa: F401  (defines the kernels; compiles nothing)
    except Exception as exc:
        return f"the numba kernels could not be loaded ({type(exc).__name__}: {exc})"
    return None


def require() -> None:
    reason = unavailable_reason()
    if reason is not None:
        raise ValueError(f"backend: expected a backend available here, got 'numba', which is not: {reason}")
