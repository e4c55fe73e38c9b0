"""Large outputs kept in the process lie in memory that 2 MiB pages may back: a 2 MiB-aligned
private mapping advised for huge pages (VmFlags "hg" in /proc/self/smaps), shaped and strided as
torch.empty would make it, unmapped with its last view; small ones are plain torch.empty."""
import gc
import sys

import pytest
import torch

import fastmix
from fastmix.huge_pages import HUGE_PAGE, LARGE, empty_on_huge_pages

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/smaps is Linux's")


def mapping_of(address):
    """(start, end, VmFlags) of the mapping that holds ``address``, from /proc/self/smaps."""
    found = None
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()[0]
            if "-" in head and all(c in "0123456789abcdef-" for c in head):
                start, end = (int(v, 16) for v in head.split("-"))
                found = (start, end) if start <= address < end else None
            elif found and line.startswith("VmFlags:"):
                return found + (line.split()[1:],)
    return None


@linux_only
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.bfloat16])
def test_a_large_output_is_a_2mib_aligned_mapping_advised_for_huge_pages(dtype, memory_format):
    shape = (128, 3, 128, 128)  # 6 MiB in uint8: large
    out = empty_on_huge_pages(shape, dtype, memory_format)
    like = torch.empty(shape, dtype=dtype, memory_format=memory_format)
    assert out.shape == like.shape and out.stride() == like.stride() and out.dtype == dtype
    assert out.data_ptr() % HUGE_PAGE == 0
    start, end, flags = mapping_of(out.data_ptr())
    assert "hg" in flags, "madvise(MADV_HUGEPAGE)"
    out.fill_(3)
    assert int(out.sum()) == 3 * out.numel()


@linux_only
def test_the_mapping_is_released_with_its_last_view_beyond_what_is_kept():
    from fastmix import huge_pages

    shape = (48, 3, 128, 128)  # a size no other test uses: nothing of it is kept yet
    batches = [empty_on_huge_pages(shape, torch.float32) for _ in range(huge_pages.KEPT_PER_SIZE + 2)]
    addresses = [b.data_ptr() for b in batches]
    views = [b[1] for b in batches]
    del batches
    gc.collect()
    assert all(mapping_of(a) is not None for a in addresses), "views keep them"
    del views
    gc.collect()
    still = [a for a in addresses if (found := mapping_of(a)) is not None and "hg" in found[2]]
    assert len(still) == huge_pages.KEPT_PER_SIZE, "kept for the next batches; the others unmapped"


def test_a_small_output_is_plain_torch_empty():
    out = empty_on_huge_pages((2, 3, 4, 4), torch.float32)
    assert out.numel() * 4 < LARGE and out.is_contiguous() and out.data_ptr() % 64 == 0


@linux_only
def test_the_collates_batch_in_the_main_process_is_on_huge_pages():
    import numpy as np

    samples = [(np.full((128, 128, 3), i, np.uint8), i) for i in range(128)]
    images, _ = fastmix.MixupCollate(fastmix.Mixup(num_classes=128, seed=0))(samples)
    assert images.data_ptr() % HUGE_PAGE == 0 and "hg" in mapping_of(images.data_ptr())[2]


def test_a_released_batch_lends_its_mapping_to_the_next_one_and_a_held_one_never():
    shape = (64, 3, 128, 128)
    first = empty_on_huge_pages(shape, torch.float32)
    address = first.data_ptr()
    held = empty_on_huge_pages(shape, torch.float32)
    assert held.data_ptr() != address, "first is still held"
    view = first[2:5]
    array = first.numpy()
    del first
    gc.collect()
    assert empty_on_huge_pages(shape, torch.float32).data_ptr() != address, "a view and an array still hold it"
    del view, array
    gc.collect()
    fresh = empty_on_huge_pages(shape, torch.float32, reuse=False)
    assert fresh.data_ptr() != address, "reuse=False: a new mapping (the bench's fresh row)"
    again = empty_on_huge_pages(shape, torch.float32)
    assert again.data_ptr() == address, "released: reused, pages faulted in already"
    again.fill_(7)
    assert held.data_ptr() != again.data_ptr()


def test_at_most_a_few_released_mappings_are_kept():
    from fastmix import huge_pages

    shape = (32, 3, 128, 128)
    batches = [empty_on_huge_pages(shape, torch.float32) for _ in range(huge_pages.KEPT_PER_SIZE + 3)]
    length = -(-batches[0].numel() * 4 // HUGE_PAGE) * HUGE_PAGE + HUGE_PAGE
    del batches
    gc.collect()
    assert len(huge_pages._kept.get(length, [])) == huge_pages.KEPT_PER_SIZE


def test_a_release_while_the_lock_is_held_on_its_own_thread_does_not_wait_and_is_kept_later():
    """The garbage collector can run a batch's finalizer anywhere, inside a section of its own thread
    that holds the lock too: the release must not wait for it (it never would come), and the next
    allocation of that size takes the mapping all the same."""
    from fastmix import huge_pages

    import threading

    length = 3 * HUGE_PAGE + 4096  # a length no other test uses
    huge_pages._kept.pop(length, None)
    mapping = huge_pages._new_mapping(length)
    sorted_inside = []

    def release_inside_a_locked_section():
        with huge_pages._kept_lock:
            huge_pages._give_back(mapping)  # returns: nothing sorted yet
            sorted_inside.append(bool(huge_pages._kept.get(length)))

    thread = threading.Thread(target=release_inside_a_locked_section, daemon=True)  # (a hang fails, not waits)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "the release waited for a lock its own thread holds"
    assert sorted_inside == [False]
    assert huge_pages._take_mapping(length) is mapping


def test_a_forked_child_allocates_though_another_thread_held_the_lock_at_the_fork():
    import os
    import threading
    import time

    from fastmix import huge_pages

    held, done = threading.Event(), threading.Event()

    def hold():
        with huge_pages._kept_lock:
            held.set()
            done.wait(10)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert held.wait(10), "the lock is free before the test"
    try:
        pid = os.fork()
        if pid == 0:  # the child: the lock was held by a thread it does not have
            ok = False
            try:  # (numpy writes it: torch's OpenMP pool is not usable in a forked child)
                batch = empty_on_huge_pages((2, 3, 512, 512), torch.float32).numpy()
                batch.fill(1)
                ok = batch.sum() == batch.size
            finally:
                os._exit(0 if ok else 1)
        for _ in range(200):  # 10 s, then the child is stuck: killed, and the test fails
            done_pid, status = os.waitpid(pid, os.WNOHANG)
            if done_pid:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child waited for a lock that no thread of it holds")
    finally:
        done.set()
        holder.join(10)
    assert os.waitstatus_to_exitcode(status) == 0
