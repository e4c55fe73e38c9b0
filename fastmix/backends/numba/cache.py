"""numba's on-disk cache for these kernels, keyed on all the backend's sources.

numba keys a cached kernel on its own source file only: a kernel in mix_numba.py would still be
loaded after an edit of dtypes.py, which it calls. This locator keeps numba's choice of directory
(in-tree ``__pycache__``, $NUMBA_CACHE_DIR or the user-wide cache) and replaces the stamp with a
hash of every ``.py`` file of this package, so that any edit recompiles every kernel. It must be
installed before the kernels are defined: every kernel module imports this one first. Should a
numba release move these internals, caching falls back to numba's own keying.
"""
from __future__ import annotations

import hashlib
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def _sources_hash() -> str:
    digest = hashlib.sha256()
    for name in sorted(os.listdir(HERE)):
        if name.endswith(".py"):
            digest.update(name.encode())
            with open(os.path.join(HERE, name), "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


SOURCES_HASH = _sources_hash()


def _install() -> bool:
    try:
        from numba.core import caching

        impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")
        base = getattr(caching, "_CacheLocator")
        defaults = list(impl._locator_classes)
    except Exception:  # pragma: no cover - a numba without these internals
        return False

    class SourcesHashLocator(base):
        """numba's own locator for the file, with the stamp of the whole package."""

        def __init__(self, inner, py_file):
            self._inner = inner
            self._py_file = py_file

        def ensure_cache_path(self):
            self._inner.ensure_cache_path()

        def get_cache_path(self):
            return self._inner.get_cache_path()

        def get_source_stamp(self):
            return "fastmix.backends.numba " + SOURCES_HASH

        def get_disambiguator(self):
            return self._inner.get_disambiguator()

        @classmethod
        def from_function(cls, py_func, py_file):
            if os.path.dirname(os.path.abspath(py_file)) != HERE:
                return None
            for locator_class in defaults:
                inner = locator_class.from_function(py_func, py_file)
                if inner is not None:
                    return cls(inner, py_file)
            return None

    if not any(getattr(c, "__name__", "") == "SourcesHashLocator" for c in impl._locator_classes):
        impl._locator_classes.insert(0, SourcesHashLocator)
    return True


INSTALLED = _install()
