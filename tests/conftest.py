import os

import pytest
import torch
from hypothesis import HealthCheck, settings

import fastmix

# CI runs fewer hypothesis examples; FASTMIX_HYPOTHESIS_PROFILE=thorough runs many more.
settings.register_profile("ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("FASTMIX_HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

HAS_CPP = fastmix.available_backends()["cpp"] is None
HAS_CUDA = fastmix.available_backends()["cuda"] is None
HAS_NUMBA = fastmix.available_backends()["numba"] is None

requires_cpp = pytest.mark.skipif(not HAS_CPP, reason=f"cpp backend unavailable: {fastmix.available_backends()['cpp']}")
requires_cuda = pytest.mark.skipif(not HAS_CUDA, reason=f"cuda backend unavailable: {fastmix.available_backends()['cuda']}")
# CI installs numba (the "test" extra); tests/test_numba.py fails there if it is missing.
requires_numba = pytest.mark.skipif(not HAS_NUMBA, reason=f"numba backend unavailable: {fastmix.available_backends()['numba']}")

# Backends whose kernels are compared against the torch reference, per device.
COMPILED_BACKENDS = [pytest.param("cpp", marks=requires_cpp), pytest.param("numba", marks=requires_numba)]


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
