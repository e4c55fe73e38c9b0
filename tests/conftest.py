import os

import pytest
import torch
from hypothesis import HealthCheck, settings

# tests/helpers.py holds checks (assert_unchanged, ...): pytest rewrites their asserts as it does a
# test module's, so a failure shows the values compared. (Must run before the first import of it.)
pytest.register_assert_rewrite("tests.helpers")

# Hypothesis: one profile, "default", for CI, the full command and the fast loop alike (300 examples
# a test, no deadline); "thorough" runs 2000 a test. FASTMIX_HYPOTHESIS_PROFILE=thorough selects it.
settings.register_profile("default", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("FASTMIX_HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
