"""What each process keeps for itself: its random stream and its resolved backends.

A ``Mixup`` or a transform is copied into DataLoader workers and DDP ranks; each copy makes its own
stream (seeded from seed, worker and rank: sampling/streams.py) and resolves its own backends, so
neither travels in a pickle and a forked copy does not repeat its parent's draws.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

import numpy as np
import torch

from .backends import Backend, resolve_backend
from .sampling.streams import make_generator


class ProcessLocal:
    """Mixin for a class with ``seed`` and ``backend`` attributes."""

    seed: Optional[int]
    backend: str
    _generator: Optional[np.random.Generator] = None
    _generator_pid: Optional[int] = None

    @property
    def generator(self) -> np.random.Generator:
        """This process's random stream (created on first use, anew after a fork)."""
        if self._generator is None or self._generator_pid != os.getpid():
            self._generator = make_generator(self.seed)
            self._generator_pid = os.getpid()
        return self._generator

    def backend_for(self, device: torch.device) -> Backend:
        """The backend that runs for tensors on ``device`` (resolved once per device type)."""
        found = self._backends_resolved().get(device.type)
        if found is None:
            found = self._backends_resolved()[device.type] = resolve_backend(self.backend, device)
        return found

    def _backends_resolved(self) -> Dict[str, Backend]:
        if "_backends" not in self.__dict__:
            self.__dict__["_backends"] = {}
        return self.__dict__["_backends"]

    def __getstate__(self) -> Dict[str, Any]:
        parent = getattr(super(), "__getstate__", None)  # nn.Module's for the transforms
        state = dict(parent()) if parent is not None else self.__dict__.copy()
        for name in ("_generator", "_generator_pid", "_backends"):  # each process makes its own
            state.pop(name, None)
        return state
