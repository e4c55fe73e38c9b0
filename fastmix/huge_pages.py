"""Large outputs in memory the kernel can back with 2 MiB pages, reused once released.

A fresh batch's first touch costs more than fastmix's arithmetic: the kernel maps and zeroes every
new 4 KiB page on a fault (154 MB of float32: about 94 ms on the development machine, against 6 ms
for the same write into memory already mapped). With transparent huge pages one fault maps 2 MiB,
and the same fresh batch costs about 21 ms. torch's CPU allocator asks for them only under the
environment variable THP_MEM_ALLOC_ENABLE=1, read once when torch starts; so fastmix maps its own
large outputs (the collate's batch in the main process, the masks' copies): a private anonymous
mapping, aligned to 2 MiB, with ``madvise(MADV_HUGEPAGE)``. Where Linux offers no transparent huge
pages (``enabled`` is ``never``, another OS, no ``mmap.MADV_HUGEPAGE``) the mapping is plain 4 KiB
pages, as torch.empty's are.

And a batch a training loop has dropped leaves its mapping, pages faulted in already, for the next
batch of the same size: a finalizer on the buffer that the tensor's storage holds (the last view,
numpy array or copy sharing it gone) hands the mapping back, and the next allocation of that size
takes it, with no page to fault in at all. At most ``KEPT_PER_SIZE`` mappings of a size and
``KEPT_BYTES`` in all wait there; the rest are unmapped. Memory still held is never handed out.

A DataLoader worker's batch goes to shared memory instead (collate.py, shared_pool.py).
"""
from __future__ import annotations

import collections
import math
import mmap
import os
import threading
import weakref
from typing import Deque, Dict, List, Sequence

import numpy as np
import torch

HUGE_PAGE = 2 << 20
LARGE = 2 * HUGE_PAGE  # below this the rounding to whole huge pages is not worth it: torch.empty
_ADVICE = getattr(mmap, "MADV_HUGEPAGE", None)
_ENABLED = os.environ.get("FASTMIX_HUGE_PAGES", "1") not in ("0", "")  # 0: plain pages, to compare
KEPT_PER_SIZE = 2  # a batch in use and the next one being made
KEPT_BYTES = 1 << 30

_kept: Dict[int, List[mmap.mmap]] = {}  # mapping length -> released mappings, pages faulted in
_kept_bytes = 0
_kept_lock = threading.Lock()
# Mappings whose last user died, not yet sorted into _kept. A finalizer only appends here (atomic,
# no lock): the garbage collector can run one anywhere, inside a section that holds _kept_lock on
# the same thread too, where waiting for the lock would never end.
_released: Deque[mmap.mmap] = collections.deque()


def _reset_after_fork() -> None:
    """A forked child's lock starts free: another thread of the parent may have held it at the fork."""
    global _kept_lock
    _kept_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _new_mapping(length: int) -> mmap.mmap:
    mapping = mmap.mmap(-1, length, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if _ENABLED and _ADVICE is not None:
        offset = (-np.frombuffer(mapping, dtype=np.uint8).ctypes.data) % HUGE_PAGE
        try:
            mapping.madvise(_ADVICE, offset, (length - offset) // HUGE_PAGE * HUGE_PAGE)
        except OSError:  # a kernel built without transparent huge pages: plain pages then
            pass
    return mapping


def _sort_released() -> None:
    """Under _kept_lock: each released mapping kept for the next batch of its size, or let go (unmapped
    when its last reference goes) beyond KEPT_PER_SIZE of a size or KEPT_BYTES in all."""
    global _kept_bytes
    while _released:
        mapping = _released.popleft()
        kept = _kept.setdefault(len(mapping), [])
        if len(kept) < KEPT_PER_SIZE and _kept_bytes + len(mapping) <= KEPT_BYTES:
            kept.append(mapping)
            _kept_bytes += len(mapping)


def _take_mapping(length: int) -> mmap.mmap:
    global _kept_bytes
    with _kept_lock:
        _sort_released()
        kept = _kept.get(length)
        if kept:
            _kept_bytes -= length
            return kept.pop()
    return _new_mapping(length)


def _give_back(mapping: mmap.mmap) -> None:
    """The finalizer of a mapping's last user: released, and sorted now unless the lock is taken
    (then by the next allocation)."""
    _released.append(mapping)
    if _kept_lock.acquire(blocking=False):
        try:
            _sort_released()
        finally:
            _kept_lock.release()


def empty_on_huge_pages(shape: Sequence[int], dtype: torch.dtype,
                        memory_format: torch.memory_format = torch.contiguous_format, reuse: bool = True) -> torch.Tensor:
    """An uninitialised CPU tensor like ``torch.empty(shape, dtype=dtype, memory_format=...)``, in
    memory that may be backed by 2 MiB pages when it is large (``LARGE`` bytes or more): a released
    mapping of the same size when one is kept (``reuse=False``: never; what a first batch costs),
    else a new one."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    nbytes = math.prod(shape) * itemsize
    if nbytes < LARGE or not hasattr(mmap, "MAP_PRIVATE"):
        return torch.empty(tuple(shape), dtype=dtype, memory_format=memory_format)
    length = -(-nbytes // HUGE_PAGE) * HUGE_PAGE + HUGE_PAGE
    mapping = _take_mapping(length) if reuse else _new_mapping(length)
    view = np.frombuffer(mapping, dtype=np.uint8)
    weakref.finalize(view, _give_back, mapping).atexit = False  # runs when the storage below lets go of view
    raw = torch.frombuffer(view, dtype=torch.uint8)  # holds the view until its last tensor is freed
    offset = (-raw.data_ptr()) % HUGE_PAGE
    strides = torch.empty(tuple(shape), dtype=dtype, device="meta", memory_format=memory_format).stride()
    return raw[offset: offset + nbytes].view(dtype).as_strided(tuple(shape), strides)
