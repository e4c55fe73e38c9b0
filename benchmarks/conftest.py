import os

import pytest
import torch

import fastmix

# Full size by default (ImageNet-shaped: 256x3x224x224). Under --benchmark-disable (the test
# command, CI) every benchmark runs once on a small batch, so the suites stay correct without
# costing minutes; FASTMIX_BENCH_FAST=1 does the same. Set in pytest_configure, which runs
# before the benchmark modules are imported.
FAST = False
BATCH = 256
SIZE = 224
THREADS = int(os.environ.get("FASTMIX_BENCH_THREADS", "1"))

BACKENDS = [b for b in ("cpp", "numba", "torch") if fastmix.available_backends()[b] is None]


def pytest_configure(config):
    global FAST, BATCH, SIZE
    FAST = config.getoption("benchmark_disable", default=False) or os.environ.get("FASTMIX_BENCH_FAST", "0") not in ("0", "")
    BATCH = int(os.environ.get("FASTMIX_BENCH_BATCH", "16" if FAST else "256"))
    SIZE = int(os.environ.get("FASTMIX_BENCH_SIZE", "64" if FAST else "224"))


@pytest.fixture(autouse=True)
def _threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(previous)
