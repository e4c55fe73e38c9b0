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
def test_the_mapping_is_released_with_its_last_view():
    out = empty_on_huge_pages((64, 3, 128, 128), torch.float32)
    address = out.data_ptr()
    view = out[3]
    del out
    gc.collect()
    assert mapping_of(address) is not None, "a view keeps it"
    del view
    gc.collect()
    found = mapping_of(address)
    assert found is None or "hg" not in found[2], "unmapped"


def test_a_small_output_is_plain_torch_empty():
    out = empty_on_huge_pages((2, 3, 4, 4), torch.float32)
    assert out.numel() * 4 < LARGE and out.is_contiguous() and out.data_ptr() % 64 == 0


@linux_only
def test_the_collates_batch_in_the_main_process_is_on_huge_pages():
    import numpy as np

    samples = [(np.full((128, 128, 3), i, np.uint8), i) for i in range(128)]
    images, _ = fastmix.MixupCollate(fastmix.Mixup(num_classes=128, seed=0))(samples)
    assert images.data_ptr() % HUGE_PAGE == 0 and "hg" in mapping_of(images.data_ptr())[2]
