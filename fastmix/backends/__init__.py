"""The backends: one interface (registry.Backend), four implementations, resolved once.

    registry.py     Backend (the four ops and their signatures), availability, the choice for a device
    extension.py    loading fastmix._C (the cpp and cuda kernels) and the ops' fake kernels
    compiled.py     cpp / cuda: torch.ops.fastmix.* (csrc/cpu/*_cpu.cpp, csrc/cuda/*_cuda.cu)
    numba/          numba: the same kernels compiled by numba (numba/mix_numba.py ~ csrc/cpu/mix_cpu.cpp, ...)
    reference.py    torch: plain tensor arithmetic, the reference every kernel matches bit for bit
"""
from .extension import load_extension
from .registry import BACKEND_NAMES, Backend, available_backends, check_backend_name, resolve_backend

load_extension()  # registers torch.ops.fastmix.* (and their fakes) as `import fastmix` always has

__all__ = ["BACKEND_NAMES", "Backend", "available_backends", "check_backend_name", "resolve_backend"]
