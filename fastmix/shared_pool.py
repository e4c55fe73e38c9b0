"""Batches of DataLoader workers in shared memory reused from batch to batch, never while held.

A worker's batch must reach the main process in shared memory. torch gives every batch a fresh
shared file (``UntypedStorage._new_shared``): the worker's first write faults in and zeroes every
4 KiB page of it, the main process faults its pages in again when it first reads them, and the
pages are freed when the last mapping goes (``python -m fastmix bench --pipeline`` measures each
part). torch cannot reuse such a file: the main process rebuilds the batch over it with torch's own
allocator, and nothing tells the worker when that batch, its views and its copies are gone.

Here the worker writes its batch into a slot of a segment it keeps (a ``memfd``, so nothing is left
in /dev/shm by a crash), as a :class:`PooledBatch`, a tensor type that multiprocessing's pickler
(the one the DataLoader's queues use) sends by reference to its slot: an fd and an offset. The main
process maps the segment once, rebuilds the batch with ``torch.frombuffer`` over a numpy view of
the slot, and a finalizer on that view runs exactly when the storage of the batch dies in the main
process (the last view, numpy array or ``share_memory_`` copy of it gone: torch's deleter of a
``frombuffer`` storage holds the view). The finalizer counts one release in the segment's header;
the worker counts one send each time a slot's batch is pickled. A slot is written again only when
its worker-side batch is dead and every batch sent from it was released: a batch the user still
holds (in a list, in a slow step, in the pin-memory thread) is never overwritten. When no slot is
free a batch takes torch's path (a fresh shared file), so a user who holds many batches costs
memory, as before, and never waits.

The batch arrives in the main process as a plain ``torch.Tensor`` whose ``is_shared()`` is False:
sending it on to another process copies it into fresh shared memory first (torch's pickler does
that for any unshared tensor), after which the slot is released. Mappings are not inherited by a
``fork`` (``MADV_DONTFORK``): a forked child cannot read a slot that its parent's release lets the
worker overwrite (a read faults on a placeholder that holds the range, so that nothing of the child's
is mapped where a dying inherited mmap object would unmap). Linux only (``os.memfd_create``); elsewhere, or with ``FASTMIX_WORKER_POOL=0``,
``batch_tensor`` returns None and the caller allocates as torch does.
"""
from __future__ import annotations

import ctypes
import math
import mmap
import os
import threading
import weakref
from multiprocessing.reduction import DupFd, ForkingPickler
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.multiprocessing.reductions import reduce_tensor

SLOTS = 8  # per segment: the file is sparse, so a slot never used costs no memory
MIN_BYTES = 1 << 20  # smaller batches take torch's path: their page faults are not worth a slot
MAX_SEGMENTS = 4  # per worker, one per batch size that fits no earlier segment's slots
_ALIGN = 2 << 20  # slots start on 2 MiB boundaries (shmem huge pages, where the kernel offers them)
_MAGIC = b"fastmixP"
_COUNTER = 64  # released[k] is the int64 at _COUNTER * (k + 1) of the header (one cache line each)
_ENABLED = os.environ.get("FASTMIX_WORKER_POOL", "1") not in ("0", "")
_SUPPORTED = hasattr(os, "memfd_create") and hasattr(mmap, "MADV_DONTFORK")


class PooledBatch(torch.Tensor):
    """A worker's batch in a pool slot. Every op treats it, and returns, a plain ``torch.Tensor``;
    multiprocessing's pickler sends it by reference to its slot (``reduce_pooled``)."""

    __torch_function__ = torch._C._disabled_torch_function_impl


def _read_counter(fd: int, k: int) -> int:
    return int.from_bytes(os.pread(fd, 8, _COUNTER * (k + 1)), "little", signed=True)


def _write_counter(fd: int, k: int, value: int) -> None:
    os.pwrite(fd, value.to_bytes(8, "little", signed=True), _COUNTER * (k + 1))


# address -> (the mmap object, its length): the mappings made here, which a forked child lacks
_dontfork: Dict[int, Tuple["weakref.ReferenceType[mmap.mmap]", int]] = {}
_MAP_FIXED = 0x10  # Linux's value on every architecture it runs on (Python's mmap module lacks it)


def _map(fd: int, size: int) -> mmap.mmap:
    mapping = mmap.mmap(fd, size, flags=mmap.MAP_SHARED)
    mapping.madvise(mmap.MADV_DONTFORK)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        try:
            mapping.madvise(mmap.MADV_HUGEPAGE)  # honoured for shmem only where shmem_enabled allows it
        except OSError:
            pass
    address = np.frombuffer(mapping, dtype=np.uint8).ctypes.data

    def forget(ref: Any, address: int = address) -> None:
        if _dontfork.get(address, (None,))[0] is ref:
            del _dontfork[address]

    _dontfork[address] = (weakref.ref(mapping, forget), size)
    return mapping


def _hold_places_in_child() -> None:
    """After a fork, in the child: each mapping made with MADV_DONTFORK is absent there, but its mmap
    object is not, and when that object dies it unmaps its address range, which by then may hold the
    child's own memory. A PROT_NONE placeholder takes the range instead: a read of it still faults,
    nothing else is mapped there, and the object's unmap removes only the placeholder."""
    if not _dontfork:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    for address, (ref, size) in list(_dontfork.items()):
        if ref() is not None:
            libc.mmap(address, size, 0, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_FIXED, -1, 0)  # 0: PROT_NONE


if _SUPPORTED:
    os.register_at_fork(after_in_child=_hold_places_in_child)


def _slot_offset(k: int, slot_bytes: int) -> int:
    return _ALIGN + k * slot_bytes


# ---- the worker's side ---------------------------------------------------------------------------

class _WorkerSegment:
    """SLOTS slots of ``slot_bytes`` in one memfd; what was leased and sent from each slot."""

    def __init__(self, slot_bytes: int) -> None:
        self.slot_bytes = slot_bytes
        self.size = _slot_offset(SLOTS, slot_bytes)
        self.fd = os.memfd_create("fastmix-batches", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, self.size)
        os.pwrite(self.fd, _MAGIC + SLOTS.to_bytes(8, "little") + slot_bytes.to_bytes(8, "little"), 0)
        self.map = _map(self.fd, self.size)
        self.leased = [False] * SLOTS  # a worker-side tensor over the slot is alive
        self.sent = [0] * SLOTS  # batches pickled from the slot (the main process counts their releases)

    def free_slot(self) -> Optional[int]:
        for k in range(SLOTS):
            if not self.leased[k] and _read_counter(self.fd, k) == self.sent[k]:
                return k
        return None


class _WorkerPool:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.segments: List[_WorkerSegment] = []
        self.leases: Dict[int, Tuple[_WorkerSegment, int, int]] = {}  # data_ptr -> (segment, slot, nbytes)
        self.lock = threading.RLock()  # reentrant: a collection inside lease() may end another lease

    def lease(self, nbytes: int) -> Optional[torch.Tensor]:
        """uint8 (nbytes,) over a free slot, or None."""
        with self.lock:
            fits = [s for s in self.segments if s.slot_bytes >= nbytes]
            if not fits:
                if len(self.segments) >= MAX_SEGMENTS:
                    return None
                fits = [_WorkerSegment(-(-nbytes // _ALIGN) * _ALIGN)]
                self.segments.append(fits[0])
            for segment in fits:
                k = segment.free_slot()
                if k is not None:
                    break
            else:
                return None
            segment.leased[k] = True
            view = np.frombuffer(segment.map, dtype=np.uint8, count=nbytes, offset=_slot_offset(k, segment.slot_bytes))
            tensor = torch.frombuffer(view, dtype=torch.uint8)  # holds the view: the lease lasts as long as its storage
            pointer = tensor.data_ptr()
            self.leases[pointer] = (segment, k, nbytes)
            weakref.finalize(view, self._end_lease, pointer, segment, k).atexit = False
            return tensor

    def _end_lease(self, pointer: int, segment: _WorkerSegment, k: int) -> None:
        with self.lock:
            segment.leased[k] = False
            if self.leases.get(pointer, (None, -1))[:2] == (segment, k):
                del self.leases[pointer]


_pool: Optional[_WorkerPool] = None


def _worker_pool() -> _WorkerPool:
    global _pool
    if _pool is None or _pool.pid != os.getpid():  # a forked process starts its own (its parent's is not mapped)
        _pool = _WorkerPool()
    return _pool


def batch_tensor(shape: Sequence[int], dtype: torch.dtype,
                 memory_format: torch.memory_format = torch.contiguous_format) -> Optional[PooledBatch]:
    """An uninitialised :class:`PooledBatch` like ``torch.empty(shape, dtype=dtype, memory_format=...)``
    in a free slot of this process's pool, or None (small batch, no free slot, not Linux,
    ``FASTMIX_WORKER_POOL=0``): then allocate as torch does. For DataLoader workers: the batch must
    be sent to another process to be released."""
    nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
    if not (_ENABLED and _SUPPORTED) or nbytes < MIN_BYTES:
        return None
    raw = _worker_pool().lease(nbytes)
    if raw is None:
        return None
    strides = torch.empty(tuple(shape), dtype=dtype, device="meta", memory_format=memory_format).stride()
    return raw.view(dtype).as_strided(tuple(shape), strides).as_subclass(PooledBatch)


def reduce_pooled(tensor: PooledBatch):
    """multiprocessing's reduction of a PooledBatch: by reference to its slot when its storage is
    still the slot it was leased on, else torch's (a copy into fresh shared memory)."""
    storage = tensor.untyped_storage()
    pool = _pool if _pool is not None and _pool.pid == os.getpid() else None
    found = None if pool is None else pool.leases.get(storage.data_ptr())
    if found is None or found[2] != storage.nbytes() or tensor.requires_grad:
        return reduce_tensor(tensor.as_subclass(torch.Tensor))
    segment, k, nbytes = found
    with pool.lock:
        segment.sent[k] += 1
    layout = (tensor.dtype, tuple(tensor.shape), tuple(tensor.stride()), tensor.storage_offset())
    return rebuild_pooled, (DupFd(segment.fd), k, nbytes, layout)


ForkingPickler.register(PooledBatch, reduce_pooled)


# ---- the receiving side --------------------------------------------------------------------------

class _ReceivedSegment:
    """A worker's segment mapped here, while any batch rebuilt over it is alive."""

    def __init__(self, fd: int) -> None:
        header = os.pread(fd, 24, 0)
        if header[:8] != _MAGIC:
            raise RuntimeError("fastmix.shared_pool: a pooled batch arrived with an fd that is not a pool segment")
        self.fd = fd
        self.pid = os.getpid()
        self.slot_bytes = int.from_bytes(header[16:24], "little")
        self.map = _map(fd, _slot_offset(int.from_bytes(header[8:16], "little"), self.slot_bytes))
        self.lock = threading.RLock()
        weakref.finalize(self, os.close, fd).atexit = False  # the map is unmapped by its last view

    def release(self, k: int) -> None:
        if os.getpid() != self.pid:  # a forked copy of a batch never mapped in the child
            return
        with self.lock:  # the main thread and the pin-memory thread release
            _write_counter(self.fd, k, _read_counter(self.fd, k) + 1)


_received: Dict[Tuple[int, int], "weakref.ReferenceType[_ReceivedSegment]"] = {}
_received_lock = threading.RLock()


def _segment_for(fd: int) -> _ReceivedSegment:
    """The live mapping of the segment behind ``fd`` (closed here when one exists), else a new one."""
    stat = os.fstat(fd)
    key = (stat.st_dev, stat.st_ino)  # unique while a live _ReceivedSegment holds an fd to it
    with _received_lock:
        ref = _received.get(key)
        segment = None if ref is None else ref()
        if segment is not None and segment.pid == os.getpid():
            os.close(fd)
            return segment
        for dead in [k for k, r in _received.items() if r() is None]:
            del _received[dead]
        segment = _ReceivedSegment(fd)
        _received[key] = weakref.ref(segment)
        return segment


def rebuild_pooled(dup: Any, k: int, nbytes: int, layout: Tuple[torch.dtype, Tuple[int, ...], Tuple[int, ...], int]):
    """The main process's batch over slot ``k``: a plain tensor whose storage's death releases the slot."""
    dtype, shape, strides, offset = layout
    segment = _segment_for(dup.detach())
    view = np.frombuffer(segment.map, dtype=np.uint8, count=nbytes, offset=_slot_offset(k, segment.slot_bytes))
    weakref.finalize(view, segment.release, k).atexit = False
    return torch.frombuffer(view, dtype=torch.uint8).view(dtype).as_strided(shape, strides, offset)


def available() -> bool:
    """Whether ``batch_tensor`` can give slots here (Linux's memfd, and not ``FASTMIX_WORKER_POOL=0``)."""
    return _ENABLED and _SUPPORTED
