"""Backend availability, choice and fallback."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import fastmix
from fastmix.backends import resolve_backend


def test_the_extension_is_built_where_the_tests_run():
    """CI installs with the extension; a missing or stale build must fail there, not skip."""
    if os.environ.get("FASTMIX_NO_EXT"):
        pytest.skip("FASTMIX_NO_EXT is set: testing the pure-Python install")
    assert fastmix.backends()["cpp"] is None, fastmix.backends()["cpp"]


def test_backends_reports_every_backend_with_a_reason_when_missing():
    status = fastmix.backends()
    assert set(status) >= {"cpp", "cuda", "torch"}
    assert status["torch"] is None
    for name, reason in status.items():
        assert reason is None or (isinstance(reason, str) and reason), name
    if not torch.cuda.is_available():
        assert status["cuda"] is not None


def test_auto_picks_the_compiled_kernels_on_cpu():
    status = fastmix.backends()
    expected = next(b for b in ("cpp", "numba", "torch") if status[b] is None)
    assert resolve_backend("auto", torch.device("cpu")) == expected


def test_environment_variable_forces_the_auto_choice(monkeypatch):
    monkeypatch.setenv("FASTMIX_BACKEND", "torch")
    assert resolve_backend("auto", torch.device("cpu")) == "torch"
    monkeypatch.setenv("FASTMIX_BACKEND", "nonsense")
    with pytest.raises(ValueError, match="backend"):
        resolve_backend("auto", torch.device("cpu"))


def test_a_named_backend_that_cannot_run_says_why():
    with pytest.raises((RuntimeError, ValueError), match="cuda"):
        fastmix.apply_mix_(torch.rand(2, 3, 4, 4), fastmix.MixParams.identity(2), backend="cuda")


def test_without_the_extension_fastmix_falls_back_to_torch_with_one_warning():
    """Without numba either (tests/test_numba.py covers the numba fallback)."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["numba"] = None  # as if numba were not installed
        import warnings, torch, fastmix
        from fastmix.reference import mix_reference_
        assert fastmix.backends()["cpp"].startswith("disabled by FASTMIX_NO_EXT"), fastmix.backends()
        mix = fastmix.Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, num_classes=4, seed=0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(3):
                images = torch.rand(5, 3, 8, 8)
                expected = images.clone()
                out, targets = mix(images, torch.tensor([0, 1, 2, 3, 0]))
                mix_reference_(expected, mix.last_params)
                assert torch.equal(out, expected) and targets.shape == (5, 4)
        fallback = [w for w in caught if "not available" in str(w.message)]
        assert len(fallback) == 1, [str(w.message) for w in caught]
        assert "torch backend" in str(fallback[0].message) and "pip install numba" in str(fallback[0].message)
        print("ok")
        """
    )
    env = dict(os.environ, FASTMIX_NO_EXT="1")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
