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

import math
import mmap
import os
import threading
import weakref
from typing import Dict, List, Sequence

import numpy as np
import torch

HUGE_PAGE = 2 << 20
LARGE = 2 * HUGE_PAGE  # below this the rounding to whole huge pages is not worth it: torch.empty
_ADVICE = getattr(mmap, "MADV_HUGEPAGE", None)
_ENABLED = os.environ.get("FASTMIX_HUGE_PAGES", "1") not in ("0", "")  # 0: plain pages, to compare
KEPT_PER_SIZE = 2  # a batch in use and the next one being made
KEPT_BYTES = 1 << 30

_kept: Dict[int, List[mmap.mmap]] = {}  # mapping length -> released mappings, pages faulted in
_kept_lock = threading.Lock()  # released by whichever thread drops the last view (a pin-memory thread too)


def _new_mapping(length: int) -> mmap.mmap:
    mapping = mmap.mmap(-1, length, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if _ENABLED and _ADVICE is not None:
        offset = (-np.frombuffer(mapping, dtype=np.uint8).ctypes.data) % HUGE_PAGE
        try:
            mapping.madvise(_ADVICE, offset, (length - offset) // HUGE_PAGE * HUGE_PAGE)
        except OSError:  # a kernel built without transparent huge pages: plain pages then
            pass
    return mapping


def _take_mapping(length: int) -> mmap.mmap:
    with _kept_lock:
        kept = _kept.get(length)
        if kept:
            return kept.pop()
    return _new_mapping(length)


def _give_back(mapping: mmap.mmap) -> None:
    """The finalizer of a mapping's last user: keep it for the next batch of its size, or let it go."""
    length = len(mapping)
    with _kept_lock:
        kept = _kept.setdefault(length, [])
        total = sum(len(m) for ms in _kept.values() for m in ms)
        if len(kept) < KEPT_PER_SIZE and total + length <= KEPT_BYTES:
            kept.append(mapping)  # (else dropped here: unmapped when its last reference goes)


def empty_on_huge_pages(shape: Sequence[int], dtype: torch.dtype,
                        memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """An uninitialised CPU tensor like ``torch.empty(shape, dtype=dtype, memory_format=...)``, in
    memory that may be backed by 2 MiB pages when it is large (``LARGE`` bytes or more): a released
    mapping of the same size when one is kept, else a new one."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    nbytes = math.prod(shape) * itemsize
    if nbytes < LARGE or not hasattr(mmap, "MAP_PRIVATE"):
        return torch.empty(tuple(shape), dtype=dtype, memory_format=memory_format)
    mapping = _take_mapping(-(-nbytes // HUGE_PAGE) * HUGE_PAGE + HUGE_PAGE)
    view = np.frombuffer(mapping, dtype=np.uint8)
    weakref.finalize(view, _give_back, mapping).atexit = False  # runs when the storage below lets go of view
    raw = torch.frombuffer(view, dtype=torch.uint8)  # holds the view until its last tensor is freed
    offset = (-raw.data_ptr()) % HUGE_PAGE
    strides = torch.empty(tuple(shape), dtype=dtype, device="meta", memory_format=memory_format).stride()
    return raw[offset: offset + nbytes].view(dtype).as_strided(tuple(shape), strides)
