"""Running a serial numba kernel over parts of its work on several threads.

The kernels are compiled with ``nogil=True``, so plain Python threads run them in parallel. That
replaces ``parallel=True`` / prange builds: one serial build per signature serves every thread
count (a prange build compiled the kernel a second time, the larger part of the first call's
latency), and no numba thread pool is started (nothing to break in a forked DataLoader worker).
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

import torch

_lock = threading.Lock()
_pool: Optional[ThreadPoolExecutor] = None
_pool_pid = -1
_pool_size = 0


def threads() -> int:
    """Threads for the next kernel: torch.get_num_threads() (one runs on the calling thread only)."""
    return max(1, torch.get_num_threads())


def _executor(workers: int) -> ThreadPoolExecutor:
    """A pool of at least ``workers`` threads, made anew after a fork (threads do not survive one)."""
    global _pool, _pool_pid, _pool_size
    with _lock:
        if _pool is None or _pool_pid != os.getpid() or _pool_size < workers:
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fastmix-numba")
            _pool_pid, _pool_size = os.getpid(), workers
        return _pool


def run_split(kernel: Callable[[int, int], None], total: int, threads: int) -> None:
    """Calls ``kernel(lo, hi)`` over consecutive parts of ``range(total)``: one part on the calling
    thread when ``threads`` is 1 (or there is one item), else ``threads`` parts, the first on the
    calling thread and the others on a pool. Errors of any part are raised here."""
    parts = max(1, min(threads, total))
    if parts == 1:
        kernel(0, total)
        return
    bounds = [total * p // parts for p in range(parts + 1)]
    futures = [_executor(parts - 1).submit(kernel, bounds[p], bounds[p + 1]) for p in range(1, parts)]
    kernel(bounds[0], bounds[1])
    for future in futures:
        future.result()
