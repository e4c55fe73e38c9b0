"""Every bad input is refused, on every backend: a property-based run over the cases of
tests/fuzz_cases.py (the four ops, Mixup and MixupCollate; one valid call with exactly one
argument made bad: value, dtype, device, layout or size). Each must raise ValueError or TypeError whose message names the
argument, with every input bit-identical afterwards (the bytes outside a view included). And every
label and mask dtype at and beyond its limits, on every entry point: a valid call gives what int64
labels or masks give, bit for bit; the others are refused as above.

CI runs conftest.py's default profile (300 examples); FASTMIX_HYPOTHESIS_PROFILE=thorough runs
2000, and ``python -m tests.fuzz_cases --cases N`` counts the outcomes of N cases."""
import random

from hypothesis import given, strategies as st

from .fuzz_cases import draw_case, outcome


@given(st.randoms(use_true_random=False))
def test_every_bad_input_is_refused_by_name_and_every_valid_dtype_mixed_as_int64(rng: random.Random):
    case = draw_case(rng)
    assert outcome(case) == case.expected, str(case)
