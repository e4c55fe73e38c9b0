"""Per-process random streams: one numpy Generator (PCG64) seeded from (seed, DataLoader worker,
DDP rank). numpy rather than torch: a batch's draws are a few numpy calls of about a microsecond
each, where torch's per-op overhead made sampling cost up to 2 ms per batch.

Streams differ across DataLoader workers and distributed ranks; two runs with the same seed
(and, inside DataLoader workers, the same DataLoader seed) produce the same batches.
"""
from __future__ import annotations

import os

import numpy as np
import torch

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def combine_seeds(*parts: int) -> int:
    """A 63-bit seed that changes when any part changes."""
    h = 0
    for part in parts:
        h = _splitmix64(h ^ (int(part) & _MASK64))
    return h & ((1 << 63) - 1)


def distributed_rank() -> int:
    """This process's rank in torch.distributed (or $RANK before init), 0 when not distributed."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank()
    except (ImportError, RuntimeError):
        pass
    return int(os.environ.get("RANK", "0") or 0)


def stream_seed(seed: int | None) -> int:
    """The seed of this process's stream for a user seed (None: torch.initial_seed())."""
    base = torch.initial_seed() if seed is None else int(seed)
    worker = torch.utils.data.get_worker_info()
    # A worker's seed is DataLoader base_seed + worker id: new each epoch unless workers persist.
    worker_part = -1 if worker is None else worker.seed
    return combine_seeds(base, worker_part, distributed_rank())


def make_generator(seed: int | None) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(stream_seed(seed)))


def as_numpy_generator(generator: "np.random.Generator | torch.Generator") -> np.random.Generator:
    """The numpy Generator to draw from: itself, or for a torch.Generator (fastmix before 0.3) a
    numpy Generator seeded by one draw from it, so the torch stream still decides and advances."""
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, torch.Generator):
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        return np.random.Generator(np.random.PCG64(seed))
    raise TypeError(f"generator: expected a numpy.random.Generator or torch.Generator, got {type(generator).__name__}")
