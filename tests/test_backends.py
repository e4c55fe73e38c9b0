"""Backend availability, choice and fallback."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import fastmix
from fastmix.backends import resolve_backend

from .helpers import requires_cpp


def test_the_extension_is_built_where_the_tests_run():
    """CI installs with the extension; a missing or stale build must fail there, not skip."""
    if os.environ.get("FASTMIX_NO_EXT"):
        pytest.skip("FASTMIX_NO_EXT is set: testing the pure-Python install")
    assert fastmix.available_backends()["cpp"] is None, fastmix.available_backends()["cpp"]


@requires_cpp
@pytest.mark.skipif(not sys.platform.startswith("linux") or not torch.backends.openmp.is_available(),
                    reason="the extension is built with OpenMP where torch's Linux builds use it")
@pytest.mark.parametrize("threads", [2, 3])
def test_the_cpu_kernels_run_on_as_many_threads_as_torch_set_num_threads(threads):
    # at::parallel_for is inline: a build without -fopenmp ran every kernel on one thread.
    from fastmix import _C

    torch.set_num_threads(threads)
    assert _C.cpu_threads() == threads


@requires_cpp
@pytest.mark.parametrize("features", ["avx512", "avx2", "baseline"])
def test_the_rows_of_cpus_with_fewer_vector_features_equal_the_reference(features):
    """The cpp kernels' hand-written vector rows (ResizeMix's resize, FMix's mask cut) are chosen by
    the CPU at run time: uint8 resizes with VBMI's byte permutes, else from float32 windows
    (AVX-512 without VBMI), else 8-lane rows (AVX2, for the resize; FMix's cut takes the scalar
    loops there), else the scalar loops. FASTMIX_CPU_FEATURES narrows the choice, so the
    cpp cases of their specifications run again here as those CPUs run them."""
    def rows_taken(env):
        return subprocess.run([sys.executable, "-c", "from fastmix import _C; print(_C.cpu_vector_rows())"],
                              env=env, capture_output=True, text=True, check=True).stdout.strip()

    order = ["baseline", "avx2", "avx512", "avx512_vbmi"]
    unnarrowed = {k: v for k, v in os.environ.items() if k != "FASTMIX_CPU_FEATURES"}  # (the CPU's own rows)
    expected = order[min(order.index(features), order.index(rows_taken(unnarrowed)))]
    env = dict(os.environ, FASTMIX_CPU_FEATURES=features)
    tests = Path(__file__).parent
    assert rows_taken(env) == expected
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cpp",
               str(tests / "test_resize_kind.py"), str(tests / "test_mask_field.py")]
    result = subprocess.run(command, env=env, cwd=tests.parent, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and " passed" in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]


def test_backends_reports_every_backend_with_a_reason_when_missing():
    status = fastmix.available_backends()
    assert set(status) >= {"cpp", "cuda", "torch"}
    assert status["torch"] is None
    for name, reason in status.items():
        assert reason is None or (isinstance(reason, str) and reason), name
    if not torch.cuda.is_available():
        assert status["cuda"] is not None


def test_auto_picks_the_compiled_kernels_on_cpu():
    status = fastmix.available_backends()
    expected = next(b for b in ("cpp", "numba", "torch") if status[b] is None)
    assert resolve_backend("auto", torch.device("cpu")).name == expected


def test_environment_variable_forces_the_auto_choice(monkeypatch):
    monkeypatch.setenv("FASTMIX_BACKEND", "torch")
    assert resolve_backend("auto", torch.device("cpu")).name == "torch"
    monkeypatch.setenv("FASTMIX_BACKEND", "nonsense")
    with pytest.raises(ValueError, match="backend"):
        resolve_backend("auto", torch.device("cpu"))


def test_a_named_backend_that_cannot_run_says_why():
    with pytest.raises(ValueError, match="^backend: .*cuda"):
        fastmix.mix_(torch.rand(2, 3, 4, 4), fastmix.MixParams.identity(2), backend="cuda")


@pytest.mark.slow
def test_without_the_extension_fastmix_falls_back_to_torch_with_one_warning():
    """Without numba either (tests/test_numba.py covers the numba fallback)."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["numba"] = None  # as if numba were not installed
        import warnings, torch, fastmix
        from fastmix.backends import reference
        assert fastmix.available_backends()["cpp"].startswith("disabled by FASTMIX_NO_EXT"), fastmix.available_backends()
        mix = fastmix.Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, num_classes=4, seed=0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(3):
                images = torch.rand(5, 3, 8, 8)
                expected = images.clone()
                out, targets = mix(images, torch.tensor([0, 1, 2, 3, 0]))
                reference.mix_(expected, *mix.last_params.as_tuple())
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


# -- the house: one interface, resolved once --------------------------------------------------------


def test_import_fastmix_loads_the_library_only():
    """The command-line tools (bench, preview) load only when run."""
    code = "import sys, fastmix; print(sorted(m for m in sys.modules if m.startswith(('fastmix.bench', 'fastmix.preview'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


OP_ARGUMENTS = {
    "mix_": ["images", "partner", "lam", "kind", "box", "plan", "plan_shape", "pixel_mask", "mask_field",
             "field_threshold"],
    "mix_into_": ["out", "images", "partner", "lam", "kind", "box", "scale", "bias", "hwc", "pixel_mask", "mask_field",
                  "field_threshold"],
    "collate_mix_": ["out", "samples", "partner", "lam", "kind", "box", "scale", "bias", "hwc", "pixel_mask",
                     "mask_field", "field_threshold"],
    "mix_targets": ["labels", "partner", "lam", "kind", "num_classes", "smoothing"],
}


@pytest.mark.parametrize("name", [b for b in ("cpp", "numba", "torch") if fastmix.available_backends()[b] is None])
def test_every_backend_offers_the_four_ops_with_their_arguments(name):
    import inspect

    backend = resolve_backend(name, "cpu")
    assert backend.name == name and backend.runs_on("cpu")
    for op, arguments in OP_ARGUMENTS.items():
        assert list(inspect.signature(getattr(backend, op)).parameters) == arguments, (name, op)
        if fastmix.available_backends()["cpp"] is None:  # the schema says the same
            schema = getattr(torch.ops.fastmix, op).default._schema
            assert [a.name for a in schema.arguments] == arguments, op


def test_a_backend_is_resolved_once_per_device_type():
    assert resolve_backend("torch", "cpu") is resolve_backend("torch", torch.device("cpu"))
    mix = fastmix.Mixup(num_classes=3, backend="torch")
    assert mix.backend_for(torch.device("cpu")) is mix.backend_for(torch.device("cpu"))


def test_the_collate_refuses_a_mixup_whose_backend_runs_on_cuda():
    """It would fail only inside a DataLoader worker; it fails when the collate is built."""
    if fastmix.available_backends()["cuda"] is not None:  # then the Mixup itself is refused
        with pytest.raises(ValueError, match="^backend: expected a backend available here, got 'cuda'"):
            fastmix.Mixup(num_classes=3, backend="cuda")
        return
    with pytest.raises(ValueError, match="^mixup: expected a Mixup whose backend runs on the CPU"):
        fastmix.MixupCollate(fastmix.Mixup(num_classes=3, backend="cuda"))


def test_apply_mix_is_the_deprecated_name_of_mix_():
    images = torch.rand(4, 3, 8, 8)
    expected = images.clone()
    params = fastmix.Mixup(num_classes=3, seed=0).sample(4, 8, 8)
    fastmix.mix_(expected, params, backend="torch")
    with pytest.warns(DeprecationWarning, match="fastmix.mix_"):
        assert fastmix.apply_mix_(images, params, backend="torch") is images
    assert torch.equal(images, expected)


def test_import_fastmix_registers_the_ops():
    if fastmix.available_backends()["cpp"] is not None:
        pytest.skip(f"no compiled ops here: {fastmix.available_backends()['cpp']}")
    code = "import torch, fastmix; print(torch.ops.fastmix.mix_into_.default._schema.name)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "fastmix::mix_into_"
