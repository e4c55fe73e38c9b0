"""Every bad input is refused, on every backend: a property-based run over the cases of
tests/fuzz_cases.py (the four ops, Mixup and MixupCollate; one valid call with exactly one
argument made bad: value, dtype, device, layout or size). Each must raise ValueError or TypeError whose message names the
argument, with every input bit-identical afterwards (the bytes outside a view included).

CI runs conftest.py's default profile (300 examples); FASTMIX_HYPOTHESIS_PROFILE=thorough runs
2000, and ``python -m tests.fuzz_cases --cases N`` counts the outcomes of N cases."""
import random

from hypothesis import given, strategies as st

from .fuzz_cases import REFUSED, draw_case, outcome


@given(st.randoms(use_true_random=False))
def test_every_bad_input_is_refused_by_name_before_anything_is_written(rng: random.Random):
    case = draw_case(rng)
    assert outcome(case) == REFUSED, str(case)
