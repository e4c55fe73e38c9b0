"""fastmix.shared_pool: a worker's batch in a reused slot, sent by reference, and never overwritten
while any process that received it holds the batch, a view of it or a numpy array over it."""
import faulthandler
import os
import pickle
import signal

import numpy as np
import pytest
import torch
from multiprocessing.reduction import ForkingPickler
from torch.utils.data import DataLoader, Dataset

from fastmix import shared_pool

pytestmark = pytest.mark.skipif(not shared_pool.available(), reason="no memfd here, or FASTMIX_WORKER_POOL=0")

SHAPE = (4, 3, 256, 256)  # float32: 3 MiB, over shared_pool.MIN_BYTES


@pytest.fixture(autouse=True)
def fresh_pool(monkeypatch):
    monkeypatch.setattr(shared_pool, "_pool", None)


def send(tensor):
    """What a DataLoader worker's queue does with a batch: multiprocessing's pickler, then loads."""
    return pickle.loads(ForkingPickler.dumps(tensor))


def slot_of(batch):
    segment, k, _ = shared_pool._pool.leases[batch.untyped_storage().data_ptr()]
    return segment, k


def test_a_pooled_batch_arrives_as_a_plain_tensor_with_its_values_and_layout():
    batch = shared_pool.batch_tensor(SHAPE, torch.float32, torch.channels_last)
    assert type(batch) is shared_pool.PooledBatch and batch.is_contiguous(memory_format=torch.channels_last)
    batch.copy_(torch.arange(batch.numel(), dtype=torch.float32).view(SHAPE))
    view = batch[1:3, :, 5:9]
    assert type(view) is torch.Tensor and type(batch + 1) is torch.Tensor  # ops give plain tensors
    received = send(batch)
    assert type(received) is torch.Tensor and not received.is_shared()
    assert received.stride() == batch.stride() and torch.equal(received, batch)


def test_a_slot_is_written_again_only_after_every_received_copy_and_the_workers_lease_are_gone():
    batch = shared_pool.batch_tensor(SHAPE, torch.float32)
    segment, k = slot_of(batch)
    received = [send(batch), send(batch)]  # sent twice: two releases are needed
    kept_view = received[0][2:]
    as_numpy = received[1].numpy()
    del batch
    assert not _is(segment, k)
    received.clear()
    assert not _is(segment, k), "a view and a numpy array still hold the two copies"
    del kept_view
    assert not _is(segment, k), "the numpy array still holds the second copy"
    del as_numpy
    assert _is(segment, k)


def _is(segment, k):
    """Whether slot k of a worker segment may be written again."""
    return not segment.leased[k] and shared_pool._read_counter(segment.fd, k) == segment.sent[k]


def test_a_lease_still_held_by_the_worker_is_not_free_even_when_every_copy_is_released():
    batch = shared_pool.batch_tensor(SHAPE, torch.float32)
    segment, k = slot_of(batch)
    received = send(batch)
    del received
    assert not _is(segment, k)
    del batch
    assert _is(segment, k)


@pytest.mark.parametrize("how", ["share_memory_", "sent on"])
def test_sharing_a_received_batch_again_copies_it_first_then_releases_the_slot(how):
    batch = shared_pool.batch_tensor(SHAPE, torch.float32).fill_(3.0)
    segment, k = slot_of(batch)
    received = send(batch)
    del batch
    assert not _is(segment, k)
    if how == "share_memory_":
        received.share_memory_()  # torch moves an unshared storage into fresh shared memory: a copy
    else:
        again = send(received)  # torch's pickler does the same for any unshared tensor
        assert again.is_shared() and bool((again == 3.0).all())
    assert _is(segment, k) and received.is_shared() and bool((received == 3.0).all())


def test_a_plain_view_is_sent_by_torch_as_a_copy_and_the_slot_comes_back():
    batch = shared_pool.batch_tensor(SHAPE, torch.float32).fill_(2.0)
    segment, k = slot_of(batch)
    plain = batch[1:]  # a torch.Tensor: torch's reduction moves the storage into fresh shared memory
    received = send(plain)
    assert received.is_shared() and bool((received == 2.0).all())
    assert bool((batch == 2.0).all()), "the worker's own batch now lives in the copy too"
    assert segment.sent[k] == 0
    del plain, batch
    assert _is(segment, k)


def test_when_every_slot_is_held_a_batch_is_refused_and_allocated_as_torch_does():
    held = [shared_pool.batch_tensor(SHAPE, torch.float32) for _ in range(shared_pool.SLOTS)]
    assert all(b is not None for b in held)
    assert shared_pool.batch_tensor(SHAPE, torch.float32) is None
    held.pop()
    assert shared_pool.batch_tensor(SHAPE, torch.float32) is not None


def test_small_batches_and_the_switch_take_torchs_path(monkeypatch):
    assert shared_pool.batch_tensor((2, 3, 8, 8), torch.uint8) is None  # under MIN_BYTES
    monkeypatch.setattr(shared_pool, "_ENABLED", False)
    assert shared_pool.batch_tensor(SHAPE, torch.float32) is None and not shared_pool.available()


def test_a_forked_child_releases_nothing_and_does_not_map_the_slot():
    batch = shared_pool.batch_tensor(SHAPE, torch.float32).fill_(1.0)
    segment, k = slot_of(batch)
    received = send(batch)
    del batch
    before = shared_pool._read_counter(segment.fd, k)
    pid = os.fork()
    if pid == 0:  # the child drops its copy of the received batch: no release may be counted
        try:
            del received
        finally:
            os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    assert shared_pool._read_counter(segment.fd, k) == before and not _is(segment, k)
    pid = os.fork()
    if pid == 0:  # MADV_DONTFORK: the child cannot read what its parent's release lets be overwritten
        faulthandler.disable()  # the fault is expected: no traceback
        float(received[0, 0, 0, 0])
        os._exit(0)
    status = os.waitpid(pid, 0)[1]
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) in (signal.SIGSEGV, signal.SIGBUS)
    del received
    assert _is(segment, k)


def test_in_a_forked_child_a_placeholder_holds_the_range_of_every_mapping_the_child_lacks():
    """The child inherits the mmap objects but not their mappings: when such an object dies there it
    unmaps its range, which must then hold nothing of the child's own, so a PROT_NONE placeholder
    takes it at the fork (a read still faults)."""
    batch = shared_pool.batch_tensor(SHAPE, torch.float32).fill_(1.0)
    received = send(batch)
    starts = [np.frombuffer(r().map, dtype=np.uint8).ctypes.data for r in shared_pool._received.values() if r()]
    received_at = max(a for a in starts if a <= received.data_ptr())  # the main process's mapping of the slot
    segment = slot_of(batch)[0]
    mappings = [(np.frombuffer(segment.map, dtype=np.uint8).ctypes.data, len(segment.map)), (received_at, 1)]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            with open("/proc/self/maps") as maps:  # (adjacent placeholders are one line: ranges, not starts)
                ranges = [(*(int(v, 16) for v in line.split()[0].split("-")), line.split()[1]) for line in maps]

            def held(address, length):
                return any(lo <= address and address + length <= hi and perms == "---p" for lo, hi, perms in ranges)

            os.write(write, b"".join(b"1" if held(a, n) else b"0" for a, n in mappings))
            del received  # its mmap object may die here: it unmaps only the placeholder
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 16) == b"11" and os.waitpid(pid, 0)[1] == 0
    os.close(read)
    assert bool((received == 1.0).all()), "the parent's mapping is untouched"
    del received, batch


class Numbered(Dataset):
    def __len__(self):
        return 48

    def __getitem__(self, index):
        return index


def pooled_collate(indices):
    """Batch i is filled with i: a batch overwritten later shows another number."""
    batch = shared_pool.batch_tensor(SHAPE, torch.float32)
    pooled = batch is not None
    if batch is None:
        batch = torch.empty(SHAPE).share_memory_()
    batch.fill_(float(indices[0]))
    return batch, torch.tensor([indices[0], int(pooled)])


@pytest.mark.slow
@pytest.mark.parametrize("num_workers", [1, 2])
def test_in_a_dataloader_batches_held_by_the_loop_are_never_overwritten_and_the_rest_reuse_slots(num_workers):
    loader = DataLoader(Numbered(), batch_size=1, num_workers=num_workers, collate_fn=pooled_collate,
                        persistent_workers=True, prefetch_factor=2)
    for _epoch in range(2):
        held, pooled = [], 0  # batches, views of batches and numpy arrays over batches, kept to the end
        for n, (batch, info) in enumerate(loader):
            assert type(batch) is torch.Tensor
            pooled += int(info[1])
            i = int(info[0])
            if n % 12 == 0:
                held.append((i, batch))
            elif n % 12 == 5:
                held.append((i, batch[2:, 1]))
            elif n % 12 == 9:
                held.append((i, batch.numpy()))
            for number, kept in held:  # a slot written again holds another number everywhere
                assert (kept.reshape(-1)[::4099] == number).all(), f"batch {number} was overwritten"
        for number, kept in held:
            assert (kept == number).all(), f"batch {number} was overwritten"
        assert pooled > shared_pool.SLOTS * num_workers, "slots were reused"
        del held, batch
