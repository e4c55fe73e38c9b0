"""Large outputs in memory the kernel can back with 2 MiB pages.

A fresh batch's first touch costs more than fastmix's arithmetic: the kernel maps and zeroes every
new 4 KiB page on a fault (154 MB of float32: about 94 ms on the development machine, against 6 ms
for the same write into memory already mapped). With transparent huge pages one fault maps 2 MiB,
and the same fresh batch costs about 21 ms. torch's CPU allocator asks for them only under the
environment variable THP_MEM_ALLOC_ENABLE=1, read once when torch starts; so fastmix maps its own
large outputs (the collate's batch in the main process, the masks' copies): a private anonymous
mapping, aligned to 2 MiB, with ``madvise(MADV_HUGEPAGE)``. Where Linux offers no transparent huge
pages (``enabled`` is ``never``, another OS, no ``mmap.MADV_HUGEPAGE``) the mapping is plain 4 KiB
pages, as torch.empty's are, and costs what torch.empty costs. The mapping is unmapped when the
last tensor viewing it is freed.

A DataLoader worker's batch goes to shared memory instead (collate.py): shmem huge pages are
usually off (``/sys/kernel/mm/transparent_hugepage/shmem_enabled``), so that path is unchanged.
"""
from __future__ import annotations

import math
import mmap
import os
from typing import Sequence

import torch

HUGE_PAGE = 2 << 20
LARGE = 2 * HUGE_PAGE  # below this the rounding to whole huge pages is not worth it: torch.empty
_ADVICE = getattr(mmap, "MADV_HUGEPAGE", None)
_ENABLED = os.environ.get("FASTMIX_HUGE_PAGES", "1") not in ("0", "")  # 0: plain pages, to compare


def empty_on_huge_pages(shape: Sequence[int], dtype: torch.dtype,
                        memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """An uninitialised CPU tensor like ``torch.empty(shape, dtype=dtype, memory_format=...)``, in
    memory that may be backed by 2 MiB pages when it is large (``LARGE`` bytes or more)."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    nbytes = math.prod(shape) * itemsize
    if nbytes < LARGE or not hasattr(mmap, "MAP_PRIVATE"):
        return torch.empty(tuple(shape), dtype=dtype, memory_format=memory_format)
    mapping = mmap.mmap(-1, nbytes + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    raw = torch.frombuffer(mapping, dtype=torch.uint8)  # holds the mapping until the last view is freed
    offset = (-raw.data_ptr()) % HUGE_PAGE
    if _ENABLED and _ADVICE is not None:
        try:
            mapping.madvise(_ADVICE, offset, (len(mapping) - offset) // HUGE_PAGE * HUGE_PAGE)
        except OSError:  # a kernel built without transparent huge pages: plain pages then
            pass
    strides = torch.empty(tuple(shape), dtype=dtype, device="meta", memory_format=memory_format).stride()
    return raw[offset: offset + nbytes].view(dtype).as_strided(tuple(shape), strides)
